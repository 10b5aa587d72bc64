"""Wrist fall detection: pure numpy scoring of accelerometer windows.

``detect_fall(t_s, acc_g, model)`` serves both the offline CLI and the live
alert engine; ``load_model()`` reads the packaged, inspectable ``model.json``.
"""

from alerts.falls.model import FallDecision, FallModel, FallModelError, detect_fall, load_model
from alerts.falls.signal import FallInputError

__all__ = [
    "FallDecision",
    "FallInputError",
    "FallModel",
    "FallModelError",
    "detect_fall",
    "load_model",
]

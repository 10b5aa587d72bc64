"""Pure alert detectors: per-resident state, one input at a time, events out.

The live engine (the shell) keeps one :class:`ResidentState` per resident and
calls :func:`step` for every accepted message and periodically with a
:class:`Tick`; it persists and publishes the returned events. See docs/alerts.md.
"""

from alerts.detectors.baseline import compute_baseline
from alerts.detectors.engine import (
    AlertClosed,
    Input,
    ResidentState,
    Tick,
    rebanded,
    sos_only,
    step,
)
from alerts.detectors.inactivity import learn_threshold
from alerts.detectors.news2 import Direction, ParamBands, VitalParam
from alerts.detectors.types import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    Baseline,
    ClearReason,
    DeviceRules,
    FallRules,
    Persistence,
    Profile,
    SafeZone,
    Severity,
    Thresholds,
)

__all__ = [
    "AlertCleared",
    "AlertClosed",
    "AlertEvent",
    "AlertRaised",
    "AlertType",
    "AlertUpdated",
    "Baseline",
    "ClearReason",
    "DeviceRules",
    "Direction",
    "FallRules",
    "Input",
    "ParamBands",
    "Persistence",
    "Profile",
    "ResidentState",
    "SafeZone",
    "Severity",
    "Thresholds",
    "Tick",
    "VitalParam",
    "compute_baseline",
    "learn_threshold",
    "rebanded",
    "sos_only",
    "step",
]

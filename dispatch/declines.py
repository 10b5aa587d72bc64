"""Who may be asked again for an emergency that everyone nearby declined (pure).

An emergency is first offered to those who have not declined it. When nobody is left,
someone must still go: the workers who declined come back, each once the cool-down
of each of their declines has passed. Letting the offer time out is a missed phone, not
a no, so it cools down briefly (``EmergencyPolicy.timed_out_again_s``, 60 s); a reject
(the worker said no: hands full, too far), and an earlier order of the same alert that
the worker failed or dropped, cool down longer (``rejected_again_s``, 10 min), since
asking them again at once would only be refused again. Before 2026-12-04 every decline
was for good, and an emergency that every nearby worker had declined waited in
``created`` for a day while those workers were available again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dispatch.emergency import EmergencyPolicy

TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class Decline:
    """A worker's ``timed_out`` or ``rejected`` offer (or failed earlier order), and when."""

    worker_id: str
    kind: str
    at: datetime


def still_excluded(
    declined: Iterable[str], declines: Iterable[Decline], *, now: datetime, policy: EmergencyPolicy
) -> frozenset[str]:
    """Of the workers who ``declined``, those still cooling down at ``now`` (the rest may be
    asked again). A worker in ``declined`` with no dated decline stays excluded."""
    until: dict[str, float] = {}  # seconds from now until each may be asked again
    for d in declines:
        cool_s = policy.timed_out_again_s if d.kind == TIMED_OUT else policy.rejected_again_s
        left = cool_s - (now - d.at).total_seconds()
        until[d.worker_id] = max(left, until.get(d.worker_id, left))
    return frozenset(w for w in declined if until.get(w, 1.0) > 0)

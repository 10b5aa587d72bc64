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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from dispatch.emergency import EmergencyPolicy

TIMED_OUT = "timed_out"
# emergency offers in a row a worker lets time out, heard from in no other way, before
# they are set off shift (gone_quiet)
MISSED_IN_A_ROW: Final = 2
MISSED_OFFERS: Final = "missed_offers"  # status_note of a worker set off shift for it


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


def gone_quiet(outcomes: Sequence[tuple[str, datetime]], heard_at: datetime | None) -> bool:
    """Whether a worker has gone quiet: their last :data:`MISSED_IN_A_ROW` emergency
    offers (``outcomes``: each offer's end, ``timed_out``, ``accepted``, ``rejected``...
    and when, newest first) all timed out, and nothing was heard from them since the
    first of those (``heard_at``: their last answer, status change or position).

    A phone that is off, out of battery or in a bag still counts its worker as available;
    each emergency near them was offered to them first and waited out the offer's
    minute before going to the next. Before 2026-12-04 that went on all shift."""
    last = outcomes[:MISSED_IN_A_ROW]
    if len(last) < MISSED_IN_A_ROW or any(kind != TIMED_OUT for kind, _ in last):
        return False
    return heard_at is None or heard_at <= last[-1][1]

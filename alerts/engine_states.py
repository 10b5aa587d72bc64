"""Every resident's detector state, indexed so that the ticks need not walk everyone.

The two sets are kept with every write of a state, so that neither the 1 s tick
nor the closed-alert check walks a city's every resident (100,000 states: ~0.1 s
under the engine's lock each time): those for whom :func:`pending` holds, and
those holding an alert open (muted ones included).
"""

from __future__ import annotations

from collections.abc import Iterator

from alerts.detectors import ResidentState
from alerts.detectors.types import AlertType


def pending(state: ResidentState) -> bool:
    """Has the resident a fall's timers running (cancel window, confirmation, long lie),
    ticked every second? Every other time-driven rule counts minutes or hours and is
    ticked with everyone every 30 s."""
    return state.falls.episode is not None or bool(state.falls.open)


class ResidentStates:
    """The states by resident, with the residents pending and those holding alerts."""

    def __init__(self) -> None:
        self.states: dict[int, ResidentState] = {}
        self.pending: set[int] = set()
        self.holding: set[int] = set()

    def keep(self, resident_id: int, state: ResidentState) -> None:
        self.states[resident_id] = state
        for members, holds in ((self.pending, pending(state)),
                               (self.holding, state.holds_open())):  # fmt: skip
            if holds:
                members.add(resident_id)
            else:
                members.discard(resident_id)

    def replace_all(self, states: dict[int, ResidentState]) -> None:
        """Start over from ``states`` (a restart's), the two sets by the one rule."""
        self.states, self.pending, self.holding = {}, set(), set()
        for resident_id, state in states.items():
            self.keep(resident_id, state)

    def closed_elsewhere(
        self, still_open: set[tuple[int, str]]
    ) -> Iterator[tuple[int, ResidentState, list[AlertType]]]:
        """(resident, state, alert types) the detectors hold open, not muted nor held while
        the resident is away (never in the database), that the database has closed;
        ``still_open``: (resident, type) of the alerts not closed."""
        for resident_id in list(self.holding):
            state = self.states[resident_id]
            closed = [t for t in state.open_alerts()
                      if t not in state.muted and t not in state.away_held
                      and (resident_id, t) not in still_open]  # fmt: skip
            if closed:
                yield resident_id, state, closed

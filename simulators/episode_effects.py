"""What injected episodes do to the wearer and the band, as pure functions of episodes.

``effects_of`` turns the active episodes into physiology ``Effects`` (and the
wandering episode, if any); ``WEAR_FREE`` lists the episode types that do not
keep the band on the wrist; ``still_down`` and ``getting_up_steps`` decide the
steps counted when a resident gets up after a fall.
"""

from __future__ import annotations

import random
from typing import Final

from simulators.physiology import Activity, Effects
from simulators.scenario import Episode

# Episode types that do not need the band worn; during any other it stays off the charger.
WEAR_FREE = frozenset({"band_removed", "device_offline", "low_battery", "adl"})

# Steps the band counts when a resident who fell gets up (the end of a fall without a long
# lie): from standing they walk on or back to bed, from a chair they may sit down again, out
# of bed they climb back in. A guess, not a measurement; what matters for the alert engine
# is that it is neither always 0 (nobody gets up without a step) nor always many.
GETTING_UP_STEPS: Final = {"standing": (8, 40), "chair": (2, 20), "bed": (0, 6)}


def getting_up_steps(e: Episode) -> int:
    """Drawn from the episode alone, so the band's other random streams are unchanged."""
    lo, hi = GETTING_UP_STEPS.get(str(e.params.get("origin")), (0, 10))
    return random.Random(f"getting-up:{e.id}:{e.device_id}:{e.start_ms}").randint(lo, hi)


def still_down(episodes: list[Episode], t_ms: int, ended: Episode) -> bool:
    """Another fall or inactivity episode still holds the resident down at ``t_ms``."""
    return any(
        e is not ended and e.type in ("fall", "inactivity") and e.start_ms <= t_ms < e.end_ms
        for e in episodes
    )


def effects_of(active: list[Episode]) -> tuple[Effects, Episode | None]:
    eff = Effects()
    wander = None
    for e in active:
        k = e.type
        if k in ("tachycardia", "bradycardia"):
            eff.hr_level = float(e.params["hr"])
        elif k == "hypoxaemia":
            eff.spo2_level = float(e.params["spo2"])
        elif k == "fever":
            eff.temp_add += float(e.params["skin_temp_rise_c"])
            eff.hr_add += 10.0
        elif k == "hypertensive_crisis":
            eff.bp_level = (float(e.params["bp_sys"]), float(e.params["bp_dia"]))
            eff.hr_add += 8.0
        elif k == "wandering":
            eff.activity = Activity.WANDER
            wander = e
        elif k == "inactivity":
            eff.activity, eff.still = Activity.REST, True
        elif k == "restless_night":
            eff.activity, eff.step_rate = Activity.REST, float(e.params["steps_per_min"])
        elif k == "fall":
            eff.activity, eff.still = Activity.LYING, True
    return eff, wander

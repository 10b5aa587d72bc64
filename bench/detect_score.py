"""How ``bench/detect.py`` scores a run: alerts matched to the simulator's episodes.

Pure: a :class:`Run` (the episodes with their residents, the alerts the engine
opened) in, a :class:`TypeScore` per alert type out. An alert detects an episode
of its resident when it opens between the episode's start and :data:`GRACE` after
its end (a night's judgement: until that night's morning); a second alert inside
a detected episode is a duplicate, one matching no episode a false alert, with its
likely cause. docs/alerts-evaluation.md ("How it works", **Matching**) says why.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import percentile
from simulators.scenario import Episode

LOCAL = timedelta(hours=8)  # Asia/Shanghai, the fleet's and the profiles' time zone
# episode type -> alert types that detect it (long_lie only for falls with a long lie)
EPISODE_ALERTS: dict[str, tuple[str, ...]] = {
    "fall": ("fall", "long_lie"), "sos": ("sos",), "tachycardia": ("vital_hr_high",),
    "bradycardia": ("vital_hr_low",), "hypoxaemia": ("vital_spo2_low",),
    "hypertensive_crisis": ("vital_sbp_high",), "fever": ("vital_temp_high",),
    "wandering": ("geofence_exit", "night_activity"), "inactivity": ("inactivity",),
    "device_offline": ("device_offline",), "low_battery": ("battery_low",),
    "band_removed": ("band_not_worn",), "restless_night": ("night_activity",),
    "imu_misconfigured": ("imu_refused",),
}  # fmt: skip
WAKING_H = (7, 22)  # local waking hours of the profiles: a night is the rest
GRACE = timedelta(minutes=15)  # an alert opened up to this long after the episode ended counts


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(slots=True)
class Run:
    name: str
    bands: int
    days: float
    episodes: list[tuple[Episode, int]]  # with the resident id
    alerts: list[dict[str, Any]]
    wall_s: float
    readings: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TypeScore:
    tp: int = 0
    fp: int = 0
    duplicates: int = 0  # a second alert inside an episode already detected
    # detected, then closed as a false alarm on the early screen's word alone: a real fall
    # the full-window model did not bear out (counted as detected: it was shown at once)
    retracted: int = 0
    # a further fall while the resident's fall alert was open: by design it updates that
    # alert (detail.falls counts them) instead of raising another; detected, no latency
    merged: int = 0
    episodes: int = 0
    latencies: list[float] = field(default_factory=list)
    missed: Counter[str] = field(default_factory=Counter)  # by episode detail
    false: Counter[str] = field(default_factory=Counter)  # by likely cause


def _local_h(t_ms: int) -> float:
    return ((t_ms / 1000 + LOCAL.total_seconds()) % 86400) / 3600


def _eligible(alert_type: str, e: Episode) -> bool:
    """long_lie only for falls with a long lie; night_activity for a wander only at night."""
    if alert_type == "long_lie":
        return bool(e.params.get("long_lie"))
    if alert_type == "night_activity" and e.type == "wandering":
        return not WAKING_H[0] <= _local_h(e.start_ms) < WAKING_H[1]
    return True


def _until(alert_type: str, e: Episode) -> datetime:
    """The latest an alert may open and still detect ``e``: GRACE after its end; for
    night_activity (a judgement of the whole night) also until that night's end."""
    until = utc_ms(e.end_ms) + GRACE
    if alert_type == "night_activity":
        h = _local_h(e.start_ms)
        to_morning = (WAKING_H[0] - h) % 24
        until = max(until, utc_ms(e.start_ms) + timedelta(hours=to_morning))
    return until


def _cause(alert: dict[str, Any], around: list[tuple[Episode, int]]) -> str:
    """A false alert's likely cause: an overlapping episode of the resident, or the detail."""
    at, d = alert["opened_at"], alert["detail"] or {}
    bits = [str(d[k]) for k in ("cause", "sources") if k in d]
    bits += (
        [alert["severity"], "cancelled_by_wearer"]
        if alert["state"] == "false_alarm"
        else [alert["severity"]]
    )
    why = f" ({', '.join(bits)})"
    for e, _ in around:
        if utc_ms(e.start_ms) - GRACE <= at <= utc_ms(e.end_ms) + GRACE:
            kind = e.params.get("kind")
            return f"during {e.type}" + (f":{kind}" if kind else "") + why
    return "no episode" + why


def score(run: Run) -> dict[str, TypeScore]:
    scores: dict[str, TypeScore] = defaultdict(TypeScore)
    by_resident: dict[int, list[tuple[Episode, int]]] = defaultdict(list)
    for e, rid in run.episodes:
        by_resident[rid].append((e, rid))
        for t in EPISODE_ALERTS.get(e.type, ()):
            if _eligible(t, e):
                scores[t].episodes += 1
    matched: set[tuple[int, str]] = set()
    for a in run.alerts:
        s, at, t = scores[a["type"]], a["opened_at"], a["type"]
        hits = [e for e, _ in by_resident[a["resident_id"]]
                if t in EPISODE_ALERTS.get(e.type, ()) and _eligible(t, e)
                and utc_ms(e.start_ms) <= at <= _until(t, e)]  # fmt: skip
        fresh = [e for e in hits if (e.id, t) not in matched]
        if fresh:
            e = fresh[0]
            matched.add((e.id, t))
            s.tp += 1
            s.latencies.append((at - utc_ms(e.start_ms)).total_seconds())
            if a["state"] == "false_alarm" and (a["detail"] or {}).get("sources") == ["screen"]:
                s.retracted += 1
        elif hits:
            s.duplicates += 1
        else:
            s.fp += 1
            s.false[_cause(a, by_resident[a["resident_id"]])] += 1
    _credit_merged_falls(run, scores["fall"], matched)
    for e, _ in run.episodes:
        for t in EPISODE_ALERTS.get(e.type, ()):
            if _eligible(t, e) and (e.id, t) not in matched:
                p = {k: v for k, v in e.params.items() if k in ("origin", "long_lie", "cancelled")}
                scores[t].missed[f"{e.type} {json.dumps(p)}" if p else e.type] += 1
    return scores


def _credit_merged_falls(run: Run, s: TypeScore, matched: set[tuple[int, str]]) -> None:
    """Falls the engine folded into the resident's open fall alert (``detail.falls`` > 1):
    the episodes of that resident that began while it was open and no alert matched."""
    end = utc_ms(max((e.end_ms for e, _ in run.episodes), default=0)) + GRACE
    for a in run.alerts:
        further = int((a["detail"] or {}).get("falls", 1)) - 1
        if a["type"] != "fall" or further < 1:
            continue
        closed = a["closed_at"] or end
        for e, rid in run.episodes:
            if further == 0:
                break
            if (rid == a["resident_id"] and "fall" in EPISODE_ALERTS.get(e.type, ())
                    and (e.id, "fall") not in matched
                    and a["opened_at"] < utc_ms(e.start_ms) <= closed):  # fmt: skip
                matched.add((e.id, "fall"))
                s.tp += 1
                s.merged += 1
                further -= 1


def summarise(scores: dict[str, TypeScore]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t, s in sorted(scores.items()):
        out[t] = {
            "precision": round(s.tp / (s.tp + s.fp), 3) if s.tp + s.fp else None,
            "recall": round(s.tp / s.episodes, 3) if s.episodes else None,
            "p50_latency_s": round(percentile(s.latencies, 0.5), 1) if s.latencies else None,
            "p95_latency_s": round(percentile(s.latencies, 0.95), 1) if s.latencies else None,
            "episodes": s.episodes, "tp": s.tp, "fp": s.fp, "missed": s.episodes - s.tp,
            "duplicates": s.duplicates,
            **({"retracted": s.retracted, "merged": s.merged} if t == "fall" else {}),
        }  # fmt: skip
    return out


def merge(runs: list[dict[str, TypeScore]]) -> dict[str, TypeScore]:
    total: dict[str, TypeScore] = defaultdict(TypeScore)
    for scores in runs:
        for t, s in scores.items():
            m = total[t]
            m.tp, m.fp, m.duplicates = m.tp + s.tp, m.fp + s.fp, m.duplicates + s.duplicates
            m.episodes += s.episodes
            m.retracted += s.retracted
            m.merged += s.merged
            m.latencies += s.latencies
            m.missed.update(s.missed)
            m.false.update(s.false)
    return total


def report(name: str, run: Run, scores: dict[str, TypeScore]) -> None:
    print(f"\n== {name}: {run.bands} bands, {run.days:g} simulated days, "
          f"{run.readings} readings, {len(run.alerts)} alerts, {len(run.episodes)} episodes, "
          f"wall {run.wall_s:.0f} s  {json.dumps(run.stats)}")  # fmt: skip
    for t, row in summarise(scores).items():
        print(f"  {t:16} {json.dumps(row)}")
        s = scores[t]
        for cause, k in s.missed.most_common(5):
            print(f"      missed {k:4}  {cause}")
        for cause, k in s.false.most_common(5):
            print(f"      false  {k:4}  {cause}")

"""Recurring rules (pure): who gets what on which day, in local time, with stable keys."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.model import CatalogueError
from dispatch.recurring import (
    ResidentRef,
    Subscription,
    expand,
    expand_subscriptions,
    load_recurring,
    local_zone,
    recurring_from_dict,
)

PEOPLE = [ResidentRef(1, True), ResidentRef(2, False), ResidentRef(3, True)]


def test_weekly_visit_for_those_living_alone_on_mondays_only() -> None:
    rules = recurring_from_dict(
        {
            "timezone": "Asia/Shanghai",
            "recurring": [
                {
                    "name": "welfare",
                    "service": "welfare_visit",
                    "every": "weekly",
                    "weekday": "mon",
                    "window": "09:00-12:00",
                    "who": "living_alone",
                },
                {
                    "name": "meal",
                    "service": "meal_delivery",
                    "every": "daily",
                    "window": "11:00-12:30",
                    "who": "all",
                },
            ],
        }
    )
    monday = expand(rules, PEOPLE, date(2026, 11, 23))
    assert [(d.rule, d.resident_id) for d in monday] == [
        ("welfare", 1),
        ("welfare", 3),
        ("meal", 1),
        ("meal", 2),
        ("meal", 3),
    ]
    assert monday[0].window_start.utcoffset() is not None
    assert monday[0].window_start.hour == 9  # local time, +08:00
    assert monday[0].window_start.isoformat().endswith("+08:00")
    assert monday[0].idempotency_key == "recurring:welfare:1:2026-11-23"
    tuesday = expand(rules, PEOPLE, date(2026, 11, 24))
    assert {d.rule for d in tuesday} == {"meal"}


def test_listed_residents_only() -> None:
    rules = recurring_from_dict(
        {
            "recurring": [
                {
                    "name": "meal",
                    "service": "meal_delivery",
                    "every": "daily",
                    "window": "11:00-12:30",
                    "who": "listed",
                    "residents": [2, 9],
                }
            ]
        }
    )
    assert [d.resident_id for d in expand(rules, PEOPLE, date(2026, 11, 24))] == [2]


def test_packaged_rules_load() -> None:
    rules = load_recurring()
    assert any(r.service == "welfare_visit" and r.weekday == 0 for r in rules.rules)
    assert all(r.end > r.start for r in rules.rules)
    assert time(9) in {r.start for r in rules.rules}


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "x", "service": "s", "every": "monthly", "window": "09:00-10:00"},
        {"name": "x", "service": "s", "every": "weekly", "window": "09:00-10:00"},
        {"name": "x", "service": "s", "every": "daily", "window": "10:00-09:00"},
        {"name": "x", "service": "s", "every": "daily", "window": "soon"},
        {
            "name": "x",
            "service": "s",
            "every": "weekly",
            "weekday": "someday",
            "window": "9:00-10:00",
        },
        {"name": "x", "service": "s", "every": "daily", "window": "09:00-10:00", "who": "cats"},
    ],
)
def test_bad_rules_are_refused(rule: dict[str, str]) -> None:
    with pytest.raises(CatalogueError):
        recurring_from_dict({"recurring": [rule]})


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_an_unknown_timezone_is_a_catalogue_error(zone: str) -> None:
    """The API reads the catalogue's zone for ``GET /orders?date=``: a bad one is the
    catalogue's fault (503 there), not an unexpected error."""
    with pytest.raises(CatalogueError):
        recurring_from_dict({"timezone": zone})


def test_the_local_zone_is_the_catalogues() -> None:
    assert local_zone().key == "Asia/Shanghai"  # the packaged catalogue's


def test_a_standing_service_books_its_weekdays_in_force_in_local_time() -> None:
    meals = Subscription(7, 2, "meal_delivery", frozenset({0, 2, 4}), time(11), time(12, 30),
                         starts_on=date(2026, 11, 25), ends_on=date(2026, 12, 4))  # fmt: skip
    zone = ZoneInfo("Asia/Shanghai")
    days = [date(2026, 11, 23) + timedelta(days=i) for i in range(14)]
    booked = [d for d in days if expand_subscriptions([meals], d, zone)]
    # Mon 23 is before it starts; Wed 25, Fri 27, Mon 30, Wed 2, Fri 4; none after the 4th
    assert [d.day for d in booked] == [25, 27, 30, 2, 4]
    (due,) = expand_subscriptions([meals], date(2026, 11, 25), zone)
    assert (due.resident_id, due.service, due.rule) == (2, "meal_delivery", "subscription:7")
    assert due.window_start.isoformat() == "2026-11-25T11:00:00+08:00"
    assert due.idempotency_key == "recurring:subscription:7:2:2026-11-25"


@pytest.mark.parametrize(
    ("weekdays", "start", "end"),
    [(frozenset(), time(9), time(10)), (frozenset({7}), time(9), time(10)),
     (frozenset({1}), time(10), time(10))],
)  # fmt: skip
def test_a_standing_service_needs_a_weekday_and_a_window(
    weekdays: frozenset[int], start: time, end: time
) -> None:
    with pytest.raises(CatalogueError):
        Subscription(1, 1, "cleaning", weekdays, start, end, date(2026, 1, 1))

"""The catalogue, the order lifecycle table, travel times and check-in distance."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.lifecycle import TRANSITIONS, Action, InvalidTransition, near_home, next_state
from dispatch.model import LIVE, Catalogue, CatalogueError, Mode, OrderState, Point, load_catalogue
from dispatch.travel import HaversineTravel, haversine_km


def test_packaged_catalogue_covers_the_usual_services() -> None:
    c = load_catalogue()
    for code in (
        "meal_delivery",
        "bathing",
        "cleaning",
        "emergency_help",
        "medical_help",
        "escort",
        "shopping",
        "companionship",
        "recreation",
        "welfare_visit",
    ):
        assert code in c.services
    assert c["cleaning"].interruptible
    assert not c["bathing"].interruptible
    assert c.emergency_type().emergency


@pytest.mark.parametrize(
    "entry",
    [
        {"code": "x", "duration_min": 0},
        {"code": "x", "duration_min": 30, "skills": ["juggling"]},
        {"code": "x"},
        "cleaning",
    ],
)
def test_bad_catalogue_entries_are_refused(entry: object) -> None:
    with pytest.raises(CatalogueError):
        Catalogue.from_dict({"services": [entry]})
    with pytest.raises(CatalogueError):
        load_catalogue().__getitem__("no_such_service")


def test_lifecycle_happy_path_and_refusals() -> None:
    s = OrderState.CREATED
    for a in (Action.OFFER, Action.ACCEPT, Action.EN_ROUTE, Action.CHECK_IN, Action.CHECK_OUT):
        s = next_state(s, a)
    assert s is OrderState.COMPLETED
    assert next_state(OrderState.OFFERED, Action.TIME_OUT) is OrderState.CREATED
    with pytest.raises(InvalidTransition):
        next_state(OrderState.COMPLETED, Action.CANCEL)
    with pytest.raises(InvalidTransition):
        next_state(OrderState.ON_SITE, Action.CANCEL)  # on site: fail or check out
    for (frm, _), to in TRANSITIONS.items():  # nothing leaves a final state
        assert not frm.final
        assert to in OrderState
    assert {s for s in OrderState if s.live} == LIVE


def test_travel_and_check_in_radius() -> None:
    a = Point(32.0, 120.86)
    b = Point(32.0, 120.86 + 1 / 94.4)
    assert float(
        haversine_km(np.float64(a.lat), np.float64(a.lon), np.float64(b.lat), np.float64(b.lon))
    ) == pytest.approx(1.0, rel=0.01)
    t = HaversineTravel(road_factor=1.3)
    assert t.speed_kmh(Mode.WALK) < t.speed_kmh(Mode.EBIKE)
    m = t.matrix_km(np.array([a.lat, b.lat]), np.array([a.lon, b.lon]))
    assert m[0, 1] == pytest.approx(1.3, rel=0.01)
    assert m[0, 0] == 0
    assert near_home(Point(32.0, 120.8605), a, radius_m=150)
    assert not near_home(b, a, radius_m=150)
    with pytest.raises(ValueError, match="road_factor"):
        HaversineTravel(road_factor=0.5)
    with pytest.raises(ValueError, match="range"):
        Point(91.0, 0.0)

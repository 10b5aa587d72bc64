"""Which alerts the dispatch service acts on (configuration, no I/O)."""

from __future__ import annotations

from dispatch.runner import DispatchRunner
from eldercare.settings import Settings


def runner(**kw: object) -> DispatchRunner:
    return DispatchRunner(Settings(environment="test", **kw))  # type: ignore[arg-type]


def test_raised_critical_alerts_by_default() -> None:
    r = runner()
    base = {"kind": "raised", "alert_id": 5, "severity": "critical", "type": "fall"}
    assert r.wants(base)
    assert not r.wants({**base, "kind": "updated"})
    assert not r.wants({**base, "severity": "high"})
    assert not r.wants({**base, "alert_id": "5"})  # bad input is ignored, not trusted


def test_configured_severities_and_types() -> None:
    r = runner(dispatch_auto_severities=["critical", "high"], dispatch_auto_types=["sos"])
    assert r.wants({"kind": "raised", "alert_id": 1, "severity": "high", "type": "sos"})
    assert not r.wants({"kind": "raised", "alert_id": 1, "severity": "high", "type": "fall"})

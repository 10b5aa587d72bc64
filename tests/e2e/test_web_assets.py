"""The web pages' static side: every string key in both languages, nothing from a CDN, the
vendored libraries carry their licence. No browser needed."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
KEY = r"[a-z0-9_]+(?:\.[a-z0-9_]+)+"
PAGE_PREFIXES = (
    "common|login|live|time|console|queue|detail|evidence|board|figures|family|worker|map"
)
SOURCES = [
    p
    for p in WEB.rglob("*")
    if p.suffix in {".js", ".html"} and "vendor" not in p.parts and "node_modules" not in p.parts
]


def dictionary(name: str) -> dict[str, str]:
    text = (WEB / "lib" / "strings.js").read_text(encoding="utf-8")
    block = text.split(f"export const {name} = {{", 1)[1].split("\n};", 1)[0]
    entries = re.findall(rf'^\s*"({KEY})": "((?:[^"\\]|\\.)*)",$', block, flags=re.M)
    lines = [ln for ln in block.splitlines() if ln.strip() and not ln.strip().startswith("//")]
    assert len(entries) == len(lines), f"{name}: a line of strings.js is not a plain entry"
    return dict(entries)


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        keys.update(re.findall(rf'\bt\("({KEY})"', text))
        keys.update(re.findall(rf'data-i18n(?:-[a-z-]+)?"?[=:] ?"({KEY})"', text))
        # keys kept in lists and passed to t() later, e.g. ["detail.worker", ...].map(t)
        keys.update(re.findall(rf'"((?:{PAGE_PREFIXES})\.[a-z0-9_]+)"', text))
        keys -= {k for k in keys if k.rsplit(".", 1)[1] in {"css", "js", "html"}}  # file names
    prefixes = {p for path in SOURCES for p in re.findall(r'label\("([a-z_.]+)"', path.read_text())}
    return keys - prefixes


def test_both_languages_have_the_same_keys() -> None:
    zh, en = dictionary("zh"), dictionary("en")
    assert set(zh) - set(en) == set()
    assert set(en) - set(zh) == set()
    assert all(v.strip() for v in [*zh.values(), *en.values()])


def test_every_key_the_pages_use_is_in_the_dictionary() -> None:
    zh = dictionary("zh")
    used = used_keys()
    assert len(used) > 100  # the scan found the pages' keys at all
    assert sorted(used - set(zh)) == []


def test_zh_is_the_default_language() -> None:
    text = (WEB / "lib" / "i18n.js").read_text(encoding="utf-8")
    assert '|| "zh-CN"' in text
    for page in ("console", "family", "worker"):
        assert '<html lang="zh-CN">' in (WEB / page / "index.html").read_text(encoding="utf-8")


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in [*SOURCES, *WEB.rglob("*.css")]:
        if "node_modules" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        remote = re.findall(r'(?:src|href)=["\'](?:https?:)?//[^"\']+', text)
        remote += re.findall(r'(?:import|from)\s*["\'](?:https?:)?//[^"\']+', text)
        remote += re.findall(r'url\(["\']?(?:https?:)?//', text)
        assert remote == [], f"{path.relative_to(WEB)} loads {remote}"


def test_vendored_libraries_carry_licence_and_version() -> None:
    vendor = WEB / "lib" / "vendor"
    libs = [p for p in vendor.iterdir() if p.is_dir()]
    assert libs
    for lib in libs:
        assert (lib / "LICENSE").is_file(), lib.name
        assert (lib / "package.json").is_file(), lib.name


def test_every_code_the_platform_speaks_has_a_label() -> None:
    from alerts.detectors.types import AlertType, Severity
    from alerts.lifecycle import AlertState, Outcome

    zh = dictionary("zh")
    codes = [f"alert.type.{x}" for x in AlertType] + [f"alert.state.{x}" for x in AlertState]
    codes += [f"severity.{x}" for x in Severity] + [f"outcome.{x}" for x in Outcome]
    migrations = (WEB.parent / "eldercare" / "migrations").glob("*.sql")
    for sql in migrations:  # CHECK (state IN (...)) of work orders, workers' status, conditions
        text = sql.read_text(encoding="utf-8")
        for column, prefix in (("state", "order.state"), ("status", "worker.status")):
            if "work_orders" in text or "service_workers" in text:
                m = re.search(
                    rf"\n\s+{column}\s+text NOT NULL DEFAULT '\w+'"
                    rf"\s*CHECK \({column} IN \(([^)]*)\)",
                    text,
                )
                if m:
                    codes += [f"{prefix}.{c}" for c in re.findall(r"'(\w+)'", m.group(1))]
        m = re.search(r"conditions\s+text\[\][^;]*?ARRAY\[([^\]]*)\]", text)
        if m:
            codes += [f"condition.{c}" for c in re.findall(r"'(\w+)'", m.group(1))]
    codes += evidence_codes()
    catalogue = WEB.parent / "dispatch" / "catalogue.yaml"
    if catalogue.exists():
        codes += [f"service.{c}" for c in re.findall(r"code: (\w+)", catalogue.read_text())]
    assert sorted(c for c in codes if c not in zh) == []


def evidence_codes() -> list[str]:
    """Codes the detectors write into an alert's detail that the console puts into words."""
    from alerts.detectors.falls import FallStage
    from alerts.detectors.news2 import VitalParam

    detectors = WEB.parent / "alerts" / "detectors"
    health = (detectors / "device_health.py").read_text(encoding="utf-8")
    falls = "".join(p.read_text(encoding="utf-8") for p in sorted(detectors.glob("fall*.py")))
    types = (detectors / "types.py").read_text(encoding="utf-8")
    found = {
        "cause": re.findall(r'cause(?:=|": |: str = )"(\w+)"', health),
        "response": re.findall(r'"response": "(\w+)"', health),
        "source": re.findall(r'source="(\w+)"', falls),
        "threshold_from": re.findall(r'return [\w.]+, "(\w+)"', types),
    }
    assert all(found.values()), found  # the scan still finds what the detectors write
    codes = [f"evidence.{kind}.{c}" for kind, cs in found.items() for c in cs]
    return (
        codes
        + [f"evidence.stage.{x}" for x in FallStage]
        + [f"evidence.param.{x}" for x in VitalParam]
    )


def test_the_evidence_the_console_reads_is_what_the_detectors_write() -> None:
    """Each field evidence.js reads from an alert's detail is one some detector writes."""
    read = set(re.findall(r"\bd\.(\w+)", (WEB / "lib" / "evidence.js").read_text("utf-8")))
    assert len(read) > 30  # the scan found the fields at all
    written: set[str] = set()
    for path in (WEB.parent / "alerts" / "detectors").glob("*.py"):
        written.update(re.findall(r'"(\w+)"(?::|\] =)', path.read_text(encoding="utf-8")))
    assert sorted(read - written) == []

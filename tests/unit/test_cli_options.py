"""The CLI refuses option values that would quietly do nothing (argparse: exit 2)."""

from __future__ import annotations

import pytest

from eldercare.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["dead-letters", "--hours", "-5"],  # listed nothing before 2026-12-04
        ["dead-letters", "--hours", "0"],
        ["dead-letters", "--hours", "nan"],
        ["dead-letters", "--hours", "a day"],
        ["dead-letters", "--limit", "0"],
        ["dead-letters", "--limit", "-1"],
    ],
)
def test_a_value_that_would_list_nothing_is_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert "argument --" in capsys.readouterr().err  # names the option


def test_good_values_are_taken() -> None:
    args = build_parser().parse_args(["dead-letters", "--hours", "0.5", "--limit", "3"])
    assert (args.hours, args.limit) == (0.5, 3)
    assert build_parser().parse_args(["dead-letters"]).hours == 24.0

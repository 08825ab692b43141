"""Commands that only look at runs never create a store: a missing one is an error (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_cli import home, plait_cli  # noqa: F401 - `home` is an autouse fixture

READ_ONLY = [
    ("inputs",),
    ("runs",),
    ("status", "r1"),
    ("report", "r1"),
    ("logs", "r1"),
    ("resume", "r1", "--target", "flow.yaml"),
    ("cancel", "r1"),
]


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: c[0])
def test_a_command_that_reads_runs_refuses_a_missing_store_and_creates_nothing(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such.db"
    result = plait_cli(*command, "--store", f"sqlite://{missing}")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: there is no SQLite store at {str(missing)!r}; check --store"
    )
    assert not missing.parent.exists()


def test_the_default_store_is_not_created_by_looking_at_it(home: Path) -> None:  # noqa: F811
    result = plait_cli("runs")
    assert result.exit_code == 2
    assert "`plait run` creates it" in result.stderr
    assert not home.exists()

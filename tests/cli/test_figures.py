"""The figures of a run (makespan, task time, parallelism, critical path) are computed in one
place, from each attempt, for the summary after a run or a resume, ``plait status`` and the
report alike."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import plait
from plait.cli._app import cli
from plait.cli._report import build_report
from plait.cli._summary import format_seconds

FLOW = """
import time
from pathlib import Path

import plait

retried = plait.Workflow("retried")


def make(name: str):
    def fail_once(ctx: plait.Context) -> str:
        time.sleep(0.05)
        if ctx.attempt == 1:
            raise RuntimeError(name + " is not ready")
        return name

    fail_once.__name__ = fail_once.__qualname__ = name
    return fail_once


for name in ("a", "b", "c"):
    retry = plait.RetryPolicy(max_retries=1, backoff=0.4, jitter=0)
    retried.add_task(name, make(name), retry=retry)

resumable = plait.Workflow("resumable")


def build() -> str:
    time.sleep(0.2)
    return "1.0"


def ship(build: str, approve: bool) -> str:
    time.sleep(0.05)
    return "shipped " + build


resumable.add_task("build", build)
resumable.add_task("approve", None, depends_on=["build"], pause=plait.Pause("Ship?"))
resumable.add_task("ship", ship, depends_on=["build", "approve"])

broken = plait.Workflow("broken")


def deploy() -> None:
    time.sleep(0.05)
    if not Path(__file__).with_name("fixed").exists():
        raise RuntimeError("not yet")


broken.add_task("deploy", deploy, retry=plait.RetryPolicy(max_retries=0))
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLAIT_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "figure_flows.py"
    path.write_text(FLOW)
    return path


def plait_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def summary(result: Result) -> dict[str, Any]:
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "run_summary"
    return record


def test_parallelism_counts_attempts_not_retry_backoff(flow: Path) -> None:
    """Three tasks, one slot: each attempt runs alone, so no more than one runs at once on
    average -- though each task's first start and last end span its 0.4 s backoff."""
    result = plait_cli("run", f"{flow}:retried", "--json", "--run-id", "r1", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    figures = summary(result)
    assert 0 < figures["parallelism"] <= 1.0 + 1e-9
    assert figures["task_time"] < figures["makespan"]
    assert figures["task_time"] >= 6 * 0.05  # six attempts of 50 ms


def test_the_summary_after_a_resume_describes_the_whole_run(flow: Path) -> None:
    assert plait_cli("run", f"{flow}:resumable", "--run-id", "r1").exit_code == 3
    resumed = plait_cli("resume", "r1", "--input", "approve=true", "--json")
    assert resumed.exit_code == 0, resumed.output
    figures = summary(resumed)
    assert figures["critical_path"][0] == "build"  # it ran before the resume, and counts
    assert figures["critical_path"][-1] == "ship"
    assert figures["critical_path_seconds"] >= 0.25
    assert figures["task_time"] >= 0.25


def test_status_shows_the_duration_of_a_task_that_finished_during_a_resume(
    flow: Path, tmp_path: Path
) -> None:
    """It failed before the resume, so its second attempt is the first of this session."""
    assert plait_cli("run", f"{flow}:broken", "--run-id", "r1").exit_code == 1
    (flow.parent / "fixed").touch()
    assert plait_cli("resume", "r1").exit_code == 0
    out = plait_cli("status", "r1").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["deploy"][1:3] == ["succeeded", "2"]
    assert re.fullmatch(r"\d+\.\d\ds", rows["deploy"][3]), rows["deploy"]
    stored = plait.get_run("r1", store=f"sqlite://{tmp_path / 'home' / 'plait.db'}")
    duration = stored.tasks["deploy"].duration
    assert duration is not None and duration >= 0.05


def test_the_summary_status_and_report_show_the_same_figures(flow: Path, tmp_path: Path) -> None:
    result = plait_cli("run", f"{flow}:retried", "--json", "--run-id", "r1", "--concurrency", "2")
    figures = summary(result)
    status_line = plait_cli("status", "r1").stdout.splitlines()[-1]
    expected = format_seconds(figures["makespan"])
    assert status_line.startswith(f"makespan {expected} · ")
    page = build_report("r1", store=f"sqlite://{tmp_path / 'home' / 'plait.db'}")
    shown = re.search(
        r"data-figure='parallelism'><div class='label'>Parallelism</div>"
        r"<div class='value'>([\d.]+)",
        page,
    )
    assert shown is not None
    assert float(shown.group(1)) == pytest.approx(figures["parallelism"], abs=0.006)

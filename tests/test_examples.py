"""The examples run as the README says they do."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import plait

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_pipeline_example_runs_its_branches_in_parallel_and_retries() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "pipeline.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "succeeded in" in out
    assert "retrying  upload_report" in out
    assert "upload attempts: 2" in out
    # The branches overlapped: each of the three started before any of them finished.
    branch_events = [
        line.split()[1] for line in out.splitlines() if " total_" in line and "  " in line
    ]
    assert branch_events.count("started") == 3
    assert branch_events[:3] == ["started"] * 3, "the branches did not run side by side"


def plait_command(
    *args: str | Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m plait.cli ARGS``, as a person would type ``plait ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "plait.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a command-line run: its runs and build files under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PLAIT_STORE", "COLUMNS")}
    env.update(PLAIT_HOME=str(tmp_path / "home"), BUILD_DIR=str(tmp_path / "build"))
    return env


def test_the_build_example_builds_in_parallel_like_make(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = plait_command("run", EXAMPLES / "build.yaml", "--json", env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    summary = events[-1]
    assert summary["event"] == "run_summary"
    assert summary["tasks"] == {"succeeded": 12}
    assert summary["parallelism"] > 1.5, "the fetches and compiles did not overlap"
    build = tmp_path / "build"
    assert (build / "bin" / "app").read_text().count("return") == 3
    with tarfile.open(build / "dist" / "app.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["bin/app", "dist/README"]
    running = 0
    most_compiling = 0
    for event in events:  # the "cc" pool lets two compiles run at once, never three
        if event["event"] in ("task_started", "task_succeeded") and event["task_id"].startswith(
            "compile-"
        ):
            running += 1 if event["event"] == "task_started" else -1
            most_compiling = max(most_compiling, running)
    assert most_compiling == 2


def test_the_approval_example_pauses_and_is_resumed_from_the_command_line(
    cli_env: dict[str, str],
) -> None:
    first = plait_command("run", EXAMPLES / "approval.yaml", env=cli_env)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "approve waits for an answer: Publish this release?" in first.stdout
    run_id = first.stdout.splitlines()[-1].removeprefix("continue with: plait resume ")
    command = next(shlex.split(line) for line in first.stdout.splitlines() if "--input" in line)
    assert command == ["plait", "resume", run_id, "--input", 'approve={"approved": true}']
    refused = plait_command(
        "resume", run_id, "--input", 'approve={"approved": true, "channel": "nightly"}', env=cli_env
    )
    assert refused.returncode == 2
    assert "'nightly' is not one of ['stable', 'beta']" in refused.stderr
    second = plait_command(
        "resume", run_id, "--input", 'approve={"approved": true, "channel": "beta"}', env=cli_env
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"✓ run {run_id} (release) succeeded · 5 succeeded" in second.stdout
    outputs = plait.get_run(run_id, store=f"sqlite://{cli_env['PLAIT_HOME']}/plait.db").outputs
    assert outputs["publish"] == "published 1.4.0 to beta (3 fixes, 1 feature)"
    assert outputs["announce"] == "announced: " + json.dumps(outputs["publish"])


def test_the_pipeline_example_runs_through_the_command_line_with_the_live_view(
    cli_env: dict[str, str],
) -> None:
    """On a terminal (a pseudo-terminal here) ``plait run`` draws the live view."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "run", f"{EXAMPLES / 'pipeline.py'}:wf", "-c", "4"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=cli_env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=30) == 0
    screen = b"".join(chunks).decode()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "\x1b[" in screen, "no terminal codes: the live view was not drawn"
    assert "0/5 tasks" in text and "5/5 tasks" in text
    assert "▶ fetch_orders" in text
    assert "↻ upload_report attempt 1 failed, retrying in" in text
    assert re.search(r"✓ run \w+ \(sales-report\) succeeded · 5 succeeded", text)
    assert re.search(r"makespan \d\.\d\ds · task time .* critical path .* \(3 tasks\)", text)


def test_the_pages_example_maps_fetch_over_the_pages_and_aggregates_19_of_20() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "pages.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "aggregate: {'pages': 19, 'bytes': 750, 'missing': ['parse[13]']}" in out
    assert "alert: paged the on-call" in out
    assert "fetch[13]: failed TimeoutError: https://example.com/page/13 did not answer" in out

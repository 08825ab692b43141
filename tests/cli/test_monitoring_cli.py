"""``plait run --trace`` and ``--metrics-port``, in a process of their own each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import plait

FLOW = """
import urllib.request

import plait

wf = plait.Workflow("watched")


def first() -> int:
    return 1


def scrape(first: int, port: int = 0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return "\\n".join(line for line in text.splitlines() if line.startswith("plait_"))


wf.add_task("first", first)
wf.add_task("scrape", scrape, depends_on=["first"])
"""


def plait_command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    flow = tmp_path / "watched_flow.py"
    flow.write_text(FLOW)
    result = subprocess.run(
        [sys.executable, "-m", "plait.cli", "run", f"{flow}:wf", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PLAIT_STORE": f"sqlite:///{tmp_path / 'plait.db'}", **(env or {})},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_are_served_while_the_run_runs(tmp_path: Path) -> None:
    port = free_port()
    out = plait_command(tmp_path, "--metrics-port", str(port), "--param", f"port={port}")
    run_id = json.loads(out.splitlines()[0])["run_id"]
    scraped = plait.get_run(run_id, store=f"sqlite:///{tmp_path / 'plait.db'}").outputs["scrape"]
    # Scraped by the second task while it ran: the first had succeeded, the second was running.
    assert 'plait_task_attempts_total{result="succeeded",workflow="watched"} 1.0' in scraped
    assert 'plait_tasks_running{workflow="watched"} 1.0' in scraped
    assert 'plait_runs_active{workflow="watched"} 1.0' in scraped


def test_spans_go_to_the_exporter_the_environment_names(tmp_path: Path) -> None:
    port = free_port()
    out = plait_command(
        tmp_path,
        "--trace",
        "--metrics-port",
        str(port),
        "--param",
        f"port={port}",
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "plait-test"},
    )
    names = [line for line in out.splitlines() if '"name": "plait.' in line]
    assert sorted(set(names)) == sorted(
        {
            '    "name": "plait.run watched",',
            '    "name": "plait.task first",',
            '    "name": "plait.task scrape",',
        }
    )
    assert '"service.name": "plait-test"' in out

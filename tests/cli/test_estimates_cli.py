"""``plait estimates TARGET``: each task's estimate, and where it comes from."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

import plait
from plait._files import load_target
from plait.cli._app import cli
from plait.stores import SQLiteStore

FLOW = """
import time

import plait

wf = plait.Workflow("estimated")


def nap(seconds: float) -> None:
    time.sleep(seconds)


wf.add_task("given", nap, params={"seconds": 0.0}, estimate=4.0)
wf.add_task("seen", nap, params={"seconds": 0.05})
wf.add_task("other", print)
"""


def test_estimates_say_where_each_comes_from(tmp_path: Path) -> None:
    flow = tmp_path / "estimated_flow.py"  # a module name of its own: sys.modules keeps it
    flow.write_text(textwrap.dedent(FLOW))
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    SQLiteStore(tmp_path / "plait.db").close()  # a store with no history yet
    target = f"{flow}:wf"
    runner = CliRunner()
    before = runner.invoke(cli, ["estimates", target, "--store", url, "--json"])
    assert before.exit_code == 0, before.output
    sources = [json.loads(line)["source"] for line in before.output.splitlines()]
    assert sources == ["given", "unknown", "unknown"]

    plait.run(load_target(target).workflow, store=url)
    after = runner.invoke(cli, ["estimates", target, "--store", url, "--json"])
    rows = [json.loads(line) for line in after.output.splitlines()]
    assert [(r["task_id"], r["source"], r["samples"]) for r in rows] == [
        ("given", "given", 0),
        ("seen", "learned", 1),
        ("other", "learned", 1),
    ]
    assert rows[1]["seconds"] >= 0.05

    text = runner.invoke(cli, ["estimates", target, "--store", url])
    assert text.exit_code == 0, text.output
    assert "2 learned · 1 given · 0 unknown" in text.output

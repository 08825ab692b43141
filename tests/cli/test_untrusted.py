"""The command line and data it did not write: a store is data, never code or markup.

Runs in a shared store can be made (or rewritten) by anyone who can write to it. Their strings are
shown as text -- never as rich markup, never as terminal control sequences -- and their outputs
are never loaded with a serializer the store names.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plait
from plait.cli._app import cli
from plait.stores import SQLiteStore


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go to an SQLite store under tmp_path, never to ~/.plait."""
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLAIT_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


def plait_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def db(home: Path) -> Path:
    return home / "plait.db"


# -- pickle -------------------------------------------------------------------------------------


class _Payload:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (str(self.marker), os.O_CREAT | os.O_WRONLY))


def test_status_refuses_a_row_rewritten_to_say_pickle_and_runs_no_code(home: Path) -> None:
    wf = plait.Workflow("data")
    wf.add_task("make", lambda: 1)
    with SQLiteStore(db(home)) as store:
        plait.run(wf, store=store, run_id="hostile")
    marker = home / "code-ran"
    with sqlite3.connect(db(home)) as conn:
        (config,) = conn.execute("SELECT config FROM runs").fetchone()
        conn.execute(
            "UPDATE runs SET config = ?",
            (json.dumps({**json.loads(config), "serializer": "pickle"}),),
        )
        conn.execute("UPDATE tasks SET output = ?", (pickle.dumps(_Payload(marker)),))
    result = plait_cli("status", "hostile")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: run 'hostile' stores its outputs with pickle")
    assert "--unsafe-pickle" in result.stderr
    assert not marker.exists()


def test_unsafe_pickle_loads_a_pickled_run_and_resumes_it(home: Path, tmp_path: Path) -> None:
    flow = tmp_path / "objects_flow.py"
    flow.write_text(
        "import plait\n"
        "wf = plait.Workflow('objects')\n"
        "wf.add_task('make', lambda: {1, 2})\n"
        "wf.add_task('gate', lambda make: sorted(make), depends_on=['make'],\n"
        "            pause=plait.Pause('go?'))\n"
    )
    ran = plait_cli("run", f"{flow}:wf", "--run-id", "p1", "--unsafe-pickle", "-q")
    assert ran.exit_code == 3, ran.output
    refused = plait_cli("status", "p1")
    assert refused.exit_code == 2
    assert "--unsafe-pickle" in refused.stderr
    shown = plait_cli("status", "p1", "--unsafe-pickle")
    assert shown.exit_code == 0
    assert "gate waits: go?" in shown.stdout
    resumed = plait_cli("resume", "p1", "--input", "gate=true", "--unsafe-pickle", "-q")
    assert resumed.exit_code == 0, resumed.output
    loaded = plait.get_run("p1", store=f"sqlite://{db(home)}", serializer=plait.PickleSerializer())
    assert loaded.outputs == {"make": {1, 2}, "gate": [1, 2]}


@pytest.mark.parametrize("command", ["run", "resume", "status"])
def test_unsafe_pickle_says_what_it_risks(command: str) -> None:
    text = " ".join(plait_cli(command, "--help").stdout.split())
    assert "--unsafe-pickle" in text
    assert "UNSAFE: loading a pickle runs whatever code its writer put in it" in text
    assert "Only for a store nobody else can write to." in text

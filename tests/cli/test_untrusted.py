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


# -- markup -------------------------------------------------------------------------------------

MARKUP = "[/][bold]x[/bold] :smile:"
# Task ids may not hold brackets (reserved for mapped instances, "convert[3]"): the markup left
# to them is rich's emoji codes.
ID_MARKUP = ":smile: :x: <b>x</b>"


def _markup_run(home: Path) -> None:
    """A paused run whose ids, names, prompt and error are all markup, made from Python."""

    def fail() -> None:
        raise RuntimeError(f"boom {MARKUP}")

    wf = plait.Workflow(f"wf {MARKUP}")
    wf.add_task(f"t {ID_MARKUP}", fail)
    wf.add_task(f"gate {ID_MARKUP}", None, pause=plait.Pause(f"ok {MARKUP}?"))
    with SQLiteStore(db(home)) as store:
        plait.run(wf, store=store, run_id=f"r {MARKUP}")


def test_runs_status_and_inputs_show_markup_in_a_run_as_text(home: Path) -> None:
    _markup_run(home)
    runs = plait_cli("runs")
    assert runs.exit_code == 0
    assert runs.stdout.splitlines()[1].split() == [
        *f"r {MARKUP}".split(),
        *f"wf {MARKUP}".split(),
        "paused",
        *runs.stdout.splitlines()[1].split()[-3:],  # started (date, time) and took
    ]
    status = plait_cli("status", f"r {MARKUP}")
    assert status.exit_code == 0
    assert status.stdout.startswith(f"run r {MARKUP} (wf {MARKUP}) paused")
    rows = [line.split() for line in status.stdout.splitlines()]
    assert [*f"t {ID_MARKUP}".split(), "failed"] in [row[:5] for row in rows]
    assert f"RuntimeError: boom {MARKUP}" in status.stdout
    assert f"⏸ gate {ID_MARKUP} waits: ok {MARKUP}?" in status.stdout
    inputs = plait_cli("inputs")
    assert inputs.exit_code == 0
    first = inputs.stdout.splitlines()[0]
    assert first == f"r {MARKUP} (wf {MARKUP}) · gate {ID_MARKUP}: ok {MARKUP}?"


def test_a_question_with_markup_is_asked_as_text() -> None:
    from plait.cli._asking import ask  # noqa: PLC0415
    from plait.cli._terminal import TextConsole  # noqa: PLC0415

    console = TextConsole(width=100, record=True)
    question = plait.Question(task_id=f"t {MARKUP}", prompt=f"p {MARKUP}", key=f"k {MARKUP}")
    prompts: list[str] = []
    answer = ask(question, console, read=lambda prompt: prompts.append(prompt) or "42")
    assert answer == 42
    shown = console.export_text()
    assert f"task t {MARKUP} (question k {MARKUP})" in shown
    assert f"p {MARKUP}" in shown
    assert prompts == [f"t {MARKUP}> "]


# -- control characters -------------------------------------------------------------------------

# (rich itself drops BEL, backspace, CR, VT and FF from text: they are checked apart)
ESCAPES = "\x1b[31mred\x1b[0m \x1b]0;pwned\x1b\\ \x9b2J \x00\x7f"
SHOWN = r"\x1b[31mred\x1b[0m \x1b]0;pwned\x1b\ \x9b2J \x00\x7f"
DROPPED = "\x07\x08\r\x0b\x0c"


def test_escape_sequences_from_a_shell_tasks_stderr_are_shown_as_text(
    home: Path, tmp_path: Path
) -> None:
    (tmp_path / "noisy.txt").write_text(ESCAPES + DROPPED + "\n")
    flow = tmp_path / "noisy.yaml"
    flow.write_text("name: noisy\ntasks:\n  - id: noisy\n    shell: cat noisy.txt >&2; exit 3\n")
    ran = plait_cli("run", flow, "--run-id", "n1")
    status = plait_cli("status", "n1")
    runs = plait_cli("runs")
    for result in (ran, status, runs):
        assert not set("\x1b\x9b\x00\x7f" + DROPPED) & set(result.output)
    assert SHOWN in ran.stdout  # the failure's last line, as it happened and in the summary
    assert SHOWN in status.stdout


def test_control_characters_are_escaped_wherever_they_are_printed_but_styles_stay() -> None:
    from rich.panel import Panel  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from plait.cli._terminal import TextConsole, printable  # noqa: PLC0415

    assert printable("a\tb\nc\x00\x1b\x85") == "a\tb\nc\\x00\\x1b\\x85"
    console = TextConsole(width=120, record=True, force_terminal=True, color_system="standard")
    table = Table()
    table.add_column("cell")
    table.add_row(ESCAPES + DROPPED)
    with console.capture() as captured:
        console.print(Text(ESCAPES, style="red"), ESCAPES, Panel(ESCAPES, title=Text(ESCAPES)))
        console.print(table)
    out = captured.get()
    assert out.count(SHOWN) == 5  # whole: tables and panels lay out the escaped text
    assert not set("\x9b\x00\x7f" + DROPPED) & set(out)
    assert "\x1b]" not in out and "\x1b\\" not in out and "\x1b[0m \x1b" not in out
    assert "\x1b[31m" in out  # plait's own styles still reach the terminal


# -- deep values --------------------------------------------------------------------------------


def test_an_input_nested_100000_levels_deep_is_a_usage_error(home: Path) -> None:
    wf = plait.Workflow("gate")
    wf.add_task("gate", None, pause=plait.Pause("go?"))
    with SQLiteStore(db(home)) as store:
        plait.run(wf, store=store, run_id="g1")
    (home / "gate.py").write_text(
        "import plait\nwf = plait.Workflow('gate')\nwf.add_task('gate', None, "
        "pause=plait.Pause('go?'))\n"
    )
    deep = "[" * 100_000 + "]" * 100_000
    for value in (deep, f"@{home / 'deep.json'}"):
        (home / "deep.json").write_text(deep)
        result = plait_cli(
            "resume", "g1", "--target", f"{home / 'gate.py'}:wf", "--input", f"gate={value}"
        )
        assert result.exit_code == 2
        assert "Traceback" not in result.output
        assert (
            "Invalid value for --input: gate: the answer is nested deeper than plait can read "
            "(about a thousand levels)"
        ) in " ".join(result.stderr.split())
    with SQLiteStore(db(home)) as store:
        assert store.get_run("g1").status is plait.RunStatus.PAUSED


def test_a_param_nested_100000_levels_deep_is_a_usage_error(tmp_path: Path) -> None:
    flow = tmp_path / "p.yaml"
    flow.write_text("name: p\ntasks:\n  - id: a\n    shell: 'true'\n")
    result = plait_cli("run", flow, "--param", "x=" + "[" * 100_000 + "]" * 100_000)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "is nested deeper than plait can read (about a thousand levels)" in " ".join(
        result.stderr.split()
    )

"""Shell tasks' errors (plait._shell_errors): a failed command's message names the task, the
command and how it ended, and shows the lines of its output that tell what went wrong."""

from __future__ import annotations

import pytest
from _shell_runs import error_of, run_one

import plait
from plait import ShellTask


def test_a_non_zero_exit_fails_the_task_with_the_status_and_stderr() -> None:
    result = run_one(ShellTask("echo partial; echo 'no such table' >&2; exit 3"))
    error = error_of(result)
    assert isinstance(error, plait.ShellCommandError)
    assert isinstance(error, RuntimeError)
    assert str(error) == (
        "task 'sh': command \"echo partial; echo 'no such table' >&2; exit 3\" exited with "
        "status 3; stderr:\n  no such table"
    )
    assert (error.returncode, error.stdout, error.stderr) == (3, "partial\n", "no such table\n")
    assert error.command == "echo partial; echo 'no such table' >&2; exit 3"


def test_the_error_shows_the_last_10_lines_of_stderr() -> None:
    result = run_one(ShellTask("for i in $(seq 1 15); do echo line$i >&2; done; exit 1"))
    message = str(error_of(result))
    assert message.endswith(
        "exited with status 1; last 10 lines of stderr:\n"
        + "\n".join(f"  line{i}" for i in range(6, 16))
    )


def test_the_error_shows_the_lines_that_look_like_errors_above_the_last_10() -> None:
    """A compiler's error line comes first, then many lines of context: both are shown."""
    command = (
        "echo 'In file main.c:' >&2; echo 'main.c:3: error: expected ;' >&2; "
        'for i in $(seq 1 15); do echo "  note $i" >&2; done; exit 1'
    )
    message = str(error_of(run_one(ShellTask(command))))
    assert message.split("exited with status 1; ", 1)[1] == (
        "stderr, its first lines that look like errors and its last 10:\n"
        "  ...\n"
        "  main.c:3: error: expected ;\n"
        "  ...\n" + "\n".join(f"    note {i}" for i in range(6, 16))
    )


def test_the_error_shows_stdout_when_stderr_is_empty() -> None:
    result = run_one(ShellTask(["sh", "-c", "echo 'build failed'; exit 2"]))
    with pytest.raises(plait.ShellCommandError, match=r"status 2; stdout:\n  build failed$"):
        raise error_of(result)


def test_a_silent_failure_says_so() -> None:
    result = run_one(ShellTask("exit 4"))
    with pytest.raises(
        plait.ShellCommandError,
        match=r"^task 'sh': command 'exit 4' exited with status 4 \(and wrote nothing\)$",
    ):
        raise error_of(result)


def test_death_by_a_signal_names_the_signal() -> None:
    result = run_one(ShellTask("echo dying >&2; kill -TERM $$"))
    error = error_of(result)
    assert isinstance(error, plait.ShellCommandError)
    assert error.returncode == -15
    assert "command 'echo dying >&2; kill -TERM $$' was killed by SIGTERM; stderr:\n  dying" in (
        str(error)
    )

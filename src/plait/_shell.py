"""Shell tasks: run a command as a task, in its own process group, and leave nothing behind.

``ShellTask(command, cwd=..., env=...)`` is a task function like any other::

    wf.add_task("build", plait.ShellTask("make -j4 all", cwd="src"), depends_on=["fetch"])

It is async, so it runs on the event loop and holds no worker thread while the command runs.

The contract:

- **Command.** A string runs with ``/bin/sh -c``, so pipes, ``&&`` and ``$VARS`` work; a list is
  the argv itself, run without a shell (nothing is quoted or expanded). stdin is ``/dev/null``.
- **Where.** In ``cwd`` (default: the current directory of the process running plait).
- **Environment.** The environment of the process running plait, then ``env`` on top, then
  plait's own variables, which win:

  - ``PLAIT_RUN_ID``, ``PLAIT_TASK_ID``, ``PLAIT_ATTEMPT`` (1 for the first attempt);
  - ``PLAIT_INPUT_<ID>`` for each dependency, holding its output **as JSON**. ``<ID>`` is the
    dependency's id upper-cased, with every character other than ``A-Z`` and ``0-9`` replaced by
    ``_`` (``fetch-data`` gives ``PLAIT_INPUT_FETCH_DATA``). A string output is a JSON string
    too (``"hello"``, quotes included), so every input is read the same way
    (``jq -r . <<<"$PLAIT_INPUT_FETCH"``, ``json.loads(os.environ[...])``) and a string ``"42"``
    can be told from the number ``42``. Two dependencies whose ids give the same name are an
    error; so is an output that is not JSON data. An environment variable holds at most
    128 KiB on Linux: pass bigger data through files;
  - ``PLAIT_ANSWER``, as JSON, when the task has a ``pause`` and it was answered;
  - ``PLAIT_ITEM``, as JSON, for an instance of a mapped task (``map_over``): its one item.
    ``PLAIT_INPUT_<ID>`` of the dependency it maps over holds that item too, not the list.

- **Output.** The task's output is what the command wrote to stdout, decoded as UTF-8 (bad bytes
  replaced), with the trailing newline stripped. Of stdout and of stderr, only the last 64 KiB
  are kept: a command with more to say should write a file.
- **Log.** Both streams also go, line by line as they come, into the attempt's log (see
  ``plait.get_logs`` and ``plait logs``), bounded by ``max_log_bytes`` rather than 64 KiB.
- **Failure.** A non-zero exit status, or death by a signal, raises :class:`ShellCommandError`;
  its message names the task, the command and the status (or the signal), and shows the lines
  of stderr (of stdout when stderr is empty) that matter: the first few that look like errors
  (``error``, ``fatal``, ``undefined reference``...) wherever they are, and the last 10. Like
  any error it is retried as the task's retry policy says.
- **Process group.** The command runs in a new session, so it is the leader of its own process
  group: Ctrl-C at a terminal reaches plait, not the command, and plait decides what stops.
  When the task is cancelled (its timeout, a critical failure elsewhere, Ctrl-C), the whole
  group gets ``SIGTERM``; whatever is still there when the command and its output pipes have
  closed, or after 2 seconds, gets ``SIGKILL``; the command is reaped; only then does the
  cancellation go on. When the command exits by itself, anything it left running in its group
  is stopped the same way. Either way the task leaves no process behind (except one that left
  the group on purpose, e.g. with ``setsid``).
- **Death of plait.** The group is killed with ``SIGKILL`` when plait's process dies, even by
  ``kill -9``, by a watchdog process (see ``_groups.py``); a second Ctrl-C kills it at once.

This module is the task itself: its arguments and the environment it builds. Its process --
started, captured and cleared -- is :mod:`plait._shell_process`; which lines of its output an
error shows, :mod:`plait._shell_errors`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._context import Context
from ._exceptions import InvalidOptionError, ShellCommandError
from ._public import publish_exports
from ._shell_errors import failure_message
from ._shell_process import run_in_group

__all__ = ["ShellTask"]

_NOT_NAME = re.compile(r"[^A-Z0-9]")


def input_variable(task_id: str) -> str:
    """The environment variable that holds dependency ``task_id``'s output."""
    return "PLAIT_INPUT_" + _NOT_NAME.sub("_", task_id.upper())


class ShellTask:
    """A task that runs a shell command; its output is the command's stdout.

    See the module docstring for the whole contract: the environment (dependency outputs as
    ``PLAIT_INPUT_<ID>`` JSON), the output, errors, and how cancellation stops the process group.

    Args:
        command: a string, run with ``/bin/sh -c``; or a list of strings, run as the argv.
        cwd: the directory to run in (default: the current directory).
        env: environment variables to set on top of the current environment.

    Two shell tasks with the same command, ``cwd`` and ``env`` are equal.

    Raises:
        InvalidOptionError: an empty command, or an ``env`` that does not map strings to strings.
    """

    __slots__ = ("__weakref__", "command", "cwd", "env")

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(command, str):
            if not command.strip():
                raise InvalidOptionError("a ShellTask needs a command, not an empty string")
            self.command: str | tuple[str, ...] = command
        else:
            argv = tuple(command)
            if not argv or not all(isinstance(arg, str) for arg in argv):
                raise InvalidOptionError(
                    f"a ShellTask command must be a string or a non-empty list of strings, "
                    f"not {command!r}"
                )
            self.command = argv
        self.cwd = None if cwd is None else Path(cwd)
        env = dict(env or {})
        for name, value in env.items():
            if not (isinstance(name, str) and name and isinstance(value, str)):
                raise InvalidOptionError(
                    f"a ShellTask env maps names to strings; {name!r}: {value!r} is not that"
                )
        self.env: Mapping[str, str] = MappingProxyType(env)

    @property
    def argv(self) -> list[str]:
        """What is executed: ``['/bin/sh', '-c', command]`` for a string, the list otherwise."""
        if isinstance(self.command, str):
            return ["/bin/sh", "-c", self.command]
        return list(self.command)

    def _key(self) -> tuple[Any, ...]:
        return (self.command, self.cwd, tuple(sorted(self.env.items())))

    @property
    def plait_name(self) -> str:
        """How a run's definition names this task's work, so that a resume notices a changed
        command (every ShellTask is the same class)."""
        return f"shell {self!r}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its arguments (a MappingProxyType does not pickle), so a shell task can be
        # shipped to a process or Dask worker: it runs on that worker's host.
        return (_shell_task, (self.command, self.cwd, dict(self.env)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShellTask):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        command = self.command if isinstance(self.command, str) else list(self.command)
        cwd = "" if self.cwd is None else f", cwd={str(self.cwd)!r}"
        env = "" if not self.env else f", env={dict(self.env)!r}"
        return f"ShellTask({command!r}{cwd}{env})"

    async def __call__(self, ctx: Context, **inputs: Any) -> str:
        """Run the command; return its stdout (see the module docstring).

        Raises:
            ShellCommandError: the command exited with a non-zero status or was killed.
            InvalidOptionError: two dependency ids map to the same variable name.
            TypeError: a dependency's output (or the answer) is not JSON data.
            OSError: the command could not be started (e.g. no such program, or no ``cwd``).
        """
        env = self._environment(ctx, inputs)
        finished = await run_in_group(self.argv, cwd=self.cwd, env=env, run_id=ctx.run_id)
        if finished.returncode != 0:
            raise ShellCommandError(
                failure_message(ctx.task_id, self._shown_command(), finished),
                command=self._command_text(),
                returncode=finished.returncode,
                stdout=finished.stdout,
                stderr=finished.stderr,
            )
        return finished.stdout.removesuffix("\n")

    def _environment(self, ctx: Context, inputs: Mapping[str, Any]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env["PLAIT_RUN_ID"] = ctx.run_id
        env["PLAIT_TASK_ID"] = ctx.task_id
        env["PLAIT_ATTEMPT"] = str(ctx.attempt)
        named: dict[str, str] = {}
        for task_id, output in inputs.items():
            name = input_variable(task_id)
            if name in named:
                raise InvalidOptionError(
                    f"task {ctx.task_id!r}: dependencies {named[name]!r} and {task_id!r} would "
                    f"both be passed as ${name}; rename one of them"
                )
            named[name] = task_id
            env[name] = _as_json(output, f"the output of dependency {task_id!r}", ctx.task_id)
        if ctx.map_over is not None:
            env["PLAIT_ITEM"] = _as_json(inputs[ctx.map_over], "its item", ctx.task_id)
        answer = ctx.input
        if answer is not None:
            env["PLAIT_ANSWER"] = _as_json(answer, "the answer", ctx.task_id)
        return env

    def _command_text(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def _shown_command(self) -> str:
        text = self._command_text()
        return text if len(text) <= 80 else text[:77] + "..."


def _shell_task(command: str | tuple[str, ...], cwd: Path | None, env: dict[str, str]) -> ShellTask:
    """A ShellTask again, from what ``ShellTask.__reduce__`` kept."""
    return ShellTask(command, cwd=cwd, env=env)


def _pydantic_data(value: Any) -> Any:
    """A pydantic model (e.g. an answer checked by a model schema) as JSON data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_json(value: Any, what: str, task_id: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_pydantic_data)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"task {task_id!r}: {what} cannot be passed to the command as JSON ({error}); "
            "return JSON data (dicts, lists, strings, numbers, booleans, None)"
        ) from None


publish_exports(globals())  # plait.X, not plait._shell.X: see plait._public

"""The ``plait`` command group, with every command added to it.

The commands live in a module per concept: ``run`` in ``_run`` and ``resume`` in ``_resume``
(the run they hold in this process in ``_session``; the workflow they load and its params in
``_loading``); ``validate`` and ``graph`` in ``_validate``; ``runs``, ``status``, ``inputs``,
``report`` and ``logs`` in ``_inspect``; ``answer`` and ``cancel`` in ``_actions``;
``estimates`` in ``_estimates``; ``serve`` in ``_serve``. The options they share are in
``_options``, and what else they share (exit codes, the console, the one-line error, opening
the store) in ``_common``.

Exit codes: 0 the run succeeded (or the command did its work), 1 the run failed, 2 a usage or
validation error (one red line, no traceback), 3 the run paused for input, 4 plait lost the run
(another process took it over, or its store stayed unavailable), 130 / 143 / 129 interrupted by
SIGINT (Ctrl-C) / SIGTERM / SIGHUP: the run was stopped and recorded cancelled first (see
``plait._signals``; a second signal stops at once).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from .._exceptions import PlaitError, WorkflowFileError
from ._actions import answer, cancel
from ._common import _exit_code, _fail, cli_words
from ._estimates import estimates
from ._inspect import inputs, logs, report, runs, status
from ._resume import resume
from ._run import run
from ._serve import serve
from ._validate import graph, validate

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["cli"]


def _raise_interrupted(signum: int, frame: object) -> None:
    from .._signals import Interrupted

    raise Interrupted(signum)


class _Plait(click.Group):
    """The command group: plait's own errors become one red line and exit code 2. SIGTERM and
    SIGHUP interrupt a command as Ctrl-C does (unless they were ignored when it started); a
    run in progress is stopped and recorded cancelled first."""

    def invoke(self, ctx: click.Context) -> Any:
        installed = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is signal.SIG_DFL:
                    installed[signum] = signal.signal(signum, _raise_interrupted)
        try:
            return super().invoke(ctx)
        except WorkflowFileError as error:  # every problem of a file, each on its own line
            _fail(*(cli_words(str(problem)) for problem in error.errors))
        except PlaitError as error:
            _fail(cli_words(str(error)))
        except KeyboardInterrupt as interrupt:
            from rich.text import Text

            from ._terminal import TextConsole

            TextConsole(stderr=True).print(Text("interrupted", style="red"))
            raise click.exceptions.Exit(_exit_code(interrupt)) from None
        finally:
            for signum, previous in installed.items():
                signal.signal(signum, previous)


_MAIN_HELP = """Run workflows, watch them, answer their questions, and look back at them.

\b
TARGET names a workflow: a YAML or JSON file (flow.yaml, flow.json), a Python
file and variable (path/flow.py:wf) or a module and variable (pkg.module:wf).
Runs are kept in --store URL, else $PLAIT_STORE, else $PLAIT_HOME/plait.db
(PLAIT_HOME defaults to ~/.plait).
"""

_MAIN_EPILOG = """\b
Exit codes:
  0    the run succeeded (or the command did what it was asked)
  1    the run failed (a task failed, was skipped or cancelled)
  2    usage or validation error: bad option, invalid workflow, bad answer
  3    the run paused: tasks wait for answers (see `plait inputs`)
  4    plait lost the run: another process took it over, or its store
       stayed unavailable; nothing more was started or recorded
  130  interrupted with Ctrl-C: running tasks were cancelled, the run
       recorded cancelled (143 for SIGTERM, 129 for SIGHUP; a second
       signal stops at once)

\b
Example:
  plait run examples/build.yaml --max-concurrency 4
"""


@click.group(cls=_Plait, help=_MAIN_HELP, epilog=_MAIN_EPILOG)
@click.version_option(package_name="plait", prog_name="plait")
def cli() -> None:
    """The ``plait`` command group."""


for _command in (
    run,
    resume,
    validate,
    graph,
    runs,
    status,
    inputs,
    answer,
    cancel,
    report,
    logs,
    estimates,
    serve,
):
    cli.add_command(_command)

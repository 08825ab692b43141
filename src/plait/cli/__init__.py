"""plait's command line: ``plait run flow.yaml``, ``plait resume RUN_ID``, ``plait runs``, ...

The command group lives in :mod:`plait.cli._app`, each group of commands in a module of its own
(the layout is in its docstring); the watchers that show a run as it goes in
:mod:`plait.cli._watcher` (the live view :mod:`plait.cli._live`, the log and JSON lines
:mod:`plait.cli._lines`), how a run ended in :mod:`plait.cli._outcome`, the commands a person
copies in :mod:`plait.cli._commands`, a question asked at the terminal in
:mod:`plait.cli._asking`; a stored run's timeline (its attempts, replayed from the store) in
:mod:`plait.cli._timeline`; the figures the summaries and the report show, computed from it, in
:mod:`plait.cli._summary`; task logs as ``plait logs`` prints them in
:mod:`plait.cli._logview`; the console that prints a run's strings as text (no markup, no
control sequences) in :mod:`plait.cli._terminal`. They need the ``cli`` extra (click, rich and
PyYAML); without it, :func:`main` says how to install it and exits with status 2.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["main"]

MISSING_EXTRA = "the plait command line needs its extra: pip install 'plait[cli]'"


def main() -> None:
    """Run the ``plait`` command (the console script, and ``python -m plait.cli``)."""
    # Checked here so that a missing extra gets one clear line; found, not imported: a command
    # imports only what it uses (YAML for workflow files, rich for output), to start fast.
    if any(importlib.util.find_spec(name) is None for name in ("click", "rich", "yaml")):
        print(MISSING_EXTRA, file=sys.stderr)
        sys.exit(2)
    from ._app import cli  # noqa: PLC0415 - imports click

    cli(prog_name="plait")

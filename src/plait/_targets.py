"""Where a run's workflow comes from: the *target* kept with the run, and how it is trusted.

A run's record holds its definition, not its code. So that ``plait resume RUN`` can find the
code again, a run records a target -- ``package.module:attribute`` (or a file, for runs started
by ``plait run``): the one given as ``plait.run(..., target=...)``, else the module and attribute
that hold the workflow when one of its tasks' modules does (:func:`target_of`).

The stored target is a hint, never an order: a store is data, and whoever can write to it must
not be able to make ``plait resume`` import code of their choosing. :func:`trusted_target`
accepts a stored target only when it resolves inside the current directory or a directory on
``PLAIT_PATH`` (``os.pathsep``-separated); otherwise the CLI shows it and asks for ``--target``.

Importing a target must not start a run: a module with an unguarded ``plait.run(...)`` at its
top level would run its workflow while ``plait resume`` (or ``plait run``) loads it.
:func:`importing` marks such an import, and :func:`refuse_run_while_importing` (called by
``plait.run``) stops it with an error that says how to guard the call.

A script's module is named as an import would name it (:func:`main_module_name`): ``python
flow.py`` runs ``flow`` as ``__main__``, but the run's definition (and its target) must say
``flow``, or the run could not be resumed by code that imports ``flow``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._exceptions import WorkflowFileError

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = [
    "importing",
    "main_module_name",
    "module_name_of",
    "refuse_run_while_importing",
    "target_of",
    "trusted_target",
]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")

_local = threading.local()


@functools.cache
def main_module_name() -> str:
    """The name under which the ``__main__`` module would be imported: a function's identity
    must not depend on whether its module ran as a script (``python flow.py``) or was imported
    (``import flow``), or a run started one way could not be resumed the other.

    ``python -m pkg.flow`` says so in ``__spec__``; ``python flow.py`` does not, so the script's
    path is read relative to the import path (``sys.path``): the shortest dotted name wins, as
    the one an ``import`` would use. A script outside the import path, or an interactive
    session, stays ``__main__``.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name.removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return "__main__"
    return module_name_of(path) or "__main__"


def module_name_of(path: str) -> str | None:
    """The dotted name that imports the Python file ``path`` from a directory on ``sys.path``
    (the shortest, when several do), or None if none does."""
    file = os.path.realpath(path)
    best: str | None = None
    for entry in sys.path:
        root = os.path.realpath(entry or os.getcwd())
        relative = os.path.relpath(file, root)
        if relative.startswith(os.pardir) or os.path.isabs(relative):
            continue
        parts = relative[: -len(".py")].split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(part.isidentifier() for part in parts):
            name = ".".join(parts)
            if best is None or name.count(".") < best.count("."):
                best = name
    return best


def target_of(workflow: Workflow) -> str | None:
    """``module:attribute`` of a module-level variable holding ``workflow``, looked for in the
    modules of its tasks' functions (a script's as the name an import would give it); None
    when there is none."""
    seen: set[str] = set()
    for fn in workflow.graph().fns:  # not workflow.tasks: that makes a TaskSpec per task
        module_name = getattr(fn, "__module__", None)
        if not isinstance(module_name, str) or module_name in seen:
            continue
        seen.add(module_name)
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for attribute, value in vars(module).items():
            if value is workflow and not attribute.startswith("_"):
                if module_name == "__main__":
                    module_name = main_module_name()
                    if module_name == "__main__":  # a session, or a script off the path
                        return None
                return f"{module_name}:{attribute}"
    return None


def _plait_path() -> list[Path]:
    return [Path(entry) for entry in os.environ.get("PLAIT_PATH", "").split(os.pathsep) if entry]


def trusted_target(target: str) -> tuple[str, Path] | None:
    """Where the stored ``target`` resolves, if inside the current directory or a directory on
    ``PLAIT_PATH``: (the target to load, the directory it was found in); else None.

    A file target (``/abs/flow.py:wf``, ``flow.yaml``) must lie in one of those directories; a
    module target (``pkg.flows:wf``) must be a module or package found in one of them.
    """
    roots = [Path.cwd().resolve(), *(p.resolve() for p in _plait_path())]
    location, colon, _ = target.rpartition(":")
    is_file = target.lower().endswith(_FILE_SUFFIXES) or (
        colon and (location.lower().endswith(".py") or "/" in location or os.sep in location)
    )
    if is_file:
        path = Path(location if colon and not target.lower().endswith(_FILE_SUFFIXES) else target)
        resolved = path.resolve()
        for root in roots:
            if resolved.is_relative_to(root) and resolved.is_file():
                return target, root
        return None
    if not (colon and location):
        return None
    top = location.split(".")[0]
    if not top.isidentifier():
        return None
    for root in roots:
        if (root / top / "__init__.py").is_file() or (root / f"{top}.py").is_file():
            return target, root
    return None


@contextlib.contextmanager
def importing(target: str) -> Iterator[None]:
    """Mark this thread as importing ``target``: a run started meanwhile is refused."""
    outer = getattr(_local, "target", None)
    _local.target = target
    try:
        yield
    finally:
        _local.target = outer


def refuse_run_while_importing() -> None:
    """Raise if this thread is importing a target: the module starts a run at import time.

    Raises:
        WorkflowFileError: it is.
    """
    target = getattr(_local, "target", None)
    if target is not None:
        raise WorkflowFileError(
            "importing it started a run (a plait.run(...) at the top level of the module); "
            'guard it with `if __name__ == "__main__":` so that it runs only as a script',
            file=target,
        )

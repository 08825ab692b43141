"""Loading a workflow file that a test wrote, as a module, without leaving a trace.

A test that writes ``flow.py`` and imports it through ``sys.path`` leaves the module in
``sys.modules`` under a name other tests may use too; :func:`module_from_file` neither reads nor
changes ``sys.path`` or ``sys.modules``. The module is named after its file, as the ``plait``
command and a child process that imports the file name it, so its functions have the same
``module:name`` (and a run the same definition) here as there.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["module_from_file"]


def module_from_file(path: Path) -> ModuleType:
    """The module in ``path``, named after its file, imported afresh."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

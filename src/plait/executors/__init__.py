"""Executors: where task functions run (threads, the event loop's thread, processes, Dask).

See :mod:`plait.executors._base` for the interface a custom executor implements.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .._public import publish
from ._base import Executor, Job, Outcome, RemoteError, TaskCall
from ._dask import DaskExecutor, DaskOutput
from ._inline import InlineExecutor
from ._remote import RemoteOutput
from ._shipping import CancelFlag, run_call
from ._thread import ThreadExecutor

if TYPE_CHECKING:
    from ._process import ProcessExecutor, ProcessStatistics

__all__ = [
    "CancelFlag",
    "DaskExecutor",
    "DaskOutput",
    "Executor",
    "InlineExecutor",
    "Job",
    "Outcome",
    "ProcessExecutor",
    "ProcessStatistics",
    "RemoteError",
    "RemoteOutput",
    "TaskCall",
    "ThreadExecutor",
    "run_call",
]

#: Executors loaded on first use (their modules import what only they need).
_LAZY = {"ProcessExecutor": "._process", "ProcessStatistics": "._process"}

publish(globals(), [name for name in __all__ if name not in _LAZY])  # plait.executors.X


def __getattr__(name: str) -> Any:
    """Import the lazily loaded executor ``name`` from its module, once."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'plait.executors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    publish(globals(), [name])
    return value

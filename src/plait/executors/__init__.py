"""Executors: where task functions run (threads, the event loop's thread, processes, Dask).

See :mod:`plait.executors._base` for the interface a custom executor implements.
"""

from .._public import publish
from ._base import Executor, Job, Outcome, RemoteError, TaskCall
from ._dask import DaskExecutor, DaskOutput
from ._inline import InlineExecutor
from ._remote import RemoteOutput
from ._shipping import CancelFlag, run_call
from ._thread import ThreadExecutor

__all__ = [
    "CancelFlag",
    "DaskExecutor",
    "DaskOutput",
    "Executor",
    "InlineExecutor",
    "Job",
    "Outcome",
    "RemoteError",
    "RemoteOutput",
    "TaskCall",
    "ThreadExecutor",
    "run_call",
]

publish(globals(), __all__)  # plait.executors.X, not a private module's path

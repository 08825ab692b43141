"""Executors: where task functions run (threads, the event loop's thread, processes, Dask).

See :mod:`plait.executors._base` for the interface a custom executor implements.
"""

from .._public import publish
from ._base import Executor, Job, Outcome, RemoteError, TaskCall
from ._shipping import CancelFlag, run_call
from ._thread import ThreadExecutor

__all__ = [
    "CancelFlag",
    "Executor",
    "Job",
    "Outcome",
    "RemoteError",
    "TaskCall",
    "ThreadExecutor",
    "run_call",
]

publish(globals(), __all__)  # plait.executors.X, not a private module's path

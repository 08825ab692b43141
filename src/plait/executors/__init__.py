"""Executors: where sync task functions run (threads now; processes and Dask later)."""

from .._public import publish
from ._base import Executor, Job
from ._thread import ThreadExecutor

__all__ = ["Executor", "Job", "ThreadExecutor"]

publish(globals(), __all__)  # plait.executors.X, not a private module's path

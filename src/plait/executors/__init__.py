"""Executors: where sync task functions run (threads now; processes and Dask later)."""

from ._base import Executor, Job
from ._thread import ThreadExecutor

__all__ = ["Executor", "Job", "ThreadExecutor"]

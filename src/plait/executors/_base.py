"""The executor interface: where sync task functions run, away from the event loop.

Async task functions run on the engine's event loop itself. Everything else goes through an
:class:`Executor`, which receives :class:`Job` objects -- one attempt of one task each -- and
must, for every job, call ``job.run()`` (which calls the task function and keeps its outcome; it
never raises) and then ``job.finish()`` (which reports the outcome to the engine). ``finish`` may
return another job: the engine offers it to the worker that just became free, so that a chain of
tasks can run without a hand-off between threads; an executor that cannot use it submits it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

__all__ = ["Executor", "Job"]


class Job(Protocol):
    """One attempt of one task, as an executor sees it."""

    @property
    def abandoned(self) -> bool:
        """Whether the engine has given up on this job (a timeout or cancellation ran out)."""
        ...

    def run(self) -> None:
        """Call the task function in this thread and keep its outcome. Never raises."""
        ...

    def finish(self) -> Job | None:
        """Report the outcome to the engine; may return the next job for this worker."""
        ...


class Executor(ABC):
    """Runs jobs outside the event loop; see the module docstring for the contract."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Run ``job`` (``run`` then ``finish``) as soon as a worker is free. Must not block."""

    def abandon(self, job: Job) -> None:  # noqa: B027 - optional hook
        """The engine stopped waiting for running ``job``; free the capacity it holds.

        Called for an attempt that ran past its timeout or its cancellation grace period. Its
        outcome will be ignored. The default does nothing.
        """

    @abstractmethod
    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the workers once they are idle; with ``wait``, until they have exited."""

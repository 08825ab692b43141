"""What a store raises: every error is a :class:`StoreError`, and one kind may pass.

::

    StoreError                  the store refused an operation, or could not be reached
    ├── RunExistsError          a run with this id is already there
    ├── RunNotFoundError        there is no run with this id (a LookupError too)
    ├── LeaseHeldError          another process owns the run; its lease is live
    ├── LeaseLostError          this process no longer owns the run
    ├── StoreUnavailableError   the store was out of reach or busy: the same call may succeed later
    └── StoreNotFoundError      a store opened with create=False does not exist (a LookupError too)
"""

from __future__ import annotations

from .._exceptions import PlaitError

__all__ = [
    "LeaseHeldError",
    "LeaseLostError",
    "RunExistsError",
    "RunNotFoundError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
]


class StoreError(PlaitError, RuntimeError):
    """The store refused an operation, or could not be reached."""


class RunExistsError(StoreError):
    """A run with this id is already in the store."""


class RunNotFoundError(StoreError, LookupError):
    """The store has no run with this id."""


class LeaseHeldError(StoreError):
    """Another process owns the run, and its lease has not expired."""

    def __init__(self, message: str, owner: str, until: float) -> None:
        super().__init__(message)
        self.owner = owner
        self.until = until


class LeaseLostError(StoreError):
    """This process no longer owns the run: its lease expired (another process may have taken
    it), so nothing this process does reaches the run's record any more.

    ``run_id`` is the run and ``owner`` its new owner, when they are known.
    """

    def __init__(self, message: str, *, run_id: str | None = None, owner: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.owner = owner


class StoreUnavailableError(StoreError):
    """The store could not be reached, or stayed busy: SQLite's file was locked by another
    process, the PostgreSQL connection dropped or did not answer. The same operation may succeed
    later; a write that raised it may be made again safely (see :attr:`WriteBatch.key`).

    A run whose store stays unavailable for as long as its lease allows stops, and
    ``plait.run`` raises this error; ``run_id`` is then the run, and ``__cause__`` the store's
    last error.
    """

    def __init__(self, message: str, *, run_id: str | None = None):
        super().__init__(message)
        self.run_id = run_id


class StoreNotFoundError(StoreError, LookupError):
    """A store opened with ``create=False`` does not exist (no database file, no schema)."""

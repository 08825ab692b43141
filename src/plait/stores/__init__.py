"""Stores: where durable runs keep their state (memory, SQLite, PostgreSQL).

:func:`open_store` picks one from a URL (``memory://``, ``sqlite:///path.db``,
``postgresql://...``); every backend implements :class:`Store` and passes one conformance suite.
"""

from .._public import publish
from ._base import (
    EventRecord,
    EventRecordColumns,
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    RunRecord,
    RunUpdate,
    Store,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    TaskLog,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
)
from ._memory import MemoryStore
from ._open import default_sqlite_path, open_store
from ._postgres import PostgresStore
from ._sqlite import SQLiteStore

__all__ = [
    "EventRecord",
    "EventRecordColumns",
    "InputRequest",
    "LeaseHeldError",
    "LeaseLostError",
    "MemoryStore",
    "PostgresStore",
    "RunExistsError",
    "RunNotFoundError",
    "RunRecord",
    "RunUpdate",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TaskLog",
    "TaskRecord",
    "TaskRecordColumns",
    "WriteBatch",
    "default_sqlite_path",
    "open_store",
]

publish(globals(), __all__)  # plait.stores.X, not a private module's path

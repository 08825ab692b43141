"""Stores: where durable runs keep their state (memory, SQLite, PostgreSQL).

:func:`open_store` picks one from a URL (``memory://``, ``sqlite:///path.db``,
``postgresql://...``); every backend implements :class:`Store` and passes one conformance suite.
"""

from typing import TYPE_CHECKING, Any

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
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
)
from ._listing import InvalidCursorError, OpenQuestion, RunPage
from ._memory import MemoryStore
from ._open import default_sqlite_path, open_store
from ._sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = [
    "EventRecord",
    "EventRecordColumns",
    "InputRequest",
    "InvalidCursorError",
    "LeaseHeldError",
    "LeaseLostError",
    "MemoryStore",
    "OpenQuestion",
    "PostgresStore",
    "RunExistsError",
    "RunNotFoundError",
    "RunPage",
    "RunRecord",
    "RunUpdate",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TaskDuration",
    "TaskHistory",
    "TaskLog",
    "TaskRecord",
    "TaskRecordColumns",
    "WriteBatch",
    "default_sqlite_path",
    "open_store",
]

_LAZY = {"PostgresStore"}  # loaded on first use: its module is not needed by other stores' runs
publish(globals(), [name for name in __all__ if name not in _LAZY])  # plait.stores.X


def __getattr__(name: str) -> Any:
    """Import ``PostgresStore`` on first use (PEP 562), published as ``plait.stores``'s."""
    if name not in _LAZY:
        raise AttributeError(f"module 'plait.stores' has no attribute {name!r}")
    from . import _postgres  # noqa: PLC0415

    publish(vars(_postgres) | {"__name__": __name__}, [name])
    value = getattr(_postgres, name)
    globals()[name] = value
    return value

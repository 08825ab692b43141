"""Stores: where durable runs keep their state (memory, SQLite, PostgreSQL)."""

from ._base import (
    EventRecord,
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    RunRecord,
    RunUpdate,
    Store,
    StoreError,
    TaskRecord,
    WriteBatch,
)
from ._memory import MemoryStore

__all__ = [
    "EventRecord",
    "InputRequest",
    "LeaseHeldError",
    "LeaseLostError",
    "MemoryStore",
    "RunExistsError",
    "RunNotFoundError",
    "RunRecord",
    "RunUpdate",
    "Store",
    "StoreError",
    "TaskRecord",
    "WriteBatch",
]

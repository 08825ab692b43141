"""Choosing a store: from an object, a URL, the ``PLAIT_STORE`` variable, or the default.

The accepted URLs:

- ``memory://``: a new :class:`MemoryStore`.
- ``sqlite:///absolute/path.db`` or ``sqlite://relative/path.db``: an :class:`SQLiteStore`;
  everything after ``sqlite://`` is the path, so three slashes make it absolute and two make it
  relative to the current directory.
- ``postgresql://...`` or ``postgres://...``: a :class:`PostgresStore`; a ``schema=name`` query
  parameter picks the schema (``plait`` by default) and is not passed on to the server.

A store that plait opens from a URL for one call (``plait.get_run(run_id, store=url)``, a run,
a resume, an answer, the report) is closed when that call is done with it: see
:func:`using_store` and :func:`opens_store`. A store object passed in stays open (its owner closes
it), and so does the process's default memory store.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._exceptions import ConfigError
from ._base import Store
from ._memory import MemoryStore
from ._sqlite import SQLiteStore

if TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = ["default_sqlite_path", "open_store", "opens_store", "using_store"]

P = ParamSpec("P")
R = TypeVar("R")

_ACCEPTED = (
    "memory://, sqlite:///absolute/path.db, sqlite://relative/path.db, "
    "or postgresql://user@host:port/database (with ?schema=name to pick a schema)"
)

#: What the process's default memory store keeps: at most this many runs, of at most this many
#: tasks in all (the oldest finished runs go first; the newest always stays).
DEFAULT_MEMORY_RUNS = 100
DEFAULT_MEMORY_TASKS = 200_000

_default: MemoryStore | None = None
_default_lock = threading.Lock()


def open_store(spec: Store | str | None = None, *, create: bool = True) -> Store:
    """The store ``spec`` names.

    Args:
        spec: a :class:`Store` (returned as it is), a URL (see the module docstring), or None
            for the URL in the ``PLAIT_STORE`` environment variable, or, when that is unset or
            empty, the process's default :class:`MemoryStore` (the same one on every call, so
            runs paused in one call can be resumed in the next).
        create: whether a durable store that does not exist yet is created (its file, its
            directory, its schema). Commands that only read pass False, so that a mistyped
            URL is an error rather than a new, empty store.

    Raises:
        ConfigError: the URL has a form plait does not know.
        StoreNotFoundError: ``create`` is false and there is no store at the URL.
        StoreError: the store cannot be opened.
    """
    if isinstance(spec, Store):
        return spec
    if spec is None:
        spec = os.environ.get("PLAIT_STORE") or None
        if spec is None:
            return _default_memory_store()
    return _open_url(spec, create=create)


@contextlib.contextmanager
def using_store(spec: Store | str | None = None) -> Iterator[Store]:
    """The store ``spec`` names (as :func:`open_store`), closed on leaving the block if it was
    opened here: from a URL or ``PLAIT_STORE``. A :class:`Store` passed in and the default
    memory store stay open."""
    store = open_store(spec)
    try:
        yield store
    finally:
        if store is not spec and store is not _default:
            store.close()


def opens_store(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function (sync or async) that takes ``store=`` (a Store, a URL or None): the
    store is opened once for the call (:func:`using_store`), passed in as an object, and closed
    when the call returns or raises, if it was opened from a URL."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            with using_store(kwargs.get("store")) as store:
                kwargs["store"] = store
                return await fn(*args, **kwargs)

        return cast(Callable[P, R], call_async)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with using_store(kwargs.get("store")) as store:
            kwargs["store"] = store
            return fn(*args, **kwargs)

    return cast(Callable[P, R], call)


def default_sqlite_path() -> Path:
    """Where the command line keeps runs by default: ``$PLAIT_HOME/plait.db``, with
    ``PLAIT_HOME`` defaulting to ``~/.plait``."""
    home = os.environ.get("PLAIT_HOME") or "~/.plait"
    return Path(home).expanduser() / "plait.db"


def _default_memory_store() -> MemoryStore:
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryStore(max_runs=DEFAULT_MEMORY_RUNS, max_tasks=DEFAULT_MEMORY_TASKS)
        return _default


def _open_url(url: str, *, create: bool = True) -> Store:
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if separator and scheme == "memory" and not rest:
        return MemoryStore()
    if separator and scheme == "sqlite" and rest:
        return SQLiteStore(rest, create=create)
    if separator and scheme in ("postgresql", "postgres"):
        url, schema = _pop_schema(url)
        if schema is None:
            return _postgres_store()(url, create=create)
        return _postgres_store()(url, schema=schema, create=create)
    raise ConfigError(f"cannot open a store at {_redact(url)!r}: use {_ACCEPTED}")


def _pop_schema(url: str) -> tuple[str, str | None]:
    """Take the ``schema`` parameter out of a PostgreSQL URL's query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    if not schemas:
        return url, None
    if len(schemas) > 1:
        raise ConfigError(
            f"the PostgreSQL URL {_redact(url)!r} names {len(schemas)} schemas; give one"
        )
    if not schemas[0]:
        raise ConfigError(f"the PostgreSQL URL {_redact(url)!r} has an empty schema name")
    rest = urlencode([(name, value) for name, value in query if name != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[0]


def _redact(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: error messages end up in logs."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not (at and colon):
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _postgres_store() -> type[PostgresStore]:
    """The PostgreSQL store class, imported on first use: a run on another store (and
    ``plait run``'s start-up, which make bench Part 6 times) does not pay for its module."""
    from . import PostgresStore  # noqa: PLC0415 - plait.stores loads (and publishes) it

    return PostgresStore

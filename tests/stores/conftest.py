"""Fixtures for the store tests: every backend, declared once in :data:`BACKENDS`.

A test that takes ``store`` (or ``backend``) runs once per backend; one that takes
``durable_backend`` runs once per backend whose state outlives the process. Each test gets its
own empty store: a new :class:`MemoryStore`, a new SQLite file under ``tmp_path``, or a new
PostgreSQL schema with a random name, dropped afterwards.

PostgreSQL runs for real: the server at ``$PLAIT_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it cannot be reached the PostgreSQL tests
are skipped, with one line that says how to start it -- or fail, under ``CI=true`` (see
``tests/_unavailable.py``).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import secrets
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from _unavailable import unavailable
from psycopg import sql

from plait.stores import MemoryStore, PostgresStore, SQLiteStore, Store

POSTGRES_URL = os.environ.get(
    "PLAIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


@dataclass
class Backend:
    """One test's store location, and how to open it (again, or from another process).

    Attributes:
        name: the backend's name, as in test ids.
        durable: whether the state outlives the store object.
        url: what ``open_store`` opens the same state from (memory: a new, empty store).
        store_class: the class ``open`` makes unless told otherwise.
    """

    name: str
    durable: bool
    url: str
    store_class: type[Store]
    _open: Callable[[type[Any]], Store]
    _fresh: Callable[[str], str] = field(default=lambda suffix: "memory://")
    _opened: list[Store] = field(default_factory=list)

    def open(self, store_class: type[Any] | None = None) -> Store:
        """A store on this backend's state; closed when the test ends."""
        store = self._open(store_class or self.store_class)
        self._opened.append(store)
        return store

    def fresh_url(self, suffix: str) -> str:
        """The URL of another new, empty location of this backend, cleaned up with this one."""
        return self._fresh(suffix)

    def close_all(self) -> None:
        for store in self._opened:
            store.close()


@dataclass(frozen=True)
class BackendKind:
    """A backend the conformance suite runs on; ``make(tmp_path)`` yields a new, empty one."""

    name: str
    durable: bool
    make: Callable[[Path], AbstractContextManager[Backend]]


@contextmanager
def _memory(tmp_path: Path) -> Iterator[Backend]:
    store = MemoryStore()
    yield Backend("memory", False, "memory://", MemoryStore, lambda cls: store)


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "stores" / "plait.db"  # the store creates the directory
    backend = Backend(
        "sqlite",
        True,
        f"sqlite://{path}",
        SQLiteStore,
        lambda cls: cls(path),
        lambda suffix: f"sqlite://{path.with_name(f'plait-{suffix}.db')}",
    )
    try:
        yield backend
    finally:
        backend.close_all()


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[Backend]:
    problem = postgres_unreachable()
    if problem is not None:
        unavailable(problem)
    schema = f"plait_test_{secrets.token_hex(6)}"
    schemas = [schema]

    def fresh(suffix: str) -> str:
        schemas.append(f"{schema}_{suffix}")
        return with_query(POSTGRES_URL, schema=schemas[-1])

    backend = Backend(
        "postgres",
        True,
        with_query(POSTGRES_URL, schema=schema),
        PostgresStore,
        lambda cls: cls(POSTGRES_URL, schema=schema),
        fresh,
    )
    try:
        yield backend
    finally:
        backend.close_all()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for name in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


#: Every backend the conformance suite runs on. Adding a backend means adding it here.
BACKENDS = [
    BackendKind("memory", durable=False, make=_memory),
    BackendKind("sqlite", durable=True, make=_sqlite),
    BackendKind("postgres", durable=True, make=_postgres),
]


@pytest.fixture(params=BACKENDS, ids=lambda kind: kind.name)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend in turn, empty."""
    kind: BackendKind = request.param
    with kind.make(tmp_path) as backend:
        yield backend


@pytest.fixture(params=[kind for kind in BACKENDS if kind.durable], ids=lambda kind: kind.name)
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each durable backend in turn, empty."""
    kind: BackendKind = request.param
    with kind.make(tmp_path) as backend:
        yield backend


@pytest.fixture
def store(backend: Backend) -> Store:
    """An empty store of each backend in turn."""
    return backend.open()


@pytest.fixture
def postgres_url() -> str:
    """The test server's URL; skips the test (fails it under CI=true), saying how to start the
    server, if it is down."""
    problem = postgres_unreachable()
    if problem is not None:
        unavailable(problem)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A random schema name, dropped after the test."""
    schema = f"plait_test_{secrets.token_hex(6)}"
    yield schema
    drop_schemas(schema)


@functools.cache
def _admin() -> psycopg.Connection[Any]:
    """One connection for the whole session, to drop the tests' schemas."""
    return psycopg.connect(POSTGRES_URL, autocommit=True)


def drop_schemas(*schemas: str) -> None:
    """Drop the schemas, with everything in them."""
    names = sql.SQL(", ").join(map(sql.Identifier, schemas))
    _admin().execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(names))


@functools.cache
def postgres_unreachable() -> str | None:
    """Why the test server cannot be used, or None; asked once per session."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            return None
    except psycopg.Error as error:
        why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return (
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({why}); to run these tests, start "
            f"it ({START_POSTGRES}) or set PLAIT_TEST_POSTGRES_URL to a server with trust auth"
        )


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- two processes at once -------------------------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    traceback: str


def _serve(owner: str, inbox: Any, barrier: Any, results: Any) -> None:
    """A worker process: run each job from ``inbox``, put its result (or failure) on
    ``results``, until a None arrives. A failing job breaks the barrier, so that the other
    worker stops waiting for it."""
    while (job := inbox.get()) is not None:
        function, args = job
        try:
            results.put((owner, function(*args, owner=owner, barrier=barrier)))
        except BaseException:
            barrier.abort()
            results.put((owner, _Failure(traceback.format_exc())))


class ProcessPair:
    """Two spawned worker processes, ``p1`` and ``p2``, that run the same job at once.

    Spawned once per session (a spawn costs about a second); each job is a module-level
    function called as ``job(*args, owner=..., barrier=...)``, where ``barrier`` is a
    two-party :class:`multiprocessing.Barrier` the job uses to line the processes up.
    """

    OWNERS = ("p1", "p2")

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._barrier = context.Barrier(len(self.OWNERS))
        self._results: Any = context.Queue()
        self._inboxes: list[Any] = [context.Queue() for _ in self.OWNERS]
        self._processes = [
            context.Process(
                target=_serve, args=(owner, inbox, self._barrier, self._results), daemon=True
            )
            for owner, inbox in zip(self.OWNERS, self._inboxes, strict=True)
        ]
        for process in self._processes:
            process.start()

    def run(self, job: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """Run ``job`` in both processes; return each one's result by owner. Fails the test
        with the worker's traceback if the job raised in either."""
        for inbox in self._inboxes:
            inbox.put((job, args))
        try:
            reports = dict(self._results.get(timeout=120) for _ in self.OWNERS)
        except queue.Empty:
            pytest.fail("a worker process did not report within 120 s")
        failures = {o: r for o, r in reports.items() if isinstance(r, _Failure)}
        if failures:
            self._barrier.reset()
            pytest.fail(
                "\n".join(f"process {o} failed:\n{f.traceback}" for o, f in failures.items())
            )
        return reports

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


@pytest.fixture(scope="session")
def two_processes() -> Iterator[ProcessPair]:
    """Two worker processes that run a job at the same moment (see :class:`ProcessPair`)."""
    pair = ProcessPair()
    yield pair
    pair.close()

"""open_store: a store from an object, a URL, ``PLAIT_STORE``, or the default; and
default_sqlite_path."""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import plait
from plait import ConfigError, PlaitError
from plait.cli._report import write_report
from plait.stores import (
    MemoryStore,
    PostgresStore,
    SQLiteStore,
    StoreNotFoundError,
    _open,
    default_sqlite_path,
    open_store,
)

from .conftest import POSTGRES_URL, with_query

ACCEPTED = (
    "memory://, sqlite:///absolute/path.db, sqlite://relative/path.db, "
    "or postgresql://user@host:port/database (with ?schema=name to pick a schema)"
)


@pytest.fixture(autouse=True)
def _no_plait_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAIT_STORE", raising=False)


class FakePostgres:
    """Stands in for PostgresStore where only the arguments matter."""

    def __init__(self, url: str, *, schema: str = "plait", create: bool = True) -> None:
        self.url = url
        self.schema = schema
        self.create = create


@pytest.fixture
def fake_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_open, "_postgres_store", lambda: FakePostgres)


def test_a_run_on_another_store_does_not_import_the_postgres_module() -> None:
    code = (
        "import sys, plait; plait.run(plait.Workflow('w'), store='memory://'); "
        "plait.stores.open_store('sqlite:///' + sys.argv[1]).close(); "
        "print('plait.stores._postgres' in sys.modules)"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, "-c", code, os.path.join(folder, "p.db")],
            capture_output=True,
            text=True,
            check=True,
        )
    assert out.stdout.strip() == "False"
    assert plait.stores.PostgresStore.__module__ == "plait.stores"  # published when loaded


def test_a_store_is_returned_as_it_is() -> None:
    store = MemoryStore()
    assert open_store(store) is store


def test_memory_url_gives_a_new_memory_store_each_time() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    assert isinstance(second, MemoryStore)
    assert first is not second
    assert first is not open_store()


def test_no_spec_gives_the_same_default_memory_store_every_time() -> None:
    store = open_store()
    assert isinstance(store, MemoryStore)
    assert open_store(None) is store
    assert open_store() is store


def test_an_empty_plait_store_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    default = open_store()
    monkeypatch.setenv("PLAIT_STORE", "")
    assert open_store() is default


def test_no_spec_uses_plait_store_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLAIT_STORE", f"sqlite://{tmp_path}/env.db")
    with open_store() as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "env.db"


def test_plait_store_does_not_override_an_explicit_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_STORE", "sqlite:///should/not/be/used.db")
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_url_with_three_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "plait.db"
    with open_store(f"sqlite://{path}") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == path
        assert path.is_absolute()
    assert path.is_file()


def test_sqlite_url_with_two_slashes_is_relative_to_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite://runs/rel.db") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == Path("runs/rel.db")
    assert (tmp_path / "runs" / "rel.db").is_file()


def test_schemes_are_case_insensitive(tmp_path: Path) -> None:
    assert isinstance(open_store("MEMORY://"), MemoryStore)
    with open_store(f"SQLite://{tmp_path}/x.db") as store:
        assert isinstance(store, SQLiteStore)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
@pytest.mark.usefixtures("fake_postgres")
def test_postgres_urls_give_a_postgres_store_in_the_default_schema(scheme: str) -> None:
    store: Any = open_store(f"{scheme}://me@db.example:5433/runs")
    assert isinstance(store, FakePostgres)
    assert (store.url, store.schema) == (f"{scheme}://me@db.example:5433/runs", "plait")


@pytest.mark.usefixtures("fake_postgres")
def test_the_schema_parameter_is_taken_out_of_the_url() -> None:
    store: Any = open_store(
        "postgresql://me@db/runs?sslmode=require&schema=team_a&application_name=x"
    )
    assert store.schema == "team_a"
    assert store.url == "postgresql://me@db/runs?sslmode=require&application_name=x"
    store = open_store("postgresql://me@db/runs?schema=team_b")
    assert (store.url, store.schema) == ("postgresql://me@db/runs", "team_b")


@pytest.mark.usefixtures("fake_postgres")
def test_two_schema_parameters_raise_config_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^the PostgreSQL URL 'postgresql://db/x\?schema=a&schema=b' names 2 schemas; "
        r"give one$",
    ):
        open_store("postgresql://db/x?schema=a&schema=b")


@pytest.mark.usefixtures("fake_postgres")
def test_an_empty_schema_parameter_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"has an empty schema name$"):
        open_store("postgresql://db/x?schema=")


def test_a_postgres_url_opens_a_real_store(postgres_url: str, postgres_schema: str) -> None:
    with open_store(with_query(postgres_url, schema=postgres_schema)) as store:
        assert isinstance(store, PostgresStore)
        assert store.schema == postgres_schema
        assert "schema=" not in store.url
        assert store.list_runs().runs == []


@pytest.mark.parametrize(
    "url",
    [
        "mysql://db/x",
        "memory://something",
        "memory:",
        "sqlite://",
        "sqlite:relative.db",
        "/just/a/path.db",
        "plait.db",
        "",
    ],
)
def test_an_unknown_url_raises_config_error_listing_the_accepted_forms(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert str(caught.value) == f"cannot open a store at {url!r}: use {ACCEPTED}"


def test_a_password_is_not_repeated_in_the_message() -> None:
    with pytest.raises(ConfigError) as caught:
        open_store("postgresq://me:s3cret@db.example/runs")
    assert "s3cret" not in str(caught.value)
    assert "'postgresq://me:***@db.example/runs'" in str(caught.value)


def test_config_error_is_a_plait_error_and_a_value_error() -> None:
    with pytest.raises(PlaitError):
        open_store("nope://")
    with pytest.raises(ValueError):
        open_store("nope://")


def test_default_sqlite_path_is_under_plait_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    assert default_sqlite_path() == tmp_path / "home" / "plait.db"


def test_default_sqlite_path_defaults_to_dot_plait_in_the_home_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PLAIT_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_sqlite_path() == tmp_path / ".plait" / "plait.db"
    monkeypatch.setenv("PLAIT_HOME", "~/elsewhere")
    assert default_sqlite_path() == tmp_path / "elsewhere" / "plait.db"


# -- stores opened from a URL are closed --------------------------------------------------------


def _sqlite_files_open(directory: Path) -> int:
    """How many file descriptors of this process point into ``directory`` (the db, WAL, shm)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory))
    return count


def _every_call(url: str, tmp_path: Path) -> Iterator[str]:
    """Each entry point that takes a store, called with ``url``; yields its name after each."""
    wf = plait.Workflow("closing")
    wf.add_task("a", lambda: 1)
    wf.add_task("gate", lambda a: a, depends_on=["a"], pause=plait.Pause("go?"))
    paused = plait.run(wf, store=url, run_id="closing")
    yield "run"
    plait.get_run(paused.run_id, store=url)
    yield "get_run"
    plait.list_runs(store=url)
    yield "list_runs"
    plait.answer(paused.run_id, "gate", True, store=url)
    yield "answer"
    plait.resume(paused.run_id, wf, store=url)
    yield "resume"
    write_report(paused.run_id, tmp_path / "report.html", store=url)
    yield "report"
    plait.get_logs(paused.run_id, store=url)
    yield "get_logs"
    plait.run(wf, store=url, run_id="closing-2")  # paused: one to cancel
    plait.cancel("closing-2", store=url)
    yield "cancel"
    with pytest.raises(plait.stores.RunNotFoundError):
        plait.get_run("no-such-run", store=url)
    yield "get_run of an unknown run"


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_stores_opened_from_a_url_are_closed_after_each_call(
    backend_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend_name == "sqlite":
        directory = tmp_path / "db"
        url = f"sqlite://{directory}/plait.db"
        still_open: Callable[[], int] = lambda: _sqlite_files_open(directory)  # noqa: E731
    else:
        schema = f"plait_test_{secrets.token_hex(6)}"
        url = with_query(POSTGRES_URL, schema=schema)
        connections: list[psycopg.Connection[Any]] = []
        connect = psycopg.connect

        def recorded(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
            connections.append(connect(*args, **kwargs))
            return connections[-1]

        monkeypatch.setattr(psycopg, "connect", recorded)
        still_open = lambda: sum(not c.closed for c in connections)  # noqa: E731
    gc.disable()  # a leaked connection must not be hidden by a collection closing it
    try:
        for call in _every_call(url, tmp_path):
            assert still_open() == 0, f"{call} left its store open"
    finally:
        gc.enable()
        if backend_name == "postgres":
            with connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_store_object_passed_in_stays_open(tmp_path: Path) -> None:
    wf = plait.Workflow("kept")
    wf.add_task("a", lambda: 1)
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(wf, store=store)
        plait.get_run(result.run_id, store=store)
        assert [r.run_id for r in plait.list_runs(store=store)] == [result.run_id]
        assert "closed" not in repr(store)


def test_an_sqlite_store_opened_without_create_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "plait.db"
    with pytest.raises(StoreNotFoundError, match=r"^there is no SQLite store at '.*plait\.db'$"):
        open_store(f"sqlite://{path}", create=False)
    assert not path.exists()
    SQLiteStore(path).close()
    open_store(f"sqlite://{path}", create=False).close()  # now it exists


def test_a_postgres_store_opened_without_create_must_have_its_tables(
    postgres_url: str, postgres_schema: str
) -> None:
    url = with_query(postgres_url, schema=postgres_schema)
    with pytest.raises(StoreNotFoundError, match=r"^there is no plait store at .*schema"):
        open_store(url, create=False)
    open_store(url).close()  # creates it
    open_store(url, create=False).close()

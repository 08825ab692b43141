"""Fixtures for the web app's tests: SQLite and PostgreSQL stores with runs, the app, a client."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from _unavailable import unavailable
from stores.conftest import POSTGRES_URL, drop_schemas, postgres_unreachable, with_query

import plait

pytest.importorskip("starlette", reason="plait serve's tests need the ui extra")

from starlette.testclient import TestClient

from plait.web import Keys, create_app

TOKEN = "test-token-0123456789"

#: A schema with every kind of field the forms draw.
ORDER_SCHEMA = {
    "type": "object",
    "title": "Order",
    "properties": {
        "approved": {"type": "boolean", "title": "Approved", "description": "Ship it?"},
        "size": {"type": "string", "enum": ["small", "large"], "title": "Size"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10, "default": 2},
        "address": {
            "type": "object",
            "title": "Address",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
            },
            "required": ["city"],
        },
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["approved", "size", "count", "address"],
}


@pytest.fixture(autouse=True)
def trusted_targets(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resumes trust the targets of runs recorded under the tests' temporary directory."""
    monkeypatch.setenv("PLAIT_PATH", str(tmp_path_factory.getbasetemp()))


def store_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'plait.db'}"


def paused_run(url: str, run_id: str, *, schema: object = None, prompt: str = "Ship it?") -> None:
    """A run of one task that waits for an answer, then one that uses it."""
    wf = plait.Workflow("gate")
    wf.add_task("approve", None, pause=plait.Pause(prompt, schema=schema))
    wf.add_task("ship", lambda approve: approve, depends_on=["approve"])
    result = plait.run(wf, run_id=run_id, store=url)
    assert result.status is plait.RunStatus.PAUSED


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store's URL: SQLite, then PostgreSQL (a schema of its own, dropped after)."""
    if request.param == "sqlite":
        yield store_url(tmp_path)
        return
    problem = postgres_unreachable()
    if problem is not None:
        unavailable(problem)
    schema = f"plait_web_{secrets.token_hex(6)}"
    try:
        yield with_query(POSTGRES_URL, schema=schema)
    finally:
        drop_schemas(schema)


@pytest.fixture
def keys() -> Keys:
    return Keys(TOKEN)


@pytest.fixture
def client(url: str, keys: Keys) -> Iterator[TestClient]:
    """A client with the token's cookie, its requests from the server's own origin."""
    paused_run(url, "r1", schema=ORDER_SCHEMA)
    with TestClient(
        create_app(url, keys=keys), base_url="http://testserver", follow_redirects=False
    ) as made:
        made.cookies.set("plait_session", keys.session)
        yield made


@pytest.fixture
def anonymous(url: str, keys: Keys) -> Iterator[TestClient]:
    paused_run(url, "r1", schema=ORDER_SCHEMA)
    with TestClient(
        create_app(url, keys=keys), base_url="http://testserver", follow_redirects=False
    ) as made:
        yield made

"""The pages that show: runs (newest first, filters, cursor pagination), a run (the report's
view, live), the inbox (every open question, live), and their server-sent event streams.

A live page holds ``/runs/RUN/live`` (or ``/inbox/live``) open and fetches its part
(``/runs/RUN/part``, ``/inbox/part``) again when the stream names a version it does not show
(see ``plait.web._live``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from .._state import RunStatus
from ..stores import RunRecord
from ..stores._listing import InvalidCursorError
from . import _data
from ._auth import Access, Grant
from ._site import RESUMABLE, App

# -- pages ------------------------------------------------------------------------------------


__all__ = [
    "home",
    "inbox",
    "inbox_live",
    "inbox_part",
    "resumable",
    "run_live",
    "run_page",
    "run_part",
    "run_response",
    "runs",
    "runs_live",
    "runs_part",
]


async def home(request: Request) -> Response:
    app: App = request.app.state.plait
    if app.grant(request).access is not Access.FULL:
        return app.refuse(request)
    return RedirectResponse("/runs", status_code=303)


async def runs(request: Request) -> Response:
    """The runs, newest first: a page of them, with filters and the link to the next page."""
    return await _runs(request, "runs.html")


async def runs_part(request: Request) -> Response:
    """The runs page's table, for its live refresh."""
    return await _runs(request, "_runs_part.html")


def _filters(request: Request) -> tuple[RunStatus | None, str | None]:
    params = request.query_params
    try:
        status = RunStatus(params.get("status", "")) if params.get("status") else None
    except ValueError:
        status = None
    return status, params.get("workflow", "").strip() or None


async def _runs(request: Request, template: str) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    status, workflow = _filters(request)
    cursor = request.query_params.get("before") or None
    started = time.perf_counter()
    try:
        page = await asyncio.to_thread(
            _data.runs_page, app.store, status=status, workflow=workflow, cursor=cursor
        )
    except InvalidCursorError:
        return PlainTextResponse(
            "this page of runs is not one plait handed out (its before= was cut short or "
            "changed); start again from /runs",
            status_code=400,
        )
    query_seconds = time.perf_counter() - started
    filters = {
        k: v for k, v in (("status", status.value if status else ""), ("workflow", workflow)) if v
    }
    query = ("?" + urlencode(filters)) if filters else ""
    older = None
    if page.next_cursor:
        older = "/runs?" + urlencode({**filters, "before": page.next_cursor})
    version = _data.version(_data.runs_probe(page.runs))
    response = app.page(
        request,
        template,
        grant,
        page=page,
        status_filter=status.value if status else "",
        workflow=workflow or "",
        statuses=[s.value for s in RunStatus],
        older=older,
        newest=f"/runs{query}" if cursor else None,
        live_query=None if cursor else query,  # the first page follows new runs live
        version=version,
    )
    response.headers["server-timing"] = f"store;dur={query_seconds * 1000:.1f}"
    response.headers["x-plait-version"] = version
    return response


async def runs_live(request: Request) -> Response:
    """The first page of runs (with its filters), as a server-sent event stream."""
    app: App = request.app.state.plait
    if app.grant(request).access is not Access.FULL:
        return app.refuse(request)
    status, workflow = _filters(request)

    def probe() -> tuple[object, ...]:
        page = _data.runs_page(app.store, status=status, workflow=workflow)
        return _data.runs_probe(page.runs)

    return _stream(app, f"runs:{status}:{workflow}", probe)


async def run_page(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    run_id = request.path_params["run_id"]
    return await run_response(app, request, grant, "run.html", run_id)


async def run_part(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    return await run_response(app, request, grant, "_run_part.html", request.path_params["run_id"])


async def run_response(
    app: App,
    request: Request,
    grant: Grant,
    template: str,
    run_id: str,
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    record = await asyncio.to_thread(app.record, run_id)
    if record is None:
        return app.page(request, "missing.html", grant, code=404, what=f"run {run_id!r}")
    sections = await app.sections(record)
    questions = await asyncio.to_thread(app.store.load_requests, run_id)
    version = _data.version(_data.record_probe(record))
    response = app.page(
        request,
        template,
        grant,
        code=status,
        record=record,
        sections=sections,
        open_questions=[q for q in questions if not q.answered],
        live_owner=_live_owner(record),
        can_cancel=record.status in (RunStatus.RUNNING, RunStatus.PAUSED),
        can_resume=resumable(record),
        child=app.children.get(run_id),
        error=error,
        version=version,
    )
    response.headers["x-plait-version"] = version
    return response


def _live_owner(record: RunRecord) -> str | None:
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        return record.owner
    return None


def resumable(record: RunRecord) -> bool:
    return record.status in RESUMABLE or record.stale


async def run_live(request: Request) -> Response:
    app: App = request.app.state.plait
    if app.grant(request).access is not Access.FULL:
        return app.refuse(request)
    run_id = request.path_params["run_id"]
    return _stream(app, f"run:{run_id}", lambda: _data.run_probe(app.store, run_id))


async def inbox(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    return await _inbox_response(app, request, grant, "inbox.html")


async def inbox_part(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    return await _inbox_response(app, request, grant, "_inbox_part.html")


async def _inbox_response(app: App, request: Request, grant: Grant, template: str) -> Response:
    items = await asyncio.to_thread(_data.open_questions, app.store)
    base = str(request.base_url).rstrip("/")
    links = {
        (item.run_id, item.task_id): base + app.keys.question_link(item.run_id, item.task_id)
        for item in items
    }
    version = _data.version(_data.questions_probe(items))
    response = app.page(
        request, template, grant, items=items, links=links, now=time.time(), version=version
    )
    response.headers["x-plait-version"] = version
    return response


async def inbox_live(request: Request) -> Response:
    app: App = request.app.state.plait
    if app.grant(request).access is not Access.FULL:
        return app.refuse(request)
    return _stream(app, "inbox", lambda: _data.inbox_probe(app.store))


def _stream(app: App, key: str, probe: Any) -> Response:
    async def events() -> AsyncIterator[str]:
        async for chunk in app.watches.stream(key, probe, _data.version):
            yield chunk

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )

"""What the page does to a run: cancel it (``plait.cancel``, through the store's request
channel when it is live anywhere) and resume it (``plait resume`` in a child process the
server supervises; see ``plait.web._children``)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from .._exceptions import (
    NothingToCancelError,
)
from .._state import RunStatus
from ..stores import RunRecord, StoreError
from ._auth import Access, Grant
from ._children import ResumeRefusedError
from ._pages import resumable, run_response
from ._site import App

# -- actions on a run -------------------------------------------------------------------------


__all__ = ["cancel_run", "resume_run"]


async def _full_post(request: Request) -> tuple[App, Grant] | Response:
    """The app and the grant of a POST that acts on a run: a full-access token and a POST that
    passes the Origin and CSRF checks; else the response that refuses it."""
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    refused = app.check_post(request, grant, await request.form())
    return (app, grant) if refused is None else refused


async def cancel_run(request: Request) -> Response:
    allowed = await _full_post(request)
    if isinstance(allowed, Response):
        return allowed
    app, grant = allowed
    run_id = request.path_params["run_id"]
    from .._cancel import cancel  # noqa: PLC0415 - the engine, only when used

    try:
        after = await asyncio.to_thread(cancel, run_id, store=app.store, wait=False)
    except (NothingToCancelError, StoreError) as error:
        return await run_response(
            app, request, grant, "run.html", run_id, error=str(error), status=409
        )
    note = "cancelled" if after.status is RunStatus.CANCELLED else "cancel-sent"
    return RedirectResponse(f"/runs/{run_id}?note={note}", status_code=303)


async def resume_run(request: Request) -> Response:
    allowed = await _full_post(request)
    if isinstance(allowed, Response):
        return allowed
    app, grant = allowed
    run_id = request.path_params["run_id"]
    record = await asyncio.to_thread(app.record, run_id)
    if record is None:
        return app.page(request, "missing.html", grant, code=404, what=f"run {run_id!r}")
    problem = _resume_problem(record)
    if problem:
        return await run_response(
            app, request, grant, "run.html", run_id, error=problem, status=409
        )
    try:
        await app.children.resume(run_id)
    except ResumeRefusedError as error:
        return await run_response(
            app, request, grant, "run.html", run_id, error=str(error), status=409
        )
    return RedirectResponse(f"/runs/{run_id}?note=resuming", status_code=303)


def _resume_problem(record: RunRecord) -> str:
    """Why the page cannot resume ``record``'s run, or ""."""
    from .._targets import trusted_target  # noqa: PLC0415

    if record.status is RunStatus.SUCCEEDED:
        return f"run {record.run_id!r} succeeded; there is nothing to resume"
    if not resumable(record):
        return f"run {record.run_id!r} is {record.status.value} and live; cancel it first, or wait"
    if record.target is None:
        return (
            f"run {record.run_id!r} does not record where its workflow comes from (started from "
            "an interactive session); resume it with `plait resume --target`"
        )
    if trusted_target(record.target) is None:
        return (
            f"run {record.run_id!r} was started from {record.target!r}, which is not inside this "
            "server's working directory or a directory on PLAIT_PATH; plait imports a stored "
            "target only from there: start plait serve in the workflow's project, or add its "
            "directory to PLAIT_PATH"
        )
    return ""

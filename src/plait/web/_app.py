"""The web app of ``plait serve``: its pages, its actions, and the app factory.

Pages (GET): ``/runs`` (newest first, filters, cursor pagination), ``/runs/RUN`` (the report's
sections, live), ``/inbox`` (every open question, live), ``/runs/RUN/questions/TASK`` (a
question's form). Live streams (server-sent events): ``/runs/RUN/live``, ``/inbox/live``; the
parts they refresh: ``/runs/RUN/part``, ``/inbox/part``. Actions (POST, then a redirect to the
page): answer a question, cancel a run, resume it. Static files under ``/static``.

Every page but the static files needs the token (see ``plait.web._auth``), except a question's
page, which its signed link also opens. Every action made from a browser needs the server's
Origin and the page's CSRF token.

:func:`create_app` builds it all; its ``routes`` argument is where other features mount theirs
(``/metrics``: they come before the pages, and decide their own access).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .._answers import AnswerTimeoutError
from .._exceptions import (
    InputValidationError,
    InvalidOptionError,
    NothingToCancelError,
    NotWaitingError,
)
from .._state import RunStatus
from ..cli._report import environment
from ..stores import RunRecord, Store, StoreError, open_store
from ..stores._listing import InvalidCursorError
from . import _data
from ._auth import COOKIE, Access, Grant, Keys, question_path
from ._children import Children, ResumeRefusedError
from ._forms import Field, FormError, answer_from, field_of_error, form_for
from ._live import Watches
from ._run_view import run_sections
from ._security import Guard

__all__ = ["App", "create_app"]

_PACKAGE = Path(__file__).resolve().parents[1]  # plait/: its static files

#: Notes a redirect may ask a page to show (by code: a page never echoes text from the URL).
NOTES = {
    "answered": "Answer recorded. The run goes on with it.",
    "answered-paused": "Answer recorded. The run is paused: resume it once every question is "
    "answered.",
    "answer-pending": "Answer sent: the run's process takes it when it next looks at the store.",
    "cancel-sent": "Cancel requested: the run stops within about a second.",
    "cancelled": "The run is cancelled.",
    "resuming": "Resuming: the run continues in a process this server started.",
}

#: How many rendered runs (one per version) the app keeps.
SECTIONS_CACHED = 16

#: Statuses from which a run can be resumed from the page (and a running one when stale).
RESUMABLE = (RunStatus.PAUSED, RunStatus.FAILED, RunStatus.CANCELLED)


class App:
    """The state the pages share: the store, the keys, the live watches, the resume children."""

    def __init__(
        self,
        store_url: str,
        keys: Keys,
        *,
        user_header: str | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self.store_url = store_url
        self.store: Store = open_store(store_url)
        self.keys = keys
        self.user_header = user_header
        self.watches = Watches() if poll_seconds is None else Watches(interval=poll_seconds)
        self.children = Children(store_url)
        self._sections: OrderedDict[tuple[str, Any], asyncio.Future[Markup]] = OrderedDict()
        # The report's environment: one set of templates for the report and the pages.
        self.templates = environment()
        self.helpers = {
            "when": _when,
            "ago": _ago,
            "question_path": question_path,
            "status_css": _status_css,
            "static_url": "/static",
        }

    # -- access -----------------------------------------------------------------------------

    def grant(self, request: Request, run_id: str = "", task_id: str = "") -> Grant:
        """What ``request`` may do (for a question's page, its link counts too)."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and self.keys.is_token(credential.strip()):
            return Grant(Access.FULL, "session", bearer=True)
        cookie = request.cookies.get(COOKIE, "")
        if cookie and self.keys.is_session(cookie):
            return Grant(Access.FULL, "session")
        sig = request.query_params.get("sig", "")
        if sig and task_id and self.keys.check_question(sig, run_id, task_id):
            return Grant(Access.QUESTION, sig, run_id=run_id, task_id=task_id)
        return Grant(Access.NONE)

    def page(
        self, request: Request, template_name: str, grant: Grant, code: int = 200, **context: Any
    ) -> HTMLResponse:
        template = self.templates.get_template(f"web/{template_name}")
        html = template.render(
            **self.helpers,
            request=request,
            grant=grant,
            full=grant.access is Access.FULL,
            csrf=self.keys.csrf(grant),
            note=NOTES.get(request.query_params.get("note", ""), ""),
            **context,
        )
        return HTMLResponse(html, status_code=code, headers={"cache-control": "no-store"})

    def refuse(self, request: Request) -> Response:
        return self.page(request, "denied.html", Grant(Access.NONE), code=401)

    def check_post(self, request: Request, grant: Grant, form: Any) -> Response | None:
        """None if a POST under ``grant`` may act; else the 403 to send."""
        if grant.bearer:
            return None  # a script's: no browser sends Authorization by itself
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin is None or urlsplit(origin).netloc != host or not host:
            return PlainTextResponse(
                "refused: this form was not sent from this server's page (Origin "
                f"{origin!r}, expected {request.url.scheme}://{host}); reload the page and send it "
                "again",
                status_code=403,
            )
        if not self.keys.check_csrf(grant, str(form.get("csrf", ""))):
            return PlainTextResponse(
                "refused: the form's CSRF token is missing or stale; reload the page and send it "
                "again",
                status_code=403,
            )
        return None

    def record(self, run_id: str) -> RunRecord | None:
        return self.store.get_run(run_id)

    async def sections(self, record: RunRecord) -> Markup:
        """The report's sections of ``record``'s run, rendered once per version of the run: the
        20 pages that follow a live run all fetch the same new part after each change, and a
        finished run never changes."""
        key = (record.run_id, _data.record_probe(record))
        cached = self._sections.get(key)
        if cached is None:
            cached = self._sections[key] = asyncio.ensure_future(
                asyncio.to_thread(run_sections, record, self.store)
            )
            while len(self._sections) > SECTIONS_CACHED:
                self._sections.popitem(last=False)
        else:
            self._sections.move_to_end(key)
        try:
            return await asyncio.shield(cached)
        except Exception:
            self._sections.pop(key, None)
            raise


def _when(at: float | None) -> str:
    if at is None:
        return "\u2014"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _ago(at: float | None) -> str:
    if at is None:
        return ""
    seconds = time.time() - at
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        text = f"{seconds / 3600:.1f} h"
    else:
        text = f"{seconds / 86400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def _status_css(status: RunStatus | str) -> str:
    value = status.value if isinstance(status, RunStatus) else str(status)
    return {"paused": "waiting"}.get(value, value)


# -- pages ------------------------------------------------------------------------------------


async def home(request: Request) -> Response:
    app: App = request.app.state.plait
    if app.grant(request).access is not Access.FULL:
        return app.refuse(request)
    return RedirectResponse("/runs", status_code=303)


async def runs(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    params = request.query_params
    status_text = params.get("status", "")
    try:
        status = RunStatus(status_text) if status_text else None
    except ValueError:
        status = None
    workflow = params.get("workflow", "").strip() or None
    started = time.perf_counter()
    try:
        page = await asyncio.to_thread(
            _data.runs_page,
            app.store,
            status=status,
            workflow=workflow,
            cursor=params.get("before") or None,
        )
    except InvalidCursorError:
        return PlainTextResponse(
            "this page of runs is not one plait handed out (its before= was cut short or "
            "changed); start again from /runs",
            status_code=400,
        )
    query_seconds = time.perf_counter() - started
    filters = {k: v for k, v in (("status", status_text), ("workflow", workflow or "")) if v}
    older = None
    if page.next_cursor:
        older = "/runs?" + urlencode({**filters, "before": page.next_cursor})
    newest = ("/runs?" + urlencode(filters)).rstrip("?") if params.get("before") else None
    response = app.page(
        request,
        "runs.html",
        grant,
        page=page,
        status_filter=status_text,
        workflow=workflow or "",
        statuses=[s.value for s in RunStatus],
        older=older,
        newest=newest,
    )
    response.headers["server-timing"] = f"store;dur={query_seconds * 1000:.1f}"
    return response


async def run_page(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    run_id = request.path_params["run_id"]
    return await _run_response(app, request, grant, "run.html", run_id)


async def run_part(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    return await _run_response(app, request, grant, "_run_part.html", request.path_params["run_id"])


async def _run_response(
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
        can_resume=_resumable(record),
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


def _resumable(record: RunRecord) -> bool:
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


# -- a question -------------------------------------------------------------------------------


def _open_question(app: App, run_id: str, task_id: str) -> Any:
    """The question ``task_id`` of the run asks now, or None."""
    for request in app.store.load_requests(run_id):
        if request.task_id == task_id and not request.answered:
            return request
    return None


def _last_answer(app: App, run_id: str, task_id: str) -> Any:
    """The task's last answered question (who answered, when, how), or None."""
    answered = [r for r in app.store.load_requests(run_id) if r.task_id == task_id and r.answered]
    return max(answered, key=lambda r: r.answered_at or 0.0, default=None)


async def question(request: Request) -> Response:
    app: App = request.app.state.plait
    run_id, task_id = request.path_params["run_id"], request.path_params["task_id"]
    grant = app.grant(request, run_id, task_id)
    if grant.access is Access.NONE:
        return app.refuse(request)
    if request.method == "POST":
        return await _answer(app, request, grant, run_id, task_id)
    return await _question_page(app, request, grant, run_id, task_id)


async def _question_page(
    app: App,
    request: Request,
    grant: Grant,
    run_id: str,
    task_id: str,
    *,
    form: Field | None = None,
    error: str = "",
    name: str = "",
    status: int = 200,
) -> Response:
    record = await asyncio.to_thread(app.record, run_id)
    asked = await asyncio.to_thread(_open_question, app, run_id, task_id) if record else None
    if record is None or asked is None:
        last = await asyncio.to_thread(_last_answer, app, run_id, task_id) if record else None
        return app.page(
            request,
            "answered.html",
            grant,
            code=200 if record else 404,
            record=record,
            run_id=run_id,
            task_id=task_id,
            last=last,
        )
    return app.page(
        request,
        "question.html",
        grant,
        code=status,
        record=record,
        asked=asked,
        form=form or form_for(asked.schema),
        schema_text=json.dumps(asked.schema, indent=2) if asked.schema is not None else "",
        error=error,
        name=name,
        proxy_user=_proxy_user(app, request),
        sig=grant.credential if grant.access is Access.QUESTION else "",
        now=time.time(),
    )


def _proxy_user(app: App, request: Request) -> str | None:
    if app.user_header is None:
        return None
    return request.headers.get(app.user_header) or None


async def _answer(app: App, request: Request, grant: Grant, run_id: str, task_id: str) -> Response:
    form_data = await request.form()
    refused = app.check_post(request, grant, form_data)
    if refused is not None:
        return refused
    submitted = {k: v for k, v in form_data.items() if isinstance(v, str)}
    asked = await asyncio.to_thread(_open_question, app, run_id, task_id)
    if asked is None:
        return await _question_page(app, request, grant, run_id, task_id)
    form = form_for(asked.schema)
    name = (_proxy_user(app, request) or submitted.get("answered_by", "")).strip()

    async def again(error: str, on: Field | None) -> Response:
        """The form again, as sent, with ``error`` by its field (or on top); nothing recorded."""
        if on is not None:
            on.error = error
            error = "Nothing was recorded: the field marked below needs another answer."
        return await _question_page(
            app, request, grant, run_id, task_id, form=form, error=error, name=name, status=422
        )

    try:
        value = answer_from(form, submitted)
    except FormError as error:
        culprit = next((f for f in form.walk() if f.name == error.name), form)
        return await again(str(error), culprit)
    if not name:
        return await again("say who answers: your name is recorded with the answer", None)
    try:
        await asyncio.to_thread(_data.submit_answer, app.store, run_id, asked, value, name)
    except InputValidationError as error:
        return await again(str(error), field_of_error(form, error.field))
    except NotWaitingError:
        return await _question_page(app, request, grant, run_id, task_id)
    except InvalidOptionError as error:  # the name: not a short one-line one
        return await again(f"your name: {error}", None)
    except AnswerTimeoutError:  # sent; its live owner takes it when it next looks
        note = "answer-pending"
    except StoreError as error:
        return await again(f"the store refused the answer: {error}", None)
    else:
        after = await asyncio.to_thread(app.record, run_id)
        paused = after is not None and after.status is RunStatus.PAUSED
        note = "answered-paused" if paused else "answered"
    target = question_path(run_id, task_id)
    if grant.access is Access.FULL:
        target = f"/runs/{run_id}"
    else:
        target += "?" + urlencode({"sig": grant.credential})
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}note={note}", status_code=303)


# -- actions on a run -------------------------------------------------------------------------


async def cancel_run(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    form = await request.form()
    refused = app.check_post(request, grant, form)
    if refused is not None:
        return refused
    run_id = request.path_params["run_id"]
    from .._cancel import cancel  # noqa: PLC0415 - the engine, only when used

    try:
        after = await asyncio.to_thread(cancel, run_id, store=app.store, wait=False)
    except (NothingToCancelError, StoreError) as error:
        return await _run_response(
            app, request, grant, "run.html", run_id, error=str(error), status=409
        )
    note = "cancelled" if after.status is RunStatus.CANCELLED else "cancel-sent"
    return RedirectResponse(f"/runs/{run_id}?note={note}", status_code=303)


async def resume_run(request: Request) -> Response:
    app: App = request.app.state.plait
    grant = app.grant(request)
    if grant.access is not Access.FULL:
        return app.refuse(request)
    form = await request.form()
    refused = app.check_post(request, grant, form)
    if refused is not None:
        return refused
    run_id = request.path_params["run_id"]
    record = await asyncio.to_thread(app.record, run_id)
    if record is None:
        return app.page(request, "missing.html", grant, code=404, what=f"run {run_id!r}")
    problem = _resume_problem(record)
    if problem:
        return await _run_response(
            app, request, grant, "run.html", run_id, error=problem, status=409
        )
    try:
        await app.children.resume(run_id)
    except ResumeRefusedError as error:
        return await _run_response(
            app, request, grant, "run.html", run_id, error=str(error), status=409
        )
    return RedirectResponse(f"/runs/{run_id}?note=resuming", status_code=303)


def _resume_problem(record: RunRecord) -> str:
    """Why the page cannot resume ``record``'s run, or ""."""
    from .._targets import trusted_target  # noqa: PLC0415

    if record.status is RunStatus.SUCCEEDED:
        return f"run {record.run_id!r} succeeded; there is nothing to resume"
    if not _resumable(record):
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


async def store_failed(request: Request, error: Exception) -> Response:
    """A store that failed (busy, out of reach): 503, saying so; the page can be reloaded."""
    return PlainTextResponse(
        f"the store failed: {error}; reload the page in a moment", status_code=503
    )


async def no_icon(request: Request) -> Response:
    return Response(status_code=204)


# -- the app ----------------------------------------------------------------------------------


def create_app(
    store_url: str,
    *,
    keys: Keys,
    user_header: str | None = None,
    routes: Sequence[BaseRoute] = (),
    poll_seconds: float | None = None,
) -> Any:
    """The ``plait serve`` web app (an ASGI app) over the store at ``store_url``.

    Args:
        store_url: the store's URL (resumes start ``plait resume --store URL`` with it).
        keys: the server token and the keys derived from its secret.
        user_header: a header set by a trusted proxy that names who answers.
        routes: more routes, mounted before the pages: the place for ``/metrics`` and the
            like (they check access themselves; the security headers apply to them too).
        poll_seconds: how often live pages look at the store (default ``_live.POLL_SECONDS``).
    """
    state = App(store_url, keys, user_header=user_header, poll_seconds=poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.children.stop()
            state.store.close()

    app = Starlette(
        routes=[
            *routes,  # /metrics and other features' routes go here (see the docstring)
            Route("/", home),
            Route("/runs", runs),
            Route("/runs/{run_id}", run_page),
            Route("/runs/{run_id}/part", run_part),
            Route("/runs/{run_id}/live", run_live),
            Route("/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
            Route("/runs/{run_id}/resume", resume_run, methods=["POST"]),
            Route("/runs/{run_id}/questions/{task_id:path}", question, methods=["GET", "POST"]),
            Route("/inbox", inbox),
            Route("/inbox/part", inbox_part),
            Route("/inbox/live", inbox_live),
            Route("/favicon.ico", no_icon),
            Mount("/static", StaticFiles(directory=_PACKAGE / "static"), name="static"),
        ],
        lifespan=lifespan,
        exception_handlers={StoreError: store_failed},
    )
    app.state.plait = state
    return Guard(app, keys)

"""What every page of ``plait serve`` shares: the store, the keys, the templates, the live
watches and the resume children (:class:`App`), and how a page is rendered, refused, or checked
before it acts (the Origin and CSRF rule of ``plait.web._auth``)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    Response,
)

from .._state import RunStatus
from ..cli._report import environment
from ..stores import RunRecord, Store, open_store
from . import _data
from ._auth import COOKIE, Access, Grant, Keys, question_path
from ._children import Children
from ._live import Watches
from ._run_view import run_sections

__all__ = ["NOTES", "RESUMABLE", "SECTIONS_CACHED", "App"]

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

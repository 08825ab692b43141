"""The web app of ``plait serve``: its routes, and the app factory.

Pages (GET): ``/runs`` (newest first, filters, cursor pagination), ``/runs/RUN`` (the report's
sections, live), ``/inbox`` (every open question, live), ``/runs/RUN/questions/TASK`` (a
question's form). Live streams (server-sent events): ``/runs/RUN/live``, ``/inbox/live``; the
parts they refresh: ``/runs/RUN/part``, ``/inbox/part``. Actions (POST, then a redirect to the
page): answer a question, cancel a run, resume it. Static files under ``/static``.

Every page but the static files needs the token (see ``plait.web._auth``), except a question's
page, which its signed link also opens. Every action made from a browser needs the server's
Origin and the page's CSRF token.

The pages that show are in ``_pages``, a question's form and its answer in ``_answering``,
cancel and resume in ``_actions``, what they share in ``_site``. :func:`create_app` builds it
all; its ``routes`` argument is where other features mount theirs
(``/metrics``: they come before the pages, and decide their own access).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..stores import StoreError
from ._actions import cancel_run, resume_run
from ._answering import question
from ._auth import Keys
from ._pages import (
    home,
    inbox,
    inbox_live,
    inbox_part,
    run_live,
    run_page,
    run_part,
    runs,
    runs_live,
    runs_part,
)
from ._security import Guard
from ._site import App

__all__ = ["create_app"]


_PACKAGE = Path(__file__).resolve().parents[1]  # plait/: its static files


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
            Route("/runs-part", runs_part),  # not under /runs/: a run may be called "part"
            Route("/runs-live", runs_live),
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

"""A question's page: its form (from its JSON Schema, see ``plait.web._forms``) and the answer
posted from it, which goes through ``plait.answer`` -- its validation, its way to the run,
wherever the run lives -- with who answered and ``via="web"``.

The page is open to the token and to the question's signed link (that question only). An
answer that does not fit comes back as the form, as sent, with the error by its field;
nothing is recorded."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import (
    RedirectResponse,
    Response,
)

from .._exceptions import (
    AnswerTimeoutError,
    InputValidationError,
    InvalidOptionError,
    NotWaitingError,
)
from .._state import RunStatus
from ..stores import StoreError
from . import _data
from ._auth import Access, Grant, question_path
from ._forms import Field, FormError, answer_from, field_of_error, form_for
from ._site import App

# -- a question -------------------------------------------------------------------------------


__all__ = ["question"]


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

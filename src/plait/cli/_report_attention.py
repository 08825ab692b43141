"""The run page's attention section, as data: what needs someone -- the failed tasks (error,
traceback cut to :data:`MAX_TRACEBACK`, a link to the last attempt's log), the questions still
waiting (with their deadlines and the answer a deadline gives), and the answers given, with who
gave them, when and how. No markup.

A mapped task's failures list at most :data:`FAILURES_SHOWN` of its failed instances, and one
line that says how many more there are (the timeline's group shows them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .._state import TaskStatus
from ..stores import InputRequest
from ..stores._listing import inbox_default
from ._report_format import clock, seconds
from ._report_logs import log_anchor
from ._timeline import _Run, _Task

__all__ = [
    "FAILURES_SHOWN",
    "MAX_TRACEBACK",
    "AnswerView",
    "AttentionView",
    "FailureView",
    "QuestionView",
    "attention_view",
]

#: Tracebacks longer than this are cut (their end is kept: it says what went wrong).
MAX_TRACEBACK = 8000

#: The most failed instances of one mapped task the failures list (the timeline shows more).
FAILURES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class FailureView:
    task_id: str
    attempts: int
    error_type: str
    message: str
    traceback: str  # cut to MAX_TRACEBACK, "" if none
    log_anchor: str | None  # the id of the last attempt's log on the page, if it said anything


@dataclass(frozen=True, slots=True)
class QuestionView:
    """A question still waiting for an answer."""

    task_id: str
    key: str
    prompt: str
    waited: str
    asked: str
    deadline: str | None  # None when no question of the run has a deadline; "none" for this one
    then: str | None = None  # the default used when the deadline passes (JSON), if known


@dataclass(frozen=True, slots=True)
class AnswerView:
    """A question answered, and who answered it, when and through what."""

    task_id: str
    key: str
    prompt: str
    answered_by: str | None
    answered_via: str | None
    answered_at: str | None


@dataclass(frozen=True, slots=True)
class AttentionView:
    failures: Sequence[FailureView]
    questions: Sequence[QuestionView]
    deadlines: bool  # whether the questions table has a deadline column
    answers: Sequence[AnswerView]
    #: The failures left out, one line per mapped task ("convert: 480 more failed instances").
    more_failures: Sequence[str] = ()
    #: How many tasks failed, those left out included.
    failed: int = 0


def attention_view(run: _Run, order: Sequence[_Task]) -> AttentionView:
    """The failures, questions and answers of ``run``, the failures in ``order``."""
    failures = []
    more = []
    failed_total = 0
    for task in order:
        if task.status is not TaskStatus.FAILED:
            continue
        failed = [t for t in run.instances.get(task.id, ()) if t.status is TaskStatus.FAILED]
        if not failed:  # a task, or a mapped task that failed as a whole
            failures.append(_failure(task, run))
            failed_total += 1
            continue
        failed_total += len(failed)
        failures.extend(_failure(t, run) for t in failed[:FAILURES_SHOWN])
        if len(failed) > FAILURES_SHOWN:
            left = len(failed) - FAILURES_SHOWN
            more.append(
                f"{task.id}: {left:,} more failed instance{'' if left == 1 else 's'}, "
                "in the timeline's group (filter it by status)"
            )
    deadlines = any(r.deadline is not None for r in run.questions)
    serializer = str(run.record.config.get("serializer", "json"))
    questions = [
        QuestionView(
            task_id=request.task_id,
            key=request.key,
            prompt=request.prompt,
            waited=seconds(max(0.0, run.end - request.requested_at)),
            asked=clock(request.requested_at),
            deadline=(
                (clock(request.deadline) if request.deadline is not None else "none")
                if deadlines
                else None
            ),
            then=_then(request, serializer) if request.deadline is not None else None,
        )
        for request in run.questions
    ]
    answers = [
        AnswerView(
            task_id=request.task_id,
            key=request.key,
            prompt=request.prompt,
            answered_by=request.answered_by,
            answered_via=request.answered_via,
            answered_at=None if request.answered_at is None else clock(request.answered_at),
        )
        for request in run.answers
    ]
    return AttentionView(failures, questions, deadlines, answers, more, failed_total)


def _failure(task: _Task, run: _Run) -> FailureView:
    error = task.error
    traceback = ""
    if error and error.traceback:
        traceback = error.traceback
        if len(traceback) > MAX_TRACEBACK:
            traceback = "\u2026 (cut)\n" + traceback[-MAX_TRACEBACK:]
        traceback = traceback.rstrip()
    said = (task.id, task.attempts) in run.logs
    return FailureView(
        task_id=task.id,
        attempts=task.attempts,
        error_type=error.type if error else "\u2014",
        message=error.message if error else "",
        traceback=traceback,
        log_anchor=log_anchor(task.id, task.attempts) if said else None,
    )


def _then(request: InputRequest, serializer: str) -> str | None:
    """The answer a question takes when its deadline passes, as JSON, if it is known and safe
    to read (see ``stores._listing.inbox_default``)."""
    if request.default is None and (request.schema is None or "default" not in request.schema):
        return None
    value = inbox_default(request.schema, request.default, serializer)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)

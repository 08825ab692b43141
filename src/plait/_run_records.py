"""The store's records of what a run tells its recorder: log entries of its events, the
requests of its questions (and the questions of stored requests), the logs that changed.

The recorder (``_recorder.py``) decides what to write and when; this module says what each
fact looks like once written, the same for every store: an event's data made JSON-able, a start
folded into the end of its attempt, a question's default made by the run's serializer.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Mapping
from enum import Enum
from itertools import compress
from typing import Any

from ._events import (
    Event,
    TaskCancelled,
    TaskFailed,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from ._logs import AttemptLog
from ._pause import NO_DEFAULT, Question
from ._results import TaskError
from ._serialization import Serializer
from .stores import EventRecordColumns, InputRequest, TaskLog
from .stores._columns import AttemptData

__all__ = ["ATTEMPT_ENDS", "Logged", "event_columns", "question_of", "request_of", "taken_logs"]

#: An event as the journal gives it (its class, time, task id and other fields), and the start
#: time of the attempt it ends, if that start was folded into it. A task's start and success
#: hold their attempt's number in place of their fields (``{"attempt": number}``).
Logged = tuple[type[Event], float, str | None, dict[str, Any] | int, float | None]

#: The events that end an attempt, into which its start is folded.
ATTEMPT_ENDS = frozenset({TaskSucceeded, TaskRetrying, TaskFailed, TaskCancelled})


def taken_logs(changed: deque[AttemptLog]) -> list[TaskLog]:
    """The logs that changed, as they are now. Taken after the batch's task records: a line said
    before an attempt ended is in the batch that records its end, or in an earlier one."""
    logs = []
    for _ in range(len(changed)):
        log = changed.popleft()
        lines = log.take()
        if lines is not None:
            logs.append(TaskLog(task_id=log.task_id, attempt=log.attempt, lines=lines))
    return logs


def question_of(request: InputRequest) -> Question:
    """The question a stored request asks (its answer, if any, aside)."""
    return Question(
        task_id=request.task_id,
        prompt=request.prompt,
        schema=request.schema,
        key=request.key,
        deadline=request.deadline,
        asked_at=request.requested_at,
    )


def request_of(question: Question, serializer: Serializer | None = None) -> InputRequest:
    """The store's record of ``question``, not answered yet; its default made by ``serializer``
    (none kept without one, or when the serializer cannot store it: the default is shown to
    people, never needed to run)."""
    default = None
    if serializer is not None and question.default is not NO_DEFAULT:
        try:
            default = serializer.dumps(question.default)
        except Exception:  # any serializer's refusal: not kept, nothing else
            default = None
    return InputRequest(
        task_id=question.task_id,
        key=question.key,
        prompt=question.prompt,
        schema=question.schema,
        requested_at=question.asked_at,
        deadline=question.deadline,
        default=default,
    )


def event_columns(events: list[Logged]) -> EventRecordColumns:
    """The log entries of ``events``, their data made JSON-able, and the starts folded into
    them as a column of their own (see ``EventRecordColumns``).

    Taken apart column by column in C (``zip``, ``map``): a batch of a busy run holds
    thousands of events, nearly all of them ends of attempts whose data is their number."""
    if not events:
        return EventRecordColumns(kinds=[], times=[], task_ids=[], data=[])
    kinds, times, task_ids, fields, started = zip(*events, strict=True)
    # The entries other than tasks' starts and successes (a few), found in C and given whole.
    places = compress(range(len(kinds)), map(operator.not_, map(_NUMBERS_ONLY.__contains__, kinds)))
    others = {
        i: {
            name: value if type(value) in _PLAIN else _jsonable(value)
            for name, value in fields[i].items()
        }
        for i in places
    }
    numbers = list(fields)
    for i in others:
        numbers[i] = 0
    return EventRecordColumns(
        kinds=list(map(_NAME, kinds)),
        times=times,
        task_ids=task_ids,
        data=AttemptData(numbers, others),
        started=started,
    )


#: The events whose data is their attempt's number (see ``Logged``).
_NUMBERS_ONLY = frozenset({TaskStarted, TaskSucceeded})
_NAME = operator.attrgetter("__name__")
_PLAIN = frozenset({int, float, str, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, TaskError):
        return {"type": value.type, "message": value.message, "traceback": value.traceback}
    if isinstance(value, Question):
        return {
            "prompt": value.prompt,
            "key": value.key,
            "schema": value.schema,
            "deadline": value.deadline,
        }
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)

"""Questions: a task that waits for a person's answer, and the answers that let it go on.

A task asks in one of two ways: its ``pause`` option (asked when it becomes ready, before it
runs), or ``ctx.request_input`` mid-task (the attempt ends with ``InputRequired``; settling
suspends the task here). Either way the question is kept by task (at most one open per task),
announced (``InputRequested``), and timed by a loop timer when it has a timeout: then its default
is used, or the task fails with ``InputTimeoutError``. :meth:`_Questions.give_input` (any thread)
checks an answer against the question's schema, records it, and lets the task run again -- from
the top, with the answer there for ``ctx.input`` / ``ctx.request_input``.
:meth:`_Questions.take_answer` does the same for an answer sent from another process through the
store (an ``answer`` request; see ``plait._answers``), and says what became of it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from ._events import InputReceived, InputRequested, TaskFailed, TaskReady
from ._exceptions import InputTimeoutError, InputValidationError, NotWaitingError
from ._pause import NO_DEFAULT, InputRequired, Question, schema_document, validate_answer
from ._requests import ANSWERED, RunRequest, answer_of, refusal
from ._results import TaskError
from ._run_state import _RunState
from ._state import TaskStatus

__all__: list[str] = []

_WAITING = TaskStatus.WAITING_FOR_INPUT  # read for every task made ready (see _announce_ready)


class _UnknownDefault:
    """The default of a mid-task question asked before a resume: only the task knows it."""


_UNKNOWN_DEFAULT: Any = _UnknownDefault()


class _Questions(_RunState):
    """Asking, expiring and answering; part of :class:`plait._engine._Run`."""

    def _announce_ready(self, ready: list[int], *, in_loop: bool) -> None:
        """Tell the world about tasks that became ready; ask the questions of those that wait."""
        status = self.scheduler.status
        for i in ready:
            if status[i] is _WAITING:
                pause = self.graph.options[i].pause
                earlier = self.questions.get(i)
                if earlier is not None and earlier.key != "":  # asked mid-way, before a resume
                    request = InputRequired(
                        earlier.key, earlier.prompt, earlier.schema, None, _UNKNOWN_DEFAULT
                    )
                else:
                    assert pause is not None
                    request = InputRequired(
                        "", pause.prompt, pause.schema, pause.timeout, pause.default
                    )
                self._ask(i, request, in_loop=in_loop)
            elif self.announce_ready:
                self._emit(TaskReady, task_id=self.graph.ids[i])

    def _ask(self, i: int, request: InputRequired, *, in_loop: bool) -> None:
        """Task ``i`` waits for an answer to ``request``. Under the lock."""
        now = time.time()
        earlier = self.questions.get(i)
        if earlier is not None and earlier.key == request.key:  # asked before this resume
            question = earlier
            if request.default is not _UNKNOWN_DEFAULT:  # a pause's: known again
                question = dataclasses.replace(earlier, default=request.default)
        else:
            question = Question(
                task_id=self.graph.ids[i],
                prompt=request.prompt,
                schema=schema_document(request.schema),
                key=request.key,
                deadline=None if request.timeout is None else now + request.timeout,
                asked_at=now,
                default=NO_DEFAULT if request.default is _UNKNOWN_DEFAULT else request.default,
            )
        self.questions[i] = question
        self._question_schemas[i] = request.schema
        self._question_defaults[i] = request.default
        if self.listening:
            self._emit(InputRequested, task_id=question.task_id, question=question)
        if question.deadline is not None and question.deadline <= now:
            # Asked before a resume and overdue now: expire it here, not from a timer, so that
            # a resumed run does not pause again before the timer fires.
            self._expire(i, question, in_loop=in_loop)
        elif question.deadline is not None:
            if in_loop:
                self._start_question_timer(i, question)
            else:
                self._loop.call_soon_threadsafe(self._start_question_timer_locked, i, question)

    def _start_question_timer_locked(self, i: int, question: Question) -> None:
        with self.lock:
            if self.questions.get(i) is question:
                self._start_question_timer(i, question)

    def _start_question_timer(self, i: int, question: Question) -> None:
        assert question.deadline is not None
        delay = max(0.0, question.deadline - time.time())
        self._question_timers[i] = self._loop.call_later(delay, self._question_expired, i, question)

    def _question_expired(self, i: int, question: Question) -> None:
        """A question's timer went off (loop thread)."""
        with self.lock:
            if self.questions.get(i) is not question:
                return  # answered meanwhile
            self._question_timers.pop(i, None)
            self._expire(i, question, in_loop=True)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _expire(self, i: int, question: Question, *, in_loop: bool) -> None:
        """Nobody answered ``question`` in time: use the default, or fail the task. Under the
        lock; the caller dispatches."""
        default = self._question_defaults.get(i, NO_DEFAULT)
        if default is _UNKNOWN_DEFAULT:
            # Asked before a resume: run the task again; it asks again, with its default,
            # and finds the deadline passed.
            if self.scheduler.answer(i) and self.announce_ready:
                self._emit(TaskReady, task_id=self.graph.ids[i])
        elif default is not NO_DEFAULT:
            self._receive(i, question.key, default)
        else:
            del self.questions[i]
            error = InputTimeoutError(
                f"nobody answered task {question.task_id!r} ({question.prompt!r}) within its "
                f"timeout; answer sooner, raise the timeout, or give the question a default"
            )
            self._fail_waiting(i, error, in_loop=in_loop)

    def _fail_waiting(self, i: int, error: BaseException, *, in_loop: bool) -> None:
        task_error = TaskError.from_exception(error)
        self.errors[i] = task_error
        self.finished_at[i] = time.time()
        decided = self.scheduler.fail(i)
        if self.listening:
            self._emit(
                TaskFailed, task_id=self.graph.ids[i], attempt=self.attempts[i], error=task_error
            )
        self._decided(i, decided, in_loop=in_loop)
        if self.critical[i] and not self.scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def give_input(
        self,
        task_id: str,
        value: Any,
        *,
        key: str | None = None,
        by: str | None = None,
        via: str | None = None,
    ) -> None:
        """Answer task ``task_id``'s question, from any thread; the run goes on with it.

        The answer is checked first; a task that has not asked yet but has a ``pause`` can be
        answered in advance. It is recorded with who gave it (``by``) and through what
        (``via``: ``api``, ``cli``, ``web``; see ``plait._answers``).

        Raises:
            KeyError: no task ``task_id``.
            InputValidationError: the answer does not fit the question's schema.
            PlaitError: the task has no question to answer.
        """
        i = self.graph.index[task_id]
        with self.lock:
            question = self.questions.get(i)
            pause = self.graph.options[i].pause
            if question is not None and key in (None, question.key):
                key, schema = question.key, self._question_schemas.get(i, question.schema)
            elif (
                pause is not None
                and key in (None, "")
                and self.scheduler.status[i]
                in (
                    TaskStatus.PENDING,
                    TaskStatus.WAITING_FOR_INPUT,
                )
            ):
                key, schema = "", pause.schema
            else:
                raise NotWaitingError(
                    f"task {task_id!r} is not waiting for input"
                    + (f" under key {key!r}" if key else "")
                    + f"; tasks waiting now: {sorted(q.task_id for q in self.questions.values())}"
                )
        validate_answer(task_id, schema, value, key=key)
        if self.recorder is not None:
            asked = question or Question(task_id=task_id, prompt=pause.prompt if pause else "")
            self.recorder.answered(
                dataclasses.replace(asked, key=key, schema=schema_document(schema)),
                value,
                time.time(),
                by=by,
                via=via,
            )
        if threading.get_ident() == self._loop_thread:
            self._receive_locked(i, key, value)
        else:
            self._loop.call_soon_threadsafe(self._receive_locked, i, key, value)

    def take_answer(self, request: RunRequest) -> str:
        """The owner's side of an ``answer`` request (see ``plait._answers``): give the run the
        answer it carries, checked as one given in this process (:meth:`give_input`), and
        return the request's outcome: ``answered``, or why it was refused. Called on the
        recorder's writer thread; never blocks: the answer is queued for the store (with the
        request's outcome, in the same batch) and the task goes on on the run's loop."""
        assert self.serializer is not None
        try:
            task_id, key, payload, by, via = answer_of(request)
            value = self.serializer.loads(payload)
        except Exception as error:  # not an answer plait sent, or not this run's serializer's
            return refusal(NotWaitingError(f"the answer could not be read: {error}"))
        if task_id not in self.graph.index:
            return refusal(NotWaitingError(f"run {self.run_id!r} has no task {task_id!r}"))
        try:
            self.give_input(task_id, value, key=key, by=by, via=via)
        except (InputValidationError, NotWaitingError) as error:
            return refusal(error)
        return ANSWERED

    def _receive_locked(self, i: int, key: str, value: Any) -> None:
        with self.lock:
            self._receive(i, key, value)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _receive(self, i: int, key: str, value: Any) -> None:
        """Record an answer (already checked) and let the task go on. Under the lock."""
        answers = self.answers[i]
        if answers is None:
            answers = self.answers[i] = {}
        answers[key] = value
        question = self.questions.get(i)
        if question is not None and question.key == key:
            del self.questions[i]
            timer = self._question_timers.pop(i, None)
            if timer is not None:
                timer.cancel()
        if self.listening:
            self._emit(InputReceived, task_id=self.graph.ids[i], key=key)
        if self.scheduler.answer(i) and self.announce_ready:
            self._emit(TaskReady, task_id=self.graph.ids[i])

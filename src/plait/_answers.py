"""Answering a run's questions from anywhere: :func:`answer` (and ``plait answer``, and the web
page of ``plait serve``, which call it).

Where the run is decides how the answer travels:

- **Live in this process**: the answer is handed to the run at once; the waiting task resumes.
- **Live in another process** (on this host or another that shares the store: a run with
  ``wait_for_input=True``, or a long run whose pause is still ahead): the answer goes to the
  run's owner as an ``answer`` request through the store (``plait._requests``, the channel of
  ``plait.cancel``). The owner takes it at its next look (it looks every 0.25 s),
  checks it as it would an answer given in its own process, records it with its provenance
  and lets the waiting task go on; then it writes the request's outcome, which the caller
  waits for: ``answered``, or ``refused: {"error": ..., "message": ..., "field": ...,
  "rule": ...}`` (JSON), raised here as the error the owner met. The value travels serialized
  by the run's serializer (base64 in the request's JSON data).
- **Paused**, or no live owner (its lease ran out: stale): the answer is checked and recorded
  in the store, under a lease of its own, for the next resume. So is an answer whose request
  the owner never took because it let the run go first (it paused, or died): the request is
  then written done, saying so.

Either way the answer is checked against the question's schema before anything is recorded,
and recorded with who gave it (``answered_by``, a name as given), when (``answered_at``) and
through what (``answered_via``: the Python API, the command line, the web page).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from ._cancel import _live_owner
from ._claims import _claim, _live_runs
from ._exceptions import AnswerTimeoutError, NotWaitingError
from ._pause import AnswerChannel, answer_provenance, validate_answer
from ._public import publish_exports
from ._requests import (
    ANSWERED,
    RequestKind,
    RequestState,
    RunRequest,
    answer_data,
    refused_with,
    send,
    sender,
)
from ._serialization import Serializer
from ._stored_runs import _record, _serializer_of
from .stores import InputRequest, LeaseHeldError, RunRecord, Store, WriteBatch
from .stores._open import using_store

__all__ = ["answer"]

#: Seconds between two looks at the store while a live owner takes an answer.
_WAIT_STEP = 0.05


def answer(
    run_id: str,
    task_id: str,
    value: Any,
    *,
    key: str | None = None,
    by: str | None = None,
    via: AnswerChannel | str = AnswerChannel.API,
    store: Store | str | None = None,
    serializer: Serializer | None = None,
    timeout: float | None = None,
) -> None:
    """Answer a question of run ``run_id``, wherever it runs, or paused; thread-safe.

    If the run is live in this process, it goes on with the answer at once (call this from
    another thread or coroutine: a web handler, a chat bot). If it is live in another process,
    the answer goes to it through the store, and this waits until that process has taken it
    (within about a second; see the module docstring). Otherwise the answer is checked and
    recorded in the store, for the next :func:`resume`, with ``serializer`` (the run's: the
    default, or the one it was made with).

    Args:
        run_id, task_id: the run, and the task whose question this answers.
        value: the answer; it must fit the question's schema.
        key: which of the task's questions (``""`` for its ``pause``; the key of a
            ``ctx.request_input``); default: the one it is asking.
        by: who answers, as they should be shown (a name, an e-mail address); recorded with the
            answer as ``answered_by``.
        via: through what: ``"api"`` (the default), ``"cli"`` or ``"web"``; recorded as
            ``answered_via``.
        store, serializer: the run's store and serializer, as for :func:`get_run`.
        timeout: the longest to wait for a run live in another process to take the answer, in
            seconds; None waits until it does, or lets the run go (then the answer is recorded
            in the store).

    Raises:
        InputValidationError: the answer does not fit the question's schema (nothing recorded).
        NotWaitingError: the task asks no question.
        RunNotFoundError: no such run.
        AnswerTimeoutError: the run's owner in another process did not take the answer within
            ``timeout``.
        LeaseHeldError: the run's owner in another process does not take answers through the
            store (an older plait); answer it in that process.
        RuntimeError: the run is live in another process and this is called from a running
            event loop, which waiting would block.
        InvalidOptionError: ``via`` is not a channel, or ``by`` is not a one-line name.
        SerializerMismatchError: the run was stored with another serializer than
            ``serializer`` (a pickled run needs ``serializer=plait.PickleSerializer()``).
    """
    by, channel = answer_provenance(by, via)
    live = _live_runs.get(run_id)
    if live is not None:
        live.give_input(task_id, value, key=key, by=by, via=channel.value)
        return
    with using_store(store) as the_store:
        record = _record(the_store, run_id)
        owner = _live_owner(record)
        if owner is not None:
            _answer_live(
                the_store,
                record,
                owner,
                task_id,
                value,
                key=key,
                serializer=serializer,
                by=by,
                via=channel,
                timeout=timeout,
            )
            return
        _answer_in_store(
            the_store, run_id, task_id, value, key=key, serializer=serializer, by=by, via=channel
        )


def _answer_live(
    the_store: Store,
    record: RunRecord,
    owner: str,
    task_id: str,
    value: Any,
    *,
    key: str | None,
    serializer: Serializer | None,
    by: str | None,
    via: AnswerChannel,
    timeout: float | None,
) -> None:
    """Send the answer to ``owner``, the live owner of ``record``'s run, and wait until it takes
    it (see the module docstring)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            f"run {record.run_id!r} is live in another process ({owner}): plait.answer waits "
            "for it to take the answer, which would block this event loop; call it in a "
            "thread (asyncio.to_thread)"
        )
    run_id = record.run_id
    asked = _open_question(the_store, run_id, task_id, key)
    if asked is not None:  # refuse a wrong answer here, before anything is sent
        validate_answer(task_id, asked.schema, value, key=asked.key)
    serializer = _serializer_of(the_store, record, serializer)
    data = answer_data(task_id, key, serializer.dumps(value), by=by, via=via.value)
    request = send(the_store, run_id, owner, RequestKind.ANSWER, data)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        # Whether the owner still holds the run, then the request: an owner writes the outcome
        # before it lets the run go, so a request read after seeing it gone is as it left it.
        still_owner = _live_owner(_record(the_store, run_id)) == owner
        sent = the_store.get_request(run_id, request.request_id)
        if sent is not None and sent.state is RequestState.DONE:
            if sent.outcome == ANSWERED:
                return
            refused = refused_with(sent.outcome, task_id)
            if refused is not None:
                raise refused
            break  # taken as the run ended: not acted on; record it below, if it may be
        if not still_owner:  # it let the run go (paused, died) before it acted on the answer
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise AnswerTimeoutError(
                f"run {run_id!r} is owned by {owner}, which did not take the answer for task "
                f"{task_id!r} within {timeout}s although its lease is live; the answer stays "
                "pending and that process takes it when it next looks",
                owner,
            )
        time.sleep(_WAIT_STEP)  # another process answers: only the store can tell when
    now = _record(the_store, run_id)
    live_now = _live_owner(now)
    if live_now == owner:  # it wrote the request done without acting on it: not understood
        raise LeaseHeldError(
            f"run {run_id!r} is live in process {owner}, which did not take the answer "
            f"({sent.outcome if sent else 'no outcome'}); answer it in that process",
            owner,
            now.lease_expires_at or 0.0,
        )
    if live_now is not None:
        # The run is live again, in another process (resumed meanwhile): answer it there.
        answer(run_id, task_id, value, key=key, by=by, via=via, store=the_store, timeout=timeout)
        return
    _answer_in_store(
        the_store,
        run_id,
        task_id,
        value,
        key=key,
        serializer=serializer,
        by=by,
        via=via,
        unanswered=request,
    )


def _open_question(
    the_store: Store, run_id: str, task_id: str, key: str | None
) -> InputRequest | None:
    """The stored question of ``task_id`` (under ``key``, if given) still waiting, or None."""
    for request in the_store.load_requests(run_id):
        if request.task_id == task_id and not request.answered and key in (None, request.key):
            return request
    return None


def _answer_in_store(
    the_store: Store,
    run_id: str,
    task_id: str,
    value: Any,
    *,
    key: str | None,
    serializer: Serializer | None,
    by: str | None,
    via: AnswerChannel,
    unanswered: RunRequest | None = None,
) -> None:
    """Check ``value`` and record it in the store as the answer to ``task_id``'s question;
    ``unanswered`` is an ``answer`` request the run's owner let go of before it took it,
    written done with the answer."""
    record = _record(the_store, run_id)
    open_questions = {r.task_id: r for r in the_store.load_requests(run_id) if not r.answered}
    request = open_questions.get(task_id)
    if request is None or key not in (None, request.key):
        raise NotWaitingError(
            f"task {task_id!r} of run {run_id!r} is not waiting for input; tasks waiting: "
            f"{sorted(open_questions)}"
        )
    validate_answer(task_id, request.schema, value, key=request.key)
    serializer = _serializer_of(the_store, record, serializer)
    owner = _claim(the_store, run_id, force=False)
    try:
        the_store.write(
            run_id,
            owner,
            WriteBatch(
                requests=[
                    dataclasses.replace(
                        request,
                        answered=True,
                        value=serializer.dumps(value),
                        answered_at=time.time(),
                        answered_by=by,
                        answered_via=via.value,
                    )
                ],
                requests_done=[]
                if unanswered is None
                else [
                    dataclasses.replace(
                        unanswered,
                        state=RequestState.DONE,
                        done_at=time.time(),
                        outcome=f"recorded in the store by {sender()}: the owner let the run go",
                    )
                ],
            ),
        )
    finally:
        the_store.release(run_id, owner)


publish_exports(globals())  # plait.X, not plait._answers.X: see plait._public

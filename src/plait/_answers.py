"""Answering a run's questions from anywhere: :func:`answer` (and ``plait answer``, and the web
page of ``plait serve``, which call it).

Where the run is decides how the answer travels:

- **Live in this process**: the answer is handed to the run at once; the waiting task resumes.
- **Paused** (no live owner): the answer is checked and recorded in the store, under a lease of
  its own, for the next resume.

Either way the answer is checked against the question's schema before anything is recorded,
and recorded with who gave it (``answered_by``, a name as given), when (``answered_at``) and
through what (``answered_via``: the Python API, the command line, the web page).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ._exceptions import NotWaitingError
from ._pause import AnswerChannel, answer_provenance, validate_answer
from ._public import publish_exports
from ._runs import _claim, _live_runs, _record, _serializer_of
from ._serialization import Serializer
from .stores import Store, WriteBatch
from .stores._open import using_store

__all__ = ["answer"]


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
) -> None:
    """Answer a question of run ``run_id``, live or paused; thread-safe.

    If the run is live in this process, it goes on with the answer at once (call this from
    another thread or coroutine: a web handler, a chat bot). Otherwise the answer is checked and
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

    Raises:
        InputValidationError: the answer does not fit the question's schema (nothing recorded).
        NotWaitingError: the task asks no question.
        RunNotFoundError: no such run.
        LeaseHeldError: the run is live in another process; answer it there.
        InvalidOptionError: ``via`` is not a channel, or ``by`` is not a one-line name.
        SerializerMismatchError: the run was stored with another serializer than
            ``serializer`` (a pickled run needs ``serializer=plait.PickleSerializer()``).
    """
    by, channel = answer_provenance(by, via)
    live = _live_runs.get(run_id)
    if live is not None:
        live.give_input(task_id, value, key=key)
        return
    with using_store(store) as the_store:
        _answer_in_store(
            the_store, run_id, task_id, value, key=key, serializer=serializer, by=by, via=channel
        )


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
) -> None:
    """Check ``value`` and record it in the store as the answer to ``task_id``'s question."""
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
                ]
            ),
        )
    finally:
        the_store.release(run_id, owner)


publish_exports(globals())  # plait.X, not plait._answers.X: see plait._public

"""What the pages read from the store, behind small functions.

Every store query the web app makes goes through here, so that the pages do not depend on
how a store answers it: a page of runs with the cursor of the next (:func:`runs_page`), the open
questions across runs in one query (:func:`open_questions`), an answer (:func:`submit_answer`),
and a cheap *probe* of a run or of the inbox, which changes whenever what the page shows may
have changed (the live updates compare probes; see ``plait.web._live``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from .._state import RunStatus
from ..stores import InputRequest, RunRecord, Store
from ..stores._listing import OpenQuestion, RunPage

#: How long an answer waits for a live owner (in another process) to take it.
ANSWER_SECONDS = 10.0

__all__ = [
    "inbox_probe",
    "open_questions",
    "questions_probe",
    "record_probe",
    "run_probe",
    "runs_page",
    "runs_probe",
    "submit_answer",
    "version",
]


def runs_page(
    store: Store,
    *,
    status: RunStatus | None = None,
    workflow: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> RunPage:
    """Up to ``limit`` runs, newest first, from ``cursor`` on (None: the newest).

    Raises:
        InvalidCursorError: ``cursor`` is not one a page handed out.
    """
    return store.list_runs(status=status, workflow=workflow, before=cursor, limit=limit)


def open_questions(store: Store, *, limit: int = 500) -> list[OpenQuestion]:
    """Every open question across runs, earliest deadline first (no deadline last, then the
    oldest first); one store query."""
    return store.open_questions(limit=limit)


def version(probe: Any) -> str:
    """A short name for a probe's value: the page carries the version it shows, the live stream
    sends the current one, and the page fetches its part again only when they differ."""
    return hashlib.blake2s(repr(probe).encode(), digest_size=8).hexdigest()


def record_probe(record: RunRecord | None) -> tuple[Any, ...] | None:
    """What changes whenever a run's page may change: every write moves ``updated_at``; a run
    whose owner went away turns stale with no write at all (its page then offers a resume)."""
    if record is None:
        return None
    return (record.status.value, record.updated_at, record.error, record.stale)


def run_probe(store: Store, run_id: str) -> tuple[Any, ...] | None:
    """The probe of run ``run_id`` as the store has it now (see :func:`record_probe`)."""
    return record_probe(store.get_run(run_id))


def runs_probe(runs: Sequence[RunRecord]) -> tuple[Any, ...]:
    """What changes whenever a page of runs may change: its runs, their status and writes."""
    return tuple((r.run_id, r.status.value, r.updated_at) for r in runs)


def inbox_probe(store: Store) -> tuple[Any, ...]:
    """What changes whenever the inbox may change: the open questions themselves."""
    return questions_probe(open_questions(store))


def questions_probe(questions: list[OpenQuestion]) -> tuple[Any, ...]:
    return tuple((q.run_id, q.task_id, q.key, q.deadline, q.run_status) for q in questions)


def submit_answer(store: Store, run_id: str, asked: InputRequest, value: Any, name: str) -> None:
    """Answer ``asked`` with ``value`` through ``plait.answer`` (its validation, its rules;
    a run live in another process gets it through the store), recorded as given by ``name``
    through the web page.

    Raises:
        InputValidationError: the answer does not fit (nothing recorded).
        NotWaitingError: the question is no longer open.
        InvalidOptionError: ``name`` is not a short one-line name.
        AnswerTimeoutError: a live owner did not take it within :data:`ANSWER_SECONDS`.
        StoreError: the store refused it.
    """
    from .._answers import answer  # noqa: PLC0415 - the engine, only when an answer comes

    answer(
        run_id,
        asked.task_id,
        value,
        key=asked.key,
        by=name,
        via="web",
        store=store,
        timeout=ANSWER_SECONDS,
    )

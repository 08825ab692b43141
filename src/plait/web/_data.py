"""What the pages read from the store, behind small functions.

Every store query the web app makes goes through here, so the pages never depend on how a
store answers it: a page of runs with the cursor of the next (:func:`runs_page`), the open
questions across runs (:func:`open_questions`), a run's events after a sequence number
(:func:`events_after`), and a cheap *probe* of a run or of the inbox that changes whenever what
the page shows may have changed (the live updates compare probes, see ``plait.web._live``).

Where a store offers the query itself (``list_runs(before=...)`` returning a page, an
``open_questions`` query, ``load_events(after=...)``) it is used; otherwise the same answer is
computed from the store's older methods, more slowly.
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._state import RunStatus
from ..stores import EventRecord, InputRequest, RunRecord, Store

__all__ = [
    "InboxItem",
    "RunsPage",
    "events_after",
    "inbox_probe",
    "open_questions",
    "run_probe",
    "runs_page",
    "submit_answer",
]

#: Statuses whose runs may hold an open question (a live run waiting, a paused one, a stale one).
_ASKING = (RunStatus.PAUSED, RunStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class RunsPage:
    """One page of runs, newest first, and the cursor of the next page (None on the last)."""

    runs: Sequence[RunRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxItem:
    """An open question, with what the inbox shows of its run."""

    run_id: str
    workflow: str
    task_id: str
    key: str
    prompt: str
    schema: Any
    asked_at: float
    deadline: float | None
    default: Any = None


def _takes(method: Any, name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _encode_cursor(record: RunRecord) -> str:
    raw = json.dumps([record.created_at, record.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        return float(created_at), str(run_id)
    except (ValueError, TypeError):
        return None


def runs_page(
    store: Store,
    *,
    status: RunStatus | None = None,
    workflow: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> RunsPage:
    """Up to ``limit`` runs, newest first, from ``cursor`` on (None: the newest)."""
    if _takes(store.list_runs, "before"):  # the store pages itself
        page = store.list_runs(status=status, workflow=workflow, before=cursor, limit=limit)  # type: ignore[call-arg]
        return RunsPage(list(page.runs), page.next_cursor)  # type: ignore[attr-defined]
    # An older store: read them all, then page here (O(runs) per page).
    runs = [
        r for r in store.list_runs(status=status, limit=10**9) if workflow in (None, r.workflow)
    ]
    runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    start = 0
    after = _decode_cursor(cursor) if cursor else None
    if after is not None:
        start = next((i for i, r in enumerate(runs) if (r.created_at, r.run_id) < after), len(runs))
    shown = runs[start : start + limit]
    more = start + limit < len(runs)
    return RunsPage(shown, _encode_cursor(shown[-1]) if more and shown else None)


def open_questions(store: Store, *, limit: int = 500) -> list[InboxItem]:
    """Every open question across runs, earliest deadline first (no deadline last, then the
    oldest first)."""
    query = getattr(store, "open_questions", None)
    if query is not None:
        return [_inbox_item(found) for found in query(limit=limit)]
    items: list[InboxItem] = []
    for status in _ASKING:
        for record in store.list_runs(status=status, limit=10**9):
            for request in store.load_requests(record.run_id):
                if request.answered:
                    continue
                items.append(
                    InboxItem(
                        run_id=record.run_id,
                        workflow=record.workflow,
                        task_id=request.task_id,
                        key=request.key,
                        prompt=request.prompt,
                        schema=request.schema,
                        asked_at=request.requested_at,
                        deadline=request.deadline,
                    )
                )
    items.sort(key=_inbox_order)
    return items[:limit]


def _inbox_order(item: InboxItem) -> tuple[bool, float, float]:
    return (item.deadline is None, item.deadline or 0.0, item.asked_at)


def _inbox_item(found: Any) -> InboxItem:
    """An inbox item from what a store's ``open_questions`` returns (whatever its record's
    name, it has these fields)."""

    def field(*names: str, default: Any = None) -> Any:
        for name in names:
            if hasattr(found, name):
                return getattr(found, name)
        return default

    return InboxItem(
        run_id=field("run_id"),
        workflow=field("workflow", default=""),
        task_id=field("task_id"),
        key=field("key", default=""),
        prompt=field("prompt", default=""),
        schema=field("schema"),
        asked_at=field("asked_at", "requested_at", default=0.0),
        deadline=field("deadline"),
        default=field("default"),
    )


def events_after(store: Store, run_id: str, after: int) -> list[EventRecord]:
    """The run's events past the first ``after`` (its log is append-only)."""
    if _takes(store.load_events, "after"):
        return store.load_events(run_id, after=after)  # type: ignore[call-arg]
    return store.load_events(run_id)[after:]


def run_probe(store: Store, run_id: str) -> tuple[Any, ...] | None:
    """What changes whenever the run's page may change: every write moves ``updated_at``."""
    record = store.get_run(run_id)
    if record is None:
        return None
    return (record.status, record.updated_at, record.error)


def inbox_probe(store: Store) -> tuple[Any, ...]:
    """What changes whenever the inbox may change: the open questions themselves."""
    return tuple((q.run_id, q.task_id, q.key, q.deadline) for q in open_questions(store))


def submit_answer(store: Store, run_id: str, asked: InputRequest, value: Any, name: str) -> None:
    """Answer ``asked`` with ``value`` through ``plait.answer`` (its validation, its rules),
    saying who answered, and that the answer came from the web page, where plait records it.

    Raises:
        InputValidationError: the answer does not fit (nothing recorded).
        NotWaitingError: the question is no longer open.
        StoreError: the store refused it (a run live elsewhere, when answers cannot reach it).
    """
    from .._runs import answer  # noqa: PLC0415 - the engine, only when an answer comes

    provenance: dict[str, Any] = {}
    for keyword, given in (("answered_by", name), ("by", name), ("via", "web")):
        if _takes(answer, keyword):
            provenance[keyword] = given
    answer(run_id, asked.task_id, value, key=asked.key, store=store, **provenance)

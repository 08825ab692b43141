"""What a store lists across runs: pages of runs, and the inbox of open questions.

Both are read by pages that many people look at (``plait runs``, ``plait inputs``, the web page
of ``plait serve``), so each is one query over an index, whatever the number of runs:

- **Pages of runs** (:class:`RunPage`). Runs come newest first, ordered by
  ``(created_at, run_id)`` descending; a page ends with the *cursor* of the next one, an opaque
  string that encodes the last run's ``(created_at, run_id)``. The next page is the runs
  strictly after that position, so a run created meanwhile (newer, hence before the cursor)
  neither shifts nor repeats the pages already handed out: keyset pagination, not an offset.
- **The inbox** (:class:`OpenQuestion`). Every question not answered yet, of runs that may
  still take an answer (paused or running), across all runs: earliest deadline first, questions
  with no deadline last, then the oldest first.

The cursor is ``base64url("<created_at repr>:<run_id>")``: a float's ``repr`` reads back as the
same float, so the position is exact; callers must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._exceptions import PlaitError
from .._serialization import JSONSerializer
from .._state import RunStatus
from ._base import RunRecord

__all__ = [
    "OPEN_RUN_STATUSES",
    "InvalidCursorError",
    "OpenQuestion",
    "RunPage",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
    "inbox_default",
    "page_of",
]

#: The statuses of runs whose questions can still be answered.
OPEN_RUN_STATUSES = (RunStatus.PAUSED, RunStatus.RUNNING)


class InvalidCursorError(PlaitError, ValueError):
    """A ``before`` cursor that no page of runs handed out (cut short, or made up)."""


class RunPage(NamedTuple):
    """One page of runs, newest first, and the cursor of the next page (None on the last).

    Pass ``next_cursor`` as ``before=`` to get the next page.
    """

    runs: list[RunRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenQuestion:
    """A question waiting for an answer, with what an inbox shows of its run.

    ``key`` tells a task's questions apart (``""`` for its ``pause``); ``deadline`` is the Unix
    time after which the task stops waiting (None if the question has no timeout).
    ``run_status`` is ``paused`` (the answer waits for a resume) or ``running`` (a live run
    takes it at once, or a stale one on its resume). ``default`` is what :func:`inbox_default`
    says: the answer used when the deadline passes, or else the default the schema suggests.
    """

    run_id: str
    workflow: str
    run_status: RunStatus
    task_id: str
    key: str
    prompt: str
    schema: Mapping[str, Any] | None
    asked_at: float
    deadline: float | None = None
    default: Any = None


def inbox_default(schema: Mapping[str, Any] | None, stored: Any, serializer: str) -> Any:
    """The default an inbox shows: the question's own (the ``default`` of its ``Pause`` or
    ``request_input``, ``stored`` by the run's ``serializer`` -- None if it has none) when it
    can be read safely, else the ``default`` its JSON Schema declares, else None.

    Safely: a JSON run's is decoded, an in-memory run's is the object itself; a pickled run's
    is never loaded (stored data is never code), nor is anything that is not plait's JSON.
    """
    if stored is not None:
        if serializer == "object":
            return stored
        if serializer == "json":
            try:
                return JSONSerializer().loads(bytes(stored))
            except Exception:  # not plait's JSON: fall back to the schema
                pass
    return None if schema is None else schema.get("default")


def encode_cursor(run: RunRecord) -> str:
    """The cursor of the page that follows ``run`` (the last run of a page)."""
    position = f"{run.created_at!r}:{run.run_id}".encode()
    return base64.urlsafe_b64encode(position).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(created_at, run_id)`` a cursor stands for.

    Raises:
        InvalidCursorError: ``cursor`` was not made by :func:`encode_cursor`.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, run_id = text.split(":", 1)
        created_at = float(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError(
            f"{cursor!r} is not a cursor of a page of runs; pass the next_cursor of a page"
        ) from None
    if not math.isfinite(created_at):
        raise InvalidCursorError(f"{cursor!r} is not a cursor of a page of runs")
    return created_at, run_id


def page_of(rows: Sequence[RunRecord], limit: int) -> RunPage:
    """The page made of ``rows``: the runs a query fetched with ``LIMIT limit + 1`` (one more
    than the page holds, which tells whether a next page exists)."""
    runs = list(rows[:limit])
    more = len(rows) > limit > 0
    return RunPage(runs, encode_cursor(runs[-1]) if more else None)


def check_limit(limit: int) -> None:
    """Refuse a page size that is not a whole number >= 0."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"limit must be a whole number >= 0, not {limit!r}")

"""Requests to a live run, sent through its store: how another process (on this host or another)
asks the run's owner to do something.

A *request* is a row in the store, addressed to the run's current owner (the process holding
its lease). Kinds are typed (:class:`RequestKind`): ``cancel`` today; answers to questions of a
live run later use the same channel. Each request has a life of three states::

    pending --(the owner takes it)--> taken --(the owner acts; its outcome is written)--> done

- **Sending** (:func:`send`) appends a request; its id is chosen by the sender, so sending the
  same request again changes nothing (idempotent).
- **Taking** is atomic in every store (:meth:`Store.take_requests`): a request is handed to one
  owner once, and only to the owner it is addressed to while that owner holds the run's lease.
  A request addressed to an owner that is gone is never taken by a later owner (a cancel meant
  for yesterday's process must not cancel today's resume); the sender sees the run go stale and
  deals with it itself.
- **Done**: the owner writes the outcome (what became of the run) with the run's next batch, in
  the same transaction as the state it describes (``cancelled`` and the run recorded cancelled
  arrive together). Anyone can read it back with :meth:`Store.get_request`.

How a request reaches the owner: the run's recorder thread already wakes at least every
``WRITE_INTERVAL`` (0.1 s) to write; at those wake-ups the owner's :class:`Inbox` looks in the
store every :data:`POLL_INTERVAL` seconds (one indexed read, or a PostgreSQL ``UPDATE`` that
matches nothing), so a request is acted on within about a quarter of a second, on any host that
shares the store. PostgreSQL's LISTEN/NOTIFY would save those reads, at the price of a second
connection per run; the poll is cheap enough (see ``make bench``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ._exceptions import InputValidationError, NotWaitingError, PlaitError

if TYPE_CHECKING:
    from .stores import Store

__all__ = [
    "ANSWERED",
    "POLL_INTERVAL",
    "Inbox",
    "RequestKind",
    "RequestState",
    "RunRequest",
    "answer_data",
    "answer_of",
    "refusal",
    "refused_with",
    "send",
    "sender",
]

#: Seconds between two looks of a live run's owner at the store for requests sent to it.
POLL_INTERVAL = 0.25

_log = logging.getLogger("plait.store")


class RequestKind(StrEnum):
    """What a request asks of a run's owner."""

    CANCEL = "cancel"  # stop the run as an interrupt would, and record it cancelled
    ANSWER = "answer"  # give a waiting task its answer (see plait._answers)


class RequestState(StrEnum):
    """Where a request is in its life: sent, taken by the owner, acted on."""

    PENDING = "pending"
    TAKEN = "taken"
    DONE = "done"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A request to a live run's owner, and what became of it.

    Attributes:
        request_id: unique within the run, chosen by the sender (sending it again is a no-op).
        kind: what is asked.
        owner: the owner the request is addressed to (the run's ``owner`` when it was sent);
            only that owner takes it.
        sent_at, sent_by: when, and by whom (``host:pid``).
        data: the request's arguments, JSON-able (nothing for a cancel).
        state: pending, taken or done.
        taken_at, done_at: when the owner took it, and when its outcome was written.
        outcome: what the owner did, in a few words (for a cancel: the status the run was
            recorded with, e.g. ``cancelled``).
    """

    request_id: str
    kind: RequestKind | str  # a kind this plait does not know (from a newer one) stays text
    owner: str
    sent_at: float
    sent_by: str
    data: Mapping[str, Any] = field(default_factory=dict)
    state: RequestState = RequestState.PENDING
    taken_at: float | None = None
    done_at: float | None = None
    outcome: str | None = None


# -- what an answer request carries, and what becomes of it ---------------------------------------

#: The outcome of an ``answer`` request the owner acted on: the answer is recorded, the task
#: goes on. A refused one's outcome is ``refused: {"error", "message", "field", "rule"}`` (JSON).
ANSWERED = "answered"


def answer_data(
    task_id: str, key: str | None, payload: bytes, *, by: str | None, via: str
) -> dict[str, Any]:
    """The data of an ``answer`` request: the task, the question's key (None: the one it asks),
    the value as the run's serializer made it (base64), who answered and through what."""
    value = base64.b64encode(payload).decode("ascii")
    return {"task_id": task_id, "key": key, "value": value, "by": by, "via": via}


def answer_of(request: RunRequest) -> tuple[str, str | None, bytes, str | None, str]:
    """What an ``answer`` request carries: ``(task_id, key, payload, by, via)``.

    Raises:
        ValueError: the request's data is not an answer's.
    """
    data = request.data
    try:
        task_id, key, by, via = data["task_id"], data["key"], data["by"], data["via"]
        payload = base64.b64decode(data["value"], validate=True)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"request {request.request_id!r} carries no answer: {error!r}") from None
    return str(task_id), key, payload, by, str(via)


def refusal(error: InputValidationError | NotWaitingError) -> str:
    """The outcome of an ``answer`` request the owner refused with ``error``."""
    document = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, InputValidationError):
        document |= {"field": error.field, "rule": error.rule}
    return "refused: " + json.dumps(document)


def refused_with(outcome: str | None, task_id: str) -> PlaitError | None:
    """The error a :func:`refusal` outcome stands for (to raise in the sender), or None for any
    other outcome."""
    if outcome is None or not outcome.startswith("refused: "):
        return None
    try:
        document = json.loads(outcome.removeprefix("refused: "))
    except ValueError:
        return None
    message = str(document.get("message", outcome))
    if document.get("error") == "InputValidationError":
        return InputValidationError(
            message,
            task_id=task_id,
            field=str(document.get("field", "")),
            rule=str(document.get("rule", "")),
        )
    return NotWaitingError(message)


def sender() -> str:
    """Who is sending, for a request's ``sent_by``: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send(
    store: Store, run_id: str, owner: str, kind: RequestKind, data: Mapping[str, Any] | None = None
) -> RunRequest:
    """Send a request of ``kind`` to ``owner``, the owner of run ``run_id``; return it as sent.

    Raises:
        RunNotFoundError: the store has no such run.
    """
    request = RunRequest(
        request_id=uuid.uuid4().hex,
        kind=kind,
        owner=owner,
        sent_at=time.time(),
        sent_by=sender(),
        data=dict(data or {}),
    )
    store.send_request(run_id, request)
    return request


class Inbox:
    """The owner's side of the channel for one live run; see the module docstring.

    Thread contract: :meth:`check` runs on the recorder's writer thread; :meth:`finish` and
    :meth:`drain` may run on any thread (they share one small lock).

    Args:
        store, run_id, owner: where to look, and for whom.
        handlers: what to do with a request of each kind (called on the writer thread; a handler
            must only hand the request to the run, never block). A handler that returns an
            outcome (text) has acted on the request, which is marked done with it at once; one
            that returns None leaves it taken, done when the run ends (:meth:`finish`). A
            request of a kind with no handler (sent by a newer plait) is written back done,
            saying so.
        every: seconds between two looks at the store.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        owner: str,
        handlers: Mapping[RequestKind, Callable[[RunRequest], str | None]],
        *,
        every: float = POLL_INTERVAL,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._owner = owner
        self._handlers = {str(kind): handler for kind, handler in handlers.items()}
        self._every = every
        self._next_look = 0.0
        self._lock = threading.Lock()
        self._taken: dict[str, RunRequest] = {}  # taken, not done yet
        self._done: list[RunRequest] = []  # done, not written yet
        self._outcome: str | None = None  # how the run ended, once it has

    def check(self, now: float) -> None:
        """Take the requests sent since the last look (at most every ``every`` seconds, by the
        monotonic ``now``) and hand each to its handler.

        A look that fails (the store is busy or unreachable) is logged and made again at the
        next interval: the requests wait in the store meanwhile.

        Raises:
            LeaseLostError: this owner no longer holds the run (its requests are not its own).
        """
        from .stores import LeaseLostError, StoreError  # noqa: PLC0415 - the stores import us

        if now < self._next_look:
            return
        self._next_look = now + self._every
        try:
            taken = self._store.take_requests(self._run_id, self._owner)
        except LeaseLostError:
            raise
        except StoreError as error:
            _log.warning("run %r: could not look for requests: %s", self._run_id, error)
            return
        for request in taken:
            handler = self._handlers.get(request.kind)
            if handler is None:
                self._mark_done(request, f"not understood: this plait knows no {request.kind!r}")
                continue
            with self._lock:
                ended = self._outcome
                if ended is None:
                    self._taken[request.request_id] = request
            if ended is not None:  # taken as the run ended: too late to act on
                self._mark_done(request, ended)
                continue
            _log.info("run %r: %s request from %s", self._run_id, request.kind, request.sent_by)
            outcome = handler(request)
            if outcome is not None:
                with self._lock:
                    self._taken.pop(request.request_id, None)
                self._mark_done(request, outcome)

    def finish(self, outcome: str) -> None:
        """Mark every request taken and not done yet as done with ``outcome`` (the run ended);
        they are written with the run's last batch."""
        with self._lock:
            self._outcome = outcome
            taken, self._taken = list(self._taken.values()), {}
        for request in taken:
            self._mark_done(request, outcome)

    def drain(self) -> list[RunRequest]:
        """The requests marked done since the last call, for the batch being written."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def _mark_done(self, request: RunRequest, outcome: str) -> None:
        done = replace(request, state=RequestState.DONE, done_at=time.time(), outcome=outcome)
        with self._lock:
            self._done.append(done)

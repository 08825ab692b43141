"""Live pages: one watcher per thing watched, however many pages watch it.

A page that updates live (a run, the inbox) opens a server-sent event stream. The stream
subscribes to a :class:`Watch` for what the page shows, keyed by name (``run:RUN``,
``inbox``): the first subscriber starts it, the last one to leave stops it. A watch asks the
store for a *probe* (see ``plait.web._data``: a run's status and ``updated_at``, which every
write moves; the inbox's open questions) every :data:`POLL_SECONDS`, in a worker thread, and
when the probe changes it tells each subscriber, which sends one ``change`` event with the
probe's version; a page whose version differs fetches its part again. So 20 pages on one run
cost the store one small query per interval, not 20 (and the app renders the new part once:
see ``App.sections``).

The store has no way to push a change, so looking at it on a timer is the one poll here; it
is the same wait the request channel makes (``plait._requests``), and it is what bounds the
event-to-screen time (at most :data:`POLL_SECONDS`, then one fragment fetch).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["POLL_SECONDS", "Watch", "Watches"]

#: Seconds between two probes of a watched thing.
POLL_SECONDS = 0.1

#: Seconds between two keep-alive comments on a quiet stream (proxies drop idle connections).
KEEPALIVE_SECONDS = 15.0


class Watch:
    """Probes one thing on a timer and wakes its subscribers when the probe changes."""

    def __init__(self, probe: Callable[[], Any], *, interval: float = POLL_SECONDS) -> None:
        self._probe = probe
        self._interval = interval
        self._subscribers: set[asyncio.Queue[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self.last: Any = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[Any]:
        """A queue that receives the probe's value each time it changes (only the latest one
        waits there), starting with the last value seen, if any."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        if self.last is not None:
            queue.put_nowait(self.last)
        self._subscribers.add(queue)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        self._subscribers.discard(queue)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                probe = await asyncio.to_thread(self._probe)
            except Exception:
                probe = self.last
            if probe != self.last:
                self.last = probe
                for queue in self._subscribers:
                    if queue.full():  # only the latest value matters
                        queue.get_nowait()
                    queue.put_nowait(probe)
            await asyncio.sleep(self._interval)


class Watches:
    """The live watches of one app, by key."""

    def __init__(self, *, interval: float = POLL_SECONDS) -> None:
        self._watches: dict[str, Watch] = {}
        self.interval = interval

    def __len__(self) -> int:
        return len(self._watches)

    async def stream(
        self, key: str, probe: Callable[[], Any], version: Callable[[Any], str]
    ) -> AsyncIterator[str]:
        """Server-sent events for ``key``: a ``change`` each time its probe changes, whose data
        is ``version(probe)`` (the first one too, so a page learns of what changed while it
        loaded; it compares the version with its own and fetches only if they differ)."""
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = Watch(probe, interval=self.interval)
        queue = watch.subscribe()
        try:
            yield "retry: 1000\n\n"
            while True:
                try:
                    value = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: change\ndata: {version(value)}\n\n"
        finally:
            watch.unsubscribe(queue)
            if not watch.subscribers and self._watches.get(key) is watch:
                del self._watches[key]

"""The Dask executor's window: how many attempts may be on the cluster at once.

The executor's :attr:`~plait.executors.DaskExecutor.capacity`, which the engine treats as an
implicit pool, is this window. Everything past it waits in plait's queue (free to cancel, in
plait's order), not in Dask's.

- **Why more than one per thread.** A worker thread that finishes an attempt idles until plait
  hears of it and its next attempt comes back: a round trip of about 10 ms (the client batches
  what it sends to the scheduler every 10 ms, the scheduler what it sends to workers every
  5 ms). One attempt waiting on each thread hides that for attempts longer than the round
  trip; shorter ones need several waiting, or the thread idles most of the time (400 no-ops on
  two threads, bench Part 8: 1.7x-1.9x the time of ``client.submit`` with two per thread,
  1.0x-1.2x with this window).
- **How wide.** The window starts at :data:`PREFETCH` (2) per worker thread of the cluster,
  at the start of each run (a run learns how long its own attempts are), and adapts as TCP's
  does: each attempt that comes back within :data:`SHORT_ROUND_SECONDS`
  (0.1 s) of being sent widens it by one, up to :data:`MAX_PREFETCH` (8) per thread; one that
  takes longer halves it, down to 2 per thread. The engine reads the capacity again as each
  attempt ends and resizes its pool (``Scheduler.resize_lane``); attempts already sent stay.
  A ``capacity`` given to the executor is a window that never moves.
- **Batches.** While the window is wide, an attempt ending frees one slot, and the attempt the
  engine starts in it would go to the scheduler alone, one ``update-graph`` message each. So
  while more than half the window (or more than its narrowest) is out, attempts submitted wait
  in the executor, and go together once enough have come back (:meth:`Window.sends`): the
  cluster still has work queued meanwhile. 400 no-ops (bench Part 8; cProfile of the settling
  thread): 2.4 attempts per message before, 5.8 after; the settling thread's CPU per task,
  per-thread ``/proc`` times, median of 5 runs, alternated with main, load 6-8 on 2 CPUs):
  800-1075 us on main, 375-550 once batches went untokenized, 275-350 with this. A narrow
  window sends at once. (An attempt waiting here is free to cancel; its timeout runs, as it
  would while it waited on the cluster.)
- **Timeouts** run from when the engine starts the attempt (it cannot know cheaply when a
  worker does), so they include the wait on the cluster behind the window's other attempts.
  The window is wide only while attempts come back within 0.1 s, so that wait is short; when
  long attempts follow short ones, those sent while it was wide wait once behind them (as a
  task in Dask's own queue would), and the window narrows. A task whose timeout is tight can
  have an executor of its own with a fixed ``capacity`` of its cluster's threads.
"""

from __future__ import annotations

__all__ = ["MAX_PREFETCH", "PREFETCH", "SHORT_ROUND_SECONDS", "Window"]

#: The narrowest window, in attempts per worker thread of the cluster: one running, one waiting
#: on its worker, so a thread that finishes starts the next attempt at once instead of idling
#: through the round trip to plait and back.
PREFETCH = 2

#: The widest window, in attempts per worker thread, reached while attempts are short.
MAX_PREFETCH = 8

#: An attempt back this soon after it was sent (seconds) is short: the window widens by one.
SHORT_ROUND_SECONDS = 0.1


class Window:
    """How many attempts may be on the cluster now (:attr:`size`), between :attr:`narrowest`
    and :attr:`widest`. Changed by :meth:`adapt` on the client's event loop, read by the
    engine under its lock (an int: a read sees one value or the other)."""

    __slots__ = ("narrowest", "size", "widest")

    def __init__(self, narrowest: int, widest: int) -> None:
        self.narrowest = narrowest
        self.widest = widest
        self.size = narrowest

    @classmethod
    def fixed(cls, size: int) -> Window:
        """A window that never moves (a ``capacity`` given to the executor)."""
        return cls(size, size)

    @classmethod
    def for_threads(cls, threads: int) -> Window:
        """The adaptive window of a cluster with ``threads`` worker threads in all."""
        return cls(PREFETCH * threads, MAX_PREFETCH * threads)

    def adapt(self, seconds: float) -> None:
        """An attempt came back ``seconds`` after it was sent: widen by one if that was short
        (up to :attr:`widest`), else halve (down to :attr:`narrowest`)."""
        if seconds <= SHORT_ROUND_SECONDS:
            if self.size < self.widest:
                self.size += 1
        elif self.size > self.narrowest:
            self.size = max(self.narrowest, self.size // 2)

    def sends(self, out: int) -> bool:
        """Whether attempts waiting to go should be sent now, with ``out`` attempts on the
        cluster: yes while no more than half the window (or its narrowest) is out; while more
        is, the cluster has work queued, and they wait to go with the next ones, as one batch.
        """
        return out <= max(self.narrowest, self.size // 2)

    def __repr__(self) -> str:
        return f"<Window {self.size} of {self.narrowest}..{self.widest}>"

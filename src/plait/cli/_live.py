"""The live view of a run on a terminal: a progress bar, counts by status, what is running.

:class:`LiveView` is the watcher ``plait run`` uses on a terminal (see :mod:`plait.cli._watcher`
for the others): a rich ``Live`` area with a progress bar of finished/total tasks, the counts by
status and the running tasks with their elapsed time (the :data:`SHOWN_RUNNING` longest-running
first); retries, failures, skips (with why: see ``plait._rules.skip_note``) and questions are
printed above it as they happen. A mapped task's instances (``convert[3]``, see ``_mapped``)
count as tasks; while more than ``_mapped.COLLAPSE_OVER`` of them exist, the running ones are
one line for the mapped task (``▶ convert [12/20 done · 1 failed · 4 running]``), and their
failures and skips are not printed one by one beyond ``_outcome.NOTES_PER_GROUP`` (the summary
counts them).

Events only update counters, under the view's lock; a thread of the view's own redraws the area
at :data:`REFRESH_PER_SECOND`, as rich itself would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from rich.console import Console, Group, RenderableType
from rich.text import Text

from .._events import (
    Event,
    InputReceived,
    InputRequested,
    RunStarted,
    TaskCancelled,
    TaskFailed,
    TaskLogged,
    TaskMapped,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from .._state import TaskStatus
from ._mapped import COLLAPSE_OVER, instance_of
from ._outcome import NOTES_PER_GROUP, SHOWN_ORDER, counts_text, last_line
from ._summary import format_seconds
from ._watcher import Watcher, said, skip_why

if TYPE_CHECKING:
    from rich.live import Live

__all__ = ["REFRESH_PER_SECOND", "SHOWN_RUNNING", "LiveView"]

#: How often the live view redraws.
REFRESH_PER_SECOND = 10

#: How many running tasks the live view lists (the longest-running first).
SHOWN_RUNNING = 8


class LiveView(Watcher):
    """A rich ``Live`` area: progress bar, counts by status, running tasks with elapsed time.

    Retries, failures and questions are printed above the area as they happen. :meth:`render`
    draws the area from the recorded state; it is what the refresher thread shows ten times a
    second, and what tests look at.
    """

    def __init__(
        self, console: Console, *, store: str | None = None, verbose: bool = False
    ) -> None:
        super().__init__(console, store=store)
        self.verbose = verbose
        self._lock = threading.Lock()
        self.total = 0
        self.status: dict[str, TaskStatus] = {}
        self.counts: Counter[TaskStatus] = Counter()
        self.running: dict[str, float] = {}  # task id -> when its attempt started; oldest first
        #: Each mapped task's instances: how many (from TaskMapped), by status (those seen), and
        #: when the first one started.
        self.sizes: dict[str, int] = {}
        self.groups: dict[str, Counter[TaskStatus]] = {}
        self.group_started: dict[str, float] = {}
        self._noted: Counter[str] = Counter()  # failures and skips printed, by mapped task
        self.retries = 0
        self.started_at: float | None = None
        self._notes: list[Text] = []
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="plait-cli-live", daemon=True)

    # -- recording (under the engine's lock: quick) --

    def _set(self, task_id: str, status: TaskStatus) -> None:
        if self.sizes.get(task_id):  # a mapped task with instances counts as them
            return
        before = self.status.get(task_id)
        if before is not None:
            self.counts[before] -= 1
        self.status[task_id] = status
        self.counts[status] += 1
        named = instance_of(task_id)
        if named is not None:
            group = self.groups.get(named[0])
            if group is None:
                group = self.groups[named[0]] = Counter()
            if before is not None:
                group[before] -= 1
            group[status] += 1

    def _note(self, task_id: str, note: Text) -> None:
        """Print ``note`` above the area, unless it is about an instance of a mapped task that
        already had :data:`NOTES_PER_GROUP` printed."""
        named = instance_of(task_id)
        if named is not None:
            self._noted[named[0]] += 1
            if self._noted[named[0]] > NOTES_PER_GROUP:
                return
        self._notes.append(note)

    def seed(self, succeeded: Sequence[str]) -> None:
        with self._lock:
            for task_id in succeeded:
                self._set(task_id, TaskStatus.SUCCEEDED)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self.total = event.tasks
                self.started_at = event.time
            elif isinstance(event, TaskMapped):
                self.sizes[event.task_id] = event.count
                before = self.status.pop(event.task_id, None) if event.count else None
                if before is not None:
                    self.counts[before] -= 1
            elif isinstance(event, TaskStarted):
                self.running[event.task_id] = event.time
                self._set(event.task_id, TaskStatus.RUNNING)
                named = instance_of(event.task_id)
                if named is not None:
                    self.group_started.setdefault(named[0], event.time)
            elif isinstance(event, TaskSucceeded):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.SUCCEEDED)
            elif isinstance(event, TaskRetrying):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.PENDING)
                self.retries += 1
                self._notes.append(
                    Text("↻ ", style="yellow")
                    .append(event.task_id, style="bold")
                    .append(
                        f" attempt {event.attempt} failed, retrying in "
                        f"{format_seconds(event.delay)}: {last_line(event.error)}"
                    )
                )
            elif isinstance(event, TaskFailed):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.FAILED)
                # A mapped task fails with its instances, and made no attempt of its own.
                attempt = f" (attempt {event.attempt})" if event.task_id not in self.sizes else ""
                self._note(
                    event.task_id,
                    Text("✗ ", style="red")
                    .append(event.task_id, style="bold red")
                    .append(f" failed{attempt}: {last_line(event.error)}"),
                )
            elif isinstance(event, TaskSkipped):
                self.running.pop(event.task_id, None)  # it may have skipped itself
                self._set(event.task_id, TaskStatus.SKIPPED)
                self._note(
                    event.task_id,
                    Text("⤼ ", style="yellow")
                    .append(event.task_id, style="bold")
                    .append(f" skipped: {skip_why(event)}"),
                )
            elif isinstance(event, TaskCancelled):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.CANCELLED)
            elif isinstance(event, InputRequested):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.WAITING_FOR_INPUT)
                self._notes.append(
                    Text("⏸ ", style="cyan")
                    .append(event.task_id, style="bold")
                    .append(f" waits for an answer: {event.question.prompt}")
                )
            elif isinstance(event, InputReceived):
                self._set(event.task_id, TaskStatus.PENDING)
            elif isinstance(event, TaskLogged) and self.verbose and not event.echoed:
                self._notes.append(
                    Text(said(event), style="red" if event.stream == "stderr" else "dim")
                )

    # -- drawing (on the refresher thread) --

    def render(self, now: float | None = None) -> RenderableType:
        """The live area as it stands (``now``: the time to measure elapsed times against)."""
        now = time.time() if now is None else now
        with self._lock:
            # A mapped task with instances counts as them, once it has expanded.
            total = self.total + sum(
                self._size(mapped) - (1 if self.sizes.get(mapped) else 0)
                for mapped in self.sizes.keys() | self.groups.keys()
            )
            counts = dict(self.counts)
            running = self._running_lines()
            retries = self.retries
            started_at = self.started_at
        if started_at is None:
            # Before RunStarted the total is unknown; a resume has seeded the tasks it keeps,
            # and a bar drawn now would read "3/0 tasks".
            return Text("starting…", style="dim")
        # Imported here: only a terminal draws them, and a command in a pipe starts faster.
        from rich.progress_bar import ProgressBar  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415

        done = sum(counts.get(s, 0) for s in TaskStatus if s.is_final)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(
                total=max(total, 1),
                completed=done,
                width=40,
                complete_style="blue",
                finished_style="green",
            ),
            Text(f"{done}/{total} tasks", style="bold"),
            Text(format_seconds(now - started_at) if started_at else "", style="dim"),
        )
        shown = {s.value: counts.get(s, 0) for s in SHOWN_ORDER}
        shown["pending"] = max(0, total - sum(n for s, n in counts.items() if s.value != "pending"))
        line = counts_text(shown)
        if retries:
            line.append(f" · {retries} retr{'y' if retries == 1 else 'ies'}", style="yellow")
        parts: list[RenderableType] = [bar, line]
        listed, more = running[:SHOWN_RUNNING], sum(n for _, _, n in running[SHOWN_RUNNING:])
        if listed:
            table = Table.grid(padding=(0, 2))
            for what, since, _ in listed:
                table.add_row(Text(f"  ▶ {what}", style="blue"), Text(format_seconds(now - since)))
            if more:
                table.add_row(Text(f"    … and {more} more running", style="dim"), Text(""))
            parts.append(table)
        return Group(*parts)

    def _size(self, mapped: str) -> int:
        """How many instances ``mapped`` has: as it said when it expanded, or as many as
        were seen (a resumed run's earlier instances, say)."""
        group = self.groups.get(mapped)
        return max(self.sizes.get(mapped, 0), group.total() if group else 0)

    def _running_lines(self) -> list[tuple[str, float, int]]:
        """What runs, oldest first, as (what the line says, since when, how many tasks it
        stands for): a task, or a mapped task with more than ``COLLAPSE_OVER`` instances,
        ``convert [12/20 done · 1 failed · 4 running]``, since its first instance started."""
        lines: list[tuple[str, float, int]] = []
        seen: set[str] = set()
        for task_id, since in self.running.items():
            named = instance_of(task_id)
            group = self.groups.get(named[0]) if named is not None else None
            if named is None or group is None or self._size(named[0]) <= COLLAPSE_OVER:
                lines.append((task_id, since, 1))
                continue
            if named[0] in seen:
                continue
            seen.add(named[0])
            done = sum(n for status, n in group.items() if status.is_final)
            words = [f"{done:,}/{self._size(named[0]):,} done"]
            if group[TaskStatus.FAILED]:
                words.append(f"{group[TaskStatus.FAILED]:,} failed")
            words.append(f"{group[TaskStatus.RUNNING]:,} running")
            first = self.group_started.get(named[0], since)
            lines.append((f"{named[0]} [{' · '.join(words)}]", first, group[TaskStatus.RUNNING]))
        return lines

    def _flush(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        live = self._live
        assert live is not None
        for note in notes:
            live.console.print(note)
        live.update(self.render(), refresh=True)

    def _refresh(self) -> None:
        # Redraw at a fixed rate, as rich's own auto-refresh does; events only touch counters.
        while not self._stop.wait(1 / REFRESH_PER_SECOND):
            self._flush()

    def __enter__(self) -> Self:
        from rich.live import Live  # noqa: PLC0415 - only a terminal needs it

        self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=True)
        self._live.start()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()
        assert self._live is not None
        self._live.stop()

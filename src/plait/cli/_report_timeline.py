"""The run page's timeline (Gantt chart), as data: rows of bars with their positions and
tooltips, no markup.

One row per task, ordered by first start (tasks that never ran last); one bar per attempt, wait
or marker, each with its tooltip (task, attempt, times, the error, the last lines of its log).
A skipped task's row says why it was skipped.

A mapped task is a :class:`GroupView` (see ``_mapped``): its own row, with one aggregate bar
from its first instance's start to its last one's end and its instances' counts by status,
then the rows of the instances it shows -- all of them for a small group (shown open), at most
``_mapped.INSTANCE_ROWS`` for a large one (collapsed): every instance that did not succeed, then
the slowest others. So a run of 100,000 instances draws one row and a few hundred, not 100,000.

Positions along the timeline are percentages of its span (strings ready for a ``style``), so
the page lays out the bars with no script.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from .._logs import LogLine
from ._mapped import COLLAPSE_OVER, counts_text, shown_instances
from ._report_format import offset, pct, plural, seconds, tick_label
from ._report_layout import ticks
from ._timeline import _ORDER, _Run, _Segment, _Task

__all__ = [
    "LOG_LINES_IN_TIP",
    "BarView",
    "GroupView",
    "RowView",
    "TimelineView",
    "gantt_order",
    "log_line",
    "timeline_view",
]

#: The lines of an attempt's log its bar's tooltip shows (its last ones).
LOG_LINES_IN_TIP = 8


@dataclass(frozen=True, slots=True)
class BarView:
    """A bar (or the faint lifeline) of a timeline row: its classes, position and tooltip."""

    classes: str
    style: str
    title: str = ""
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class RowView:
    kind: ClassVar[str] = "row"

    task_id: str
    look: str
    critical: bool
    work: str
    lifeline: str | None  # the style of the line from the first start to the last end
    bars: Sequence[BarView]
    #: What the scheduler weighed the task by (seconds, shown beside its actual ``work``) and
    #: where that came from (given, learned, function, unknown); "" when the run recorded none.
    estimate: str = ""
    estimate_source: str = ""
    #: Why a skipped task was skipped, in words ("" for any other task).
    note: str = ""


@dataclass(frozen=True, slots=True)
class GroupView:
    """A mapped task: its own row (one aggregate bar), its counts, the instance rows shown."""

    kind: ClassVar[str] = "group"

    row: RowView
    total: int  # its instances
    counts: Sequence[tuple[str, int]]  # (look, instances), the looks in the filter's order
    summary: str  # "convert [20]: 19 succeeded, 1 failed"
    instances: Sequence[RowView]
    shown: str  # which instances the rows are, when not all of them
    open: bool  # a small group is shown open

    @property
    def anchor(self) -> str:
        return f"group-{self.row.task_id}"


@dataclass(frozen=True, slots=True)
class TimelineView:
    ticks: Sequence[tuple[str, str]]  # (left, label)
    gridlines: Sequence[str]  # x as a fraction of the track
    rows: Sequence[RowView | GroupView]
    looks: Sequence[str]  # the statuses the filter offers

    @property
    def count(self) -> int:
        """How many rows the page draws (a group's and its instances' each count)."""
        return sum(1 + len(r.instances) if isinstance(r, GroupView) else 1 for r in self.rows)

    @property
    def scroll(self) -> bool:
        return self.count > 40


def gantt_order(tasks: Iterable[_Task], run: _Run) -> list[_Task]:
    """``tasks`` by first start (a mapped task's: its first instance's), the ones that never
    started last, each set in definition order."""

    def key(task: _Task) -> tuple[int, float, int]:
        first = _first_start(task, run)
        return (0, first, task.index) if first is not None else (1, 0.0, task.index)

    return sorted(tasks, key=key)


def _first_start(task: _Task, run: _Run) -> float | None:
    span = run.spans.get(task.id)
    starts = [s for s in (task.first_start, span[0] if span else None) if s is not None]
    return min(starts, default=None)


def timeline_view(run: _Run, order: Sequence[_Task]) -> TimelineView:
    """The timeline of ``run``, its rows in ``order`` (see :func:`gantt_order`)."""
    step, at = ticks(run.span)
    rows: list[RowView | GroupView] = []
    for task in order:
        group = run.instances.get(task.id)
        rows.append(_row(task, run) if group is None else _group(task, group, run))
    return TimelineView(
        ticks=[(pct(100 * t / run.span), tick_label(t, step)) for t in at],
        gridlines=[f"{t / run.span:.5f}" for t in at if t > 0],
        rows=rows,
        looks=_ORDER,
    )


def _row(task: _Task, run: _Run) -> RowView:
    span = run.span
    timed = [s for s in task.segments if s.kind != "marker"]
    lifeline = None
    if len(timed) > 1:  # a faint line from the first start to the last end
        first = min(s.start for s in timed)
        last = max(s.end for s in timed)
        lifeline = (
            f"left:{pct(100 * (first - run.start) / span)};width:{pct(100 * (last - first) / span)}"
        )
    return RowView(
        task_id=task.id,
        look=task.css,
        critical=task.critical,
        work=seconds(task.work) if task.work else "",
        lifeline=lifeline,
        bars=[_bar(task, segment, run) for segment in task.segments],
        estimate="" if task.estimate is None else seconds(task.estimate[0]),
        estimate_source="" if task.estimate is None else task.estimate[1],
        note=task.skip_note,
    )


def _bar(task: _Task, segment: _Segment, run: _Run) -> BarView:
    left = pct(100 * (segment.start - run.start) / run.span)
    classes = f"bar {segment.kind} status-{segment.status}"
    if segment.retried:
        classes += " retried"
    if segment.kind == "marker":
        style = f"left:{left}"
    else:
        style = f"left:{left};width:{pct(100 * segment.duration / run.span)}"
    return BarView(
        classes=classes,
        style=style,
        title=_bar_title(task, segment, run),
        attempt=segment.attempt if segment.kind == "attempt" else None,
    )


def _group(task: _Task, instances: Sequence[_Task], run: _Run) -> GroupView:
    looks = run.looks[task.id]
    counts = [(look, looks[look]) for look in _ORDER if looks[look]]
    label = f"{task.id} [{len(instances):,}]"
    summary = f"{label}: {counts_text(counts)}"
    span = run.spans.get(task.id)
    bars = [_bar(task, s, run) for s in task.segments]  # its own: skipped as a whole, say
    work = sum(run.work[t.id] for t in instances) + task.work
    if span is not None:
        first, last = span
        attempts = sum(t.attempts for t in instances)
        title = (
            f"{summary}\n{plural(attempts, 'attempt')}, {seconds(work)} of work\n"
            f"{offset(first - run.start)} \u2192 {offset(last - run.start)} "
            f"({seconds(last - first)}, first start \u2192 last end)"
        )
        left = pct(100 * (first - run.start) / run.span)
        width = pct(100 * (last - first) / run.span)
        bars.insert(0, BarView(f"bar group status-{task.css}", f"left:{left};width:{width}", title))
    shown = shown_instances(instances, run.work)
    if len(shown) < len(instances):
        note = (
            f"Showing {len(shown):,} of {len(instances):,} instances: every one that did not "
            "succeed, then the slowest of the others."
        )
    else:
        note = ""
    row = RowView(
        task_id=task.id,
        look=task.css,
        critical=task.critical,
        work=seconds(work) if work else "",
        lifeline=None,
        bars=bars,
        estimate="" if task.estimate is None else seconds(task.estimate[0]),
        estimate_source="" if task.estimate is None else task.estimate[1],
        note=task.skip_note,
    )
    return GroupView(
        row=row,
        total=len(instances),
        counts=counts,
        summary=summary,
        instances=[_row(t, run) for t in shown],
        shown=note,
        open=len(instances) <= COLLAPSE_OVER,
    )


def _bar_title(task: _Task, segment: _Segment, run: _Run) -> str:
    start, end = segment.start - run.start, segment.end - run.start
    if segment.kind == "marker":
        return f"{task.id}\n{segment.note} at {offset(start)}"
    if segment.kind == "waiting":
        head = f"{task.id} \u2014 waiting for input"
        lines = [head, f"question: {segment.note}"] if segment.note else [head]
    else:
        what = "retried" if segment.retried else segment.status
        if not run.has_events and segment.attempt > 1:  # one bar for all the attempts
            lines = [f"{task.id} \u2014 attempts 1\u2013{segment.attempt}, {what}"]
        else:
            of = f" of {task.attempts}" if task.attempts >= segment.attempt > 0 else ""
            lines = [f"{task.id} \u2014 attempt {segment.attempt}{of}, {what}"]
        if segment.note:
            lines.append(segment.note)
    lines.append(f"{offset(start)} \u2192 {offset(end)} ({seconds(segment.duration)})")
    if segment.kind == "attempt" and task.estimate is not None:
        estimate, source = task.estimate
        lines.append(f"estimate {seconds(estimate)} ({source}), actual {seconds(task.work)}")
    said = run.logs.get((task.id, segment.attempt)) if segment.kind == "attempt" else None
    if said:
        shown = said[-LOG_LINES_IN_TIP:]
        some = f"last {len(shown)} of " if len(said) > len(shown) else ""
        lines.append(f"log ({some}{plural(len(said), 'line')}):")
        lines.extend(log_line(line, run) for line in shown)
    return "\n".join(lines)


def log_line(line: LogLine, run: _Run) -> str:
    """A line as the page shows it: its time in the run, ``!`` for stderr, and the text."""
    mark = {"stderr": "!", "plait": "~"}.get(line.stream, "|")
    return f"{offset(line.time - run.start):>8} {mark} {line.text}"

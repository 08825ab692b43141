"""What a run's page shows, as data: the view model of the report (and of ``plait serve``'s run
page), built from the run's timeline (``_timeline._Run``), with no markup in it.

Every value here is plain text or a number, formatted for people (durations, clock times,
tooltips) but not escaped: the templates escape everything they print (Jinja2 autoescaping),
so a task id or an error that holds markup shows as text. The pieces follow the page, each
but the header made in a module of its own (and re-exported here, with the whole):

- :class:`HeaderView`: the run's identity, status and summary figures (makespan, total task
  time, achieved parallelism, critical path, tasks by status; see ``_summary``);
- :class:`AttentionView` (``_report_attention``): the failed tasks (error, traceback, a link to
  the last attempt's log), the questions still waiting, and the answers given, with who gave
  them, when and how;
- :class:`TimelineView`: the Gantt chart (``_report_timeline``): the axis' ticks, then one row
  per task ordered by first start (tasks that never ran last), one bar per attempt, wait or
  marker, each with its tooltip; a mapped task is a group: one row with its instances' counts,
  then the instances' rows (see ``_mapped``);
- :class:`TaskAttemptsView` (``_report_logs``): a task's attempts and what each said (its log,
  at most :data:`LOG_LINES_SHOWN` lines), one per task that said something;
- :class:`GraphView` (``_report_graph``): the DAG, nodes coloured by status, laid out by
  ``_report_layout`` (a mapped task is one node, ``convert [20]``).

A mapped task with many instances costs the page what a few hundred tasks do, never one row,
failure or log per instance: its failures list at most ``FAILURES_SHOWN`` instances, its
logs are those of the instances its timeline group shows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .._state import RunStatus
from ..stores import RunRecord, Store
from ._report_attention import (
    MAX_TRACEBACK,
    AnswerView,
    AttentionView,
    FailureView,
    QuestionView,
    attention_view,
)
from ._report_format import clock, plural, seconds
from ._report_graph import GraphView, NodeView, graph_view
from ._report_layout import LARGE_GRAPH
from ._report_logs import LOG_LINES_SHOWN, AttemptLogView, TaskAttemptsView, logs_view
from ._report_timeline import (
    LOG_LINES_IN_TIP,
    BarView,
    GroupView,
    RowView,
    TimelineView,
    gantt_order,
    timeline_view,
)
from ._timeline import _ORDER, _Run

__all__ = [
    "LOG_LINES_IN_TIP",
    "LOG_LINES_SHOWN",
    "MAX_TRACEBACK",
    "AnswerView",
    "AttemptLogView",
    "AttentionView",
    "BarView",
    "FailureView",
    "FigureView",
    "GraphView",
    "GroupView",
    "HeaderView",
    "NodeView",
    "QuestionView",
    "RowView",
    "RunView",
    "TaskAttemptsView",
    "TimelineView",
    "clock",
    "load_view",
    "run_view",
    "seconds",
]

# -- the view -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FigureView:
    """One figure of the header; ``chips`` are the tasks by status (the ``tasks`` figure)."""

    name: str
    label: str
    value: str
    detail: str = ""
    chips: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True, slots=True)
class HeaderView:
    workflow: str
    run_id: str
    status: str  # the run's status, as recorded
    status_look: str  # its CSS look (``paused`` looks ``waiting``)
    created: str
    took_word: str  # "took" (finished) or "so far"
    took: str
    error: str | None
    figures: Sequence[FigureView]
    has_events: bool
    #: Recorded running, but no process holds it any more (see ``RunRecord.stale``).
    stale: bool = False


@dataclass(frozen=True, slots=True)
class RunView:
    """Everything a run's page shows."""

    title: str
    large: bool
    header: HeaderView
    attention: AttentionView
    timeline: TimelineView
    logs: Sequence[TaskAttemptsView]
    graph: GraphView | None  # None: the workflow has no tasks
    created: str
    generated: str


def load_view(record: RunRecord, store: Store) -> RunView:
    """The view of ``record``'s run as ``store`` holds it now (its timeline, logs, questions)."""
    return run_view(_Run.load(record, store))


def run_view(run: _Run) -> RunView:
    """The view of ``run``'s page."""
    record = run.record
    title = f"{record.workflow} \u00b7 run {record.run_id} \u2014 plait report"
    order = gantt_order(run.tasks.values(), run)
    timeline = timeline_view(run, order)
    shown = {
        row.task_id
        for group in timeline.rows
        if isinstance(group, GroupView)
        for row in group.instances
    }
    return RunView(
        title=title,
        large=len(run.tasks) > LARGE_GRAPH,
        header=_header(run),
        attention=attention_view(run, order),
        timeline=timeline,
        logs=logs_view(run, order, shown),
        graph=graph_view(run) if run.tasks else None,
        created=clock(record.created_at),
        generated=clock(time.time()),
    )


def _header(run: _Run) -> HeaderView:
    record = run.record
    figures = run.figures  # computed where the command line's summary computes its own
    makespan, critical = figures.makespan, figures.critical_seconds
    slots = record.config.get("max_concurrency")
    limit = f"with up to {slots} at once" if isinstance(slots, int) else ""
    on_path = plural(len(run.critical_path), "task")
    share = on_path + (f" \u00b7 {critical / makespan:.0%} of the makespan" if makespan else "")
    # A mapped task counts as its instances (its own status sums theirs up), if it has some.
    counts: Counter[str] = Counter(t.css for t in run.tasks.values() if not run.instances.get(t.id))
    for looks in run.looks.values():
        counts.update(looks)
    duration = (record.finished_at or run.end) - record.created_at
    shown = [
        FigureView("makespan", "Makespan", seconds(makespan), "first start \u2192 last end"),
        FigureView(
            "total",
            "Total task time",
            seconds(figures.task_time),
            plural(len(run.attempts()), "attempt"),
        ),
        FigureView(
            "parallelism",
            "Parallelism",
            f"{figures.parallelism:.2f}\u00d7" if makespan > 0 else "\u2014",
            limit or "achieved",
        ),
        FigureView("critical-path", "Critical path", seconds(critical), share),
        FigureView(
            "tasks",
            "Tasks",
            f"{counts.total():,}",
            chips=[(status, counts[status]) for status in _ORDER if counts[status]],
        ),
    ]
    return HeaderView(
        workflow=record.workflow,
        run_id=record.run_id,
        status=record.status.value,
        status_look={RunStatus.PAUSED: "waiting"}.get(record.status, record.status.value),
        created=clock(record.created_at),
        took_word="took" if record.finished_at else "so far",
        took=seconds(duration),
        error=record.error or None,
        figures=shown,
        has_events=run.has_events,
        stale=record.stale,
    )

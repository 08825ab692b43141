"""What a run's page shows, as data: the view model of the report (and of ``plait serve``'s run
page), built from the run's timeline (``_timeline._Run``), with no markup in it.

Every value here is plain text or a number, formatted for people (durations, clock times,
tooltips) but not escaped: the templates escape everything they print (Jinja2 autoescaping),
so a task id or an error that holds markup shows as text. The pieces follow the page:

- :class:`HeaderView`: the run's identity, status and summary figures (makespan, total task
  time, achieved parallelism, critical path, tasks by status; see ``_summary``);
- :class:`AttentionView`: the failed tasks (error, traceback, a link to the last attempt's log),
  the questions still waiting, and the answers given, with who gave them, when and how;
- :class:`TimelineView`: the Gantt chart (``_report_timeline``): the axis' ticks, then one row
  per task ordered by first start (tasks that never ran last), one bar per attempt, wait or
  marker, each with its tooltip; a mapped task is a group: one row with its instances' counts,
  then the instances' rows (see ``_mapped``);
- :class:`TaskAttemptsView`: a task's attempts and what each said (its log, at most
  :data:`LOG_LINES_SHOWN` lines), one per task that said something;
- :class:`GraphView`: the DAG, nodes coloured by status, laid out by ``_report_layout`` (a
  mapped task is one node, ``convert [20]``).

A mapped task with many instances costs the page what a few hundred tasks do, never one row,
failure or log per instance: its failures list at most :data:`FAILURES_SHOWN` instances, its
logs are those of the instances its timeline group shows.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .._state import RunStatus, TaskStatus
from ..stores import InputRequest, RunRecord, Store
from ..stores._listing import inbox_default
from ._mapped import counts_text, instance_of
from ._report_format import clock, plural, seconds
from ._report_layout import LARGE_GRAPH, graph_layout
from ._report_timeline import (
    LOG_LINES_IN_TIP,
    BarView,
    GroupView,
    RowView,
    TimelineView,
    gantt_order,
    log_line,
    timeline_view,
)
from ._timeline import _ORDER, _Run, _Task

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

#: Tracebacks longer than this are cut (their end is kept: it says what went wrong).
MAX_TRACEBACK = 8000

#: The most lines of one attempt's log the page shows (its last ones).
LOG_LINES_SHOWN = 400

#: The most failed instances of one mapped task the failures list (the timeline shows more).
FAILURES_SHOWN = 20


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
class FailureView:
    task_id: str
    attempts: int
    error_type: str
    message: str
    traceback: str  # cut to MAX_TRACEBACK, "" if none
    log_anchor: str | None  # the id of the last attempt's log on the page, if it said anything


@dataclass(frozen=True, slots=True)
class QuestionView:
    """A question still waiting for an answer."""

    task_id: str
    key: str
    prompt: str
    waited: str
    asked: str
    deadline: str | None  # None when no question of the run has a deadline; "none" for this one
    then: str | None = None  # the default used when the deadline passes (JSON), if known


@dataclass(frozen=True, slots=True)
class AnswerView:
    """A question answered, and who answered it, when and through what."""

    task_id: str
    key: str
    prompt: str
    answered_by: str | None
    answered_via: str | None
    answered_at: str | None


@dataclass(frozen=True, slots=True)
class AttentionView:
    failures: Sequence[FailureView]
    questions: Sequence[QuestionView]
    deadlines: bool  # whether the questions table has a deadline column
    answers: Sequence[AnswerView]
    #: The failures left out, one line per mapped task ("convert: 480 more failed instances").
    more_failures: Sequence[str] = ()
    #: How many tasks failed, those left out included.
    failed: int = 0


@dataclass(frozen=True, slots=True)
class AttemptLogView:
    attempt: int
    anchor: str
    lines: int  # how many lines it said in all
    text: str  # its last LOG_LINES_SHOWN lines, with a note of the lines left out
    open: bool  # the last attempt of a failed task: shown open


@dataclass(frozen=True, slots=True)
class TaskAttemptsView:
    """A task's attempts that said something, oldest first."""

    task_id: str
    look: str
    attempts: Sequence[AttemptLogView]


@dataclass(frozen=True, slots=True)
class NodeView:
    task_id: str
    classes: str
    x: int
    y: int
    title: str
    label: str  # the id, cut to 20 characters


@dataclass(frozen=True, slots=True)
class GraphView:
    large: bool
    width: int
    height: int
    node_width: int
    node_height: int
    layers: int
    edges: Sequence[tuple[str, str]]  # (classes, SVG path data)
    nodes: Sequence[NodeView]
    critical_path: Sequence[str]

    #: The longest critical path the caption spells out; a longer one shows its two ends.
    path_shown: int = 12


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
        attention=_attention(run, order),
        timeline=timeline,
        logs=_logs(run, order, shown),
        graph=_graph(run) if run.tasks else None,
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


def _attention(run: _Run, order: Sequence[_Task]) -> AttentionView:
    failures = []
    more = []
    failed_total = 0
    for task in order:
        if task.status is not TaskStatus.FAILED:
            continue
        failed = [t for t in run.instances.get(task.id, ()) if t.status is TaskStatus.FAILED]
        if not failed:  # a task, or a mapped task that failed as a whole
            failures.append(_failure(task, run))
            failed_total += 1
            continue
        failed_total += len(failed)
        failures.extend(_failure(t, run) for t in failed[:FAILURES_SHOWN])
        if len(failed) > FAILURES_SHOWN:
            left = len(failed) - FAILURES_SHOWN
            more.append(
                f"{task.id}: {left:,} more failed instance{'' if left == 1 else 's'}, "
                "in the timeline's group (filter it by status)"
            )
    deadlines = any(r.deadline is not None for r in run.questions)
    serializer = str(run.record.config.get("serializer", "json"))
    questions = [
        QuestionView(
            task_id=request.task_id,
            key=request.key,
            prompt=request.prompt,
            waited=seconds(max(0.0, run.end - request.requested_at)),
            asked=clock(request.requested_at),
            deadline=(
                (clock(request.deadline) if request.deadline is not None else "none")
                if deadlines
                else None
            ),
            then=_then(request, serializer) if request.deadline is not None else None,
        )
        for request in run.questions
    ]
    answers = [
        AnswerView(
            task_id=request.task_id,
            key=request.key,
            prompt=request.prompt,
            answered_by=request.answered_by,
            answered_via=request.answered_via,
            answered_at=None if request.answered_at is None else clock(request.answered_at),
        )
        for request in run.answers
    ]
    return AttentionView(failures, questions, deadlines, answers, more, failed_total)


def _failure(task: _Task, run: _Run) -> FailureView:
    error = task.error
    traceback = ""
    if error and error.traceback:
        traceback = error.traceback
        if len(traceback) > MAX_TRACEBACK:
            traceback = "\u2026 (cut)\n" + traceback[-MAX_TRACEBACK:]
        traceback = traceback.rstrip()
    said = (task.id, task.attempts) in run.logs
    return FailureView(
        task_id=task.id,
        attempts=task.attempts,
        error_type=error.type if error else "\u2014",
        message=error.message if error else "",
        traceback=traceback,
        log_anchor=log_anchor(task.id, task.attempts) if said else None,
    )


def _then(request: InputRequest, serializer: str) -> str | None:
    """The answer a question takes when its deadline passes, as JSON, if it is known and safe
    to read (see ``stores._listing.inbox_default``)."""
    if request.default is None and (request.schema is None or "default" not in request.schema):
        return None
    value = inbox_default(request.schema, request.default, serializer)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def log_anchor(task_id: str, attempt: int) -> str:
    """The id of an attempt's log on the page."""
    return f"log-{task_id}-{attempt}"


def _logs(run: _Run, order: Sequence[_Task], instances: set[str]) -> list[TaskAttemptsView]:
    """One entry per task that said something, in the timeline's order; of a mapped task's
    instances, those the timeline shows (``instances``)."""
    views = []
    for task in _with_instances(order, run, instances):
        attempts = []
        for attempt in range(1, task.attempts + 1):
            lines = run.logs.get((task.id, attempt))
            if not lines:
                continue
            shown = lines[-LOG_LINES_SHOWN:]
            cut = len(lines) - len(shown)
            text = "\n".join(log_line(line, run) for line in shown)
            if cut:
                text = (
                    f"\u2026 {cut} earlier lines: plait logs {run.record.run_id} {task.id} "
                    f"--attempt {attempt} prints them all\n{text}"
                )
            attempts.append(
                AttemptLogView(
                    attempt=attempt,
                    anchor=log_anchor(task.id, attempt),
                    lines=len(lines),
                    text=text,
                    open=task.status is TaskStatus.FAILED and attempt == task.attempts,
                )
            )
        if attempts:
            views.append(TaskAttemptsView(task.id, task.css, attempts))
    return views


def _with_instances(order: Sequence[_Task], run: _Run, shown: set[str]) -> list[_Task]:
    """The tasks in ``order``, each mapped task followed by its instances in ``shown``."""
    tasks = []
    for task in order:
        tasks.append(task)
        tasks.extend(t for t in run.instances.get(task.id, ()) if t.id in shown)
    return tasks


def _graph(run: _Run) -> GraphView:
    layout = graph_layout(run.tasks)
    # The path may go through an instance: the graph draws its mapped task.
    path = [_group_of(task_id, run) for task_id in run.critical_path]
    on_path = set(itertools.pairwise(path))
    plain: list[str] = []
    edges: list[tuple[str, str]] = []
    for dep, task_id, d in layout.edges:
        if (dep, task_id) in on_path:
            edges.append(("edge critical", d))
        elif layout.large:
            plain.append(d)  # one path for all of them: thousands of elements cost
        else:
            edges.append(("edge", d))
    if plain:
        edges.insert(0, ("edge", "".join(plain)))
    nodes = []
    for task in run.tasks.values():
        x, y = layout.at[task.id]
        group = run.instances.get(task.id)
        label = task.id if len(task.id) <= 20 else task.id[:19] + "\u2026"
        work = task.work + sum(run.work[t.id] for t in group or ())
        title = f"{task.id} \u2014 {task.css}" + (f" \u2014 {seconds(work)}" if work else "")
        if group is not None:
            looks = run.looks[task.id]
            counts = counts_text((look, looks[look]) for look in _ORDER)
            title += f"\n{plural(len(group), 'instance')}: {counts}"
            label = f"{label} [{len(group):,}]"
        if task.skip_note:
            title += f"\nskipped: {task.skip_note}"
        nodes.append(
            NodeView(
                task_id=task.id,
                classes=f"node status-{task.css}" + (" critical" if task.critical else ""),
                x=x,
                y=y,
                title=title,
                label=label,
            )
        )
    return GraphView(
        large=layout.large,
        width=layout.width,
        height=layout.height,
        node_width=layout.node_width,
        node_height=layout.node_height,
        layers=layout.layers,
        edges=edges,
        nodes=nodes,
        critical_path=run.critical_path,
    )


def _group_of(task_id: str, run: _Run) -> str:
    """The task of the definition ``task_id`` is, or is an instance of."""
    named = instance_of(task_id)
    return named[0] if named is not None and named[0] in run.instances else task_id

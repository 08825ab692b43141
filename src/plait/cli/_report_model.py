"""What a run's page shows, as data: the view model of the report (and of ``plait serve``'s run
page), built from the run's timeline (``_timeline._Run``), with no markup in it.

Every value here is plain text or a number, formatted for people (durations, clock times,
tooltips) but not escaped: the templates escape everything they print (Jinja2 autoescaping),
so a task id or an error that holds markup shows as text. The pieces follow the page:

- :class:`HeaderView`: the run's identity, status and summary figures (makespan, total task
  time, achieved parallelism, critical path, tasks by status; see ``_summary``);
- :class:`AttentionView`: the failed tasks (error, traceback, a link to the last attempt's log),
  the questions still waiting, and the answers given, with who gave them, when and how;
- :class:`TimelineView`: the Gantt chart: the axis' ticks, then one row per task ordered by
  first start (tasks that never ran last), one bar per attempt, wait or marker, each with its
  tooltip (task, attempt, times, the error, the last lines of its log);
- :class:`TaskAttemptsView`: a task's attempts and what each said (its log, at most
  :data:`LOG_LINES_SHOWN` lines), one per task that said something;
- :class:`GraphView`: the DAG, nodes coloured by status, laid out by ``_report_layout``.

Positions along the timeline are percentages of its span (strings ready for a ``style``), so
the page lays out the bars with no script.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._logs import LogLine
from .._state import RunStatus, TaskStatus
from ..stores import InputRequest, RunRecord, Store
from ..stores._listing import inbox_default
from ._report_layout import LARGE_GRAPH, graph_layout, ticks
from ._timeline import _ORDER, _Run, _Segment, _Task

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

#: The lines of an attempt's log its bar's tooltip shows (its last ones).
LOG_LINES_IN_TIP = 8


# -- formatting ---------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration for people: ``850 ms``, ``12.4 s``, ``3 m 05 s``, ``2 h 10 m``."""
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} m {rest:02d} s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours} h {rest // 60:02d} m"


def offset(value: float) -> str:
    """A time relative to the run's start, with the precision a tooltip needs."""
    if abs(value) < 60:
        return f"+{value:.3f} s"
    return f"+{seconds(value)}"


def clock(value: float) -> str:
    """A Unix time as ``2026-12-07 05:00:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def tick_label(value: float, step: float) -> str:
    """A tick of the axis, as precise as its step."""
    if step < 1:
        decimals = max(0, math.ceil(-math.log10(step) - 1e-9))
        return f"{value:.{decimals}f} s"
    if step < 60:
        return f"{value:.0f} s"
    if step < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} m" if not rest else f"{minutes} m {rest:02d} s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours} h" if not rest else f"{hours} h {rest // 60:02d} m"


def pct(value: float) -> str:
    """A percentage for a ``style``, as short as exact enough: ``12.5%``."""
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


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


@dataclass(frozen=True, slots=True)
class BarView:
    """A bar (or the faint lifeline) of a timeline row: its classes, position and tooltip."""

    classes: str
    style: str
    title: str = ""
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class RowView:
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


@dataclass(frozen=True, slots=True)
class TimelineView:
    ticks: Sequence[tuple[str, str]]  # (left, label)
    gridlines: Sequence[str]  # x as a fraction of the track
    rows: Sequence[RowView]
    looks: Sequence[str]  # the statuses the filter offers

    @property
    def scroll(self) -> bool:
        return len(self.rows) > 40


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
    order = _gantt_order(run.tasks.values())
    return RunView(
        title=title,
        large=len(run.tasks) > LARGE_GRAPH,
        header=_header(run),
        attention=_attention(run),
        timeline=_timeline(run, order),
        logs=_logs(run, order),
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
    counts = Counter(t.css for t in run.tasks.values())
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
            str(len(run.tasks)),
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
    )


def _attention(run: _Run) -> AttentionView:
    failures = []
    for task in run.tasks.values():
        if task.status is not TaskStatus.FAILED:
            continue
        error = task.error
        traceback = ""
        if error and error.traceback:
            traceback = error.traceback
            if len(traceback) > MAX_TRACEBACK:
                traceback = "\u2026 (cut)\n" + traceback[-MAX_TRACEBACK:]
            traceback = traceback.rstrip()
        said = (task.id, task.attempts) in run.logs
        failures.append(
            FailureView(
                task_id=task.id,
                attempts=task.attempts,
                error_type=error.type if error else "\u2014",
                message=error.message if error else "",
                traceback=traceback,
                log_anchor=log_anchor(task.id, task.attempts) if said else None,
            )
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
    return AttentionView(failures, questions, deadlines, answers)


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


def _gantt_order(tasks: Iterable[_Task]) -> list[_Task]:
    def key(task: _Task) -> tuple[int, float, int]:
        first = task.first_start
        return (0, first, task.index) if first is not None else (1, 0.0, task.index)

    return sorted(tasks, key=key)


def _timeline(run: _Run, order: Sequence[_Task]) -> TimelineView:
    span = run.span
    step, at = ticks(span)
    rows = []
    for task in order:
        timed = [s for s in task.segments if s.kind != "marker"]
        lifeline = None
        if len(timed) > 1:  # a faint line from the first start to the last end
            first = min(s.start for s in timed)
            last = max(s.end for s in timed)
            lifeline = (
                f"left:{pct(100 * (first - run.start) / span)};"
                f"width:{pct(100 * (last - first) / span)}"
            )
        bars = []
        for segment in task.segments:
            left = pct(100 * (segment.start - run.start) / span)
            classes = f"bar {segment.kind} status-{segment.status}"
            if segment.retried:
                classes += " retried"
            if segment.kind == "marker":
                style = f"left:{left}"
            else:
                style = f"left:{left};width:{pct(100 * segment.duration / span)}"
            bars.append(
                BarView(
                    classes=classes,
                    style=style,
                    title=_bar_title(task, segment, run),
                    attempt=segment.attempt if segment.kind == "attempt" else None,
                )
            )
        rows.append(
            RowView(
                task_id=task.id,
                look=task.css,
                critical=task.critical,
                work=seconds(task.work) if task.work else "",
                lifeline=lifeline,
                bars=bars,
                estimate="" if task.estimate is None else seconds(task.estimate[0]),
                estimate_source="" if task.estimate is None else task.estimate[1],
            )
        )
    return TimelineView(
        ticks=[(pct(100 * t / span), tick_label(t, step)) for t in at],
        gridlines=[f"{t / span:.5f}" for t in at if t > 0],
        rows=rows,
        looks=_ORDER,
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


def log_anchor(task_id: str, attempt: int) -> str:
    """The id of an attempt's log on the page."""
    return f"log-{task_id}-{attempt}"


def log_line(line: LogLine, run: _Run) -> str:
    """A line as the page shows it: its time in the run, ``!`` for stderr, and the text."""
    mark = {"stderr": "!", "plait": "~"}.get(line.stream, "|")
    return f"{offset(line.time - run.start):>8} {mark} {line.text}"


def _logs(run: _Run, order: Sequence[_Task]) -> list[TaskAttemptsView]:
    """One entry per task that said something, in the timeline's order."""
    views = []
    for task in order:
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


def _graph(run: _Run) -> GraphView:
    layout = graph_layout(run.tasks)
    on_path = set(zip(run.critical_path, run.critical_path[1:], strict=False))
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
        work = f" \u2014 {seconds(task.work)}" if task.work else ""
        nodes.append(
            NodeView(
                task_id=task.id,
                classes=f"node status-{task.css}" + (" critical" if task.critical else ""),
                x=x,
                y=y,
                title=f"{task.id} \u2014 {task.css}{work}",
                label=task.id if len(task.id) <= 20 else task.id[:19] + "\u2026",
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

"""The run report: one self-contained HTML file that shows what a run did, and when.

:func:`build_report` reads a run from its store -- the run's record (workflow, definition, status),
each task's latest record, the questions asked, and the event log -- and renders:

- **a header**: the workflow, run id and status, and the summary figures: *makespan* (the first
  attempt's start to the last attempt's end), *total task time* (the sum of every attempt's
  duration), *achieved parallelism* (total task time / makespan: how many tasks ran at once, on
  average), the *critical path* (below) and the tasks by status;
- **what needs attention**: the failed tasks (attempts, error, a collapsible traceback) and the
  questions still waiting for an answer;
- **a timeline** (Gantt chart): one row per task, ordered by first start (tasks that never ran
  last); one bar per attempt, so a retried task shows each attempt, the failed ones red; a
  hatched bar for the time a task waited for a person's answer (from the question to the answer,
  or to the end of the run while it is unanswered); a marker when a task was skipped or
  cancelled before it started. Every bar has a tooltip: task, attempt, start, end, duration, and
  the error for a failed attempt;
- **the logs**: what each attempt said (its log records, prints and command output), one
  collapsible block per attempt, the failed attempts' open; an attempt's bar shows the last lines
  of its log in its tooltip, and a failed task's row under *what needs attention* links to its
  last attempt's log. An attempt shows at most its last :data:`LOG_LINES_SHOWN` lines
  (``plait logs`` prints them all);
- **the graph**: the definition's DAG as SVG, nodes coloured by status. Tasks are placed in
  layers by longest path from the sources (a task sits one layer right of its deepest
  dependency); within a layer, a few barycenter sweeps (each node moves to the mean position of
  its neighbours in the layers already placed) reduce edge crossings. Above 300 tasks, nodes are
  drawn as dots without labels (their titles name them), and the edges as one path.

**The critical path** is the longest path through the DAG when each task weighs its *actual
work*: the sum of its attempts' durations (0 for a task that never ran; waiting for input and
retry backoff are not work). It is the run's lower bound with unlimited concurrency: a critical
path close to the makespan means the run was bound by its dependencies; one far below means it
was bound by the concurrency limits. Its tasks are highlighted in the timeline and the graph.

The per-attempt detail comes from the event log, which durable stores (SQLite, PostgreSQL)
keep. The memory store keeps no events: there each task shows one bar, from its first start to
its last end.

The page needs no network: CSS and a little JavaScript (a filter and tooltips) are inline, and
the charts are plain HTML and SVG generated here, so a 2,000-task run opens in about a second.
Every string that comes from a run (task ids, errors, prompts) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from .._logs import LogLine
from .._state import RunStatus, TaskStatus
from ..stores import RunNotFoundError, Store, open_store
from ..stores._open import opens_store
from ._timeline import _ORDER, _Run, _Segment, _Task, _topological

__all__ = ["build_report", "write_report"]

#: Above this many tasks the graph draws dots without labels, and the timeline compact rows.
LARGE_GRAPH = 300

#: Tracebacks longer than this are cut (their end is kept: it says what went wrong).
MAX_TRACEBACK = 8000

#: The most lines of one attempt's log the page shows (its last ones).
LOG_LINES_SHOWN = 400

#: The lines of an attempt's log its bar's tooltip shows (its last ones).
LOG_LINES_IN_TIP = 8


@opens_store
def build_report(run_id: str, *, store: Store | str | None = None) -> str:
    """The HTML of run ``run_id``'s report: one self-contained page (see the module docstring).

    Args:
        run_id: the run to show.
        store: where the run is kept: a :class:`~plait.stores.Store`, a URL, or None for
            ``$PLAIT_STORE`` (or the process's memory store), as for :func:`plait.run`.

    Raises:
        RunNotFoundError: the store has no such run.
    """
    the_store = open_store(store)
    record = the_store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(
            f"there is no run {run_id!r} in {the_store!r}; plait.list_runs(store=...) shows the "
            "runs it has"
        )
    run = _Run.load(record, the_store)
    return _render(run)


def write_report(run_id: str, path: str | Path, *, store: Store | str | None = None) -> Path:
    """Write run ``run_id``'s report to ``path`` (UTF-8 HTML) and return the path.

    Raises:
        RunNotFoundError: the store has no such run.
    """
    target = Path(path)
    target.write_text(build_report(run_id, store=store), encoding="utf-8")
    return target


# -- formatting --------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _seconds(value: float) -> str:
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


def _offset(value: float) -> str:
    """A time relative to the run's start, with the precision a tooltip needs."""
    if abs(value) < 60:
        return f"+{value:.3f} s"
    return f"+{_seconds(value)}"


def _clock(value: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


_STEPS = (
    *(m * 10.0**k for k in range(-3, 2) for m in (1, 2, 5)),
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    21600.0,
    43200.0,
    86400.0,
)


def _ticks(span: float, most: int = 10) -> tuple[float, list[float]]:
    """A round step for about ``most`` ticks over ``span`` seconds, and the ticks."""
    step = next((s for s in _STEPS if span / s <= most), None)
    if step is None:
        step = 86400.0 * math.ceil(span / most / 86400.0)
    count = int(span / step + 1e-9)
    return step, [i * step for i in range(count + 1)]


def _tick_label(value: float, step: float) -> str:
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


def _pct(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


# -- rendering ---------------------------------------------------------------------------------


def _render(run: _Run) -> str:
    record = run.record
    large = len(run.tasks) > LARGE_GRAPH
    title = f"{record.workflow} \u00b7 run {record.run_id} \u2014 plait report"
    parts = [
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta name='generator' content='plait'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>",
        f"<body class='{'large' if large else ''}'><main>",
        _render_header(run),
        _render_attention(run),
        _render_gantt(run, large=large),
        _render_logs(run),
        _render_graph(run, large=large),
        "<footer>Generated by plait at ",
        _e(_clock(time.time())),
        ". Times in the charts are relative to the run's creation, ",
        _e(_clock(record.created_at)),
        ".</footer></main>",
        "<div id='tip' role='tooltip' hidden></div>",
        f"<script>{_JS}</script></body></html>\n",
    ]
    return "".join(parts)


def _figure(label: str, value: str, detail: str = "", *, name: str) -> str:
    detail_html = f"<div class='detail'>{detail}</div>" if detail else ""
    return (
        f"<div class='figure' data-figure='{name}'><div class='label'>{label}</div>"
        f"<div class='value'>{value}</div>{detail_html}</div>"
    )


def _render_header(run: _Run) -> str:
    record = run.record
    attempts = run.attempts()
    figures = run.figures  # computed where the command line's summary computes its own
    makespan, total, critical = figures.makespan, figures.task_time, figures.critical_seconds
    slots = record.config.get("max_concurrency")
    limit = f"with up to {_e(slots)} at once" if isinstance(slots, int) else ""
    parallelism = f"{figures.parallelism:.2f}\u00d7" if makespan > 0 else "\u2014"
    share = f"{len(run.critical_path)} task{'s' if len(run.critical_path) != 1 else ''}" + (
        f" \u00b7 {critical / makespan:.0%} of the makespan" if makespan else ""
    )
    counts = Counter(t.css for t in run.tasks.values())
    chips = "".join(
        f"<span class='chip status-{status}' data-status='{status}'>"
        f"<i class='dot'></i><b>{counts[status]}</b> {status}</span>"
        for status in _ORDER
        if counts[status]
    )
    duration = (record.finished_at or run.end) - record.created_at
    error = f"<p class='run-error'><b>Why:</b> {_e(record.error)}</p>" if record.error else ""
    shown = "".join(
        [
            _figure("Makespan", _seconds(makespan), "first start \u2192 last end", name="makespan"),
            _figure(
                "Total task time",
                _seconds(total),
                f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}",
                name="total",
            ),
            _figure("Parallelism", parallelism, limit or "achieved", name="parallelism"),
            _figure("Critical path", _seconds(critical), share, name="critical-path"),
            _figure("Tasks", str(len(run.tasks)), chips, name="tasks"),
        ]
    )
    note = (
        ""
        if run.has_events
        else "<p class='note'>This store keeps no event log (the memory store): each task shows "
        "one bar from its first start to its last end, not one per attempt.</p>"
    )
    return (
        "<header>"
        "<div class='kicker'>plait \u00b7 run report</div>"
        f"<div class='title-row'><h1>{_e(record.workflow)}</h1>"
        f"<span class='pill status-{_e(_run_css(record.status))}' id='run-status'>"
        f"{_e(record.status.value)}</span></div>"
        f"<div class='meta'><span>run <code id='run-id'>{_e(record.run_id)}</code></span>"
        f"<span>created {_e(_clock(record.created_at))}</span>"
        f"<span>{'took' if record.finished_at else 'so far'} {_e(_seconds(duration))}</span></div>"
        f"{error}<div class='figures'>{shown}</div>{note}"
        "<nav><a href='#attention'>Attention</a><a href='#timeline'>Timeline</a>"
        "<a href='#logs'>Logs</a><a href='#graph'>Graph</a></nav>"
        "</header>"
    )


def _run_css(status: RunStatus) -> str:
    return {RunStatus.PAUSED: "waiting"}.get(status, status.value)


def _render_attention(run: _Run) -> str:
    failed = [t for t in run.tasks.values() if t.status is TaskStatus.FAILED]
    rows: list[str] = []
    for task in failed:
        error = task.error
        kind = _e(error.type) if error else "\u2014"
        message = _e(error.message) if error and error.message else ""
        traceback = ""
        if error and error.traceback:
            text = error.traceback
            if len(text) > MAX_TRACEBACK:
                text = "\u2026 (cut)\n" + text[-MAX_TRACEBACK:]
            traceback = (
                f"<details><summary>Traceback</summary><pre>{_e(text.rstrip())}</pre></details>"
            )
        log = ""
        if (task.id, task.attempts) in run.logs:
            log = f"<a class='log-link' href='#{_log_anchor(task.id, task.attempts)}'>Log</a>"
        rows.append(
            f"<tr data-task-id='{_e(task.id)}'><td class='task'><code>{_e(task.id)}</code></td>"
            f"<td class='num'>{task.attempts}</td>"
            f"<td><code class='error-type'>{kind}</code>"
            f"<div class='message'>{message}</div>{traceback}{log}</td></tr>"
        )
    failures = (
        "<table class='failures'><thead><tr><th>Task</th><th>Attempts</th><th>Error</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p class='empty'>No task failed.</p>"
    )
    deadlines = any(r.deadline is not None for r in run.questions)
    question_rows = []
    for request in run.questions:
        key = f" <span class='muted'>(key {_e(request.key)})</span>" if request.key else ""
        waited = _seconds(max(0.0, run.end - request.requested_at))
        deadline = ""
        if deadlines:
            when = _clock(request.deadline) if request.deadline is not None else "none"
            deadline = f"<td class='when'>{_e(when)}</td>"
        question_rows.append(
            f"<tr data-task-id='{_e(request.task_id)}'>"
            f"<td class='task'><code>{_e(request.task_id)}</code>{key}</td>"
            f"<td class='prompt'>{_e(request.prompt)}</td>"
            f"<td class='when'>waiting {_e(waited)}<div class='muted'>since "
            f"{_e(_clock(request.requested_at))}</div></td>{deadline}</tr>"
        )
    questions = (
        "<table class='questions'><thead><tr><th>Task</th><th>Question</th><th>Asked</th>"
        + ("<th>Deadline</th>" if deadlines else "")
        + f"</tr></thead><tbody>{''.join(question_rows)}</tbody></table>"
        if question_rows
        else "<p class='empty'>No question is waiting.</p>"
    )
    return (
        "<section id='attention' class='attention'>"
        f"<div class='card'><h2>Failures <span class='count'>{len(failed)}</span></h2>"
        f"{failures}</div>"
        f"<div class='card'><h2>Waiting for input <span class='count'>{len(run.questions)}"
        f"</span></h2>{questions}</div></section>"
    )


def _gantt_order(tasks: Iterable[_Task]) -> list[_Task]:
    def key(task: _Task) -> tuple[int, float, int]:
        first = task.first_start
        return (0, first, task.index) if first is not None else (1, 0.0, task.index)

    return sorted(tasks, key=key)


def _bar_title(task: _Task, segment: _Segment, run: _Run) -> str:
    start, end = segment.start - run.start, segment.end - run.start
    if segment.kind == "marker":
        return f"{task.id}\n{segment.note} at {_offset(start)}"
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
    lines.append(f"{_offset(start)} \u2192 {_offset(end)} ({_seconds(segment.duration)})")
    if segment.kind == "attempt" and task.estimate is not None:
        seconds, source = task.estimate
        lines.append(f"estimate {_seconds(seconds)} ({source}), actual {_seconds(task.work)}")
    said = run.logs.get((task.id, segment.attempt)) if segment.kind == "attempt" else None
    if said:
        shown = said[-LOG_LINES_IN_TIP:]
        some = f"last {len(shown)} of " if len(said) > len(shown) else ""
        lines.append(f"log ({some}{len(said)} line{'' if len(said) == 1 else 's'}):")
        lines.extend(_log_line(line, run) for line in shown)
    return "\n".join(lines)


def _render_gantt(run: _Run, *, large: bool) -> str:
    span = run.span
    step, ticks = _ticks(span)
    axis = "".join(
        f"<span class='tick' style='left:{_pct(100 * t / span)}'>{_tick_label(t, step)}</span>"
        for t in ticks
    )
    grid = "".join(f"<i class='gridline' style='--x:{t / span:.5f}'></i>" for t in ticks if t > 0)
    rows: list[str] = []
    for task in _gantt_order(run.tasks.values()):
        bars: list[str] = []
        timed = [s for s in task.segments if s.kind != "marker"]
        if len(timed) > 1:  # a faint line from the first start to the last end
            first = min(s.start for s in timed)
            last = max(s.end for s in timed)
            bars.append(
                f"<i class='lifeline' style='left:{_pct(100 * (first - run.start) / span)};"
                f"width:{_pct(100 * (last - first) / span)}'></i>"
            )
        for segment in task.segments:
            left = _pct(100 * (segment.start - run.start) / span)
            classes = f"bar {segment.kind} status-{segment.status}"
            if segment.retried:
                classes += " retried"
            if segment.kind == "marker":
                style = f"left:{left}"
            else:
                style = f"left:{left};width:{_pct(100 * segment.duration / span)}"
            attempt = f" data-attempt='{segment.attempt}'" if segment.kind == "attempt" else ""
            bars.append(
                f"<span class='{classes}'{attempt} style='{style}' "
                f"title='{_e(_bar_title(task, segment, run))}'></span>"
            )
        work = _seconds(task.work) if task.work else ""
        critical = " critical" if task.critical else ""
        rows.append(
            f"<div class='row status-{task.css}{critical}' data-task-id='{_e(task.id)}' "
            f"data-status='{task.css}'><div class='label' title='{_e(task.id)} \u2014 "
            f"{task.css}'><i class='dot'></i><span class='name'>{_e(task.id)}</span>"
            f"<span class='work'>{work}</span></div>"
            f"<div class='track'>{''.join(bars)}</div></div>"
        )
    legend = "".join(
        f"<span class='key'><i class='swatch status-{s}'></i>{label}</span>"
        for s, label in (
            ("succeeded", "succeeded"),
            ("failed", "failed attempt"),
            ("cancelled", "cancelled"),
            ("skipped", "skipped"),
            ("waiting", "waiting for input"),
            ("running", "running"),
        )
    )
    legend += "<span class='key'><i class='swatch critical-key'></i>critical path</span>"
    scroll = " scroll" if len(rows) > 40 else ""
    return (
        "<section id='timeline' class='card'>"
        "<div class='section-head'><h2>Timeline</h2>"
        f"<div class='legend'>{legend}</div>"
        "<div class='tools'><input id='filter' type='search' placeholder='Filter tasks\u2026' "
        "aria-label='Filter tasks by id'>"
        "<select id='show' aria-label='Show'><option value=''>all tasks</option>"
        "<option value='critical'>critical path</option>"
        + "".join(f"<option value='{s}'>{s}</option>" for s in _ORDER)
        + f"</select><span id='shown' class='muted'>{len(rows)} tasks</span></div></div>"
        f"<div class='gantt{scroll}'>"
        f"<div class='axis'><div class='label'></div><div class='track'>{axis}</div></div>"
        f"<div class='rows'>{grid}{''.join(rows)}</div></div></section>"
    )


def _log_anchor(task_id: str, attempt: int) -> str:
    return _e(f"log-{task_id}-{attempt}")


def _log_line(line: LogLine, run: _Run) -> str:
    """A line as the page shows it: its time in the run, ``!`` for stderr, and the text."""
    mark = {"stderr": "!", "plait": "~"}.get(line.stream, "|")
    return f"{_offset(line.time - run.start):>8} {mark} {line.text}"


def _render_logs(run: _Run) -> str:
    """One collapsible block per attempt that said something, in the timeline's order."""
    blocks: list[str] = []
    for task in _gantt_order(run.tasks.values()):
        for attempt in range(1, task.attempts + 1):
            lines = run.logs.get((task.id, attempt))
            if not lines:
                continue
            shown = lines[-LOG_LINES_SHOWN:]
            cut = len(lines) - len(shown)
            failed = task.status is TaskStatus.FAILED and attempt == task.attempts
            text = "\n".join(_log_line(line, run) for line in shown)
            if cut:
                text = (
                    f"\u2026 {cut} earlier lines: plait logs {run.record.run_id} {task.id} "
                    f"--attempt {attempt} prints them all\n{text}"
                )
            blocks.append(
                f"<details class='log' id='{_log_anchor(task.id, attempt)}' "
                f"data-task-id='{_e(task.id)}' data-attempt='{attempt}'"
                f"{' open' if failed else ''}><summary><code>{_e(task.id)}</code> attempt "
                f"{attempt} <span class='muted'>{len(lines)} line"
                f"{'' if len(lines) == 1 else 's'}</span></summary>"
                f"<pre>{_e(text)}</pre></details>"
            )
    body = "".join(blocks) or "<p class='empty'>No task said anything.</p>"
    return f"<section id='logs' class='card'><h2>Logs</h2>{body}</section>"


def _layout(tasks: Mapping[str, _Task]) -> tuple[dict[str, int], list[list[str]]]:
    """Longest-path layers, then barycenter sweeps to order each layer."""
    layer: dict[str, int] = {}
    for task_id in _topological(tasks):
        deps = [layer[d] for d in tasks[task_id].depends_on if d in layer]
        layer[task_id] = 1 + max(deps) if deps else 0
    layers: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for task in tasks.values():  # definition order first
        layers[layer[task.id]].append(task.id)
    successors: dict[str, list[str]] = {t: [] for t in tasks}
    for task in tasks.values():
        for dep in task.depends_on:
            if dep in successors:
                successors[dep].append(task.id)

    def positions() -> dict[str, float]:
        return {
            task_id: i - (len(column) - 1) / 2
            for column in layers
            for i, task_id in enumerate(column)
        }

    for _ in range(2):
        for forward in (True, False):
            y = positions()
            order = range(1, len(layers)) if forward else range(len(layers) - 2, -1, -1)
            for n in order:

                def key(task_id: str, forward: bool = forward, y: dict[str, float] = y) -> float:
                    near = (
                        [d for d in tasks[task_id].depends_on if d in y]
                        if forward
                        else successors[task_id]
                    )
                    return sum(y[m] for m in near) / len(near) if near else y[task_id]

                layers[n].sort(key=key)
                y.update(
                    (task_id, i - (len(layers[n]) - 1) / 2) for i, task_id in enumerate(layers[n])
                )
    return layer, layers


def _render_graph(run: _Run, *, large: bool) -> str:
    tasks = run.tasks
    if not tasks:
        return (
            "<section id='graph' class='card'><h2>Graph</h2>"
            "<p class='empty'>The workflow has no tasks.</p></section>"
        )
    _, layers = _layout(tasks)
    if large:
        col, sub, row, node_w, node_h, pad = 40, 14, 12, 8, 8, 16
    else:
        col, sub, row, node_w, node_h, pad = 220, 190, 44, 160, 30, 20
    # A layer taller than this wraps into side-by-side sub-columns, so that a wide graph stays
    # a block one can take in, not a strip thousands of pixels high.
    per_column = max(16, math.ceil(1.5 * math.sqrt(len(tasks))))
    tallest = min(per_column, max(len(c) for c in layers))
    at: dict[str, tuple[int, int]] = {}
    x = pad
    for column in layers:
        for start in range(0, len(column), per_column):
            part = column[start : start + per_column]
            top = pad + (tallest - len(part)) * row / 2
            for i, task_id in enumerate(part):
                at[task_id] = (x, round(top + i * row + (row - node_h) / 2))
            x += sub
        x += col - sub
    width = x - col + node_w + pad
    height = tallest * row + 2 * pad
    on_path = set(zip(run.critical_path, run.critical_path[1:], strict=False))
    plain: list[str] = []
    edges: list[str] = []
    for task in tasks.values():
        for dep in task.depends_on:
            if dep not in at:
                continue
            (x1, y1), (x2, y2) = at[dep], at[task.id]
            x1 += node_w
            y1 += node_h // 2
            y2 += node_h // 2
            if large:
                d = f"M{x1} {y1}L{x2} {y2}"
            else:
                mid = (x2 - x1) // 2
                d = f"M{x1} {y1}C{x1 + mid} {y1} {x2 - mid} {y2} {x2} {y2}"
            if (dep, task.id) in on_path:
                edges.append(f"<path class='edge critical' d='{d}'/>")
            elif large:
                plain.append(d)
            else:
                edges.append(f"<path class='edge' d='{d}'/>")
    if plain:
        edges.insert(0, f"<path class='edge' d='{''.join(plain)}'/>")
    nodes: list[str] = []
    for task in tasks.values():
        x, y = at[task.id]
        classes = f"node status-{task.css}" + (" critical" if task.critical else "")
        work = f" \u2014 {_seconds(task.work)}" if task.work else ""
        title = f"<title>{_e(task.id)} \u2014 {task.css}{work}</title>"
        if large:
            nodes.append(
                f"<circle class='{classes}' data-task-id='{_e(task.id)}' cx='{x + node_w // 2}' "
                f"cy='{y + node_h // 2}' r='{node_w // 2}'>{title}</circle>"
            )
        else:
            label = task.id if len(task.id) <= 20 else task.id[:19] + "\u2026"
            nodes.append(
                f"<g class='{classes}' data-task-id='{_e(task.id)}' "
                f"transform='translate({x} {y})'>{title}"
                f"<rect width='{node_w}' height='{node_h}' rx='6'/>"
                f"<text x='12' y='{node_h // 2}' dy='0.35em'>{_e(label)}</text></g>"
            )
    path = (
        " \u2192 ".join(f"<code>{_e(t)}</code>" for t in run.critical_path)
        if len(run.critical_path) <= 12
        else f"<code>{_e(run.critical_path[0])}</code> \u2192 \u2026 "
        f"({len(run.critical_path) - 2} more) \u2192 <code>{_e(run.critical_path[-1])}</code>"
    )
    caption = (
        f"<p class='muted path'>Critical path: {path}</p>"
        if run.critical_path
        else "<p class='muted path'>No task ran, so there is no critical path.</p>"
    )
    hint = " Hover a dot for its task; click it to find it in the timeline." if large else ""
    return (
        "<section id='graph' class='card'><div class='section-head'><h2>Graph</h2>"
        f"<span class='muted'>{len(tasks)} tasks in {len(layers)} layers.{hint}</span></div>"
        f"{caption}<div class='dag'><svg xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='The workflow graph'><g class='edges'>{''.join(edges)}</g>"
        f"<g class='nodes'>{''.join(nodes)}</g></svg></div></section>"
    )


_CSS = """
:root{--bg:#f5f6f8;--card:#fff;--ink:#1b2230;--muted:#667085;--line:#e4e7ec;--soft:#f0f2f5;
--succeeded:#1f9d61;--failed:#e0454b;--cancelled:#e6951c;--skipped:#a3abb7;--waiting:#8a63e6;
--running:#3b7ddd;--pending:#d0d5dd;--suspended:#6f8fcf;--interrupted:#667085;--critical:#111827;
--label-w:240px;--row-h:22px}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif;
font-variant-numeric:tabular-nums}
main{max-width:1400px;margin:0 auto;padding:28px 28px 40px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
font-size:12.5px}
h1{font-size:26px;line-height:1.2;margin:0;font-weight:650;letter-spacing:-.01em;
overflow-wrap:anywhere}
h2{font-size:15px;margin:0;font-weight:650}
.muted{color:var(--muted)}
.kicker{text-transform:uppercase;letter-spacing:.08em;font-size:11px;color:var(--muted);
font-weight:600}
.title-row{display:flex;align-items:center;gap:12px;margin:4px 0 6px;flex-wrap:wrap}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:650;
color:#fff;background:var(--st,#667085);text-transform:uppercase;letter-spacing:.04em}
.meta{display:flex;gap:18px;flex-wrap:wrap;color:var(--muted);font-size:13px}
.meta code{color:var(--ink)}
.run-error{margin:12px 0 0;padding:10px 14px;background:#fdeced;border:1px solid #f5c2c4;
border-radius:8px;color:#7a1d22;overflow-wrap:anywhere}
.note{margin:12px 0 0;color:var(--muted);font-size:13px}
.figures{display:grid;grid-template-columns:repeat(4,minmax(140px,1fr)) minmax(260px,2fr);
gap:12px;margin-top:18px}
.figure{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.figure .label{font-size:12px;color:var(--muted);font-weight:600}
.figure .value{font-size:24px;font-weight:650;margin-top:2px;letter-spacing:-.01em}
.figure .detail{font-size:12px;color:var(--muted);margin-top:2px}
.figure[data-figure=tasks] .detail{display:flex;flex-wrap:wrap;gap:6px 12px;margin-top:6px}
.chip{display:inline-flex;align-items:center;gap:5px;color:var(--ink);font-size:12.5px}
.chip b{font-weight:650}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;background:var(--st);
flex:none}
nav{display:flex;gap:16px;margin-top:16px;font-size:13px}
nav a{color:var(--running);text-decoration:none}nav a:hover{text-decoration:underline}
section{margin-top:20px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px}
.attention{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:20px}
.attention .card{margin:0}
.count{display:inline-block;min-width:22px;padding:0 7px;margin-left:6px;border-radius:999px;
background:var(--soft);color:var(--muted);font-size:12px;text-align:center;font-weight:600}
table{width:100%;border-collapse:collapse;margin-top:10px;font-size:13px}
th{text-align:left;font-size:12px;color:var(--muted);font-weight:600;padding:6px 8px;
border-bottom:1px solid var(--line)}
td{padding:8px;border-bottom:1px solid var(--soft);vertical-align:top;overflow-wrap:anywhere}
td.num{white-space:nowrap}
td.when{min-width:10em;font-size:12.5px}
td.task{min-width:9em}td.task code{font-weight:600}
.error-type{color:#b4232a;font-weight:600}
details.log{margin:6px 0}details.log pre{max-height:40vh;overflow:auto}
.message{white-space:pre-wrap;margin-top:2px}
details{margin-top:6px}summary{cursor:pointer;color:var(--muted);font-size:12px}
details pre{max-height:320px;overflow:auto;background:#0f172a;color:#e2e8f0;padding:10px 12px;
border-radius:8px;font-size:12px;line-height:1.4;white-space:pre}
.empty{color:var(--muted);margin:10px 0 0}
.section-head{display:flex;align-items:center;gap:16px;flex-wrap:wrap;margin-bottom:10px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted)}
.key{display:inline-flex;align-items:center;gap:5px}
.swatch{display:inline-block;width:16px;height:10px;border-radius:3px;background:var(--st)}
.swatch.status-waiting{background:repeating-linear-gradient(135deg,var(--waiting) 0 3px,
#d9ccfa 3px 6px)}
.swatch.critical-key{background:#fff;border:2px solid var(--critical)}
.tools{display:flex;align-items:center;gap:8px;margin-left:auto;font-size:12.5px}
.tools input,.tools select{font:inherit;padding:4px 8px;border:1px solid var(--line);
border-radius:6px;background:#fff;color:var(--ink)}
.tools input{width:180px}
.gantt{position:relative;border:1px solid var(--line);border-radius:8px}
.gantt.scroll{max-height:72vh;overflow:auto}
.axis,.row{display:grid;grid-template-columns:var(--label-w) minmax(0,1fr)}
.axis{position:sticky;top:0;z-index:2;background:#fbfbfc;border-bottom:1px solid var(--line);
height:26px}
.axis .label{border-right:1px solid var(--line)}
.axis .track{position:relative;margin-right:48px}
.tick{position:absolute;top:6px;transform:translateX(-50%);font-size:11px;color:var(--muted);
white-space:nowrap}
.tick:first-child{transform:none}
.rows{position:relative}
.gridline{position:absolute;top:0;bottom:0;width:1px;background:var(--soft);pointer-events:none;
left:calc(var(--label-w) + (100% - var(--label-w) - 48px) * var(--x))}
.row{height:var(--row-h);position:relative;content-visibility:auto;
contain-intrinsic-size:auto var(--row-h)}
.row[hidden]{display:none}
.row:hover{background:#f7f8fa}
.row.flash{background:#fff4cc}
.row .label{display:flex;align-items:center;gap:7px;padding:0 10px;min-width:0;
border-right:1px solid var(--line);font-size:12.5px}
.row .name{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;flex:1;min-width:0}
.row .work{color:var(--muted);font-size:11px;white-space:nowrap}
.row.critical .name{font-weight:700}
.row.critical .label{box-shadow:inset 3px 0 0 var(--critical)}
.row .track{position:relative;margin-right:48px}
.bar{position:absolute;top:4px;bottom:4px;min-width:2px;border-radius:3px;background:var(--st)}
.bar.retried{opacity:.72}
.bar.waiting{background:repeating-linear-gradient(135deg,var(--waiting) 0 3px,#d9ccfa 3px 6px)}
.bar.marker{width:8px;min-width:0;margin-left:-4px;top:6px;bottom:6px;transform:rotate(45deg);
border-radius:1px;top:calc(50% - 4px);height:8px}
.bar.status-interrupted{background:repeating-linear-gradient(90deg,var(--interrupted) 0 4px,
transparent 4px 6px)}
.row.critical .bar.attempt{box-shadow:0 0 0 1.5px var(--critical)}
.lifeline{position:absolute;top:50%;height:1px;background:#c4cad4;pointer-events:none}
.status-succeeded{--st:var(--succeeded)}.status-failed{--st:var(--failed)}
.status-cancelled{--st:var(--cancelled)}.status-skipped{--st:var(--skipped)}
.status-waiting{--st:var(--waiting)}.status-running{--st:var(--running)}
.status-pending{--st:var(--pending)}.status-suspended{--st:var(--suspended)}
.status-interrupted{--st:var(--interrupted)}
body.large{--row-h:14px}
body.large .row .label{font-size:11px}body.large .row .name{font-size:10.5px}
body.large .bar{top:2px;bottom:2px}
body.large .bar.marker{width:6px;height:6px;margin-left:-3px;top:calc(50% - 3px)}
body.large .row .work{display:none}
.path{margin:0 0 10px;font-size:13px;overflow-wrap:anywhere}
.dag{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:8px;
background:#fcfcfd}
.dag svg{display:block;margin:0 auto}
.edge{fill:none;stroke:#c3c9d3;stroke-width:1.3}
body.large .edge{stroke-width:.5;stroke:#cdd3db;stroke-opacity:.8}
.edge.critical{stroke:var(--critical);stroke-width:2.4}
body.large .edge.critical{stroke:var(--critical);stroke-width:1.6}
.node rect{fill:#fff;stroke:var(--st);stroke-width:1.5}
.node text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
fill:var(--ink)}
g.node{cursor:pointer}
g.node rect{fill:color-mix(in srgb,var(--st) 14%,#fff)}
g.node.status-pending rect{fill:#fff;stroke-dasharray:4 3}
g.node.status-skipped rect{stroke-dasharray:4 3}
g.node.critical rect{stroke:var(--critical);stroke-width:2.6}
circle.node{fill:var(--st);stroke:#fff;stroke-width:1;cursor:pointer}
circle.node.critical{stroke:var(--critical);stroke-width:2}
.node:hover rect{stroke-width:2.6}
footer{margin-top:24px;color:var(--muted);font-size:12px}
#tip{position:fixed;z-index:10;max-width:460px;padding:8px 10px;border-radius:8px;
background:#111827;color:#f3f4f6;font-size:12px;line-height:1.45;white-space:pre-line;
pointer-events:none;box-shadow:0 6px 20px rgba(0,0,0,.2);overflow-wrap:anywhere}
@media (max-width:1000px){.figures{grid-template-columns:repeat(2,1fr)}
.attention{grid-template-columns:1fr}:root{--label-w:160px}}
"""

_JS = """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll(".gantt .row"));
  var byId = new Map();
  rows.forEach(function (row) { byId.set(row.dataset.taskId, row); });
  var filter = document.getElementById("filter");
  var show = document.getElementById("show");
  var shown = document.getElementById("shown");
  function apply() {
    var text = filter.value.trim().toLowerCase();
    var what = show.value;
    var count = 0;
    rows.forEach(function (row) {
      var ok = (!text || row.dataset.taskId.toLowerCase().indexOf(text) !== -1) &&
        (!what || (what === "critical" ? row.classList.contains("critical")
                                       : row.dataset.status === what));
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    shown.textContent = count === rows.length ? rows.length + " tasks"
                                              : count + " of " + rows.length + " tasks";
  }
  filter.addEventListener("input", apply);
  show.addEventListener("change", apply);

  var tip = document.getElementById("tip");
  var held = null;
  function hide() {
    if (held) { held.setAttribute("title", held.dataset.tip); held = null; }
    tip.hidden = true;
  }
  document.addEventListener("mouseover", function (event) {
    var el = event.target.closest ? event.target.closest(".bar[title]") : null;
    if (!el) { return; }
    hide();
    held = el;
    el.dataset.tip = el.getAttribute("title");
    el.removeAttribute("title");
    tip.textContent = el.dataset.tip;
    tip.hidden = false;
  });
  document.addEventListener("mousemove", function (event) {
    if (tip.hidden) { return; }
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight - 8) {
      y = event.clientY - tip.offsetHeight - 12;
    }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });
  document.addEventListener("mouseout", function (event) {
    if (held && event.target === held) { hide(); }
  });

  var dag = document.querySelector(".dag");
  if (dag) {
    dag.addEventListener("click", function (event) {
      var node = event.target.closest ? event.target.closest(".node") : null;
      var row = node ? byId.get(node.getAttribute("data-task-id")) : null;
      if (!row) { return; }
      filter.value = ""; show.value = ""; apply();
      row.scrollIntoView({block: "center"});
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 1600);
    });
  }
})();
"""

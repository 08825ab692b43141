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

How the page is made, in three modules:

- ``_report_model``: the *data model* -- :class:`RunView`, everything the page shows as plain
  text and numbers, built from the run's timeline (``_timeline``), a module per part of the
  page (``_report_timeline``, ``_report_attention``, ``_report_logs``, ``_report_graph``);
- ``_report_layout``: the *layout* -- the timeline's axis and the graph's geometry;
- this module: the *rendering* -- Jinja2 templates (``plait/templates``: ``report.html`` on
  ``base.html``, with one partial per part of the page under ``run/``: ``header``, ``failures``,
  ``questions``, ``gantt``, ``attempts``, ``graph``; each takes its piece of the view, never a
  store object) and static files (``plait/static``: ``report.css``, ``report.js``).
  Autoescaping is on: every string that comes from a run (task ids, errors, prompts, who
  answered) is HTML-escaped by the templates.

``plait serve`` renders the same partials with :func:`render_page` -- ``run/sections.html``, the
whole run view without the page around it, or any one partial with its piece of the view --
its static files linked from a URL, not inlined (a large run's view sits in an element of class
``large``, as the report's body is). The report needs no network: its CSS and a little JavaScript (a
filter and tooltips) are inlined, and the charts are plain HTML and SVG, so a 2,000-task run
opens in about a second. Jinja2 (in the ``cli`` extra) is imported when a page is rendered,
never by ``plait --help``.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stores import RunNotFoundError, Store, open_store
from ..stores._open import opens_store
from ._report_model import RunView, load_view

if TYPE_CHECKING:
    import jinja2

__all__ = ["build_report", "environment", "render_page", "static_text", "write_report"]


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
    return render_page("report.html", view=load_view(record, the_store))


def write_report(run_id: str, path: str | Path, *, store: Store | str | None = None) -> Path:
    """Write run ``run_id``'s report to ``path`` (UTF-8 HTML) and return the path.

    Raises:
        RunNotFoundError: the store has no such run.
    """
    target = Path(path)
    target.write_text(build_report(run_id, store=store), encoding="utf-8")
    return target


def render_page(
    template: str, *, static_url: str | None = None, view: RunView | None = None, **context: Any
) -> str:
    """Render ``template`` (a name under ``plait/templates``) with ``view`` and ``context``.

    ``static_url`` None inlines the static files (a self-contained page); otherwise the page
    links them from that URL (``/static``).
    """
    return environment().get_template(template).render(view=view, static_url=static_url, **context)


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of plait's pages: its templates, autoescaping on, blocks trimmed
    (a tag alone on its line leaves no blank line), undefined names an error, and
    ``static_text(name)`` for inlining a static file."""
    import jinja2  # noqa: PLC0415 - the cli extra; only when a page is rendered
    import markupsafe  # noqa: PLC0415 - installed with Jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("plait", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.globals["static_text"] = lambda name: markupsafe.Markup(static_text(name))
    return env


@functools.cache
def static_text(name: str) -> str:
    """The text of static file ``name`` (``report.css``), to inline in a page: plait's own file,
    trusted (it must hold no ``</style`` or ``</script``).

    Raises:
        FileNotFoundError: plait ships no such file.
    """
    text = resources.files("plait").joinpath("static", name).read_text(encoding="utf-8")
    if "</style" in text.lower() or "</script" in text.lower():
        raise ValueError(f"the static file {name!r} cannot be inlined: it closes its element")
    return text

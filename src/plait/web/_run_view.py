"""A run as its page shows it: the report's sections, made from the store.

The run page shows what ``plait report`` shows -- the header and its figures, what needs
attention (failures with their tracebacks, open questions), the timeline, each attempt's log,
the graph -- made by the report's own code from the report's data model (``plait.cli._timeline``
loads a run into it), so the page and the file never disagree. The page adds what only a live
server can: the actions (cancel, resume, answer) and updates as the run goes on.

:func:`run_sections` is the one place that calls into the report, so when the report's markup
moves to shared templates, only it changes.
"""

from __future__ import annotations

from markupsafe import Markup

from ..cli import _report as report
from ..cli._timeline import _Run
from ..stores import RunRecord, Store

__all__ = ["report_css", "run_sections", "task_count"]


def run_sections(record: RunRecord, store: Store) -> Markup:
    """The report's body for ``record``'s run, as it stands in ``store``."""
    run = _Run.load(record, store)
    large = len(run.tasks) > report.LARGE_GRAPH
    parts = [
        report._render_header(run),
        report._render_attention(run),
        report._render_gantt(run, large=large),
        report._render_logs(run),
        report._render_graph(run, large=large),
    ]
    classes = "report large" if large else "report"
    return Markup(f"<div class='{classes}'>{''.join(parts)}</div>")


def task_count(record: RunRecord) -> int:
    return len(record.definition)


def report_css() -> str:
    """The report's stylesheet, served as a static file of the page."""
    return report._CSS.replace("body.large", ".report.large")

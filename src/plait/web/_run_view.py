"""A run as its page shows it: the report's own view and partials, made from the store.

The run page shows what ``plait report`` shows -- the header and its figures, what needs
attention (failures with their tracebacks, open questions and who answered), the timeline, each
attempt's log, the graph -- from the report's data model (``plait.cli._report_model.RunView``)
rendered by the report's templates (``plait/templates/run/sections.html`` and its partials), so
the page and the file never disagree. The page adds what only a live server can: the actions
(cancel, resume, answer) and updates as the run goes on. Its stylesheet is the report's
(``/static/report.css``); the report's script is replaced by ``/static/web/live.js``, which
does the same (filter, tooltips) on a view that is swapped as the run changes.
"""

from __future__ import annotations

from markupsafe import Markup

from ..cli._report import render_page
from ..cli._report_model import run_view
from ..cli._timeline import _Run
from ..stores import RunRecord, Store

__all__ = ["run_sections"]


def run_sections(record: RunRecord, store: Store) -> Markup:
    """The report's view of ``record``'s run, as it stands in ``store`` (HTML, escaped)."""
    view = run_view(_Run.load(record, store))
    html = render_page("run/sections.html", view=view, static_url="/static")
    classes = "report large" if view.large else "report"
    return Markup(f"<div class='{classes}'>{html}</div>")  # the templates escaped it

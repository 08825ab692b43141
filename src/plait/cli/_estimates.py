"""``plait estimates``: each task's estimate, and where it comes from (``plait._estimates``
computes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import _console, _json_line, _opened
from ._options import _store_option

if TYPE_CHECKING:
    pass

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["estimates"]


@click.command(
    epilog="\b\nExamples:\n  plait estimates examples/build.yaml\n"
    "  plait estimates flows.py:etl --store sqlite:///plait.db --json"
)
@click.argument("target")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task.")
def estimates(target: str, store: str | None, as_json: bool) -> None:
    """Print the estimate of each task of TARGET, and where it comes from: given (the task's
    own estimate), learned (the median of its latest 5 succeeded attempts in the store),
    function (that of the tasks calling the same function), or unknown (it weighs the median
    of the known ones). A run orders its ready tasks by these (see `learn_estimates`)."""
    from rich.table import Table
    from rich.text import Text

    from .._estimates import EstimateSource, estimate_tasks
    from .._files import load_target

    workflow = load_target(target).workflow
    graph = workflow.graph()
    with _opened(store) as the_store:
        history = the_store.task_history(graph.workflow_name)
    found = estimate_tasks(graph, history)
    if as_json:
        for estimate in found:
            _json_line(
                {
                    "task_id": estimate.task_id,
                    "seconds": estimate.seconds,
                    "source": str(estimate.source),
                    "samples": estimate.samples,
                }
            )
        return
    known = sorted(e.seconds for e in found if e.seconds is not None)
    typical = graph.reranked([e.seconds for e in found]).rank  # unknown: the median of known
    table = Table(box=None, pad_edge=False)
    for column in ("task", "estimate", "from", "attempts"):
        table.add_column(column, justify="right" if column != "task" else "left")
    for i, estimate in enumerate(found):
        if estimate.seconds is None:
            below = max((typical[d] for d in graph.dependents[i]), default=0.0)
            seconds = Text(f"({typical[i] - below:.3g} s)", style="dim")
        else:
            seconds = Text(f"{estimate.seconds:.3g} s")
        table.add_row(
            Text(estimate.task_id),
            seconds,
            Text(
                str(estimate.source),
                style="dim" if estimate.source is EstimateSource.UNKNOWN else "",
            ),
            str(estimate.samples or ""),
        )
    console = _console()
    console.print(table)
    counts = {source: sum(e.source is source for e in found) for source in EstimateSource}
    console.print(
        f"{counts[EstimateSource.LEARNED] + counts[EstimateSource.FUNCTION]} learned · "
        f"{counts[EstimateSource.GIVEN]} given · {counts[EstimateSource.UNKNOWN]} unknown"
        + ("" if known or not found else " (no history: every task weighs 1)")
    )

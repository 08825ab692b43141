"""``plait validate`` and ``plait graph``: look at a workflow without running it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import _console
from ._options import _pools

if TYPE_CHECKING:
    from .._workflow import Workflow

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["dot", "graph", "mermaid", "validate"]


@click.command(
    epilog="\b\nExamples:\n  plait validate examples/build.yaml\n"
    "  plait validate flow.yaml --pool db=2   # a pool `plait run --pool` will limit"
)
@click.argument("target")
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME=N",
    help="A pool the run will limit with --pool (tasks may name it).",
)
def validate(target: str, pools: tuple[str, ...]) -> None:
    """Check the workflow TARGET and show its shape; runs nothing.

    A workflow file's problems are all reported, one line each with its file and line (exit
    2). Otherwise prints the number of tasks and edges, the depth (the most tasks on one
    chain), the width (the largest layer) and the critical path by estimate.
    """
    from rich.text import Text

    from .._files import load_target
    from ._summary import graph_shape

    loaded = load_target(target, pools=_pools(pools))
    for executor in loaded.executors.values():  # made (lazily) to check their settings only
        executor.shutdown()
    shape = graph_shape(loaded.workflow)  # load_target checked the file's engine settings
    console = _console()
    console.print(
        Text("✓ ", style="green").append(
            f"{target}: workflow {loaded.workflow.name!r} is valid", style="bold"
        )
    )
    console.print(
        f"  {shape.tasks} tasks · {shape.edges} edges · depth {shape.depth} · width {shape.width}"
    )
    console.print(f"  critical path (by estimate): {' -> '.join(shape.critical_path) or '-'}")


def _mermaid_label(text: str) -> str:
    # Mermaid reads entity codes inside a quoted label; these four would end or change it.
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return f'"{text}"'


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def mermaid(workflow: Workflow) -> str:
    """The workflow as a Mermaid flowchart; nodes get safe ids (``n0``), labels are quoted."""
    node = {task_id: f"n{i}" for i, task_id in enumerate(workflow.tasks)}
    lines = ["flowchart LR"]
    for task_id, spec in workflow.tasks.items():
        label = _mermaid_label(task_id)
        shape = f"{{{{{label}}}}}" if spec.pause else f"[{label}]"
        lines.append(f"    {node[task_id]}{shape}")
    for task_id, spec in workflow.tasks.items():
        lines += [f"    {node[d]} --> {node[task_id]}" for d in spec.depends_on]
    return "\n".join(lines)


def dot(workflow: Workflow) -> str:
    """The workflow as a Graphviz digraph; every id is a quoted, escaped DOT string."""
    lines = [f"digraph {_dot_id(workflow.name)} {{", "    rankdir=LR;"]
    for task_id, spec in workflow.tasks.items():
        lines.append(f"    {_dot_id(task_id)}{' [shape=hexagon]' if spec.pause else ''};")
    for task_id, spec in workflow.tasks.items():
        lines += [f"    {_dot_id(d)} -> {_dot_id(task_id)};" for d in spec.depends_on]
    lines.append("}")
    return "\n".join(lines)


@click.command(
    epilog="\b\nExamples:\n  plait graph examples/build.yaml > build.mmd\n"
    "  plait graph examples/build.yaml --format dot | dot -Tsvg > build.svg"
)
@click.argument("target")
@click.option(
    "--format",
    "form",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart or Graphviz DOT.",
)
def graph(target: str, form: str) -> None:
    """Print the graph of TARGET as text for another tool to draw (pause tasks are hexagons)."""
    from .._files import load_target

    workflow = load_target(target).workflow
    workflow.validate()
    click.echo(mermaid(workflow) if form == "mermaid" else dot(workflow))

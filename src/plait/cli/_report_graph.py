"""The run page's graph, as data: the DAG's nodes, coloured by status and placed by
``_report_layout``, its edges as SVG path data, and the critical path. No markup.

A mapped task is one node (``convert [20]``), its tooltip its instances' counts by status; a
critical path that goes through an instance goes through that node. A large graph draws its
edges off the critical path as one SVG path (thousands of elements cost the browser).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ._mapped import counts_text, instance_of
from ._report_format import plural, seconds
from ._report_layout import graph_layout
from ._timeline import _ORDER, _Run

__all__ = ["GraphView", "NodeView", "graph_view"]


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


def graph_view(run: _Run) -> GraphView:
    """The graph of ``run``'s tasks (``run`` has some)."""
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

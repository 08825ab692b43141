"""Where things go on a run's page: the timeline's axis, and the graph's nodes and edges.

Pure geometry, no markup: the view model (``_report_model``) turns a run into what is shown,
using these positions; the templates draw it.

- **The axis**: a round step (1, 2 or 5 times a power of ten below a minute, then 15 s, 30 s,
  1 m, 2 m, 5 m, ... a day) that gives about ten ticks over the run's span.
- **The graph**: tasks are placed in layers by longest path from the sources (a task sits one
  layer right of its deepest dependency); within a layer, a few barycenter sweeps (each node
  moves to the mean position of its neighbours in the layers already placed) reduce edge
  crossings. A layer taller than ``1.5 * sqrt(tasks)`` wraps into side-by-side sub-columns, so
  that a wide graph stays a block one can take in, not a strip thousands of pixels high. Above
  :data:`LARGE_GRAPH` tasks, nodes are small dots and edges straight lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._timeline import _Task, _topological

__all__ = ["LARGE_GRAPH", "GraphLayout", "graph_layout", "layers_of", "ticks"]

#: Above this many tasks the graph draws dots without labels, and the timeline compact rows.
LARGE_GRAPH = 300

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


def ticks(span: float, most: int = 10) -> tuple[float, list[float]]:
    """A round step for about ``most`` ticks over ``span`` seconds, and the ticks."""
    step = next((s for s in _STEPS if span / s <= most), None)
    if step is None:
        step = 86400.0 * math.ceil(span / most / 86400.0)
    count = int(span / step + 1e-9)
    return step, [i * step for i in range(count + 1)]


def layers_of(tasks: Mapping[str, _Task]) -> list[list[str]]:
    """The graph's layers, left to right: longest-path layers, then barycenter sweeps to order
    each layer."""
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
    return layers


@dataclass(frozen=True, slots=True)
class GraphLayout:
    """The graph's drawing: its size, each node's top-left corner, and each edge's SVG path
    (by ``(dependency, task)``), in pixels."""

    large: bool
    width: int
    height: int
    node_width: int
    node_height: int
    layers: int
    at: Mapping[str, tuple[int, int]]
    edges: Sequence[tuple[str, str, str]]  # (dependency, task, SVG path data)


def graph_layout(tasks: Mapping[str, _Task]) -> GraphLayout:
    """Place ``tasks`` (not empty) and route their edges; see the module docstring."""
    large = len(tasks) > LARGE_GRAPH
    layers = layers_of(tasks)
    if large:
        col, sub, row, node_w, node_h, pad = 40, 14, 12, 8, 8, 16
    else:
        col, sub, row, node_w, node_h, pad = 220, 190, 44, 160, 30, 20
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
    edges: list[tuple[str, str, str]] = []
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
            edges.append((dep, task.id, d))
    return GraphLayout(
        large=large,
        width=x - col + node_w + pad,
        height=tallest * row + 2 * pad,
        node_width=node_w,
        node_height=node_h,
        layers=len(layers),
        at=at,
        edges=edges,
    )

"""Mapped tasks as the report, the live view and the run page show them.

A mapped task (``map_over=...``) expands at run time into one *instance* per item:
``convert[0]`` ... ``convert[n-1]``, each a task of its own with its record, events and
attempts. Brackets are reserved in task ids, so an id of the form ``name[i]`` is instance ``i``
of the mapped task ``name`` (:func:`instance_of`, after ``plait._mapping``): nothing else has
to be recorded to tell instances apart from tasks, and a stored run's instances are found from the
ids its records and events use (and its ``TaskMapped`` events: how many a mapped task has).

A run can hold 100,000 instances of one task, so the views show a mapped task as a *group*:

- one row (the timeline) or line (the live view) for the whole task, with its instances'
  counts by status, e.g. ``convert [20]: 19 succeeded, 1 failed``;
- under it, each instance's own row when the group is small (at most :data:`COLLAPSE_OVER`
  instances); a larger group is collapsed to its row, and opens (the report's ``<details>``)
  on at most :data:`INSTANCE_ROWS` instance rows: every instance that did not succeed first,
  then the slowest of the others, shown in item order (:func:`shown_instances`).

The critical path runs through instances (:func:`figure_dependencies`): an instance depends on
its mapped task's dependencies, and the mapped task on its instances, so the path reads
``list_files -> convert[7] -> total`` and the graph of dependencies stays as large as the run
(not instances times dependents). The instances of a mapped task that no other maps over, and
that maps over no mapped task, all sit between the same tasks: only the heaviest can be on the
path, so the search weighs the mapped task as that one (:func:`path_weights`), and 100,000
instances cost it one node.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from .._mapping import split_instance_id

__all__ = [
    "COLLAPSE_OVER",
    "INSTANCE_ROWS",
    "counts_text",
    "deciding_task",
    "figure_dependencies",
    "group_look",
    "instance_of",
    "path_weights",
    "shown_instances",
]

#: A mapped task with more instances than this is shown collapsed to one row (or line) with
#: its counts; one with this many or fewer shows each instance's row.
COLLAPSE_OVER = 10

#: The most instance rows a collapsed group opens on (the report's size stays bounded by the
#: number of tasks, not of instances: a 100,000-instance task is one row and these).
INSTANCE_ROWS = 200


def instance_of(task_id: str) -> tuple[str, int] | None:
    """``("convert", 3)`` for ``"convert[3]"``; None for an id that names no instance."""
    if not task_id.endswith("]"):  # most ids: no regular expression at all (the live view
        return None  # asks of every event, under the engine's lock)
    return split_instance_id(task_id)


def deciding_task(task_id: str, cause: str) -> str:
    """The task whose end decided that ``task_id`` is skipped, as its dependencies name it:
    a task that depends on a mapped task waits for the whole of it, so the instance that ended
    last (which the engine names as the cause) stands for its mapped task. (A mapped task
    skipped as a whole because of one of its own instances keeps that instance.)"""
    named = instance_of(cause)
    if named is not None and named[0] != task_id and instance_of(task_id) is None:
        return named[0]
    return cause


class _Shown(Protocol):
    """What choosing the instances to show needs of one."""

    @property
    def id(self) -> str: ...

    @property
    def css(self) -> str: ...


_T = TypeVar("_T", bound=_Shown)


def shown_instances(
    instances: Sequence[_T], work: Mapping[str, float], most: int = INSTANCE_ROWS
) -> list[_T]:
    """The instances a group shows, in item order: all of them if there are at most ``most``;
    else every one that did not succeed, then the slowest that did (by ``work``, seconds by
    id), ``most`` in all."""
    if len(instances) <= most:
        return list(instances)
    chosen = [i for i, task in enumerate(instances) if task.css != "succeeded"][:most]
    room = most - len(chosen)
    if room > 0:
        succeeded = (i for i, task in enumerate(instances) if task.css == "succeeded")
        chosen += heapq.nlargest(room, succeeded, key=lambda i: work[instances[i].id])
    return [instances[i] for i in sorted(chosen)]


#: Which status a group takes from its instances' (the first found, in this order).
_GROUP_ORDER = ("failed", "running", "waiting", "cancelled", "pending", "skipped")


def group_look(looks: Mapping[str, int], *, total: int) -> str:
    """The look (status) of a mapped task from its instances' looks: failed if one failed,
    running while one runs, ..., succeeded when all of them did (and there are some)."""
    for look in _GROUP_ORDER:
        if looks.get(look):
            if look == "skipped" and looks.get("succeeded"):
                return "succeeded"  # some skipped themselves: the task as a whole went on
            return look
    return "succeeded" if total and looks.get("succeeded") == total else "pending"


def counts_text(counts: Iterable[tuple[str, int]]) -> str:
    """``19 succeeded, 1 failed``: the counts that are not zero, in the order given."""
    return ", ".join(f"{n:,} {look}" for look, n in counts if n) or "no instances"


def path_weights(
    work: Mapping[str, float],
    instances: Mapping[str, Sequence[str]],
    map_over: Mapping[str, str],
) -> tuple[dict[str, float], dict[str, str]]:
    """The nodes the critical path is sought among, with their weights (see the module
    docstring), and the instance each mapped task weighed as stands for (to name it on the
    path).

    Args:
        work: every task's and instance's work, in the definition's order, then the instances.
        instances, map_over: as for :func:`figure_dependencies`.
    """
    streamed = {over for over in map_over.values() if over in instances}
    alone = {
        task_id
        for task_id in instances
        if task_id not in streamed and map_over.get(task_id) not in instances
    }
    weights: dict[str, float] = {}
    stands_for: dict[str, str] = {}
    for task_id, own in work.items():
        heaviest = None
        if task_id in alone:
            heaviest = max(instances[task_id], key=work.__getitem__, default=None)
        if heaviest is not None and work[heaviest] > 0:
            stands_for[task_id] = heaviest
            weights[task_id] = own + work[heaviest]
        else:
            weights[task_id] = own
    for task_id in alone:  # the instances: one node, their mapped task
        for instance in instances[task_id]:
            del weights[instance]
    return weights, stands_for


def figure_dependencies(
    dependencies: Mapping[str, Sequence[str]],
    instances: Mapping[str, Sequence[str]],
    map_over: Mapping[str, str],
) -> dict[str, tuple[str, ...]]:
    """The dependencies the critical path is computed over, instances included.

    Args:
        dependencies: each task of the definition -> its dependencies (as declared).
        instances: each mapped task -> its instances' ids, in item order.
        map_over: each mapped task -> the task it maps over, when the definition says so.

    An instance depends on its mapped task's dependencies; instance ``i`` of a task mapped over
    another mapped task's output depends on that task's instance ``i`` (they stream), not on all
    of them. The mapped task depends on its instances (and on its own dependencies, for when
    :func:`path_weights` makes it stand for them), so a task that depends on it follows them
    all through one node: the edges grow with the instances, never with their product.
    """
    result: dict[str, tuple[str, ...]] = {}
    for task_id, deps in dependencies.items():
        ids = instances.get(task_id)
        if ids is None:
            result[task_id] = tuple(deps)
            continue
        result[task_id] = (*ids, *deps)  # its own too: where it stands for its instances
        over = map_over.get(task_id)
        streams = over in instances
        others = tuple(d for d in deps if not (streams and d == over))
        upstream = instances.get(over, ()) if over is not None else ()
        for i, instance in enumerate(ids):
            paired = (upstream[i],) if streams and i < len(upstream) else ()
            result[instance] = paired + others
    return result

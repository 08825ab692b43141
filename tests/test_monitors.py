"""A run's monitors: one journal, and one attempt journal, that feed every watcher."""

from __future__ import annotations

from typing import Any

import pytest

from plait._events import Event, RunStarted, TaskStarted, TaskSucceeded
from plait._monitors import _all


class Watcher:
    """A journal and an attempt journal that note what they are told, in one shared list."""

    def __init__(self, name: str, told: list[tuple[Any, ...]]) -> None:
        self.name = name
        self.told = told

    def journal(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        self.told.append((self.name, kind, at, task_id, data))

    def attempt(self, kind: type[Event], at: float, task_id: str, number: int) -> None:
        self.told.append((self.name, kind, at, task_id, number))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_every_watcher_is_told_each_event_in_order(count: int) -> None:
    told: list[tuple[Any, ...]] = []
    watchers = [Watcher(f"w{n}", told) for n in range(count)]
    journal, attempt = _all([(w.journal, w.attempt) for w in watchers])
    journal(RunStarted, 0.5, None, {"workflow": "wf", "tasks": 1})
    attempt(TaskStarted, 1.0, "a", 1)
    attempt(TaskSucceeded, 2.0, "a", 1)
    names = [w.name for w in watchers]
    assert told == [
        *[(name, RunStarted, 0.5, None, {"workflow": "wf", "tasks": 1}) for name in names],
        *[(name, TaskStarted, 1.0, "a", 1) for name in names],
        *[(name, TaskSucceeded, 2.0, "a", 1) for name in names],
    ]

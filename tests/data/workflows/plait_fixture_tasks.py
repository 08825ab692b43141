"""Task functions that the workflow files of tests/test_files.py name, and a workflow."""

from __future__ import annotations

from types import SimpleNamespace

import plait


def fetch(day: str) -> dict[str, object]:
    return {"day": day, "rows": 3}


async def count_words(publish: str) -> int:
    return len(publish.split())


jobs = SimpleNamespace(count=count_words)

not_callable = 42

wf = plait.Workflow("from-a-module")
wf.add_task("fetch", fetch, params={"day": "today"})

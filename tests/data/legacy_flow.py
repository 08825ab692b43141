"""The workflow of the run in ``run_format1.sql``: a SQLite store written by plait before
tagged JSON (outputs in format 1, plain JSON), paused at ``gate``. Do not change it: the
stored run's definition names these functions."""

from typing import Any

import plait


def produce() -> dict[str, Any]:
    return {"pair": (1, 2), "counts": {1: 3}, "looks_tagged": {"$tuple": [1, 2]}}


def consume(produce: dict[str, Any]) -> dict[str, Any]:
    return produce


wf = plait.Workflow("legacy")
wf.add_task("produce", produce)
wf.add_task("gate", None, depends_on=["produce"], pause=plait.Pause("go?"))
wf.add_task("consume", consume, depends_on=["produce", "gate"])

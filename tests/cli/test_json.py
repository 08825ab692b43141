"""``--json`` for ``runs``, ``status`` and ``inputs``: the documented keys, with real values."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from .test_cli import flows, home, plait_cli  # noqa: F401 - fixtures

RUN_KEYS = {
    "run_id",
    "workflow",
    "status",
    "created_at",
    "updated_at",
    "finished_at",
    "duration",
    "error",
    "live_owner",
    "stale_since",
    "target",
}
QUESTION_KEYS = {
    "task_id",
    "key",
    "prompt",
    "schema",
    "deadline",
    "asked_at",
    "command",
    "expired",
}
TASK_KEYS = {"task_id", "status", "attempts", "started_at", "finished_at", "duration", "error"}


def json_lines(*args: str | Path) -> list[dict[str, Any]]:
    result = plait_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_runs_json_is_one_object_per_run_newest_first(flows: Path) -> None:  # noqa: F811
    assert plait_cli("run", f"{flows}:ok", "--run-id", "j1", "-q").exit_code == 0
    assert plait_cli("run", f"{flows}:failing", "--run-id", "j2", "-q").exit_code == 1
    first, second = json_lines("runs")
    assert set(first) == set(second) == RUN_KEYS
    assert (first["run_id"], first["status"], first["workflow"]) == ("j2", "failed", "failing")
    assert first["error"].startswith("1 task(s) failed: 'explode'")
    assert (second["run_id"], second["status"], second["error"]) == ("j1", "succeeded", None)
    assert second["created_at"] <= second["finished_at"] <= first["created_at"]
    assert second["duration"] == second["finished_at"] - second["created_at"]
    assert first["live_owner"] is None
    assert first["target"] == f"{flows}:failing"  # as `plait run` recorded it
    assert first["stale_since"] is None
    assert [r["run_id"] for r in json_lines("runs", "--status", "succeeded")] == ["j1"]


def test_status_json_has_every_task_the_figures_and_the_waiting_questions(
    flows: Path,  # noqa: F811
) -> None:
    assert plait_cli("run", f"{flows}:gate", "--run-id", "j3", "-q").exit_code == 3
    (document,) = json_lines("status", "j3")
    assert set(document) == RUN_KEYS | {"tasks", "figures", "waiting"}
    assert document["status"] == "paused"
    tasks = {task["task_id"]: task for task in document["tasks"]}
    assert list(tasks) == ["build", "approve", "ship"]
    assert all(set(task) == TASK_KEYS for task in tasks.values())
    assert (tasks["build"]["status"], tasks["build"]["attempts"]) == ("succeeded", 1)
    assert tasks["build"]["duration"] >= 0
    assert (tasks["ship"]["status"], tasks["ship"]["started_at"]) == ("pending", None)
    assert set(document["figures"]) == {
        "makespan",
        "task_time",
        "parallelism",
        "critical_path",
        "critical_path_seconds",
    }
    (question,) = document["waiting"]
    assert set(question) == QUESTION_KEYS
    assert (question["task_id"], question["prompt"]) == ("approve", "Ship 1.0?")
    assert question["expired"] is False  # no deadline
    assert question["schema"]["required"] == ["approved"]
    # the command answers the question
    words = shlex.split(question["command"])
    assert plait_cli(*words[1:]).exit_code == 0


def test_status_json_of_a_failed_run_carries_each_error(flows: Path) -> None:  # noqa: F811
    plait_cli("run", f"{flows}:failing", "--run-id", "j4", "-q")
    (document,) = json_lines("status", "j4")
    tasks = {task["task_id"]: task for task in document["tasks"]}
    assert tasks["explode"]["error"]["type"] == "RuntimeError"
    assert tasks["explode"]["error"]["message"].startswith("disk full")
    assert tasks["after"]["status"] == "skipped"


def test_inputs_json_is_one_object_per_waiting_question(flows: Path) -> None:  # noqa: F811
    plait_cli("run", f"{flows}:ok", "--run-id", "j5", "-q")
    assert json_lines("inputs") == []
    plait_cli("run", f"{flows}:gate", "--run-id", "j6", "-q")
    plait_cli("run", f"{flows}:named", "--run-id", "j7", "-q")
    questions = sorted(json_lines("inputs"), key=lambda q: q["run_id"])
    assert [(q["run_id"], q["workflow"], q["task_id"]) for q in questions] == [
        ("j6", "gate", "approve"),
        ("j7", "named", "name"),
    ]
    assert all(set(q) == QUESTION_KEYS | {"run_id", "workflow"} for q in questions)
    assert questions[1]["schema"] == {"type": "string", "minLength": 3}
    assert questions[1]["deadline"] is None

"""Running one shell task by itself, for the tests of shell tasks (test_shell*.py)."""

from __future__ import annotations

import plait
from plait import ShellTask, TaskStatus

__all__ = ["error_of", "run_one"]


def run_one(task: ShellTask, **options: object) -> plait.TaskResult:
    """Run ``task`` alone, without retries; return its result."""
    wf = plait.Workflow("shell")
    wf.add_task("sh", task, **options)  # type: ignore[arg-type]
    return plait.run(wf, max_retries=0).tasks["sh"]


def error_of(result: plait.TaskResult) -> BaseException:
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.exception is not None
    return result.error.exception

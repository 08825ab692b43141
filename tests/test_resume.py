"""Resuming runs elsewhere and otherwise: script runs, changed definitions, re-runs, retry
budgets and question deadlines across a resume (the engine side is in test_runs.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import plait
from plait._graph import module_name_of

SCRIPT_FLOW = """
import plait

wf = plait.Workflow("script")

@wf.task
def draft():
    return "draft"

@wf.task(depends_on=[draft], pause=plait.Pause("ok?"))
def publish(draft, ctx):
    return f"{draft}+{ctx.input}"

if __name__ == "__main__":
    import sys
    result = plait.run(wf, run_id="script-run", store=sys.argv[1])
    print(result.status)
"""


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_run_started_as_a_script_resumes_from_a_script_that_imports_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT_FLOW)
    url = f"sqlite://{tmp_path / 'plait.db'}"
    started = python(["flow.py", url], tmp_path)
    assert started.stdout.split() == ["paused"], started.stderr
    resumed = python(
        [
            "-c",
            textwrap.dedent(f"""
                import plait, flow
                r = plait.resume("script-run", flow.wf, store={url!r}, inputs={{"publish": "ok"}})
                print(r.status, r.outputs["publish"])
            """),
        ],
        tmp_path,
    )
    assert resumed.stdout.split() == ["succeeded", "draft+ok"], resumed.stderr
    definition = plait.get_run("script-run", store=url).tasks  # readable from here too
    assert definition["draft"].output == "draft"


def test_a_script_is_named_as_the_import_path_would_name_it(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        assert module_name_of(str(package / "flows.py")) == "pkg.flows"
        assert module_name_of(str(tmp_path / "top.py")) == "top"
    finally:
        sys.path.remove(str(tmp_path))
    assert module_name_of("/nowhere/on/the/path/flow.py") is None


def test_a_failed_task_gets_a_fresh_retry_budget_on_resume(tmp_path: Path) -> None:
    calls: list[int] = []

    def flaky(ctx: plait.Context) -> None:
        calls.append(ctx.attempt)
        raise RuntimeError(f"attempt {ctx.attempt} broke")

    wf = plait.Workflow("flaky")
    wf.add_task("flaky", flaky, retry=plait.RetryPolicy(max_retries=1, backoff=0))
    url = f"sqlite://{tmp_path / 'plait.db'}"
    failed = plait.run(wf, store=url)
    assert failed.tasks["flaky"].attempts == 2
    again = plait.resume(failed.run_id, wf, store=url)
    assert again.status is plait.RunStatus.FAILED
    assert again.tasks["flaky"].attempts == 4  # two more tries; the numbers go on counting
    assert calls == [1, 2, 3, 4]


def test_a_question_whose_deadline_passed_while_paused_takes_its_default_on_resume(
    tmp_path: Path,
) -> None:
    wf = plait.Workflow("deadline")
    wf.add_task("gate", None, pause=plait.Pause("go?", timeout=0.2, default=False))
    wf.add_task("after", lambda gate: f"gate said {gate}", depends_on=["gate"])
    url = f"sqlite://{tmp_path / 'plait.db'}"
    paused = plait.run(wf, store=url)
    assert paused.status is plait.RunStatus.PAUSED
    deadline = paused.waiting["gate"].deadline
    assert deadline is not None
    time.sleep(max(0.0, deadline - time.time()) + 0.05)  # let the deadline pass
    resumed = plait.resume(paused.run_id, wf, store=url)
    assert resumed.status is plait.RunStatus.SUCCEEDED
    assert resumed.outputs == {"gate": False, "after": "gate said False"}


def test_a_question_without_a_default_fails_its_task_on_resume_once_overdue(
    tmp_path: Path,
) -> None:
    wf = plait.Workflow("deadline")
    wf.add_task("gate", None, pause=plait.Pause("go?", timeout=0.2))
    wf.add_task("after", lambda gate: gate, depends_on=["gate"])
    url = f"sqlite://{tmp_path / 'plait.db'}"
    paused = plait.run(wf, store=url)
    deadline = paused.waiting["gate"].deadline
    assert deadline is not None
    time.sleep(max(0.0, deadline - time.time()) + 0.05)  # let the deadline pass
    resumed = plait.resume(paused.run_id, wf, store=url)
    assert resumed.status is plait.RunStatus.FAILED
    gate = resumed.tasks["gate"]
    assert gate.error is not None and gate.error.type.endswith("InputTimeoutError")
    assert resumed.tasks["after"].status is plait.TaskStatus.SKIPPED


def test_a_mid_task_question_overdue_on_resume_takes_the_default_the_task_gives(
    tmp_path: Path,
) -> None:
    def ask(ctx: plait.Context) -> str:
        return f"got {ctx.request_input('size?', timeout=0.2, default='small')}"

    wf = plait.Workflow("deadline")
    wf.add_task("ask", ask)
    url = f"sqlite://{tmp_path / 'plait.db'}"
    paused = plait.run(wf, store=url)
    deadline = paused.waiting["ask"].deadline
    assert deadline is not None
    time.sleep(max(0.0, deadline - time.time()) + 0.05)  # let the deadline pass
    resumed = plait.resume(paused.run_id, wf, store=url)
    assert resumed.status is plait.RunStatus.SUCCEEDED
    assert resumed.outputs == {"ask": "got small"}

"""Resuming runs elsewhere and otherwise: script runs, changed definitions, re-runs, retry
budgets and question deadlines across a resume (the engine side is in test_runs.py)."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import plait
from plait._targets import module_name_of
from plait.stores import SQLiteStore, open_store

SCRIPT_FLOW = """
import pytest

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


MODULE_WF = plait.Workflow("module")
MODULE_WF.add_task("one", lambda: 1)


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_run_started_as_a_script_resumes_from_code_that_imports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT_FLOW)
    url = f"sqlite://{tmp_path / 'plait.db'}"
    started = python(["flow.py", url], tmp_path)  # its functions are __main__:draft...
    assert started.stdout.split() == ["paused"], started.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flow", raising=False)
    flow = importlib.import_module("flow")  # ...and here flow:draft
    try:
        resumed = plait.resume("script-run", flow.wf, store=url, inputs={"publish": "ok"})
    finally:
        del sys.modules["flow"]
    assert resumed.status is plait.RunStatus.SUCCEEDED
    assert resumed.outputs == {"draft": "draft", "publish": "draft+ok"}


def test_a_script_run_records_its_target_and_plait_resume_imports_it_from_there(
    tmp_path: Path,
) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT_FLOW)
    url = f"sqlite://{tmp_path / 'plait.db'}"
    assert python(["flow.py", url], tmp_path).stdout.split() == ["paused"]
    record = open_store(url).get_run("script-run")
    assert record is not None and record.target == "flow:wf"
    env = {**os.environ, "PLAIT_HOME": str(tmp_path / "home")}
    env.pop("PLAIT_PATH", None)
    command = ["-m", "plait.cli", "resume", "script-run", "--store", url, "--input", 'publish="ok"']
    elsewhere = subprocess.run(
        [sys.executable, *command],
        cwd=tmp_path.parent,
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert elsewhere.returncode == 2
    assert "was started from 'flow:wf', which is not inside the current directory" in (
        elsewhere.stderr
    )
    here = subprocess.run(
        [sys.executable, *command],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert here.returncode == 0, here.stderr
    assert plait.get_run("script-run", store=url).outputs["publish"] == "draft+ok"


def test_a_run_records_the_target_it_is_given_or_the_variable_that_holds_it(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "plait.db") as store:
        plait.run(MODULE_WF, store=store, run_id="found")
        plait.run(MODULE_WF, store=store, run_id="given", target="pkg.flows:wf")
        targets = {r.run_id: r.target for r in store.list_runs().runs}
    assert targets == {"found": f"{__name__}:MODULE_WF", "given": "pkg.flows:wf"}
    assert plait.run(MODULE_WF).status is plait.RunStatus.SUCCEEDED  # memory: nothing to find
    with pytest.raises(plait.ConfigError, match=r"^target must be a non-empty str"):
        plait.run(MODULE_WF, target="")


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


def counting_pipeline(calls: list[str], *, extra: bool = False, scale: int = 1) -> plait.Workflow:
    """fetch -> (clean, stats) -> publish; ``extra`` adds audit after clean; ``scale`` is
    clean's param. Each call is logged in ``calls``."""

    def fetch() -> list[int]:
        calls.append("fetch")
        return [1, 2, 3]

    def clean(fetch: list[int], scale: int) -> list[int]:
        calls.append("clean")
        return [x * scale for x in fetch]

    def stats(fetch: list[int]) -> int:
        calls.append("stats")
        return len(fetch)

    def publish(clean: list[int], stats: int) -> str:
        calls.append("publish")
        return f"{sum(clean)}/{stats}"

    def audit(clean: list[int]) -> int:
        calls.append("audit")
        return max(clean)

    wf = plait.Workflow("counting")
    wf.add_task("fetch", fetch)
    wf.add_task("clean", clean, depends_on=["fetch"], params={"scale": scale})
    wf.add_task("stats", stats, depends_on=["fetch"])
    wf.add_task("publish", publish, depends_on=["clean", "stats"])
    if extra:
        wf.add_task("audit", audit, depends_on=["clean"])
    return wf


def test_accept_changes_keeps_unchanged_successes_and_runs_added_tasks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite://{tmp_path / 'plait.db'}"
    calls: list[str] = []
    done = plait.run(counting_pipeline(calls), store=url, run_id="r")
    assert done.status is plait.RunStatus.SUCCEEDED
    calls.clear()
    changed = counting_pipeline(calls, extra=True)
    with pytest.raises(plait.DefinitionChangedError, match="task 'audit' was added"):
        plait.resume("r", changed, store=url)
    with caplog.at_level(logging.WARNING, logger="plait.runs"):
        resumed = plait.resume("r", changed, store=url, accept_changes=True)
    assert caplog.messages == [
        "run 'r' resumes with a changed definition of workflow 'counting': task 'audit' was added"
    ]
    assert resumed.status is plait.RunStatus.SUCCEEDED
    assert calls == ["audit"]  # only the added task ran
    assert resumed.outputs["audit"] == 3
    calls.clear()  # the new definition is the run's now: resuming again changes nothing
    assert plait.resume("r", counting_pipeline(calls, extra=True), store=url).outputs == (
        resumed.outputs
    )
    assert calls == []


def test_accept_changes_runs_a_changed_task_and_what_is_downstream_of_it(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'plait.db'}"
    calls: list[str] = []
    plait.run(counting_pipeline(calls, extra=True), store=url, run_id="r")
    calls.clear()
    with pytest.raises(
        plait.DefinitionChangedError, match=r"task 'clean' had params \{'scale': 1\}, now"
    ):
        plait.resume("r", counting_pipeline(calls, extra=True, scale=10), store=url)
    resumed = plait.resume(
        "r", counting_pipeline(calls, extra=True, scale=10), store=url, accept_changes=True
    )
    assert sorted(calls) == ["audit", "clean", "publish"]  # fetch and stats kept
    assert resumed.outputs["publish"] == "60/3"
    log = [e for e in plait.stores.open_store(url).load_events("r") if e.kind == "RunResumed"]
    assert [e.data["changed"] for e in log] == [["clean"]]
    assert log[0].data["cleared"] == ["clean", "publish", "audit"]


def test_accept_changes_drops_removed_tasks_from_the_run(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'plait.db'}"
    calls: list[str] = []
    plait.run(counting_pipeline(calls, extra=True), store=url, run_id="r")
    calls.clear()
    resumed = plait.resume("r", counting_pipeline(calls), store=url, accept_changes=True)
    assert calls == []
    assert "audit" not in resumed.tasks
    assert "audit" not in plait.get_run("r", store=url).tasks
    assert "audit" not in plait.stores.open_store(url).load_tasks("r")


def test_rerun_clears_a_task_and_its_downstream_on_a_finished_run(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'plait.db'}"
    calls: list[str] = []
    wf = counting_pipeline(calls, extra=True)
    done = plait.run(wf, store=url, run_id="r")
    calls.clear()
    again = plait.resume("r", wf, store=url, rerun=["clean"])
    assert again.status is plait.RunStatus.SUCCEEDED
    assert sorted(calls) == ["audit", "clean", "publish"]
    assert again.outputs == done.outputs
    attempts = {t: r.attempts for t, r in again.tasks.items()}
    assert attempts == {"fetch": 1, "clean": 2, "stats": 1, "publish": 2, "audit": 2}
    cleared = [again.tasks[t] for t in ("clean", "publish", "audit")]
    assert all(r.started_at is not None and r.duration is not None for r in cleared)
    history = [e for e in plait.stores.open_store(url).load_events("r") if e.kind == "RunResumed"]
    assert history[0].data["previous_status"] == "succeeded"
    with pytest.raises(plait.InvalidOptionError, match=r"^rerun names 'cleen', which workflow"):
        plait.resume("r", wf, store=url, rerun=["cleen"])


def test_rerun_asks_the_questions_of_cleared_tasks_again(tmp_path: Path) -> None:
    wf = plait.Workflow("approve")
    wf.add_task("draft", lambda: "text")
    wf.add_task("approve", None, depends_on=["draft"], pause=plait.Pause("ok?"))
    wf.add_task("send", lambda approve: f"sent {approve}", depends_on=["approve"])
    url = f"sqlite://{tmp_path / 'plait.db'}"
    paused = plait.run(wf, store=url)
    done = plait.resume(paused.run_id, wf, store=url, inputs={"approve": "yes"})
    assert done.outputs["send"] == "sent yes"
    asked = plait.resume(paused.run_id, wf, store=url, rerun=["approve"])
    assert asked.status is plait.RunStatus.PAUSED
    assert list(asked.waiting) == ["approve"]
    final = plait.resume(paused.run_id, wf, store=url, inputs={"approve": "no"})
    assert final.outputs["send"] == "sent no"

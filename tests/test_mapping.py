"""Mapped tasks in runs: expansion, items, outputs, failures, streaming, resume, files, shell."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rules import KilledRun
from test_scheduler import mapped_plan, mapped_reference

import plait
from plait import TaskStatus
from plait._graph import series_id
from plait._mapping import split_instance_id

SUCCEEDED, FAILED, SKIPPED = TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED


def listing(*items: Any) -> plait.Workflow:
    """``ls`` returns ``items``; ``size`` maps over them; ``total`` sums the sizes."""
    wf = plait.Workflow("mapped")
    wf.add_task("ls", lambda: list(items))
    wf.add_task("size", lambda ls: len(ls), depends_on=["ls"], map_over="ls")  # noqa: PLW0108
    wf.add_task("total", lambda size: sum(size), depends_on=["size"])  # noqa: PLW0108
    return wf


def test_each_item_runs_as_an_instance_and_a_dependent_gets_the_outputs_in_item_order() -> None:
    events: list[plait.Event] = []
    result = plait.run(listing("a", "bbb", "cc"), subscribers=[events.append])
    assert result.status is plait.RunStatus.SUCCEEDED
    assert result.outputs["size"] == [1, 3, 2]
    assert result.outputs["total"] == 6
    assert [result.outputs[f"size[{k}]"] for k in range(3)] == [1, 3, 2]
    whole = result.tasks["size"]
    assert whole.status is SUCCEEDED
    assert whole.instances is not None
    assert [i.task_id for i in whole.instances] == ["size[0]", "size[1]", "size[2]"]
    assert result.tasks["size[1]"].output == 3
    assert result.tasks["size[1]"].attempts == 1
    assert result.tasks["ls"].instances is None
    mapped = [e for e in events if isinstance(e, plait.TaskMapped)]
    assert [(e.task_id, e.count) for e in mapped] == [("size", 3)]
    started = {e.task_id for e in events if isinstance(e, plait.TaskStarted)}
    assert started == {"ls", "size[0]", "size[1]", "size[2]", "total"}


def test_an_empty_list_gives_no_instance_and_an_empty_output() -> None:
    result = plait.run(listing())
    assert result.tasks["size"].status is SUCCEEDED
    assert result.tasks["size"].instances == ()
    assert result.outputs["size"] == []
    assert result.outputs["total"] == 0


def test_a_tuple_is_mapped_too_and_instances_see_their_own_id_and_the_parameters() -> None:
    wf = plait.Workflow("ids")
    wf.add_task("ls", lambda: ("x", "y"))
    wf.add_task("base", lambda: 10)

    def each(ctx: plait.Context, ls: str, base: int, suffix: str) -> str:
        return f"{ctx.task_id}:{ls}:{base}{suffix}:{ctx.map_over}"

    wf.add_task("each", each, depends_on=["ls", "base"], map_over="ls", params={"suffix": "!"})
    assert plait.run(wf).outputs["each"] == ["each[0]:x:10!:ls", "each[1]:y:10!:ls"]


@pytest.mark.parametrize(
    ("output", "kind"), [("abc", "str"), ({"a": 1}, "dict"), (None, "NoneType"), (3, "int")]
)
def test_an_output_that_is_not_a_list_fails_the_mapped_task_naming_the_type(
    output: Any, kind: str
) -> None:
    wf = plait.Workflow("bad")
    wf.add_task("ls", lambda: output)
    wf.add_task("each", lambda ls: ls, depends_on=["ls"], map_over="ls")
    result = plait.run(wf)
    each = result.tasks["each"]
    assert each.status is FAILED
    assert each.error is not None
    assert each.error.type == "plait.MapError"
    assert each.error.message == (
        f"task 'each' maps over the output of 'ls', which is a {kind}, not a list; make 'ls' "
        "return a list (or a tuple) of items"
    )
    assert each.instances is None
    assert result.status is plait.RunStatus.FAILED


def test_more_items_than_max_map_fail_the_mapped_task_saying_how_to_raise_it() -> None:
    result = plait.run(listing(*"abcd"), max_map=3)
    error = result.tasks["size"].error
    assert error is not None
    assert error.message == (
        "task 'size' would expand into 4 instances, over the limit of 3 per mapped task; raise "
        "EngineConfig.max_map (max_map=4) if that many is meant"
    )
    assert result.tasks["total"].skip_cause is plait.SkipCause.UPSTREAM_FAILED
    assert plait.run(listing(*"abc"), max_map=3).outputs["total"] == 3


def test_a_failed_instance_fails_the_task_the_others_run_and_all_done_gets_the_rest() -> None:
    """The "19 of 20 pages" case: one fetch fails, the aggregate runs on the others and can
    tell which failed."""
    wf = plait.Workflow("pages")
    wf.add_task("pages", lambda: [1, 2, 3, 4])

    def fetch(pages: int) -> int:
        if pages == 2:
            raise RuntimeError("page 2 timed out")
        return pages * 10

    seen: dict[str, Any] = {}

    def aggregate(ctx: plait.Context, fetch: list[int] | None = None) -> int:
        seen["failed"] = [
            r.task_id for r in ctx.upstream["fetch"].instances or () if r.status is FAILED
        ]
        seen["status"] = ctx.upstream["fetch"].status
        return sum(fetch or [])

    wf.add_task("fetch", fetch, depends_on=["pages"], map_over="pages")
    wf.add_task("aggregate", aggregate, depends_on=["fetch"], trigger="all_done")
    wf.add_task("alert", lambda: "paged", depends_on=["fetch"], trigger="one_failed")
    wf.add_task("report", lambda fetch: fetch, depends_on=["fetch"])
    result = plait.run(wf, retry_failed_tasks=False)
    assert result.outputs["aggregate"] == 10 + 30 + 40
    assert seen == {"failed": ["fetch[1]"], "status": FAILED}
    assert result.outputs["alert"] == "paged"
    assert result.tasks["report"].skip_cause is plait.SkipCause.UPSTREAM_FAILED
    fetch_result = result.tasks["fetch"]
    assert fetch_result.status is FAILED
    assert fetch_result.output == [10, 30, 40]
    assert fetch_result.error is not None
    assert fetch_result.error.message == "1 of 4 instances of 'fetch' failed: 'fetch[1]'"
    assert [result.tasks[f"fetch[{k}]"].status for k in range(4)] == [
        SUCCEEDED, FAILED, SUCCEEDED, SUCCEEDED,
    ]  # fmt: skip
    assert result.error is not None
    # the failed instance is named with its error, not the mapped task a second time
    assert (
        result.error == "1 task(s) failed: 'fetch[1]': RuntimeError: page 2 timed out (1 skipped)"
    )


def test_a_flaky_instance_is_retried_on_its_own() -> None:
    tries: dict[int, int] = {}
    lock = threading.Lock()

    def flaky(ls: int) -> int:
        with lock:
            tries[ls] = tries.get(ls, 0) + 1
            if ls == 1 and tries[ls] == 1:
                raise RuntimeError("flake")
        return ls

    wf = plait.Workflow("flaky")
    wf.add_task("ls", lambda: [0, 1, 2])
    wf.add_task("each", flaky, depends_on=["ls"], map_over="ls", retry=plait.RetryPolicy(2, 0))
    result = plait.run(wf)
    assert result.outputs["each"] == [0, 1, 2]
    assert tries == {0: 1, 1: 2, 2: 1}
    assert [result.tasks[f"each[{k}]"].attempts for k in range(3)] == [1, 2, 1]


def test_mapping_over_a_mapped_task_streams_b_k_starts_before_a_finishes() -> None:
    """``b[0]`` must run while ``a[1]`` still waits for it: were b to wait for all of a, the
    run would stall on ``a[1]``'s wait (and fail it after the wide timeout)."""
    b0_ran = threading.Event()

    def a(ls: int) -> int:
        if ls == 1:
            assert b0_ran.wait(timeout=30), "b[0] did not start before a[1] finished"
        return ls * 10

    def b(a: int) -> int:
        if a == 0:
            b0_ran.set()
        return a + 1

    wf = plait.Workflow("stream")
    wf.add_task("ls", lambda: [0, 1])
    wf.add_task("a", a, depends_on=["ls"], map_over="ls")
    wf.add_task("b", b, depends_on=["a"], map_over="a")
    wf.add_task("c", lambda b: b, depends_on=["b"])
    result = plait.run(wf, max_concurrency=4)
    assert result.outputs["c"] == [1, 11]
    assert result.outputs["b[1]"] == 11


def test_instances_share_their_tasks_pool() -> None:
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def each(ls: int) -> None:
        with lock:
            running.append(ls)
            most[0] = max(most[0], len(running))
        threading.Event().wait(0.01)
        with lock:
            running.remove(ls)

    wf = plait.Workflow("pooled")
    wf.add_task("ls", lambda: list(range(6)))
    wf.add_task("each", each, depends_on=["ls"], map_over="ls", pool="db")
    result = plait.run(wf, max_concurrency=4, pools={"db": 2})
    assert result.status is plait.RunStatus.SUCCEEDED
    assert most[0] <= 2


def test_a_critical_instance_halts_the_run_and_cancels_the_instances_not_started() -> None:
    def each(ls: int) -> int:
        if ls == 0:
            raise RuntimeError("bad item")
        return ls

    wf = plait.Workflow("critical")
    wf.add_task("ls", lambda: list(range(5)))
    wf.add_task("each", each, depends_on=["ls"], map_over="ls", critical=True)
    result = plait.run(wf, max_concurrency=1, retry_failed_tasks=False)
    assert result.tasks["each[0]"].status is FAILED
    assert [result.tasks[f"each[{k}]"].status for k in range(1, 5)] == [TaskStatus.CANCELLED] * 4
    assert result.tasks["each"].status is FAILED


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"depends_on": ["ls"], "map_over": "other"},
            "task 'each': map_over='other' is not one of its dependencies ['ls']; add 'other' "
            "to depends_on (the task maps over its output)",
        ),
        (
            {"depends_on": ["ls"], "map_over": "ls", "trigger": "all_done"},
            "task 'each': a mapped task runs under trigger='all_success' only (it needs the "
            "items of 'ls'), not trigger='all_done'; put the rule on a task that depends on it",
        ),
    ],
)
def test_map_over_is_checked_when_the_task_is_added(options: dict[str, Any], message: str) -> None:
    wf = plait.Workflow("bad")
    wf.add_task("ls", lambda: [])
    with pytest.raises(plait.InvalidOptionError, match=f"^{_escaped(message)}$"):
        wf.add_task("each", lambda ls=None: ls, **options)


def test_the_item_parameter_must_exist() -> None:
    wf = plait.Workflow("bad")
    wf.add_task("ls", lambda: [])

    def each(item: str = "") -> None:
        pass

    with pytest.raises(
        plait.BindingError,
        match=r"^task 'each' maps over 'ls', but test_the_item_parameter_must_exist.<locals>"
        r".each has no parameter 'ls' to receive each item; add a parameter named 'ls'$",
    ):
        wf.add_task("each", each, depends_on=["ls"], map_over="ls")


def test_a_mapped_task_cannot_pause() -> None:
    wf = plait.Workflow("bad")
    wf.add_task("ls", lambda: [])
    with pytest.raises(plait.InvalidOptionError, match=r"^task 'each': a mapped task cannot pause"):
        wf.add_task(
            "each", lambda ls: ls, depends_on=["ls"], map_over="ls", pause=plait.Pause("ok?")
        )


@pytest.mark.parametrize("task_id", ["a[1]", "x]", "[", "convert[3]"])
def test_brackets_are_reserved_in_task_ids(task_id: str) -> None:
    with pytest.raises(
        plait.InvalidOptionError,
        match=rf"^task id {_escaped(repr(task_id))} contains a bracket; '\[' and '\]' are "
        r"reserved for the instances of mapped tasks \('convert\[3\]'\): use other characters",
    ):
        plait.Workflow("w").add_task(task_id, lambda: None)


def test_map_over_takes_the_function_of_a_task_as_depends_on_does() -> None:
    wf = plait.Workflow("fn")

    @wf.task
    def ls() -> list[int]:
        return [1, 2]

    @wf.task(depends_on=[ls], map_over=ls)
    def double(ls: int) -> int:
        return ls * 2

    assert wf.tasks["double"].map_over == "ls"
    assert plait.run(wf).outputs["double"] == [2, 4]


def test_instance_ids_split_into_their_task_and_item() -> None:
    assert split_instance_id("convert[3]") == ("convert", 3)
    assert split_instance_id("a[b][12]") == ("a[b]", 12)
    assert split_instance_id("convert") is None
    assert split_instance_id("convert[x]") is None


def test_map_over_changes_the_fingerprint_but_leaves_other_workflows_alone() -> None:
    plain, mapped = plait.Workflow("w"), plait.Workflow("w")
    for wf in (plain, mapped):
        wf.add_task("ls", lambda: [])
    plain.add_task("each", lambda ls: ls, depends_on=["ls"])
    mapped.add_task("each", lambda ls: ls, depends_on=["ls"], map_over="ls")
    assert plain.graph().fingerprint() != mapped.graph().fingerprint()
    assert "map_over" not in plain.graph().definition()[1]
    assert mapped.graph().definition()[1]["map_over"] == "ls"


def test_an_instance_stands_for_its_mapped_task_in_series_spans_and_estimates() -> None:
    assert series_id("convert[3]") == "convert"
    assert series_id("convert") == "convert"
    assert series_id("a[x]") == "a[x]"  # not an instance's id


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_estimates_learn_a_mapped_task_from_five_of_its_instances(
    tmp_path: Path, store_kind: str
) -> None:
    store = (
        plait.stores.MemoryStore()
        if store_kind == "memory"
        else plait.stores.SQLiteStore(tmp_path / "runs.db")
    )
    plait.run(listing(*"abcdefghijklmnopqrst"), store=store)
    history = {h.task_id: h for h in store.task_history("mapped")}
    assert set(history) == {"ls", "size", "total"}  # no "size[3]": one series per task
    assert len(history["size"].seconds) == 5
    assert history["size"].function.endswith("<lambda>")


# -- stores, resume ------------------------------------------------------------------------------


def test_a_resumed_run_reruns_only_the_instances_that_did_not_succeed(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    calls: list[str] = []
    fail = {"b"}

    def ls() -> list[str]:
        calls.append("ls")
        return ["a", "b", "c"]

    def each(ls: str) -> str:
        calls.append(ls)
        if ls in fail:
            raise RuntimeError(f"{ls} failed")
        return ls.upper()

    wf = plait.Workflow("resume")
    wf.add_task("ls", ls)
    wf.add_task("each", each, depends_on=["ls"], map_over="ls")
    wf.add_task("join", lambda each: "".join(each), depends_on=["each"])  # noqa: PLW0108
    first = plait.run(wf, store=store, run_id="r", retry_failed_tasks=False)
    assert first.tasks["each"].status is FAILED
    stored = plait.get_run("r", store=store)
    assert stored.tasks["each"].output == ["A", "C"]
    instances = stored.tasks["each"].instances
    assert instances is not None
    assert [(i.task_id, i.status) for i in instances] == [
        ("each[0]", SUCCEEDED), ("each[1]", FAILED), ("each[2]", SUCCEEDED),
    ]  # fmt: skip
    calls.clear()
    fail.clear()
    resumed = plait.resume("r", wf, store=store)
    assert calls == ["b"]  # the items are the recorded ones: ls does not run again
    assert resumed.outputs["join"] == "ABC"
    assert resumed.tasks["each[1]"].attempts == 2
    assert plait.get_run("r", store=store).tasks["each"].status is SUCCEEDED


def test_an_instance_that_skipped_itself_stays_skipped_on_resume(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    calls: list[str] = []
    fail = {"b"}

    def each(ls: str) -> str:
        calls.append(ls)
        if ls == "c":
            raise plait.Skip(f"nothing in {ls}")
        if ls in fail:
            raise RuntimeError(f"{ls} failed")
        return ls.upper()

    def then(each: str) -> str:
        calls.append(f"then {each}")
        return each.lower()

    wf = plait.Workflow("resume-skip")
    wf.add_task("ls", lambda: ["a", "b", "c"])
    wf.add_task("each", each, depends_on=["ls"], map_over="ls")
    wf.add_task("then", then, depends_on=["each"], map_over="each")
    first = plait.run(wf, store=store, run_id="r", retry_failed_tasks=False)
    assert first.tasks["each[2]"].skip_cause is plait.SkipCause.SKIPPED_BY_TASK
    assert first.tasks["then[2]"].skip_cause is plait.SkipCause.UPSTREAM_SKIPPED
    calls.clear()
    fail.clear()
    resumed = plait.resume("r", wf, store=store)
    assert calls == ["b", "then B"]  # each[2] is not asked again: its item did not change
    kept = resumed.tasks["each[2]"]
    assert (kept.status, kept.skip_cause) == (SKIPPED, plait.SkipCause.SKIPPED_BY_TASK)
    assert kept.error is not None and "nothing in c" in kept.error.message
    assert resumed.tasks["then[2]"].skip_cause is plait.SkipCause.UPSTREAM_SKIPPED
    assert resumed.outputs["then"] == ["a", "b"]


_KILLED_FLOW = """
import os, sys, time, plait
from pathlib import Path

EFFECTS = Path(os.environ["EFFECTS"])
PHASE = os.environ["PHASE"]

def mark(name):
    with EFFECTS.open("a") as f:
        f.write(f"{PHASE} {name}\\n")

wf = plait.Workflow("mapped-kill")

@wf.task
def pages():
    mark("pages")
    return [0, 1, 2, 3, 4, 5]

@wf.task(depends_on=[pages], map_over="pages", retry=plait.RetryPolicy(max_retries=1, backoff=0))
def fetch(pages):
    mark(f"fetch[{pages}]")
    if pages == 2 and PHASE == "1":
        raise RuntimeError("flaky page")
    if pages == 4 and PHASE == "1":
        print("blocking", flush=True)
        time.sleep(60)
    return pages * 10

@wf.task
def check():
    mark("check")
    raise plait.Skip("nothing to publish")

@wf.task(depends_on=[check])
def publish():
    mark("publish")

@wf.task(depends_on=[fetch], trigger="one_failed")
def alert():
    mark("alert")

@wf.task(depends_on=[fetch], trigger="all_done")
def aggregate(fetch=()):
    mark("aggregate")
    return sum(fetch)

@wf.task(depends_on=[aggregate], cleanup=True)
def cleanup():
    mark("cleanup")
    return "clean"

if __name__ == "__main__":
    if PHASE == "1":
        plait.run(wf, run_id="r", store=sys.argv[1], max_concurrency=2)
    else:
        plait.resume("r", wf, store=sys.argv[1], force=True)  # the first process was killed
"""


def test_a_mapped_run_with_a_flaky_instance_rules_and_cleanup_resumes_after_kill_9(
    tmp_path: Path,
) -> None:
    run = KilledRun(tmp_path, _KILLED_FLOW)
    before = run.kill_once(  # the store has caught up with all but the blocked instance
        lambda recorded: all(
            recorded.get(f"fetch[{k}]") is (FAILED if k == 2 else SUCCEEDED) for k in (0, 1, 2)
        )
    )
    assert before.tasks["fetch"].status is TaskStatus.RUNNING
    assert before.tasks["fetch[2]"].attempts == 2
    assert before.tasks["check"].skip_cause is plait.SkipCause.SKIPPED_BY_TASK

    after = run.resume()
    states = {t: (r.status.value, r.skip_cause) for t, r in after.tasks.items()}
    assert states == {
        "pages": ("succeeded", None),
        "fetch": ("succeeded", None),
        **{f"fetch[{k}]": ("succeeded", None) for k in range(6)},
        "check": ("skipped", plait.SkipCause.SKIPPED_BY_TASK),  # kept
        "publish": ("skipped", plait.SkipCause.UPSTREAM_SKIPPED),
        "alert": ("skipped", plait.SkipCause.TRIGGER_RULE),  # nothing failed in the end
        "aggregate": ("succeeded", None),
        "cleanup": ("succeeded", None),
    }
    assert after.status is plait.RunStatus.SUCCEEDED, after.error
    assert after.tasks["aggregate"].output == 150
    assert after.tasks["fetch"].output == [0, 10, 20, 30, 40, 50]
    assert after.tasks["fetch[2]"].attempts == 3  # two before the kill, one after
    ran = run.effects.read_text().split("\n")
    # after the kill only what had not succeeded runs: no page, check or finished instance
    assert sorted(line for line in ran if line.startswith("2 ")) == [
        "2 aggregate", "2 cleanup", "2 fetch[2]", "2 fetch[4]",
    ]  # fmt: skip
    assert ran.count("1 fetch[2]") == 2 and ran.count("1 pages") == 1


# -- workflow files and shell tasks --------------------------------------------------------------


def test_a_workflow_file_maps_a_shell_task_which_gets_its_item_as_plait_item(
    tmp_path: Path,
) -> None:
    (tmp_path / "flow.yaml").write_text(
        "name: files\n"
        "tasks:\n"
        "  - id: ls\n"
        "    function: json:loads\n"
        """    params: {s: '["a b", 2]'}\n"""
        "  - id: each\n"
        """    shell: 'printf "%s|%s|%s" "$PLAIT_ITEM" "$PLAIT_INPUT_LS" "$PLAIT_TASK_ID"'\n"""
        "    depends_on: [ls]\n"
        "    map_over: ls\n"
    )
    loaded = plait.load_target(str(tmp_path / "flow.yaml"))
    assert loaded.workflow.tasks["each"].map_over == "ls"
    result = plait.run(loaded.workflow)
    assert result.outputs["each"] == ['"a b"|"a b"|each[0]', "2|2|each[1]"]
    assert json.loads(result.outputs["each[0]"].split("|")[0]) == "a b"


def test_a_workflow_file_names_the_field_of_a_bad_map_over(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(
        "name: files\n"
        "tasks:\n"
        "  - {id: ls, shell: echo}\n"
        "  - {id: each, shell: echo, depends_on: [ls], map_over: nope}\n"
    )
    with pytest.raises(
        plait.WorkflowFileError, match=r"line 4: tasks\[1\]: task 'each': map_over='nope' is not"
    ):
        plait.load_target(str(tmp_path / "flow.yaml"))


def _escaped(text: str) -> str:
    import re  # noqa: PLC0415

    return re.escape(text)


def test_rerun_of_a_mapped_task_expands_it_afresh_over_the_new_items(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    items = ["a", "b", "c"]
    wf = plait.Workflow("rerun")
    wf.add_task("ls", lambda: list(items))
    wf.add_task("each", lambda ls: ls.upper(), depends_on=["ls"], map_over="ls")
    plait.run(wf, store=store, run_id="r")
    items[:] = ["x"]
    resumed = plait.resume("r", wf, store=store, rerun=["ls"])
    assert resumed.outputs["each"] == ["X"]
    stored = plait.get_run("r", store=store)
    assert [i.task_id for i in stored.tasks["each"].instances or ()] == ["each[0]"]
    assert stored.tasks["each"].output == ["X"]


def test_an_instances_upstream_is_its_mapped_tasks_without_the_instances_of_each() -> None:
    seen: dict[str, Any] = {}

    def b(ctx: plait.Context, a: int) -> int:
        upstream = ctx.upstream
        seen[ctx.task_id] = (sorted(upstream), upstream["a"].instances)
        return a

    wf = plait.Workflow("upstream")
    wf.add_task("ls", lambda: [1, 2])
    wf.add_task("a", lambda ls: ls, depends_on=["ls"], map_over="ls")
    wf.add_task("b", b, depends_on=["a"], map_over="a")
    plait.run(wf)
    assert seen == {"b[0]": (["a"], None), "b[1]": (["a"], None)}


def test_an_instances_log_is_its_own(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"

    def say(ls: str) -> None:
        print(f"converting {ls}")

    wf = plait.Workflow("logs")
    wf.add_task("ls", lambda: ["a", "b"])
    wf.add_task("each", say, depends_on=["ls"], map_over="ls")
    plait.run(wf, store=store, run_id="r")
    lines = plait.get_logs("r", store=store, task_id="each[1]")
    assert [(line.task_id, line.text) for line in lines] == [("each[1]", "converting b")]


def test_a_mapped_cleanup_task_says_its_rule_must_be_given() -> None:
    wf = plait.Workflow("cleanup")
    wf.add_task("ls", lambda: ["a"])
    with pytest.raises(
        plait.InvalidOptionError,
        match=r"^task 'each': a mapped task runs under trigger='all_success' only \(it needs the "
        r"items of 'ls'\), and a cleanup task's rule defaults to 'all_done'; give it "
        r"trigger='all_success'$",
    ):
        wf.add_task("each", lambda ls: ls, depends_on=["ls"], map_over="ls", cleanup=True)
    wf.add_task(
        "each", lambda ls: ls, depends_on=["ls"], map_over="ls", cleanup=True, trigger="all_success"
    )
    assert plait.run(wf).outputs["each"] == ["a"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**64 - 1))
def test_random_mapped_workflows_run_by_the_engine_end_as_the_reference_says(seed: int) -> None:
    """The scheduler's reference (``test_scheduler.mapped_reference``), run for real: each task
    or instance succeeds, fails or skips itself as planned, and a static task mapped over
    returns a list of the planned length. Every task's and instance's end is the reference's."""
    graph, counts, ends = mapped_plan(random.Random(seed))
    sizes = {graph.map_over[i]: count for i, count in counts.items()}

    def act(ctx: plait.Context, **inputs: Any) -> list[int]:
        end = ends[ctx.task_id]
        if end == "failed":
            raise RuntimeError(f"{ctx.task_id} fails as planned")
        if end == "skip":
            raise plait.Skip("as planned")
        task_id = ctx.task_id
        return list(range(sizes.get(graph.index.get(task_id, -1), 0)))

    wf = plait.Workflow("random")
    for spec in graph.specs:
        wf.add_task(
            spec.id, act, depends_on=spec.depends_on, map_over=spec.map_over, trigger=spec.trigger
        )
    result = plait.run(wf, retry_failed_tasks=False, store=plait.stores.MemoryStore())
    got = {task_id: (r.status, r.skip_cause) for task_id, r in result.tasks.items()}
    assert got == mapped_reference(graph, counts, ends)

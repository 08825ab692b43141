"""Run identity, inspection and resuming, on every store backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

import plait
from plait import RunStatus
from plait.stores import LeaseHeldError, MemoryStore, RunExistsError, RunNotFoundError, SQLiteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[plait.stores.Store]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        with SQLiteStore(tmp_path / "plait.db") as sqlite:
            yield sqlite


def pipeline(fail_at: frozenset[str] = frozenset()) -> plait.Workflow:
    """a -> (bb, ccc) -> dddd; each output is the sum of its inputs plus its name's length."""

    def check(name: str) -> None:
        if name in fail_at:
            raise RuntimeError(f"{name} broke")

    def a() -> int:
        check("a")
        return 1

    def bb(a: int) -> int:
        check("bb")
        return a + 2

    def ccc(a: int) -> int:
        check("ccc")
        return a + 3

    def dddd(bb: int, ccc: int) -> int:
        check("dddd")
        return bb + ccc + 4

    wf = plait.Workflow("pipeline")
    wf.add_task("a", a)
    wf.add_task("bb", bb, depends_on=["a"])
    wf.add_task("ccc", ccc, depends_on=["a"])
    wf.add_task("dddd", dddd, depends_on=["bb", "ccc"])
    return wf


def test_a_chosen_run_id_is_kept_and_a_second_run_with_it_is_refused(
    store: plait.stores.Store,
) -> None:
    wf = pipeline()
    result = plait.run(wf, run_id="invoice-2026-11", store=store)
    assert result.run_id == "invoice-2026-11"
    with pytest.raises(
        RunExistsError,
        match=r"^run 'invoice-2026-11' already exists in .*; continue it with "
        r"plait\.resume\('invoice-2026-11', workflow\), or start a new run with another run_id$",
    ):
        plait.run(wf, run_id="invoice-2026-11", store=store)


def test_without_a_run_id_every_run_gets_a_new_one(store: plait.stores.Store) -> None:
    wf = pipeline()
    ids = {plait.run(wf, store=store).run_id for _ in range(3)}
    assert len(ids) == 3


def test_get_run_shows_what_the_store_holds_without_running_anything(
    store: plait.stores.Store,
) -> None:
    wf = pipeline(fail_at=frozenset({"ccc"}))
    result = plait.run(wf, store=store, retry_failed_tasks=False)
    snapshot = plait.get_run(result.run_id, store=store)
    assert snapshot.status is RunStatus.FAILED
    assert snapshot.error == result.error
    assert {t: str(r.status) for t, r in snapshot.tasks.items()} == {
        "a": "succeeded",
        "bb": "succeeded",
        "ccc": "failed",
        "dddd": "skipped",
    }
    assert snapshot.tasks["bb"].output == 3
    error = snapshot.tasks["ccc"].error
    assert error is not None
    assert (error.type, error.message) == ("RuntimeError", "ccc broke")
    assert snapshot.tasks["a"].attempts == 1


def test_get_run_of_an_unknown_run_says_where_to_look(store: plait.stores.Store) -> None:
    with pytest.raises(RunNotFoundError, match=r"^there is no run 'nope' in .*list_runs"):
        plait.get_run("nope", store=store)


def test_list_runs_is_newest_first_and_filters_by_status(store: plait.stores.Store) -> None:
    plait.run(pipeline(), run_id="first", store=store)
    time.sleep(0.01)
    plait.run(
        pipeline(fail_at=frozenset({"a"})), run_id="second", store=store, retry_failed_tasks=False
    )
    time.sleep(0.01)
    plait.run(pipeline(), run_id="third", store=store)
    assert [r.run_id for r in plait.list_runs(store=store)] == ["third", "second", "first"]
    assert [r.run_id for r in plait.list_runs(store=store, status="failed")] == ["second"]
    assert [r.run_id for r in plait.list_runs(store=store, limit=1)] == ["third"]


def test_resuming_a_failed_run_reruns_only_what_did_not_succeed(
    store: plait.stores.Store,
) -> None:
    failed = plait.run(pipeline(fail_at=frozenset({"ccc"})), store=store, retry_failed_tasks=False)
    assert failed.status is RunStatus.FAILED
    result = plait.resume(failed.run_id, pipeline(), store=store)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"a": 1, "bb": 3, "ccc": 4, "dddd": 11}
    attempts = {t: r.attempts for t, r in result.tasks.items()}
    assert attempts == {"a": 1, "bb": 1, "ccc": 2, "dddd": 1}


def test_resuming_a_succeeded_run_runs_nothing(store: plait.stores.Store) -> None:
    done = plait.run(pipeline(), store=store)
    again = plait.resume(done.run_id, pipeline(), store=store)
    assert again.status is RunStatus.SUCCEEDED
    assert again.outputs == done.outputs


def test_resume_refuses_a_changed_workflow_and_lists_the_differences(
    store: plait.stores.Store,
) -> None:
    done = plait.run(pipeline(fail_at=frozenset({"a"})), store=store, retry_failed_tasks=False)
    changed = pipeline()
    changed.add_task("eeeee", lambda: 0, depends_on=["dddd"])
    with pytest.raises(
        plait.DefinitionChangedError,
        match=r"^run '.*' was made by a different definition of workflow 'pipeline': "
        r"task 'eeeee' was added; resume it with the workflow as it was, pass "
        r"accept_changes=True to resume it with this one, or start a new run$",
    ):
        plait.resume(done.run_id, changed, store=store)
    rewired = plait.Workflow("pipeline")
    for spec in pipeline().tasks.values():
        deps = ("a", *spec.depends_on) if spec.id == "dddd" else spec.depends_on
        rewired.add_task(spec.id, spec.fn, depends_on=deps)
    with pytest.raises(
        plait.DefinitionChangedError,
        match=r"task 'dddd' depended on \['bb', 'ccc'\], now on \['a', 'bb', 'ccc'\]",
    ):
        plait.resume(done.run_id, rewired, store=store)


def test_resume_of_a_run_another_process_owns_is_refused_until_forced(
    store: plait.stores.Store,
) -> None:
    wf = pipeline(fail_at=frozenset({"ccc"}))
    failed = plait.run(wf, store=store, retry_failed_tasks=False)
    store.claim(failed.run_id, "host:123:other", lease_seconds=60)
    with pytest.raises(
        LeaseHeldError,
        match=r"^run '.*' is being run by host:123:other \(its lease lasts until .* UTC\); wait "
        r"for it to finish or pause, or pass force=True if that process is dead$",
    ):
        plait.resume(failed.run_id, pipeline(), store=store)
    assert plait.resume(failed.run_id, pipeline(), store=store, force=True).status == "succeeded"


def test_a_resumed_run_keeps_its_stored_settings(store: plait.stores.Store) -> None:
    wf = pipeline(fail_at=frozenset({"ccc"}))
    failed = plait.run(wf, store=store, retry_failed_tasks=False, max_concurrency=1)
    record = store.get_run(failed.run_id)
    assert record is not None
    assert record.config["max_concurrency"] == 1
    assert record.config["retry_failed_tasks"] is False
    assert record.config["serializer"] in ("json", "object")


def test_an_output_json_cannot_store_fails_its_task_naming_the_type(tmp_path: Path) -> None:
    wf = plait.Workflow("objects")
    wf.add_task("make", lambda: {1: object()})
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(wf, store=store)
    task = result.tasks["make"]
    assert task.status is plait.TaskStatus.FAILED
    assert task.attempts == 1  # not retried: it would fail the same way
    assert task.error is not None
    assert task.error.message.startswith(
        "task 'make' returned a dict, which the json serializer cannot store: output[1]: "
        "object is not storable"
    )
    assert isinstance(task.error.exception, plait.OutputNotStorableError)


def test_pickle_stores_what_json_cannot(tmp_path: Path) -> None:
    wf = plait.Workflow("objects")
    wf.add_task("make", lambda: {Fraction(1, 3)})
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(wf, store=store, serializer=plait.PickleSerializer())
        loaded = plait.get_run(result.run_id, store=store, serializer=plait.PickleSerializer())
        assert loaded.outputs == {"make": {Fraction(1, 3)}}


def test_the_store_can_be_named_by_url_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite://{tmp_path}/env.db"
    monkeypatch.setenv("PLAIT_STORE", url)
    result = plait.run(pipeline(), run_id="from-env")
    assert plait.get_run("from-env").outputs == result.outputs
    assert plait.get_run("from-env", store=url).status is RunStatus.SUCCEEDED


def test_the_event_log_records_the_run_in_order(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(pipeline(), store=store)
        events = store.load_events(result.run_id)
    kinds = [(e.kind, e.task_id) for e in events]
    assert kinds[0] == ("RunStarted", None)
    assert kinds[-1] == ("RunFinished", None)
    assert kinds.index(("TaskSucceeded", "a")) < kinds.index(("TaskSucceeded", "bb"))
    # Every attempt's start is logged: as its own row, or folded into the row that ended it.
    starts = {e.task_id: e.time for e in events if e.kind == "TaskStarted"}
    starts |= {e.task_id: e.data["started"] for e in events if "started" in e.data}
    assert starts.keys() == {"a", "bb", "ccc", "dddd"}
    succeeded = {e.task_id: e.time for e in events if e.kind == "TaskSucceeded"}
    assert succeeded["a"] <= starts["bb"] <= succeeded["bb"] <= starts["dddd"]


FLOW = """
import plait, sys, time

wf = plait.Workflow("handoff")
wf.add_task("first", lambda: "first")
wf.add_task(
    "approve", lambda first, ctx: f"{first}+{ctx.input}", depends_on=["first"],
    pause=plait.Pause("ok?", schema={"type": "string"}),
)
"""


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_run_paused_in_one_process_is_resumed_in_another(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    db = tmp_path / "plait.db"
    paused = run_python(
        f"from flow import wf; import plait\n"
        f"r = plait.run(wf, run_id='handoff', store='sqlite://{db}')\n"
        f"print(r.status, list(r.waiting))",
        tmp_path,
    )
    assert paused.stdout.split() == ["paused", "['approve']"], paused.stderr
    resumed = run_python(
        f"from flow import wf; import plait\n"
        f"r = plait.resume('handoff', wf, store='sqlite://{db}', inputs={{'approve': 'yes'}})\n"
        f"print(r.status, r.outputs['approve'])",
        tmp_path,
    )
    assert resumed.stdout.split() == ["succeeded", "first+yes"], resumed.stderr


RACE_FLOW = """
import time, plait

wf = plait.Workflow("race")
wf.add_task("gate", None, pause=plait.Pause("go?"))
wf.add_task("work", lambda gate: time.sleep(1.0) or gate, depends_on=["gate"])
"""

RACER = """
import sys, time, plait
from plait.stores import LeaseHeldError
from flow import wf
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
try:
    result = plait.resume("race", wf, store="sqlite://" + sys.argv[1], inputs={"gate": "go"})
    print("won", result.status)
except LeaseHeldError as error:
    print("lost", type(error).__name__)
"""


def test_two_processes_resuming_one_run_at_once_exactly_one_wins(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(RACE_FLOW)
    db = tmp_path / "plait.db"
    paused = run_python(
        f"from flow import wf; import plait\n"
        f"print(plait.run(wf, run_id='race', store='sqlite://{db}').status)",
        tmp_path,
    )
    assert paused.stdout.strip() == "paused", paused.stderr
    start_at = str(time.time() + 1.5)  # both processes are up and waiting by then
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(db), start_at],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [racer.communicate(timeout=60) for racer in racers]
    outcomes = sorted(out.strip() for out, _ in results)
    assert outcomes == ["lost LeaseHeldError", "won succeeded"], [err for _, err in results]
    assert plait.get_run("race", store=f"sqlite://{db}").outputs == {"gate": "go", "work": "go"}


def test_a_run_whose_owner_vanished_can_be_resumed_once_its_lease_expires(
    store: plait.stores.Store,
) -> None:
    failed = plait.run(pipeline(frozenset({"ccc"})), store=store, retry_failed_tasks=False)
    store.claim(failed.run_id, "host:1:dead", lease_seconds=0.1)  # a process that then died
    time.sleep(0.15)
    assert plait.resume(failed.run_id, pipeline(), store=store).status is RunStatus.SUCCEEDED


def test_a_live_run_renews_its_lease(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")  # the memory store has no writer thread to renew
    leases: list[float] = []

    def watch(ctx: plait.Context) -> None:
        for _ in range(12):
            time.sleep(0.1)
            record = store.get_run(ctx.run_id)
            assert record is not None
            assert record.lease_expires_at is not None
            leases.append(record.lease_expires_at)

    wf = plait.Workflow("long")
    wf.add_task("watch", watch)
    started = time.time()
    result = plait.run(wf, store=store, lease_seconds=0.5)  # the shortest allowed
    assert result.status is RunStatus.SUCCEEDED
    assert leases == sorted(leases) and len(set(leases)) > 1  # renewed, never shortened
    assert max(leases) > started + 0.8  # renewed beyond the first 0.5 s
    record = store.get_run(result.run_id)
    assert record is not None
    assert record.owner is None  # released at the end


def test_a_run_that_loses_its_lease_stops_and_says_why(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")

    def steal(ctx: plait.Context) -> None:
        store.claim(ctx.run_id, "host:2:thief", lease_seconds=60, force=True)

    wf = plait.Workflow("stolen")
    wf.add_task("steal", steal)
    wf.add_task("after", lambda: time.sleep(0.2), depends_on=["steal"])
    wf.add_task("later", lambda: None, depends_on=["after"])
    with pytest.raises(plait.LeaseLostError) as lost:
        plait.run(wf, store=store, run_id="stolen-1")
    assert str(lost.value).startswith("plait lost run 'stolen-1': its owner is now 'host:2:thief'")
    assert (lost.value.run_id, lost.value.owner) == ("stolen-1", "host:2:thief")
    record = store.get_run("stolen-1")
    assert record is not None
    assert record.owner == "host:2:thief"  # the new owner's claim is intact
    assert record.status is RunStatus.RUNNING  # nothing the old owner did reached the store

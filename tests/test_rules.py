"""Trigger rules against a reference written from Airflow's documented semantics.

The reference (:func:`airflow_state`, :func:`met_now`) follows Airflow's ``TriggerRuleDep``: a rule
is *met* on the current counts of the direct upstream tasks' states, and a rule that is not met
once every upstream task is done sets the task ``upstream_failed`` or ``skipped``. plait's
:func:`plait._rules.decide` must agree with it on every finished combination (the truth table),
must decide as early as the reference allows and no earlier (every partial combination), and the
scheduler driving it must agree with it on random graphs.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait import Workflow
from plait._graph import Graph
from plait._rules import RUN, TriggerRule, decide
from plait._scheduler import Scheduler
from plait._state import SkipCause, TaskStatus

R = TriggerRule
FINISHED = ("success", "failed", "upstream_failed", "skipped")
UPSTREAM_FAILED, SKIPPED = "upstream_failed", "skipped"


def met_now(rule: TriggerRule, states: Sequence[str]) -> bool:
    """Airflow: whether the rule is met by the upstream states seen so far (``"pending"`` for an
    upstream task that has not finished). A task without upstream tasks always may run."""
    n = len(states)
    c = Counter(states)
    success, failed, upstream_failed, skipped = (c[s] for s in FINISHED)
    done = n - c["pending"]
    if n == 0 or rule is R.ALWAYS:
        return True
    return {
        R.ALL_SUCCESS: success == n,
        R.ALL_FAILED: failed + upstream_failed == n,
        R.ALL_DONE: done == n,
        R.ALL_SKIPPED: skipped == n,
        R.ONE_SUCCESS: success > 0,
        R.ONE_FAILED: failed + upstream_failed > 0,
        R.ONE_DONE: success + failed > 0,
        R.NONE_FAILED: success + skipped == n,
        R.NONE_FAILED_MIN_ONE_SUCCESS: success + skipped == n and success > 0,
        R.NONE_SKIPPED: done == n and skipped == 0,
        R.ALL_DONE_MIN_ONE_SUCCESS: done == n and success > 0,
    }[rule]


def airflow_state(rule: TriggerRule, states: Sequence[str]) -> str:
    """Airflow: what a task becomes once every upstream task finished: ``"run"``, or the state a
    rule that is not met sets (``upstream_failed`` or ``skipped``), checked in Airflow's order.

    ``all_done_min_one_success`` (newer than the rest) is taken as ``one_success`` once all are
    done: no success is ``upstream_failed``, or ``skipped`` when every upstream task was skipped.
    """
    if met_now(rule, states):
        return RUN
    c = Counter(states)
    failed, upstream_failed, skipped = c["failed"], c["upstream_failed"], c["skipped"]
    n = len(states)
    if rule in (R.ALL_SUCCESS, R.NONE_FAILED, R.NONE_FAILED_MIN_ONE_SUCCESS):
        if failed or upstream_failed:
            return UPSTREAM_FAILED
        return SKIPPED
    if rule in (R.ONE_SUCCESS, R.ALL_DONE_MIN_ONE_SUCCESS):
        return SKIPPED if skipped == n else UPSTREAM_FAILED
    assert rule in (R.ALL_FAILED, R.ALL_SKIPPED, R.ONE_FAILED, R.ONE_DONE, R.NONE_SKIPPED)
    return SKIPPED


def reference_cause(rule: TriggerRule, states: Sequence[str]) -> str:
    """The skip cause plait gives a task Airflow would not run: ``upstream_failed`` for Airflow's
    state of that name; for ``skipped``, ``upstream_skipped`` when the rule failed because
    upstream tasks were skipped, ``trigger_rule`` otherwise."""
    state = airflow_state(rule, states)
    if state == RUN:
        return RUN
    if state == UPSTREAM_FAILED:
        return SkipCause.UPSTREAM_FAILED
    if rule in (R.ALL_FAILED, R.ALL_SKIPPED, R.ONE_FAILED, R.ONE_DONE):
        return SkipCause.TRIGGER_RULE
    return SkipCause.UPSTREAM_SKIPPED


def reference_decision(rule: TriggerRule, states: Sequence[str]) -> str | None:
    """Run when met now; skip when every way the pending upstream tasks could end gives the same
    skip; otherwise wait (``None``)."""
    if met_now(rule, states):
        return RUN
    pending = [i for i, s in enumerate(states) if s == "pending"]
    outcomes = set()
    for ends in itertools.product(FINISHED, repeat=len(pending)):
        finished = list(states)
        for i, end in zip(pending, ends, strict=True):
            finished[i] = end
        outcomes.add(reference_cause(rule, finished))
    if len(outcomes) == 1 and RUN not in outcomes:
        return outcomes.pop()
    return None


@functools.cache
def _cached_decision(rule: TriggerRule, states: tuple[str, ...]) -> str | None:
    """``reference_decision`` of sorted states, remembered: a rule sees only how many upstream
    tasks are in each state, and the random-graph test asks the same few thousand questions
    hundreds of thousands of times (uncached, it took two minutes of the suite)."""
    return reference_decision(rule, states)


def plait_decision(rule: TriggerRule, states: Sequence[str]) -> str | None:
    c = Counter(states)
    return decide(rule, *(c[s] for s in FINISHED), c["pending"])


def combinations(with_pending: bool, up_to: int = 3) -> list[tuple[str, ...]]:
    kinds = (*FINISHED, "pending") if with_pending else FINISHED
    # order does not matter to a rule: one multiset per combination
    return [
        combination
        for n in range(up_to + 1)
        for combination in itertools.combinations_with_replacement(kinds, n)
    ]


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_every_rule_agrees_with_airflow_on_every_combination_of_finished_dependencies(
    rule: TriggerRule,
) -> None:
    differences = []
    for states in combinations(with_pending=False):
        decided = plait_decision(rule, states)
        expected = airflow_state(rule, states)
        got = (
            RUN
            if decided is RUN
            else (UPSTREAM_FAILED if decided is SkipCause.UPSTREAM_FAILED else SKIPPED)
        )
        if got != expected or decided != reference_cause(rule, states):
            differences.append((states, decided, expected))
    assert differences == []


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_every_rule_decides_as_soon_as_its_outcome_is_certain_and_no_sooner(
    rule: TriggerRule,
) -> None:
    differences = [
        (states, plait_decision(rule, states), reference_decision(rule, states))
        for states in combinations(with_pending=True, up_to=4)
        if plait_decision(rule, states) != reference_decision(rule, states)
    ]
    assert differences == []


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    [
        (R.ONE_SUCCESS, ("success", "pending", "pending"), RUN),  # at the first success
        (R.ONE_FAILED, ("success", "success"), SkipCause.TRIGGER_RULE),
        (R.ONE_FAILED, ("success", "pending"), None),
        (R.ALL_SUCCESS, ("failed", "pending"), SkipCause.UPSTREAM_FAILED),  # at once
        (R.ALL_SUCCESS, ("skipped", "pending"), None),  # a failure may still come: it would win
        (R.ALL_SUCCESS, ("skipped", "success"), SkipCause.UPSTREAM_SKIPPED),
        (R.ALL_DONE, ("failed", "skipped", "upstream_failed"), RUN),
        (R.ALWAYS, ("pending",), RUN),
        (R.NONE_FAILED_MIN_ONE_SUCCESS, ("skipped", "skipped"), SkipCause.UPSTREAM_SKIPPED),
        (R.NONE_FAILED_MIN_ONE_SUCCESS, ("skipped", "success"), RUN),
    ],
)
def test_examples_read_as_the_docs_say(
    rule: TriggerRule, states: tuple[str, ...], expected: str | None
) -> None:
    assert plait_decision(rule, states) == expected


def test_trigger_rules_are_public_and_named_as_in_airflow() -> None:
    assert plait.TriggerRule.ONE_FAILED == "one_failed"
    assert {rule.value for rule in plait.TriggerRule} == {
        "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
        "one_done", "none_failed", "none_failed_min_one_success", "none_skipped",
        "all_done_min_one_success", "always",
    }  # fmt: skip
    assert plait.SkipCause.SKIPPED_BY_TASK == "skipped_by_task"


# -- the scheduler on random graphs --------------------------------------------------------------

_END = {"success": TaskStatus.SUCCEEDED, "failed": TaskStatus.FAILED, "skip": TaskStatus.SKIPPED}


def _noop() -> None:
    pass


def ruled_graph(rng: random.Random) -> tuple[Graph, list[str]]:
    """A random DAG of 1-12 tasks, each with a random rule and a random end should it run.

    Made from a ``Random`` seeded by one hypothesis draw rather than from many draws: 10,000
    graphs then take seconds, not minutes (hypothesis's cost is per draw, and per example); a
    failure names the seed of its example.
    """
    n = rng.randint(1, 12)
    wf = Workflow("rules")
    ends = []
    rules = list(TriggerRule)
    for i in range(n):
        depends_on = rng.sample(range(i), rng.randint(0, min(i, 4)))
        wf.add_task(
            f"t{i}",
            _noop,
            depends_on=[f"t{d}" for d in depends_on],
            trigger=rng.choice(rules),
        )
        ends.append(rng.choice(["success", "success", "failed", "skip"]))
    return wf.graph(), ends


def _upstream_state(status: TaskStatus, cause: SkipCause | None) -> str:
    if status is TaskStatus.SUCCEEDED:
        return "success"
    if status is TaskStatus.FAILED:
        return "failed"
    if status is TaskStatus.SKIPPED:
        return UPSTREAM_FAILED if cause is SkipCause.UPSTREAM_FAILED else SKIPPED
    return "pending"


def reference_run(graph: Graph, ends: list[str]) -> list[tuple[TaskStatus, str | None]]:
    """Each task's final status and skip cause, decided by the reference in topological order."""
    final: list[tuple[TaskStatus, str | None]] = [(TaskStatus.PENDING, None)] * len(graph)
    for i in graph.topological_order:
        states = [_upstream_state(*final[d]) for d in graph.dependencies[i]]  # type: ignore[arg-type]
        outcome = reference_cause(graph.rules[i], states)
        if outcome == RUN:
            end = ends[i]
            final[i] = (_END[end], SkipCause.SKIPPED_BY_TASK if end == "skip" else None)
        else:
            final[i] = (TaskStatus.SKIPPED, outcome)
    return final


#: Graphs checked per hypothesis example: its bookkeeping costs about a millisecond an example,
#: several times what checking one small graph does, so an example checks a few.
GRAPHS_PER_EXAMPLE = 10


@settings(max_examples=1_000, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**64 - 1))
def test_random_graphs_with_random_rules_and_outcomes_end_as_the_reference_says(
    seed: int,
) -> None:
    """Tasks finish in a random order; after every report, each task the scheduler decided is
    one the reference would decide now, the same way, and every task it left undecided is one
    the reference would leave waiting. At the end every status and cause is the reference's.
    10,000 graphs in all."""
    rng = random.Random(seed)  # one draw per example: see ruled_graph
    for _ in range(GRAPHS_PER_EXAMPLE):
        check_random_graph(rng)


def check_random_graph(rng: random.Random) -> None:
    """Run the scheduler over one random graph of ``rng``, checking it against the reference."""
    graph, ends = ruled_graph(rng)
    scheduler = Scheduler(graph, max_concurrency=len(graph))
    decided_at: dict[int, str] = {}

    def check(decided: list[int]) -> None:
        status, cause = scheduler.status, scheduler.skip_cause
        for i in range(len(graph)):
            states = [_upstream_state(status[d], cause[d]) for d in graph.dependencies[i]]
            expected = _cached_decision(graph.rules[i], tuple(sorted(states)))
            if i in decided:
                got = RUN if status[i] is not TaskStatus.SKIPPED else cause[i]
                assert got == expected, (graph.ids[i], states)
                decided_at[i] = got  # type: ignore[assignment]
            elif i not in decided_at:
                assert expected is None, (graph.ids[i], states)

    check(scheduler.start())
    running: list[int] = []
    while not scheduler.finished:
        while (i := scheduler.take()) is not None:
            running.append(i)
        assert running, "nothing runs, yet the run is not finished"
        i = running.pop(rng.randrange(len(running)))  # the next to finish
        end = ends[i]
        report = {"success": scheduler.succeed, "failed": scheduler.fail, "skip": scheduler.skip}
        check(report[end](i))
    final = list(zip(scheduler.status, scheduler.skip_cause, strict=True))
    assert final == reference_run(graph, ends)


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_decides_on_success_says_whether_a_success_can_decide_while_others_run(
    rule: TriggerRule,
) -> None:
    """The scheduler asks a rule after a success only when the success was the last dependency
    to finish, unless ``decides_on_success``: that flag must be true of every rule for which a
    success with others pending ever turns "wait" into a decision."""
    can = any(
        plait_decision(rule, (*states, "success")) is not None
        and plait_decision(rule, (*states, "pending")) is None
        for states in combinations(with_pending=True, up_to=3)
        if "pending" in states
    )
    assert rule.decides_on_success == can


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_only_always_decides_before_any_dependency_finished(rule: TriggerRule) -> None:
    """The scheduler's start skips asking the other rules of tasks whose dependencies are all
    still pending."""
    decided = [plait_decision(rule, ("pending",) * n) for n in (1, 2, 3)]
    assert decided == ([RUN] * 3 if rule is TriggerRule.ALWAYS else [None] * 3)


# -- runs: rules, Skip, inputs, ctx.upstream, run status, cleanup --------------------------------


def _fetch(n: int) -> Any:
    def fetch() -> int:
        if n == 2:
            raise RuntimeError("page 2 timed out")
        return n * 10

    return fetch


def test_all_done_aggregates_the_pages_that_succeeded_and_sees_which_failed() -> None:
    wf = Workflow("pages")
    for n in range(4):
        wf.add_task(f"page{n}", _fetch(n))
    seen: dict[str, Any] = {}

    @wf.task(depends_on=[f"page{n}" for n in range(4)], trigger="all_done")
    def aggregate(ctx: plait.Context, page0: int = -1, **pages: int) -> int:
        seen.update(upstream={k: (r.status, r.output) for k, r in ctx.upstream.items()})
        seen["page0"] = page0
        return page0 + sum(pages.values())

    @wf.task(depends_on=[aggregate], trigger="one_failed")
    def alert() -> str:
        return "paged"

    @wf.task(depends_on=[f"page{n}" for n in range(4)], trigger="one_failed")
    def page_oncall() -> str:
        return "paged"

    result = plait.run(wf, max_concurrency=1)
    assert result.tasks["aggregate"].output == 0 + 10 + 30  # page 2 is missing, not an error
    assert seen["upstream"]["page2"] == (TaskStatus.FAILED, None)
    assert seen["upstream"]["page3"] == (TaskStatus.SUCCEEDED, 30)
    assert result.tasks["page_oncall"].status is TaskStatus.SUCCEEDED
    assert result.tasks["alert"].status is TaskStatus.SKIPPED
    assert result.tasks["alert"].skip_cause is SkipCause.TRIGGER_RULE
    assert result.status is plait.RunStatus.FAILED  # page 2 failed: never decided by leaves alone


def test_a_parameter_named_after_a_dependency_that_did_not_succeed_gets_its_default() -> None:
    wf = Workflow("defaults")
    wf.add_task("good", lambda: "ok")
    wf.add_task("bad", _fetch(2))

    @wf.task(depends_on=["good", "bad"], trigger="all_done")
    def report(good: str = "-", bad: str = "missing") -> str:
        return f"{good}/{bad}"

    assert plait.run(wf).tasks["report"].output == "ok/missing"


def test_skip_ends_a_task_skipped_and_the_run_still_succeeds() -> None:
    wf = Workflow("skip")

    @wf.task
    def check() -> None:
        raise plait.Skip("nothing new today")

    @wf.task(depends_on=[check])
    def publish() -> str:
        return "published"

    @wf.task(depends_on=[check], trigger="none_failed")
    def tidy() -> str:
        return "tidied"

    result = plait.run(wf)
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    check_result = result.tasks["check"]
    assert (check_result.status, check_result.skip_cause) == (
        TaskStatus.SKIPPED,
        SkipCause.SKIPPED_BY_TASK,
    )
    assert check_result.error is not None and check_result.error.message == "nothing new today"
    assert check_result.attempts == 1  # never retried
    assert result.tasks["publish"].skip_cause is SkipCause.UPSTREAM_SKIPPED
    assert result.tasks["tidy"].output == "tidied"


def test_skip_is_never_retried() -> None:
    calls = []
    wf = Workflow("skip-retry")

    @wf.task(retry=plait.RetryPolicy(max_retries=3, backoff=0))
    def once() -> None:
        calls.append(1)
        raise plait.Skip()

    assert plait.run(wf).tasks["once"].status is TaskStatus.SKIPPED
    assert calls == [1]


def test_one_success_starts_at_the_first_success_without_waiting_for_the_rest() -> None:
    wf = Workflow("first")
    release = threading.Event()
    order: list[str] = []

    @wf.task
    def fast() -> str:
        order.append("fast")
        return "fast"

    @wf.task
    def slow() -> str:
        assert release.wait(10), "the one_success task did not start before slow finished"
        order.append("slow")
        return "slow"

    @wf.task(depends_on=[fast, slow], trigger="one_success")
    def first(ctx: plait.Context, fast: str = "", slow: str = "") -> str:
        order.append("first")
        assert ctx.upstream["slow"].status is TaskStatus.RUNNING
        release.set()
        return fast + slow

    result = plait.run(wf, max_concurrency=2)
    assert result.tasks["first"].output == "fast"
    assert order == ["fast", "first", "slow"]


def test_skip_causes_and_reasons_are_recorded_in_the_store(tmp_path: Path) -> None:
    wf = Workflow("stored")

    @wf.task
    def check() -> None:
        raise plait.Skip("quiet day")

    wf.add_task("after", lambda: 1, depends_on=["check"])
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id = plait.run(wf, store=store).run_id
    stored = plait.get_run(run_id, store=store)
    assert stored.status is plait.RunStatus.SUCCEEDED
    assert stored.tasks["check"].skip_cause is SkipCause.SKIPPED_BY_TASK
    assert stored.tasks["check"].error is not None
    assert stored.tasks["check"].error.message == "quiet day"
    assert stored.tasks["after"].skip_cause is SkipCause.UPSTREAM_SKIPPED


def test_skipped_events_say_why() -> None:
    wf = Workflow("events")
    wf.add_task("bad", _fetch(2))
    wf.add_task("next", lambda: 1, depends_on=["bad"])
    events: list[plait.TaskSkipped] = []
    plait.run(
        wf, subscribers=[lambda e: events.append(e) if isinstance(e, plait.TaskSkipped) else None]
    )
    assert [(e.task_id, e.cause, e.skip_cause) for e in events] == [
        ("next", "bad", SkipCause.UPSTREAM_FAILED)
    ]


def test_a_cleanup_task_runs_after_a_critical_failure_once_its_dependencies_are_done() -> None:
    wf = Workflow("teardown")
    wf.add_task("setup", lambda: "cluster-1")

    @wf.task(depends_on=["setup"], critical=True)
    def work() -> None:
        raise RuntimeError("boom")

    wf.add_task("more", lambda: 1, depends_on=["work"])

    @wf.task(depends_on=["setup", "work"], cleanup=True)
    def release(setup: str = "", work: None = None) -> str:
        return f"released {setup}"

    result = plait.run(wf)
    assert result.status is plait.RunStatus.FAILED
    assert result.tasks["more"].status is TaskStatus.SKIPPED
    assert result.tasks["release"].output == "released cluster-1"


def test_a_cleanup_task_that_fails_after_a_halt_is_retried_by_its_policy() -> None:
    wf = Workflow("flaky-teardown")

    @wf.task(critical=True)
    def work() -> None:
        raise RuntimeError("boom")

    calls: list[int] = []

    @wf.task(depends_on=[work], cleanup=True, retry=plait.RetryPolicy(max_retries=3, backoff=0))
    def release() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("the lock server hiccuped")
        return "released"

    result = plait.run(wf)
    assert result.status is plait.RunStatus.FAILED
    assert result.error is not None and result.error.startswith("task 'work' failed")
    assert (result.tasks["release"].output, result.tasks["release"].attempts) == ("released", 3)


def test_a_cleanup_task_runs_after_fail_fast_halts_the_run() -> None:
    wf = Workflow("fail-fast")
    gate = threading.Event()

    @wf.task
    def bad() -> None:
        raise RuntimeError("boom")

    @wf.task
    def long() -> None:  # still running when bad fails: cancelled, and then the cleanup runs
        gate.wait(10)

    wf.add_task("never", lambda: 1, depends_on=["long"])

    @wf.task(depends_on=[long], cleanup=True)
    def release() -> str:
        return "released"

    def stop_waiting(event: plait.Event) -> None:
        if isinstance(event, plait.TaskFailed):
            gate.set()

    result = plait.run(wf, fail_fast=True, max_concurrency=2, subscribers=[stop_waiting])
    assert result.tasks["never"].status is TaskStatus.CANCELLED
    assert result.tasks["release"].status is TaskStatus.SUCCEEDED


# -- cleanup tasks and real signals ----------------------------------------------------------

_CLEANUP_SCRIPT = """
import sys, time, plait
from pathlib import Path

wf = plait.Workflow("teardown")

@wf.task
def work(ctx):
    print("working", flush=True)
    while not ctx.cancelled:
        time.sleep(0.01)
    if sys.argv[2] == "stubborn":  # ignores the cancel: only a second signal stops waiting
        print("saw the cancel", flush=True)
        time.sleep(60)
    ctx.raise_if_cancelled()

@wf.task(depends_on=[work], cleanup=True)
def release():
    Path(sys.argv[3]).write_text("released")
    return "released"

try:
    plait.run(wf, run_id="teardown", store=sys.argv[1], cancel_grace=60)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
"""


def _run_until(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    for seen in process.stdout:
        if seen.strip() == line:
            return
    raise AssertionError(f"the run ended before printing {line!r}: {process.communicate()}")


class KilledRun:
    """A workflow script (``source``; it reads ``EFFECTS`` and ``PHASE`` from its environment
    and the store URL from ``argv[1]``, and runs or resumes run ``r``) run as a user's process
    would: phase 1 in a child until it prints ``blocking``, killed with SIGKILL once the store
    shows what the test waits for, then phase 2 -- the resume -- to its end."""

    def __init__(self, tmp_path: Path, source: str) -> None:
        self.flow = tmp_path / "killed_flow.py"
        self.flow.write_text(source)
        self.effects = tmp_path / "effects"
        self.store = f"sqlite://{tmp_path / 'runs.db'}"
        self.env = {**os.environ, "EFFECTS": str(self.effects), "PHASE": "1"}
        self.first = subprocess.Popen(
            [sys.executable, str(self.flow), self.store],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        _run_until(self.first, "blocking")

    def recorded(self) -> dict[str, TaskStatus]:
        return {t: r.status for t, r in plait.get_run("r", store=self.store).tasks.items()}

    def kill_once(self, caught_up: Callable[[dict[str, TaskStatus]], bool]) -> plait.RunResult:
        """SIGKILL the first process once ``caught_up(recorded statuses)``; the run as stored."""
        deadline = time.monotonic() + 20
        while not caught_up(self.recorded()):
            assert time.monotonic() < deadline, self.recorded()
            time.sleep(0.02)
        self.first.send_signal(signal.SIGKILL)
        self.first.wait(10)
        return plait.get_run("r", store=self.store)

    def resume(self) -> plait.RunResult:
        """Run phase 2 (the resume) in a new process to its end; the run as stored."""
        resumed = subprocess.run(
            [sys.executable, str(self.flow), self.store],
            env={**self.env, "PHASE": "2"},
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert resumed.returncode == 0, resumed.stderr
        return plait.get_run("r", store=self.store)


@pytest.mark.parametrize("signals", [1, 2], ids=["one Ctrl-C", "two Ctrl-C"])
def test_a_cleanup_task_runs_after_ctrl_c_and_a_second_ctrl_c_skips_it(
    tmp_path: Path, signals: int
) -> None:
    store = f"sqlite://{tmp_path / 'runs.db'}"
    released = tmp_path / "released"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CLEANUP_SCRIPT,
            store,
            "polite" if signals == 1 else "stubborn",
            str(released),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _run_until(process, "working")
    process.send_signal(signal.SIGINT)
    if signals == 2:
        _run_until(process, "saw the cancel")  # the cleanup still waits for work to end
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)  # far less than the 60 s grace
    assert process.returncode == 130, (stdout, stderr)
    result = plait.get_run("teardown", store=store)
    assert result.status is plait.RunStatus.CANCELLED
    assert result.tasks["work"].status is TaskStatus.CANCELLED
    if signals == 1:
        assert released.read_text() == "released"
        assert result.tasks["release"].status is TaskStatus.SUCCEEDED
    else:
        assert not released.exists()
        assert result.tasks["release"].status is TaskStatus.CANCELLED


# -- resume after kill -9 ----------------------------------------------------------------------

_RESUME_FLOW = """
import os, sys, time, plait
from pathlib import Path

EFFECTS = Path(os.environ["EFFECTS"])
PHASE = os.environ["PHASE"]

def mark(name):
    with EFFECTS.open("a") as f:
        f.write(f"{PHASE} {name}\\n")

wf = plait.Workflow("resumable")

@wf.task(retry=plait.RetryPolicy(max_retries=1, backoff=0))
def flaky():
    mark("flaky")
    if PHASE == "1":
        raise RuntimeError("flaky today")
    return 7

@wf.task
def check():
    mark("check")
    raise plait.Skip("nothing to publish")

@wf.task(depends_on=[check])
def publish():
    mark("publish")

@wf.task(depends_on=[flaky], trigger="one_failed")
def alert():
    mark("alert")
    return "paged"

@wf.task
def slow():
    mark("slow")
    if PHASE == "1":
        print("blocking", flush=True)
        time.sleep(60)
    return 1

@wf.task(depends_on=[slow], trigger="one_failed")
def alert_slow():
    mark("alert_slow")

@wf.task(depends_on=[flaky, slow], trigger="all_done")
def aggregate(flaky=0, slow=0):
    mark("aggregate")
    return flaky + slow

@wf.task(depends_on=[aggregate], cleanup=True)
def cleanup():
    mark("cleanup")
    return "clean"

if __name__ == "__main__":
    store = sys.argv[1]
    if PHASE == "1":
        plait.run(wf, run_id="r", store=store)
    else:
        plait.resume("r", wf, store=store, force=True)  # the first process was killed
"""


def test_a_run_with_rules_skip_and_cleanup_resumes_after_kill_9_with_every_state_right(
    tmp_path: Path,
) -> None:
    run = KilledRun(tmp_path, _RESUME_FLOW)
    # the store has caught up
    before = run.kill_once(lambda recorded: recorded["alert"] is TaskStatus.SUCCEEDED)
    assert before.tasks["flaky"].status is TaskStatus.FAILED
    assert before.tasks["check"].skip_cause is SkipCause.SKIPPED_BY_TASK
    assert before.tasks["publish"].skip_cause is SkipCause.UPSTREAM_SKIPPED
    assert before.tasks["slow"].status is TaskStatus.RUNNING

    after = run.resume()
    states = {t: (r.status.value, r.skip_cause) for t, r in after.tasks.items()}
    assert states == {
        "flaky": ("succeeded", None),  # a fresh retry budget: it runs again, and succeeds
        "check": ("skipped", SkipCause.SKIPPED_BY_TASK),  # kept: nothing it depends on changed
        "publish": ("skipped", SkipCause.UPSTREAM_SKIPPED),
        "alert": ("succeeded", None),  # recorded succeeded: never runs again
        "slow": ("succeeded", None),
        "alert_slow": ("skipped", SkipCause.TRIGGER_RULE),
        "aggregate": ("succeeded", None),
        "cleanup": ("succeeded", None),
    }
    assert after.tasks["aggregate"].output == 8
    assert after.status is plait.RunStatus.SUCCEEDED, after.error
    ran = run.effects.read_text().split("\n")
    assert ran.count("1 check") == 1 and not any(line.endswith(" publish") for line in ran)
    assert "2 check" not in ran and "2 alert" not in ran  # neither runs again
    assert ran.count("1 flaky") == 2 and ran.count("2 flaky") == 1  # 2 tries, then 1 more

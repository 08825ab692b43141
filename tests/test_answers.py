"""Answering from anywhere (``plait._answers``): who answered, when and through what is recorded
with every answer, and the answer reaches the run wherever it lives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import plait
import plait._answers
import plait._requests
from plait import AnswerChannel, RunStatus
from plait._requests import RequestKind, RequestState, RunRequest
from plait.stores import open_store


def gate() -> plait.Workflow:
    wf = plait.Workflow("gate")
    wf.add_task("build", lambda: "1.0")
    wf.add_task(
        "approve",
        lambda build, ctx: f"{build}: {ctx.input}",
        depends_on=["build"],
        pause=plait.Pause("Ship it?", schema={"type": "boolean"}),
    )
    return wf


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'plait.db'}"


def answer_of(url: str, run_id: str, task_id: str = "approve") -> plait.stores.InputRequest:
    (request,) = [r for r in open_store(url).load_requests(run_id) if r.task_id == task_id]
    return request


def test_an_answer_to_a_paused_run_records_who_when_and_how(url: str) -> None:
    paused = plait.run(gate(), store=url)
    before = time.time()
    plait.answer(paused.run_id, "approve", True, by="Ada Lovelace", via="web", store=url)
    recorded = answer_of(url, paused.run_id)
    assert (recorded.answered, recorded.answered_by, recorded.answered_via) == (
        True,
        "Ada Lovelace",
        "web",
    )
    assert recorded.answered_at is not None
    assert before <= recorded.answered_at <= time.time()
    done = plait.resume(paused.run_id, gate(), store=url)
    assert done.outputs["approve"] == "1.0: True"
    assert answer_of(url, paused.run_id).answered_by == "Ada Lovelace"  # kept through the resume


def test_an_answer_from_the_api_says_so_and_names_nobody_unless_told(url: str) -> None:
    paused = plait.run(gate(), store=url)
    plait.answer(paused.run_id, "approve", False, store=url)
    recorded = answer_of(url, paused.run_id)
    assert (recorded.answered_by, recorded.answered_via) == (None, AnswerChannel.API)


def test_answers_given_to_resume_record_their_provenance(url: str) -> None:
    paused = plait.run(gate(), store=url)
    done = plait.resume(
        paused.run_id,
        gate(),
        inputs={"approve": True},
        store=url,
        answered_by="grace",
        answered_via=AnswerChannel.CLI,
    )
    assert done.status is RunStatus.SUCCEEDED
    recorded = answer_of(url, paused.run_id)
    assert (recorded.answered_by, recorded.answered_via) == ("grace", "cli")


@pytest.mark.parametrize(
    ("by", "via", "message"),
    [
        (None, "email", r"^via must be one of 'api', 'cli', 'web', not 'email'$"),
        ("ada\nroot", "api", r"^who answered must be a name on one line of at most 200 "),
        ("x" * 201, "api", r"^who answered must be a name on one line of at most 200 "),
    ],
)
def test_a_bad_provenance_is_refused_and_nothing_is_recorded(
    url: str, by: str | None, via: str, message: str
) -> None:
    paused = plait.run(gate(), store=url)
    with pytest.raises(plait.InvalidOptionError, match=message):
        plait.answer(paused.run_id, "approve", True, by=by, via=via, store=url)
    assert not answer_of(url, paused.run_id).answered


def test_a_blank_name_is_no_name(url: str) -> None:
    paused = plait.run(gate(), store=url)
    plait.answer(paused.run_id, "approve", True, by="   ", store=url)
    assert answer_of(url, paused.run_id).answered_by is None


def test_an_answer_to_a_run_live_in_this_process_records_who_gave_it(url: str) -> None:
    def asked(event: plait.Event) -> None:
        if isinstance(event, plait.InputRequested):
            threading.Thread(
                target=plait.answer,
                args=(event.run_id, "approve", True),
                kwargs={"by": "grace", "via": "cli"},
            ).start()

    result = plait.run(gate(), store=url, wait_for_input=True, subscribers=[asked])
    assert result.status is RunStatus.SUCCEEDED
    recorded = answer_of(url, result.run_id)
    assert (recorded.answered_by, recorded.answered_via) == ("grace", "cli")


# -- a run live in another process --------------------------------------------------------------

# A run that waits for its answers rather than pausing (wait_for_input=True), in a process of
# its own: "approve" asks for a boolean; "amount" asks mid-way for a bounded integer.
LIVE = """
import sys, plait
wf = plait.Workflow("live")
wf.add_task("build", lambda: "1.0")
wf.add_task(
    "approve",
    lambda build, ctx: f"{build}: {ctx.input}",
    depends_on=["build"],
    pause=plait.Pause("Ship it?", schema={"type": "boolean"}),
)
def amount(ctx):
    return ctx.request_input("How many?", schema={"type": "integer", "minimum": 1}) * 2
wf.add_task("amount", amount)
def asked(event):
    if isinstance(event, plait.InputRequested):
        print("asked", event.task_id, flush=True)
result = plait.run(wf, run_id="live", store=sys.argv[1], wait_for_input=True, subscribers=[asked])
print(result.status, result.outputs.get("approve"), result.outputs.get("amount"), flush=True)
"""

POSTGRES_URL = os.environ.get(
    "PLAIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new store that another process can open: an SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'plait.db'}"
        return
    import psycopg  # noqa: PLC0415 - only this backend needs it

    schema = f"plait_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start_live(url: str) -> subprocess.Popen[str]:
    """The LIVE script, once both its questions are asked (and recorded in the store)."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LIVE), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    asked = {child.stdout.readline().split()[-1] for _ in range(2)}
    assert asked == {"approve", "amount"}, child.communicate()
    store = open_store(url)
    deadline = time.monotonic() + 10
    while len(store.open_questions()) < 2:  # written by the run's recorder, 0.1 s later
        assert time.monotonic() < deadline, "the questions never reached the store"
        time.sleep(0.01)
    return child


def test_an_answer_reaches_a_run_live_in_another_process(
    shared_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[RunRequest] = []

    def send(*args: Any, **kwargs: Any) -> RunRequest:
        request = plait._requests.send(*args, **kwargs)
        sent.append(request)
        return request

    monkeypatch.setattr(plait._answers, "send", send)
    child = start_live(shared_url)
    try:
        store = open_store(shared_url)
        record = store.get_run("live")
        assert record is not None and record.status is RunStatus.RUNNING
        assert record.owner is not None and str(os.getpid()) not in record.owner
        # A wrong answer is refused, and the store is as it was.
        with pytest.raises(plait.InputValidationError, match=r"minimum"):
            plait.answer("live", "amount", 0, store=shared_url)
        assert {q.task_id for q in store.open_questions()} == {"approve", "amount"}
        plait.answer("live", "approve", True, by="ada", via="web", store=shared_url)
        plait.answer("live", "amount", 21, store=shared_url)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert out.splitlines()[-1] == "succeeded 1.0: True 42"
    answered = {r.task_id: r for r in store.load_requests("live")}
    assert all(r.answered for r in answered.values())
    # Recorded by the run's own process, with who answered and how.
    assert (answered["approve"].answered_by, answered["approve"].answered_via) == ("ada", "web")
    assert (answered["amount"].answered_by, answered["amount"].answered_via) == (None, "api")
    # Each answer went through the request channel, and its outcome says it was taken.
    assert [r.kind for r in sent] == [RequestKind.ANSWER] * 2
    done = [store.get_request("live", r.request_id) for r in sent]
    assert [(r.state, r.outcome) for r in done if r is not None] == [
        (RequestState.DONE, "answered")
    ] * 2


def test_a_refused_answer_names_the_rule_the_owner_checked(shared_url: str) -> None:
    child = start_live(shared_url)
    try:
        with pytest.raises(plait.NotWaitingError, match=r"'build' is not waiting for input"):
            plait.answer("live", "build", 1, store=shared_url)
        plait.cancel("live", store=shared_url)
        child.communicate(timeout=30)
    finally:
        child.kill()


def test_an_owner_that_does_not_take_the_answer_is_named(tmp_path: Path, url: str) -> None:
    # A run whose recorded owner is a live process of this host that is not plait: the answer
    # is sent, nobody takes it, and the caller is told who holds the run.
    paused = plait.run(gate(), store=url)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        store = open_store(url)
        owner = f"{socket.gethostname()}:{bystander.pid}:abcdef"
        store.claim(paused.run_id, owner, lease_seconds=60)
        with pytest.raises(plait.AnswerTimeoutError) as caught:
            plait.answer(paused.run_id, "approve", True, store=url, timeout=0.3)
        assert str(caught.value).startswith(
            f"run {paused.run_id!r} is owned by {owner}, which did not take the answer for task "
            "'approve' within 0.3s although its lease is live"
        )
        assert caught.value.owner == owner
        assert not answer_of(url, paused.run_id).answered
        # Once that owner lets the run go, the answer is recorded in the store, and its
        # request written done, saying so.
        store.release(paused.run_id, owner)
        plait.answer(paused.run_id, "approve", True, by="ada", store=url)
        assert answer_of(url, paused.run_id).answered_by == "ada"
    finally:
        bystander.kill()


def test_an_answer_sent_to_an_owner_that_lets_the_run_go_is_recorded_in_the_store(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[RunRequest] = []

    def send(*args: Any, **kwargs: Any) -> RunRequest:
        sent.append(plait._requests.send(*args, **kwargs))
        return sent[-1]

    monkeypatch.setattr(plait._answers, "send", send)
    paused = plait.run(gate(), store=url)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        store = open_store(url)
        owner = f"{socket.gethostname()}:{bystander.pid}:abcdef"
        store.claim(paused.run_id, owner, lease_seconds=60)
        answering = threading.Thread(
            target=plait.answer, args=(paused.run_id, "approve", True), kwargs={"store": url}
        )
        answering.start()
        deadline = time.monotonic() + 10
        while not sent:  # the request is on its way: now the owner lets the run go
            assert time.monotonic() < deadline
            time.sleep(0.01)
        store.release(paused.run_id, owner)
        answering.join(timeout=10)
        assert not answering.is_alive()
    finally:
        bystander.kill()
    assert answer_of(url, paused.run_id).answered
    (request,) = sent
    done = store.get_request(paused.run_id, request.request_id)
    assert done is not None and done.state is RequestState.DONE
    assert done.outcome is not None and "the owner let the run go" in done.outcome


def test_the_inbox_shows_a_questions_own_default_before_and_after_a_resume(url: str) -> None:
    wf = plait.Workflow("late")
    wf.add_task("gate", None, pause=plait.Pause("Still there?", timeout=3600, default="hold"))
    wf.add_task("ask", lambda ctx: ctx.request_input("Why?", default=["no", "reason"], timeout=60))
    paused = plait.run(wf, store=url)
    assert paused.waiting["gate"].default == "hold"
    store = open_store(url)
    assert {q.task_id: q.default for q in store.open_questions()} == {
        "gate": "hold",
        "ask": ["no", "reason"],
    }
    again = plait.resume(paused.run_id, wf, store=url)  # asks again: still known
    assert again.status is RunStatus.PAUSED
    assert {q.task_id: q.default for q in store.open_questions()}["gate"] == "hold"

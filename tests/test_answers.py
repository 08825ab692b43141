"""Answering from anywhere (``plait._answers``): who answered, when and through what is recorded
with every answer, and the answer reaches the run wherever it lives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import plait
from plait import AnswerChannel, RunStatus
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

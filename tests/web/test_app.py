"""The pages and actions, through Starlette's test client (the browser tests are elsewhere)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import plait
from plait.stores import StoreUnavailableError, open_store
from plait.web import Keys, create_app

from .conftest import paused_run

ORIGIN = {"Origin": "http://testserver"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_runs_are_listed_newest_first_with_filters_and_pages(client: TestClient, url: str) -> None:
    for i in range(3):
        plait.run(_flow(i), run_id=f"s{i}", store=url)
    page = client.get("/runs").text
    ids = re.findall(r'data-run-id="([^"]+)"', page)
    assert ids == ["s2", "s1", "s0", "r1"]
    paused = re.findall(r'data-run-id="([^"]+)"', client.get("/runs?status=paused").text)
    assert paused == ["r1"]
    flow1 = re.findall(r'data-run-id="([^"]+)"', client.get("/runs?workflow=flow1").text)
    assert flow1 == ["s1"]
    assert "server-timing" in client.get("/runs").headers


def _flow(i: int) -> plait.Workflow:
    wf = plait.Workflow(f"flow{i % 2}")
    wf.add_task("a", lambda: 1)
    return wf


def test_pages_of_runs_follow_the_cursor(client: TestClient, url: str) -> None:
    with open_store(url) as store:  # one connection for the 120 runs, not one each
        for i in range(120):
            plait.run(_flow(i), run_id=f"s{i:03d}", store=store)
    first = client.get("/runs").text
    older = re.search(r'href="(/runs\?before=[^"]+)" rel="next"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    seen = re.findall(r'data-run-id="([^"]+)"', first) + re.findall(
        r'data-run-id="([^"]+)"', second
    )
    assert len(seen) == len(set(seen)) == 100
    assert client.get("/runs?before=bogus").status_code == 400


def test_the_inbox_lists_open_questions_with_signed_links(client: TestClient, keys: Keys) -> None:
    page = client.get("/inbox").text
    assert 'data-task-id="approve"' in page
    link = re.search(r'value="(http://testserver/runs/r1/questions/approve\?sig=[^"]+)"', page)
    assert link is not None
    sig = link.group(1).split("sig=")[1]
    assert keys.check_question(sig, "r1", "approve")


def test_an_invalid_answer_shows_its_error_by_its_field_and_records_nothing(
    client: TestClient, url: str
) -> None:
    page = client.get("/runs/r1/questions/approve").text
    assert 'name="answer.address.city"' in page and "Approve" in page
    response = client.post(
        "/runs/r1/questions/approve",
        data={
            "csrf": csrf_of(page),
            "answered_by": "Ada",
            "answer.approved": "true",
            "answer.size": '"small"',
            "answer.count": "11",
            "answer.address.city": "Oslo",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 422
    field = re.search(
        r'data-name="answer.count".*?<p class="field-error" role="alert">([^<]*)</p>',
        response.text,
        re.S,
    )
    assert field is not None and "11 is greater than the maximum of 10" in field.group(1)
    with open_store(url) as store:
        (request,) = store.load_requests("r1")
        assert not request.answered


def test_a_valid_answer_is_recorded_with_who_gave_it(client: TestClient, url: str) -> None:
    page = client.get("/runs/r1/questions/approve").text
    response = client.post(
        "/runs/r1/questions/approve",
        data={
            "csrf": csrf_of(page),
            "answered_by": "Ada",
            "answer.approved": "false",
            "answer.size": '"large"',
            "answer.count": "3",
            "answer.address.city": "Oslo",
            "answer.tags": "",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/runs/r1?note=answered-paused"
    with open_store(url) as store:
        (request,) = store.load_requests("r1")
        assert request.answered
    again = client.get("/runs/r1/questions/approve")
    assert "not waiting for an answer" in again.text


def test_an_answer_needs_a_name_unless_a_proxy_gives_it(url: str, keys: Keys) -> None:
    paused_run(url, "p1", schema={"type": "boolean"})
    with TestClient(
        create_app(url, keys=keys, user_header="X-Forwarded-User"), follow_redirects=False
    ) as client:
        client.cookies.set("plait_session", keys.session)
        page = client.get("/runs/p1/questions/approve").text
        nameless = client.post(
            "/runs/p1/questions/approve",
            data={"csrf": csrf_of(page), "answer": "true"},
            headers=ORIGIN,
        )
        assert nameless.status_code == 422 and "say who answers" in nameless.text
        proxied = client.post(
            "/runs/p1/questions/approve",
            data={"csrf": csrf_of(page), "answer": "true"},
            headers={**ORIGIN, "X-Forwarded-User": "grace"},
        )
        assert proxied.status_code == 303


def test_a_link_holder_answers_and_stays_on_the_question(anonymous: TestClient, keys: Keys) -> None:
    link = keys.question_link("r1", "approve")
    page = anonymous.get(link).text
    response = anonymous.post(
        link,
        data={
            "csrf": csrf_of(page),
            "answered_by": "Bob",
            "answer.approved": "true",
            "answer.size": '"small"',
            "answer.count": "1",
            "answer.address.city": "Rome",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/runs/r1/questions/approve?sig=")
    after = anonymous.get(response.headers["location"]).text
    assert "your answer was recorded" in after
    assert re.search(r"Answered by <b>Bob</b> \(via web\) at \d{4}-", after)


def test_script_in_a_prompt_task_or_error_is_shown_as_text(url: str, client: TestClient) -> None:
    evil = "<script>alert(1)</script>"
    wf = plait.Workflow(evil)
    wf.add_task(evil, None, pause=plait.Pause(evil))

    def boom() -> None:
        raise RuntimeError(evil)

    wf.add_task("boom", boom)
    plait.run(wf, run_id="x1", store=url)
    for path in (
        "/runs",
        "/runs/x1",
        "/inbox",
        "/runs/x1/questions/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ):
        text = client.get(path).text
        assert "<script>alert" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path


def test_cancel_records_a_paused_run_cancelled(client: TestClient, url: str) -> None:
    page = client.get("/runs/r1").text
    response = client.post("/runs/r1/cancel", data={"csrf": csrf_of(page)}, headers=ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/runs/r1?note=cancelled"
    with open_store(url) as store:
        record = store.get_run("r1")
        assert record is not None and record.status is plait.RunStatus.CANCELLED


def test_resume_refuses_a_run_whose_target_is_not_trusted(client: TestClient) -> None:
    page = client.get("/runs/r1").text
    response = client.post("/runs/r1/resume", data={"csrf": csrf_of(page)}, headers=ORIGIN)
    assert response.status_code == 409
    assert "does not record where its workflow comes from" in response.text


def test_an_unknown_run_is_404(client: TestClient) -> None:
    assert client.get("/runs/nope").status_code == 404
    assert client.get("/runs/nope/questions/x").status_code == 404


CRASHING = """
import os
import signal

import plait

gate = plait.Workflow("crashing")
gate.add_task("start", lambda: 1)  # a function of this module: the run records its target
gate.add_task("approve", None, depends_on=["start"], pause=plait.Pause("ok?"))

if __name__ == "__main__":
    import sys

    plait.run(gate, store=sys.argv[1], run_id="k1")
else:  # imported by the resume: the interpreter dies
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_resume_that_kills_its_process_leaves_the_server_up(
    client: TestClient, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_PATH", str(tmp_path))  # the server may import its target
    (tmp_path / "crashing.py").write_text(CRASHING)
    subprocess.run([sys.executable, "crashing.py", url], cwd=tmp_path, check=True)
    page = client.get("/runs/k1").text
    response = client.post("/runs/k1/resume", data={"csrf": csrf_of(page)}, headers=ORIGIN)
    assert response.status_code == 303, re.findall(
        r'note-error" role="alert">([^<]*)', response.text
    )
    deadline = time.monotonic() + 60
    while "exited with status -9" not in (text := client.get("/runs/k1").text):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    assert client.get("/runs").status_code == 200  # the server goes on


def test_a_failing_store_is_a_503_that_says_so(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client.app.app.state.plait  # type: ignore[attr-defined]

    def busy(run_id: str) -> None:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(app.store, "get_run", busy)
    response = client.get("/runs/r1")
    assert response.status_code == 503
    assert response.text == "the store failed: database is locked; reload the page in a moment"


def test_the_first_page_of_runs_follows_new_runs(client: TestClient, url: str) -> None:
    page = client.get("/runs?status=succeeded").text
    live = re.search(r'data-live="([^"]+)" data-part="([^"]+)"', page)
    assert live is not None
    assert live.groups() == ("/runs-live?status=succeeded", "/runs-part?status=succeeded")
    before = client.get(live.group(2))
    plait.run(_flow(1), run_id="new1", store=url)
    after = client.get(live.group(2))
    assert 'data-run-id="new1"' in after.text and 'data-run-id="new1"' not in before.text
    assert after.headers["x-plait-version"] != before.headers["x-plait-version"]
    plait.run(_flow(1), run_id="part", store=url)  # a run may be called "part"
    assert client.get("/runs/part").status_code == 200

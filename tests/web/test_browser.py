"""plait serve in a real browser (the system Chromium, as the report's tests use), against the
real server (``plait serve --port 0``), with runs made by other processes.

Screenshots of the runs page, a run page and a question form are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cli.conftest import ARTIFACTS, browser  # noqa: F401 - the browser fixture, shared

from plait.stores import open_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TOKEN = "browser-test-token-0123456789"

#: The workflows the tests run in other processes: `python flows.py MODE STORE RUN_ID`.
FLOWS = """
import sys
import time

import plait

ORDER = {
    "type": "object",
    "title": "Invoice",
    "properties": {
        "send": {"type": "boolean", "title": "Send it?", "description": "It goes to ACME."},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "title": "Currency"},
        "amount": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5},
        "billing": {
            "type": "object",
            "title": "Billing address",
            "properties": {"city": {"type": "string", "minLength": 2}},
            "required": ["city"],
        },
    },
    "required": ["send", "currency", "amount", "billing"],
}

gate = plait.Workflow("invoices")
gate.add_task("total", lambda: 42)
gate.add_task(
    "approve", None, depends_on=["total"], pause=plait.Pause("Send invoice #42?", schema=ORDER)
)
gate.add_task("send", lambda approve: approve["currency"], depends_on=["approve"])


def step(i):
    time.sleep(0.06)  # 200 tasks, 4 at once: about 3 s
    return i


many = plait.Workflow("many")
for i in range(200):
    many.add_task(f"t{i:03d}", step, params={"i": i}, depends_on=[f"t{i - 1:03d}"] if i % 4 else [])

EVIL = "<script>alert(1)</script>"
evil = plait.Workflow(EVIL)
evil.add_task(EVIL, None, pause=plait.Pause(EVIL + "<img src=x onerror=alert(2)>"))


def boom():
    raise RuntimeError("<img src=x onerror=alert(3)>")


evil.add_task("boom", boom)

slow = plait.Workflow("slow")
slow.add_task("sleep", lambda: time.sleep(120))

if __name__ == "__main__":
    mode, store, run_id = sys.argv[1:]
    workflow = {"gate": gate, "many": many, "slow": slow, "waiting": gate, "evil": evil}[mode]
    extra = {"max_concurrency": 4} if mode == "many" else {}
    if mode == "waiting":  # stays live while it waits for the answer
        extra = {"wait_for_input": True}
    print(plait.run(workflow, store=store, run_id=run_id, **extra).status, flush=True)
"""


@dataclass
class Server:
    base: str
    store: str
    directory: Path
    process: subprocess.Popen[str]
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, mode: str, run_id: str) -> subprocess.Popen[str]:
        """Run workflow ``mode`` in another process, as ``run_id``."""
        child = subprocess.Popen(
            [sys.executable, "flows.py", mode, self.store, run_id],
            cwd=self.directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.children.append(child)
        return child

    def status(self, run_id: str) -> str | None:
        with open_store(self.store) as store:
            record = store.get_run(run_id)
        return None if record is None else record.status.value

    def wait_for(self, run_id: str, status: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.status(run_id) != status:
            assert time.monotonic() < deadline, f"{run_id} never became {status}"
            time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "flows.py").write_text(FLOWS)
    store = f"sqlite:///{tmp_path / 'plait.db'}"
    open_store(store, create=True).close()
    env = {**os.environ, "PLAIT_UI_TOKEN": TOKEN, "PLAIT_PATH": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "serve", "--store", store, "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed = process.stdout.readline() + process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", printed)
    assert found is not None, printed
    assert found.group(2) == TOKEN
    made = Server(found.group(1), store, tmp_path, process)
    yield made
    for child in made.children:
        if child.poll() is None:
            child.kill()
        child.wait()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@dataclass
class Tab:
    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path, wait_until="load")

    def keep(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.base + "/")]


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Tab]:  # noqa: F811 - the fixture
    """A tab signed in with the token (as a person opening the printed address)."""
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    opened = Tab(page, server.base)
    page.on("request", lambda r: opened.requests.append(r.url))
    page.on("pageerror", lambda e: opened.errors.append(f"uncaught: {e}"))
    page.on(
        "console",
        lambda m: opened.errors.append(m.text) if m.type in ("error", "warning") else None,
    )
    opened.goto(f"/?token={TOKEN}")
    assert page.url == server.base + "/runs"
    yield opened
    assert opened.foreign_requests() == []
    page.close()


def live(tab: Tab) -> None:
    """Wait until the page's live stream is open."""
    tab.page.wait_for_selector("#live-dot:not([hidden])", state="attached", timeout=10_000)


def test_a_paused_run_reaches_the_inbox_live_is_answered_and_resumed(
    server: Server, tab: Tab
) -> None:
    tab.goto("/inbox")
    live(tab)
    assert tab.page.locator(".question-item").count() == 0
    child = server.start("gate", "g1")
    assert child.wait(timeout=60) == 0  # it paused, and its process ended
    item = tab.page.wait_for_selector('.question-item[data-task-id="approve"]', timeout=10_000)
    assert item is not None
    assert "Send invoice #42?" in item.inner_text()

    tab.page.click(".question-item .answer-button")
    page = tab.page
    page.wait_for_selector("form.answer")
    # every kind of field: a boolean, an enum, a bounded integer, a nested object
    assert page.locator('input[type=radio][name="answer.send"]').count() == 2
    assert page.locator('select[name="answer.currency"] option').count() == 3
    amount = page.locator('input[type=number][name="answer.amount"]')
    assert amount.get_attribute("min") == "1" and amount.get_attribute("max") == "100"
    assert amount.input_value() == "5"
    assert (
        page.locator(
            'fieldset[data-name="answer.billing"] input[name="answer.billing.city"]'
        ).count()
        == 1
    )
    tab.keep("serve-question.png")

    page.fill("#answered_by", "Ada")
    page.check('input[name="answer.send"][value="true"]')
    page.select_option('select[name="answer.currency"]', '"EUR"')
    page.fill('input[name="answer.amount"]', "500")
    page.fill('input[name="answer.billing.city"]', "Oslo")
    page.click("#submit")
    error = page.wait_for_selector('[data-name="answer.amount"] .field-error')
    assert error is not None and "500 is greater than the maximum of 100" in error.inner_text()
    with open_store(server.store) as store:
        assert not any(r.answered for r in store.load_requests("g1"))
    assert page.input_value('input[name="answer.billing.city"]') == "Oslo"  # kept

    page.fill('input[name="answer.amount"]', "50")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/runs/g1\?note=answered-paused$"))
    with open_store(server.store) as store:
        assert all(r.answered for r in store.load_requests("g1"))

    page.click("#resume")
    page.wait_for_url(re.compile(r".*/runs/g1\?note=resuming$"))
    page.wait_for_selector('#run-status:text("succeeded")', timeout=60_000)
    assert server.status("g1") == "succeeded"
    assert [e for e in tab.errors if "status of 422" not in e] == []  # the refused answer's


def test_the_run_page_follows_a_200_task_run_and_the_runs_page_lists_it(
    server: Server, tab: Tab
) -> None:
    server.start("many", "m1")
    deadline = time.monotonic() + 30
    while server.status("m1") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    tab.goto("/runs/m1")
    live(tab)
    seen: list[str] = []
    while True:
        text = tab.page.locator("[data-figure=tasks]").inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if (tab.page.locator("#run-status").text_content() or "").startswith("succeeded"):
            break
        assert time.monotonic() < deadline + 60, (seen[-3:], server.status("m1"))
        tab.page.wait_for_timeout(50)
    assert len(seen) >= 3, seen  # the counts moved on the page, with no reload
    assert tab.page.evaluate("performance.getEntriesByType('navigation').length") == 1
    final = tab.page.locator("[data-figure=tasks]").inner_text()  # the same swap as the status
    assert "200 succeeded" in final.replace("\n", " ")
    # The status shows once; the wide graph scrolls in its own box, not the page.
    widths = tab.page.evaluate(
        """() => ({
        pills: document.querySelectorAll('main .pill').length,
        page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
        dag: document.querySelector('.dag').scrollWidth,
        box: document.querySelector('.dag').clientWidth,
    })"""
    )
    assert widths["pills"] == 1
    assert widths["page"] == widths["window"] and widths["dag"] > widths["box"], widths
    tab.keep("serve-run.png")
    tab.goto("/runs")
    assert tab.page.locator('tr[data-run-id="m1"]').count() == 1
    tab.keep("serve-runs.png")


def test_cancel_stops_a_run_live_in_another_process(server: Server, tab: Tab) -> None:
    tab.goto("/runs")
    live(tab)
    child = server.start("slow", "c1")
    # the runs page shows the new run without a reload; its link opens it
    tab.page.click('tr[data-run-id="c1"] a', timeout=30_000)
    server.wait_for("c1", "running")
    live(tab)
    tab.page.click("#cancel")
    tab.page.wait_for_selector('#run-status:text("cancelled")', timeout=30_000)
    assert child.wait(timeout=30) is not None
    assert server.status("c1") == "cancelled"


def test_without_the_token_every_page_is_401(server: Server, browser: Browser) -> None:  # noqa: F811
    page = browser.new_page()
    try:
        response = page.goto(server.base + "/runs")
        assert response is not None and response.status == 401
        assert "needs the token" in page.inner_text("body")
    finally:
        page.close()


def test_a_post_from_another_origin_is_refused(server: Server) -> None:
    import httpx2  # noqa: PLC0415

    session = httpx2.Client(base_url=server.base, follow_redirects=False)
    signed_in = session.get(f"/runs?token={TOKEN}")
    assert signed_in.status_code == 303
    server.start("gate", "o1").wait(timeout=60)
    page = session.get("/runs/o1").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    refused = session.post(
        "/runs/o1/cancel", data={"csrf": csrf.group(1)}, headers={"Origin": "http://evil.example"}
    )
    assert refused.status_code == 403
    assert server.status("o1") == "paused"


def test_a_link_holder_answers_a_run_live_in_another_process_and_it_finishes(
    server: Server,
    tab: Tab,
    browser: Browser,  # noqa: F811
) -> None:
    child = server.start("waiting", "w1")
    tab.goto("/inbox")
    live(tab)
    tab.page.wait_for_selector('.question-item[data-run-id="w1"]', timeout=30_000)
    assert server.status("w1") == "running"  # live, waiting, in the other process
    link = tab.page.locator('.question-item[data-run-id="w1"] input.share').input_value()
    tab.goto("/runs/w1")
    live(tab)

    # Someone with only the link (no token, no cookie): that question and nothing else.
    stranger = browser.new_context().new_page()
    try:
        stranger.goto(link)
        stranger.fill("#answered_by", "Grace")
        stranger.check('input[name="answer.send"][value="false"]')
        stranger.select_option('select[name="answer.currency"]', '"USD"')
        stranger.fill('input[name="answer.billing.city"]', "Rome")
        stranger.click("#submit")
        stranger.wait_for_selector("text=your answer was recorded", timeout=30_000)
        response = stranger.goto(server.base + "/runs/w1")
        assert response is not None and response.status == 401
    finally:
        stranger.context.close()

    assert child.wait(timeout=60) == 0
    tab.page.wait_for_selector('#run-status:text("succeeded")', timeout=30_000)
    assert tab.page.evaluate("performance.getEntriesByType('navigation').length") == 1
    with open_store(server.store) as store:
        (request,) = store.load_requests("w1")
    assert request.answered and request.answered_by == "Grace" and request.answered_via == "web"


def test_markup_from_a_run_is_shown_as_text(server: Server, tab: Tab) -> None:
    dialogs: list[str] = []
    tab.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server.start("evil", "e1").wait(timeout=60)
    evil = "<script>alert(1)</script>"
    for path in (
        "/runs",
        "/runs/e1",
        "/inbox",
        "/runs/e1/questions/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ):
        tab.goto(path)
        text = tab.page.inner_text("body")
        assert evil in text, path  # shown, as text
        assert tab.page.locator("main script, main img").count() == 0, path
    tab.goto("/runs/e1")
    assert "<img src=x onerror=alert(3)>" in tab.page.inner_text(".failures")
    assert dialogs == []

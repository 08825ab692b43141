"""Fixtures for the CLI tests: stored targets under the tests' temporary directory are trusted;
for the report tests, real runs in real stores, and a real browser to look at them.

The browser is the system's Chromium (Debian's ``chromium`` package), driven by Playwright
without Playwright's own browser download. When either is missing the browser tests are skipped
with one line that says what to install -- or fail, under ``CI=true`` (``tests/_unavailable.py``).

Playwright's sync API keeps an event loop running in the test thread, where ``plait.run`` refuses
to start; :func:`in_thread` runs a workflow in a worker thread instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from _unavailable import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

T = TypeVar("T")

INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
INSTALL_PLAYWRIGHT = "pip install -e '.[dev]' (it has playwright; never `playwright install`)"

#: Where screenshots and measurements are kept for people to look at (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(autouse=True)
def trusted_targets(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plait resume` trusts the targets that runs recorded under the tests' temporary
    directory (it imports a stored target only from the current directory or PLAIT_PATH)."""
    monkeypatch.setenv("PLAIT_PATH", str(tmp_path_factory.getbasetemp()))


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()``, called in a worker thread (see the module docstring)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


#: The names a Chromium browser goes by on PATH.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str:
    """The system Chromium ($PLAIT_TEST_CHROMIUM, else one on PATH); skips the test (fails it
    under CI=true), saying how to install one, when there is none."""
    path = os.environ.get("PLAIT_TEST_CHROMIUM") or next(
        (found for name in CHROMIUM_NAMES if (found := shutil.which(name))), "/usr/bin/chromium"
    )
    if not Path(path).exists():
        unavailable(
            f"no Chromium (looked for {path!r}); to run the report's browser tests, install it "
            f"({INSTALL_CHROMIUM}) or set PLAIT_TEST_CHROMIUM to a browser"
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, for one test module: playwright's sync API runs an event loop in this thread
    while it is open, and plait.run() (rightly) refuses to start inside a running loop."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - fail, not error
    except ImportError:
        unavailable(
            f"no playwright package; to run the report's browser tests: {INSTALL_PLAYWRIGHT}"
        )
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable)
        except Exception as error:
            pytest.fail(
                f"Chromium at {executable!r} did not start ({error}); reinstall it: "
                f"{INSTALL_CHROMIUM}",
                pytrace=False,
            )
        yield launched
        launched.close()


@dataclass
class Opened:
    """A report open in a browser tab, with everything the page complained about."""

    page: Page
    url: str
    load_seconds: float
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    dialogs: list[str] = field(default_factory=list)  # alert() & co: must never happen
    requests: list[str] = field(default_factory=list)  # every URL the page fetched

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


@pytest.fixture
def open_report(browser: Browser) -> Iterator[Callable[[Path], Opened]]:
    """Open a report file in a new 1360x900 tab; the tab closes after the test."""
    import time  # noqa: PLC0415

    pages: list[Page] = []

    def open_(path: Path) -> Opened:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        pages.append(page)
        opened = Opened(page=page, url=path.resolve().as_uri(), load_seconds=0.0)
        page.on(
            "console",
            lambda m: (
                opened.errors.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: opened.errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: opened.requests.append(r.url))

        def on_dialog(dialog: Any) -> None:
            opened.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        started = time.perf_counter()
        page.goto(opened.url, wait_until="load")
        opened.load_seconds = time.perf_counter() - started
        return opened

    yield open_
    for page in pages:
        page.close()

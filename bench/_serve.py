"""Part 9: ``plait serve`` -- event to screen, the runs page, a big run page in a browser.

Everything runs against the real server (``plait serve --port 0`` in a child process) over a
SQLite store made for the purpose:

- **Event to screen** (target p95 <= 0.5 s with 20 clients): a run is recorded live by this
  process as its owner would record it; 20 simulated browsers each hold the run's server-sent
  event stream open and, on each ``change``, fetch the run's part of the page (what the page's
  script does). Each of :data:`WRITES` writes (one task finished, one event) is timed from just
  after its commit to the moment each client has the part that shows it.
- **Runs page over 10,000 runs** (target <= 100 ms server time): the first page, a filtered
  page and the 100th page (by cursor), each requested :data:`PAGE_REPEATS` times; the time is
  the whole request on the loopback (query, rendering, transfer), with the store query's own
  share from the ``Server-Timing`` header beside it.
- **A 2,000-task run page in Chromium** (target <= 1 s): real 2,000-task runs (a layered
  graph of no-op tasks), opened in the system Chromium until its ``load`` event, median of
  :data:`BROWSER_REPEATS` runs, each opened for the first time (the target: the server renders
  it) and then again (the server keeps a rendered run per version). Skipped, saying so, without
  Chromium or Playwright.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _report import Ledger, heading, num, table, verdict

import plait
from plait.stores import EventRecord, RunRecord, TaskRecord, WriteBatch, open_store

CLIENTS = 20
WRITES = 20
RUNS = 10_000
PAGE_REPEATS = 20
BROWSER_REPEATS = 3
BIG_RUN = 2_000
TOKEN = "bench-token-0123456789"

EVENT_TARGET = 0.5
PAGE_TARGET = 0.100
BROWSER_TARGET = 1.0


@contextmanager
def _server(store: str, directory: Path) -> Iterator[str]:
    env = {**os.environ, "PLAIT_UI_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "serve", "--store", store, "--port", "0"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed = process.stdout.readline() + process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)/", printed)
    if found is None:
        process.kill()
        raise RuntimeError(f"plait serve did not start: {printed}{process.stdout.read()}")
    try:
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _live_run(store_url: str, run_id: str, tasks: int) -> None:
    now = time.time()
    definition = [{"id": f"t{i:04d}", "depends_on": [], "function": "bench"} for i in range(tasks)]
    with open_store(store_url) as store:
        store.create_run(
            RunRecord(
                run_id=run_id,
                workflow="bench-live",
                fingerprint="bench",
                definition=definition,
                config={},
                status=plait.RunStatus.RUNNING,
                created_at=now,
                updated_at=now,
                owner="bench",
                lease_expires_at=now + 3600,
            )
        )


async def _event_to_screen(base: str, store_url: str) -> list[float]:
    import httpx2  # noqa: PLC0415 - a dev dependency

    run_id = "live"
    _live_run(store_url, run_id, tasks=WRITES)
    written: dict[int, float] = {}  # write number -> when its commit returned
    latencies: list[float] = []
    done = asyncio.Event()
    ready = 0
    all_ready = asyncio.Event()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def client() -> None:
        nonlocal ready
        async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            seen = 0
            async with http.stream("GET", f"/runs/{run_id}/live") as stream:
                counted = False
                async for line in stream.aiter_lines():
                    if not counted and line.startswith("retry"):
                        counted = True
                        ready += 1
                        if ready == CLIENTS:
                            all_ready.set()
                    if line != "event: change":
                        continue
                    part = (await http.get(f"/runs/{run_id}/part")).text
                    got = time.perf_counter()
                    shown = len(re.findall(r"<b>(\d+)</b> succeeded", part))
                    match = re.search(r"<b>(\d+)</b> succeeded", part)
                    count = int(match.group(1)) if match and shown else 0
                    for n in range(seen + 1, count + 1):
                        if n in written:
                            latencies.append(got - written[n])
                    seen = max(seen, count)
                    if seen >= WRITES:
                        return

    clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
    await asyncio.wait_for(all_ready.wait(), 60)
    await asyncio.sleep(0.5)
    with open_store(store_url) as store:
        for n in range(1, WRITES + 1):
            now = time.time()
            task_id = f"t{n - 1:04d}"
            batch = WriteBatch(
                tasks=[
                    TaskRecord(
                        task_id=task_id,
                        status=plait.TaskStatus.SUCCEEDED,
                        attempts=1,
                        output=b"null",
                        started_at=now - 0.01,
                        finished_at=now,
                    )
                ],
                events=[EventRecord(kind="task_succeeded", time=now, task_id=task_id)],
            )
            await asyncio.to_thread(store.write, run_id, "bench", batch)
            written[n] = time.perf_counter()
            await asyncio.sleep(0.4)  # apart, so that each write is timed on its own
    await asyncio.wait_for(asyncio.gather(*clients), 60)
    done.set()
    return latencies


def _many_runs(store_url: str) -> None:
    now = time.time() - RUNS
    with open_store(store_url) as store:
        for i in range(RUNS):
            status = (plait.RunStatus.SUCCEEDED, plait.RunStatus.FAILED)[i % 7 == 0]
            store.create_run(
                RunRecord(
                    run_id=f"r{i:05d}",
                    workflow=f"flow{i % 10}",
                    fingerprint="bench",
                    definition=[{"id": "a", "depends_on": [], "function": "bench"}],
                    config={},
                    status=status,
                    created_at=now + i,
                    updated_at=now + i,
                    finished_at=now + i,
                    error="1 task(s) failed" if status is plait.RunStatus.FAILED else None,
                )
            )


def _hundredth_page(base: str) -> str:
    """The address of the 100th page of runs, by following 99 cursors."""
    import httpx2  # noqa: PLC0415

    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        cursor = ""
        for _ in range(99):
            page = http.get("/runs" + (f"?before={cursor}" if cursor else "")).text
            found = re.search(r'href="/runs\?before=([^"&]+)" rel="next"', page)
            assert found is not None
            cursor = found.group(1)
    return f"/runs?before={cursor}"


def _pages(base: str, pages: list[tuple[str, str]]) -> list[list[str]]:
    """For each (name, path): the median and p95 of the whole request, and the store's share."""
    import httpx2  # noqa: PLC0415

    rows: list[list[str]] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as http:
        for name, path in pages:
            totals, stores = [], []
            for _ in range(PAGE_REPEATS):
                started = time.perf_counter()
                response = http.get(path)
                totals.append(time.perf_counter() - started)
                assert response.status_code == 200
                timing = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
                stores.append(float(timing.group(1)) / 1000 if timing else float("nan"))
            rows.append(
                [
                    name,
                    num(statistics.median(totals) * 1000),
                    num(sorted(totals)[int(0.95 * (len(totals) - 1))] * 1000),
                    num(statistics.median(stores) * 1000, 2),
                ]
            )
    return rows


def _big_run(store_url: str, run_id: str) -> str:
    wf = plait.Workflow("big")
    for i in range(BIG_RUN):
        layer = i // 100
        deps = [f"t{(layer - 1) * 100 + (i + k) % 100:04d}" for k in (0, 1)] if layer else []
        wf.add_task(f"t{i:04d}", lambda: None, depends_on=deps)
    return plait.run(wf, store=store_url, run_id=run_id, max_concurrency=8).run_id


def _browser_seconds(base: str, run_ids: list[str]) -> tuple[list[float], list[float]] | str:
    """(first loads, second loads) of each run's page: the first renders the run on the server,
    the second finds it rendered (a finished run's page is kept per version)."""
    chromium = os.environ.get("PLAIT_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not chromium:
        return "no Chromium on PATH"
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        return "no playwright package"
    first: list[float] = []
    again: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{base}/?token={TOKEN}")
        for seconds in (first, again):
            for run_id in run_ids:
                started = time.perf_counter()
                page.goto(f"{base}/runs/{run_id}", wait_until="load")
                page.wait_for_selector(".gantt .row")
                seconds.append(time.perf_counter() - started)
        browser.close()
    return first, again


def run_part9(ledger: Ledger, log: Callable[[str], None]) -> None:
    """Measure, print the tables, and record the three targets."""
    print(heading("Part 9: plait serve (the real server, a SQLite store)"))
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        store_url = f"sqlite:///{directory / 'plait.db'}"
        open_store(store_url, create=True).close()
        log(f"part 9: {RUNS:,} runs, a {BIG_RUN:,}-task run")
        _many_runs(store_url)
        with _server(store_url, directory) as base:
            log(f"part 9: event to screen, {CLIENTS} clients x {WRITES} writes")
            latencies = asyncio.run(_event_to_screen(base, store_url))
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            print(
                table(
                    ["event to screen", "clients", "samples", "p50 ms", "p95 ms", "max ms"],
                    [
                        [
                            "write -> part fetched",
                            str(CLIENTS),
                            str(len(latencies)),
                            num(p50 * 1000),
                            num(p95 * 1000),
                            num(latencies[-1] * 1000),
                        ]
                    ],
                )
            )
            target = ledger.add(
                f"serve: event to screen p95, {CLIENTS} SSE clients",
                f"<= {EVENT_TARGET * 1000:.0f} ms",
                f"{p95 * 1000:.0f} ms",
                p95 <= EVENT_TARGET,
            )
            print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")

            log("part 9: the runs page")
            rows = _pages(
                base,
                [
                    ("first page (50 runs)", "/runs"),
                    ("status=failed, workflow=flow3", "/runs?status=failed&workflow=flow3"),
                    ("100th page (by cursor)", _hundredth_page(base)),
                ],
            )
            # Made now, so that the pages above show 10,000 runs of one task each.
            bigs = [_big_run(store_url, f"big{i}") for i in range(BROWSER_REPEATS)]
            heavy = _pages(base, [("first page, three 2,000-task runs on it", "/runs")])
            print()
            print(
                table(["runs page over 10,000 runs", "median ms", "p95 ms", "store query ms"], rows)
            )
            worst = max(float(row[2].replace(",", "")) for row in rows) / 1000
            target = ledger.add(
                f"serve: runs page over {RUNS:,} runs (p95, whole request)",
                f"<= {PAGE_TARGET * 1000:.0f} ms",
                f"{worst * 1000:.0f} ms",
                worst <= PAGE_TARGET,
            )
            print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")
            print(table(["(not a target)", "median ms", "p95 ms", "store query ms"], heavy))
            print(
                "  (a store reads each run's whole definition with its record: a page that lists "
                "big runs pays for them)"
            )

            log(f"part 9: a {BIG_RUN:,}-task run page in Chromium")
            loads = _browser_seconds(base, bigs)
            print()
            if isinstance(loads, str):
                print(f"  {BIG_RUN:,}-task run page in Chromium: skipped ({loads})")
                return
            rows = [
                [
                    what,
                    str(len(seconds)),
                    num(statistics.median(seconds) * 1000, 0),
                    num(max(seconds) * 1000, 0),
                ]
                for what, seconds in (
                    ("first load (rendered on the server)", loads[0]),
                    ("second load (rendered before)", loads[1]),
                )
            ]
            print(
                table(
                    [f"{BIG_RUN:,}-task run page, request -> load", "runs", "median ms", "max ms"],
                    rows,
                )
            )
            median = statistics.median(loads[0])
            target = ledger.add(
                f"serve: a {BIG_RUN:,}-task run page in Chromium (first load)",
                f"<= {BROWSER_TARGET:.0f} s",
                f"{median:.2f} s",
                median <= BROWSER_TARGET,
            )
            print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")

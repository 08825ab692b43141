"""Part 3c: how fast a cancel reaches a live run through its store.

A run is started in a child process (the owner), on the SQLite store and on the PostgreSQL
store, in two states: *idle* (one task sleeping: the recorder only wakes on its timer) and
*busy* (20,000 sync tasks of 2 ms in chains of 10, 8 at a time: the recorder writes a batch of
some 400 changes every 0.1 s). Once the run's first task has started, this process sends a
cancel request and calls ``plait.cancel`` at once, and measures

- *request -> taken*: from the request written to the store (its ``sent_at``) to the owner
  taking it (``taken_at``; both stamped on this host's clock): the channel's latency, promised
  to be under 1 s on any host;
- *request -> recorded*: from just before the request is written to ``plait.cancel`` returning,
  which it does once the run is recorded ``cancelled`` (it looks every 0.05 s): what a user
  waits for. It includes stopping the run and writing every task's final state -- for the busy
  run, some 20,000 tasks recorded cancelled in the last batch.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _report import Ledger, heading, num, table
from _stores import POSTGRES_URL, _drop_schema

import plait
from plait._requests import RequestKind, RequestState, send
from plait.stores import open_store

REPEATS = 5
LIMIT = 1.0  # seconds from a request written to the owner taking it, on any host

OWNER = """
import sys, time, asyncio, plait
url, run_id, load = sys.argv[1:4]
wf = plait.Workflow("cancel-bench")
if load == "idle":
    async def wait():
        await asyncio.sleep(120)
    wf.add_task("wait", wait)
else:
    for i in range(20_000):
        wf.add_task(
            f"t{i}", lambda: time.sleep(0.002), depends_on=[f"t{i - 1}"] if i % 10 else []
        )
started = False
def tell(event):
    global started
    if not started and isinstance(event, plait.TaskStarted):
        started = True
        print("started", flush=True)
result = plait.run(wf, run_id=run_id, store=url, subscribers=[tell], max_concurrency=8)
print(result.status, flush=True)
"""


def _measure(url: str, load: str) -> tuple[float, float]:
    """One cancel of a run in ``load``: (request -> taken, request -> recorded) in seconds."""
    run_id = f"cancel-{uuid.uuid4().hex[:8]}"
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER), url, run_id, load],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        if owner.stdout.readline().strip() != "started":
            raise RuntimeError(f"the owner did not start: {owner.communicate()[1]}")
        time.sleep(0.3)  # let it settle into its state (a busy run: writing batches)
        with open_store(url) as store:
            live = store.get_run(run_id)
            assert live is not None and live.owner is not None
            started = time.perf_counter()
            sent = send(store, run_id, live.owner, RequestKind.CANCEL)
            record = plait.cancel(run_id, store=store)
            call = time.perf_counter() - started
            if record.status is not plait.RunStatus.CANCELLED:
                raise RuntimeError(f"the run ended {record.status}, not cancelled")
            request = store.get_request(run_id, sent.request_id)
        assert request is not None and request.state is RequestState.DONE
        assert request.taken_at is not None
        owner.communicate(timeout=60)
        return request.taken_at - request.sent_at, call
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def run_cancel(ledger: Ledger, log: Callable[[str], None], *, repeats: int = REPEATS) -> None:
    """Run and print Part 3c; record its target in ``ledger``."""
    print(heading("Part 3c - cancel latency through the store"))
    print(
        f"plait.cancel of a run live in another process, {repeats} times each; median and worst, "
        "in ms.\ntaken: the owner took the request; recorded: plait.cancel returned, the run "
        "recorded cancelled."
    )
    schema = f"plait_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="plait-bench-"))
    urls = {
        "sqlite": f"sqlite://{folder / 'cancel.db'}",
        "postgres": f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}",
    }
    rows = []
    worst = 0.0
    try:
        for name, url in urls.items():
            for load in ("idle", "busy"):
                log(f"part 3c: {name} {load}")
                taken, recorded = zip(*(_measure(url, load) for _ in range(repeats)), strict=True)
                worst = max(worst, *taken)
                rows.append(
                    [
                        name,
                        load,
                        num(statistics.median(taken) * 1e3, 0),
                        num(max(taken) * 1e3, 0),
                        num(statistics.median(recorded) * 1e3, 0),
                        num(max(recorded) * 1e3, 0),
                    ]
                )
    finally:
        _drop_schema(schema)
    print(
        table(
            ["store", "run", "request -> taken", "worst", "request -> recorded", "worst"],
            rows,
        )
    )
    ledger.add(
        "cancel: request -> taken by a live run's owner",
        f"<= {LIMIT:.0f} s",
        f"worst {worst * 1e3:.0f} ms",
        worst <= LIMIT,
    )

"""Part 3d: how fast an answer reaches a run live in another process through its store.

A run is started in a child process (the owner) with ``wait_for_input=True``, on the SQLite store
and on the PostgreSQL store: a chain of tasks that each ask a yes/no question (a ``pause``), so
the run stays live and idle while it waits (its recorder only wakes on its timer). For each
question, once it is in the store, this process calls ``plait.answer`` and measures

- *request -> taken*: from the ``answer`` request written to the store (its ``sent_at``) to the
  owner taking it (``taken_at``; both stamped on this host's clock): the channel's latency, the
  same as a cancel's (part 3c), promised to be under 1 s on any host;
- *call*: ``plait.answer`` from its call to its return, which it does once the owner has written
  the request's outcome (``answered``) with the answer (it looks every 0.05 s): what a web
  handler or a script waits for.
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
import plait._answers
import plait._requests
from plait._requests import RequestState, RunRequest
from plait.stores import open_store

REPEATS = 8
LIMIT = 1.0  # seconds from an answer request written to the owner taking it, on any host

OWNER = """
import sys, plait
url, run_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
wf = plait.Workflow("answer-bench")
for n in range(count):
    wf.add_task(
        f"q{n}",
        lambda ctx: ctx.input,
        pause=plait.Pause("Go on?", schema={"type": "boolean"}),
        depends_on=[f"q{n - 1}"] if n else [],
    )
result = plait.run(wf, run_id=run_id, store=url, wait_for_input=True)
print(result.status, flush=True)
"""


def _measure(url: str, count: int) -> list[tuple[float, float]]:
    """Answer ``count`` questions of a live run, one by one: (request -> taken, call) each."""
    run_id = f"answer-{uuid.uuid4().hex[:8]}"
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER), url, run_id, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sent: list[RunRequest] = []
    send = plait._requests.send

    def keep(*args: object, **kwargs: object) -> RunRequest:
        sent.append(send(*args, **kwargs))  # type: ignore[arg-type]
        return sent[-1]

    plait._answers.send = keep  # type: ignore[assignment]
    measured = []
    try:
        with open_store(url) as store:
            for n in range(count):
                deadline = time.monotonic() + 30
                while not any(q.task_id == f"q{n}" for q in store.open_questions()):
                    if time.monotonic() > deadline or owner.poll() is not None:
                        raise RuntimeError(f"the owner did not ask: {owner.communicate()[1]}")
                    time.sleep(0.005)
                started = time.perf_counter()
                plait.answer(run_id, f"q{n}", True, store=store, timeout=30)
                call = time.perf_counter() - started
                request = store.get_request(run_id, sent[-1].request_id)
                assert request is not None and request.state is RequestState.DONE
                assert request.outcome == "answered" and request.taken_at is not None
                measured.append((request.taken_at - request.sent_at, call))
        out, err = owner.communicate(timeout=60)
        if out.strip() != "succeeded":
            raise RuntimeError(f"the run ended {out.strip()!r}: {err}")
        return measured
    finally:
        plait._answers.send = send
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def run_answer(ledger: Ledger, log: Callable[[str], None], *, repeats: int = REPEATS) -> None:
    """Run and print Part 3d; record its target in ``ledger``."""
    print(heading("Part 3d - answer latency through the store"))
    print(
        f"plait.answer to a run live in another process (wait_for_input=True), {repeats} "
        "questions each; median and worst, in ms.\ntaken: the owner took the request; call: "
        "plait.answer returned, the answer recorded and the task going on."
    )
    schema = f"plait_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="plait-bench-"))
    urls = {
        "sqlite": f"sqlite://{folder / 'answer.db'}",
        "postgres": f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}",
    }
    rows = []
    worst = 0.0
    try:
        for name, url in urls.items():
            log(f"part 3d: {name}")
            taken, calls = zip(*_measure(url, repeats), strict=True)
            worst = max(worst, *taken)
            rows.append(
                [
                    name,
                    num(statistics.median(taken) * 1e3, 0),
                    num(max(taken) * 1e3, 0),
                    num(statistics.median(calls) * 1e3, 0),
                    num(max(calls) * 1e3, 0),
                ]
            )
    finally:
        _drop_schema(schema)
    print(table(["store", "request -> taken", "worst", "call", "worst"], rows))
    ledger.add(
        "answer: request -> taken by a live run's owner",
        f"<= {LIMIT:.0f} s",
        f"worst {worst * 1e3:.0f} ms",
        worst <= LIMIT,
    )

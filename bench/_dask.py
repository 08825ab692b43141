"""Part 8: plait on a Dask cluster (``DaskExecutor``), against Dask alone on the same cluster.

One ``LocalCluster`` of two single-threaded worker processes is started before any clock, and
every contender uses it; contenders alternate repetition by repetition and the best time of
each is kept (a shared machine's drift hits them alike).

- **CPU-bound**: 16 tasks of ~0.25 s of pure-Python work (CPU time, calibrated here),
  ``max_concurrency=2``: the thread executor (one GIL) against Dask's two processes. Target:
  Dask >= 1.5x faster. The workers are this process's children: with Linux's autogroup they
  share one slice of a busy machine with it, so only an idle machine shows the speedup.
- **Independent no-ops**: plait against ``client.submit`` of the same tasks, all at once, then
  waiting for them. plait keeps at most the executor's ``capacity`` attempts on the cluster
  (nothing queues blindly inside Dask): by default a window of two to eight per worker thread,
  wide while attempts are short, so a thread does not idle through the round trip of each
  completion; it is shown with the default window and with a fixed capacity of 4x the
  threads. Target (default window): within 1.3x. Each run of plait starts with the narrowest
  window and widens it as its attempts come back.
- **Chains of no-ops**: plait against a loop that submits each task when its dependency
  completes, passing the future (what an orchestrator that decides step by step can do), with
  Dask's submit-everything-up-front figure beside it. Target: within 1.3x of the loop.
- **Data stays on the cluster**: a chain of 10 tasks passing 100 MB values, run with the memory
  store in a child process (the orchestrator), whose peak RSS is compared with the same chain
  passing 1 kB values. Target: at most +100 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

from _report import Ledger, heading, num, ratio, table, verdict

import plait

CPU_TASKS = 16
CPU_TARGET = 1.5
OVERHEAD_TARGET = 1.3
RSS_TARGET_MB = 100.0
CHAIN_MB = 100
CHAIN_LENGTH = 10


def spin(seconds: float = 0.25) -> int:
    """About ``seconds`` of pure-Python CPU work (calibrated by :func:`calibrate`; the count
    travels to the workers with the function, pickled by value)."""
    total = 0
    for i in range(int(seconds * _LOOPS_PER_SECOND)):
        total += i * i % 7
    return total


_LOOPS_PER_SECOND = 10_000_000


def calibrate() -> int:
    """Loop iterations per CPU second of :func:`spin`'s body in this process (CPU time, so that
    a busy machine does not shrink the work; the thread executor is the reference)."""
    n = 2_000_000
    started = time.process_time()
    total = 0
    for i in range(n):
        total += i * i % 7
    return int(n / max(time.process_time() - started, 1e-6))


def noop() -> int:
    return 1


def step(previous: int) -> int:
    return previous + 1


def chained(**inputs: int) -> int:
    """A chain's task in plait: its one input, whatever its dependency is called."""
    return sum(inputs.values()) + 1


def _best(contenders: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best wall time of each contender over ``repeats`` interleaved rounds."""
    best = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def _workflow(n: int, chain: bool, fn: Callable[..., Any] = noop) -> plait.Workflow:
    wf = plait.Workflow("dask-bench")
    wf.add_task("t0", fn)
    for i in range(1, n):
        if chain:
            wf.add_task(f"t{i}", chained, depends_on=[f"t{i - 1}"])
        else:
            wf.add_task(f"t{i}", fn)
    return wf


def _plait_on(executor: Any, wf_factory: Callable[[], plait.Workflow], **options: Any) -> None:
    result = plait.run(
        wf_factory(),
        executors={"dask": executor},
        default_executor="dask",
        **options,
    )
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"the benchmark's run did not succeed: {result.error}")


def run_part8(ledger: Ledger, log: Callable[[str], None], *, quick: bool = False) -> None:
    """Start the cluster, measure, print the tables and record the targets."""
    import cloudpickle  # noqa: PLC0415
    from distributed import Client, LocalCluster, wait  # noqa: PLC0415 - the optional extra

    from plait.executors import DaskExecutor  # noqa: PLC0415

    global _LOOPS_PER_SECOND
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import bench/
    log("part 8: starting a LocalCluster (2 worker processes, 1 thread each)")
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster)  # the default client: distributed.wait() looks for it
    executor = DaskExecutor(client)
    wide = DaskExecutor(client, capacity=4 * sum(client.nthreads().values()))
    try:
        _LOOPS_PER_SECOND = calibrate()
        print(heading("Part 8: plait on Dask (LocalCluster: 2 worker processes x 1 thread)"))

        # -- CPU-bound ---------------------------------------------------------------------
        log("part 8: CPU-bound tasks, thread executor against Dask")
        cpu = _best(
            {
                "thread executor": lambda: _check(
                    plait.run(_workflow(CPU_TASKS, False, spin), max_concurrency=2)
                ),
                "Dask executor": lambda: _plait_on(
                    executor, lambda: _workflow(CPU_TASKS, False, spin), max_concurrency=2
                ),
            },
            repeats=1 if quick else 5,
        )
        speedup = cpu["thread executor"] / cpu["Dask executor"]
        print(
            table(
                ["16 x 0.25 s pure Python, max_concurrency=2", "wall s"],
                [[name, num(seconds, 2)] for name, seconds in cpu.items()],
            )
        )
        print(
            f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: the workers are"
            " children of this process, so with Linux's autogroup they share its CPU share;"
            " on a busy machine that caps Dask's speedup, whatever plait does)"
        )
        target = ledger.add(
            "Dask: CPU-bound speedup over threads",
            f">= {CPU_TARGET}x",
            ratio(speedup),
            speedup >= CPU_TARGET,
        )
        print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")

        # -- no-op overhead: independent tasks and chains --------------------------------------
        n_wide, n_chain = (100, 30) if quick else (400, 100)
        repeats = 2 if quick else 5
        log(f"part 8: {n_wide} independent no-ops, {n_chain}-task chains")

        def submit_all() -> None:
            wait([client.submit(noop, pure=False) for _ in range(n_wide)])

        def chain_step_by_step() -> None:
            future = client.submit(noop, pure=False)
            for _ in range(n_chain - 1):
                wait([future])
                future = client.submit(step, future, pure=False)
            future.result()

        def chain_up_front() -> None:
            future = client.submit(noop, pure=False)
            for _ in range(n_chain - 1):
                future = client.submit(step, future, pure=False)
            future.result()

        times = _best(
            {
                "independent: client.submit, all at once": submit_all,
                "independent: plait": lambda: _plait_on(
                    executor, lambda: _workflow(n_wide, False), max_concurrency=64
                ),
                "independent: plait, capacity 4x threads": lambda: _plait_on(
                    wide, lambda: _workflow(n_wide, False), max_concurrency=64
                ),
                "chain: submit when the dependency is done": chain_step_by_step,
                "chain: plait": lambda: _plait_on(executor, lambda: _workflow(n_chain, True)),
                "chain: submit everything up front": chain_up_front,
            },
            repeats,
        )
        sizes = {"independent": n_wide, "chain": n_chain}
        rows = []
        for name, seconds in times.items():
            per_task = seconds / sizes[name.split(":")[0]] * 1000
            rows.append([name, num(seconds * 1000, 0), num(per_task, 2)])
        print(table(["contender", "wall ms", "ms per task"], rows))
        independent = times["independent: plait"] / times["independent: client.submit, all at once"]
        chained = times["chain: plait"] / times["chain: submit when the dependency is done"]
        for name, measured in (
            ("Dask: independent no-ops vs client.submit", independent),
            ("Dask: chain vs submit-when-done", chained),
        ):
            target = ledger.add(
                name, f"<= {OVERHEAD_TARGET}x", ratio(measured), measured <= OVERHEAD_TARGET
            )
            print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")
        wide_ratio = (
            times["independent: plait, capacity 4x threads"]
            / times["independent: client.submit, all at once"]
        )
        print(f"  (independent, capacity 4x threads: {ratio(wide_ratio)} of client.submit)")

        # -- data stays on the cluster -----------------------------------------------------------
        log(f"part 8: a {CHAIN_LENGTH}-task chain of {CHAIN_MB} MB values, orchestrator RSS")
        address = cluster.scheduler_address
        small = _peak_rss_mb(address, 1_000)
        big = _peak_rss_mb(address, CHAIN_MB * 1_000_000)
        print(
            table(
                [f"{CHAIN_LENGTH}-task chain, memory store: orchestrator", "peak RSS MB"],
                [
                    ["passing 1 kB values", num(small, 0)],
                    [f"passing {CHAIN_MB} MB values", num(big, 0)],
                ],
            )
        )
        grown = big - small
        target = ledger.add(
            f"Dask: orchestrator RSS, {CHAIN_MB} MB x {CHAIN_LENGTH} chain",
            f"<= +{RSS_TARGET_MB:.0f} MB",
            f"+{grown:.0f} MB",
            grown <= RSS_TARGET_MB,
        )
        print(f"  {target.name}: {target.measured} ({verdict(target.ok)})")
    finally:
        # In order: plait's executors (their futures, their settling threads), the workers'
        # last words, the client, then the cluster (its workers, then its scheduler).
        for made in (executor, wide):
            made.shutdown()
        client.run(_quiet_heartbeat_at_close)
        client.close()
        cluster.close()


def _quiet_heartbeat_at_close() -> None:
    """On each worker, as the cluster closes: drop the error a closing worker logs, with its
    traceback, when its own heartbeat is in flight as it closes its connections (a race inside
    ``Worker.close``, dask/distributed; a busy machine makes the heartbeat slow enough to lose
    it). Nothing else is silenced."""
    import logging  # noqa: PLC0415 - runs on a worker

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not record.getMessage().startswith("Failed to communicate with scheduler")

    logging.getLogger("distributed.worker").addFilter(_Filter())


def _check(result: plait.RunResult) -> None:
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"the benchmark's run did not succeed: {result.error}")


_CHILD = textwrap.dedent(
    """
    import resource, sys
    import plait
    from distributed import Client
    from plait.executors import DaskExecutor

    def make(size: int) -> bytes:
        return bytes(size)

    def grow(**inputs: bytes) -> bytes:
        (previous,) = inputs.values()
        return previous[:-1] + b"x"

    if __name__ == "__main__":
        address, size = sys.argv[1], int(sys.argv[2])
        wf = plait.Workflow("rss")
        wf.add_task("t0", make, params={"size": size})
        for i in range(1, LENGTH):
            wf.add_task(f"t{i}", grow, depends_on=[f"t{i - 1}"])
        with Client(address, set_as_default=False) as client:
            result = plait.run(
                wf, executors={"dask": DaskExecutor(client)}, default_executor="dask"
            )
            assert result.status is plait.RunStatus.SUCCEEDED, result.error
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
).replace("LENGTH", str(CHAIN_LENGTH))


def _peak_rss_mb(address: str, size: int) -> float:
    """Peak RSS (MB) of an orchestrator process that runs the chain with ``size``-byte values."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, address, str(size)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the RSS child failed: {done.stderr[-2000:]}")
    kilobytes = int(done.stdout.strip().splitlines()[-1])
    return kilobytes / 1024  # ru_maxrss is in kilobytes on Linux

"""Part 10: what trigger rules cost a run that uses none of them.

Every task is on the default rule (``all_success``), so a run does what it did before trigger
rules existed: the question is only whether deciding through one evaluator for every rule
(:func:`plait._rules.decide`, once per edge) slowed the scheduler down.

The comparison is made in one invocation, against another commit's source (``PLAIT_BENCH_BASELINE``,
default: the merge base of ``HEAD`` and ``main``), extracted with ``git archive`` into a temporary
directory. Each measurement is a fresh child process (``python _rules.py CHILD SRC SHAPE N``) with
``PYTHONPATH`` set to one source tree or the other; the two alternate (A B A B ...), so a change
in the machine's load hits both. A child runs ``plait.run`` of Part 1's graphs with the garbage
collector off and reports the CPU time per task of its best repeat; the part reports, per side,
the best and the median over its children, and judges the ratio of the bests (on a loaded
machine the best is what other processes disturb least).

Mapped tasks (the rest of the issue's Part 10: 10,000 mapped instances against 10,000 static
tasks, 100,000 instances under 300 MB) are measured by ``_mapped.py``, in the same part.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _report import Ledger, heading, table

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("chain", "layered")
#: Child processes per side and shape, and repeats inside each child.
CHILDREN = 5
REPEATS = 3
#: How far the default rule may be from before: Part 1's run-to-run noise on this machine.
NOISE = 0.10


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def baseline_revision() -> str | None:
    """The commit to compare with: ``PLAIT_BENCH_BASELINE``, else the merge base with main."""
    revision = os.environ.get("PLAIT_BENCH_BASELINE")
    if revision:
        return _git("rev-parse", revision)
    try:
        base = _git("merge-base", "HEAD", "main")
    except subprocess.CalledProcessError:
        return None
    return None if base == _git("rev-parse", "HEAD") else base


def _child_cpu_us(source: Path, shape: str, n: int) -> float:
    """CPU microseconds per task of ``plait.run`` in a fresh process importing ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    out = subprocess.run(
        [sys.executable, __file__, "CHILD", str(source), shape, str(n)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.splitlines()[-1])
    if not data["source"].startswith(str(source)):
        raise RuntimeError(f"the child imported plait from {data['source']}, not from {source}")
    return float(data["cpu_us"])


def run_part10(ledger: Ledger, log: Callable[[str], None], *, n: int = 10_000) -> None:
    """Default-rule CPU time per task, this source against the baseline's, side by side."""
    print(heading("Part 10: trigger rules -- the default rule against the commit before"))
    revision = baseline_revision()
    if revision is None:
        print("skipped: no baseline commit (set PLAIT_BENCH_BASELINE=<commit>)")
        return
    with tempfile.TemporaryDirectory(prefix="plait-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        sides = {"before": Path(tmp) / "src", "now": ROOT / "src"}
        rows = []
        for shape in SHAPES:
            measured: dict[str, list[float]] = {side: [] for side in sides}
            for child in range(CHILDREN):
                for side, source in sides.items():
                    log(f"part 10: {shape} n={n} {side} ({child + 1}/{CHILDREN})")
                    measured[side].append(_child_cpu_us(source, shape, n))
            before, now = min(measured["before"]), min(measured["now"])
            median_before = statistics.median(measured["before"])
            median_now = statistics.median(measured["now"])
            spread = (max(measured["before"]) - before) / before
            rows.append(
                [
                    shape,
                    f"{before:.2f}",
                    f"{now:.2f}",
                    f"{now / before:.3f}",
                    f"{median_before:.2f}",
                    f"{median_now:.2f}",
                    f"{median_now / median_before:.3f}",
                    f"{spread:.0%}",
                ]
            )
            ledger.add(
                f"default rule, {shape} {n:,}: CPU/task vs {revision[:7]}",
                f"<= {1 + NOISE:.2f}x (noise)",
                f"{now / before:.3f}x ({now:.2f} vs {before:.2f} us)",
                now / before <= 1 + NOISE,
            )
    print(
        f"plait.run of {n:,} sync no-op tasks, every task on the default rule; CPU us per task "
        f"over {CHILDREN} child processes per side (best of {REPEATS} runs in each), sides "
        f"alternating; baseline {revision[:10]} (PLAIT_BENCH_BASELINE to change it)"
    )
    headers = ["shape", "best before", "best now", "ratio", "median before", "median now"]
    print(table([*headers, "ratio", "before's spread"], rows))


def _child(source: str, shape: str, n: int) -> None:
    """In the child process: best CPU time per task of ``REPEATS`` runs, as JSON."""
    import gc  # noqa: PLC0415 - child only
    import time  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _graphs import SHAPES as GRAPHS  # noqa: PLC0415
    from _graphs import noop, run_plait, to_workflow  # noqa: PLC0415

    import plait  # noqa: PLC0415

    workflow = to_workflow(GRAPHS[shape](n), noop)
    best = float("inf")
    for _ in range(REPEATS):
        gc.collect()
        gc.disable()
        cpu = time.process_time()
        result = run_plait(workflow, 8)
        best = min(best, time.process_time() - cpu)
        gc.enable()
        if result.status is not plait.RunStatus.SUCCEEDED:
            raise RuntimeError(f"{shape} ended {result.status}")
        del result
    print(json.dumps({"cpu_us": best / n * 1e6, "source": plait.__file__, "wanted": source}))


if __name__ == "__main__" and sys.argv[1:2] == ["CHILD"]:
    _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))

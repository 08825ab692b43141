"""A small data pipeline: fan out over regions, fan in to a report, with one flaky step.

Run it with ``make demo`` (or ``python examples/pipeline.py``). The three regional branches run
at the same time; the flaky upload fails once and is retried.
"""

from __future__ import annotations

import asyncio
import random
import time

import plait

wf = plait.Workflow("sales-report")
REGIONS = ("emea", "americas", "apac")


@wf.task
def fetch_orders() -> list[dict[str, object]]:
    """Pretend to query a database: 60 orders across the regions."""
    time.sleep(0.2)
    rng = random.Random(7)
    return [{"region": REGIONS[i % 3], "amount": rng.randint(10, 500)} for i in range(60)]


def make_region_total(region: str) -> None:
    async def region_total(fetch_orders: list[dict[str, int]], ctx: plait.Context) -> int:
        await asyncio.sleep(0.5)  # a slow per-region API call: the branches overlap
        total = sum(o["amount"] for o in fetch_orders if o["region"] == region)
        ctx.logger.info("%s total is %d", region, total)
        return total

    wf.add_task(f"total_{region}", region_total, depends_on=[fetch_orders])


for region in REGIONS:
    make_region_total(region)

uploads = 0


@wf.task(
    depends_on=[f"total_{r}" for r in REGIONS],
    retry=plait.RetryPolicy(max_retries=3, backoff=0.1),
)
def upload_report(total_emea: int, total_americas: int, total_apac: int) -> dict[str, int]:
    """Fails on its first attempt, like a real network call now and then."""
    global uploads
    uploads += 1
    if uploads == 1:
        raise ConnectionError("upload service unavailable")
    return {"emea": total_emea, "americas": total_americas, "apac": total_apac}


class Show:
    """Print what happens, as it happens, in seconds since the run started."""

    def __init__(self) -> None:
        self.start = 0.0

    def __call__(self, event: plait.Event) -> None:
        if isinstance(event, plait.RunStarted):
            self.start = event.time
        at = f"{event.time - self.start:6.3f}s"
        if isinstance(event, plait.TaskStarted):
            print(f"{at}  started   {event.task_id} (attempt {event.attempt})")
        elif isinstance(event, plait.TaskSucceeded):
            print(f"{at}  succeeded {event.task_id}")
        elif isinstance(event, plait.TaskRetrying):
            print(f"{at}  retrying  {event.task_id} in {event.delay:.2f}s: {event.error}")


if __name__ == "__main__":
    result = plait.run(wf, max_concurrency=4, subscribers=[Show()])
    print()
    print(result)
    print("report:", result.tasks["upload_report"].output)
    print(
        f"upload attempts: {result.tasks['upload_report'].attempts}; three 0.5 s branches took "
        f"{result.duration:.2f}s in all, not 1.7 s, because they ran in parallel"
    )

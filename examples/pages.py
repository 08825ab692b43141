"""Mapped tasks: fetch every page a listing found, one task per page, decided at run time.

Run it with ``python examples/pages.py``. ``list_pages`` finds 20 pages; ``fetch`` runs once per
page (``fetch[0]`` ... ``fetch[19]``), and page 13 always times out, so ``fetch`` fails as a
whole. ``parse`` maps over ``fetch`` instance by instance: ``parse[3]`` starts as soon as
``fetch[3]`` succeeded. ``aggregate`` runs anyway (``all_done``) on the 19 pages that came back
and names the one that did not; ``alert`` pages someone; ``release`` always runs.
"""

from __future__ import annotations

import time

import plait

wf = plait.Workflow("pages")


@wf.task
def list_pages() -> list[str]:
    return [f"https://example.com/page/{n}" for n in range(20)]


@wf.task(depends_on=[list_pages], map_over="list_pages", retry=plait.RetryPolicy(1, 0))
def fetch(list_pages: str) -> str:
    time.sleep(0.01)
    if list_pages.endswith("/13"):
        raise TimeoutError(f"{list_pages} did not answer")
    return f"<html>{list_pages}</html>"


@wf.task(depends_on=[fetch], map_over="fetch")
def parse(fetch: str) -> int:
    return len(fetch)


@wf.task(depends_on=[parse], trigger="all_done")
def aggregate(ctx: plait.Context, parse: list[int] | None = None) -> dict[str, object]:
    instances = ctx.upstream["parse"].instances or ()
    missing = [r.task_id for r in instances if r.status is not plait.TaskStatus.SUCCEEDED]
    return {"pages": len(parse or []), "bytes": sum(parse or []), "missing": missing}


@wf.task(depends_on=[fetch], trigger="one_failed")
def alert() -> str:
    return "paged the on-call"


@wf.task(depends_on=[aggregate], cleanup=True)
def release() -> str:
    return "released"


if __name__ == "__main__":
    result = plait.run(wf)
    print(f"run {result.status}: {result.error}")
    print("aggregate:", result.outputs["aggregate"])
    print("alert:", result.outputs["alert"])
    print("fetch[13]:", result.tasks["fetch[13]"].status, result.tasks["fetch[13]"].error)

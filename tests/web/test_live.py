"""Live streams: one probe per interval however many pages watch, a change per new value."""

from __future__ import annotations

import asyncio
from typing import Any

from plait.web._live import Watches


def test_many_streams_share_one_probe_and_each_hears_every_new_value() -> None:
    calls = 0
    value = [0]

    def probe() -> int:
        nonlocal calls
        calls += 1
        return value[0]

    async def main() -> tuple[list[list[str]], int, int]:
        watches = Watches(interval=0.01)
        heard: list[list[str]] = [[] for _ in range(20)]
        streams = [watches.stream("run:x", probe, lambda v: f"v{v}") for _ in range(20)]

        async def listen(i: int, stream: Any) -> None:
            async for chunk in stream:
                if chunk.startswith("event: change"):
                    heard[i].append(chunk.split("data: ")[1].strip())
                    if heard[i][-1] == "v3":
                        return

        tasks = [asyncio.create_task(listen(i, s)) for i, s in enumerate(streams)]
        for n in (1, 2, 3):
            await asyncio.sleep(0.1)
            value[0] = n
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for stream in streams:
            await stream.aclose()
        return heard, calls, len(watches)

    heard, calls, left = asyncio.run(main())
    for got in heard:
        assert got[0] in ("v0", "v1") and got[-1] == "v3"
        assert got == sorted(set(got))  # each value once, in order; none after the last
    # about 40 intervals passed: one probe each, not one per stream (20 x 40)
    assert calls < 200
    assert left == 0  # the last stream to leave stopped the watch

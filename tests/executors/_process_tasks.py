"""Task functions for the process executor's tests, in a module that is light to import: a
worker imports it to unpickle them (by reference), and the test module would bring pytest."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

from plait import Context

from ._semantics_tasks import wait_to_be_seen


def pid() -> int:
    return os.getpid()


def add(a: int, b: int) -> int:
    return a + b


def shout(data: bytes, times: int) -> bytes:
    """``data`` in capitals, ``times`` over: an output as big as the caller likes."""
    print("shouting")  # a W message just before the big outcome on the same pipe
    return data.upper() * times


def wait_for_file(path: str, ctx: Context) -> str:
    """Write this worker's pid to ``path``.pid, then wait for ``path`` to exist."""
    Path(path + ".pid").write_text(str(os.getpid()))
    while not os.path.exists(path):
        time.sleep(0.01)
    return f"attempt {ctx.attempt}"


def until_cancelled(marker: str, ctx: Context) -> bool:
    Path(marker).write_text("started")
    deadline = time.monotonic() + 20
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    return ctx.cancelled


def spin_with_a_child(marker: str) -> None:
    """Start a grandchild (``sleep``), say both pids, then spin forever without looking up."""
    child = subprocess.Popen(["sleep", "60"])
    Path(marker).write_text(f"{os.getpid()} {child.pid}")
    while True:
        pass


def ask(ctx: Context) -> str:
    answer = ctx.request_input("name?")
    return f"hello {answer}"


def chatty(ctx: Context) -> int:
    print("printed in the worker")
    ctx.logger.info("logged in the worker: %d", 42)
    return 1


def holds_a_lock() -> threading.Lock:
    return threading.Lock()


def use(value: object) -> str:
    return type(value).__name__


def exit_now() -> None:
    os._exit(7)


async def async_pid(x: int) -> tuple[int, int]:
    await asyncio.sleep(0)
    return os.getpid(), x


async def sleep_long() -> None:
    await asyncio.sleep(30)


def segfault() -> None:
    import ctypes  # noqa: PLC0415 - only this task needs it

    ctypes.string_at(0)


def note_cancel(marker: str, ctx: Context) -> None:
    """Say it started, wait (at most 20 s) to be cancelled, then say it saw it."""
    _write_whole(marker, "started")
    deadline = time.monotonic() + 20
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    _write_whole(marker, "cancelled" if ctx.cancelled else "not cancelled")


def _write_whole(marker: str, text: str) -> None:
    """Write ``marker`` so that a reader never sees it empty or half written (a rename)."""
    partial = Path(f"{marker}.partial")
    partial.write_text(text)
    partial.replace(marker)


def seen_then_spin(store: str, ctx: Context) -> None:
    """Wait until the store holds a line of ours, then spin past any timeout."""
    if wait_to_be_seen(store, ctx):
        while True:
            pass


def seen_then_exit(store: str, ctx: Context) -> None:
    """Wait until the store holds a line of ours, then die unasked."""
    wait_to_be_seen(store, ctx)
    os._exit(3)


def burst(n: int) -> int:
    """Print ``n`` numbered lines as fast as it can."""
    for i in range(n):
        print(f"line {i}")
    return n


def log_span(log: str, name: str, seconds: float = 0.0) -> str:
    """Append ``S name`` to ``log``, sleep ``seconds``, append ``E name``: the order of the
    lines shows which tasks ran at once (one write each, appended whole)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"S {name}\n".encode())
        time.sleep(seconds)
        os.write(fd, f"E {name}\n".encode())
    finally:
        os.close(fd)
    return name


def touch(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))


def kill_own_worker(marker: str, ctx: Context) -> str:
    """Attempt 1: after a while (so that a job is queued behind it), kill this worker."""
    if ctx.attempt == 1:
        time.sleep(0.3)
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), 9)
    return f"attempt {ctx.attempt}"

"""A run in this process, as ``run`` and ``resume`` hold it: its monitoring, the executors
the command made, the watcher that shows it, and the exit code its end gives."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._state import RunStatus
from ._common import EXIT_FAILED, EXIT_LOST, EXIT_OK, EXIT_PAUSED, _exit_code, _fail

if TYPE_CHECKING:
    from rich.console import Console

    from .._events import Subscriber
    from .._results import RunResult
    from ..executors import Executor
    from ..stores import Store, StoreError
    from ._watcher import Watcher

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__: list[str] = []


_EXIT_FOR_STATUS = {
    RunStatus.SUCCEEDED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.CANCELLED: EXIT_FAILED,
    RunStatus.PAUSED: EXIT_PAUSED,
    RunStatus.RUNNING: EXIT_FAILED,
}


@contextlib.contextmanager
def _monitoring(*, trace: bool, metrics_port: int | None) -> Iterator[None]:
    """The tracer provider (``--trace``) and the metrics endpoint (``--metrics-port``) of a
    command, for as long as it runs (see ``_monitoring``)."""
    with contextlib.ExitStack() as stack:
        if trace:
            from ._monitoring import tracing_provider

            stack.enter_context(tracing_provider())
        if metrics_port is not None:
            from ._monitoring import metrics_server

            stack.enter_context(metrics_server(metrics_port))
        yield


def _join_dask(
    executors: dict[str, Executor], settings: dict[str, Any], address: str | None, *, size: bool
) -> None:
    """Add the executor of ``--dask ADDRESS`` (if given) to ``executors``, named ``dask`` and
    made the default; with ``size``, ``max_concurrency`` becomes the widest its window grows
    (eight tasks per worker thread of the cluster, see ``DaskExecutor``)."""
    if address is None:
        return
    from ..executors import DaskExecutor

    executor = executors["dask"] = DaskExecutor(address)
    settings["default_executor"] = "dask"
    if size:
        try:
            settings["max_concurrency"] = executor.widest
        except (ConnectionError, RuntimeError) as error:  # unreachable, or no workers
            _fail(str(error))


@contextlib.contextmanager
def _shut_down_after(executors: Mapping[str, Executor]) -> Iterator[None]:
    """Shut ``executors`` down when the block ends: the command made them, so it owns them."""
    try:
        yield
    finally:
        for executor in executors.values():
            executor.shutdown(wait=True)


def _watcher(
    console: Console, *, as_json: bool, quiet: bool, store: str | None, verbose: bool = False
) -> Watcher:
    from ._lines import JsonLines, LogLines
    from ._live import LiveView

    if as_json:
        return JsonLines(console, store=store)
    if quiet or not console.is_terminal:
        return LogLines(console, store=store, quiet=quiet, verbose=verbose)
    return LiveView(console, store=store, verbose=verbose)


def _watch(
    watcher: Watcher,
    run_id: str,
    start: Callable[[Sequence[Subscriber]], RunResult],
    dependencies: Mapping[str, Sequence[str]],
    *,
    store: Store,
) -> int:
    """Run ``start`` under ``watcher``; show the end; return the exit code."""
    from ..stores import LeaseLostError, StoreUnavailableError
    from ._summary import run_figures
    from ._timeline import stored_figures

    try:
        with watcher:
            result = start([watcher])
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP: recorded cancelled
        watcher.interrupted(run_id)
        return _exit_code(interrupt)
    except (LeaseLostError, StoreUnavailableError) as error:
        _lost(run_id, error, store=watcher.store)
        return EXIT_LOST
    # The whole run, every session of it, weighed as the report weighs it.
    record = store.get_run(run_id)
    figures = run_figures(result, dependencies) if record is None else stored_figures(store, record)
    watcher.finish(result, figures)
    return _EXIT_FOR_STATUS[result.status]


def _lost(run_id: str, error: StoreError, *, store: str | None) -> None:
    """Say on stderr why the run stopped unrecorded (``error``: a LeaseLostError or a
    StoreUnavailableError), and how it goes on."""
    from rich.text import Text

    from ..stores import LeaseLostError
    from ._commands import resume_command
    from ._terminal import TextConsole

    console = TextConsole(stderr=True, soft_wrap=True)
    if isinstance(error, LeaseLostError):
        console.print(Text(f"plait lost the run: {error}", style="red"))
        if error.owner is None:  # nobody took it: it can be resumed once the lease expires
            console.print(Text(f"continue with: {resume_command(run_id, store=store)}"))
    else:
        console.print(Text(f"plait could not record the run: {error}", style="red"))
        console.print(Text(f"continue with: {resume_command(run_id, store=store)}"))

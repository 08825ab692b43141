"""SIGINT, SIGTERM and SIGHUP while a blocking run goes (``plait.run``, ``plait.resume``, the
``plait`` command): stop the run, record it, then end as the signal asks.

- **First signal** (Ctrl-C, ``kill``, ``docker stop``, a closed terminal): the run stops as an
  interrupt stops it -- nothing new starts, async tasks are cancelled, sync tasks see
  ``ctx.cancelled`` and get ``cancel_grace`` seconds, shell commands' process groups get
  ``SIGTERM`` then ``SIGKILL`` -- and is recorded ``cancelled``, its error naming the signal.
  Then the signal is handed on to the handler that was there before plait's (:meth:`pass_on`):
  Python's default for SIGINT raises ``KeyboardInterrupt``; for SIGTERM and SIGHUP, whose
  default is to end the process, plait raises ``SystemExit(128 + signal)`` (143, 129), so the
  process ends with the status a shell reports for that signal, ``finally`` blocks run, output
  is flushed. A handler of the caller's own is called instead, and decides. A signal that
  comes before the run has started (while it reaches its store) acts at once, in the same way:
  there is nothing to record yet.
- **Second signal**: stop at once. Sync tasks still in user code are abandoned (their threads
  are daemons: the process does not wait for them), every shell command's process group gets
  ``SIGKILL`` now, the run is recorded ``cancelled``, and the first signal is handed on.

The handlers are installed only on the main thread (where Python runs signal handlers), for
the length of the run, and the previous ones are put back afterwards. A signal that was ignored
when the run started (``nohup``, a background job's SIGINT) stays ignored; so does one whose
handler was set outside Python.

How a signal reaches the run: once the run's event loop runs, its handlers are the loop's own
(``loop.add_signal_handler``): the C-level handler writes to the loop's wake-up pipe, so the
loop wakes even when the kernel delivered the signal to a worker thread (a plain Python handler
would wait for the main thread's next bytecode -- the loop may sleep in ``select`` for minutes),
and the run acts on it as a loop callback, never in the middle of the engine's own code. Before
the run starts, plain handlers hand the signal on at once; after it ended they note it, for
``plait.run`` to hand on as it returns. When the loop closes it resets its handlers; the
previous ones are then put back.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._engine import _Run

__all__ = ["HANDLED", "Interrupted", "Interrupts", "current"]

#: The signals a blocking run answers (those of them the platform has: Windows has no SIGHUP).
HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A signal other than SIGINT interrupted the ``plait`` command (whose handlers raise it);
    ``signum`` is the signal. A ``KeyboardInterrupt``, so whatever stops on Ctrl-C stops on it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The handlers of the blocking run in progress on this thread, if any (see _execution._execute).
current: ContextVar[Interrupts | None] = ContextVar("plait_interrupts", default=None)


class Interrupts:
    """One blocking run's signal handlers: installed by ``with``, put back when it ends.

    The run joins with :meth:`attach` once it has an event loop; signals that came before are
    acted on then.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._passed = False  # the signal was handed on already
        self._previous: dict[int, Any] = {}
        self._run: _Run | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN or previous is None:
                    continue  # ignored (nohup), or set outside Python: left as it is
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        self._token = current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        current.reset(self._token)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._loop = None

    def attach(self, run_state: _Run) -> None:
        """The run has started, on the running loop (call it from there): the loop takes the
        signals over. Only the first run attaches: a run started by one of its tasks (which
        inherit its context) does not."""
        if self._run is not None:
            return
        self._run = run_state
        self._loop = loop = asyncio.get_running_loop()
        for signum in self._previous:
            try:
                loop.add_signal_handler(signum, self._on_loop, signum)
            except NotImplementedError:  # Windows' loops: the plain handler acts instead
                signal.signal(signum, self._on_plain)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Outside the run's loop: before the run started (there is nothing to record yet, and
        it may be stuck reaching its store) the signal acts at once, as it would without
        plait; after the run ended it is noted, and handed on when plait.run returns."""
        self.received.append(signum)
        if self._run is None:
            self.pass_on()

    def _on_plain(self, signum: int, frame: FrameType | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_loop, signum)

    def _on_loop(self, signum: int) -> None:
        self.received.append(signum)
        self._act(len(self.received), signum)

    def _act(self, count: int, signum: int) -> None:
        run_state = self._run
        if run_state is None:
            return
        reason = f"interrupted by {signal.Signals(signum).name}"
        if count == 1:
            run_state.stop(reason)
        else:
            run_state.stop_now(f"{reason}, a second time: stopped at once")

    def pass_on(self) -> None:
        """Hand the first signal received (if any) to the handler there before plait's: call
        it, or, if it was the default, end as the signal would (see the module docstring).

        Raises:
            KeyboardInterrupt: SIGINT, with Python's default handler.
            SystemExit: SIGTERM or SIGHUP with the default handler: ``128 + signal``.
        """
        if not self.received or self._passed:
            return
        self._passed = True
        signum = self.received[0]
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, None)
            return
        raise SystemExit(128 + signum)

"""The worker side of the process executor: which call a cancel reaches (no process needed)."""

from __future__ import annotations

from plait.executors._process_worker import _Current


def test_a_cancel_sets_the_flag_of_the_call_it_names() -> None:
    current = _Current()
    flag = current.begin(1)
    current.cancel(1)
    assert flag()


def test_a_cancel_that_overtakes_its_call_is_kept_for_it() -> None:
    current = _Current()
    current.cancel(2)  # the listener read it before the main thread began call 2
    assert current.begin(2)()


def test_a_late_cancel_never_reaches_the_next_call() -> None:
    current = _Current()
    first = current.begin(1)
    current.end()
    second = current.begin(2)
    current.cancel(1)
    assert not first()  # it had ended: nothing to stop
    assert not second()

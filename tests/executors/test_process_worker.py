"""The worker side of the process executor: which call a cancel reaches, and the framing of
the calls pipe (no process needed)."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from plait.executors._process_worker import Inbox, _Current, send


def test_a_cancel_sets_the_flag_of_the_call_it_names() -> None:
    current = _Current()
    flag = current.begin(1)
    current.cancel(1)
    assert flag()


def test_a_call_cancelled_before_it_began_is_skipped() -> None:
    current = _Current()
    first = current.begin(1)
    current.cancel(3)  # queued behind 2, which is queued behind 1: the listener reads it first
    current.cancel(2)
    assert not first()
    current.end()
    assert current.begin(2) is None
    assert current.begin(3) is None
    assert current.begin(4) is not None  # and only those


def test_a_late_cancel_never_reaches_the_next_call() -> None:
    current = _Current()
    first = current.begin(1)
    current.end()
    second = current.begin(2)
    current.cancel(1)
    assert not first()  # it had ended: nothing to stop
    assert not second()


def test_an_inbox_reads_whole_messages_in_order_however_they_were_sent() -> None:
    ours, theirs = multiprocessing.Pipe()
    big = bytes(range(256)) * 1024  # past one read's chunk, and sent by send_bytes
    sent = [b"R" + b"1" * 10, b"", big, b"W2 printed"]
    writer = threading.Thread(  # the big one fills the pipe: it needs a reader meanwhile
        target=lambda: [send(theirs, message) for message in sent]
    )
    writer.start()
    inbox = Inbox(ours)
    assert [inbox.recv() for _ in sent] == sent
    writer.join()
    theirs.close()
    with pytest.raises(EOFError):
        inbox.recv()


def test_send_keeps_send_bytes_framing_and_an_inbox_waits_for_the_rest_of_a_message() -> None:
    ours, theirs = multiprocessing.Pipe()
    send(theirs, b"O outcome")
    assert ours.recv_bytes() == b"O outcome"  # multiprocessing reads what send wrote
    inbox = Inbox(ours)
    theirs.send_bytes(b"first")
    theirs.send_bytes(b"second")
    inbox.read()  # both, most likely, in one read
    assert inbox.next() == b"first"
    os.write(theirs.fileno(), b"\x00\x00\x00\x05par")  # a message cut in two
    while inbox.next() != b"second":
        inbox.read()
    assert inbox.next() is None
    os.write(theirs.fileno(), b"ts")
    assert inbox.recv() == b"parts"

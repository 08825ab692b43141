"""Serializers, and the rule that a store is data, never code: the serializer that loads a run is
the caller's, never one named in the stored record."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from pathlib import Path

import pytest

import plait
from plait.stores import MemoryStore, SQLiteStore


class _Payload:
    """A pickle that creates a file when it is loaded: what a hostile row would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (str(self.marker), os.O_CREAT | os.O_WRONLY))


def pipeline() -> plait.Workflow:
    wf = plait.Workflow("data")
    wf.add_task("make", lambda: {"n": 1})
    wf.add_task("gate", lambda make: make, depends_on=["make"], pause=plait.Pause("go?"))
    return wf


def rewrite_as_pickle(path: Path, run_id: str, marker: Path) -> None:
    """Do what someone with write access to the store could: claim the run is pickled and put a
    payload in a task's output."""
    with sqlite3.connect(path) as conn:
        (config,) = conn.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        conn.execute(
            "UPDATE runs SET config = ? WHERE run_id = ?",
            (json.dumps({**json.loads(config), "serializer": "pickle"}), run_id),
        )
        conn.execute(
            "UPDATE tasks SET output = ? WHERE run_id = ? AND task_id = 'make'",
            (pickle.dumps(_Payload(marker)), run_id),
        )


PICKLE_REFUSED = (
    r"^run 'hostile' stores its outputs with pickle, and loading a pickle runs whatever code its "
    r"writer put in it; if nobody else can write to this store, load the run with "
    r"serializer=plait\.PickleSerializer\(\) \(command line: --unsafe-pickle\)$"
)


def test_a_row_rewritten_to_say_pickle_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    with SQLiteStore(tmp_path / "plait.db") as store:
        plait.run(pipeline(), store=store, run_id="hostile")
    rewrite_as_pickle(tmp_path / "plait.db", "hostile", marker)
    with SQLiteStore(tmp_path / "plait.db") as store:
        with pytest.raises(plait.SerializerMismatchError, match=PICKLE_REFUSED) as caught:
            plait.get_run("hostile", store=store)
        assert (caught.value.stored, caught.value.given) == ("pickle", "json")
        with pytest.raises(plait.SerializerMismatchError, match=PICKLE_REFUSED):
            plait.resume("hostile", pipeline(), store=store, inputs={"gate": True})
        with pytest.raises(plait.SerializerMismatchError, match=PICKLE_REFUSED):
            plait.answer("hostile", "gate", True, store=store)
        assert store.get_run("hostile").status is plait.RunStatus.PAUSED  # nothing changed
    assert not marker.exists()


def test_a_pickled_run_loads_only_with_an_explicit_pickle_serializer(tmp_path: Path) -> None:
    wf = plait.Workflow("objects")
    wf.add_task("make", lambda: {1, 2})
    wf.add_task("gate", lambda make: make, depends_on=["make"], pause=plait.Pause("go?"))
    pickled = plait.PickleSerializer()
    with SQLiteStore(tmp_path / "plait.db") as store:
        paused = plait.run(wf, store=store, serializer=pickled)
        assert paused.status is plait.RunStatus.PAUSED
        with pytest.raises(plait.SerializerMismatchError, match=r"stores its outputs with pickle"):
            plait.get_run(paused.run_id, store=store)
        assert plait.get_run(paused.run_id, store=store, serializer=pickled).outputs == {
            "make": {1, 2}
        }
        plait.answer(paused.run_id, "gate", {"ok": (1, 2)}, store=store, serializer=pickled)
        done = plait.resume(paused.run_id, wf, store=store, serializer=pickled)
    assert done.outputs == {"make": {1, 2}, "gate": {1, 2}}


def test_another_serializer_than_the_runs_is_refused_with_what_to_pass(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(pipeline(), store=store, run_id="as-json")
        with pytest.raises(
            plait.SerializerMismatchError,
            match=r"^run 'as-json' stores its outputs with the 'json' serializer, not 'pickle'; "
            r"pass the serializer the run was made with \(serializer=\.\.\.\)$",
        ):
            plait.get_run(result.run_id, store=store, serializer=plait.PickleSerializer())


def test_the_memory_store_keeps_objects_and_needs_no_serializer() -> None:
    store = MemoryStore()
    wf = plait.Workflow("objects")
    wf.add_task("make", lambda: {1, 2})
    result = plait.run(wf, store=store)
    assert plait.get_run(result.run_id, store=store).outputs == {"make": {1, 2}}


def test_a_stored_output_the_serializer_cannot_read_is_a_clear_store_error(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "plait.db") as store:
        plait.run(pipeline(), store=store, run_id="garbled")
    with sqlite3.connect(tmp_path / "plait.db") as conn:
        conn.execute("UPDATE tasks SET output = ? WHERE task_id = 'make'", (b"\x80not json",))
    with SQLiteStore(tmp_path / "plait.db") as store:
        for call in (
            lambda: plait.get_run("garbled", store=store),
            lambda: plait.resume("garbled", pipeline(), store=store, inputs={"gate": True}),
        ):
            with pytest.raises(
                plait.stores.StoreError,
                match=r"^the stored output of 'make' of run 'garbled' cannot be read with the "
                r"json serializer \(UnicodeDecodeError: .*\); the store holds data that plait "
                r"did not write with it$",
            ):
                call()
        assert store.get_run("garbled").status is plait.RunStatus.PAUSED

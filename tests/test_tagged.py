"""Tagged JSON, the JSON serializer's format: lossless for common types, readable, versioned."""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import json
import sqlite3
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait._tagged import FORMAT_VERSION, NotStorable, decode, encode
from plait.stores import SQLiteStore

DATA = Path(__file__).parent / "data"

EVERY_TYPE: dict[str, Any] = {
    "pair": (1, 2),
    "counts": {1: 3, (2, "b"): 4, None: 5},
    "tags": {"b", "a"},
    "frozen": frozenset({3, 1}),
    "raw": b"\x00\xffhi",
    "day": dt.date(2024, 5, 1),
    "at": dt.datetime(2024, 5, 1, 12, 30, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "naive": dt.datetime(2024, 5, 1, 12, 30),
    "clock": dt.time(23, 59, 59, 999),
    "took": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "price": decimal.Decimal("1.10"),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "where": Path("/tmp/x"),
    "odd": [float("inf"), float("-inf")],
    "$only": "a key that looks like a tag",
    "nested": [{"$tuple": "not a tag, a key"}, ((1,), [(2,)])],
}


def test_every_common_type_comes_back_as_it_went_in() -> None:
    back = decode(encode(EVERY_TYPE))
    assert back == EVERY_TYPE
    assert type(back["pair"]) is tuple and type(back["frozen"]) is frozenset
    assert back["at"].utcoffset() == dt.timedelta(hours=2)
    assert str(back["price"]) == "1.10"


def test_nan_round_trips() -> None:
    back = decode(encode([float("nan")]))
    assert back[0] != back[0]


def test_plain_data_is_written_as_plain_json_byte_for_byte() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert encode(value) == json.dumps(value, separators=(",", ":")).encode()
    assert encode(None) == b"null"


def test_a_tagged_value_is_readable_and_carries_the_format_version() -> None:
    assert json.loads(encode({"pair": (1, 2), "counts": {1: 3}})) == {
        "$plait": FORMAT_VERSION,
        "value": {"pair": {"$tuple": [1, 2]}, "counts": {"$dict": [[1, 3]]}},
    }


def test_a_plain_dict_that_looks_like_an_envelope_is_wrapped_itself() -> None:
    value = {"$plait": 2, "value": [1]}
    assert decode(encode(value)) == value


def test_outputs_stored_before_tags_load_unchanged() -> None:
    # Written by plait before tagged JSON (format 1): a tuple stored as a list, str keys, and a
    # dict that today would be a tag -- all read back as they were then written.
    stored = json.loads((DATA / "outputs_format1.json").read_text())
    for payload, expected in stored:
        assert decode(payload.encode()) == expected


def test_a_newer_format_is_refused_rather_than_misread() -> None:
    with pytest.raises(ValueError, match=r"format 3, but this plait reads formats up to 2"):
        decode(b'{"$plait":3,"value":{"$new":1}}')
    with pytest.raises(ValueError, match=r"unknown tag '\$new'"):
        decode(b'{"$plait":2,"value":{"$new":1}}')


class MyObj:
    pass


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"rows": [1, 2, 3, MyObj()]}, r"^value\['rows'\]\[3\]: MyObj is not storable; "),
        (Counter(a=1), r"^value: Counter is not storable"),
        ({1: {"x": (MyObj(),)}}, r"^value\[1\]\['x'\]\[0\]: MyObj is not"),
        ({MyObj(): 1}, r"^value.keys\(\): MyObj is not"),
        ({MyObj()}, r"^value\[...\]: MyObj is not"),
    ],
)
def test_what_would_not_round_trip_is_refused_naming_where_it_is(value: Any, message: str) -> None:
    with pytest.raises(NotStorable, match=message):
        encode(value)


zones = st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=8)
    | st.dates()
    | st.datetimes(timezones=zones)
    | st.times(timezones=zones)
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_mix_of_containers_and_scalars_round_trips(value: Any) -> None:
    back = decode(encode(value))
    assert back == value
    assert same_types(back, value)  # not only equal: the same types all the way down


def same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        keys_alike = {(type(k), k) for k in a} == {(type(k), k) for k in b}
        return keys_alike and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return all(same_types(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, set | frozenset):
        return {(type(x), x) for x in a} == {(type(x), x) for x in b}
    return bool(getattr(a, "fold", 0) == getattr(b, "fold", 0))


def producer() -> dict[str, Any]:
    return {"pair": (1, 2), "counts": {1: 3}}


def consumer(producer: dict[str, Any]) -> int:
    first, second = producer["pair"]  # a tuple live and after a resume
    assert type(producer["pair"]) is tuple
    return int(producer["counts"][1]) + first + second


def test_outputs_look_the_same_live_and_after_a_resume(tmp_path: Path) -> None:
    wf = plait.Workflow("same")
    wf.add_task("producer", producer)
    wf.add_task("gate", None, depends_on=["producer"], pause=plait.Pause("go?"))
    wf.add_task("consumer", consumer, depends_on=["producer", "gate"])
    live = plait.Workflow("same")
    live.add_task("producer", producer)
    live.add_task("consumer", consumer, depends_on=["producer"])
    url = f"sqlite://{tmp_path / 'plait.db'}"
    assert plait.run(live, store=url).outputs["consumer"] == 6
    paused = plait.run(wf, store=url)
    resumed = plait.resume(paused.run_id, wf, store=url, inputs={"gate": True})
    assert resumed.status is plait.RunStatus.SUCCEEDED, resumed.error
    assert resumed.outputs["consumer"] == 6
    assert resumed.outputs["producer"] == producer()


def test_an_output_that_would_not_round_trip_fails_its_task_naming_the_path(
    tmp_path: Path,
) -> None:
    wf = plait.Workflow("objects")
    wf.add_task("make", lambda: {"rows": [0, 1, 2, MyObj()]})
    with SQLiteStore(tmp_path / "plait.db") as store:
        result = plait.run(wf, store=store)
    error = result.tasks["make"].error
    assert error is not None
    assert error.message == (
        "task 'make' returned a dict, which the json serializer cannot store: "
        "output['rows'][3]: MyObj is not storable; return plain data or use PickleSerializer"
    )


def test_an_explicit_serializer_applies_to_the_memory_store_too() -> None:
    wf = plait.Workflow("objects")
    wf.add_task("make", MyObj)
    assert plait.run(wf).tasks["make"].status is plait.TaskStatus.SUCCEEDED
    result = plait.run(wf, serializer=plait.JSONSerializer())
    assert result.tasks["make"].status is plait.TaskStatus.FAILED


def test_a_run_stored_before_tags_still_loads_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(DATA))
    legacy_flow = importlib.import_module("legacy_flow")  # the fixture's workflow

    db = tmp_path / "plait.db"
    with sqlite3.connect(db) as connection:
        connection.executescript((DATA / "run_format1.sql").read_text())
    connection.close()
    as_then = {"pair": [1, 2], "counts": {"1": 3}, "looks_tagged": {"$tuple": [1, 2]}}
    assert plait.get_run("legacy-run", store=f"sqlite://{db}").outputs == {"produce": as_then}
    resumed = plait.resume("legacy-run", legacy_flow.wf, store=f"sqlite://{db}", inputs={"gate": 1})
    assert resumed.status is plait.RunStatus.SUCCEEDED, resumed.error
    assert resumed.outputs["consume"] == as_then

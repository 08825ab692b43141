"""Pickling for worker processes: by reference when an import finds the code, by value else."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from plait.executors._pickling import dumps, loads

from ._process_tasks import add


def _main_function() -> Any:
    def double(x: int) -> int:
        return 2 * x

    double.__module__ = "__main__"  # as if defined in a script run as `python flow.py`
    double.__qualname__ = "double"
    return double


def test_an_importable_function_travels_by_reference_with_the_standard_pickler() -> None:
    data = dumps(add)
    assert b"cloudpickle" not in data
    assert b"_process_tasks" in data
    assert loads(data) is add


def test_a_lambda_and_a_closure_travel_by_value() -> None:
    offset = 5
    for fn in (lambda x: x + 1, lambda x: x + offset):
        data = dumps(fn)
        assert b"cloudpickle" in data
        assert loads(data)(1) == fn(1)


def test_a_main_function_travels_by_value_even_inside_other_values() -> None:
    double = _main_function()
    data = dumps({"fn": double, "values": [1, 2]})
    assert b"cloudpickle" in data
    assert loads(data)["fn"](4) == 8


def test_plain_data_uses_the_standard_pickler() -> None:
    value = {"a": [1, 2.5, "x"], "b": (None, True)}
    assert dumps(value) == pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def test_what_no_pickler_can_ship_raises() -> None:
    with pytest.raises(TypeError, match=r"cannot pickle '_thread\.lock' object"):
        dumps({"lock": threading.Lock()})

"""Pickling what travels to and from a worker process: by reference first, by value if need be.

A function or class that the worker can import (``package.module:name``) is pickled by
reference, with the standard pickler (a few microseconds for a call). Everything else falls back
to ``cloudpickle``, which ships code by value:

- functions and classes of the ``__main__`` module (a script run as ``python flow.py``): the
  worker's ``__main__`` is not the script, and importing the script there would run its
  top-level code again;
- functions and classes of a workflow module that ``plait`` loaded from a file under a name no
  import can find (``_plait_file_<stem>``, see ``_files.py``);
- lambdas, closures and classes defined inside functions, which no import can find at all.

cloudpickle keeps a class's identity across the round trip (a class shipped by value and
pickled back comes back as the original), so an output of a ``__main__`` dataclass is an
instance of that same class in the parent.
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from types import FunctionType
from typing import Any

cloudpickle: Any = importlib.import_module("cloudpickle")  # untyped; a core dependency

__all__ = ["dumps", "loads"]

#: Modules whose code a worker cannot import by name; see the module docstring.
_FILE_MODULE_PREFIX = "_plait_file_"


class _ByValue(Exception):
    """Raised inside the reference pickler: this object must travel by value."""


class _ReferencePickler(pickle.Pickler):
    """The standard pickler, which gives up on code that only travels by value."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, FunctionType | type):
            module = getattr(obj, "__module__", None)
            if module == "__main__":
                raise _ByValue
            if isinstance(module, str) and module.startswith(_FILE_MODULE_PREFIX):
                if module in sys.modules:
                    cloudpickle.register_pickle_by_value(sys.modules[module])
                raise _ByValue
        return NotImplemented


def dumps(value: Any) -> bytes:
    """``value`` pickled for another process of this machine (see the module docstring).

    Raises:
        Exception: whatever cloudpickle raises for a value that cannot be pickled at all
            (``TypeError: cannot pickle '_thread.lock' object``, ``PicklingError``...).
    """
    buffer = io.BytesIO()
    try:
        _ReferencePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except (_ByValue, pickle.PicklingError, AttributeError, TypeError):
        # By value: __main__ or file-module code, a lambda or closure (the standard pickler
        # cannot find those by name), or a value only cloudpickle knows how to reduce.
        data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return data
    return buffer.getvalue()


def loads(data: bytes | memoryview) -> Any:
    """The value :func:`dumps` pickled (cloudpickle's output is standard pickle data)."""
    return pickle.loads(data)

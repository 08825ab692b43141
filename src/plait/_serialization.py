"""Serializers: how outputs and answers become bytes in a store, and back.

JSON is the default: readable in the database, safe to load from a store that others can write
to, and strict -- an output JSON cannot represent fails its task at once (naming the task and the
type) rather than failing later on resume. :class:`PickleSerializer` takes any picklable object,
but loading a pickle runs code chosen by whoever wrote it: use it only with a store that nobody
else can write to.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "JSONSerializer",
    "ObjectSerializer",
    "PickleSerializer",
    "Serializer",
    "serializer_named",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; ``name`` is stored with the run."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """The value as bytes; raises TypeError or ValueError if it cannot be represented."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value back from its bytes."""
        ...


_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class JSONSerializer:
    """JSON (UTF-8): dicts, lists, strings, numbers, booleans and None."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        if value is None:  # what most tasks return: skip the encoder
            return b"null"
        return _encode_json(value).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class PickleSerializer:
    """pickle: any picklable object. Unsafe with a store that others can write to."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as error:
            raise TypeError(str(error)) from error

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # opt-in, documented as unsafe


class ObjectSerializer:
    """Keeps the objects themselves: for the memory store, which never leaves the process."""

    name = "object"

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, data: Any) -> Any:
        return data


_BY_NAME: dict[str, type[JSONSerializer] | type[PickleSerializer] | type[ObjectSerializer]] = {
    "json": JSONSerializer,
    "pickle": PickleSerializer,
    "object": ObjectSerializer,
}


def serializer_named(name: str) -> Serializer:
    """The built-in serializer called ``name``.

    Raises:
        ValueError: no built-in serializer has that name.
    """
    try:
        return _BY_NAME[name]()
    except KeyError:
        raise ValueError(
            f"unknown serializer {name!r}; pass the serializer object the run was made with "
            f"(built in: {', '.join(_BY_NAME)})"
        ) from None

"""Serializers: how outputs and answers become bytes in a store, and back.

JSON is the default: readable in the database, safe to load from a store that others can write
to, lossless for the types tasks commonly return (tuples, sets, dicts with int keys, bytes,
dates and times, Decimal, UUID, Path: tagged, see ``_tagged``), and strict -- an output that
would not come back as it went in fails its task at once (naming where in the output, and the
type) rather than reading differently after a resume. :class:`PickleSerializer` takes any
picklable object, but loading a pickle runs code chosen by whoever wrote it: use it only with a
store that nobody else can write to.
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol, runtime_checkable

from ._tagged import decode, encode

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


class JSONSerializer:
    """Tagged JSON (UTF-8): plain JSON for dicts, lists, strings, numbers, booleans and None;
    tuples, sets, frozensets, dicts with other keys, bytes, date/time/datetime/timedelta,
    Decimal, UUID and Path come back as they went in (see ``plait._tagged`` for the format).

    ``dumps`` raises TypeError for a value that would not round-trip, naming where it is.
    """

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return encode(value)

    def loads(self, data: bytes) -> Any:
        return decode(data)


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

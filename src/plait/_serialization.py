"""Serializers: how outputs and answers become bytes in a store, and back.

JSON is the default: readable in the database, safe to load from a store that others can write
to, lossless for the types tasks commonly return (tuples, sets, dicts with int keys, bytes,
dates and times, Decimal, UUID, Path: tagged, see ``_tagged``), and strict -- an output that
would not come back as it went in fails its task at once (naming where in the output, and the
type) rather than reading differently after a resume. :class:`PickleSerializer` takes any
picklable object, but loading a pickle runs code chosen by whoever wrote it: use it only with a
store that nobody else can write to.

A store is data, never code: the serializer that loads a run's outputs is always the one the
caller passes (or the default), never one named in the stored run record. The record's name is
only compared with the caller's, so that a run stored with pickle is refused with a clear error
(:func:`check_stored`) unless the caller explicitly passes ``PickleSerializer()``.
"""

from __future__ import annotations

import pickle
from typing import Any, Protocol, runtime_checkable

from ._exceptions import SerializerMismatchError
from ._public import publish_exports
from ._tagged import decode, encode

__all__ = [
    "JSONSerializer",
    "ObjectSerializer",
    "PickleSerializer",
    "Serializer",
    "check_stored",
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


def check_stored(run_id: str, stored: object, serializer: Serializer) -> None:
    """Refuse to load run ``run_id``, whose record says ``stored``, with ``serializer``, unless
    the names agree.

    Raises:
        SerializerMismatchError: they differ; the message says which serializer to pass.
    """
    if stored == serializer.name:
        return
    if stored == PickleSerializer.name:
        message = (
            f"run {run_id!r} stores its outputs with pickle, and loading a pickle runs whatever "
            "code its writer put in it; if nobody else can write to this store, load the run "
            "with serializer=plait.PickleSerializer() (command line: --unsafe-pickle)"
        )
    else:
        message = (
            f"run {run_id!r} stores its outputs with the {stored!r} serializer, not "
            f"{serializer.name!r}; pass the serializer the run was made with (serializer=...)"
        )
    raise SerializerMismatchError(message, stored=stored, given=serializer.name)


publish_exports(globals())  # plait.X, not plait._serialization.X: see plait._public

"""Tagged JSON: the JSON serializer's format, lossless for the types tasks commonly return.

Plain JSON turns a tuple into a list and an int key into a string, so a workflow that passed
its tests (where outputs pass between tasks as they are) would see other values after a resume.
This format keeps them apart, and stays readable in the database.

Format versions:

- **1** (plait up to 0.x, and still today for plain data): the value as plain JSON. Most
  outputs (None, numbers, text, lists, dicts with text keys) are written this way, byte for byte
  as before, and read back with no tag handling at all.
- **2**: a value that needs a tag is wrapped in an envelope, ``{"$plait": 2, "value": ...}``;
  inside it, a dict with exactly one key that starts with ``$`` is a tag::

      {"$tuple": [1, 2]}                      tuple
      {"$dict": [[1, 3], [2, 4]]}             dict whose keys are not all text (or whose only
                                              key starts with "$"), as [key, value] pairs
      {"$set": [...]} {"$frozenset": [...]}   set, frozenset (sorted when the items allow)
      {"$bytes": "aGk="}                      bytes, base64
      {"$date": "2024-05-01"}                 date, time, datetime: ISO 8601 (``$time``,
      {"$datetime": "2024-05-01T12:00:00+02:00"}  ``$datetime``; a zone becomes its offset,
                                              a fold of 1 makes it ``[text, 1]``)
      {"$timedelta": [days, seconds, microseconds]}
      {"$decimal": "1.10"} {"$uuid": "..."} {"$path": "/tmp/x"}
      {"$float": "nan"}                       NaN and the infinities, which JSON lacks

A payload written before version 2 is plain JSON, which a version-2 reader returns as it is
(never reading tags into it), so runs stored before the change load unchanged. A payload from
a newer version than this reader knows is refused rather than misread.

Anything else -- a class of your own, a subclass of a built-in type (``Counter``, an ``Enum``),
a NumPy array -- would not come back as it went in: :func:`encode` raises :class:`NotStorable`
naming where in the value it is (``['rows'][3]``) and its type.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid
from pathlib import Path, PosixPath, WindowsPath
from typing import Any

__all__ = ["FORMAT_VERSION", "NotStorable", "decode", "document", "encode", "from_document"]

#: The newest format this module writes and reads.
FORMAT_VERSION = 2

_ENVELOPE = "$plait"

_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# Decoding text directly skips json.loads's guessing of the bytes' encoding (always UTF-8 here).
_decode_json = json.JSONDecoder().decode
_PLAIN = (str, int, bool, type(None))


class NotStorable(TypeError):
    """A part of a value that tagged JSON cannot store so that it round-trips."""

    def __init__(self, path: str, value: object) -> None:
        self.path = path  # grows as the error passes out through the containers
        self.type_name = type(value).__qualname__
        super().__init__(self.describe("value"))

    def describe(self, root: str) -> str:
        """The message, with the path rooted at ``root`` (``output``, ``answer``)."""
        return (
            f"{root}{self.path}: {self.type_name} is not storable; return plain data or use "
            "PickleSerializer"
        )


def encode(value: Any) -> bytes:
    """``value`` as tagged JSON (UTF-8); plain data stays plain JSON.

    Raises:
        NotStorable: a part of ``value`` would not round-trip.
    """
    if value is None:  # what most tasks return: skip the encoder
        return b"null"
    try:
        tagged = _tag(value)
    except NotStorable as error:
        error.args = (error.describe("value"),)
        raise
    if tagged is value and not _looks_like_envelope(value):
        return _encode_json(value).encode()
    return _encode_json({_ENVELOPE: FORMAT_VERSION, "value": tagged}).encode()


def decode(data: bytes | str) -> Any:
    """The value back from :func:`encode`'s bytes, or from plain (version 1) JSON.

    Raises:
        ValueError: not JSON, an unknown tag, or a format newer than this plait reads.
    """
    if data == b"null":  # what most tasks return
        return None
    value = _decode_json(data if isinstance(data, str) else bytes(data).decode())
    if not _looks_like_envelope(value):
        return value
    version = value[_ENVELOPE]
    if version != FORMAT_VERSION:
        raise ValueError(
            f"this output was stored in tagged JSON format {version!r}, but this plait reads "
            f"formats up to {FORMAT_VERSION}; upgrade plait to read it"
        )
    return _untag(value["value"])


def document(value: Any) -> Any:
    """``value`` as a JSON-able tagged structure (no envelope): what :func:`encode` writes
    inside one; for values kept inside other JSON (a task's params in a run's definition).

    Raises:
        NotStorable: a part of ``value`` would not round-trip.
    """
    return _tag(value)


def from_document(tagged: Any) -> Any:
    """The value back from :func:`document`'s structure.

    Raises:
        ValueError: an unknown tag.
    """
    return _untag(tagged)


def _looks_like_envelope(value: object) -> bool:
    return (
        type(value) is dict
        and len(value) == 2
        and _ENVELOPE in value
        and "value" in value
        and type(value[_ENVELOPE]) is int
    )


# -- encoding: returns the value itself when nothing in it needs a tag ------------------------
#
# The walk runs over every output of a durable run, so it avoids work for plain data: scalars
# are checked inline, containers are copied only when something in them changed, and the path
# to a value that cannot be stored is built only when there is one (each container adds its
# step as the error passes through it).


def _tag(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind is list:
        return _tag_items(value)
    if kind is dict:
        return _tag_dict(value)
    if kind is tuple:
        return {"$tuple": _list(_tag_items(value))}
    if kind is set or kind is frozenset:
        try:
            items = _tag_items(_sorted(value))
        except NotStorable as error:
            error.path = "[...]" + error.path[error.path.index("]") + 1 :]
            raise
        return {"$set" if kind is set else "$frozenset": _list(items)}
    tagger = _SCALARS.get(kind)
    if tagger is not None:
        return tagger(value)
    if kind is PosixPath or kind is WindowsPath:  # what Path() makes; read back as Path()
        return {"$path": str(value)}
    raise NotStorable("", value)


def _list(items: Any) -> list[Any]:
    return items if type(items) is list else list(items)


def _tag_items(items: Any) -> Any:
    """The items tagged: the same sequence if none changed, else a new list."""
    changed: list[Any] | None = None
    plain = _PLAIN
    for i, item in enumerate(items):
        if type(item) in plain:
            tagged = item
        else:
            try:
                tagged = _tag(item)
            except NotStorable as error:
                error.path = f"[{i}]{error.path}"
                raise
        if changed is not None:
            changed.append(tagged)
        elif tagged is not item:
            changed = list(items[:i])
            changed.append(tagged)
    return items if changed is None else changed


def _tag_dict(value: dict[Any, Any]) -> Any:
    changed: dict[str, Any] | None = None
    plain = _PLAIN
    for key, item in value.items():
        if type(key) is not str:
            return _tag_pairs(value)
        if type(item) in plain:
            tagged = item
        else:
            try:
                tagged = _tag(item)
            except NotStorable as error:
                error.path = f"[{key!r}]{error.path}"
                raise
        if changed is not None:
            changed[key] = tagged
        elif tagged is not item:
            changed = {}
            for earlier, earlier_item in value.items():
                if earlier == key:
                    break
                changed[earlier] = earlier_item
            changed[key] = tagged
    result = value if changed is None else changed
    if len(value) == 1 and next(iter(value)).startswith("$"):  # it would read as a tag
        return {"$dict": [[key, item] for key, item in result.items()]}
    return result


def _tag_pairs(value: dict[Any, Any]) -> dict[str, Any]:
    """A dict whose keys are not all text, as ``{"$dict": [[key, value], ...]}``."""
    pairs = []
    for key, item in value.items():
        try:
            tagged_key = _tag(key)
        except NotStorable as error:
            error.path = ".keys()" + error.path
            raise
        try:
            pairs.append([tagged_key, _tag(item)])
        except NotStorable as error:
            error.path = f"[{key!r}]{error.path}"
            raise
    return {"$dict": pairs}


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    """A set's items in a stable order, so that equal sets store equal bytes."""
    try:
        return sorted(items)
    except TypeError:  # items that do not compare (mixed types): any order round-trips
        return list(items)


def _with_fold(value: dt.datetime | dt.time) -> str | list[Any]:
    """ISO 8601 text; with the ``fold`` (the second of a repeated wall-clock hour), which
    ISO 8601 cannot say, as ``[text, 1]``."""
    return value.isoformat() if not value.fold else [value.isoformat(), value.fold]


def _read_fold(parse: Any) -> Any:
    def read(content: str | list[Any]) -> Any:
        if isinstance(content, list):
            return parse(content[0]).replace(fold=content[1])
        return parse(content)

    return read


def _timedelta(value: dt.timedelta) -> dict[str, Any]:
    return {"$timedelta": [value.days, value.seconds, value.microseconds]}


_SCALARS: dict[type, Any] = {
    bytes: lambda v: {"$bytes": base64.b64encode(v).decode("ascii")},
    dt.datetime: lambda v: {"$datetime": _with_fold(v)},
    dt.date: lambda v: {"$date": v.isoformat()},
    dt.time: lambda v: {"$time": _with_fold(v)},
    dt.timedelta: _timedelta,
    decimal.Decimal: lambda v: {"$decimal": str(v)},
    uuid.UUID: lambda v: {"$uuid": str(v)},
}


# -- decoding -----------------------------------------------------------------------------------


def _untag(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_untag(item) for item in value]
    if kind is not dict:
        return value
    if len(value) == 1:
        ((key, content),) = value.items()
        if key.startswith("$"):
            reader = _READERS.get(key)
            if reader is None:
                raise ValueError(
                    f"unknown tag {key!r} in tagged JSON; it was written by a newer plait, or "
                    "by hand"
                )
            return reader(content)
    return {key: _untag(item) for key, item in value.items()}


def _pairs(content: list[list[Any]]) -> dict[Any, Any]:
    return {_untag(key): _untag(item) for key, item in content}


_READERS: dict[str, Any] = {
    "$tuple": lambda c: tuple(_untag(item) for item in c),
    "$dict": _pairs,
    "$set": lambda c: {_untag(item) for item in c},
    "$frozenset": lambda c: frozenset(_untag(item) for item in c),
    "$bytes": base64.b64decode,
    "$datetime": _read_fold(dt.datetime.fromisoformat),
    "$date": dt.date.fromisoformat,
    "$time": _read_fold(dt.time.fromisoformat),
    "$timedelta": lambda c: dt.timedelta(days=c[0], seconds=c[1], microseconds=c[2]),
    "$decimal": decimal.Decimal,
    "$uuid": uuid.UUID,
    "$path": Path,
    "$float": float,
}

"""Text that every store can hold.

The SQL stores keep text as UTF-8, and PostgreSQL's text cannot hold NUL at all. Two kinds of
Python text do not fit: lone surrogates (``"\\udcff"``, what ``surrogateescape`` makes of bytes
that are not UTF-8 -- a shell command's output, a file name) and, for PostgreSQL, ``"\\x00"``.

- *Names* -- a workflow's name, task ids, run ids, the keys of a task's questions -- are how
  runs and tasks are found again, so plait refuses one that does not fit when it is given
  (:func:`unstorable` says why), whatever the store: a workflow that runs on the memory store
  then runs on PostgreSQL too.
- *Free text* -- a run's error, a question's prompt -- is kept with what does not fit escaped
  (:func:`storable`): ``\\x00`` and ``\\udcff`` as backslash sequences, the rest as it was, so a
  task whose error message holds undecodable bytes never stops its run from being recorded.
  (Outputs, answers, task errors and event data are JSON, which is ASCII-only and escapes them
  already.)
"""

from __future__ import annotations

from ._exceptions import InvalidOptionError

__all__ = ["check_name", "storable", "unstorable"]


def check_name(what: str, name: str) -> None:
    """Refuse a name (``what``: "task id", "run id"...) that a store could not hold.

    Raises:
        InvalidOptionError: ``name`` holds a NUL character or a lone surrogate.
    """
    problem = unstorable(name)
    if problem is not None:
        raise InvalidOptionError(
            f"{what} {name!r} cannot be stored: it holds {problem}; use text without NUL "
            "characters or undecodable bytes"
        )


def unstorable(text: str) -> str | None:
    """What in ``text`` a store cannot hold, as a phrase for an error message; None if nothing."""
    if text.isascii():
        place = text.find("\x00")
        return None if place < 0 else f"a NUL character ('\\x00') at position {place}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"a lone surrogate ({text[error.start]!r}, from bytes that are not UTF-8) at "
            f"position {error.start}"
        )
    place = text.find("\x00")
    return None if place < 0 else f"a NUL character ('\\x00') at position {place}"


def storable(text: str) -> str:
    """``text`` with NUL characters and lone surrogates replaced by backslash escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")

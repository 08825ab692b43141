"""Public names say where to import them from: ``plait.TaskTimeoutError``, not a private module.

plait's classes and functions are defined in private modules (``plait._exceptions``, ...) and
re-exported by a package facade. :func:`publish` sets their ``__module__`` to the facade (as
httpx does), so that what users see -- a stored task error's type, ``repr`` of a class, pickles,
documentation -- names the import that works and stays stable when code moves between private
modules.

Type hints keep working: a class's own string annotations (``from __future__ import
annotations``) are resolved in its defining module first, since ``typing.get_type_hints`` looks
names up in the module that ``__module__`` names.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["publish", "publish_exports"]


def publish(namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Make each class and function ``names`` in ``namespace`` (a facade module's globals) say
    that it comes from that facade."""
    facade = namespace["__name__"]
    for name in names:
        value = namespace[name]
        if isinstance(value, type):
            own = inspect.get_annotations(value)
            if own:
                try:
                    hints = typing.get_type_hints(value)
                except NameError:  # a name imported only for type checkers: unresolvable anyway
                    pass
                else:
                    value.__annotations__ = {field: hints[field] for field in own}
        elif not callable(value) or not hasattr(value, "__code__"):
            continue  # a type alias or a constant: nothing to rename
        value.__module__ = str(facade)


def publish_exports(namespace: dict[str, Any]) -> None:
    """Publish, from a private module's globals, the names that ``plait`` exports from it.

    ``import plait`` loads its modules lazily (see ``plait/__init__.py``), so a class is not
    renamed when ``plait`` loads but when its own module does: each private module that defines
    public names calls this last. ``plait._EXPORTS`` says which names those are.
    """
    package, _, module = str(namespace["__name__"]).rpartition(".")
    facade = importlib.import_module(package)
    names = facade._EXPORTS.get(f".{module}", ())
    publish({**namespace, "__name__": package}, names)

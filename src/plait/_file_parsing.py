"""Reading a workflow file: YAML or JSON parsed into data, with the line of every key and item.

Step 1 of checking a file (see :mod:`plait._files`). :func:`parse_yaml` and :func:`parse_json`
return the file's data and its :class:`Source`, which knows the line of every key and list item
and places each problem found later at its line (:meth:`Source.error`). A syntax error names the
line, the column and the parser's problem; a key given twice in one mapping, a YAML anchor or
alias (a small file could expand without bound) and nesting deeper than Python can follow are
refused here too, each as a :class:`~plait.WorkflowFileError`.

PyYAML is imported only when a file is read (YAML, or JSON for its line numbers), and only the
safe loader is used: no tag can run code.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ._exceptions import WorkflowFileError

if TYPE_CHECKING:
    import yaml

__all__ = ["FieldPath", "Source", "field_name", "parse_json", "parse_yaml", "under"]

#: Where a value is in a file: its keys and list indexes, ``("tasks", 2, "retry")``.
FieldPath = tuple[str | int, ...]


class Source:
    """A parsed workflow file: its name, and the line of every key and list item."""

    def __init__(self, label: str, lines: dict[FieldPath, int]) -> None:
        self.label = label
        self.lines = lines

    def line(self, path: FieldPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing key or item that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def error(
        self, problem: str, field: FieldPath = (), *, at: FieldPath | None = None
    ) -> WorkflowFileError:
        """An error about ``field``, on the line of ``at`` (default: of ``field``)."""
        return WorkflowFileError(
            problem,
            file=self.label,
            line=self.line(field if at is None else at),
            field=field_name(field) or None,
        )


def field_name(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def under(problem: WorkflowFileError, path: FieldPath) -> bool:
    """Whether ``problem`` is about ``path`` or something inside it."""
    return problem.field is not None and (
        problem.field == field_name(path)
        or problem.field.startswith(field_name(path) + ".")
        or problem.field.startswith(field_name(path) + "[")
    )


def _yaml() -> Any:
    try:
        import yaml  # noqa: PLC0415 - an optional dependency, needed for YAML files only
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading YAML workflow files needs PyYAML: pip install 'plait[cli]'"
        ) from None
    return yaml


class _AliasFound(Exception):
    """A YAML anchor or alias, met while composing (see :func:`_loader`)."""

    def __init__(self, what: str, line: int, column: int) -> None:
        super().__init__(what)
        self.what = what
        self.line = line
        self.column = column


_NO_ALIASES: Any = None


def _loader() -> Any:
    """PyYAML's SafeLoader, refusing anchors and aliases as it composes (made once, on first
    use: PyYAML is imported only for YAML files)."""
    global _NO_ALIASES
    if _NO_ALIASES is None:
        yaml = _yaml()

        class NoAliasesLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
            def compose_node(self, parent: Any, index: Any) -> Any:
                event = self.peek_event()
                mark = event.start_mark
                if isinstance(event, yaml.AliasEvent):
                    raise _AliasFound(f"alias *{event.anchor}", mark.line + 1, mark.column + 1)
                if getattr(event, "anchor", None) is not None:
                    raise _AliasFound(f"anchor &{event.anchor}", mark.line + 1, mark.column + 1)
                return super().compose_node(parent, index)

        _NO_ALIASES = NoAliasesLoader
    return _NO_ALIASES


def _too_deep(file: str) -> WorkflowFileError:
    return WorkflowFileError(
        "its values are nested deeper than plait can read (about a thousand levels); a "
        "workflow file needs only a few",
        file=file,
    )


def parse_yaml(text: str, file: str) -> tuple[Any, Source]:
    yaml = _yaml()
    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        lines: dict[FieldPath, int] = {}
        if node is not None:
            _index(node, (), lines, Source(file, lines))
        data = None if node is None else loader.construct_document(node)
    except _AliasFound as found:
        raise WorkflowFileError(
            f"YAML anchors and aliases are not supported (found the {found.what}): an alias "
            "repeats a value without copying it, which lets a small file expand without bound; "
            "write the value out where it is used",
            file=file,
            line=found.line,
            column=found.column,
        ) from None
    except RecursionError:
        raise _too_deep(file) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem, context = error.problem or "", error.context or ""
        if problem and context.startswith("while "):  # "while parsing a block mapping"
            problem = f"{problem} ({context})"
        elif context:  # "expected a single document in the stream"
            problem = f"{context}, {problem}" if problem else context
        raise WorkflowFileError(
            f"invalid YAML: {problem or 'cannot be parsed'}",
            file=file,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from None
    except yaml.YAMLError as error:
        raise WorkflowFileError(f"invalid YAML: {error}", file=file) from None
    finally:
        loader.dispose()
    return data, Source(file, lines)


def parse_json(text: str, file: str) -> tuple[Any, Source]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise WorkflowFileError(
            f"invalid JSON: {error.msg}", file=file, line=error.lineno, column=error.colno
        ) from None
    except RecursionError:
        raise _too_deep(file) from None
    lines: dict[FieldPath, int] = {}
    source = Source(file, lines)
    # JSON is (nearly always) YAML too, and PyYAML knows where every node starts: use it for
    # line numbers when it is installed and agrees; the data itself is json's.
    try:
        node = _yaml().compose(text, Loader=_loader())
    except Exception:
        return data, source
    if node is not None:
        _index(node, (), lines, source)
    return data, source


def _index(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], source: Source) -> None:
    """Record the line of every key and item under ``node``; refuse a key given twice.

    Runs on the composed nodes, before construction applies ``<<`` merges (whose keys may
    legitimately be given again).
    """
    import yaml  # noqa: PLC0415 - only ever called once yaml is imported

    if not path:
        lines[()] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            if key in seen and key_node.tag == "tag:yaml.org,2002:str":
                lines[(*path, key)] = key_node.start_mark.line + 1
                raise source.error(
                    f"key {key!r} appears twice; give each key once", path, at=(*path, key)
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            if len(path) < 32:  # deep enough for the format; stops recursive aliases too
                _index(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            if len(path) < 32:
                _index(item, (*path, i), lines, source)

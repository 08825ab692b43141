"""Asking a person a run's question at the terminal.

:func:`ask` puts one waiting question to a person: it shows the task, the prompt and the fields
the JSON Schema expects (:func:`describe_question`), reads a value (:func:`parse_answer`) and
re-asks until plait's own validation accepts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from .._exceptions import InputValidationError
from .._pause import Question, validate_answer
from ._commands import answer_example

__all__ = ["ask", "describe_question", "parse_answer"]


def _type_of(schema: Mapping[str, Any]) -> str:
    """A short description of what a (sub)schema accepts: ``integer ≥ 1``, ``one of "a", "b"``."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return f"exactly {json.dumps(schema['const'])}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type_of(s) for s in schema[key])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type", "any value")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        text = f"array of {_type_of(schema['items'])}"
    bounds = [
        f"{sign} {schema[key]}"
        for key, sign in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    return " ".join([text, *bounds])


def describe_question(question: Question) -> RenderableType:
    """A panel with the task, the prompt and the fields the answer must have."""
    from rich.panel import Panel  # noqa: PLC0415 - only asking a person needs them
    from rich.table import Table  # noqa: PLC0415

    schema = question.schema or {}
    parts: list[RenderableType] = [Text(question.prompt, style="bold")]
    properties: Mapping[str, Any] = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", ()))
        table = Table(box=None, padding=(0, 2), show_edge=False)
        described = any("description" in sub for sub in properties.values())
        for column in ("field", "type", "required", *(("about",) if described else ())):
            table.add_column(column, style="dim" if column == "about" else "")
        for name, sub in properties.items():
            row = [name, _type_of(sub), "yes" if name in required else "no"]
            table.add_row(*row, *((str(sub.get("description", "")),) if described else ()))
        parts += [Text("Answer with a JSON object:"), table]
    elif schema:
        parts.append(Text(f"Answer with: {_type_of(schema)}"))
    else:
        parts.append(Text("Answer with any JSON value."))
    example = json.dumps(answer_example(schema))
    parts.append(Text(f"for example: {example}", style="dim"))
    title = Text(
        f"task {question.task_id}" + (f" (question {question.key})" if question.key else "")
    )
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def _wants_string(schema: Mapping[str, Any] | None) -> bool:
    return bool(schema) and schema is not None and schema.get("type") == "string"


def parse_answer(text: str, schema: Mapping[str, Any] | None) -> Any:
    """``text`` as a JSON value; as the text itself when the schema expects a string.

    Raises:
        ValueError: ``text`` is not JSON (and no string is expected), or is nested deeper than
            Python can read; the message says so.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(
            "the answer is nested deeper than plait can read (about a thousand levels)"
        ) from None
    except json.JSONDecodeError as error:
        if _wants_string(schema):
            return text
        raise ValueError(
            f"{text!r} is not a JSON value ({error.msg}); write e.g. "
            f"{json.dumps(answer_example(schema))}"
        ) from None
    if _wants_string(schema) and not isinstance(value, str):
        return text  # `42` for a string field means the text "42"
    return value


def ask(question: Question, console: Console, *, read: Callable[[str], str] | None = None) -> Any:
    """Ask ``question`` until the answer is valid; return it.

    Shows :func:`describe_question`, reads a line (``read``, by default ``console.input``),
    parses it (:func:`parse_answer`) and checks it with plait's own validation, printing the
    :class:`~plait.InputValidationError` message and asking again when it does not fit.

    Raises:
        EOFError, KeyboardInterrupt: the person ended the input or pressed Ctrl-C.
    """
    read = read or (lambda prompt: console.input(Text(prompt)))  # a task id is not markup
    console.print(describe_question(question))
    while True:
        text = read(f"{question.task_id}> ").strip()
        if not text:
            continue
        try:
            value = parse_answer(text, question.schema)
            validate_answer(question.task_id, question.schema, value, key=question.key)
        except (ValueError, InputValidationError) as error:
            console.print(Text(str(error), style="red"))
            continue
        return value

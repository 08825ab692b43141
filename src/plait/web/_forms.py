"""Forms from JSON Schemas: what to show for a question, and the answer a submitted form makes.

:func:`form_for` turns a question's schema into a tree of :class:`Field` s, which the template
``web/_field.html`` draws:

- ``boolean``: Approve / Reject (two buttons at the top of the form, two choices inside one);
- ``enum`` (or ``const``): a choice among its values;
- ``integer`` / ``number``: a number input with its bounds (``minimum``, ``maximum``, their
  exclusive forms, ``multipleOf`` as the step);
- ``string``: a text input with ``minLength``, ``maxLength`` and ``pattern`` (a long one, or a
  ``format`` of ``textarea``, a text area);
- ``object`` with ``properties``: a fieldset of its properties, nested as deep as they go;
- anything else (arrays, ``anyOf``, no schema): a JSON editor, a text area whose text is JSON.

``$ref`` to the schema's own ``$defs`` / ``definitions`` (what pydantic writes) are followed.
Titles, descriptions and defaults are shown; a default fills the field.

:func:`answer_from` reads a submitted form back into a value. It checks only what the form
itself can get wrong (a number that is not one, JSON that does not parse) and leaves every rule
of the schema to ``plait.answer``'s own validation, so the page accepts exactly what the API
does. :func:`field_of_error` finds the field an ``InputValidationError`` is about, so the page
shows it there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Field", "FormError", "answer_from", "field_of_error", "form_for"]

#: The name of the form field that holds the whole answer (the root of every field name).
ROOT = "answer"

#: Strings whose ``maxLength`` is above this get a text area.
LONG_TEXT = 200

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FormError(ValueError):
    """A submitted form that does not make a value (before any schema rule is checked)."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(slots=True, kw_only=True)
class Field:
    """One input of a question's form (or a fieldset of them)."""

    name: str  # the form field's name: "answer", "answer.amount", "answer.address.city"
    path: tuple[str, ...]  # the property names from the answer's root
    kind: str  # boolean | choice | integer | number | string | text | object | json
    title: str = ""
    description: str = ""
    required: bool = True
    default: Any = None
    has_default: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)  # (value as JSON, label)
    attrs: dict[str, str] = field(default_factory=dict)  # min, max, step, minlength, ...
    children: list[Field] = field(default_factory=list)
    error: str = ""
    value: str = ""  # what the input shows: the default, or what was submitted

    @property
    def json_path(self) -> str:
        """Where this field sits in an answer, as ``jsonschema`` names places: ``$.a.b``."""
        text = "$"
        for part in self.path:
            text += f".{part}" if _IDENTIFIER.match(part) else f"[{json.dumps(part)}]"
        return text

    def walk(self) -> list[Field]:
        """This field and all its descendants, parents first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


def _resolve(schema: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """``schema`` with a local ``$ref`` (``#/$defs/X``) replaced by what it names."""
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 32:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return schema
        target: Any = root
        for escaped in ref[2:].split("/"):
            part = escaped.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return schema
            target = target[part]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **extra} if isinstance(target, Mapping) else target
        depth += 1
    # pydantic writes an optional nested model as allOf: [{$ref}] with a default beside it.
    if isinstance(schema, Mapping) and isinstance(schema.get("allOf"), list):
        parts = schema["allOf"]
        if len(parts) == 1 and set(schema) <= {"allOf", "title", "description", "default"}:
            inner = _resolve(parts[0], root, depth + 1)
            if isinstance(inner, Mapping):
                extra = {k: v for k, v in schema.items() if k != "allOf"}
                return {**inner, **extra}
    return schema


def _kind(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "json"
    if "enum" in schema or "const" in schema:
        return "choice"
    kind = schema.get("type")
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        return "object"
    if kind == "boolean":
        return "boolean"
    if kind in ("integer", "number"):
        return str(kind)
    if kind == "string":
        long = schema.get("format") == "textarea" or schema.get("maxLength", 0) > LONG_TEXT
        return "text" if long else "string"
    return "json"


def _shown(kind: str, value: Any) -> str:
    """A value as its input shows it."""
    if value is None:
        return ""
    if kind in ("choice", "boolean"):
        return json.dumps(value)
    if kind in ("string", "text") and isinstance(value, str):
        return value
    if kind in ("integer", "number") and isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, indent=2)


def _attrs(kind: str, schema: Mapping[str, Any]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if kind in ("integer", "number"):
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(schema.get(key), int | float):
                attrs[attr] = repr(schema[key])
        step = schema.get("multipleOf")
        attrs["step"] = (
            repr(step) if isinstance(step, int | float) else ("1" if kind == "integer" else "any")
        )
    elif kind in ("string", "text"):
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if isinstance(schema.get(key), int):
                attrs[attr] = str(schema[key])
        if kind == "string" and isinstance(schema.get("pattern"), str):
            attrs["pattern"] = schema["pattern"]
    return attrs


def _constraints(kind: str, schema: Mapping[str, Any]) -> str:
    """The rules a person should know before typing (shown under the input)."""
    notes: list[str] = []
    if kind in ("integer", "number"):
        if "minimum" in schema:
            notes.append(f">= {schema['minimum']}")
        if "exclusiveMinimum" in schema:
            notes.append(f"> {schema['exclusiveMinimum']}")
        if "maximum" in schema:
            notes.append(f"<= {schema['maximum']}")
        if "exclusiveMaximum" in schema:
            notes.append(f"< {schema['exclusiveMaximum']}")
        if "multipleOf" in schema:
            notes.append(f"a multiple of {schema['multipleOf']}")
        if kind == "integer":
            notes.insert(0, "a whole number")
    elif kind in ("string", "text"):
        if "minLength" in schema:
            notes.append(f"at least {schema['minLength']} characters")
        if "maxLength" in schema:
            notes.append(f"at most {schema['maxLength']} characters")
        if "pattern" in schema:
            notes.append(f"matching {schema['pattern']}")
    return ", ".join(notes)


def _field(schema: Any, root: Mapping[str, Any], path: tuple[str, ...], *, required: bool) -> Field:
    schema = _resolve(schema, root)
    kind = _kind(schema)
    doc: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    name = ".".join((ROOT, *path))
    has_default = "default" in doc
    made = Field(
        name=name,
        path=path,
        kind=kind,
        title=str(doc.get("title") or (path[-1] if path else "")),
        description=str(doc.get("description") or ""),
        required=required,
        default=doc.get("default"),
        has_default=has_default,
        attrs=_attrs(kind, doc),
    )
    constraints = _constraints(kind, doc)
    if constraints:
        made.attrs["data-rules"] = constraints
    if kind == "choice":
        values = list(doc["enum"]) if "enum" in doc else [doc["const"]]
        made.options = [(json.dumps(v), v if isinstance(v, str) else json.dumps(v)) for v in values]
    elif kind == "object":
        needed = set(doc.get("required") or ())
        made.children = [
            _field(child, root, (*path, str(prop)), required=prop in needed)
            for prop, child in doc["properties"].items()
        ]
    if has_default and kind != "object":
        made.value = _shown(kind, doc["default"])
    return made


def form_for(schema: Any) -> Field:
    """The form of a question whose answer must match ``schema`` (a JSON Schema, or None)."""
    root: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    made = _field(schema, root, (), required=True)
    if schema is None:
        made.attrs["data-any"] = "1"  # any answer: JSON, or else the text as it is
    return made


def _read(made: Field, form: Mapping[str, str]) -> tuple[bool, Any]:
    """(whether the field was given, its value) from the submitted ``form``."""
    if made.kind == "object":
        value: dict[str, Any] = {}
        for child in made.children:
            given, child_value = _read(child, form)
            if given:
                value[child.path[-1]] = child_value
        return True, value
    raw = form.get(made.name)
    made.value = "" if raw is None else raw
    if raw is None or (raw.strip() == "" and made.kind not in ("string", "text")):
        return False, None
    if raw == "" and not made.required:
        return False, None
    if made.kind in ("choice", "boolean"):
        try:
            return True, json.loads(raw)
        except ValueError:
            raise FormError(f"{raw!r} is not one of the choices", name=made.name) from None
    if made.kind == "integer":
        try:
            return True, int(raw.strip())
        except ValueError:
            try:  # 3.0 is an integer to JSON Schema; 3.5 is not, and the schema says so
                number = float(raw)
            except ValueError:
                raise FormError(f"{raw!r} is not a whole number", name=made.name) from None
            return True, int(number) if number.is_integer() else number
    if made.kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise FormError(f"{raw!r} is not a number", name=made.name) from None
        return True, int(number) if number.is_integer() and "." not in raw else number
    if made.kind in ("string", "text"):
        return True, raw
    try:
        return True, json.loads(raw)
    except ValueError as error:
        if not made.path and made.attrs.get("data-any") == "1":
            return True, raw  # a question without a schema takes text as it is
        raise FormError(f"this is not valid JSON: {error}", name=made.name) from None


def answer_from(form_field: Field, form: Mapping[str, str]) -> Any:
    """The answer the submitted ``form`` makes for ``form_field`` (the root of a form).

    Raises:
        FormError: a field holds what its input cannot mean (not a number, not JSON).
    """
    given, value = _read(form_field, form)
    return value if given else None


def field_of_error(form_field: Field, json_path: str) -> Field:
    """The deepest field at or above ``json_path`` (as ``InputValidationError.field`` names
    it: ``amount``, ``address.city``, or ``(the answer)``)."""
    path = "$" if json_path.startswith("(") else "$." + json_path.removeprefix("$.")
    if json_path.startswith("$[") or json_path.startswith("["):
        path = "$" + json_path.removeprefix("$")
    best = form_field
    for candidate in form_field.walk():
        where = candidate.json_path
        inside = path == where or path.startswith((where + ".", where + "["))
        if inside and len(where) > len(best.json_path):
            best = candidate
    return best

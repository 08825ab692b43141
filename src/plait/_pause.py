"""Pausing for a person: questions, their schemas, and checking the answers.

A task with ``pause=Pause(prompt, schema=...)`` waits, once its dependencies have succeeded,
until someone answers; it then runs with the answer in ``ctx.input``. A running task can also ask
mid-way with ``ctx.request_input(...)``. A schema is a JSON Schema (checked with the
``jsonschema`` library) or a pydantic model class (checked by pydantic, stored as its JSON
Schema). An answer is checked before anything is recorded, and a wrong one is refused with an
error that names the task, the field and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._exceptions import InputValidationError, InvalidOptionError
from ._public import publish_exports

__all__ = [
    "NO_DEFAULT",
    "AnswerChannel",
    "InputRequired",
    "Pause",
    "Question",
    "answer_provenance",
    "as_schema_value",
    "schema_document",
    "validate_answer",
]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __reduce__(self) -> str:
        return "NO_DEFAULT"  # unpickles as this module's one instance: `is NO_DEFAULT` holds


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait for a person's answer before the task runs.

    Args:
        prompt: the question, as shown to the person.
        schema: what a valid answer looks like: a JSON Schema (a dict) or a pydantic model class.
        timeout: seconds to wait for an answer, counted from when the question was asked (a
            resumed run counts the time already spent); then the task fails with
            ``InputTimeoutError``, or runs with ``default`` if one is given.
        default: the answer to use when the timeout passes.
    """

    prompt: str
    schema: Any = None
    timeout: float | None = None
    default: Any = NO_DEFAULT

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt:
            raise InvalidOptionError(f"a Pause needs a non-empty prompt, not {self.prompt!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float)
            and self.timeout > 0
            and math.isfinite(self.timeout)
        ):
            raise InvalidOptionError(
                f"a Pause timeout must be a number of seconds > 0, not {self.timeout!r}"
            )
        schema_document(self.schema)  # fail now on a schema that is not one


@dataclass(frozen=True, slots=True)
class Question:
    """A question waiting for an answer: which task asks, what, and in what form.

    ``key`` is ``""`` for a task's ``pause``; for ``ctx.request_input`` it is the key given, or
    the call's 0-based order within the task. ``deadline`` is a Unix time, or None. ``default``
    is the answer used when the deadline passes (``NO_DEFAULT``: none, or not known here -- a
    question read back from a store).
    """

    task_id: str
    prompt: str
    schema: Mapping[str, Any] | None = None
    key: str = ""
    deadline: float | None = None
    asked_at: float = 0.0
    default: Any = NO_DEFAULT


class AnswerChannel(StrEnum):
    """Through what an answer came, as recorded with it (``answered_via``)."""

    API = "api"  # plait.answer, plait.resume(inputs=...) from Python
    CLI = "cli"  # plait resume --input, plait answer
    WEB = "web"  # the page of plait serve


#: The longest name kept as who answered (``answered_by``); longer ones are refused.
MAX_ANSWERER_LENGTH = 200


def answer_provenance(by: str | None, via: AnswerChannel | str) -> tuple[str | None, AnswerChannel]:
    """Who answered and through what, checked: ``by`` stripped (None if blank), ``via`` as an
    :class:`AnswerChannel`.

    Raises:
        InvalidOptionError: ``via`` is not a channel, or ``by`` is not a short one-line name.
    """
    try:
        channel = AnswerChannel(via)
    except ValueError:
        choices = ", ".join(repr(c.value) for c in AnswerChannel)
        raise InvalidOptionError(f"via must be one of {choices}, not {via!r}") from None
    if by is None:
        return None, channel
    if not isinstance(by, str) or "\n" in by or len(by) > MAX_ANSWERER_LENGTH:
        raise InvalidOptionError(
            f"who answered must be a name on one line of at most {MAX_ANSWERER_LENGTH} "
            f"characters, not {by!r}"
        )
    return by.strip() or None, channel


class InputRequired(BaseException):
    """Raised by ``ctx.request_input`` when the answer is not there yet; the engine catches it.

    A BaseException so that a task's ``except Exception`` does not swallow it.
    """

    def __init__(
        self, key: str, prompt: str, schema: Any, timeout: float | None, default: Any
    ) -> None:
        super().__init__(key)
        self.key = key
        self.prompt = prompt
        self.schema = schema
        self.timeout = timeout
        self.default = default

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole, so a question asked in a process or Dask worker reaches the engine.
        return (type(self), (self.key, self.prompt, self.schema, self.timeout, self.default))


def _is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and hasattr(schema, "model_validate")


def schema_document(schema: Any) -> dict[str, Any] | None:
    """The JSON Schema document of ``schema`` (a dict, a pydantic model class, or None).

    Raises:
        InvalidOptionError: ``schema`` is neither, or not a valid JSON Schema.
    """
    if schema is None:
        return None
    if _is_pydantic_model(schema):
        document: dict[str, Any] = schema.model_json_schema()
        return document
    if not isinstance(schema, Mapping):
        raise InvalidOptionError(
            f"a schema must be a JSON Schema (a dict) or a pydantic model class, not {schema!r}"
        )
    import jsonschema  # noqa: PLC0415 - only when a schema is used: it takes 0.1 s to import

    document = dict(schema)
    try:
        jsonschema.validators.validator_for(document).check_schema(document)
    except jsonschema.SchemaError as error:
        raise InvalidOptionError(
            f"the schema is not a valid JSON Schema: {error.message}"
        ) from None
    return document


def as_schema_value(schema: Any, value: Any) -> Any:
    """An answer (already validated, as stored) in the form the task expects: a pydantic model
    instance for a model schema, the value itself otherwise."""
    return schema.model_validate(value) if _is_pydantic_model(schema) else value


def validate_answer(task_id: str, schema: Any, value: Any, *, key: str = "") -> Any:
    """Check ``value`` against ``schema``; return it (a pydantic model instance for a model).

    Raises:
        InputValidationError: the value does not fit; the message names the task, the field
            (as a path into the value) and the rule it broke.
    """
    if schema is None:
        return value
    where = f"task {task_id!r}" + (f" (question {key!r})" if key else "")
    if _is_pydantic_model(schema):
        try:
            return schema.model_validate(value)
        except ValueError as error:  # pydantic's ValidationError, without importing pydantic
            first = error.errors()[0]  # type: ignore[attr-defined]
            path = ".".join(str(p) for p in first["loc"]) or "(the answer)"
            raise InputValidationError(
                f"the answer for {where} is invalid at {path}: {first['msg']}; "
                f"send a value that matches {schema.__name__}",
                task_id=task_id,
                field=path,
                rule=str(first["type"]),
            ) from None
    import jsonschema  # noqa: PLC0415 - see schema_document

    validator = jsonschema.validators.validator_for(schema)(schema)
    problem = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if problem is None:
        return value
    path = "(the answer)" if problem.json_path == "$" else problem.json_path.removeprefix("$.")
    raise InputValidationError(
        f"the answer for {where} is invalid at {path}: {problem.message} "
        f"(rule {problem.validator!r}); send a value that matches the question's schema",
        task_id=task_id,
        field=path,
        rule=str(problem.validator),
    )


publish_exports(globals())  # plait.X, not plait._pause.X: see plait._public

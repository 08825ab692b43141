"""The commands a person copies: ``plait resume`` and ``plait answer``, with an example answer.

The run summary, ``plait status`` and ``plait inputs`` print them with a value that fits the
question's JSON Schema (:func:`answer_example`), quoted for the shell, so that a person can
paste the line and edit the value.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

__all__ = ["answer_command", "answer_example", "resume_command"]


def answer_example(schema: Mapping[str, Any] | None) -> Any:
    """A value that fits ``schema`` (as far as a quick look can tell), to show in a command.

    Uses the schema's ``default``, ``examples``, ``const`` or first ``enum`` value when it has
    one; an object gets its required properties (all of them when none is required).
    """
    if not schema:
        return "..."
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return answer_example(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties: Mapping[str, Any] = schema.get("properties", {})
        wanted = schema.get("required") or list(properties)
        return {name: answer_example(properties.get(name, {})) for name in wanted}
    if kind == "array":
        return []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
        if isinstance(minimum, int | float) and not isinstance(minimum, bool):
            return minimum + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        return 0
    if kind == "null":
        return None
    return "..."


def resume_command(
    run_id: str,
    *,
    store: str | None = None,
    task_id: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> str:
    """The shell command that resumes ``run_id``; with ``task_id``, answering its question with an
    example value of ``schema`` (``--input 'approve={"approved": true}'``)."""
    words = ["plait", "resume", run_id]
    if store is not None:
        words += ["--store", store]
    if task_id is not None:
        words += ["--input", f"{task_id}={json.dumps(answer_example(schema))}"]
    return shlex.join(words)


def answer_command(
    run_id: str, task_id: str, *, store: str | None = None, schema: Mapping[str, Any] | None = None
) -> str:
    """The shell command that answers ``task_id``'s question of a running run (live, or stale)
    with an example value of ``schema``: ``plait answer RUN 'approve={"approved": true}'``."""
    words = ["plait", "answer", run_id, f"{task_id}={json.dumps(answer_example(schema))}"]
    if store is not None:
        words += ["--store", store]
    return shlex.join(words)

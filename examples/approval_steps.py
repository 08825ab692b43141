"""The Python step of ``approval.yaml``: publish a release once a person has said yes."""

from __future__ import annotations

from typing import Any


def publish(build: str, changelog: str, approve: dict[str, Any]) -> str:
    """Publish version ``build`` to the channel the approver chose; refuse without approval."""
    if not approve["approved"]:
        note = approve.get("note", "no reason given")
        raise PermissionError(f"release {build} was not approved: {note}")
    channel = approve.get("channel", "stable")
    return f"published {build} to {channel} ({changelog})"

"""Plain-text output: aligned tables, number formats, and the PASS/FAIL target ledger.

Plain text on purpose: the benchmark must run with only the project's own dependencies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_NUMERIC = re.compile(r"^[-+]?[\d,.]+(e[-+]?\d+)?[x%]?$|^-$|^n/a$|^inf$")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, indent: int = 2) -> str:
    """Format ``rows`` under ``headers``; numeric-looking columns are right-aligned."""
    columns = len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        for c in range(columns):
            widths[c] = max(widths[c], len(row[c]))
    numeric = [bool(rows) and all(_NUMERIC.match(row[c]) for row in rows) for c in range(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[c]) if numeric[c] else cell.ljust(widths[c])
            for c, cell in enumerate(cells)
        ]
        return " " * indent + "  ".join(parts).rstrip()

    rule = " " * indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def heading(text: str) -> str:
    """A section title, underlined, with a blank line before it."""
    return f"\n{text}\n{'=' * len(text)}"


def num(value: float | None, digits: int = 1) -> str:
    """A float with ``digits`` decimals; ``-`` for a missing value."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, digits: int = 2) -> str:
    """A ratio such as ``1.23x``; ``-`` for a missing value."""
    return "-" if value is None else f"{value:.{digits}f}x"


def verdict(ok: bool) -> str:
    """The PASS/FAIL word printed next to a target."""
    return "PASS" if ok else "FAIL"


@dataclass(frozen=True, slots=True)
class Target:
    """One benchmark target: what it demands, what was measured, whether it holds."""

    name: str
    goal: str
    measured: str
    ok: bool


class Ledger:
    """Collects the targets of every part, for the summary at the end."""

    def __init__(self) -> None:
        self.targets: list[Target] = []

    def add(self, name: str, goal: str, measured: str, ok: bool) -> Target:
        """Record a target and return it (so a section can print it at once too)."""
        target = Target(name, goal, measured, ok)
        self.targets.append(target)
        return target

    def render(self) -> str:
        """The summary table of every recorded target."""
        rows = [[t.name, t.goal, t.measured, verdict(t.ok)] for t in self.targets]
        return table(["target", "goal", "measured", "result"], rows)

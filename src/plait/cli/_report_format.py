"""How the run's page writes numbers and times for people: durations, offsets into the run,
clock times, the axis' ticks, percentages for a ``style``, counted words.

Pure functions of their arguments; the view model (``_report_model``) and the timeline's view
(``_report_timeline``) format every figure they show with these.
"""

from __future__ import annotations

import math
import time

__all__ = ["clock", "offset", "pct", "plural", "seconds", "tick_label"]


def seconds(value: float) -> str:
    """A duration for people: ``850 ms``, ``12.4 s``, ``3 m 05 s``, ``2 h 10 m``."""
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} m {rest:02d} s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours} h {rest // 60:02d} m"


def offset(value: float) -> str:
    """A time relative to the run's start, with the precision a tooltip needs."""
    if abs(value) < 60:
        return f"+{value:.3f} s"
    return f"+{seconds(value)}"


def clock(value: float) -> str:
    """A Unix time as ``2026-12-07 05:00:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def tick_label(value: float, step: float) -> str:
    """A tick of the axis, as precise as its step."""
    if step < 1:
        decimals = max(0, math.ceil(-math.log10(step) - 1e-9))
        return f"{value:.{decimals}f} s"
    if step < 60:
        return f"{value:.0f} s"
    if step < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} m" if not rest else f"{minutes} m {rest:02d} s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours} h" if not rest else f"{hours} h {rest // 60:02d} m"


def pct(value: float) -> str:
    """A percentage for a ``style``, as short as exact enough: ``12.5%``."""
    return f"{value:.3f}".rstrip("0").rstrip(".") + "%"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"

"""The terminal: everything plait prints is text, whatever a run's strings contain.

Task ids, workflow names, prompts and errors come from a store that others may write to, and
errors carry what shell commands wrote to stderr. None of it may steer the terminal:

- **no markup**: rich reads ``[bold]`` or ``[/]`` in a string as markup (and ``:smile:`` as an
  emoji code), so a run id with ``[/]`` in it crashed ``plait runs`` for everyone sharing the
  store. :class:`TextConsole` turns markup, emoji codes and highlighting off: a string is shown
  as it is. plait's own styling never comes from markup, only from ``Text`` styles.
- **no control characters**: an escape sequence in a shell task's stderr could recolour the
  terminal, move the cursor, retitle the window or hide text. :class:`TextConsole` shows every
  control character other than newline and tab as its escape (``\\x1b``), wherever it occurs
  (rich itself already drops BEL, backspace, CR, VT and FF from a ``Text``). Strings and
  ``Text`` are escaped as rich renders them, before they are laid out, so a table cell or a
  panel sizes and wraps the escaped text; the text of every rendered segment is checked again
  after layout, so nothing that reaches the terminal by another path is missed. plait's own
  colours and cursor moves are rich's styles and control segments, which pass.

Every console the command line prints with is a :class:`TextConsole`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

__all__ = ["TextConsole", "printable"]

#: C0 controls but tab and newline, DEL and the C1 controls (``\x9b`` starts a sequence too).
_CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
_ESCAPED = {code: f"\\x{code:02x}" for code in _CONTROLS if code not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """``text`` with each control character but tab and newline written as its escape."""
    return text.translate(_ESCAPED)


class TextConsole(Console):
    """A rich console that prints strings as text: no markup, emoji codes or highlighting, and
    control characters shown as escapes (see the module docstring).

    Takes the keyword arguments of :class:`rich.console.Console`, but ``markup``, ``emoji`` and
    ``highlight``, which it turns off.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        """``text`` as a :class:`Text` with its control characters escaped: what rich measures
        and lays out a string cell of a table with."""
        rendered = super().render_str(text, **options)
        return rendered if rendered.plain.isprintable() else self._printable(rendered)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        """Rich's rendering of ``renderable``, its text made :func:`printable` (see the module
        docstring)."""
        if isinstance(renderable, str):
            renderable = self.render_str(renderable)
        elif isinstance(renderable, Text) and not renderable.plain.isprintable():
            renderable = self._printable(renderable)
        for segment in super().render(renderable, options):
            text = segment.text
            if segment.control or text.isprintable() or text == "\n":
                yield segment
            else:
                yield Segment(printable(text), segment.style)

    def _printable(self, text: Text) -> Text:
        """A copy of ``text`` (same styles, justification and wrapping) with its control
        characters escaped."""
        copy = text.blank_copy()
        for segment in text.render(self, end=""):
            copy.append(printable(segment.text), segment.style)
        return copy

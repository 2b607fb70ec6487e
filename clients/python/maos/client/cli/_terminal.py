"""In-place redrawing with plain ANSI escapes (no curses), and its non-TTY fallback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TextIO

_UP_AND_CLEAR = "\x1b[1A\x1b[2K"  # cursor up one line, erase it
_CLEAR_LINE = "\r\x1b[2K"


def is_tty(stream: TextIO) -> bool:
    """True when `stream` is an interactive terminal that understands ANSI escapes (TERM is not "dumb")."""
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return interactive and os.environ.get("TERM") != "dumb"


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, lines) of the terminal, with a sane fallback when unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns > 0 and size.lines > 0:  # pseudo-terminals may report 0x0
            return size.columns, size.lines
    except (AttributeError, ValueError, OSError):
        pass
    fallback = shutil.get_terminal_size((100, 30))
    return fallback.columns, fallback.lines


class LiveRegion:
    """A block of lines at the bottom of a terminal, redrawn in place on each update.

    Lines are cut to the terminal width: a wrapped line would break the
    cursor-up arithmetic and leave stale rows behind.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._height = 0

    def update(self, lines: Sequence[str]) -> None:
        """Replace the region's previous lines with `lines`."""
        columns, rows = terminal_size(self._stream)
        shown = [line[: max(columns - 1, 1)] for line in lines[: max(rows - 1, 1)]]
        out = [_UP_AND_CLEAR * self._height, _CLEAR_LINE]
        out.append("\n".join(shown))
        out.append("\n" if shown else "")
        self._stream.write("".join(out))
        self._stream.flush()
        self._height = len(shown)

    def clear(self) -> None:
        """Erase the region (e.g. before printing a final report in its place)."""
        if self._height:
            self._stream.write(_UP_AND_CLEAR * self._height + _CLEAR_LINE)
            self._stream.flush()
            self._height = 0

"""Fixed-width text for a terminal: a table that fits :data:`WIDTH` columns and notes
wrapped to it.

A table too wide for the terminal leaves out its least important columns, as pandas
and rich do, and says which; nothing is abbreviated inside a cell, so what is shown
reads as it would in the full table.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

#: The columns terminal text fits: wide enough for the figures that matter, narrow
#: enough for a terminal beside an editor.
WIDTH = 100
_GAP = "  "


@dataclass(frozen=True)
class Column:
    """One column of a text table.

    Attributes:
        heading: the column's name, its first line.
        cells: one text per row.
        left: aligned left (words) rather than right (figures).
        rank: 0 for a column always shown; otherwise the order in which columns are
            left out when the table is too wide, the highest rank first.
    """

    heading: str
    cells: Sequence[str]
    left: bool = False
    rank: int = 0

    @property
    def width(self) -> int:
        """The characters of its widest line."""
        return max([len(self.heading), *(len(cell) for cell in self.cells)])

    def line(self, text: str) -> str:
        """``text`` padded to the column's width, on the column's side."""
        return text.ljust(self.width) if self.left else text.rjust(self.width)


def fitted(columns: Sequence[Column], width: int = WIDTH) -> tuple[list[Column], list[Column]]:
    """The columns that fit ``width`` characters, in their order, and those left out
    (highest rank first) to make them fit."""
    kept = list(columns)
    left_out = []
    for column in sorted((c for c in columns if c.rank), key=lambda c: -c.rank):
        if table_width(kept) <= width:
            break
        kept.remove(column)
        left_out.append(column)
    return kept, left_out


def table_width(columns: Sequence[Column]) -> int:
    """The characters of a line of the table of ``columns``."""
    return sum(column.width for column in columns) + len(_GAP) * (len(columns) - 1)


def render(columns: Sequence[Column]) -> list[str]:
    """The table's lines: the headings, then one line per row, without trailing
    spaces."""
    rows = zip(*(column.cells for column in columns))
    lines = [[column.line(column.heading) for column in columns],
             *([column.line(cell) for column, cell in zip(columns, row)] for row in rows)]
    return [_GAP.join(line).rstrip() for line in lines]


def wrapped(text: str, width: int = WIDTH) -> str:
    """``text`` wrapped to ``width`` characters, continuation lines indented; words
    (a path, a number range) are never broken."""
    return textwrap.fill(text, width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)

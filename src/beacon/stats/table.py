"""A small tabular form shared by every output: CSV, terminal text, HTML and JSON.

Every statistics result converts to one or more :class:`Table` objects, so the
dashboard, the API's ``?format=csv`` and the command line print the very same
numbers with the same column names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

__all__ = ["Cell", "Column", "ColumnKind", "Table", "format_cell"]

Cell = str | int | float | date | datetime | None
ColumnKind = Literal["text", "int", "rate", "date", "datetime"]

#: Spreadsheet programs run cells starting with these as formulas.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Column:
    """A column: ``key`` for CSV headers and JSON, ``label`` for people, ``kind`` for format."""

    key: str
    label: str
    kind: ColumnKind = "int"


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of cells under named columns."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        """The rows as dictionaries keyed by column key."""
        keys = [column.key for column in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]

    def to_csv(self) -> str:
        """RFC 4180 CSV with a header line; text cells that a spreadsheet would run are quoted."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([column.key for column in self.columns])
        for row in self.rows:
            writer.writerow(
                [_csv_cell(column, cell) for column, cell in zip(self.columns, row, strict=True)]
            )
        return buffer.getvalue()

    def to_text(self) -> str:
        """Columns aligned for a terminal: text to the left, numbers to the right."""
        header = [column.label for column in self.columns]
        body = [
            [format_cell(column, cell) for column, cell in zip(self.columns, row, strict=True)]
            for row in self.rows
        ]
        widths = [max(len(line[index]) for line in [header, *body]) for index in range(len(header))]
        lines = [_align(self.columns, header, widths)]
        lines.append("  ".join("-" * width for width in widths))
        lines.extend(_align(self.columns, line, widths) for line in body)
        return "\n".join(line.rstrip() for line in lines) + "\n"


def format_cell(column: Column, cell: Cell) -> str:
    """A cell as people read it: rates in percent, dates in ISO form, empty for none."""
    if cell is None:
        return "–" if column.kind == "rate" else ""
    if column.kind == "rate" and isinstance(cell, int | float):
        return f"{cell * 100:.1f}%"
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def _csv_cell(column: Column, cell: Cell) -> str:
    if cell is None:
        return ""
    if column.kind == "rate" and isinstance(cell, int | float):
        return f"{cell:.4f}"
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(cell, date):
        return cell.isoformat()
    text = str(cell)
    if column.kind == "text" and text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def _align(columns: Sequence[Column], cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = []
    for column, cell, width in zip(columns, cells, widths, strict=True):
        parts.append(cell.ljust(width) if column.kind == "text" else cell.rjust(width))
    return "  ".join(parts)

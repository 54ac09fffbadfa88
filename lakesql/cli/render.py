"""Render result sets as text: table, csv, json, markdown, line."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json", "markdown", "line")


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time, dt.timedelta)):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def render(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, max_width: int = 60
) -> str:
    """Render one result set.

    Args:
        columns: column names.
        rows: the rows.
        fmt: one of FORMATS.
        max_width: longest cell shown in the table formats (longer ones end with '…').

    Returns:
        The text, ending with a newline.
    """
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _text(v) for v in row] for row in rows])
        return out.getvalue()
    if fmt == "json":
        return (
            json.dumps(
                [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
            )
            + "\n"
        )
    if fmt == "line":
        width = max((len(c) for c in columns), default=0)
        blocks = [
            "\n".join(f"{c.rjust(width)} = {_text(v)}" for c, v in zip(columns, row, strict=True))
            for row in rows
        ]
        return "\n\n".join(blocks) + ("\n" if blocks else "")

    def cell(v: Any) -> str:
        text = _text(v).replace("\n", "\\n")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row[i], (int, float, decimal.Decimal)) or row[i] is None for row in rows)
        and bool(rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> list[str]:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return parts

    if fmt == "markdown":
        out_lines = [
            "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
        ]
        out_lines.append(
            "|"
            + "|".join(
                ("-" * (w + 1) + ":") if num else "-" * (w + 2)
                for w, num in zip(widths, numeric, strict=True)
            )
            + "|"
        )
        out_lines += ["| " + " | ".join(line(r)) + " |" for r in cells]
        return "\n".join(out_lines) + "\n"
    out_lines = [
        " " + " | ".join(c.center(w) for c, w in zip(columns, widths, strict=True)),
        "-" + "-+-".join("-" * w for w in widths) + "-",
    ]
    out_lines += [" " + " | ".join(line(r)) for r in cells]
    n = len(rows)
    out_lines.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(line.rstrip() for line in out_lines) + "\n"

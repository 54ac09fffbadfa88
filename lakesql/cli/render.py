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

    if fmt == "markdown":
        return _markdown(columns, rows, max_width)
    return render_table(columns, rows, max_width=max_width)


def _cell(v: Any, max_width: int) -> str:
    text = _text(v).replace("\n", "\\n")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _numeric(rows: Sequence[Sequence[Any]], ncols: int) -> list[bool]:
    return [
        bool(rows)
        and all(isinstance(row[i], (int, float, decimal.Decimal)) or row[i] is None for row in rows)
        for i in range(ncols)
    ]


def _pad(values: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> list[str]:
    return [
        v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
    ]


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int) -> str:
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = _numeric(rows, len(columns))
    out_lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"]
    out_lines.append(
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if num else "-" * (w + 2)
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    out_lines += ["| " + " | ".join(_pad(r, widths, numeric)) + " |" for r in cells]
    return "\n".join(out_lines) + "\n"


# The narrowest a column gets when a table must fit a terminal (then columns are left out).
_NARROWEST = 8


def render_table(
    columns: Sequence[str],
    head: Sequence[Sequence[Any]],
    tail: Sequence[Sequence[Any]] = (),
    *,
    total: int | None = None,
    width: int | None = None,
    max_width: int = 60,
) -> str:
    """The table format, optionally shortened for a terminal.

    Args:
        columns: column names.
        head: the first rows.
        tail: the last rows, when rows between `head` and `tail` were left out.
        total: how many rows the result has (default: head + tail); rows left out are marked by
            a row of `…` and counted in the footer.
        width: the terminal width: the widest cells (names too) are narrowed, down to 8
            characters, then columns in the middle are left out (marked by a `…` column) until
            each line fits.
        max_width: longest cell shown (longer ones end with `…`).

    Returns:
        The text, ending with a newline.
    """
    rows = [*head, *tail]
    n = len(rows) if total is None else total
    hidden_rows = n - len(rows)
    numeric = _numeric(rows, len(columns))

    def layout(caps: Sequence[int]) -> tuple[list[str], list[list[str]], list[int]]:
        # column names are cut only to fit a terminal (as before, for `lakesql -c` and files)
        names = [
            _cell(c, cap) if width is not None else c for c, cap in zip(columns, caps, strict=True)
        ]
        cells = [[_cell(v, cap) for v, cap in zip(row, caps, strict=True)] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(names)]
        return names, cells, widths

    def line_width(widths: Sequence[int]) -> int:
        return sum(widths) + 3 * (len(widths) - 1) + 2

    names, cells, widths = layout([max_width] * len(columns))
    if width is not None and line_width(widths) > width:
        # narrow the widest columns first: the widest cap that fits, but not under _NARROWEST
        cap = max(widths)
        while cap > _NARROWEST and line_width([min(w, cap) for w in widths]) > width:
            cap -= 1
        names, cells, widths = layout([min(w, cap) for w in widths])
    keep = list(range(len(columns)))
    if width is not None and len(columns) > 1 and line_width(widths) > width:
        # keep columns from both ends, left first, with a `…` column between them
        left: list[int] = []
        right: list[int] = []
        used = 2 + 1  # the borders and the `…` column
        lo, hi = 0, len(columns) - 1
        take_left = True
        while lo <= hi:
            i = lo if take_left else hi
            extra = widths[i] + 3
            if used + extra > width:
                break
            used += extra
            if take_left:
                left.append(i)
                lo += 1
            else:
                right.insert(0, i)
                hi -= 1
            take_left = not take_left
        if not left:
            left = [0]
        keep = [*left, -1, *right]
    gap = "…"

    def pick(values: Sequence[str], fill: str) -> list[str]:
        return [values[i] if i >= 0 else fill for i in keep]

    k_widths = [widths[i] if i >= 0 else len(gap) for i in keep]
    k_numeric = [numeric[i] if i >= 0 else False for i in keep]
    out_lines = [
        " " + " | ".join(c.center(w) for c, w in zip(pick(names, gap), k_widths, strict=True)),
        "-" + "-+-".join("-" * w for w in k_widths) + "-",
    ]
    body = [" " + " | ".join(_pad(pick(r, gap), k_widths, k_numeric)) for r in cells]
    if hidden_rows > 0:
        marker = " " + " | ".join(_pad([gap] * len(keep), k_widths, k_numeric))
        body.insert(len(head), marker)
    out_lines += body
    footer = f"({n} row{'s' if n != 1 else ''}"
    if hidden_rows > 0:
        footer += f", {len(rows)} shown"
    if -1 in keep:
        footer += f"; {len(columns)} columns, {len(keep) - 1} shown"
    out_lines.append(footer + ")")
    return "\n".join(line.rstrip() for line in out_lines) + "\n"

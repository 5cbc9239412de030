"""Server-rendered SVG bar charts and CSV text for the statistics (no JavaScript library).

Why by hand: a chart is a few rectangles and labels, and every label can be text a
person typed (a unit's name, an officer number given at the kiosk). Each one passes
through markupsafe's ``escape`` here, inside the SVG, so nothing in it can become markup;
the CSV neutralises cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

#: Bars drawn at most; the rest are counted in a last line ("and N more").
MAX_BARS = 20
_ROW = 26
_LABEL_W = 260
_BAR_W = 560
_PAD = 8


def _label(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    more: str = "",
    marker: tuple[float, str] | None = None,
) -> Markup:
    """A horizontal bar chart: one bar per (label, value), longest first as given, at most
    :data:`MAX_BARS`; ``more`` is the line that says how many were left out ({n} in it);
    ``marker`` a vertical line at a value with its label (the policy's minimum)."""
    shown = list(bars[:MAX_BARS])
    left_out = len(bars) - len(shown)
    top = max([v for _, v in shown] + ([marker[0]] if marker else []) + [0])
    scale = _BAR_W / top if top > 0 else 0.0
    height = _PAD * 2 + _ROW * (len(shown) + (1 if left_out else 0) + (1 if marker else 0))
    width = _LABEL_W + _BAR_W + 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="stats-chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    y = _PAD
    for label, value in shown:
        w = max(0.0, value * scale)
        parts.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 17}" text-anchor="end" class="label">'
            f"{escape(_label(label))}</text>"
            f'<rect x="{_LABEL_W}" y="{y + 4}" width="{w:.1f}" height="{_ROW - 8}" class="bar">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></rect>"
            f'<text x="{_LABEL_W + w + 6:.1f}" y="{y + 17}" class="value">'
            f"{escape(_number(value))}</text>"
        )
        y += _ROW
    if left_out:
        parts.append(
            f'<text x="{_LABEL_W}" y="{y + 17}" class="more">'
            f"{escape(more.replace('{n}', str(left_out)))}</text>"
        )
        y += _ROW
    if marker is not None and scale:
        x = _LABEL_W + marker[0] * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{_PAD}" x2="{x:.1f}" y2="{y}" class="marker"/>'
            f'<text x="{x:.1f}" y="{y + 16}" text-anchor="middle" class="marker-label">'
            f"{escape(marker[1])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


#: A cell starting with one of these is run by spreadsheets as a formula (OWASP "CSV
#: injection"): tab and carriage return too, which some strip before looking.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """One CSV cell: empty for None, numbers as written, text that a spreadsheet would
    take for a formula prefixed with a single quote (shown, never run)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """The table as CSV (RFC 4180 quoting, CRLF line ends), a header line first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()


__all__ = ["FORMULA_START", "MAX_BARS", "bar_chart", "csv_text", "safe_cell"]

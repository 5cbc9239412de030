"""Line plots as inline SVG, drawn on the server: no chart library, no JavaScript.

Every piece of text in the SVG (titles, labels, tooltips) goes through ``escape``, so
a value a recorder chose cannot become markup; numbers are formatted, never pasted.
Each point is also a ``<circle>`` carrying its value (``data-value``) and a tooltip,
so the plot is readable without a mouse and testable without guessing pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560
HEIGHT = 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 14, 30
#: Points drawn as circles at most; beyond, the line alone.
MAX_MARKERS = 300


@dataclass(frozen=True)
class Series:
    """One quantity over time: (seconds since the epoch, value) oldest first."""

    key: str
    title: str
    unit: str
    points: Sequence[tuple[float, float]]
    #: Fixed axis range (e.g. 0..100 %); None: from the data.
    low: float | None = None
    high: float | None = None


def _num(v: float) -> str:
    """A value as written in a tooltip or data-value: exact, without a needless ".0"."""
    v = 0.0 if abs(v) < 1e-12 else float(v)  # never "-0"
    return str(int(v)) if v.is_integer() else repr(v)


def _tick(v: float) -> str:
    """An axis label: four significant digits (a drift of 0.0003 s is not "0")."""
    v = 0.0 if abs(v) < 1e-12 else float(v)
    return format(v, ".4g")


def _range(s: Series) -> tuple[float, float]:
    values = [v for _, v in s.points]
    low = min(values) if s.low is None else s.low
    high = max(values) if s.high is None else s.high
    if s.low is None and s.high is None and low == high:
        low, high = low - 1, high + 1
    elif high <= low:
        high = low + 1
    return low, high


def svg(s: Series, when: Callable[[float], str], empty: str) -> Markup:
    """The plot of ``s``; ``when(t)`` words a time for the axis and tooltips, ``empty``
    is said when there is nothing to draw."""
    title = escape(f"{s.title} ({s.unit})" if s.unit else s.title)
    head = (
        f'<svg class="plot" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" data-series="{escape(s.key)}" aria-label="{title}">'
        f"<title>{title}</title>"
    )
    if not s.points:
        text = escape(empty)
        return Markup(
            f'{head}<text class="empty" x="{WIDTH // 2}" y="{HEIGHT // 2}" '
            f'text-anchor="middle">{text}</text></svg>'
        )
    low, high = _range(s)
    t0, t1 = s.points[0][0], s.points[-1][0]
    span = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def xy(t: float, v: float) -> tuple[float, float]:
        x = _LEFT + (t - t0) / span * plot_w if t1 > t0 else _LEFT + plot_w / 2
        y = _TOP + (high - v) / (high - low) * plot_h
        return round(x, 1), round(min(max(y, _TOP), _TOP + plot_h), 1)

    parts = [head, f'<rect class="frame" x="{_LEFT}" y="{_TOP}" width="{plot_w}" '
             f'height="{plot_h}"/>']  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        value = low + (high - low) * (1 - frac)
        y = round(_TOP + frac * plot_h, 1)
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y}" x2="{WIDTH - _RIGHT}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{escape(_tick(value))}</text>"
        )
    if low < 0 < high:
        _, y0 = xy(t0, 0.0)
        parts.append(f'<line class="zero" x1="{_LEFT}" y1="{y0}" x2="{WIDTH - _RIGHT}" y2="{y0}"/>')
    coords = [xy(t, v) for t, v in s.points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    parts.append(f'<polyline class="line" points="{line}"/>')
    if len(coords) <= MAX_MARKERS:
        for (t, v), (x, y) in zip(s.points, coords, strict=True):
            tip = escape(f"{when(t)}: {_num(v)} {s.unit}".rstrip())
            parts.append(
                f'<circle class="point" cx="{x}" cy="{y}" r="2.5" data-value="{escape(_num(v))}">'
                f"<title>{tip}</title></circle>"
            )
    base = HEIGHT - 8
    parts.append(f'<text class="tick" x="{_LEFT}" y="{base}">{escape(when(t0))}</text>')
    if t1 > t0:
        parts.append(
            f'<text class="tick" x="{WIDTH - _RIGHT}" y="{base}" text-anchor="end">'
            f"{escape(when(t1))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def series(rows: Sequence[dict[str, object]], column: str) -> list[tuple[float, float]]:
    """(time, value) of ``column`` in status rows, skipping rows without it."""
    out = []
    for r in rows:
        v, t = r.get(column), r.get("at")
        if isinstance(v, int | float) and isinstance(t, int | float) and math.isfinite(v):
            out.append((float(t), float(v)))
    return out

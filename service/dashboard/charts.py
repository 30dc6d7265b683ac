"""Server-rendered inline SVG charts for the dashboard: no script, no CDN, readable offline.

One colour per series on every chart (:data:`COLOURS`): the paper account and what it holds are
always blue, the strategy's target the light blue of the same family, static ERC orange,
buy-and-hold green; regimes are greys turning red with stress (a colour no other series uses) and
prices near-black. Values that are fractions are drawn on percent axes. Legends are HTML above
each chart (:func:`legend`), so they never cover data.

Each ``<svg>`` carries ``data-chart`` and each drawn series ``data-series`` and ``data-points``
(how many values it drew): what the browser test reads to know a panel shows data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

__all__ = [
    "COLOURS",
    "Bars",
    "Line",
    "bar_chart",
    "legend",
    "line_chart",
    "nice_ticks",
    "percent",
    "regime_chart",
    "regime_colour",
]

COLOURS: Mapping[str, str] = {
    "paper": "#1f77b4",
    "held": "#1f77b4",
    "target": "#9ecae1",
    "erc_static": "#ff7f0e",
    "buy_hold": "#2ca02c",
    "price": "#252525",
    "reference": "#7f7f7f",
}
_REGIMES: Mapping[str, str] = {
    "calm": "#e3e3e3",
    "normal": "#bdbdbd",
    "elevated": "#fc9272",
    "stress": "#de2d26",
}
# viewBox sizes: a chart across the page, and one in a half-width panel (text stays ~11 px).
WIDE, NARROW = (960, 250), (480, 230)
_PAD = {"left": 52, "right": 56, "top": 10, "bottom": 26}


def regime_colour(label: str) -> str:
    return _REGIMES.get(label, "#9e9e9e")


@dataclass(frozen=True)
class Line:
    """A series over dates; ``key`` picks its colour in :data:`COLOURS`."""

    key: str
    label: str
    points: Sequence[tuple[date, float]]


@dataclass(frozen=True)
class Bars:
    """One value per category; ``key`` picks its colour in :data:`COLOURS`."""

    key: str
    label: str
    values: Sequence[float]


def percent(value: float, step: float = 0.01) -> str:
    """A fraction as a percentage with as many decimals as ``step`` needs (0.025 -> 2.5%)."""
    pct = abs(step) * 100
    decimals = next((d for d in range(2) if abs(round(pct, d) - pct) < 1e-9 * max(pct, 1)), 2)
    text = f"{value * 100:.{decimals}f}%"
    if text.startswith("-") and not text.strip("-0.%"):
        text = text[1:]  # "-0%" is a rounding, not a loss
    return text.replace("-", "\N{MINUS SIGN}")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round ticks (1, 2, 2.5 or 5 times a power of ten) covering the range."""
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError(f"tick range must be finite, got {low!r}..{high!r}")
    if high <= low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high - step * 1e-9:  # the last tick at or above the highest value
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


class _Frame:
    """Maps data to the plot area of a chart of ``size`` (viewBox width, height)."""

    def __init__(
        self, size: tuple[int, int], x_range: tuple[float, float], y_ticks: Sequence[float]
    ) -> None:
        self.width, self.height = size
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.ticks = list(y_ticks)
        self.left, self.right = _PAD["left"], self.width - _PAD["right"]
        self.top, self.bottom = _PAD["top"], self.height - _PAD["bottom"]

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.right - self.left)

    def y(self, value: float, low: float | None = None, high: float | None = None) -> float:
        lo = self.y0 if low is None else low
        hi = self.y1 if high is None else high
        span = (hi - lo) or 1.0
        return self.bottom - (value - lo) / span * (self.bottom - self.top)


def _open(chart: str, title: str, size: tuple[int, int]) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(chart)}" viewBox="0 0 {size[0]} {size[1]}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _y_axis(frame: _Frame, fmt: str = "percent") -> str:
    step = frame.ticks[1] - frame.ticks[0] if len(frame.ticks) > 1 else 0.01
    parts = []
    for tick in frame.ticks:
        y = frame.y(tick)
        label = percent(tick, step) if fmt == "percent" else f"{tick:g}"
        parts.append(
            f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    return "".join(parts)


def _x_axis(frame: _Frame, days: Sequence[date]) -> str:
    if not days:
        return ""
    picks = sorted({days[round(i * (len(days) - 1) / 3)] for i in range(4)})
    parts = [
        f'<text class="tick" x="{frame.x(d.toordinal()):.1f}" y="{frame.height - 8}" '
        f'text-anchor="middle">{d.isoformat()}</text>'
        for d in picks
    ]
    return "".join(parts)


def _markup(parts: Sequence[str]) -> Markup:
    """The chart as markup: every text in ``parts`` was escaped where it was formatted in."""
    return Markup("".join(parts))  # nosec B704 - labels, titles and notes pass through escape()


def _empty(chart: str, title: str, why: str, size: tuple[int, int]) -> Markup:
    return _markup(
        [
            _open(chart, title, size),
            f'<text class="empty" x="{size[0] / 2}" y="{size[1] / 2}" text-anchor="middle">',
            f"{escape(why)}</text></svg>",
        ]
    )


def line_chart(
    chart: str, title: str, lines: Sequence[Line], *, empty: str, size: tuple[int, int] = WIDE
) -> Markup:
    """Lines of fractions over dates on a percent axis (e.g. returns since the start)."""
    drawn = [line for line in lines if line.points]
    if not drawn:
        return _empty(chart, title, empty, size)
    days = sorted({d for line in drawn for d, _ in line.points})
    values = [v for line in drawn for _, v in line.points]
    ticks = nice_ticks(min(values), max(values))
    frame = _Frame(size, (days[0].toordinal(), days[-1].toordinal()), ticks)
    parts = [_open(chart, title, size), _y_axis(frame), _x_axis(frame, days)]
    if frame.y0 < 0 < frame.y1:
        parts.append(
            f'<line class="zero" x1="{frame.left}" x2="{frame.right}" '
            f'y1="{frame.y(0):.1f}" y2="{frame.y(0):.1f}"/>'
        )
    for line in drawn:
        points = " ".join(f"{frame.x(d.toordinal()):.1f},{frame.y(v):.1f}" for d, v in line.points)
        last_day, last = line.points[-1]
        parts.append(
            f'<polyline class="series" data-series="{escape(line.key)}" '
            f'data-points="{len(line.points)}" points="{points}" fill="none" '
            f'stroke="{COLOURS[line.key]}"><title>{escape(line.label)}: {escape(percent(last))} '
            f"on {last_day.isoformat()}</title></polyline>"
        )
        if len(line.points) == 1:  # a single value is a dot, not an invisible line
            x, y = frame.x(last_day.toordinal()), frame.y(last)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[line.key]}"/>')
    parts.append("</svg>")
    return _markup(parts)


def regime_chart(
    title: str,
    days: Sequence[date],
    probabilities: Mapping[str, Sequence[float]],
    price: Sequence[tuple[date, float]],
    *,
    empty: str,
    size: tuple[int, int] = WIDE,
) -> Markup:
    """Stacked filtered probabilities (percent axis, left) under a price line (right axis)."""
    if not days or not probabilities:
        return _empty("regimes", title, empty, size)
    span = (days[0].toordinal(), days[-1].toordinal())
    frame = _Frame(size, span, [0.0, 0.25, 0.5, 0.75, 1.0])
    parts = [_open("regimes", title, size), _y_axis(frame), _x_axis(frame, days)]
    xs = [frame.x(d.toordinal()) for d in days]
    below = [0.0] * len(days)
    for label, probs in probabilities.items():
        above = [b + p for b, p in zip(below, probs, strict=True)]
        if len(days) == 1:  # a one-day band: a bar the width of a few pixels
            xs_band = [xs[0] - 3, xs[0] + 3]
            top, bottom = [above[0]] * 2, [below[0]] * 2
        else:
            xs_band, top, bottom = xs, above, below
        edge = [f"{x:.1f},{frame.y(v):.1f}" for x, v in zip(xs_band, top, strict=True)]
        back = [f"{x:.1f},{frame.y(v):.1f}" for x, v in zip(xs_band, bottom, strict=True)][::-1]
        parts.append(
            f'<polygon class="band" data-series="regime-{escape(label)}" '
            f'data-points="{len(probs)}" points="{" ".join(edge + back)}" '
            f'fill="{regime_colour(label)}"><title>P({escape(label)}) {escape(percent(probs[-1]))} '
            f"on {days[-1].isoformat()}</title></polygon>"
        )
        below = above
    if price:
        values = [v for _, v in price]
        ticks = nice_ticks(min(values), max(values), 4)
        low, high = ticks[0], ticks[-1]
        points = " ".join(
            f"{frame.x(d.toordinal()):.1f},{frame.y(v, low, high):.1f}" for d, v in price
        )
        parts.append(
            f'<polyline class="series" data-series="price" data-points="{len(price)}" '
            f'points="{points}" fill="none" stroke="{COLOURS["price"]}"/>'
        )
        parts += [
            f'<text class="tick" x="{frame.right + 6}" y="{frame.y(t, low, high) + 4:.1f}">'
            f"{t:g}</text>"
            for t in ticks
        ]
    parts.append("</svg>")
    return _markup(parts)


def bar_chart(
    chart: str,
    title: str,
    categories: Sequence[str],
    bars: Sequence[Bars],
    *,
    reference: float | None = None,
    empty: str,
    size: tuple[int, int] = NARROW,
) -> Markup:
    """Grouped bars of fractions per category on a percent axis; ``reference`` a dashed level."""
    if not categories or not bars:
        return _empty(chart, title, empty, size)
    values = [v for b in bars for v in b.values] + [0.0] + ([reference] if reference else [])
    frame = _Frame(size, (0.0, float(len(categories))), nice_ticks(min(values), max(values), 5))
    parts = [_open(chart, title, size), _y_axis(frame)]
    slot = (frame.right - frame.left) / len(categories)
    width = slot * 0.7 / len(bars)
    zero = frame.y(0.0)
    for i, name in enumerate(categories):
        middle = frame.left + slot * (i + 0.5)
        parts.append(
            f'<text class="tick" x="{middle:.1f}" y="{frame.height - 8}" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    for j, series in enumerate(bars):
        for i, value in enumerate(series.values):
            x = frame.left + slot * i + slot * 0.15 + width * j
            y = frame.y(value)
            parts.append(
                f'<rect class="bar" data-series="{escape(series.key)}" data-points="1" '
                f'x="{x:.1f}" y="{min(y, zero):.1f}" width="{width:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{COLOURS[series.key]}">'
                f"<title>{escape(series.label)} {escape(categories[i])}: "
                f"{escape(percent(value, 0.001))}</title></rect>"
            )
    if reference is not None:
        y = frame.y(reference)
        parts.append(
            f'<line class="reference" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{COLOURS["reference"]}"/>'
        )
    parts.append("</svg>")
    return _markup(parts)


def legend(items: Sequence[tuple[str, str]]) -> Markup:
    """An HTML legend: ``(colour key or regime label, text)`` pairs, swatch then text."""
    spans = []
    for key, text in items:
        colour = COLOURS.get(key) or regime_colour(key)
        spans.append(  # an SVG swatch: no style attribute, which the page's CSP forbids
            f'<span class="key"><svg class="swatch" viewBox="0 0 12 12" aria-hidden="true">'
            f'<rect width="12" height="12" fill="{colour}"/></svg>{escape(text)}</span>'
        )
    return _markup(['<div class="legend">', *spans, "</div>"])

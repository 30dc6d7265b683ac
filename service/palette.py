"""One colour per thing, on every chart: the series, the regimes and the assets.

Three palettes that never share a colour, so a colour keeps its meaning from one chart to the
next (the old report drew 60/40 red in one chart and green in the next, and used blue and
orange for regimes in one and for assets in the next):

- **series** (a strategy's path: the strategy, static ERC, every benchmark): saturated colours,
  the strategy always blue and static ERC always orange, as on the dashboard; the
  volatility-matched static ERC is a lighter orange drawn dashed (it *is* static ERC, scaled);
- **regimes**: light greys turning red with stress, drawn as filled areas only;
- **assets** (what a portfolio holds, and cash): muted colours, in the portfolio's symbol order,
  cash always the same sand colour.

No plotting library is imported here: the tearsheet (matplotlib) and the dashboard (SVG) read
the same hex strings.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ASSET_COLOURS",
    "CASH_COLOUR",
    "REGIME_COLOURS",
    "SERIES_COLOURS",
    "SERIES_TITLES",
    "asset_colours",
    "dashed",
    "regime_colour",
    "series_colour",
    "series_title",
]

# A strategy's path; the dashboard's "paper" account is the strategy, traded.
SERIES_COLOURS: dict[str, str] = {
    "strategy": "#1f77b4",
    "paper": "#1f77b4",
    "erc_static": "#ff7f0e",
    "erc_static_vol_matched": "#ffbb78",
    "buy_hold": "#2ca02c",
    "equal_weight": "#9467bd",
    "sixty_forty": "#8c564b",
    "equal_weight_quarterly": "#393b79",
    "inverse_vol": "#637939",
}
# Any other series (a benchmark added later) takes the next of these, in order of appearance.
_MORE_SERIES = ("#7b4173", "#843c39", "#3182bd", "#31a354", "#756bb1")
_DASHED = frozenset({"erc_static_vol_matched"})

SERIES_TITLES: dict[str, str] = {
    "strategy": "strategy",
    "paper": "paper account",
    "erc_static": "static ERC",
    "erc_static_vol_matched": "static ERC at the strategy's volatility",
    "buy_hold": "buy and hold",
    "equal_weight": "equal weight",
    "sixty_forty": "60/40",
    "equal_weight_quarterly": "equal weight, rebalanced quarterly",
    "inverse_vol": "inverse volatility",
}

REGIME_COLOURS: dict[str, str] = {
    "calm": "#e3e3e3",
    "normal": "#bdbdbd",
    "elevated": "#fc9272",
    "stress": "#de2d26",
}
_OTHER_REGIME = "#9e9e9e"

ASSET_COLOURS: tuple[str, ...] = (
    "#66c2a5",
    "#8da0cb",
    "#e5c494",
    "#a6d854",
    "#e78ac3",
    "#ffd92f",
    "#1b9e77",
    "#7570b3",
    "#e6ab02",
    "#66a61e",
    "#a6761d",
    "#17becf",
    "#bcbd22",
)
CASH_COLOUR = "#f2e6cc"


def series_colour(name: str, order: Sequence[str] = ()) -> str:
    """The colour of series ``name``; an unknown name takes the next spare colour.

    Parameters
    ----------
    name : str
        A strategy or benchmark name (``strategy``, ``erc_static``, ...).
    order : sequence of str
        Every series drawn in this document, in order: unknown names are numbered by their
        place among the unknown ones, so each keeps one colour across the document's charts.
    """
    if name in SERIES_COLOURS:
        return SERIES_COLOURS[name]
    unknown = [n for n in dict.fromkeys([*order, name]) if n not in SERIES_COLOURS]
    return _MORE_SERIES[unknown.index(name) % len(_MORE_SERIES)]


def series_title(name: str) -> str:
    """The words a reader sees for series ``name`` (its name itself when it has none)."""
    return SERIES_TITLES.get(name, name.replace("_", " "))


def dashed(name: str) -> bool:
    """Whether series ``name`` is drawn dashed (a scaled copy of another series)."""
    return name in _DASHED


def regime_colour(label: str) -> str:
    """The fill of regime ``label`` (calm grey to stressed red)."""
    return REGIME_COLOURS.get(label, _OTHER_REGIME)


def asset_colours(symbols: Sequence[str]) -> dict[str, str]:
    """A colour per symbol in the portfolio's order, and ``cash``.

    More symbols than :data:`ASSET_COLOURS` reuse them in turn (a 13-asset portfolio is the
    widest this project trades; a chart of hundreds of stocks is unreadable in any colours).
    """
    colours = {s: ASSET_COLOURS[i % len(ASSET_COLOURS)] for i, s in enumerate(symbols)}
    colours["cash"] = CASH_COLOUR
    return colours

"""The tearsheet's charts: matplotlib figures rendered to PNG, embedded as data URIs.

Every chart follows the same rules: colours from :mod:`regime_trader.service.palette` (a series,
a regime or an asset keeps its colour on every chart), fractions on percent axes, the legend
above the plot area (outside it, so it never covers data), dates on the x axis, and a log axis
labelled in plain dollars of a dollar invested ($1.00, $1.50, $2.00; never 3x10^0). A bare
:class:`~matplotlib.figure.Figure` (no pyplot) renders with Agg and touches no global state;
PNGs carry no timestamp, so the same data gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, PercentFormatter

from regime_trader.service.palette import (
    asset_colours,
    dashed,
    regime_colour,
    series_colour,
    series_title,
)

__all__ = [
    "Chart",
    "drawdown_chart",
    "equity_chart",
    "excess_chart",
    "png_data",
    "regime_chart",
    "risk_share_chart",
    "rolling_chart",
    "turnover_chart",
    "weights_chart",
]

WIDTH_INCHES = 11.0
DPI = 100
# Growth-of-a-dollar ticks: the ones inside the plotted range are used.
_GROWTH_TICKS = (0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0)


Chart = tuple[str, Figure]  # (title, the figure; png_data renders it)


def png_data(fig: Figure) -> str:
    """The figure as a base64 PNG (no metadata: the bytes depend on the data only)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(height: float) -> Figure:
    # Constrained layout reserves room for a legend placed "outside" the axes.
    return Figure(figsize=(WIDTH_INCHES, height), layout="constrained")


def _axes(fig: Figure, rows: int = 1, ratios: Sequence[float] | None = None) -> list[Axes]:
    grid = fig.subplots(rows, 1, sharex=True, gridspec_kw={"height_ratios": ratios or [1] * rows})
    return list(np.atleast_1d(grid))


def _style(ax: Axes, ylabel: str, *, percent: bool = True) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.margins(x=0)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _legend_above(fig: Figure, handles: Sequence[Artist], labels: Sequence[str]) -> None:
    fig.legend(
        handles,
        labels,
        loc="outside upper center",
        ncols=min(len(labels), 4),
        frameon=False,
        fontsize=9,
    )


def _lines(
    ax: Axes,
    frame: pd.DataFrame,
    order: Sequence[str],
    main: str | None,
    label: Callable[[str], str] = series_title,
) -> list[Line2D]:
    """A line per column in its series' colour; ``main`` thick and the others thin (all of
    one middle width when there is no main series)."""
    drawn = []
    for name in frame.columns:
        (line,) = ax.plot(
            frame.index,
            frame[name],
            color=series_colour(name, order),
            lw=1.6 if main is None else 2.0 if name == main else 1.1,
            ls="--" if dashed(name) else "-",
            label=label(name),
        )
        drawn.append(line)
    return drawn


def _labels(handles: Sequence[Artist]) -> list[str]:
    return [str(h.get_label()) for h in handles]


def _with_lines(
    title: str,
    frame: pd.DataFrame,
    order: Sequence[str],
    main: str,
    ylabel: str,
    *,
    zero: bool = False,
) -> Chart:
    fig = _figure(3.6)
    [ax] = _axes(fig)
    lines = _lines(ax, frame, order, main)
    if zero:
        ax.axhline(0.0, color="#444444", lw=0.8)
    _style(ax, ylabel)
    _legend_above(fig, lines, _labels(lines))
    return title, fig


def equity_chart(growth: pd.DataFrame, order: Sequence[str], main: str) -> Chart:
    """Growth of $1 of every series, on a log axis labelled in dollars."""
    fig = _figure(4.6)
    [ax] = _axes(fig)
    lines = _lines(ax, growth, order, main)
    ax.set_yscale("log")
    low, high = float(np.nanmin(growth.to_numpy())), float(np.nanmax(growth.to_numpy()))
    ticks = [t for t in _GROWTH_TICKS if low / 1.05 <= t <= high * 1.05]
    if len(ticks) < 3:  # a narrow range: a few evenly spaced dollars inside it
        ticks = [float(t) for t in np.round(np.geomspace(low, high, 4), 2)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.2f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    _style(ax, "value of $1 invested (log scale)", percent=False)
    _legend_above(fig, lines, _labels(lines))
    return "Growth of $1: the strategy against every benchmark", fig


def excess_chart(excess: pd.DataFrame, order: Sequence[str]) -> Chart:
    """The strategy's wealth relative to each reference (a column per reference), minus 1.

    Each line takes its reference's colour: 0% means as much wealth as that reference.
    """
    fig = _figure(3.6)
    [ax] = _axes(fig)
    lines = _lines(ax, excess, order, None, lambda name: f"strategy over {series_title(name)}")
    ax.axhline(0.0, color="#444444", lw=0.8)
    _style(ax, "excess return so far")
    _legend_above(fig, lines, _labels(lines))
    return "Excess return over static ERC (the strategy's wealth relative to it)", fig


def drawdown_chart(drawdowns: pd.DataFrame, order: Sequence[str], main: str) -> Chart:
    return _with_lines("Drawdowns from the previous peak", drawdowns, order, main, "drawdown")


def rolling_chart(
    sharpe: pd.DataFrame, volatility: pd.DataFrame, order: Sequence[str], main: str
) -> Chart:
    """Rolling one-year Sharpe ratio (top) and volatility (bottom), one legend for both."""
    fig = _figure(5.4)
    top, bottom = _axes(fig, 2)
    lines = _lines(top, sharpe, order, main)
    top.axhline(0.0, color="#444444", lw=0.8)
    _style(top, "Sharpe ratio, 1 year", percent=False)
    shown = set(_labels(lines))
    more = [x for x in _lines(bottom, volatility, order, main) if x.get_label() not in shown]
    _style(bottom, "volatility, 1 year")
    handles = [*lines, *more]
    _legend_above(fig, handles, _labels(handles))
    return "Rolling one-year Sharpe ratio and volatility", fig


def regime_chart(probs: pd.DataFrame, exposure: pd.Series | None) -> Chart:
    """Filtered regime probabilities (stacked, top) and the invested exposure (bottom)."""
    fig = _figure(4.8)
    rows = 2 if exposure is not None else 1
    axes = _axes(fig, rows, [2, 1] if rows == 2 else None)
    labels = list(probs.columns)
    colours = [regime_colour(label) for label in labels]
    axes[0].stackplot(probs.index, probs.fillna(0).T.to_numpy(), colors=colours, lw=0)
    axes[0].set_ylim(0, 1)
    _style(axes[0], "probability")
    handles: list[Artist] = [
        Patch(color=c, label=f"P({label})") for label, c in zip(labels, colours, strict=True)
    ]
    if exposure is not None:
        (line,) = axes[1].plot(
            exposure.index,
            exposure,
            color=series_colour("strategy"),
            lw=1.2,
            label="invested share of equity",
        )
        axes[1].set_ylim(0, max(1.0, float(np.nanmax(exposure.to_numpy()))))
        _style(axes[1], "invested")
        handles.append(line)
    _legend_above(fig, handles, _labels(handles))
    return "Regime probabilities (causal filter) and the invested exposure", fig


def weights_chart(weights: pd.DataFrame) -> Chart:
    """The strategy's weights, stacked to 100% with cash on top."""
    fig = _figure(3.6)
    [ax] = _axes(fig)
    colours = asset_colours([c for c in weights.columns if c != "cash"])
    columns = list(weights.columns)
    ax.stackplot(
        weights.index,
        weights.clip(lower=0).T.to_numpy(),
        colors=[colours[c] for c in columns],
        lw=0,
    )
    ax.set_ylim(0, 1)
    _style(ax, "share of equity")
    handles = [Patch(color=colours[c], label=c) for c in columns]
    _legend_above(fig, handles, columns)
    return "Target weights and cash", fig


def risk_share_chart(shares: pd.DataFrame) -> Chart:
    """Each asset's share of the realised variance, with the equal share ERC aims at."""
    fig = _figure(3.6)
    [ax] = _axes(fig)
    colours = asset_colours(list(shares.columns))
    handles: list[Artist] = []
    for symbol in shares.columns:
        (line,) = ax.plot(shares.index, shares[symbol], color=colours[symbol], lw=1.6, label=symbol)
        handles.append(line)
    if len(shares.columns):
        n = len(shares.columns)
        handles.append(
            ax.axhline(1.0 / n, color="#444444", lw=0.8, ls=":", label=f"equal share (1/{n})")
        )
    _style(ax, "share of portfolio variance")
    _legend_above(fig, handles, _labels(handles))
    title = "Realised risk contributions by asset (half-year covariance, at month ends)"
    return title, fig


def turnover_chart(monthly: pd.Series, costs: pd.Series | None) -> Chart:
    """One-way turnover per month (top) and the costs paid so far (bottom)."""
    rows = 2 if costs is not None else 1
    fig = _figure(4.6 if rows == 2 else 3.0)
    axes = _axes(fig, rows)
    colour = series_colour("strategy")
    width = 20  # days: a month's bar
    axes[0].bar(monthly.index, monthly.to_numpy(), width=width, color=colour)
    _style(axes[0], "turnover (of equity)")
    handles: list[Artist] = [Patch(color=colour)]
    labels = ["one-way turnover in the month (100% = the whole equity traded once)"]
    if costs is not None:
        (line,) = axes[1].plot(costs.index, costs, color=colour, lw=1.4)
        axes[1].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=_decimals(costs)))
        axes[1].set_ylabel("costs paid so far (of capital)")
        axes[1].grid(alpha=0.3)
        axes[1].margins(x=0)
        handles.append(line)
        labels.append("costs paid so far")
    _legend_above(fig, handles, labels)
    return "Turnover and costs over time", fig


def _decimals(values: pd.Series) -> int:
    top = float(np.nanmax(np.abs(values.to_numpy()))) if len(values) else 0.0
    return 0 if top >= 0.05 else 1 if top >= 0.005 else 2 if top > 0 else 0

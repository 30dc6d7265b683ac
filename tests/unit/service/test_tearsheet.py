"""The tearsheet: one colour per series everywhere, percent axes, legends off the data, words.

Built from a real walk-forward backtest of a seeded synthetic market, as ``report.html`` is.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from regime_trader.service import tearsheet_charts as charts
from regime_trader.service import tearsheet_stats as stats
from regime_trader.service.palette import (
    ASSET_COLOURS,
    CASH_COLOUR,
    REGIME_COLOURS,
    SERIES_COLOURS,
    asset_colours,
    series_colour,
)
from regime_trader.service.report import backtest_tearsheet
from regime_trader.service.tearsheet import TearsheetInput, render_tearsheet
from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.registry import build_benchmarks, build_strategy
from regime_trader.strategies.synthetic import generate_market

SYMBOLS = ("SPY", "TLT", "GLD")


@pytest.fixture(scope="module")
def sheet() -> TearsheetInput:
    prices = generate_market(800, SYMBOLS, seed=5).prices
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_backtest(
            prices,
            build_strategy("regime_erc", list(SYMBOLS), {}),
            build_benchmarks(list(SYMBOLS), {}),
            start=prices.index[300],
        )
    metrics = {**result.metrics, "config": {"cost_bps": 5.0, "symbols": list(SYMBOLS)}}
    return backtest_tearsheet(result, metrics, prices.pct_change())


def _drawn(fig: Figure) -> RendererBase:
    """Lay the figure out as savefig does (Agg), so extents and tick labels are final."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    renderer: RendererBase = canvas.get_renderer()  # type: ignore[no-untyped-call]
    return renderer


def _hex(colour: object) -> str:
    return mcolors.to_hex(colour).lower()  # type: ignore[arg-type]


def test_the_three_palettes_never_share_a_colour() -> None:
    series = {c.lower() for c in SERIES_COLOURS.values()}
    regimes = {c.lower() for c in REGIME_COLOURS.values()}
    assets = {c.lower() for c in (*ASSET_COLOURS, CASH_COLOUR)}
    assert not series & regimes and not series & assets and not regimes & assets
    assert len(set(ASSET_COLOURS)) == len(ASSET_COLOURS) >= 13  # the 13-ETF universe
    assert series_colour("strategy") == SERIES_COLOURS["strategy"]
    assert series_colour("new_benchmark", ["a_new_one", "new_benchmark"]) not in series


def _figures(sheet: TearsheetInput) -> Iterator[tuple[str, Figure]]:
    r, order = sheet.returns, sheet.order
    assert sheet.weights is not None and sheet.asset_returns is not None
    assert sheet.regime_probs is not None and sheet.turnover is not None
    yield charts.equity_chart((1 + r).cumprod(), order, "strategy")
    excess = pd.DataFrame({"erc_static": stats.relative_growth(r["strategy"], r["erc_static"])})
    yield charts.excess_chart(excess, order)
    yield charts.drawdown_chart(
        r.apply(lambda c: (1 + c).cumprod() / (1 + c).cumprod().cummax() - 1), order, "strategy"
    )
    yield charts.rolling_chart(
        stats.rolling_sharpe(r), stats.rolling_volatility(r), order, "strategy"
    )
    yield charts.regime_chart(sheet.regime_probs, sheet.exposure)
    yield charts.weights_chart(sheet.weights)
    yield charts.turnover_chart(
        stats.monthly_turnover(sheet.turnover), stats.cumulative_costs(sheet.turnover, 5.0)
    )
    yield charts.risk_share_chart(stats.rolling_risk_shares(sheet.weights, sheet.asset_returns))


def test_every_series_has_its_colour_on_every_chart(sheet: TearsheetInput) -> None:
    seen: dict[str, set[str]] = {}
    for _, fig in _figures(sheet):
        for ax in fig.axes:
            for line in ax.get_lines():
                label = str(line.get_label())
                if not label.startswith("_"):
                    seen.setdefault(label, set()).add(_hex(line.get_color()))
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert seen["strategy"] == {SERIES_COLOURS["strategy"]}
    assert seen["static ERC"] == {SERIES_COLOURS["erc_static"]}
    assert seen["strategy over static ERC"] == {SERIES_COLOURS["erc_static"]}
    assert seen["SPY"] == {asset_colours(SYMBOLS)["SPY"]}


def test_regimes_and_weights_are_filled_in_their_own_palettes(sheet: TearsheetInput) -> None:
    figures = dict(_figures(sheet))
    regime_fig = next(f for t, f in figures.items() if t.startswith("Regime probabilities"))
    regime_fills = {_hex(c.get_facecolor()[0]) for c in regime_fig.axes[0].collections}
    assert regime_fills == {REGIME_COLOURS["calm"], REGIME_COLOURS["stress"]}
    weights_fig = figures["Target weights and cash"]
    weight_fills = [_hex(c.get_facecolor()[0]) for c in weights_fig.axes[0].collections]
    assert weight_fills == [asset_colours(SYMBOLS)[s] for s in (*SYMBOLS, "cash")]


def test_fractions_are_on_percent_axes_and_the_log_axis_reads_in_dollars(
    sheet: TearsheetInput,
) -> None:
    for title, fig in _figures(sheet):
        _drawn(fig)
        for ax in fig.axes:
            label = ax.get_ylabel()
            if title.startswith("Growth of $1"):
                ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
                assert ticks and all(re.fullmatch(r"\$\d+\.\d\d", t) for t in ticks), ticks
                assert not [t for t in ax.get_yticklabels(minor=True) if t.get_text()]
            elif "Sharpe" not in label:
                assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter), (title, label)


def test_legends_sit_outside_the_plotted_area(sheet: TearsheetInput) -> None:
    for title, fig in _figures(sheet):
        renderer = _drawn(fig)
        [legend] = fig.legends
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), title


def test_the_page_has_every_section_in_words_and_the_same_bytes_twice(
    sheet: TearsheetInput,
) -> None:
    page = render_tearsheet(sheet)
    assert page == render_tearsheet(sheet)
    assert page.count("data:image/png;base64,") == 8
    for heading in (
        "Summary",
        "The strategy's five deepest drawdowns",
        "Annual returns (%)",
        "Excess annual return of the strategy",
        "Monthly returns of the strategy",
        "Sharpe ratio by calendar year",
        "Rolling one-year Sharpe ratio and volatility",
        "Turnover and costs over time",
        "Realised risk contributions by asset",
        "Realised risk contributions by regime",
        "regime-trader version",
    ):
        assert heading in page, heading
    headers = re.findall(r"<th>(?:<span[^>]*></span>)?([^<]*)</th>", page)
    assert headers and not [h for h in headers if "_" in h], "snake_case header"
    for header in ("Maximum drawdown (%)", "Volatility (% a year)", "Turnover (times a year)"):
        assert f"<th>{header}</th>" in page


def test_a_live_account_page_needs_only_returns(sheet: TearsheetInput) -> None:
    live = TearsheetInput(
        title="paper account",
        returns=sheet.returns[["strategy", "erc_static", "buy_hold"]],
        main="strategy",
        reference="erc_static",
        version="test",
    )
    page = render_tearsheet(live)
    assert page.count("data:image/png;base64,") == 4
    assert "they were not given" in page
    with pytest.raises(ValueError, match="'nope' is not a column"):
        TearsheetInput(
            title="x", returns=live.returns, main="nope", reference="erc_static", version=""
        )

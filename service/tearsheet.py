"""The tearsheet: one self-contained HTML page of a strategy's daily returns against benchmarks.

The backtest writes it as ``report.html`` (:mod:`regime_trader.service.report`); the live
account's page is the same function of the paper account's returns (:class:`TearsheetInput`
takes plain series, not a backtest).

What it shows, in order: a summary table; growth of $1 (log axis in dollars); the excess return
over static ERC (and over static ERC at the strategy's volatility); drawdowns and the worst five
with their peak, trough and recovery dates; annual returns of every series, a month-by-year
table of the strategy, and Sharpe ratio and maximum drawdown by calendar year; rolling one-year
Sharpe ratio and volatility; the regime probabilities with the invested exposure on its own
axis; the weights; turnover and costs over time; realised risk contributions by asset and by
regime (:mod:`regime_trader.service.tearsheet_stats`: exact Euler contributions on realised
covariances); forecast risk shares and return contributions per asset, overall and by regime
(:mod:`regime_trader.service.tearsheet_attribution`); per-regime statistics; the settings and
the package version. Colours come from :mod:`regime_trader.service.palette` (one per series,
regime and asset, across every chart); table headers are words, with one unit per column.

The choice of library
---------------------
The page must open offline, be one file (or a folder of static files) and be byte-identical for
the same input (the backtest's determinism test compares every output file). Weighed:

- **quantstats** (``reports.html``): a strategy against *one* benchmark, its own colours, no
  regimes, weights, costs or risk contributions; it pulls in yfinance, curl_cffi, lxml,
  beautifulsoup4, peewee, protobuf, seaborn and tabulate (11 packages, a web scraper among them)
  and fetches a benchmark from Yahoo when given a ticker. Its figures are matplotlib anyway.
- **Plotly** (one package here, with narwhals): interactive zoom and hover, but a
  self-contained page embeds plotly.js (~4.6 MB) in every report, and its div ids are random
  (no byte-identical output without patching); a static picture for the README needs kaleido
  and a Chrome of its own.
- **matplotlib** (already a dependency): static PNGs embedded as data URIs, a report of a few
  hundred kB that opens anywhere, identical bytes for identical data, and full control of
  colours, percent axes, log-axis labels and legends outside the plot.

So: matplotlib, with the computations in pandas. What the users lose is hover and zoom, which a
daily tearsheet of a few series does not need; what they keep is a small page that opens on any
machine, attaches to an e-mail and diffs between runs.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from regime_trader.service import tearsheet_charts as charts
from regime_trader.service import tearsheet_stats as stats
from regime_trader.service.palette import asset_colours, regime_colour, series_colour, series_title
from regime_trader.service.tearsheet_attribution import attribution_section
from regime_trader.strategies.backtest_attribution import BacktestAttribution
from regime_trader.strategies.metrics import drawdown, performance_metrics

__all__ = ["TearsheetInput", "render_tearsheet"]

# Summary statistics: the key of performance_metrics, the header in words, the unit.
SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "cagr": ("Annual return (%)", "percent"),
    "volatility": ("Volatility (% a year)", "percent"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "max_drawdown": ("Maximum drawdown (%)", "percent"),
    "calmar": ("Calmar ratio", "ratio"),
    "turnover_per_year": ("Turnover (times a year)", "ratio"),
    "var_95": ("1-day VaR 95% (%)", "percent"),
    "cvar_95": ("1-day CVaR 95% (%)", "percent"),
}
# The regime table's: what a regime's days are, and two of the summary's, worded the same.
REGIME_COLUMNS: dict[str, tuple[str, str]] = {
    "days": ("Days", "count"),
    "share": ("Share of days (%)", "percent"),
    "mean_return": ("Mean return (% a year)", "percent"),
    "volatility": SUMMARY_COLUMNS["volatility"],
    "sharpe": SUMMARY_COLUMNS["sharpe"],
    "hit_rate": ("Days up (%)", "percent"),
}
# Settings of a backtest in words (others are shown under their own name).
SETTING_TITLES = {
    "source": "Prices",
    "symbols": "Symbols",
    "start": "First trading session",
    "end": "Last session used",
    "cost_bps": "Cost (basis points per unit of one-way turnover)",
    "lag": "Days from a decision to the first return it earns",
    "weight_band": "Execution band on weights",
    "exposure_band": "Execution band on exposure",
    "periods": "Named periods",
    "strategy": "Strategy",
    "profile": "Strategy profile",
    "strategy_params": "Strategy parameters",
    "max_carry_sessions": "Sessions a missing close may be carried",
    "carried": "Carried closes",
}


@dataclass(frozen=True)
class TearsheetInput:
    """What a tearsheet is drawn from: plain daily series, aligned by the day they are earned.

    Parameters
    ----------
    title : str
        The page's heading, e.g. ``"regime-trader walk-forward backtest"``.
    returns : DataFrame of shape (n_days, n_series)
        Simple daily net returns of each series; ``main`` and ``reference`` among the columns.
    main : str
        The strategy's column (drawn thickest, always the strategy's colour).
    reference : str
        The benchmark the excess return is measured against (static ERC).
    version : str
        The package version that produced the numbers.
    settings : mapping
        What was run (shown as a table; values as JSON).
    weights : DataFrame of shape (n_days, n_assets + 1), optional
        The weights that earned each day's return (symbols and ``cash``).
    asset_returns : DataFrame, optional
        The assets' simple daily returns (for realised risk contributions).
    regime_probs : DataFrame, optional
        Filtered probability of each regime in force for each return; columns are labels.
    regimes : Series of str, optional
        The regime label in force for each return.
    exposure : Series, optional
        Invested share of equity decided for each return.
    turnover : Series, optional
        One-way turnover of the execution before each return.
    cost_bps : float, optional
        Cost per unit of one-way turnover (for the costs over time).
    summary : mapping, optional
        Precomputed whole-period statistics per series (the backtest's metrics.json, whose
        volatility-matched benchmark is matched inside each slice); by default computed here.
    regime_stats : mapping, optional
        Per-regime statistics of the strategy (metrics.json's ``per_regime``).
    periods : mapping, optional
        Named slices: label -> ``{"first", "last", "strategy", "benchmarks"}`` as metrics.json.
    attribution : BacktestAttribution, optional
        Forecast risk shares and return contributions per asset, overall and by regime
        (:mod:`regime_trader.service.tearsheet_attribution`).
    description : str
        A paragraph under the title (HTML-escaped).
    """

    title: str
    returns: pd.DataFrame
    main: str
    reference: str
    version: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    weights: pd.DataFrame | None = None
    asset_returns: pd.DataFrame | None = None
    regime_probs: pd.DataFrame | None = None
    regimes: pd.Series | None = None
    exposure: pd.Series | None = None
    turnover: pd.Series | None = None
    cost_bps: float | None = None
    summary: Mapping[str, Mapping[str, Any]] | None = None
    regime_stats: Mapping[str, Mapping[str, Any]] | None = None
    periods: Mapping[str, Mapping[str, Any]] | None = None
    attribution: BacktestAttribution | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for name in (self.main, self.reference):
            if name not in self.returns.columns:
                raise ValueError(
                    f"TearsheetInput: {name!r} is not a column of returns "
                    f"{list(self.returns.columns)}"
                )
        if len(self.returns) < 2:
            raise ValueError(f"TearsheetInput: needs at least 2 returns, got {len(self.returns)}")

    @property
    def order(self) -> list[str]:
        return list(self.returns.columns)


# ---------------------------------------------------------------------------------- cells


def _cell(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "count":
        return f"{int(value):d}"
    scale, spec = {"percent": (100.0, ".1f"), "points": (100.0, "+.1f")}.get(unit, (1.0, ".2f"))
    text = format(scale * float(value), spec)
    # A value that rounds to zero reads 0.0, not -0.0.
    return text.replace("-", "") if float(text) == 0 else text


def _series_head(name: str, order: Sequence[str]) -> str:
    swatch = f'<span class="swatch" style="background:{series_colour(name, order)}"></span>'
    return f"<th>{swatch}{html.escape(series_title(name))}</th>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    cap = f"<caption>{caption}</caption>" if caption else ""
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table>{cap}<tr>{''.join(head)}</tr>{body}</table>"


def _th(text: str) -> str:
    return f"<th>{html.escape(text)}</th>"


def _td(text: str) -> str:
    return f"<td>{html.escape(text)}</td>"


# ---------------------------------------------------------------------------------- tables


def _summary(data: TearsheetInput) -> dict[str, Mapping[str, Any]]:
    if data.summary is not None:
        return {n: data.summary[n] for n in data.order if n in data.summary}
    turnover = {data.main: data.turnover} if data.turnover is not None else {}
    return {n: performance_metrics(data.returns[n], turnover.get(n)) for n in data.order}


def _summary_table(summary: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> str:
    return _statistics_table("", summary, SUMMARY_COLUMNS, lambda name: _series_head(name, order))


def _statistics_table(
    corner: str,
    statistics: Mapping[str, Mapping[str, Any]],
    columns: Mapping[str, tuple[str, str]],
    row_head: Callable[[str], str],
    caption: str = "",
) -> str:
    """A row for each entry of ``statistics`` (headed by ``row_head``), a column for each key."""
    head = [_th(corner), *(_th(title) for title, _ in columns.values())]
    rows = [
        [row_head(name), *(_td(_cell(values.get(k), unit)) for k, (_, unit) in columns.items())]
        for name, values in statistics.items()
    ]
    return _table(head, rows, caption)


def _by_year_table(frame: pd.DataFrame, order: Sequence[str], unit: str, caption: str) -> str:
    head = [_th("Year"), *(_series_head(c, order) for c in frame.columns)]
    rows = [
        [_th(str(year)), *(_td(_cell(v, unit)) for v in row)]
        for year, row in zip(frame.index, frame.to_numpy().tolist(), strict=True)
    ]
    return _table(head, rows, caption)


def _monthly_table(returns: pd.Series) -> str:
    table = stats.monthly_returns(returns)
    head = [_th("Year"), *(_th(m) for m in table.columns)]
    rows = [
        [_th(str(year)), *(_td(_cell(v, "percent")) for v in row)]
        for year, row in zip(table.index, table.to_numpy().tolist(), strict=True)
    ]
    return _table(head, rows, "Monthly returns of the strategy (%, compounded within each month)")


def _drawdown_table(returns: pd.Series) -> str:
    head = [
        _th(h)
        for h in (
            "Rank",
            "Peak",
            "Trough",
            "Recovered",
            "Depth (%)",
            "Trading days to the trough",
            "Trading days to recover",
        )
    ]
    rows = []
    for i, p in enumerate(stats.drawdown_periods(returns, 5), start=1):
        rows.append(
            [
                _td(str(i)),
                _td(f"{p.peak:%Y-%m-%d}"),
                _td(f"{p.trough:%Y-%m-%d}"),
                _td("not yet" if p.recovery is None else f"{p.recovery:%Y-%m-%d}"),
                _td(_cell(p.depth, "percent")),
                _td(str(p.days_to_trough)),
                _td("n/a" if p.days_to_recover is None else str(p.days_to_recover)),
            ]
        )
    return _table(head, rows, "The strategy's five deepest drawdowns")


def _regime_stats_table(per: Mapping[str, Mapping[str, Any]]) -> str:
    caption = "The strategy's returns by the regime in force"
    return _statistics_table("Regime", per, REGIME_COLUMNS, _regime_head, caption)


def _regime_head(label: str) -> str:
    swatch = f'<span class="swatch" style="background:{regime_colour(label)}"></span>'
    return f"<th>{swatch}{html.escape(label)}</th>"


def _risk_by_regime_table(rows_in: Sequence[stats.RegimeRisk], symbols: Sequence[str]) -> str:
    colours = asset_colours(symbols)
    head = [
        _th("Regime"),
        _th("Days"),
        _th("Volatility (% a year)"),
        *(
            f'<th><span class="swatch" style="background:{colours[s]}"></span>'
            f"{html.escape(s)}: share of risk (%)</th>"
            for s in symbols
        ),
    ]
    rows = [
        [
            _regime_head(r.regime),
            _td(str(r.days)),
            _td(_cell(r.volatility, "percent")),
            *(_td(_cell(r.shares[s], "percent")) for s in symbols),
        ]
        for r in rows_in
    ]
    caption = (
        "Realised risk contributions by regime: the mean weights of the regime's days on the "
        "covariance of those days' returns (each row's shares sum to 100%)"
    )
    return _table(head, rows, caption)


def _period_tables(periods: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> str:
    parts = []
    for label, section in periods.items():
        summary = {"strategy": section["strategy"], **section["benchmarks"]}
        parts.append(
            f"<h3>{html.escape(label)}: {html.escape(str(section.get('first')))} to "
            f"{html.escape(str(section.get('last')))}</h3>" + _summary_table(summary, order)
        )
    return "".join(parts)


def _settings_table(settings: Mapping[str, Any], version: str) -> str:
    rows = [[_th("regime-trader version"), _td(version)]]
    for key, value in settings.items():
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=False)
        rows.append([_th(SETTING_TITLES.get(key, key)), _td(shown)])
    return _table([_th("Setting"), _th("Value")], rows).replace(
        "<table>", '<table class="settings">', 1
    )


# ---------------------------------------------------------------------------------- page


def _charts(data: TearsheetInput) -> tuple[dict[str, charts.Chart], str]:
    """The charts by section (``growth``, ``drawdown``, ``rolling``, ``trading``...), and the
    realised-risk-by-regime table (computed with the risk chart)."""
    r, order, main = data.returns, data.order, data.main
    references = _references(data)
    excess = pd.DataFrame({c: stats.relative_growth(r[main], r[c]) for c in references})
    rolling = [main, *references]
    out: dict[str, charts.Chart] = {
        "growth": charts.equity_chart((1.0 + r).cumprod(), order, main),
        "excess": charts.excess_chart(excess, order),
        "drawdown": charts.drawdown_chart(r.apply(drawdown), order, main),
        "rolling": charts.rolling_chart(
            stats.rolling_sharpe(r[[c for c in rolling if not c.endswith("_vol_matched")]]),
            stats.rolling_volatility(r[rolling]),
            order,
            main,
        ),
    }
    if data.regime_probs is not None and not data.regime_probs.empty:
        out["regimes"] = charts.regime_chart(data.regime_probs, data.exposure)
    if data.weights is not None:
        out["weights"] = charts.weights_chart(data.weights)
    if data.turnover is not None:
        costs = (
            None if data.cost_bps is None else stats.cumulative_costs(data.turnover, data.cost_bps)
        )
        out["turnover"] = charts.turnover_chart(stats.monthly_turnover(data.turnover), costs)
    if data.weights is None or data.asset_returns is None:
        missing = (
            "<p>Realised risk contributions need the weights and the assets' returns; "
            "they were not given.</p>"
        )
        return out, missing
    shares = stats.rolling_risk_shares(data.weights, data.asset_returns)
    if not shares.empty:
        out["risk"] = charts.risk_share_chart(shares)
    if data.regimes is None:
        return out, ""
    symbols = [c for c in data.weights.columns if c != "cash"]
    by_regime = stats.risk_by_regime(data.weights, data.asset_returns, data.regimes)
    return out, _risk_by_regime_table(by_regime, symbols)


def _references(data: TearsheetInput) -> list[str]:
    """The reference, and the reference at the strategy's volatility when there is one."""
    candidates = (data.reference, f"{data.reference}_vol_matched")
    return [c for c in candidates if c in data.returns and c != data.main]


def _figure(chart: charts.Chart | None) -> str:
    if chart is None:
        return ""
    title, fig = chart
    png = charts.png_data(fig)
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def render_tearsheet(data: TearsheetInput) -> str:
    """The self-contained HTML page of ``data`` (same input, same bytes)."""
    r, order = data.returns, data.order
    figures, risk_by_regime = _charts(data)
    fig = {key: _figure(chart) for key, chart in figures.items()}
    annual = stats.annual_returns(r)
    first, last = r.index[0], r.index[-1]
    parts = [
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p>{html.escape(data.description)}</p>" if data.description else "",
        f"<p>Daily returns from {first:%Y-%m-%d} to {last:%Y-%m-%d} ({len(r)} days), net of "
        "costs; risk-free rate 0, 252 days a year.</p>",
        "<h2>Summary</h2>",
        _summary_table(_summary(data), order),
        fig["growth"],
        fig["excess"],
        "<h2>Drawdowns</h2>",
        fig["drawdown"],
        _drawdown_table(r[data.main]),
        "<h2>Returns by year and month</h2>",
        _by_year_table(annual, order, "percent", "Annual returns (%)"),
        _excess_table(annual, data.main, _references(data)),
        _monthly_table(r[data.main]),
        _by_year_table(
            stats.yearly_statistic(r, "sharpe"), order, "ratio", "Sharpe ratio by calendar year"
        ),
        _by_year_table(
            stats.yearly_statistic(r, "max_drawdown"),
            order,
            "percent",
            "Maximum drawdown by calendar year (%)",
        ),
        "<h2>Rolling risk and return</h2>",
        fig["rolling"],
        "<h2>Regimes, weights and trading</h2>",
        fig.get("regimes", ""),
        fig.get("weights", ""),
        fig.get("turnover", ""),
        "<h2>Realised risk</h2>",
        fig.get("risk", ""),
        risk_by_regime,
        attribution_section(data.attribution) if data.attribution else "",
        _regime_stats_table(data.regime_stats) if data.regime_stats else "",
        "<h2>Metrics by period</h2>" + _period_tables(data.periods, order) if data.periods else "",
        "<h2>Settings</h2>",
        _settings_table(data.settings, data.version),
    ]
    return _PAGE.format(title=html.escape(data.title), body="\n".join(p for p in parts if p))


def _excess_table(annual: pd.DataFrame, main: str, references: Sequence[str]) -> str:
    """The strategy's annual return minus each reference's, in percentage points."""
    head = [
        _th("Year"),
        *(_th(f"Over {series_title(ref)} (percentage points)") for ref in references),
    ]
    rows = [
        [_th(str(year)), *(_td(_cell(row[main] - row[ref], "points")) for ref in references)]
        for year, row in annual.iterrows()
    ]
    return _table(head, rows, "Excess annual return of the strategy")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.85rem; }}
caption {{ text-align: left; font-weight: 600; padding: 0.3rem 0; }}
th, td {{ padding: 0.25rem 0.55rem; border-bottom: 1px solid #ddd; text-align: right; }}
tr th:first-child {{ text-align: left; white-space: nowrap; }}
table.settings td, table.settings th {{ text-align: left; }}
.swatch {{ display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em;
  border-radius: 2px; vertical-align: -0.05em; }}
figure {{ margin: 1.2rem 0; }} figcaption {{ font-size: 0.85rem; color: #555; }}
img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""

"""Walk-forward backtest over :meth:`Strategy.iter_update` — the live code path, bar by bar.

Timing. The decision w_t uses bars up to the close of day t. With ``lag`` L >= 1 it is
executed at the close of day t + L - 1 and first earns the return from that close to the next
(L = 1: decided and traded at the close of t, earning t -> t+1). Between executions holdings
drift with prices; each execution trades from the drifted holdings to the target and pays
``cost_bps`` basis points per unit of one-way turnover, sum_i |target_i - drifted_i|. Cash
earns nothing. With an execution band (:class:`~regime_trader.strategies.rebalance.RebalanceBand`,
the rule the live planner applies to the broker's positions) an execution trades from the
drifted holdings to what the band decides instead of the target itself.

Warm-up. Every bar before ``start`` is history the strategy learns from (it sees them in
order, exactly as the live service would have); trading starts with the decision at the first
session on or after ``start``. A decision that is not ``ready`` holds cash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies.backtest_attribution import forecast_share_frame
from regime_trader.strategies.backtest_metrics import (
    VOL_MATCHED,
    Period,
    backtest_metrics,
    vol_scale,
)
from regime_trader.strategies.base import Signal, Strategy, regime_labels
from regime_trader.strategies.macro import join_macro
from regime_trader.strategies.rebalance import RebalanceBand

__all__ = [
    "BacktestResult",
    "Period",
    "StrategyPath",
    "run_backtest",
    "simulate",
    "vol_matched_path",
]

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class StrategyPath:
    """One strategy's decisions and what they earned.

    Attributes
    ----------
    weights : DataFrame of shape (n_decisions, n_assets + 1)
        The decision of each trading date (symbols and ``cash``).
    returns : Series of shape (n_days,)
        Net daily returns, indexed by the day they are earned.
    turnover : Series of shape (n_days,)
        One-way turnover of the execution that preceded each return.
    held : DataFrame of shape (n_days, n_assets), optional
        The weights that earned each return (the decision after the execution band), indexed
        by the day it is earned: ``held @ asset_returns`` is the gross return.
    """

    name: str
    weights: pd.DataFrame
    returns: pd.Series
    turnover: pd.Series
    held: pd.DataFrame | None = None

    @property
    def equity(self) -> pd.Series:
        """Growth of 1 unit of capital."""
        return (1.0 + self.returns).cumprod()


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced (the service writes it to files).

    Attributes
    ----------
    strategy : StrategyPath
    benchmarks : dict of str to StrategyPath
    regimes : DataFrame
        Filtered probability per state (``p_<label>``) and ``regime`` label, per decision.
    diagnostics : DataFrame
        Exposure, forecast volatility and relative risk contributions (``rc_<symbol>``) per
        decision of the main strategy.
    metrics : dict
        ``{"strategy": {...}, "benchmarks": {name: {...}}}`` with per-regime statistics.
    risk_shares : DataFrame, optional
        Each decision's forecast risk shares, columns ``(basis, symbol)``: the forecast and each
        regime's covariance (see :mod:`~regime_trader.strategies.risk_attribution`).
    """

    strategy: StrategyPath
    benchmarks: dict[str, StrategyPath]
    regimes: pd.DataFrame
    diagnostics: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    risk_shares: pd.DataFrame | None = None


def simulate(
    decisions: pd.DataFrame,
    asset_returns: pd.DataFrame,
    *,
    lag: int = 1,
    cost_bps: float = 5.0,
    band: RebalanceBand | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Net daily returns of executing ``decisions`` with drift and proportional costs.

    Parameters
    ----------
    decisions : DataFrame of shape (n_days, n_assets)
        Target weight of each asset decided at each date's close (rows sum to <= 1; the rest
        is cash). Its index is a contiguous run of the sessions in ``asset_returns``.
    asset_returns : DataFrame of shape (n_all_days, n_assets)
        Simple returns of each asset from the previous session's close to this one.
    lag : int, default 1
        Days from decision to the first return it earns.
    cost_bps : float, default 5
        Cost per unit of one-way turnover, in basis points.
    band : RebalanceBand, optional
        The execution band: each execution trades from the drifted holdings to
        ``band.apply(holdings, target)``. Default: to the target.

    Returns
    -------
    returns, turnover : Series
        Indexed by the day each return is earned.
    """
    returns, turnover, _ = _execute(decisions, asset_returns, lag, cost_bps, band)
    return returns, turnover


def _execute(
    decisions: pd.DataFrame,
    asset_returns: pd.DataFrame,
    lag: int,
    cost_bps: float,
    band: RebalanceBand | None,
) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """:func:`simulate`, and the weights each return was earned with (see StrategyPath.held)."""
    if lag < 1:
        raise ValueError(f"lag must be >= 1 (no look-ahead), got {lag}")
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    all_dates = asset_returns.index
    first = all_dates.get_loc(decisions.index[0])
    if not isinstance(first, int):
        raise ValueError("asset_returns must be indexed by unique sessions")
    # Decision at position i is executed at i + lag - 1 and earns the return at i + lag.
    targets = decisions.to_numpy(dtype=float)
    r = asset_returns.to_numpy(dtype=float)
    n_exec = min(len(targets), len(all_dates) - first - lag)
    out_returns = np.empty(max(n_exec, 0))
    out_turnover = np.empty(max(n_exec, 0))
    out_held = np.empty((max(n_exec, 0), targets.shape[1]))
    held = np.zeros(targets.shape[1])
    cost = cost_bps / 1e4
    for i in range(n_exec):
        target = targets[i] if band is None else band.apply(held, targets[i])
        turnover = float(np.abs(target - held).sum())
        day = r[first + i + lag]
        gross = float(target @ day)
        out_returns[i] = (1.0 - cost * turnover) * (1.0 + gross) - 1.0
        out_turnover[i] = turnover
        out_held[i] = target
        held = target * (1.0 + day) / (1.0 + gross)
    index = all_dates[first + lag : first + lag + n_exec]
    executed = pd.DataFrame(out_held, index=index, columns=decisions.columns)
    return pd.Series(out_returns, index=index), pd.Series(out_turnover, index=index), executed


def _collect(
    strategy: Strategy,
    prices: pd.DataFrame,
    start_pos: int,
    progress: ProgressCallback | None,
) -> list[Signal]:
    """Feed every bar in order; keep the signals of the trading period."""
    kept: list[Signal] = []
    total = len(prices)
    for i, signal in enumerate(strategy.iter_update(prices)):
        if i >= start_pos:
            kept.append(signal)
        if progress is not None:
            progress(i + 1, total)
    return kept


def _with_inputs(
    strategy: Strategy, prices: pd.DataFrame, macro: pd.DataFrame | None
) -> pd.DataFrame:
    """The bars ``strategy`` reads: the closes, and the macro series if it reads them."""
    if not strategy.extra_inputs:
        return prices
    if macro is None:
        raise ValueError(
            f"strategy {strategy.name!r} reads {list(strategy.extra_inputs)}: give the macro series"
        )
    return join_macro(prices, macro)


def _weights_frame(signals: list[Signal], symbols: list[str]) -> pd.DataFrame:
    index = pd.DatetimeIndex([s.date for s in signals], name="date")
    rows = [[s.weights[sym] for sym in symbols] + [s.cash] for s in signals]
    return pd.DataFrame(rows, index=index, columns=[*symbols, "cash"])


def _regimes_frame(signals: list[Signal]) -> pd.DataFrame:
    index = pd.DatetimeIndex([s.date for s in signals], name="date")
    n_states = max((len(s.regime_probs) for s in signals if s.regime_probs), default=0)
    if n_states == 0:
        return pd.DataFrame({"regime": [None] * len(signals)}, index=index)
    labels = regime_labels(n_states)
    probs = [list(s.regime_probs) if s.regime_probs else [np.nan] * n_states for s in signals]
    frame = pd.DataFrame(probs, index=index, columns=[f"p_{label}" for label in labels])
    frame["regime"] = [s.regime_label for s in signals]
    return frame


# The exposure decision's components, per decision of the main strategy (NaN when absent).
DIAGNOSTIC_COLUMNS = (
    "exposure",
    "regime_exposure",
    "vol_exposure",
    "forecast_vol",
    "vol_median",
    "smoothed_stress",
    "decided_exposure",
)


def _diagnostics_frame(signals: list[Signal], symbols: list[str]) -> pd.DataFrame:
    index = pd.DatetimeIndex([s.date for s in signals], name="date")
    rows = []
    for s in signals:
        d = s.diagnostics
        rc = d.get("risk_contributions", {})
        values = [d.get(name) for name in DIAGNOSTIC_COLUMNS]
        rows.append(
            [np.nan if v is None else v for v in values] + [rc.get(sym, np.nan) for sym in symbols]
        )
    columns = [*DIAGNOSTIC_COLUMNS, *[f"rc_{s}" for s in symbols]]
    return pd.DataFrame(rows, index=index, columns=columns, dtype=float)


@dataclass(frozen=True)
class _Execution:
    """How decisions are traded: the lag, the cost and the execution band."""

    lag: int
    cost_bps: float
    band: RebalanceBand | None

    def path(self, name: str, signals: list[Signal], asset_returns: pd.DataFrame) -> StrategyPath:
        symbols = list(asset_returns.columns)
        weights = _weights_frame(signals, symbols)
        returns, turnover, held = _execute(
            weights[symbols], asset_returns, self.lag, self.cost_bps, self.band
        )
        return StrategyPath(name, weights, returns, turnover, held)


def vol_matched_path(erc: StrategyPath, strategy: StrategyPath) -> StrategyPath:
    """Static ERC scaled to the strategy's realised volatility over the whole period.

    Returns, turnover and weights times k = sigma_strategy / sigma_ERC; the cash column holds
    the rest (negative when k > 1: borrowed). See
    :mod:`~regime_trader.strategies.backtest_metrics`, which re-matches k in every slice.
    """
    k = vol_scale(erc.returns, strategy.returns)
    k = 0.0 if k is None else k
    symbols = [c for c in erc.weights.columns if c != "cash"]
    weights = erc.weights[symbols] * k
    weights["cash"] = 1.0 - weights.sum(axis=1)
    held = None if erc.held is None else erc.held * k
    return StrategyPath(VOL_MATCHED, weights, erc.returns * k, erc.turnover * k, held)


def run_backtest(
    prices: pd.DataFrame,
    strategy: Strategy,
    benchmarks: Mapping[str, Strategy] | None = None,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    cost_bps: float = 5.0,
    lag: int = 1,
    execution_band: RebalanceBand | None = None,
    periods: Sequence[Period] = (),
    progress: ProgressCallback | None = None,
    macro: pd.DataFrame | None = None,
) -> BacktestResult:
    """Walk a strategy and its benchmarks forward through ``prices``.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Validated daily closes (see :func:`regime_trader.service.pricefile.load_prices`), columns
        in the strategies' symbol order.
    strategy : Strategy
        A fresh strategy (it must not have seen any bar).
    benchmarks : mapping of str to Strategy, optional
        Fresh benchmark strategies, run through the same engine, costs and execution band.
        With ``erc_static`` among them, ``erc_static_vol_matched`` is added after it.
    start : date, optional
        First trading session (on or after); everything before is warm-up history.
        Default: the first session.
    end : date, optional
        Last session used; later bars are dropped before any strategy sees them.
    cost_bps : float, default 5
    lag : int, default 1
    execution_band : RebalanceBand, optional
        The live planner's band, applied to every execution (see :func:`simulate`).
    periods : sequence of Period, optional
        Named slices reported in ``metrics["periods"]`` (calendar years always are).
    progress : callable(done, total), optional
        Called after each bar of the main strategy.
    macro : DataFrame, optional
        The true macro series (:data:`~regime_trader.strategies.macro.MACRO_COLUMNS`), for a
        strategy that reads them (``extra_inputs``): joined to the closes as the live cycle
        joins them (:func:`~regime_trader.strategies.macro.join_macro`).

    Returns
    -------
    BacktestResult

    Raises
    ------
    ValueError
        If the period is empty, a strategy has already seen bars, or the strategy reads macro
        series and ``macro`` is not given.
    """
    if end is not None:
        prices = prices.loc[: pd.Timestamp(end)]
    start_ts = prices.index[0] if start is None else pd.Timestamp(start)
    start_pos = int(prices.index.searchsorted(start_ts))
    if start_pos >= len(prices) - lag:
        raise ValueError(
            f"no trading period: start {start_ts.date()} with lag {lag} leaves no return "
            f"before the last session {prices.index[-1].date()}"
        )
    for s in [strategy, *(benchmarks or {}).values()]:
        if s.last_date is not None:
            raise ValueError(f"strategy {s.name!r} has already seen bars up to {s.last_date}")
    execution = _Execution(lag, cost_bps, execution_band)
    asset_returns = prices.pct_change()
    main_signals = _collect(strategy, _with_inputs(strategy, prices, macro), start_pos, progress)
    main = execution.path(strategy.name, main_signals, asset_returns)
    bench_paths: dict[str, StrategyPath] = {}
    for name, b in (benchmarks or {}).items():
        bench_paths[name] = execution.path(
            name, _collect(b, prices, start_pos, None), asset_returns
        )
        if name == "erc_static":
            bench_paths[VOL_MATCHED] = vol_matched_path(bench_paths[name], main)
    regimes = _regimes_frame(main_signals)
    result = BacktestResult(
        strategy=main,
        benchmarks=bench_paths,
        regimes=regimes,
        diagnostics=_diagnostics_frame(main_signals, list(prices.columns)),
        risk_shares=forecast_share_frame(
            [s.date for s in main_signals],
            [s.weights for s in main_signals],
            [s.diagnostics for s in main_signals],
            list(prices.columns),
        ),
    )
    result.metrics.update(_metrics(result, main_signals, periods))
    return result


def _metrics(
    result: BacktestResult, signals: list[Signal], periods: Sequence[Period]
) -> dict[str, Any]:
    # The regime in force for a return is the one of the decision that earned it; the i-th
    # return was earned by the i-th decision (simulate keeps them aligned).
    decided = np.array([np.nan if s.regime is None else s.regime for s in signals], dtype=float)
    n_states = max((len(s.regime_probs) for s in signals if s.regime_probs), default=0)
    labels = dict(enumerate(regime_labels(n_states))) if n_states else {}
    returns = result.strategy.returns
    regime_of_return = pd.Series(decided[: len(returns)], index=returns.index)
    summary = backtest_metrics(
        result.strategy, result.benchmarks, regime_of_return, labels, periods
    )
    return {
        "period": {
            "first_decision": str(result.strategy.weights.index[0].date()),
            "first_return": str(returns.index[0].date()),
            "last_return": str(returns.index[-1].date()),
            "days": len(returns),
        },
        "strategy": {"name": result.strategy.name, **summary["strategy"]},
        **{key: summary[key] for key in ("benchmarks", "periods", "per_year")},
    }

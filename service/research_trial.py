"""One trial of a research study: build the strategy, walk it through the development window,
score it on the folds. And the one-off evaluation of a window with every benchmark.

The objective of a trial is the **mean over the folds of the annualised Sharpe ratio of the
strategy less that of static ERC on the same days**. Why this one:

- the question every variant answers is whether the regime layer beats the static risk parity
  it is built on, so the score is *relative* to static ERC on the very same days;
- a Sharpe ratio is scale-free, and cash earns 0, so the difference is the same against static
  ERC scaled to the strategy's volatility: a variant cannot score by merely holding more cash
  (drawdowns, which holding cash does shrink, are compared against the vol-matched benchmark in
  the report instead, and each trial's max drawdown is recorded next to its score);
- averaging per-fold differences weighs every sub-period equally, so one market regime (2008,
  or a long bond rally) cannot carry the score on its own: a variant must help in most folds;
- a single number keeps Optuna's sampler simple; the fold scores and the drawdown are kept with
  the trial for the report.

A fold in which the strategy never moves (all cash: no volatility) scores a Sharpe of 0 and is
flagged ``flat`` on its record, rather than being dropped.

**Feasibility** (the study's ``drawdown_guard``). A higher Sharpe ratio alone is not what a
regime layer is for: it must also fall less. A trial is feasible when its maximum drawdown from
the end of the warm-up to the development end is no deeper than that of static ERC scaled to
its volatility on the same days (``drawdown_excess = vol-matched drawdown - drawdown <= 0``,
both drawdowns <= 0). The sampler is told (Optuna's constraints), and the close chooses the best
feasible trial; this is the protocol's statement of the issue's bar — beat static ERC on Sharpe
*and* its vol-matched version on drawdown — applied to the development window only.

Every run, the strategy's, the benchmark's and each window's, executes through the same
rebalancing band the live planner applies (the study's ``execution_band``).

Only the prices up to the development window's end ever reach a trial's strategy
(:func:`~regime_trader.strategies.research_folds.development_prices`). A strategy that reads the
true macro series gets them joined to those closes as of each session (``macro``, joined by
:func:`~regime_trader.strategies.backtest.run_backtest` as the live cycle joins them): no row
dated after a session reaches it, so none after the development end does either.

A study of ``erc_sleeve`` with a sleeve's stocks beside its assets (``regime-trader research
--sleeve-prices``) runs every benchmark on the assets alone (``benchmark_symbols``), each stock at
weight 0 (:class:`~regime_trader.strategies.sleeve_erc.Widened`), as the backtest does: the
objective compares the strategy with static ERC on the assets, not on hundreds of stocks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from regime_trader.strategies.backtest import StrategyPath, run_backtest
from regime_trader.strategies.base import Strategy
from regime_trader.strategies.metrics import drawdown, performance_metrics
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.registry import BENCHMARKS, build_strategy
from regime_trader.strategies.research_folds import FoldPlan, development_prices
from regime_trader.strategies.research_stats import (
    annualised_sharpe,
    sharpe_difference,
    vol_matched,
)
from regime_trader.strategies.sleeve_erc import Widened

__all__ = [
    "OBJECTIVE",
    "FoldScore",
    "ParametersRefusedError",
    "TrialEvaluator",
    "TrialScore",
    "WindowResult",
    "evaluate_window",
]

OBJECTIVE = (
    "Mean over the folds of the annualised Sharpe ratio of the strategy less that of static "
    "ERC on the same days. Relative to static ERC because that is what the regime layer must "
    "beat; a Sharpe ratio is scale-free and cash earns 0, so the difference is the same against "
    "static ERC scaled to the strategy's volatility and holding cash alone cannot score "
    "(drawdowns are compared with the vol-matched benchmark in the report, and each trial's max "
    "drawdown is recorded); the mean of per-fold differences weighs every sub-period alike, so "
    "one market regime cannot carry the score. A fold the strategy spends all in cash scores a "
    "Sharpe of 0 (flagged)."
)
BENCHMARK = "erc_static"
VOL_MATCHED = "erc_static_vol_matched"
Builder = Callable[[str, Sequence[str], Mapping[str, Any]], Strategy]


class ParametersRefusedError(ValueError):
    """The strategy refuses this combination of parameters (the trial fails, the study goes on)."""


@dataclass(frozen=True)
class FoldScore:
    """One fold's score.

    Attributes
    ----------
    first_day, last_day : str
        ISO dates of the fold's first and last scored return.
    sharpe, benchmark_sharpe, difference : float
        Annualised; ``difference = sharpe - benchmark_sharpe``.
    max_drawdown, benchmark_max_drawdown : float
        Over the fold's scored days (<= 0).
    flat : bool
        The strategy had no volatility in the fold (its Sharpe is scored as 0).
    """

    number: int
    first_day: str
    last_day: str
    n_days: int
    sharpe: float
    benchmark_sharpe: float
    difference: float
    max_drawdown: float
    benchmark_max_drawdown: float
    flat: bool


@dataclass(frozen=True)
class TrialScore:
    """A trial's objective, its folds, and its daily returns on the scored days.

    Attributes
    ----------
    objective : float
        Mean of the folds' Sharpe differences against static ERC.
    scored_returns : ndarray of shape (n_scored_days,)
        Daily net returns on the plan's scored days (for the deflated Sharpe ratio and PBO).
    sharpe : float
        Annualised Sharpe over every scored day.
    max_drawdown : float
        Worst drawdown from the end of the warm-up to the development end (<= 0).
    vol_matched_max_drawdown : float
        The same for static ERC scaled to the strategy's volatility over those days.
    n_warnings : int
        Warnings the strategy raised during the run (EM convergence and the like).
    """

    objective: float
    folds: tuple[FoldScore, ...]
    scored_returns: np.ndarray
    sharpe: float
    max_drawdown: float
    vol_matched_max_drawdown: float
    turnover_per_year: float
    n_warnings: int

    @property
    def drawdown_excess(self) -> float:
        """How much deeper the strategy fell than vol-matched static ERC (<= 0: feasible)."""
        return self.vol_matched_max_drawdown - self.max_drawdown


def _benchmark(name: str, symbols: Sequence[str], assets: Sequence[str] | None) -> Strategy:
    """Benchmark ``name`` on ``assets`` (default every symbol), the other symbols at weight 0."""
    if assets is None or list(assets) == list(symbols):
        return build_strategy(name, symbols, {})
    return Widened(build_strategy(name, assets, {}), symbols)


def _sharpe_or_zero(returns: pd.Series) -> tuple[float, bool]:
    value = annualised_sharpe(returns.to_numpy())
    return (0.0, True) if math.isnan(value) else (value, False)


def _max_drawdown(returns: pd.Series) -> float:
    return float(drawdown(returns).min()) if len(returns) else 0.0


class TrialEvaluator:
    """Score parameter sets on the folds of one development window.

    Parameters
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Validated closes; rows after ``dev_end`` are cut off here and never reach a strategy.
    plan : FoldPlan
        The folds, on the return days of a run trading from ``dev_start`` to ``dev_end``.
    strategy : str
        Name of the strategy under study.
    dev_start, dev_end : Timestamp
    cost_bps : float
    lag : int, default 1
    execution_band : RebalanceBand, optional
        The live planner's band on every execution (default none: trade to every target).
    build : callable, default :func:`regime_trader.strategies.registry.build_strategy`
        How a strategy is built from ``(name, symbols, overrides)``.
    macro : DataFrame, optional
        The true macro series, for a strategy that reads them (``extra_inputs``); the
        benchmark reads none.
    benchmark_symbols : sequence of str, optional
        The symbols static ERC runs on (default every column): a sleeve study's assets.
    """

    def __init__(
        self,
        prices: pd.DataFrame,
        plan: FoldPlan,
        strategy: str,
        *,
        dev_start: pd.Timestamp,
        dev_end: pd.Timestamp,
        cost_bps: float,
        lag: int = 1,
        execution_band: RebalanceBand | None = None,
        build: Builder = build_strategy,
        macro: pd.DataFrame | None = None,
        benchmark_symbols: Sequence[str] | None = None,
    ) -> None:
        self.prices = development_prices(prices, dev_end)
        self.plan = plan
        self.strategy = strategy
        self.dev_start = dev_start
        self.cost_bps = cost_bps
        self.lag = lag
        self.execution_band = execution_band
        self.build = build
        self.macro = macro
        self.symbols = list(self.prices.columns)
        self.benchmark_ = self._run(_benchmark(BENCHMARK, self.symbols, benchmark_symbols))

    def _run(self, strategy: Strategy) -> StrategyPath:
        path = run_backtest(
            self.prices,
            strategy,
            start=self.dev_start,
            cost_bps=self.cost_bps,
            lag=self.lag,
            execution_band=self.execution_band,
            macro=self.macro,
        ).strategy
        if not path.returns.index.equals(self.plan.days):
            raise ValueError("the fold plan was made for other return days than this window's")
        return path

    def evaluate(self, overrides: Mapping[str, Any]) -> TrialScore:
        """Walk the strategy built with ``overrides`` through the window and score it.

        Raises
        ------
        ParametersRefusedError
            If the strategy refuses the parameters.
        """
        try:
            strategy = self.build(self.strategy, self.symbols, overrides)
        except (TypeError, ValueError, KeyError) as e:
            raise ParametersRefusedError(f"{self.strategy} refuses {dict(overrides)}: {e}") from e
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = self._run(strategy)
        folds = []
        for fold, mine, theirs in zip(
            self.plan.folds,
            self.plan.split(path.returns),
            self.plan.split(self.benchmark_.returns),
            strict=True,
        ):
            sharpe, flat = _sharpe_or_zero(mine)
            bench, _ = _sharpe_or_zero(theirs)
            folds.append(
                FoldScore(
                    number=fold.number,
                    first_day=str(mine.index[0].date()),
                    last_day=str(mine.index[-1].date()),
                    n_days=len(mine),
                    sharpe=sharpe,
                    benchmark_sharpe=bench,
                    difference=sharpe - bench,
                    max_drawdown=_max_drawdown(mine),
                    benchmark_max_drawdown=_max_drawdown(theirs),
                    flat=flat,
                )
            )
        scored = path.returns.loc[self.plan.scored_days()]
        after_warmup = slice(self.plan.warmup_days, None)
        mine = path.returns.iloc[after_warmup]
        years = len(mine) / 252
        return TrialScore(
            objective=float(np.mean([f.difference for f in folds])),
            folds=tuple(folds),
            scored_returns=scored.to_numpy(dtype=float),
            sharpe=_sharpe_or_zero(scored)[0],
            max_drawdown=_max_drawdown(mine),
            vol_matched_max_drawdown=self._vol_matched_drawdown(mine),
            turnover_per_year=float(path.turnover.iloc[after_warmup].sum()) / years,
            n_warnings=len(caught),
        )

    def _vol_matched_drawdown(self, mine: pd.Series) -> float:
        theirs = self.benchmark_.returns.loc[mine.index]
        if not float(mine.std(ddof=1)) > 0:
            return 0.0  # all cash: nothing to match, and a flat strategy never falls
        return _max_drawdown(vol_matched(mine, theirs).returns)


@dataclass(frozen=True)
class WindowResult:
    """A strategy and every benchmark on one window, net of costs.

    Attributes
    ----------
    first_day, last_day : str
        ISO dates of the first and last return.
    rows : dict of str to dict
        Per row (``strategy``, ``erc_static``, ``erc_static_vol_matched``, ``equal_weight``,
        ``sixty_forty``, ``buy_hold``): ``sharpe``, ``max_drawdown``, ``cagr``,
        ``volatility``, ``turnover_per_year`` (None where undefined).
    vol_match_scale : float
        The fraction of static ERC with the strategy's volatility.
    difference : dict
        The Sharpe difference against static ERC with its block-bootstrap interval (the fields
        of :class:`~regime_trader.strategies.research_stats.SharpeDifference`).
    """

    first_day: str
    last_day: str
    n_days: int
    rows: dict[str, dict[str, float | None]]
    vol_match_scale: float
    difference: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        return cls(
            first_day=str(data["first_day"]),
            last_day=str(data["last_day"]),
            n_days=int(data["n_days"]),
            rows={str(k): dict(v) for k, v in data["rows"].items()},
            vol_match_scale=float(data["vol_match_scale"]),
            difference={str(k): float(v) for k, v in data["difference"].items()},
        )


ROW_METRICS = ("sharpe", "max_drawdown", "cagr", "volatility", "turnover_per_year")


def _row(returns: pd.Series, turnover: pd.Series | None) -> dict[str, float | None]:
    stats = performance_metrics(returns, turnover)
    return {key: stats[key] for key in ROW_METRICS}


def evaluate_window(
    prices: pd.DataFrame,
    strategy: str,
    overrides: Mapping[str, Any],
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    first_scored: pd.Timestamp | None = None,
    cost_bps: float,
    lag: int = 1,
    execution_band: RebalanceBand | None = None,
    n_boot: int = 2000,
    block_length: float = 21.0,
    seed: int = 0,
    macro: pd.DataFrame | None = None,
    benchmark_symbols: Sequence[str] | None = None,
) -> WindowResult:
    """The strategy and every benchmark trading from ``start`` to ``end``.

    Every bar before ``start`` is learning history (the strategy sees the whole file up to
    ``end`` in order, as the live service would have); no bar after ``end`` is used.

    Parameters
    ----------
    first_scored : Timestamp, optional
        Report only the returns from this day on (the end of the folds' warm-up); default all.
    macro : DataFrame, optional
        The true macro series, for a strategy that reads them (the benchmarks read none).
    benchmark_symbols : sequence of str, optional
        The symbols every benchmark runs on (default every column): a sleeve study's assets.
    """
    window = prices.loc[: pd.Timestamp(end)]
    symbols = list(window.columns)
    result = run_backtest(
        window,
        build_strategy(strategy, symbols, overrides),
        {name: _benchmark(name, symbols, benchmark_symbols) for name in BENCHMARKS},
        start=start,
        cost_bps=cost_bps,
        lag=lag,
        execution_band=execution_band,
        macro=macro,
    )
    since = pd.Timestamp(first_scored) if first_scored is not None else None

    def cut(series: pd.Series) -> pd.Series:
        return series.loc[since:] if since is not None else series

    mine = cut(result.strategy.returns)
    erc = result.benchmarks[BENCHMARK]
    matched = vol_matched(mine, cut(erc.returns), cut(erc.turnover))
    rows = {"strategy": _row(mine, cut(result.strategy.turnover))}
    rows[BENCHMARK] = _row(cut(erc.returns), cut(erc.turnover))
    rows[VOL_MATCHED] = _row(matched.returns, matched.turnover)
    for name in BENCHMARKS:
        if name != BENCHMARK:
            path = result.benchmarks[name]
            rows[name] = _row(cut(path.returns), cut(path.turnover))
    diff = sharpe_difference(
        mine, cut(erc.returns), n_boot=n_boot, mean_block_length=block_length, seed=seed
    )
    return WindowResult(
        first_day=str(mine.index[0].date()),
        last_day=str(mine.index[-1].date()),
        n_days=len(mine),
        rows=rows,
        vol_match_scale=matched.scale,
        difference={k: float(v) for k, v in vars(diff).items()},
    )

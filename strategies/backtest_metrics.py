"""What a backtest's metrics.json holds: the whole period, named periods and calendar years.

For the whole trading period, for every named :class:`Period` and for every calendar year, the
strategy and each benchmark get :func:`~regime_trader.strategies.metrics.performance_metrics` of
the returns earned in that slice; the whole period also gets the statistics per regime.

Next to static ERC the metrics report **static ERC scaled to the strategy's volatility** over the
same slice (``erc_static_vol_matched``: its returns times k = sigma_strategy / sigma_ERC, the rest
in cash, or borrowed when k > 1, with its turnover times k): a strategy that holds cash has a lower
volatility and drawdown than a fully invested benchmark for that reason alone, so the fair
question is whether it beats static ERC *at the same risk*. k is computed inside each slice
(as ``score_weights.py`` does for its window) and reported as ``vol_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from regime_trader.strategies.metrics import per_regime_metrics, performance_metrics

__all__ = ["VOL_MATCHED", "Earned", "Period", "backtest_metrics", "vol_scale"]

VOL_MATCHED = "erc_static_vol_matched"
_ERC = "erc_static"


class Earned(Protocol):
    """What a path earned: daily net returns and the turnover of each day's execution."""

    @property
    def returns(self) -> pd.Series: ...

    @property
    def turnover(self) -> pd.Series: ...


@dataclass(frozen=True)
class Period:
    """A named slice of the trading period, both ends included.

    Raises
    ------
    ValueError
        If the label is empty or ``last`` is before ``first``.
    """

    label: str
    first: pd.Timestamp
    last: pd.Timestamp

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("a period needs a label")
        if pd.Timestamp(self.last) < pd.Timestamp(self.first):
            raise ValueError(f"period {self.label!r}: {self.last} is before {self.first}")


def vol_scale(returns: pd.Series, reference: pd.Series) -> float | None:
    """sigma(reference) / sigma(returns) on the days both have; None when undefined."""
    both = pd.concat([returns, reference], axis=1, join="inner").dropna()
    if len(both) < 2:
        return None
    own, target = float(both.iloc[:, 0].std()), float(both.iloc[:, 1].std())
    if not (own > 0 and math.isfinite(own) and math.isfinite(target)):
        return None
    return target / own


def _slice(
    strategy: Earned, benchmarks: Mapping[str, Earned], first: pd.Timestamp, last: pd.Timestamp
) -> dict[str, Any]:
    returns = strategy.returns.loc[first:last]
    out: dict[str, Any] = {
        "first": None if returns.empty else str(returns.index[0].date()),
        "last": None if returns.empty else str(returns.index[-1].date()),
        "days": len(returns),
        "strategy": performance_metrics(returns, strategy.turnover.loc[first:last]),
    }
    rows: dict[str, Any] = {}
    for name, path in benchmarks.items():
        if name == VOL_MATCHED:
            continue
        bench = path.returns.loc[first:last]
        rows[name] = performance_metrics(bench, path.turnover.loc[first:last])
        if name == _ERC and VOL_MATCHED in benchmarks:
            k = vol_scale(bench, returns)
            matched: dict[str, Any] = dict.fromkeys(rows[name])
            if k is not None:
                matched = dict(performance_metrics(bench * k, path.turnover.loc[first:last] * k))
            rows[VOL_MATCHED] = {**matched, "vol_scale": k}
    out["benchmarks"] = rows
    return out


def backtest_metrics(
    strategy: Earned,
    benchmarks: Mapping[str, Earned],
    regime_of_return: pd.Series,
    labels: Mapping[int, str],
    periods: Sequence[Period] = (),
) -> dict[str, Any]:
    """The ``strategy``, ``benchmarks``, ``periods`` and ``per_year`` sections of metrics.json.

    Parameters
    ----------
    strategy : Earned
    benchmarks : mapping of str to Earned
        In report order; a ``erc_static_vol_matched`` entry is re-matched in every slice.
    regime_of_return : Series
        The regime of the decision that earned each of the strategy's returns (NaN: none).
    labels : mapping of int to str
        Regime names; empty when the strategy has no regimes.
    periods : sequence of Period
    """
    whole = _slice(strategy, benchmarks, strategy.returns.index[0], strategy.returns.index[-1])
    if labels:
        for stats, path in [(whole["strategy"], strategy), *_regime_rows(whole, benchmarks)]:
            regimes = regime_of_return.reindex(path.returns.index)
            stats["per_regime"] = per_regime_metrics(path.returns, regimes, labels)
    years = sorted({d.year for d in strategy.returns.index})
    return {
        "strategy": whole["strategy"],
        "benchmarks": whole["benchmarks"],
        "periods": {
            p.label: _slice(strategy, benchmarks, pd.Timestamp(p.first), pd.Timestamp(p.last))
            for p in periods
        },
        "per_year": {
            str(y): _slice(
                strategy, benchmarks, pd.Timestamp(f"{y}-01-01"), pd.Timestamp(f"{y}-12-31")
            )
            for y in years
        },
    }


def _regime_rows(
    whole: dict[str, Any], benchmarks: Mapping[str, Earned]
) -> list[tuple[dict[str, Any], Earned]]:
    rows = whole["benchmarks"]
    return [(rows[name], path) for name, path in benchmarks.items() if name in rows]

"""Attribution over a backtest: mean forecast risk shares and summed return contributions.

The per-decision numbers come from :mod:`regime_trader.strategies.risk_attribution` (a signal's
forecast shares, today's and under each regime's covariance); the return earned on day t by the
weights held over it splits into ``w_{i,t-1} r_{i,t}`` per asset and the costs, summed (not
compounded) over the whole period and over the days of each regime in force (the regime of the
decision that earned them), so each row adds up to the sum of the strategy's daily net returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from regime_trader.strategies.base import regime_labels
from regime_trader.strategies.risk_attribution import FORECAST, signal_risk

__all__ = [
    "AttributionRow",
    "BacktestAttribution",
    "backtest_attribution",
    "forecast_share_frame",
    "return_contributions",
]


def forecast_share_frame(
    dates: Sequence[pd.Timestamp],
    weights: Sequence[Mapping[str, float]],
    diagnostics: Sequence[Mapping[str, Any]],
    symbols: Sequence[str],
) -> pd.DataFrame:
    """Forecast shares per decision: columns ``(basis, symbol)``, basis ``forecast`` or a regime.

    NaN where a decision has none (warm-up, all cash, a regime without enough observations).
    """
    rows: list[dict[tuple[str, str], float]] = []
    bases: dict[str, None] = {FORECAST: None}
    for w, d in zip(weights, diagnostics, strict=True):
        risk = signal_risk(w, d)
        row: dict[tuple[str, str], float] = {}
        if risk is not None:
            row.update({(FORECAST, s): v for s, v in risk.today.items()})
            for label, shares in risk.regimes.items():
                bases.setdefault(label, None)
                row.update({(label, s): v for s, v in shares.items()})
        rows.append(row)
    columns = pd.MultiIndex.from_tuples([(b, s) for b in bases for s in symbols])
    index = pd.DatetimeIndex(list(dates), name="date")
    return pd.DataFrame(rows, index=index, columns=columns, dtype=float)


def return_contributions(
    held: pd.DataFrame, asset_returns: pd.DataFrame, net: pd.Series
) -> pd.DataFrame:
    """Each day's return split into ``w_{i,t-1} r_{i,t}`` per asset and ``costs`` (the rest).

    Parameters
    ----------
    held : DataFrame of shape (n_days, n_assets)
        The weights that earned each day's return (after any execution band), by that day.
    asset_returns : DataFrame
        The assets' simple daily returns.
    net : Series of shape (n_days,)
        The strategy's net daily returns; the rows of the result sum to it.
    """
    symbols = list(held.columns)
    gross = held * asset_returns.loc[held.index, symbols]
    out = gross.copy()
    out["costs"] = net.reindex(held.index) - gross.sum(axis=1)
    return out


@dataclass(frozen=True)
class AttributionRow:
    """One row of an attribution table: a slice of days and a value per column."""

    label: str
    days: int
    values: Mapping[str, float]


@dataclass(frozen=True)
class BacktestAttribution:
    """The backtest report's attribution tables.

    Attributes
    ----------
    symbols : tuple of str
    forecast : tuple of AttributionRow
        Mean share of the forecast risk per asset: over all decisions, then over the decisions
        taken in each regime.
    under_regime : tuple of AttributionRow
        Mean share per asset under each regime's covariance (the "in stress it would be").
    returns : tuple of AttributionRow
        Summed daily return contributions per asset and ``costs``, and their ``total`` (the sum
        of the strategy's daily net returns): the whole period, then each regime in force.
    """

    symbols: tuple[str, ...]
    forecast: tuple[AttributionRow, ...]
    under_regime: tuple[AttributionRow, ...]
    returns: tuple[AttributionRow, ...]

    def to_json(self) -> dict[str, Any]:
        def rows(table: tuple[AttributionRow, ...]) -> list[dict[str, Any]]:
            return [{"label": r.label, "days": r.days, **r.values} for r in table]

        return {
            "forecast_share": rows(self.forecast),
            "share_under_regime": rows(self.under_regime),
            "return_contribution": rows(self.returns),
        }


def _mean_row(label: str, frame: pd.DataFrame) -> AttributionRow | None:
    complete = frame.dropna()
    if complete.empty:
        return None
    return AttributionRow(
        label, len(complete), {str(c): float(v) for c, v in complete.mean().items()}
    )


def backtest_attribution(
    shares: pd.DataFrame,
    decision_regimes: pd.Series,
    contributions: pd.DataFrame,
    return_regimes: pd.Series,
) -> BacktestAttribution:
    """The report's tables (see :class:`BacktestAttribution`).

    Parameters
    ----------
    shares : DataFrame
        :func:`forecast_share_frame` of the decisions.
    decision_regimes : Series of str
        The regime label of each decision (None or NaN: none).
    contributions : DataFrame
        :func:`return_contributions` of the returns.
    return_regimes : Series of str
        The regime in force for each return (the label of the decision that earned it).
    """
    bases = _calm_first(shares.columns.get_level_values(0))
    symbols = tuple(dict.fromkeys(str(s) for s in shares.columns.get_level_values(1)))
    labels = _calm_first(decision_regimes.dropna())
    today = _basis(shares, FORECAST)
    decided = decision_regimes.reindex(today.index)
    forecast = [
        _mean_row("all decisions", today),
        *(_mean_row(label, today.loc[(decided == label).to_numpy()]) for label in labels),
    ]
    under = [_mean_row(b, _basis(shares, b)) for b in bases if b != FORECAST]
    in_force = return_regimes.reindex(contributions.index)
    returns = [_sum_row("all days", contributions)]
    returns += [
        _sum_row(label, contributions.loc[(in_force == label).to_numpy()]) for label in labels
    ]
    return BacktestAttribution(
        symbols,
        tuple(r for r in forecast if r is not None),
        tuple(r for r in under if r is not None),
        tuple(r for r in returns if r.days > 0),
    )


def _calm_first(labels: Any) -> list[str]:
    """The distinct labels, calmest first (as :func:`regime_labels` orders them)."""
    order = regime_labels(4)
    distinct = [str(x) for x in dict.fromkeys(labels)]
    return sorted(distinct, key=lambda x: (order.index(x) if x in order else len(order), x))


def _basis(shares: pd.DataFrame, basis: str) -> pd.DataFrame:
    """The columns of one basis of :func:`forecast_share_frame`, by symbol."""
    mask = (shares.columns.get_level_values(0) == basis).tolist()
    return shares.loc[:, mask].droplevel(0, axis=1)


def _sum_row(label: str, frame: pd.DataFrame) -> AttributionRow:
    sums = {str(c): float(v) for c, v in frame.sum().items()}
    return AttributionRow(label, len(frame), {**sums, "total": float(sum(sums.values()))})

"""Risk and return attribution: which assets carry a portfolio's risk, and which earned its return.

Risk. Euler's decomposition of the volatility ``sigma = sqrt(w' S w)``: ``RC_i = w_i (S w)_i /
sigma``. ``sigma`` is homogeneous of degree one in ``w``, so ``sum_i RC_i = sigma`` exactly, and
the shares ``RC_i / sigma`` (the relative contributions of
:mod:`~regime_trader.strategies.riskparity`) sum to 1. Cash has no variance and no covariance:
it contributes nothing, so a portfolio partly in cash has the shares of its invested part and a
smaller ``sigma``; all cash has no risk to split (every contribution 0). ``S`` is one of

- the **forecast**: the covariance the strategy decided on (a signal's
  ``diagnostics["risk_variance"]["forecast"]``, the variance contributions ``w_i (S w)_i`` of its
  target weights);
- **each regime's** covariance (``diagnostics["risk_variance"]["regimes"]``): the per-regime
  EWMA covariance shrunk as the forecast is, so "in stress it would be 81%" differs from today's
  share only by the covariance. A regime resting on fewer than :data:`MIN_REGIME_OBS` effective
  observations (a jump-model state never visited) says nothing and is left out;
- the **realised** covariance of a trailing window of returns (:func:`realised_attribution`).

Over a backtest (mean shares, and the return contributions ``w_{i,t-1} r_{i,t}`` by regime):
:mod:`regime_trader.strategies.backtest_attribution`. On the dashboard: :func:`risk_view`.

Asset classes. ``asset_classes`` maps a symbol to a class ("equities", "bonds", "real assets");
:data:`ASSET_CLASSES` is :data:`regime_trader.strategies.risk_tolerance.ASSET_CLASSES` in words,
and a symbol it does not know is its own class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from regime_trader.strategies.risk_tolerance import ASSET_CLASSES as CLASS_OF
from regime_trader.strategies.riskparity import risk_contributions

__all__ = [
    "ASSET_CLASSES",
    "CLASS_NAMES",
    "MIN_REGIME_OBS",
    "STRESS",
    "ClassShare",
    "EulerRisk",
    "RiskView",
    "RiskViewRow",
    "SignalRisk",
    "asset_class",
    "class_shares",
    "euler_risk",
    "realised_attribution",
    "risk_sentence",
    "risk_view",
    "signal_risk",
]

TRADING_DAYS: Final = 252
STRESS: Final = "stress"  # the last label of every regime_labels(n)
MIN_REGIME_OBS: Final = 20.0  # a month of effective observations behind a regime's covariance
FORECAST: Final = "forecast"

# The classes of :mod:`~regime_trader.strategies.risk_tolerance` (one table for the project), in
# the words people read.
CLASS_NAMES: Final[Mapping[str, str]] = {
    "equity": "equities",
    "bond": "bonds",
    "real": "real assets",
}
ASSET_CLASSES: Final[Mapping[str, str]] = {s: CLASS_NAMES[c] for s, c in CLASS_OF.items()}


@dataclass(frozen=True)
class EulerRisk:
    """Euler risk contributions of one portfolio on one covariance.

    Attributes
    ----------
    symbols, weights : tuple
        The assets and their weights (the rest is cash).
    contributions : tuple of float
        ``RC_i = w_i (S w)_i / sigma`` in the covariance's per-period volatility units; they sum
        to :attr:`volatility`. All 0 for a portfolio without risk.
    volatility : float
        ``sigma = sqrt(w' S w)`` per period (a day for daily returns).
    """

    symbols: tuple[str, ...]
    weights: tuple[float, ...]
    contributions: tuple[float, ...]
    volatility: float

    @property
    def shares(self) -> dict[str, float]:
        """``RC_i / sigma`` by symbol, summing to 1 (all 0 without risk)."""
        if self.volatility <= 0:
            return dict.fromkeys(self.symbols, 0.0)
        return {
            s: c / self.volatility for s, c in zip(self.symbols, self.contributions, strict=True)
        }

    @property
    def annual_volatility(self) -> float:
        return self.volatility * math.sqrt(TRADING_DAYS)


def _from_variance(
    symbols: Sequence[str], weights: Sequence[float], vc: npt.ArrayLike
) -> EulerRisk:
    """The decomposition from the variance contributions ``w_i (S w)_i`` (they sum to w' S w)."""
    v = np.asarray(vc, dtype=np.float64)
    variance = float(v.sum())
    if not variance > 0.0:  # cash only (or rounding of nothing): no risk to split
        return EulerRisk(tuple(symbols), tuple(weights), (0.0,) * len(v), 0.0)
    sigma = math.sqrt(variance)
    return EulerRisk(
        tuple(symbols), tuple(float(w) for w in weights), tuple((v / sigma).tolist()), sigma
    )


def euler_risk(
    weights: Mapping[str, float], cov: npt.ArrayLike, symbols: Sequence[str]
) -> EulerRisk:
    """Euler contributions of ``weights`` (a missing symbol holds 0) on ``cov`` (``symbols`` order).

    Raises
    ------
    ValueError
        If ``cov`` is not square of ``len(symbols)``.
    """
    w = np.array([float(weights.get(s, 0.0)) for s in symbols])
    return _from_variance(symbols, w.tolist(), risk_contributions(w, cov))


def realised_attribution(
    weights: Mapping[str, float], returns: pd.DataFrame, window: int = 63
) -> EulerRisk:
    """Euler contributions on the sample covariance of the last ``window`` rows of ``returns``.

    Parameters
    ----------
    weights : mapping of str to float
        Held weights; a column of ``returns`` without one holds 0.
    returns : DataFrame of shape (n_days, n_assets)
        Simple daily returns, oldest first; rows with a missing value are dropped.
    window : int, default 63
        Trailing rows used (three months).

    Raises
    ------
    ValueError
        With fewer than 2 complete rows in the window.
    """
    sample = returns.iloc[-window:].dropna()
    if len(sample) < 2:
        raise ValueError(f"realised risk needs at least 2 complete returns, got {len(sample)}")
    cov = np.atleast_2d(np.cov(sample.to_numpy(dtype=float), rowvar=False, ddof=1))
    return euler_risk(weights, cov, [str(c) for c in returns.columns])


# ------------------------------------------------------------------------------ classes


@dataclass(frozen=True)
class ClassShare:
    """The share of a portfolio's risk carried by one asset class."""

    name: str
    symbols: tuple[str, ...]
    share: float

    def describe(self) -> str:
        """``SPY (equities)``, ``equities (SPY, EFA)``, or ``XYZ`` for a symbol of no class."""
        if len(self.symbols) == 1:
            only = self.symbols[0]
            return only if self.name == only else f"{only} ({self.name})"
        return f"{self.name} ({', '.join(self.symbols)})"


def asset_class(symbol: str, asset_classes: Mapping[str, str] | None = None) -> str | None:
    """The class of ``symbol`` in words: ``asset_classes`` (a portfolio's own table, by its
    risk-tolerance code ``equity``/``bond``/``real`` or in any words) where it names the symbol,
    else :data:`ASSET_CLASSES`; None for a symbol neither knows."""
    name = (asset_classes or {}).get(symbol, ASSET_CLASSES.get(symbol))
    return None if name is None else CLASS_NAMES.get(name, name)


def class_shares(
    shares: Mapping[str, float], asset_classes: Mapping[str, str] | None = None
) -> tuple[ClassShare, ...]:
    """``shares`` summed by asset class (:func:`asset_class`; a symbol of no class is a class of
    its own), in the order the classes first appear."""
    members: dict[str, list[str]] = {}
    for s in shares:
        members.setdefault(asset_class(s, asset_classes) or s, []).append(s)
    return tuple(
        ClassShare(name, tuple(syms), float(sum(shares[s] for s in syms)))
        for name, syms in members.items()
    )


# ------------------------------------------------------------------------------ signals


@dataclass(frozen=True)
class SignalRisk:
    """The forecast risk of one signal's target weights, today and under each regime.

    Attributes
    ----------
    today : dict of str to float
        Share of the forecast volatility per symbol (sums to 1).
    volatility : float or None
        The forecast daily volatility, when the signal gives the variance contributions
        (a reference strategy's signal gives shares only).
    regimes : dict of str to dict of str to float
        Shares under each regime's covariance, by regime label (empty without regimes).
    """

    today: Mapping[str, float]
    volatility: float | None
    regimes: Mapping[str, Mapping[str, float]]


def _numbers(value: Any, n: int) -> list[float] | None:
    """``value`` as ``n`` finite floats, or None (a signal's diagnostics are free-form)."""
    if not isinstance(value, list | tuple) or len(value) != n:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    out = [float(v) for v in value]
    return out if all(math.isfinite(v) for v in out) else None


def signal_risk(
    weights: Mapping[str, float],
    diagnostics: Mapping[str, Any],
    min_regime_obs: float = MIN_REGIME_OBS,
) -> SignalRisk | None:
    """The forecast attribution a signal carries, or None when it carries none or holds cash.

    Parameters
    ----------
    weights : mapping of str to float
        The signal's target weights; their order is the order of the diagnostics' lists.
    diagnostics : mapping
        The signal's diagnostics: ``risk_variance`` (``forecast``, ``regimes``, ``regime_obs``:
        :class:`~regime_trader.strategies.regime_erc.RegimeERC`), else the shares
        ``risk_contributions`` of a reference strategy.
    min_regime_obs : float
        A regime with fewer effective observations behind its covariance is left out.
    """
    symbols = list(weights)
    w = [float(weights[s]) for s in symbols]
    rv = diagnostics.get("risk_variance")
    if isinstance(rv, Mapping) and (forecast := _numbers(rv.get(FORECAST), len(w))) is not None:
        today = _from_variance(symbols, w, forecast)
        if today.volatility <= 0:
            return None
        obs = rv.get("regime_obs")
        obs = obs if isinstance(obs, Mapping) else {}
        by_regime = rv.get("regimes")
        by_regime = by_regime if isinstance(by_regime, Mapping) else {}
        regimes: dict[str, dict[str, float]] = {}
        for label, values in by_regime.items():
            vc = _numbers(values, len(w))
            enough = isinstance(n := obs.get(label), int | float) and n >= min_regime_obs
            if vc is not None and enough and (r := _from_variance(symbols, w, vc)).volatility > 0:
                regimes[str(label)] = r.shares
        return SignalRisk(today.shares, today.volatility, regimes)
    rc = diagnostics.get("risk_contributions")
    if not isinstance(rc, Mapping) or sum(w) <= 0:
        return None
    shares = _numbers([rc.get(s) for s in symbols], len(w))
    return None if shares is None else SignalRisk(dict(zip(symbols, shares, strict=True)), None, {})


def risk_sentence(
    risk: SignalRisk, asset_classes: Mapping[str, str] | None = None, regime: str = STRESS
) -> str:
    """One line for people: the class with the most risk today, and its share in ``regime``.

    E.g. ``"34% of today's risk is in SPXTR (equities); in stress it would be 52%"``; the second
    part only when the signal has that regime's covariance.
    """
    groups = class_shares(risk.today, asset_classes)
    there = risk.regimes.get(regime)

    def in_regime(g: ClassShare) -> float:
        return 0.0 if there is None else sum(there[s] for s in g.symbols)

    # Shares equal to the percent (ERC's by construction) differ by rounding noise only: the
    # class that would carry the most in the regime is then the one worth naming.
    top = max(groups, key=lambda g: (round(100 * g.share), in_regime(g)))
    line = f"{top.share:.0%} of today's risk is in {top.describe()}"
    if there is not None:
        line += f"; in {regime} it would be {in_regime(top):.0%}"
    return line


# ------------------------------------------------------------------------------ the dashboard


@dataclass(frozen=True)
class RiskViewRow:
    """One basis of the risk panel: shares by symbol and by class, and the volatility a year."""

    label: str
    shares: Mapping[str, float]
    classes: tuple[ClassShare, ...]
    annual_volatility: float | None


@dataclass(frozen=True)
class RiskView:
    """Where a portfolio's risk is: forecast today, under each regime, realised; the sentence."""

    symbols: tuple[str, ...]
    rows: tuple[RiskViewRow, ...]
    sentence: str | None


def risk_view(
    target: Mapping[str, float],
    diagnostics: Mapping[str, Any],
    held: Mapping[str, float] | None = None,
    returns: pd.DataFrame | None = None,
    *,
    window: int = 63,
    asset_classes: Mapping[str, str] | None = None,
) -> RiskView | None:
    """The risk panel of the last signal and the held portfolio; None when neither has data.

    Parameters
    ----------
    target, diagnostics : mapping
        The last signal's target weights and diagnostics (a history entry's ``weights`` and
        ``diagnostics``).
    held : mapping of str to float, optional
        The weights the account holds (the realised row needs them and ``returns``).
    returns : DataFrame, optional
        The assets' simple daily returns, oldest first (``closes.pct_change()``).
    window : int, default 63
        Trailing returns of the realised covariance.
    asset_classes : mapping of str to str, optional
        Default :data:`ASSET_CLASSES`.
    """
    rows: list[RiskViewRow] = []
    risk = signal_risk(target, diagnostics)
    annual = math.sqrt(TRADING_DAYS)

    def row(label: str, shares: Mapping[str, float], vol: float | None) -> RiskViewRow:
        return RiskViewRow(label, dict(shares), class_shares(shares, asset_classes), vol)

    if risk is not None:
        vol = None if risk.volatility is None else risk.volatility * annual
        rows.append(row("forecast today", risk.today, vol))
        rows += [row(f"forecast in {label}", sh, None) for label, sh in risk.regimes.items()]
    if held is not None and returns is not None and len(returns.dropna()) >= 2:
        realised = realised_attribution(held, returns, window)
        if realised.volatility > 0:
            rows.append(
                row(f"realised, {window} days", realised.shares, realised.annual_volatility)
            )
    if not rows:
        return None
    symbols = tuple(rows[0].shares)
    sentence = None if risk is None else risk_sentence(risk, asset_classes)
    return RiskView(symbols, tuple(rows), sentence)

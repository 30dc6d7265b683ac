"""A seeded regime-switching market with known true regimes.

Daily log returns are drawn from a multivariate normal whose mean and covariance depend
on a hidden Markov chain of regimes. Because the true regime of every day is returned with
the prices, tests can measure how well a filter recovers it, and demos and the emulator get
realistic-looking prices without any data file.

The generator is pure: the same arguments and seed always give the same market.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_REGIMES",
    "DEFAULT_TRANSITION",
    "RegimeSpec",
    "SyntheticMarket",
    "generate_market",
]

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class RegimeSpec:
    """The return distribution of one regime, in annualised units.

    Parameters
    ----------
    name : str
        A label for people ("calm", "stress").
    annual_mean : tuple of float, length n_assets
        Expected arithmetic return per year of each asset.
    annual_vol : tuple of float, length n_assets
        Volatility per year of each asset; every value must be positive.
    correlation : tuple of tuple of float, shape (n_assets, n_assets)
        Correlation matrix; symmetric, unit diagonal, positive definite.
    """

    name: str
    annual_mean: tuple[float, ...]
    annual_vol: tuple[float, ...]
    correlation: tuple[tuple[float, ...], ...]

    def daily_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the daily log-return mean, shape (n_assets,), and covariance, (n, n)."""
        vol = np.asarray(self.annual_vol, dtype=float) / np.sqrt(TRADING_DAYS_PER_YEAR)
        corr = np.asarray(self.correlation, dtype=float)
        cov = corr * np.outer(vol, vol)
        # Log-return drift so that the arithmetic mean matches annual_mean.
        mean = np.asarray(self.annual_mean, dtype=float) / TRADING_DAYS_PER_YEAR - 0.5 * vol**2
        return mean, cov


# Calm: equities grind up, bonds and gold modest, stock-bond correlation mildly negative.
# Stress: equities fall with three times the volatility, flight to quality into bonds and gold.
DEFAULT_REGIMES: tuple[RegimeSpec, ...] = (
    RegimeSpec(
        name="calm",
        annual_mean=(0.12, 0.03, 0.04),
        annual_vol=(0.11, 0.10, 0.14),
        correlation=((1.0, -0.25, 0.05), (-0.25, 1.0, 0.20), (0.05, 0.20, 1.0)),
    ),
    RegimeSpec(
        name="stress",
        annual_mean=(-0.25, 0.12, 0.10),
        annual_vol=(0.35, 0.16, 0.22),
        correlation=((1.0, -0.50, 0.00), (-0.50, 1.0, 0.30), (0.00, 0.30, 1.0)),
    ),
)

# Expected durations: about 100 days calm, about 33 days stressed.
DEFAULT_TRANSITION: tuple[tuple[float, ...], ...] = ((0.99, 0.01), (0.03, 0.97))


@dataclass(frozen=True)
class SyntheticMarket:
    """Prices and the hidden regimes that generated them.

    Attributes
    ----------
    prices : DataFrame of shape (n_days, n_assets)
        Close prices indexed by session date, one column per symbol.
    regimes : ndarray of int of shape (n_days,)
        The true regime of each day (index into ``specs``). The first row is the start
        price, whose regime is the initial state of the chain.
    specs : tuple of RegimeSpec
        The regimes used.
    """

    prices: pd.DataFrame
    regimes: np.ndarray
    specs: tuple[RegimeSpec, ...] = field(default=DEFAULT_REGIMES)


def _validate(
    symbols: Sequence[str],
    specs: Sequence[RegimeSpec],
    transition: np.ndarray,
) -> None:
    n_assets, n_states = len(symbols), len(specs)
    if n_assets == 0 or len(set(symbols)) != n_assets:
        raise ValueError(f"symbols must be non-empty and unique, got {list(symbols)!r}")
    if transition.shape != (n_states, n_states):
        raise ValueError(
            f"transition must have shape ({n_states}, {n_states}), got {transition.shape}"
        )
    if np.any(transition < 0) or not np.allclose(transition.sum(axis=1), 1.0):
        raise ValueError("transition rows must be non-negative and sum to 1")
    for spec in specs:
        for name in ("annual_mean", "annual_vol"):
            if len(getattr(spec, name)) != n_assets:
                raise ValueError(
                    f"regime {spec.name!r}: {name} has {len(getattr(spec, name))} values "
                    f"for {n_assets} symbols"
                )
        if min(spec.annual_vol) <= 0:
            raise ValueError(f"regime {spec.name!r}: annual_vol must be positive")
        corr = np.asarray(spec.correlation, dtype=float)
        if corr.shape != (n_assets, n_assets) or not np.allclose(corr, corr.T):
            raise ValueError(f"regime {spec.name!r}: correlation must be symmetric n x n")
        if np.linalg.eigvalsh(corr).min() <= 0:
            raise ValueError(f"regime {spec.name!r}: correlation must be positive definite")


def generate_market(
    n_days: int,
    symbols: Sequence[str] = ("SPY", "TLT", "GLD"),
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2010-01-04",
    sessions: pd.DatetimeIndex | None = None,
    specs: Sequence[RegimeSpec] = DEFAULT_REGIMES,
    transition: Sequence[Sequence[float]] | np.ndarray = DEFAULT_TRANSITION,
    start_price: float = 100.0,
) -> SyntheticMarket:
    """Generate a seeded regime-switching market.

    Parameters
    ----------
    n_days : int
        Number of sessions (rows) to generate, at least 2.
    symbols : sequence of str
        Column names; their count must match every regime's parameters.
    seed : int
        Seed of the random generator; the same seed gives the same market.
    start : str or Timestamp
        First session when ``sessions`` is not given (business days from there).
    sessions : DatetimeIndex, optional
        Explicit session dates (for example an exchange calendar); its first ``n_days``
        entries are used.
    specs : sequence of RegimeSpec
        One distribution per regime; regime 0 starts the chain.
    transition : array-like of shape (n_states, n_states)
        Row-stochastic regime transition matrix.
    start_price : float
        Price of every asset on the first session.

    Returns
    -------
    SyntheticMarket

    Raises
    ------
    ValueError
        If the sizes disagree, a volatility is not positive, a correlation matrix is not
        positive definite or the transition matrix is not row-stochastic.
    """
    if n_days < 2:
        raise ValueError(f"n_days must be at least 2, got {n_days}")
    trans = np.asarray(transition, dtype=float)
    specs = tuple(specs)
    _validate(symbols, specs, trans)
    if sessions is None:
        index = pd.bdate_range(start=start, periods=n_days, name="date")
    else:
        if len(sessions) < n_days:
            raise ValueError(f"sessions has {len(sessions)} dates, fewer than n_days={n_days}")
        index = pd.DatetimeIndex(sessions[:n_days], name="date")

    rng = np.random.default_rng(seed)
    regimes = np.empty(n_days, dtype=np.int64)
    regimes[0] = 0
    cumulative = np.cumsum(trans, axis=1)
    draws = rng.random(n_days)
    for t in range(1, n_days):
        regimes[t] = int(np.searchsorted(cumulative[regimes[t - 1]], draws[t], side="right"))
    regimes = np.minimum(regimes, len(specs) - 1)

    n_assets = len(symbols)
    log_returns = np.zeros((n_days, n_assets))
    normals = rng.standard_normal((n_days, n_assets))
    for k, spec in enumerate(specs):
        mean, cov = spec.daily_moments()
        chol = np.linalg.cholesky(cov)
        rows = np.flatnonzero(regimes == k)
        rows = rows[rows > 0]
        log_returns[rows] = mean + normals[rows] @ chol.T
    prices = start_price * np.exp(np.cumsum(log_returns, axis=0))
    frame = pd.DataFrame(prices, index=index, columns=list(symbols))
    return SyntheticMarket(prices=frame, regimes=regimes, specs=specs)

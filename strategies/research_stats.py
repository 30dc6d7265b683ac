"""Statistics of the research protocol: Sharpe differences with block-bootstrap intervals,
static ERC matched to a strategy's volatility, and the deflated Sharpe ratio.

Conventions (those of :mod:`regime_trader.strategies.metrics`): simple daily returns net of
costs, 252 sessions a year, a risk-free rate of 0 (cash earns nothing in the backtest). An
annualised Sharpe ratio is ``sqrt(252) * mean / std`` with ``ddof=1``; the deflated Sharpe
ratio works on the per-period (daily, non-annualised) ratio, as its paper does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DEFAULT_BLOCK_LENGTH",
    "DeflatedSharpe",
    "SharpeDifference",
    "VolMatched",
    "annualised_sharpe",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "sharpe_difference",
    "stationary_bootstrap_indices",
    "vol_matched",
]

TRADING_DAYS_PER_YEAR = 252
EULER_MASCHERONI = 0.5772156649015329
# One trading month: long enough to keep the volatility clustering of daily returns inside a
# block, short enough to leave ~100 blocks in a development window of 9 years.
DEFAULT_BLOCK_LENGTH = 21


def annualised_sharpe(returns: np.ndarray) -> float:
    """``sqrt(252) * mean / std(ddof=1)`` of daily returns; NaN for fewer than 2 or no spread.

    Parameters
    ----------
    returns : ndarray of shape (n_days,)
        Daily returns.
    """
    r = np.asarray(returns, dtype=float).ravel()
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    return math.sqrt(TRADING_DAYS_PER_YEAR) * float(np.mean(r)) / sd if sd > 0 else math.nan


def _sharpe_rows(samples: np.ndarray) -> np.ndarray:
    """Annualised Sharpe of each row of ``samples`` (n_boot, n_days)."""
    sd = samples.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = math.sqrt(TRADING_DAYS_PER_YEAR) * samples.mean(axis=1) / sd
    return out


def stationary_bootstrap_indices(
    n_obs: int, n_boot: int, mean_block_length: float, rng: np.random.Generator
) -> np.ndarray:
    """Resampled positions of the stationary bootstrap (Politis & Romano 1994).

    Each resample is a sequence of blocks that start at a uniformly drawn position and have a
    geometric length of mean ``mean_block_length``, wrapping around the end of the sample
    (circularly), until ``n_obs`` positions are drawn. Resampling whole blocks keeps the serial
    dependence of daily returns (volatility clustering) inside each block.

    Parameters
    ----------
    n_obs : int
        Length of the sample and of each resample.
    n_boot : int
        Number of resamples.
    mean_block_length : float
        Expected block length, >= 1 (1 is the i.i.d. bootstrap).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n_boot, n_obs), dtype int

    References
    ----------
    Politis, D. N. & Romano, J. P. (1994). The stationary bootstrap. *Journal of the American
    Statistical Association* 89(428), 1303-1313.
    """
    if mean_block_length < 1:
        raise ValueError(f"mean_block_length must be >= 1, got {mean_block_length}")
    if n_obs < 1 or n_boot < 1:
        raise ValueError(f"need n_obs >= 1 and n_boot >= 1, got {n_obs} and {n_boot}")
    idx = np.empty((n_boot, n_obs), dtype=np.int64)
    starts = rng.integers(0, n_obs, size=(n_boot, n_obs))
    new_block = rng.random((n_boot, n_obs)) < 1.0 / mean_block_length
    idx[:, 0] = starts[:, 0]
    for t in range(1, n_obs):
        idx[:, t] = np.where(new_block[:, t], starts[:, t], (idx[:, t - 1] + 1) % n_obs)
    return idx


@dataclass(frozen=True)
class SharpeDifference:
    """Annualised Sharpe of ``a`` less that of ``b`` on the same days, with its interval.

    Attributes
    ----------
    sharpe_a, sharpe_b, difference : float
        Point estimates on the sample.
    ci_low, ci_high : float
        Percentile interval of the difference over the bootstrap resamples.
    confidence : float
    n_obs, n_boot : int
    mean_block_length : float
    seed : int
    share_positive : float
        Share of resamples in which the difference is > 0.
    """

    sharpe_a: float
    sharpe_b: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n_obs: int
    n_boot: int
    mean_block_length: float
    seed: int
    share_positive: float


def sharpe_difference(
    a: pd.Series,
    b: pd.Series,
    *,
    n_boot: int = 2000,
    mean_block_length: float = DEFAULT_BLOCK_LENGTH,
    confidence: float = 0.95,
    seed: int = 0,
) -> SharpeDifference:
    """Sharpe ratio difference of two return series, with a stationary block-bootstrap interval.

    Both series are resampled with the *same* positions, so the interval accounts for their
    correlation (a strategy and its benchmark move together) as well as for serial dependence.
    The interval is the percentile interval of the resampled differences (Ledoit & Wolf 2008
    study the studentised variant; the percentile one is reported here for its transparency).

    Parameters
    ----------
    a, b : Series of shape (n_days,)
        Daily returns on exactly the same days (same index).
    n_boot : int, default 2000
    mean_block_length : float, default 21
        Expected block length in days of the stationary bootstrap.
    confidence : float, default 0.95
    seed : int, default 0
        Seed of the resampling (the same seed gives the same interval).

    Returns
    -------
    SharpeDifference

    Raises
    ------
    ValueError
        If the indexes differ, fewer than 3 days are given, or a series is not finite.

    References
    ----------
    Ledoit, O. & Wolf, M. (2008). Robust performance hypothesis testing with the Sharpe ratio.
    *Journal of Empirical Finance* 15(5), 850-859.
    Politis, D. N. & Romano, J. P. (1994), see :func:`stationary_bootstrap_indices`.
    """
    if not a.index.equals(b.index):
        raise ValueError("the two return series must be indexed by the same days")
    x = a.to_numpy(dtype=float)
    y = b.to_numpy(dtype=float)
    if x.size < 3:
        raise ValueError(f"need at least 3 days, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("return series must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = stationary_bootstrap_indices(x.size, n_boot, mean_block_length, rng)
    diffs = _sharpe_rows(x[idx]) - _sharpe_rows(y[idx])
    diffs = diffs[np.isfinite(diffs)]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha]) if diffs.size else (math.nan, math.nan)
    sa, sb = annualised_sharpe(x), annualised_sharpe(y)
    return SharpeDifference(
        sharpe_a=sa,
        sharpe_b=sb,
        difference=sa - sb,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_obs=int(x.size),
        n_boot=n_boot,
        mean_block_length=float(mean_block_length),
        seed=seed,
        share_positive=float(np.mean(diffs > 0)) if diffs.size else math.nan,
    )


@dataclass(frozen=True)
class VolMatched:
    """Static ERC scaled to a strategy's realised volatility, the rest in cash.

    Attributes
    ----------
    returns : Series
        ``scale * benchmark`` returns (cash earns 0).
    turnover : Series or None
        ``scale * benchmark`` turnover (holding a fixed fraction scales every trade).
    scale : float
        ``std(strategy) / std(benchmark)`` over the given days; above 1 it would need
        leverage, which the comparison reports rather than hides.
    """

    returns: pd.Series
    turnover: pd.Series | None
    scale: float


def vol_matched(
    strategy: pd.Series, benchmark: pd.Series, benchmark_turnover: pd.Series | None = None
) -> VolMatched:
    """Scale a benchmark's daily returns to the strategy's realised volatility.

    The fair comparison for a strategy that holds cash: the same fraction of static ERC, the
    rest in cash, has the strategy's volatility. Its Sharpe ratio is static ERC's (a constant
    scale does not change a ratio with a zero risk-free rate); its drawdown and CAGR are what a
    lower-risk strategy must beat. This is the ``static_erc_vol_matched`` row of
    ``/work/shared/tools/score_weights.py``: the scale is the ratio of the two series' standard
    deviations over the same days (an ex-post scale, known only at the end of the period).

    Parameters
    ----------
    strategy, benchmark : Series of shape (n_days,)
        Daily returns on the same days.
    benchmark_turnover : Series, optional
        The benchmark's daily turnover, scaled alike.

    Raises
    ------
    ValueError
        If the indexes differ or the benchmark has no volatility.
    """
    if not strategy.index.equals(benchmark.index):
        raise ValueError("strategy and benchmark must be indexed by the same days")
    sd_b = float(benchmark.std(ddof=1))
    if not sd_b > 0:
        raise ValueError("the benchmark has no volatility to match")
    scale = float(strategy.std(ddof=1)) / sd_b
    turnover = None if benchmark_turnover is None else scale * benchmark_turnover
    return VolMatched(scale * benchmark, turnover, scale)


def expected_max_sharpe(sharpe_variance: float, n_trials: int) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is 0.

    E[max SR] ~= sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e))), with V the
    variance of the trials' ratios and g the Euler-Mascheroni constant: the extreme-value
    approximation of the maximum of N independent normal draws (Bailey & Lopez de Prado 2014,
    eq. 5, after the "false strategy" theorem). In the units of the ratios given.

    Parameters
    ----------
    sharpe_variance : float
        Variance across the trials of their Sharpe ratios, >= 0.
    n_trials : int
        Number of trials N, >= 1 (one trial has no selection: 0).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sharpe_variance < 0:
        raise ValueError(f"sharpe_variance must be >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    z = stats.norm.ppf
    g = EULER_MASCHERONI
    return math.sqrt(sharpe_variance) * (
        (1 - g) * float(z(1 - 1 / n_trials)) + g * float(z(1 - 1 / (n_trials * math.e)))
    )


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skewness: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (Bailey & Lopez de Prado 2012).

    PSR = Z[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)], with per-period
    ratios, g3 the skewness and g4 the (non-excess) kurtosis of the returns.

    Raises
    ------
    ValueError
        If ``n_obs < 2`` or the variance term is not positive (extreme skew for the ratio).
    """
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    variance_term = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance_term > 0:
        raise ValueError(
            f"the Sharpe ratio's variance term 1 - g3 SR + (g4 - 1)/4 SR^2 = {variance_term} "
            f"is not positive (SR {sharpe}, skewness {skewness}, kurtosis {kurtosis})"
        )
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return float(stats.norm.cdf(z))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a selected trial, with every input it used.

    Attributes
    ----------
    dsr : float
        Probability that the selected trial's true Sharpe ratio is above 0, having searched
        ``n_trials`` of them.
    sharpe : float
        The selected trial's per-period (daily) Sharpe ratio.
    expected_max : float
        SR0: the expected maximum daily Sharpe ratio of ``n_trials`` trials without skill.
    sharpe_variance : float
        Variance of the trials' daily Sharpe ratios.
    n_trials, n_obs : int
    skewness, kurtosis : float
        Of the selected trial's returns (kurtosis non-excess: 3 for a normal).
    """

    dsr: float
    sharpe: float
    expected_max: float
    sharpe_variance: float
    n_trials: int
    n_obs: int
    skewness: float
    kurtosis: float

    @property
    def annualised_sharpe(self) -> float:
        return self.sharpe * math.sqrt(TRADING_DAYS_PER_YEAR)

    @property
    def annualised_expected_max(self) -> float:
        return self.expected_max * math.sqrt(TRADING_DAYS_PER_YEAR)


def deflated_sharpe_ratio(selected: np.ndarray, trial_sharpes: np.ndarray) -> DeflatedSharpe:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014) of the trial a search selected.

    DSR = PSR(SR0): the probabilistic Sharpe ratio of the selected trial against SR0, the
    Sharpe ratio the best of N skill-less trials is expected to reach given how much the trials'
    ratios vary (:func:`expected_max_sharpe`). It corrects the selected ratio for selection
    (N and the variance across trials), for non-normal returns (skewness, kurtosis) and for the
    sample length T.

    Parameters
    ----------
    selected : ndarray of shape (n_obs,)
        Daily returns of the selected trial.
    trial_sharpes : ndarray of shape (n_trials,)
        Daily (non-annualised) Sharpe ratio of every trial run, the selected one included,
        on the same days.

    Returns
    -------
    DeflatedSharpe

    References
    ----------
    Bailey, D. H. & Lopez de Prado, M. (2014). The deflated Sharpe ratio: correcting for
    selection bias, backtest overfitting and non-normality. *Journal of Portfolio Management*
    40(5), 94-107.
    Bailey, D. H. & Lopez de Prado, M. (2012). The Sharpe ratio efficient frontier. *Journal of
    Risk* 15(2), 3-44 (the probabilistic Sharpe ratio).
    """
    r = np.asarray(selected, dtype=float)
    sharpes = np.asarray(trial_sharpes, dtype=float)
    if r.size < 3 or not np.all(np.isfinite(r)):
        raise ValueError(f"need at least 3 finite returns, got {r.size}")
    if sharpes.size < 1 or not np.all(np.isfinite(sharpes)):
        raise ValueError("trial_sharpes must be a non-empty finite array")
    sd = float(np.std(r, ddof=1))
    if not sd > 0:
        raise ValueError("the selected returns have no volatility")
    sharpe = float(np.mean(r)) / sd
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size > 1 else 0.0
    sr0 = expected_max_sharpe(variance, int(sharpes.size))
    skewness = float(stats.skew(r, bias=False))
    kurtosis = float(stats.kurtosis(r, fisher=False, bias=False))
    return DeflatedSharpe(
        dsr=probabilistic_sharpe_ratio(sharpe, sr0, int(r.size), skewness, kurtosis),
        sharpe=sharpe,
        expected_max=sr0,
        sharpe_variance=variance,
        n_trials=int(sharpes.size),
        n_obs=int(r.size),
        skewness=skewness,
        kurtosis=kurtosis,
    )

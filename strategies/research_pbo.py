"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, Lopez de Prado & Zhu (2017). Given the daily returns of every trial a search
ran, as a T x N matrix M on the same days:

1. drop the first ``T mod S`` rows and cut the rest into S contiguous blocks of equal length
   (S even);
2. for every one of the C(S, S/2) ways to pick S/2 blocks as the in-sample set J (rows kept
   in time order) and the other S/2 as the out-of-sample set J-bar:
   - compute each trial's Sharpe ratio on J and on J-bar;
   - take n*, the trial with the best in-sample ratio;
   - its relative out-of-sample rank w = rank(R-bar_{n*}) / (N + 1), ranks ascending from 1
     for the worst, ties averaged;
   - the logit lambda = log(w / (1 - w));
3. PBO is the share of combinations with lambda <= 0: how often the in-sample best is at or
   below the median out of sample.

A search that found nothing (pure noise) gives PBO near 1/2; one whose best trial truly
dominates gives PBO near 0. The Sharpe ratio of a set of blocks is computed from per-block
sums (of r and r^2), so all C(S, S/2) combinations cost one matrix product.

References
----------
Bailey, D. H., Borwein, J. M., Lopez de Prado, M. & Zhu, Q. J. (2017). The probability of
backtest overfitting. *Journal of Computational Finance* 20(4), 39-69.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["BacktestOverfitting", "probability_of_backtest_overfitting"]


@dataclass(frozen=True)
class BacktestOverfitting:
    """The CSCV result.

    Attributes
    ----------
    pbo : float
        Share of the combinations whose in-sample best trial ranks at or below the
        out-of-sample median.
    logits : ndarray of shape (n_combinations,)
        lambda of every combination.
    n_blocks, n_trials, n_obs : int
        S, N and the rows used (T less the dropped remainder).
    best_in_sample : ndarray of shape (n_combinations,)
        The index n* of the in-sample best trial of every combination.
    oos_sharpe_of_best : ndarray of shape (n_combinations,)
        Its out-of-sample per-period Sharpe ratio (the "performance degradation" plot).
    """

    pbo: float
    logits: np.ndarray
    n_blocks: int
    n_trials: int
    n_obs: int
    best_in_sample: np.ndarray
    oos_sharpe_of_best: np.ndarray

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)

    @property
    def prob_oos_loss(self) -> float:
        """Share of combinations whose in-sample best loses money out of sample."""
        return float(np.mean(self.oos_sharpe_of_best < 0))


def _combination_sharpes(
    chosen: np.ndarray, sum_r: np.ndarray, sum_r2: np.ndarray, rows_per_block: int
) -> np.ndarray:
    """Per-period Sharpe of every trial on every combination of blocks.

    ``chosen`` is (n_comb, S) of 0/1, ``sum_r`` and ``sum_r2`` (S, N) per-block sums.
    """
    n = chosen.sum(axis=1, keepdims=True) * rows_per_block
    s1 = chosen @ sum_r
    s2 = chosen @ sum_r2
    mean = s1 / n
    var = (s2 - n * mean**2) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe: np.ndarray = mean / np.sqrt(np.maximum(var, 0.0))
    return sharpe


def probability_of_backtest_overfitting(
    returns: np.ndarray, n_blocks: int = 16
) -> BacktestOverfitting:
    """Estimate PBO by CSCV from the daily returns of every trial.

    Parameters
    ----------
    returns : ndarray of shape (n_obs, n_trials)
        Trial n's daily returns in column n, every column on the same days, in time order.
    n_blocks : int, default 16
        S, even, >= 2; the paper uses 16 (12,870 combinations). Each block needs at least 2
        rows.

    Returns
    -------
    BacktestOverfitting

    Raises
    ------
    ValueError
        For fewer than 2 trials, an odd S, blocks under 2 rows, or non-finite returns.
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"returns must be 2-D (n_obs, n_trials), got shape {m.shape}")
    n_obs, n_trials = m.shape
    if n_trials < 2:
        raise ValueError(f"need at least 2 trials to compare, got {n_trials}")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even number >= 2, got {n_blocks}")
    rows_per_block = n_obs // n_blocks
    if rows_per_block < 2:
        raise ValueError(f"{n_obs} rows cannot make {n_blocks} blocks of at least 2 rows each")
    if not np.all(np.isfinite(m)):
        raise ValueError("returns must be finite")
    used = m[n_obs - rows_per_block * n_blocks :]
    blocks = used.reshape(n_blocks, rows_per_block, n_trials)
    sum_r = blocks.sum(axis=1)
    sum_r2 = (blocks**2).sum(axis=1)
    combos = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    chosen = np.zeros((len(combos), n_blocks))
    for c, members in enumerate(combos):
        chosen[c, list(members)] = 1.0
    in_sample = _combination_sharpes(chosen, sum_r, sum_r2, rows_per_block)
    out_sample = _combination_sharpes(1.0 - chosen, sum_r, sum_r2, rows_per_block)
    # A trial with no spread on a set has no ratio: rank it worst rather than drop it.
    in_sample = np.where(np.isfinite(in_sample), in_sample, -np.inf)
    out_sample = np.where(np.isfinite(out_sample), out_sample, -np.inf)
    best = np.argmax(in_sample, axis=1)
    ranks = stats.rankdata(out_sample, axis=1)  # 1 = worst, ties averaged
    w = ranks[np.arange(len(combos)), best] / (n_trials + 1)
    logits = np.log(w / (1.0 - w))
    oos_best = out_sample[np.arange(len(combos)), best]
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        n_blocks=n_blocks,
        n_trials=n_trials,
        n_obs=int(used.shape[0]),
        best_in_sample=best,
        oos_sharpe_of_best=oos_best,
    )

"""The HMM's forward recursion over a training window, on Python floats.

:meth:`~regime_trader.strategies.regime.ForwardFilter.run` filters every training window after
every fit (thousands of days, monthly), and with two to four states a NumPy call per day costs
more than its arithmetic. This loop does the same IEEE-754 operations per day:

- the joint ``prior_k * b_k`` (one product each), its total (left to right: NumPy's reduction
  of fewer than eight numbers adds them in that order), the posterior ``joint_k / total`` and
  the log-likelihood ``shift + log(total)``;
- the next prior ``sum_i post_i A[i, j]`` as unfused products added left to right
  (:func:`predict`, which the online filter uses as well, so a window filtered in one pass
  and day by day give the same bits).

That arithmetic is the same on every machine. NumPy's ``post @ A`` is not: its BLAS kernel picks
the order of the sums and may fuse multiply-adds, so it gives the same bits on some machines (two
and three states on the reference machine's OpenBLAS) and agrees to rounding (1e-13) elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["StepInLogSpace", "filter_scaled", "predict"]

StepInLogSpace = Callable[[int, list[float]], tuple[list[float], float]]
"""``(t, prior) -> (posterior, log_predictive)``: the exact log-space update of day t."""

UNDERFLOW = 1e-250
"""Below this normaliser a day is redone in log space (the prior is ~0 where the data are)."""


def predict(probs: Sequence[float], transmat: Sequence[Sequence[float]]) -> list[float]:
    """The next day's distribution ``probs @ transmat``, summed left to right."""
    n = len(probs)
    out = []
    for j in range(n):
        total = probs[0] * transmat[0][j]
        for i in range(1, n):
            total = total + probs[i] * transmat[i][j]
        out.append(total)
    return out


def filter_scaled(
    scaled: np.ndarray,
    shift: np.ndarray,
    transmat: list[list[float]],
    prior: list[float],
    step_in_log_space: StepInLogSpace,
) -> tuple[np.ndarray, np.ndarray]:
    """Filter every day, strictly left to right.

    Parameters
    ----------
    scaled : ndarray of shape (n_obs, n_states)
        ``exp(log b_t(k) - shift_t)``: each day's densities over its largest one.
    shift : ndarray of shape (n_obs,)
        ``max_k log b_t(k)``.
    transmat : list of n_states lists of n_states floats
    prior : list of n_states floats
        Predicted distribution of the first day.
    step_in_log_space : callable
        Redoes a day whose normaliser underflows (see :data:`UNDERFLOW`).

    Returns
    -------
    filtered : ndarray of shape (n_obs, n_states)
    log_predictive : ndarray of shape (n_obs,)
    """
    columns = [scaled[:, k].tolist() for k in range(scaled.shape[1])]
    if len(prior) == 2:
        out, loglik = _filter_two(
            columns[0], columns[1], shift.tolist(), transmat, prior, step_in_log_space
        )
    else:
        out, loglik = _filter_many(columns, shift.tolist(), transmat, prior, step_in_log_space)
    filtered = np.array(out, dtype=float).T.reshape(scaled.shape)
    return np.ascontiguousarray(filtered), np.array(loglik, dtype=float)


def _filter_many(
    columns: list[list[float]],
    shift: list[float],
    transmat: list[list[float]],
    prior: list[float],
    step_in_log_space: StepInLogSpace,
) -> tuple[list[list[float]], list[float]]:
    filtered: list[list[float]] = []
    loglik: list[float] = []
    current = prior
    for t, (row, top) in enumerate(zip(zip(*columns, strict=True), shift, strict=True)):
        joint = [c * s for c, s in zip(current, row, strict=True)]
        total = joint[0]
        for x in joint[1:]:
            total = total + x
        if total > UNDERFLOW:
            post = [x / total for x in joint]
            ll = top + math.log(total)
        else:
            post, ll = step_in_log_space(t, current)
        filtered.append(post)
        loglik.append(ll)
        current = predict(post, transmat)
    return [list(c) for c in zip(*filtered, strict=True)], loglik


def _filter_two(
    scaled0: list[float],
    scaled1: list[float],
    shift: list[float],
    transmat: list[list[float]],
    prior: list[float],
    step_in_log_space: StepInLogSpace,
) -> tuple[list[list[float]], list[float]]:
    (a00, a01), (a10, a11) = transmat
    c0, c1 = prior
    post0: list[float] = []
    post1: list[float] = []
    loglik: list[float] = []
    push0, push1, push_ll = post0.append, post1.append, loglik.append
    log = math.log
    for s0, s1, top in zip(scaled0, scaled1, shift, strict=True):
        j0 = c0 * s0
        j1 = c1 * s1
        total = j0 + j1
        if total > UNDERFLOW:
            p0 = j0 / total
            p1 = j1 / total
            ll = top + log(total)
        else:  # the day's index is the number of days done
            (p0, p1), ll = step_in_log_space(len(loglik), [c0, c1])
        push0(p0)
        push1(p1)
        push_ll(ll)
        c0 = p0 * a00 + p1 * a10
        c1 = p0 * a01 + p1 * a11
    return [post0, post1], loglik

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

On this machine's OpenBLAS that prediction is the same bits as NumPy's ``post @ A`` for two and
three states (checked on 300,000 random cases); for four states BLAS sums in another order, so
the probabilities of a four-state model differ from the previous NumPy loop's in the last bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
    scaled: list[list[float]],
    shift: list[float],
    transmat: list[list[float]],
    prior: list[float],
    step_in_log_space: StepInLogSpace,
) -> tuple[list[list[float]], list[float]]:
    """Filter every day, strictly left to right.

    Parameters
    ----------
    scaled : list of n_obs lists of n_states floats
        ``exp(log b_t(k) - shift_t)``: each day's densities over its largest one.
    shift : list of n_obs floats
        ``max_k log b_t(k)``.
    transmat : list of n_states lists of n_states floats
    prior : list of n_states floats
        Predicted distribution of the first day.
    step_in_log_space : callable
        Redoes a day whose normaliser underflows (see :data:`UNDERFLOW`).

    Returns
    -------
    filtered : list of n_obs lists of n_states floats
    log_predictive : list of n_obs floats
    """
    if len(prior) == 2:
        return _filter_two(scaled, shift, transmat, prior, step_in_log_space)
    filtered: list[list[float]] = []
    loglik: list[float] = []
    current = prior
    for t, (row, top) in enumerate(zip(scaled, shift, strict=True)):
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
    return filtered, loglik


def _filter_two(
    scaled: list[list[float]],
    shift: list[float],
    transmat: list[list[float]],
    prior: list[float],
    step_in_log_space: StepInLogSpace,
) -> tuple[list[list[float]], list[float]]:
    (a00, a01), (a10, a11) = transmat
    c0, c1 = prior
    filtered: list[list[float]] = []
    loglik: list[float] = []
    log = math.log
    for t, ((s0, s1), top) in enumerate(zip(scaled, shift, strict=True)):
        j0, j1 = c0 * s0, c1 * s1
        total = j0 + j1
        if total > UNDERFLOW:
            p0, p1 = j0 / total, j1 / total
            ll = top + log(total)
        else:
            (p0, p1), ll = step_in_log_space(t, [c0, c1])
        filtered.append([p0, p1])
        loglik.append(ll)
        c0 = p0 * a00 + p1 * a10
        c1 = p0 * a01 + p1 * a11
    return filtered, loglik

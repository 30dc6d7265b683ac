"""The jump model's dynamic programme in plain Python floats: forward values and backtrack.

:func:`~regime_trader.strategies.jump_dp.dp_assign` (every assignment step of a fit) and
:meth:`~regime_trader.strategies.jump_dp.OnlineJumpFilter.run` (the causal values over a
training window) spend their time here. The recursion

    V_t(k) = L_t(k) + min_j (V_{t-1}(j) + Lambda[j, k]),   then shifted by min_k V_t(k),

is sequential in t, and with K <= 4 states a NumPy call per day costs more than its arithmetic,
so the loop runs on Python floats, unrolled for two states (the default engine) and over short
lists otherwise.

Exactness. Every value is the same IEEE-754 operation, in the same order, as the NumPy form
:func:`~regime_trader.strategies.jump_dp.dp_step` and as the list form used before: one addition
``V_{t-1}(j) + Lambda[j, k]``, a minimum (exact, whichever of equal values it keeps), one addition
of the loss and one subtraction of the day's minimum, so the values, labels and objectives are
the same bits. Ties keep the lowest state: the minimum over j and the backtrack take the first
j reaching it, the last day's label the first k with the least value (as ``min`` and
``np.argmin`` do).
"""

from __future__ import annotations

from itertools import islice

import numpy as np

__all__ = ["backtrack", "forward_values"]


def forward_values(
    loss: np.ndarray,
    penalty: np.ndarray,
    *,
    shift_first: bool,
    previous: np.ndarray | None = None,
) -> tuple[list[list[float]], float]:
    """Run the forward recursion over every day.

    Parameters
    ----------
    loss : ndarray of shape (n_obs, n_states)
        L[t, k], finite.
    penalty : ndarray of shape (n_states, n_states)
        Lambda[j, k], the cost of moving from j to k.
    shift_first : bool
        Shift the first day's values to minimum 0 too (the causal filter does; the fit's
        assignment keeps the first day's loss as it is). Ignored with ``previous``.
    previous : ndarray of shape (n_states,), optional
        V of the day before the first: the first day is then an ordinary step from it.

    Returns
    -------
    columns : list of n_states lists of n_obs floats
        ``columns[k][t]`` is V_t(k) after the day's shift.
    offset : float
        The sum of the shifts after the first day: the unshifted last values are
        ``columns[k][-1] + offset`` (plus the first day's shift when ``shift_first``).
    """
    loss = np.asarray(loss, dtype=float)
    n_states = penalty.shape[0]
    # into[k][j] = Lambda[j, k]: the costs of arriving in k.
    into = [[float(penalty[j, k]) for j in range(n_states)] for k in range(n_states)]
    columns = [loss[:, k].tolist() for k in range(n_states)]
    if previous is not None:
        start, first = 0, [float(v) for v in previous]
    else:
        start, first = 1, [c[0] for c in columns]
        if shift_first:
            low = min(first)
            first = [x - low for x in first]
    if n_states == 2:
        return _forward_two(columns[0], columns[1], into, first, start)
    return _forward_many(columns, into, first, start)


def _forward_two(
    l0: list[float], l1: list[float], into: list[list[float]], first: list[float], start: int
) -> tuple[list[list[float]], float]:
    (a00, a10), (a01, a11) = into  # a_jk = Lambda[j, k]
    p0, p1 = first
    v0s: list[float] = [p0] if start else []
    v1s: list[float] = [p1] if start else []
    push0, push1 = v0s.append, v1s.append
    offset = 0.0
    for x0, x1 in zip(islice(l0, start, None), islice(l1, start, None), strict=True):
        a, b = p0 + a00, p1 + a10
        v0 = x0 + (b if b < a else a)
        a, b = p0 + a01, p1 + a11
        v1 = x1 + (b if b < a else a)
        low = v1 if v1 < v0 else v0
        offset += low
        p0, p1 = v0 - low, v1 - low
        push0(p0)
        push1(p1)
    return [v0s, v1s], offset


def _forward_many(
    columns: list[list[float]], into: list[list[float]], first: list[float], start: int
) -> tuple[list[list[float]], float]:
    states = range(len(columns))
    prev = first
    values = [prev] if start else []
    offset = 0.0
    for lt in islice(zip(*columns, strict=True), start, None):
        v = [lt[k] + min([a + b for a, b in zip(prev, into[k], strict=True)]) for k in states]
        low = min(v)
        offset += low
        prev = [x - low for x in v]
        values.append(prev)
    if not values:
        return [[] for _ in states], offset
    return [list(c) for c in zip(*values, strict=True)], offset


def backtrack(columns: list[list[float]], penalty: np.ndarray) -> np.ndarray:
    """The minimising path ending in the least last value (ties: the lowest state).

    Parameters
    ----------
    columns : list of n_states lists of n_obs floats
        The forward values of :func:`forward_values`.
    penalty : ndarray of shape (n_states, n_states)

    Returns
    -------
    ndarray of int64 of shape (n_obs,)
    """
    values = np.array(columns, dtype=float).T  # (n_obs, n_states), the same floats
    n_obs = values.shape[0]
    # best_from[t, s]: the state on day t from which arriving in s on day t + 1 costs least,
    # the first such state on ties (argmin's rule): elementwise, the same sums as a loop.
    best_from = np.argmin(values[:, :, None] + penalty[None, :, :], axis=1)
    choices = [best_from[:, s].tolist() for s in range(values.shape[1])]  # choices[s][t]
    labels = np.empty(n_obs, dtype=np.int64)
    s = int(np.argmin(values[-1]))
    labels[-1] = s
    for t in range(n_obs - 2, -1, -1):
        s = choices[s][t]
        labels[t] = s
    return labels

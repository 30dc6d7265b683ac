"""The jump DP on Python floats gives the bits of the NumPy recursion, ties to the lowest state."""

from __future__ import annotations

import numpy as np
import pytest

from regime_trader.strategies.jump_dp import dp_assign, dp_step, penalty_matrix
from regime_trader.strategies.jump_dp_kernel import forward_values


def _numpy_assign(loss: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, float]:
    """Forward DP one NumPy call per day, the first day unshifted, then the backtrack."""
    values = [loss[0]]
    offset = 0.0
    for t in range(1, loss.shape[0]):
        v = loss[t] + (values[-1][:, None] + penalty).min(axis=0)
        offset += v.min()
        values.append(v - v.min())
    labels = np.empty(loss.shape[0], dtype=np.int64)
    labels[-1] = int(np.argmin(values[-1]))
    for t in range(loss.shape[0] - 1, 0, -1):
        labels[t - 1] = int(np.argmin(values[t - 1] + penalty[:, labels[t]]))
    return labels, offset + float(values[-1].min())


PENALTIES = [
    penalty_matrix(2, 1.5),
    penalty_matrix(2, 0.4, enter=0.1, exit=2.0),
    penalty_matrix(3, 0.5, enter=0.2, exit=1.1),
    np.array([[0, 0.2, 1.0, 0.5], [0.6, 0, 0.1, 0.3], [0.3, 2.0, 0, 0.7], [1, 1, 1, 0.0]]),
]


@pytest.mark.parametrize("penalty", PENALTIES, ids=["2", "2-asym", "3-asym", "4-full"])
@pytest.mark.parametrize("rounded", [False, True], ids=["generic", "ties"])
def test_assignment_gives_the_numpy_recursions_labels_and_objective_bits(
    penalty: np.ndarray, rounded: bool
) -> None:
    rng = np.random.default_rng(penalty.shape[0] + 10 * rounded)
    for n_obs in (1, 2, 17, 400):
        loss = rng.exponential(size=(n_obs, penalty.shape[0]))
        if rounded:  # many equal losses and values: the tie rule decides
            loss = np.round(loss * 2) / 2
        labels, objective = dp_assign(loss, penalty)
        expected_labels, expected_objective = _numpy_assign(loss, penalty)
        np.testing.assert_array_equal(labels, expected_labels)
        assert objective == expected_objective


def test_ties_keep_the_lowest_state() -> None:
    labels, objective = dp_assign(np.zeros((5, 3)), penalty_matrix(3, 1.0))
    np.testing.assert_array_equal(labels, np.zeros(5))
    assert objective == 0.0


@pytest.mark.parametrize("penalty", PENALTIES, ids=["2", "2-asym", "3-asym", "4-full"])
def test_values_continue_a_recursion_from_the_day_before(penalty: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    loss = rng.exponential(size=(60, penalty.shape[0]))
    previous = dp_step(None, rng.exponential(size=penalty.shape[0]), penalty)
    columns, _ = forward_values(loss, penalty, shift_first=True, previous=previous)
    values = previous
    for t in range(loss.shape[0]):
        values = dp_step(values, loss[t], penalty)
        assert [c[t] for c in columns] == values.tolist()

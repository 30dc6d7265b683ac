"""The training window shared by the regime engines: a bounded ring of aligned columns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.jump_online import JumpSettings
from regime_trader.strategies.regime_online import RegimeSettings
from regime_trader.strategies.regime_window import TrainingWindow, months_between


def _fill(window: TrainingWindow, n: int) -> None:
    for t in range(n):
        window.append(np.array([t, -t], dtype=float), 0.5 * t, payload=np.array([10.0 * t]))


def test_a_full_window_forgets_the_oldest_rows_and_keeps_the_columns_aligned() -> None:
    window = TrainingWindow(maxlen=4)
    _fill(window, 7)  # wraps the ring once and a half
    assert len(window) == 4
    kept = np.arange(3, 7, dtype=float)
    np.testing.assert_array_equal(window.features(), np.column_stack([kept, -kept]))
    np.testing.assert_array_equal(window.equity(), 0.5 * kept)
    np.testing.assert_array_equal(window.payload(), 10.0 * kept[:, None])


def test_restore_gives_the_same_window_as_the_appends_it_was_saved_from() -> None:
    window = TrainingWindow(maxlen=5)
    _fill(window, 8)
    copy = TrainingWindow(maxlen=5)
    copy.restore(window.features().tolist(), window.equity().tolist(), window.payload().tolist())
    np.testing.assert_array_equal(window.features(), copy.features())
    np.testing.assert_array_equal(window.payload(), copy.payload())
    window.append(np.array([9.0, 9.0]), 1.0, np.array([1.0]))
    copy.append(np.array([9.0, 9.0]), 1.0, np.array([1.0]))
    np.testing.assert_array_equal(window.equity(), copy.equity())


def test_a_row_of_another_width_is_refused() -> None:
    window = TrainingWindow(maxlen=3)
    _fill(window, 1)
    with pytest.raises(ValueError, match="2 features and a payload of 1; got 2 and 0"):
        window.append(np.array([1.0, 2.0]), 0.0)


def test_saved_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(X, equity, payload\): \(2, 2, 1\)"):
        TrainingWindow(maxlen=3).restore([[1.0], [2.0]], [0.1, 0.2], [[5.0]])


def test_months_between_counts_calendar_month_boundaries() -> None:
    assert months_between(pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-01")) == 1
    assert months_between(pd.Timestamp("2023-12-01"), pd.Timestamp("2024-12-31")) == 12
    assert months_between(pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-31")) == 0


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RegimeSettings(refit_months=-1), "refit_months must be an integer >= 0, got -1"),
        (lambda: JumpSettings(refit_months=-2), "refit_months must be an integer >= 0, got -2"),
        (lambda: RegimeSettings(min_train_obs=49), "50 <= min_train_obs <= max_train_obs, got 49"),
        (lambda: JumpSettings(max_train_obs=100), "max_train_obs, got 250, 100"),
        (lambda: RegimeSettings(drift_window=1), "drift_window must be an integer >= 2, got 1"),
        (
            lambda: JumpSettings(refit_cold_starts=-1),
            "refit_cold_starts must be an integer >= 0, got -1",
        ),
    ],
)
def test_both_engines_refuse_the_same_bad_schedule_with_the_value(
    build: Callable[[], object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build()

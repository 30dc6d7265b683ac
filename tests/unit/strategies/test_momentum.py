"""The momentum sleeve: scores, selection, the turnover cap, monthly rebalancing, drift, state."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.momentum import (
    MomentumParams,
    MomentumSleeve,
    capped_step,
    momentum_scores,
    select_top,
    sell_priority,
)
from regime_trader.strategies.state import StrategyState, json_tree


def _panel(n_days: int, n_stocks: int, seed: int, start: str = "2020-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0, 0.002, n_stocks)  # persistent differences: momentum to find
    steps = drift + rng.normal(0.0, 0.015, (n_days, n_stocks))
    dates = pd.bdate_range(start, periods=n_days)
    columns = [f"S{i:02d}" for i in range(n_stocks)]
    return pd.DataFrame(50.0 * np.exp(np.cumsum(steps, axis=0)), index=dates, columns=columns)


def _run(sleeve: MomentumSleeve, prices: pd.DataFrame) -> list[tuple[float, np.ndarray, bool]]:
    out = []
    for date, row in zip(prices.index, prices.to_numpy(), strict=True):
        ret = sleeve.update(date, row)
        out.append((ret, sleeve.holdings_.copy(), sleeve.rebalanced_))
    return out


def test_score_is_the_window_log_return_over_its_annualised_sample_volatility() -> None:
    # lookback 4, skip 1: closes t-4..t-1 are used, today's (the last row) is not.
    logs = np.log(
        np.array(
            [
                [100.0, 10.0, 5.0],
                [100.0 * math.exp(0.1), 11.0, 5.0],
                [100.0, 9.0, 5.0],
                [100.0 * math.exp(0.1), 12.0, 5.0],
                [1.0, 1000.0, 1.0],  # today: skipped
            ]
        )
    )

    got = momentum_scores(logs, skip=1)

    # Log returns +0.1, -0.1, +0.1: sample sd 0.2 / sqrt(3), so the score is sqrt(3/252) / 2.
    assert got[0] == pytest.approx(0.5 * math.sqrt(3 / 252), rel=1e-12)
    returns = [math.log(11 / 10), math.log(9 / 11), math.log(12 / 9)]
    expected = math.log(12 / 10) / (statistics.stdev(returns) * math.sqrt(252))
    assert got[1] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(got[2])  # a flat price has no volatility: no score


def test_selection_keeps_the_top_k_positive_scores_ties_by_symbol_weights_by_score() -> None:
    symbols = np.array(["B", "A", "C", "D", "E"])
    rank = np.argsort(np.argsort(symbols))
    scores = np.array([1.0, 1.0, 2.0, -1.0, np.nan])

    top2 = select_top(scores, rank, 2)
    top9 = select_top(scores, rank, 9)

    np.testing.assert_allclose(top2, [0.0, 1 / 3, 2 / 3, 0.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(top9, [0.25, 0.25, 0.5, 0.0, 0.0], rtol=0, atol=1e-15)
    assert select_top(np.array([-1.0, 0.0]), np.array([0, 1]), 3).sum() == 0.0


def test_the_capped_step_sells_exits_in_full_first_then_blends_with_what_is_left() -> None:
    old = np.array([0.5, 0.5, 0.0, 0.0])
    new = np.array([0.0, 0.0, 0.5, 0.5])  # turnover 2: half a unit of exits fits in 0.5

    first = capped_step(old, new, 0.5)
    second = capped_step(old, new, 0.5, sell_order=np.array([1, 0, 2, 3]))

    np.testing.assert_allclose(first, [0.25, 0.5, 0.125, 0.125], rtol=0, atol=1e-15)
    np.testing.assert_allclose(second, [0.5, 0.25, 0.125, 0.125], rtol=0, atol=1e-15)
    # The exit (0.1, turnover 0.2) fits: its proceeds fill the lack, 0.3 of budget blends.
    old = np.array([0.1, 0.6, 0.3, 0.0])
    target = np.array([0.0, 0.5, 0.2, 0.3])
    step = capped_step(old, target, 0.5)
    # After the sale: (0, 0.6, 0.3, 0.1), 0.4 from the target, so a blend of 0.3 / 0.4.
    np.testing.assert_allclose(step, [0.0, 0.525, 0.225, 0.25], rtol=0, atol=1e-15)
    assert np.abs(step - old).sum() == pytest.approx(0.5, abs=1e-15)
    np.testing.assert_array_equal(
        capped_step(old, old * 0.9 + target * 0.1, 0.5), old * 0.9 + target * 0.1
    )
    # Entering from nothing, or leaving to nothing, is not a rotation: not capped.
    np.testing.assert_array_equal(capped_step(np.zeros(4), new, 0.5), new)
    np.testing.assert_array_equal(capped_step(old, np.zeros(4), 0.5), np.zeros(4))


def test_the_sell_order_is_the_selection_order_reversed_no_score_first() -> None:
    symbols = np.array(["B", "A", "C", "D", "E"])
    rank = np.argsort(np.argsort(symbols))

    got = sell_priority(np.array([1.0, 1.0, 2.0, -1.0, np.nan]), rank)

    # E (no score), D (-1), then the tie: B before A, the one selection drops first; C last.
    np.testing.assert_array_equal(got, [2, 3, 4, 1, 0])


def test_params_refuse_values_out_of_range_by_name() -> None:
    with pytest.raises(ValueError, match="top_k"):
        MomentumParams(top_k=0)
    with pytest.raises(ValueError, match="max_turnover"):
        MomentumParams(max_turnover=0.0)
    with pytest.raises(ValueError, match="lookback - skip"):
        MomentumParams(lookback=10, skip=9)


def test_the_sleeve_rebalances_on_the_first_session_of_a_month_only_and_drifts_between() -> None:
    prices = _panel(140, 8, seed=1)
    params = MomentumParams(lookback=20, skip=3, top_k=3, max_turnover=2.0)

    steps = _run(MomentumSleeve(list(prices.columns), params), prices)

    months = pd.Series(pd.DatetimeIndex(prices.index).to_period("M"), index=prices.index)
    first_sessions = months.ne(months.shift()) & (np.arange(len(prices)) >= params.lookback)
    first_sessions.iloc[0] = False
    assert [r for _, _, r in steps] == first_sessions.tolist()
    assert sum(first_sessions) >= 4
    values = prices.to_numpy()
    for t in range(1, len(steps)):
        ret, held, rebalanced = steps[t]
        before = steps[t - 1][1]
        rel = values[t] / values[t - 1]
        assert ret == pytest.approx(float(before @ (rel - 1.0)), abs=1e-15)
        if not rebalanced and before.sum() > 0:  # buy and hold between rebalances
            np.testing.assert_allclose(held, before * rel / (before @ rel), rtol=1e-13)
        assert (held >= 0).all()
        assert held.sum() == pytest.approx(1.0 if steps[: t + 1][-1][1].any() else 0.0, abs=1e-12)
        if rebalanced:  # a cap of 2 never binds: the target itself, top_k names at most
            assert 0 < (held > 0).sum() <= params.top_k


def test_the_turnover_cap_holds_at_every_rebalance_and_binds() -> None:
    prices = _panel(400, 30, seed=2)
    params = MomentumParams(lookback=40, skip=5, top_k=5, max_turnover=0.3)
    sleeve = MomentumSleeve(list(prices.columns), params)
    turnovers = []
    for date, row in zip(prices.index, prices.to_numpy(), strict=True):
        invested_before = sleeve.invested
        sleeve.update(date, row)
        if sleeve.rebalanced_ and invested_before and sleeve.invested:
            turnovers.append(sleeve.turnover_)

    assert len(turnovers) >= 10
    assert max(turnovers) <= 0.3 + 1e-12
    assert sum(t == pytest.approx(0.3, abs=1e-12) for t in turnovers) >= 3  # the cap binds


def test_ties_and_order_are_deterministic_and_the_state_round_trips_bit_for_bit() -> None:
    prices = _panel(200, 12, seed=3)
    prices["S05"] = prices["S04"]  # identical series: tied scores every month
    params = MomentumParams(lookback=30, skip=2, top_k=4)
    a = MomentumSleeve(list(prices.columns), params)
    _run(a, prices.iloc[:120])
    tree = json.loads(json.dumps(json_tree(StrategyState({"s": a.state_dict()}).tree)))
    b = MomentumSleeve.from_state(list(prices.columns), params, tree["s"])
    fields = StrategyState({"s": a.state_dict()}).fields()
    c = MomentumSleeve.from_state(
        list(prices.columns), params, StrategyState.from_fields(fields).tree["s"]
    )

    rest = [_run(s, prices.iloc[120:]) for s in (a, b, c)]

    for other in rest[1:]:
        for (r1, h1, f1), (r2, h2, f2) in zip(rest[0], other, strict=True):
            assert r1 == r2 and f1 == f2
            np.testing.assert_array_equal(h1, h2)
    held = np.array([h for _, h, _ in rest[0]])
    # The tie goes to the first symbol alphabetically whenever only one of the pair fits.
    assert not ((held[:, 5] > 0) & (held[:, 4] == 0)).any()

"""The rebalancing rule shared by the strategy, the backtest's execution and the live planner."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.strategies.rebalance import RebalanceBand, rebalance_targets

D = Decimal


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[list[float], list[float], float, float]:
    """Long-only current and target weights, each summing to at most 1, and two bands."""
    n = draw(st.integers(1, 6))

    def weights() -> list[float]:
        raw = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
        total = draw(st.floats(0.0, 1.0))
        s = sum(raw)
        return [0.0] * n if s == 0 else [r / s * total for r in raw]

    current, target = weights(), weights()
    for i in range(n):  # some targets equal to, or near, the current weight
        if draw(st.booleans()):
            target[i] = max(0.0, current[i] + draw(st.floats(-0.03, 0.03)))
    target_total = sum(target)
    if target_total > 1:
        target = [t / target_total for t in target]
    return current, target, draw(st.floats(0.0, 0.1)), draw(st.floats(0.0, 0.1))


@settings(max_examples=400, deadline=None)
@given(portfolios())
def test_the_rule_leaves_small_moves_sells_zeros_and_never_levers(
    case: tuple[list[float], list[float], float, float],
) -> None:
    current, target, weight_band, exposure_band = case
    out = rebalance_targets(current, target, weight_band, exposure_band)
    held, wanted = sum(current), sum(target)
    scaled = wanted > 0 and abs(wanted - held) < exposure_band and wanted != held
    assert out.scaled_to_held == scaled
    aim = [t * held / wanted for t in target] if scaled else target
    for i, (c, a, w) in enumerate(zip(current, aim, out.weights, strict=True)):
        assert w >= 0
        if a == 0:  # a zero target (or one scaled to a zero held exposure) sells out
            assert w == 0 and not out.left_alone[i]
        elif out.left_alone[i]:
            assert w == c and abs(a - c) < weight_band
        else:
            assert abs(a - c) >= weight_band
            # Traded to its aim, or toward it by the common factor of capped buys.
            assert w == a or (out.buys_capped and c <= w <= a)
    assert sum(out.weights) <= max(1.0, held) + 1e-12


def test_with_both_bands_zero_the_target_is_returned_exactly() -> None:
    target = np.array([0.3, 0.0, 0.6])
    out = rebalance_targets([0.31, 0.2, 0.59], target.tolist(), 0.0, 0.0)
    assert out.weights == tuple(target) and not any(out.left_alone)
    assert RebalanceBand().apply(np.array([0.31, 0.2, 0.59]), target) is target


def test_a_deviation_on_the_band_edge_is_traded() -> None:
    out = rebalance_targets([D("0.50"), D("0.30")], [D("0.52"), D("0.31")], D("0.02"), D("0"))
    assert out.weights == (D("0.52"), D("0.30")) and out.left_alone == (False, True)


def test_a_small_change_of_exposure_keeps_the_held_exposure() -> None:
    out = rebalance_targets([0.3, 0.3], [0.33, 0.30], 0.0, 0.05)
    assert out.scaled_to_held
    assert sum(out.weights) == pytest.approx(0.6)
    np.testing.assert_allclose(out.weights, [0.33 * 0.6 / 0.63, 0.30 * 0.6 / 0.63])


def test_buys_next_to_weights_left_alone_are_capped_at_full_investment() -> None:
    out = rebalance_targets([0.5, 0.5, 0.0], [0.49, 0.49, 0.02], 0.02, 0.0)
    # Both held weights are within the band; the buy of the third would lever: none is left.
    assert out.left_alone == (True, True, False) and out.buys_capped
    assert out.weights == (0.5, 0.5, 0.0)


def test_decimal_and_float_weights_give_the_same_decisions() -> None:
    current, target = ["0.25", "0.10", "0.40"], ["0.26", "0.20", "0.38"]
    floats = [float(v) for v in current], [float(v) for v in target]
    as_float = rebalance_targets(*floats, 0.015, 0.0)
    decimals = [D(v) for v in current], [D(v) for v in target]
    as_decimal = rebalance_targets(*decimals, D("0.015"), D(0))
    assert as_float.left_alone == as_decimal.left_alone == (True, False, False)
    assert [float(v) for v in as_decimal.weights] == list(as_float.weights)


def test_bands_outside_zero_one_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"weight_band must be in \[0, 1\], got -0\.1"):
        RebalanceBand(weight_band=-0.1)
    with pytest.raises(ValueError, match="exposure_band"):
        RebalanceBand(exposure_band=1.5)
    with pytest.raises(ValueError, match="current has 2 weights, target 1"):
        rebalance_targets([0.1, 0.2], [0.1], 0.0, 0.0)

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.strategies.allocation import AllocationPolicy, stress_probability

COV = np.diag([1e-4, 4e-5, 9e-5])  # daily variances: 16%, 10%, 15% a year
ERC = np.array([0.25, 0.40, 0.35])
TRANSMAT = np.array([[0.98, 0.02], [0.05, 0.95]])


def test_stress_rises_at_once_and_decays_slowly() -> None:
    policy = AllocationPolicy(alpha_up=1.0, alpha_down=0.1)
    s = policy.smooth(0.1, 0.9)
    assert s == pytest.approx(0.9)
    s = policy.smooth(s, 0.0)
    assert s == pytest.approx(0.81)


def test_certain_persistent_stress_cuts_exposure_by_stress_cut() -> None:
    policy = AllocationPolicy(stress_cut=0.5, target_vol=1.0, persistence_days=1)
    calm = policy.allocate(ERC, COV, np.array([1.0, 0.0]), TRANSMAT, None)
    stressed = policy.allocate(ERC, COV, np.array([0.0, 1.0]), TRANSMAT, None)
    assert calm.exposure == pytest.approx(1.0)
    assert stressed.exposure == pytest.approx(1.0 - 0.5 * 0.95)


def test_a_short_lived_stress_regime_cuts_less_than_a_persistent_one() -> None:
    policy = AllocationPolicy(target_vol=1.0)
    fleeting = np.array([[0.98, 0.02], [0.5, 0.5]])
    a = policy.allocate(ERC, COV, np.array([0.0, 1.0]), fleeting, None)
    b = policy.allocate(ERC, COV, np.array([0.0, 1.0]), TRANSMAT, None)
    assert a.exposure > b.exposure


def test_volatility_target_scales_down_a_risky_portfolio() -> None:
    policy = AllocationPolicy(target_vol=0.05, stress_cut=0.0)
    out = policy.allocate(ERC, COV, None, None, None)
    realised = np.sqrt(out.weights @ COV @ out.weights * 252)
    assert realised == pytest.approx(0.05)
    assert out.cash == pytest.approx(1.0 - out.weights.sum())


@settings(max_examples=200, deadline=None)
@given(
    p_stress=st.floats(0.0, 1.0),
    previous=st.one_of(st.none(), st.floats(0.0, 1.0)),
    target_vol=st.floats(0.01, 1.0),
    stress_cut=st.floats(0.0, 1.0),
)
def test_weights_are_long_only_unlevered_and_sum_with_cash_to_one(
    p_stress: float, previous: float | None, target_vol: float, stress_cut: float
) -> None:
    policy = AllocationPolicy(target_vol=target_vol, stress_cut=stress_cut)
    out = policy.allocate(ERC, COV, np.array([1 - p_stress, p_stress]), TRANSMAT, previous)
    assert np.all(out.weights >= 0)
    assert 0.0 <= out.exposure <= 1.0
    assert out.weights.sum() + out.cash == pytest.approx(1.0)


def test_severity_weights_the_middle_state_half() -> None:
    assert stress_probability(np.array([0.0, 1.0, 0.0])) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_vol": 0.0}, "target_vol"),
        ({"stress_cut": 1.5}, "stress_cut"),
        ({"alpha_down": 0.0}, "alpha_down"),
        ({"min_exposure": 0.8, "max_exposure": 0.5}, "min_exposure"),
        ({"max_exposure": 1.2}, "max_exposure"),
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AllocationPolicy(**kwargs)  # type: ignore[arg-type]

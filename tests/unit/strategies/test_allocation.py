from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_trader.strategies.allocation import (
    AllocationPolicy,
    VolatilityHistory,
    stress_probability,
)

COV = np.diag([1e-4, 4e-5, 9e-5])  # daily variances: 16%, 10%, 15% a year
ERC = np.array([0.25, 0.40, 0.35])
TRANSMAT = np.array([[0.98, 0.02], [0.05, 0.95]])


def test_stress_rises_at_once_and_decays_slowly() -> None:
    policy = AllocationPolicy(alpha_up=1.0, alpha_down=0.1)
    s = policy.smooth(0.1, 0.9)
    assert s == pytest.approx(0.9)
    s = policy.smooth(s, 0.0)
    assert s == pytest.approx(0.81)


def test_certain_stress_cuts_exposure_by_stress_cut_without_the_persistence_multiplier() -> None:
    policy = AllocationPolicy(stress_cut=0.5, target_vol=1.0)
    assert policy.persistence_multiplier is False  # the default (issue 10)
    stressed = policy.allocate(ERC, COV, np.array([0.0, 1.0]), TRANSMAT, None)
    assert stressed.exposure == pytest.approx(0.5)
    assert stressed.persistence == pytest.approx(0.95**5)  # computed and reported, not applied


def test_certain_persistent_stress_cuts_exposure_by_stress_cut_times_persistence() -> None:
    policy = AllocationPolicy(
        stress_cut=0.5, target_vol=1.0, persistence_days=1, persistence_multiplier=True
    )
    calm = policy.allocate(ERC, COV, np.array([1.0, 0.0]), TRANSMAT, None)
    stressed = policy.allocate(ERC, COV, np.array([0.0, 1.0]), TRANSMAT, None)
    assert calm.exposure == pytest.approx(1.0)
    assert stressed.exposure == pytest.approx(1.0 - 0.5 * 0.95)


def test_a_short_lived_stress_regime_cuts_less_than_a_persistent_one() -> None:
    policy = AllocationPolicy(target_vol=1.0, persistence_multiplier=True)
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
        (
            {"vol_target_mode": "adaptive"},
            r"vol_target_mode must be one of \['absolute', 'relative'",
        ),
        ({"vol_multiple": 0.0}, r"vol_multiple must be finite and > 0, got 0\.0"),
        ({"vol_median_days": 0}, "vol_median_days must be an integer >= 1, got 0"),
        ({"regime_levels": (1.0,)}, "regime_levels must give 2 to 4 exposures"),
        ({"regime_levels": (1.0, 1.5)}, r"regime_levels\[1\] must be in \[0, 1\], got 1\.5"),
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AllocationPolicy(**kwargs)  # type: ignore[arg-type]


FORECAST = float(np.sqrt(ERC @ COV @ ERC * 252))  # 7.7% a year


def test_relative_target_scales_down_only_above_the_multiple_of_the_median() -> None:
    policy = AllocationPolicy(vol_target_mode="relative", vol_multiple=1.5, stress_cut=0.0)
    below = policy.allocate(ERC, COV, None, None, None, vol_median=FORECAST / 1.4)
    assert below.vol_exposure == 1.0 and below.exposure == 1.0
    above = policy.allocate(ERC, COV, None, None, None, vol_median=FORECAST / 2.0)
    assert above.vol_exposure == pytest.approx(0.75)  # 1.5 x median = 0.75 x forecast
    assert above.exposure == pytest.approx(0.75)
    # The absolute target binds at a level the relative one ignores.
    absolute = AllocationPolicy(target_vol=0.05, stress_cut=0.0)
    assert absolute.allocate(ERC, COV, None, None, None, vol_median=FORECAST).exposure < 0.7


def test_no_volatility_target_sizes_on_the_regime_alone() -> None:
    policy = AllocationPolicy(vol_target_mode="none", target_vol=0.01, stress_cut=0.4)
    out = policy.allocate(ERC, COV, np.array([0.0, 1.0]), TRANSMAT, None)
    assert out.vol_exposure == 1.0
    assert out.exposure == pytest.approx(0.6)
    diagnostics = out.diagnostics()
    assert diagnostics["vol_target_mode"] == "none" and diagnostics["regime_exposure"] == 0.6
    assert set(diagnostics) >= {"exposure", "vol_exposure", "forecast_vol", "vol_median"}


def test_regime_levels_interpolate_the_exposure_on_the_smoothed_stress() -> None:
    policy = AllocationPolicy(vol_target_mode="none", regime_levels=(0.9, 0.3))
    assert policy.allocate(ERC, COV, np.array([1.0, 0.0]), TRANSMAT, None).exposure == 0.9
    half = policy.allocate(ERC, COV, np.array([0.5, 0.5]), TRANSMAT, None)
    assert half.exposure == pytest.approx(0.6)
    three = AllocationPolicy(vol_target_mode="none", regime_levels=(1.0, 0.8, 0.2))
    middle = three.allocate(ERC, COV, np.array([0.0, 1.0, 0.0]), np.eye(3), None)
    assert middle.exposure == pytest.approx(0.8)
    with pytest.raises(ValueError, match="regime_levels has 2 exposures for 3 states"):
        policy.check_states(3)


def test_volatility_history_keeps_a_trailing_median_and_restores_it() -> None:
    history = VolatilityHistory(3)
    assert [history.push(v) for v in (0.1, 0.3, 0.2, 0.5)] == pytest.approx([0.1, 0.2, 0.2, 0.3])
    restored = VolatilityHistory(3)
    restored.load(history.state_dict())
    assert restored.push(0.4) == history.push(0.4) == pytest.approx(0.4)

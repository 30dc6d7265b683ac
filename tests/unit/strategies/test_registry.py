"""Building strategies from configuration: the registry is the only place they are constructed."""

from __future__ import annotations

import pytest

from regime_trader.strategies.reference import EqualWeight, StaticERC
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy

SYMBOLS = ["SPY", "TLT", "GLD"]


def test_nested_overrides_change_only_the_named_fields_of_the_regime_strategy() -> None:
    strategy = build_strategy("regime_erc", SYMBOLS, {"regime": {"n_states": 3}, "shrinkage": 0.2})
    assert isinstance(strategy, RegimeERC)
    assert strategy.params.regime.n_states == 3 and strategy.params.shrinkage == 0.2
    assert strategy.params.regime.min_train_obs == 250  # untouched default
    assert strategy.symbols == SYMBOLS


def test_static_erc_takes_its_keyword_arguments() -> None:
    strategy = build_strategy("erc_static", SYMBOLS, {"cov_halflife": 21.0})
    assert isinstance(strategy, StaticERC) and strategy.cov_halflife == 21.0


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("nope", {}, "unknown strategy 'nope'; known: \\['buy_hold'"),
        ("regime_erc", {"regime": {"n_state": 3}}, "unknown parameter regime.'n_state'"),
        ("regime_erc", {"shrinkage": 2.0}, "shrinkage must be in \\[0, 1\\], got 2.0"),
        ("equal_weight", {"x": 1}, "'equal_weight' takes no parameters, got \\['x'\\]"),
    ],
)
def test_bad_names_and_parameters_are_refused_naming_them(
    name: str, params: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build_strategy(name, SYMBOLS, params)


def test_a_fixed_weight_strategy_is_built_without_parameters() -> None:
    assert isinstance(build_strategy("equal_weight", SYMBOLS, {}), EqualWeight)

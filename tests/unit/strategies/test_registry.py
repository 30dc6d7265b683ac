"""Building strategies from configuration: the registry is the only place they are constructed."""

from __future__ import annotations

import json

import pytest

from regime_trader.strategies.reference import EqualWeight, StaticERC
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import build_benchmarks, build_strategy

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
        ("nope", {}, "unknown strategy 'nope'; known: \\['bl_regime', 'buy_hold'"),
        ("regime_erc", {"regime": {"n_state": 3}}, "unknown parameter regime.'n_state'"),
        ("regime_erc", {"shrinkage": 2.0}, "shrinkage must be in \\[0, 1\\], got 2.0"),
        ("regime_erc", {"shrinkage": "0.1"}, "shrinkage must be a number, got '0.1'"),
        ("regime_erc", {"engine": "svm"}, "engine must be one of \\['hmm', 'jump', 'sparse_jump"),
        ("regime_erc", {"jump": {"n_states": 5}}, "jump: n_states must be between 2 and 4, got 5"),
        ("regime_erc", {"jump": {"n_init": 2.5}}, "jump.n_init must be an integer, got 2.5"),
        ("regime_erc", {"jump_feature_spec": {"halflives": "5"}}, "halflives must be a list"),
        (
            "regime_erc",
            {"policy": {"vol_target_mode": "x"}},
            "policy.vol_target_mode must be one of",
        ),
        ("regime_erc", {"policy": {"regime_levels": [1.0, 0.5, 0.2]}}, "3 exposures for 2 states"),
        ("regime_erc", {"rebalance": {"weight_band": -0.1}}, "rebalance: weight_band must be in"),
        ("regime_erc", {"equity_symbol": "XXX"}, "equity_symbol 'XXX' is not one of the symbols"),
        ("regime_erc", {"bond_symbol": "SPY"}, "equity_symbol and bond_symbol are both 'SPY'"),
        ("regime_erc", {"engine": "jump", "jump_features": ["x_*"]}, "jump_features: 'x_\\*'"),
        ("regime_erc", {"jump": []}, "jump must be a table, got \\[\\]"),
        (
            "regime_erc",
            {"engine": "sparse_jump", "jump": {"kappa": 3.5}},
            "jump.kappa=3.5 exceeds sqrt\\(n_features\\)=3.162 for the 10 jump_features",
        ),
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


EVERY_FIELD = {
    "engine": "sparse_jump",
    "equity_symbol": "TLT",
    "bond_symbol": "GLD",
    "features": {"vol_halflife": 5.0, "trend_window": 10},
    "hmm_features": ["{equity}_logvol", "corr"],
    "regime": {"n_states": 3, "refit_months": 2},
    "jump_feature_spec": {"halflives": [3.0, 8.0], "corr_halflife": 30.0, "warmup": 15},
    "jump_features": ["{equity}_logdd_*", "{bond}_ewret_3"],
    "jump": {"n_states": 3, "jump_penalty": 4.0, "enter": 2.0, "exit": 9.0, "kappa": 1.5},
    "cov_halflife": 42.0,
    "regime_blend": 0.25,
    "risk_budgets": [0.5, 0.3, 0.2],
    "policy": {
        "vol_target_mode": "relative",
        "vol_multiple": 1.2,
        "vol_median_days": 126,
        "regime_levels": [1.0, 0.7, 0.3],
        "persistence_multiplier": True,
    },
    "rebalance": {"weight_band": 0.02, "exposure_band": 0.05},
}


def test_every_parameter_is_set_from_nested_tables_and_round_trips() -> None:
    strategy = build_strategy("regime_erc", SYMBOLS, EVERY_FIELD)
    assert isinstance(strategy, RegimeERC)
    p = strategy.params
    assert (p.engine, p.equity_symbol, p.bond_symbol) == ("sparse_jump", "TLT", "GLD")
    assert p.jump.enter == 2.0 and p.jump_feature_spec.halflives == (3.0, 8.0)
    assert p.policy.regime_levels == (1.0, 0.7, 0.3) and p.rebalance.exposure_band == 0.05
    assert p.regime.min_train_obs == 250  # left out: the default
    assert p.n_states == 3
    # The whole set, through JSON (a saved state) and back: the same parameters.
    assert RegimeERCParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert RegimeERCParams.from_dict(p.to_dict()) == p
    # A TOML table can give every field the dict gives back.
    again = build_strategy("regime_erc", SYMBOLS, json.loads(json.dumps(p.to_dict())))
    assert isinstance(again, RegimeERC) and again.params == p


def test_the_equity_and_bond_symbols_choose_the_features_they_name() -> None:
    strategy = build_strategy("regime_erc", SYMBOLS, EVERY_FIELD)
    assert isinstance(strategy, RegimeERC)
    names = strategy._source.features.names
    chosen = [names[i] for i in strategy._source.columns]
    assert chosen == ["TLT_logdd_3", "TLT_logdd_8", "GLD_ewret_3"]
    assert names[-1] == "corr_TLT_GLD" and strategy._source.equity == 1
    hmm = build_strategy("regime_erc", SYMBOLS, {**EVERY_FIELD, "engine": "hmm"})
    assert isinstance(hmm, RegimeERC)
    hmm_names = hmm._source.features.names
    assert [hmm_names[i] for i in hmm._source.columns] == ["TLT_logvol", "corr_TLT_GLD"]


def test_the_defaults_are_todays_strategy_except_the_persistence_multiplier() -> None:
    p = RegimeERCParams()
    assert p.engine == "hmm" and p.hmm_features == ("*_ret",)
    assert p.policy.vol_target_mode == "absolute" and p.policy.target_vol == 0.08
    assert p.policy.persistence_multiplier is False  # issue 10: off by default
    assert not p.rebalance.active
    assert (p.equity_symbol, p.bond_symbol) == (None, None)  # the first two columns


def test_the_benchmarks_take_a_nested_regime_strategys_equity_and_bond() -> None:
    params = {"regimes": {"equity_symbol": "GLD", "bond_symbol": "TLT"}}
    benchmarks = build_benchmarks(["SPY", "TLT", "GLD"], params)
    assert benchmarks["buy_hold"].settings()["pair"] == [2, 1]  # GLD and TLT, by column
    assert benchmarks["sixty_forty"].settings()["pair"] == [2, 1]

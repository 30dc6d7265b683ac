"""The declared search space: parsed, checked against the strategy, sampled with conditions."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from regime_trader.service.research_space import (
    Choice,
    SearchSpaceError,
    load_space,
    parse_space,
)
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy
from tests.support.research_spaces import STATES_WITH_DRIFT_MARGIN

SYMBOLS = ["SPY", "TLT", "GLD"]

_FIXED = """
strategy = "regime_erc"
[fixed]
regime = { n_init = 2 }
"""
_FEATURES = """
[[parameter]]
path = "hmm_features"
choice = { returns = ["*_ret"], returns_corr = ["*_ret", "corr"] }
"""
CONDITIONAL = _FIXED + STATES_WITH_DRIFT_MARGIN + _FEATURES


def test_the_shipped_space_parses_and_every_entry_exists_in_the_strategy() -> None:
    space = load_space()
    assert space.strategy == "regime_erc"
    assert "policy.target_vol" in [p.path for p in space.parameters]
    space.check(SYMBOLS)


def test_a_parameter_the_strategy_lacks_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    path.write_text(
        'strategy = "regime_erc"\n'
        '[[parameter]]\npath = "policy.target_vol"\nfloat = { low = 0.05, high = 0.1 }\n'
        '[[parameter]]\npath = "policy.no_such_knob"\nfloat = { low = 1.0, high = 2.0 }\n'
    )
    space = load_space(path)
    with pytest.raises(SearchSpaceError) as info:
        space.check(SYMBOLS)
    message = str(info.value)
    assert str(path) in message
    assert "'policy.no_such_knob'" in message
    assert "unknown parameter" in message


def test_a_bound_the_strategy_refuses_is_named_with_its_value() -> None:
    space = parse_space(
        'strategy = "regime_erc"\n'
        '[[parameter]]\npath = "policy.stress_cut"\nfloat = { low = 0.0, high = 2.0 }\n',
        "inline.toml",
    )
    with pytest.raises(SearchSpaceError, match=r"'policy.stress_cut' = 2.0 .*stress_cut must be"):
        space.check(SYMBOLS)


def test_a_conditional_parameter_is_sampled_only_under_its_condition() -> None:
    space = parse_space(CONDITIONAL)
    space.check(SYMBOLS)
    two = space.suggest(
        optuna.trial.FixedTrial({"regime.n_states": "2", "hmm_features": "returns"})
    )
    assert two == {"regime": {"n_init": 2, "n_states": 2}, "hmm_features": ("*_ret",)}
    three = space.suggest(
        optuna.trial.FixedTrial(
            {"regime.n_states": "3", "regime.drift_margin": 1.5, "hmm_features": "returns_corr"}
        )
    )
    assert three["regime"] == {"n_init": 2, "n_states": 3, "drift_margin": 1.5}
    strategy = build_strategy("regime_erc", SYMBOLS, three)
    assert isinstance(strategy, RegimeERC)
    assert strategy.params.hmm_features == ("*_ret", "corr")
    assert strategy.params.regime.n_states == 3


def test_overrides_rebuild_a_trials_parameters_from_optunas_params() -> None:
    space = parse_space(CONDITIONAL)
    params = {"regime.n_states": "3", "regime.drift_margin": 0.7, "hmm_features": "returns"}
    assert space.overrides(params)["regime"]["drift_margin"] == 0.7
    with pytest.raises(SearchSpaceError, match="not declared"):
        space.overrides({"policy.target_vol": 0.1})


def test_choice_labels_keep_their_values() -> None:
    space = parse_space(CONDITIONAL)
    choice = space.parameters[2].distribution
    assert isinstance(choice, Choice)
    assert choice.labels == ("returns", "returns_corr")
    assert choice.value("returns_corr") == ("*_ret", "corr")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('strategy = "nope"\n', "strategy 'nope' unknown"),
        ('strategy = "regime_erc"\n', "at least one"),
        ('strategy = "regime_erc"\nextra = 1\n', "unknown keys"),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "shrinkage"\n'
            "float = { low = 0.3, high = 0.1 }\n",
            "need low < high",
        ),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "shrinkage"\n'
            "float = { low = 0.0, high = 0.1 }\nint = { low = 1, high = 2 }\n",
            "exactly one of",
        ),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "shrinkage"\n'
            "float = { low = 0.0, high = 0.1, log = true }\n",
            "log range needs low > 0",
        ),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "shrinkage"\n'
            'float = { low = 0.0, high = 0.1 }\nwhen = { path = "engine", in = ["jump"] }\n',
            "earlier choice parameter",
        ),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "regime.n_states"\nchoice = [2, 3]\n'
            '[[parameter]]\npath = "shrinkage"\nfloat = { low = 0.0, high = 0.1 }\n'
            'when = { path = "regime.n_states", in = [4] }\n',
            "labels of 'regime.n_states'",
        ),
        (
            'strategy = "regime_erc"\n[[parameter]]\npath = "shrinkage"\n'
            "float = { low = 0.0, high = 0.1 }\n"
            '[[parameter]]\npath = "shrinkage"\nfloat = { low = 0.0, high = 0.2 }\n',
            "declared twice",
        ),
        ("strategy = [", "not valid TOML"),
    ],
)
def test_malformed_declarations_are_refused(body: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        parse_space(body, "bad.toml")

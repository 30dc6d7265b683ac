"""``regime-trader research --risk-tolerance``: a tolerance's parameters in every trial, by name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from regime_trader.service import research_cli
from regime_trader.service.profiles import merged_params
from regime_trader.service.research_config import StudyConfig, tolerance_space
from regime_trader.service.research_space import SearchSpaceError, load_space, parse_space
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.risk_tolerance import TOLERANCES
from regime_trader.strategies.synthetic import generate_market

UNREACHABLE = "redis://127.0.0.1:1/0"  # never contacted: every case fails before the storage
SYMBOLS = ["SPY", "TLT", "GLD"]
SHIPPED = sorted((Path(research_cli.__file__).parent / "research_spaces").glob("*.toml"))
CONSERVATIVE = TOLERANCES["conservative"]

# A fixed regime (fast to check) and one sampled knob the tolerance also sets.
SPACE = """
strategy = "regime_erc"
[fixed]
regime = { min_train_obs = 120, n_init = 1 }
policy = { stress_cut = 0.5 }

[[parameter]]
path = "policy.target_vol"
float = { low = 0.05, high = 0.2, log = true }
"""


@pytest.fixture(scope="module")
def prices_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("research") / "prices.csv"
    generate_market(500, seed=2).prices.to_csv(path, float_format="%.6f")
    return path  # 2010-01-04 to 2011-11-30, SPY TLT GLD


def _args(prices: Path, space: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    research_cli.add_arguments(parser)
    windows = ["--dev-start", "2010-06-01", "--dev-end", "2011-06-30"]
    folds = ["--warmup-days", "20", "--folds", "2", "--embargo-days", "5"]
    return parser.parse_args(
        [
            *("--storage", UNREACHABLE, "--quiet", "--prices", str(prices), "--space", str(space)),
            *windows,
            *("--validation-end", "2011-11-30", *folds, *argv),
        ]
    )


def _config(prices: Path, space_text: str, tmp_path: Path, *argv: str) -> StudyConfig:
    space = tmp_path / "space.toml"
    space.write_text(space_text)
    closes = pd.read_csv(prices, index_col=0, parse_dates=True)
    return research_cli._config(_args(prices, space, *argv), closes)


def test_every_trial_gets_the_tolerances_parameters_and_a_sampled_one_wins(
    prices_file: Path, tmp_path: Path
) -> None:
    config = _config(prices_file, SPACE, tmp_path, "--risk-tolerance", "conservative")
    expected = CONSERVATIVE.strategy_params("regime_erc", SYMBOLS)
    assert config.risk_tolerance == CONSERVATIVE.to_dict()
    assert config.risk_tolerance_name == "conservative"
    assert config.risk_tolerance_params == expected
    assert config.declared_space_text == SPACE
    # As a portfolio with that tolerance: its band is the execution band.
    assert config.execution_weight_band == CONSERVATIVE.no_trade_band == 0.03

    # The stored space is what workers and the close read: the tolerance is in it.
    searched = parse_space(config.space_text, config.space_source)
    overrides = searched.overrides({"policy.target_vol": 0.07})
    strategy = build_strategy("regime_erc", SYMBOLS, overrides)
    assert isinstance(strategy, RegimeERC)
    policy = strategy.params.policy
    assert policy.target_vol == 0.07  # sampled, over the tolerance's 6%
    assert (policy.min_exposure, policy.max_exposure) == (0.2, 0.8)
    assert policy.vol_target_mode == "absolute" and policy.stress_cut == 0.5  # both [fixed]
    assert strategy.params.risk_budgets == pytest.approx(expected["risk_budgets"])
    assert strategy.params.regime.min_train_obs == 120
    # Unsampled, the tolerance's own target holds.
    assert searched.overrides({})["policy"]["target_vol"] == CONSERVATIVE.target_vol

    # Stored and read back, the same study; without the tolerance another one, named.
    assert StudyConfig.from_dict(config.to_dict()) == config
    plain = _config(prices_file, SPACE, tmp_path)
    assert plain.risk_tolerance is None and plain.space_text == SPACE
    assert plain.execution_weight_band == research_cli.DEFAULT_WEIGHT_BAND
    assert any(d.startswith("risk_tolerance: ") for d in config.differences(plain))
    assert research_cli._default_study_name(config) == (
        research_cli._default_study_name(plain).replace("-seed0", "-conservative-seed0")
    )


def test_the_weight_band_given_wins_over_the_tolerances(prices_file: Path, tmp_path: Path) -> None:
    config = _config(
        prices_file, SPACE, tmp_path, "--risk-tolerance", "aggressive", "--weight-band", "0"
    )
    assert config.execution_weight_band == 0.0
    custom = _config(
        prices_file,
        SPACE,
        tmp_path,
        "--risk-tolerance",
        '{"base": "moderate", "target_vol": 0.08}',
    )
    assert custom.risk_tolerance_name == "custom (moderate)"
    assert custom.risk_tolerance_params is not None
    assert custom.risk_tolerance_params["policy"]["target_vol"] == 0.08


@pytest.mark.parametrize(
    ("fixed", "named"),
    [
        ("policy = { target_vol = 0.2 }", "[fixed] sets policy.target_vol, which"),
        (
            "risk_budgets = [0.5, 0.3, 0.2]\npolicy = { min_exposure = 0.0 }",
            "[fixed] sets risk_budgets, policy.min_exposure, which",
        ),
    ],
)
def test_a_fixed_entry_the_tolerance_sets_otherwise_stops_the_study_naming_it(
    prices_file: Path,
    tmp_path: Path,
    fixed: str,
    named: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    space = tmp_path / "space.toml"
    space.write_text(
        f'strategy = "regime_erc"\n[fixed]\n{fixed}\n'
        '[[parameter]]\npath = "policy.stress_cut"\nfloat = { low = 0.3, high = 0.7 }\n'
    )
    args = _args(prices_file, space, "--risk-tolerance", "moderate")
    assert research_cli.run(args) == 2
    err = capsys.readouterr().err
    assert named in err and "risk tolerance 'moderate'" in err and str(space) in err


def test_a_fixed_entry_equal_to_the_tolerances_is_no_conflict(
    prices_file: Path, tmp_path: Path
) -> None:
    text = SPACE.replace("stress_cut = 0.5", 'stress_cut = 0.5, vol_target_mode = "absolute"')
    config = _config(prices_file, text, tmp_path, "--risk-tolerance", "moderate")
    assert config.risk_tolerance_name == "moderate"


def test_a_strategy_without_risk_knobs_or_asset_classes_alone_is_refused(
    prices_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bl = Path(research_cli.__file__).parent / "research_spaces" / "bl_regime_factor7.toml"
    assert research_cli.run(_args(prices_file, bl, "--risk-tolerance", "moderate")) == 2
    assert "strategy 'bl_regime' has neither" in capsys.readouterr().err
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    assert research_cli.run(_args(prices_file, space, "--asset-classes", '{"GLD": "bond"}')) == 2
    assert "--asset-classes is for --risk-tolerance" in capsys.readouterr().err


def test_the_portfolios_asset_classes_place_a_symbol_the_table_lacks() -> None:
    space = parse_space(SPACE)
    with pytest.raises(SearchSpaceError, match="symbol 'XYZ' has no asset class"):
        tolerance_space(space, CONSERVATIVE, ["SPY", "XYZ", "GLD"])
    _, params = tolerance_space(space, CONSERVATIVE, ["SPY", "XYZ", "GLD"], {"XYZ": "bond"})
    # conservative: equity 25%, bond 55%, real 20%, one asset each.
    assert params["risk_budgets"] == pytest.approx([0.25, 0.55, 0.20])
    # A reclassified symbol takes the portfolio's class: GLD as a second equity.
    _, params = tolerance_space(space, CONSERVATIVE, SYMBOLS, {"GLD": "equity"})
    share = 0.25 / (0.25 + 0.55)
    assert params["risk_budgets"] == pytest.approx([share / 2, 1 - share, share / 2])


@pytest.mark.parametrize("path", [p for p in SHIPPED if "bl_regime" not in p.name], ids=str)
def test_a_shipped_space_under_a_tolerance_samples_the_same_parameters(path: Path) -> None:
    declared = load_space(path)
    symbols = SYMBOLS
    if "multiasset13" in path.name:
        symbols = ["SPY", "EFA", "EEM", "AGG", "IEF", "TLT", "SHY", "LQD", "HYG", "TIP"]
        symbols += ["GLD", "DBC", "VNQ"]
    searched, params = tolerance_space(declared, TOLERANCES["moderate"], symbols)
    assert searched.parameters == declared.parameters and searched.source == declared.source
    # The declared [fixed] entries stay; the tolerance's join them (tables merged key by key).
    for key, value in declared.fixed.items():
        if key not in params:
            assert searched.fixed[key] == value, key
    assert searched.overrides({}) == _tuples(merged_params(dict(declared.fixed), params))
    searched.check(symbols)


def _tuples(tree: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _tuples(v) if isinstance(v, dict) else tuple(v) if isinstance(v, list) else v
        for k, v in tree.items()
    }

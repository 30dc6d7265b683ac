"""The backtest command's strategy choice and its thin-symbol carry policy (as the live cycle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.profiles import Profile, ProfileSource, load_profile, write_profile
from regime_trader.strategies.synthetic import generate_market
from tests.support.backtest_cli import run_backtest

START = "2010-06-01"


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_market(200, seed=5, start="2010-01-04").prices


def _backtest(path: Path, out: Path, *extra: str) -> int:
    return run_backtest(path, out, "--start", START, *extra)


def _weights(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "weights.csv", index_col="date", parse_dates=True)


def test_the_strategy_and_its_parameters_are_chosen_as_a_portfolio_does(
    prices: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    out = tmp_path / "out"

    code = _backtest(path, out, "--strategy", "erc_static", "--strategy-params", '{"min_obs": 20}')

    assert code == 0
    weights = _weights(out)
    assert (weights["cash"].abs() < 1e-9).all()  # static ERC is fully invested once ready
    assert weights[["SPY", "TLT", "GLD"]].std().min() > 0  # and moves with the covariance
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["strategy"], config["strategy_params"]) == ("erc_static", {"min_obs": 20})


def test_an_unknown_strategy_parameter_is_refused_by_name(
    prices: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prices.csv"
    prices.to_csv(path)

    code = _backtest(
        path, tmp_path / "out", "--strategy", "erc_static", "--strategy-params", '{"nope": 1}'
    )

    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_a_thin_symbols_blank_closes_are_carried_and_noted(
    prices: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thin = prices.copy()
    gap = thin.index[150:152]  # two sessions inside the trading period
    thin.loc[gap, "GLD"] = np.nan
    filled = thin.copy()
    filled.loc[gap, "GLD"] = prices["GLD"].iloc[149]
    thin.to_csv(tmp_path / "thin.csv")
    filled.to_csv(tmp_path / "filled.csv")
    common = ("--strategy", "erc_static", "--strategy-params", '{"min_obs": 20}')

    assert _backtest(tmp_path / "thin.csv", tmp_path / "thin", *common) == 0
    assert _backtest(tmp_path / "filled.csv", tmp_path / "filled", *common) == 0

    pd.testing.assert_frame_equal(_weights(tmp_path / "thin"), _weights(tmp_path / "filled"))
    config = json.loads((tmp_path / "thin" / "metrics.json").read_text())["config"]
    day = str(prices.index[149].date())
    assert config["carried"] == [
        {"symbol": "GLD", "session": str(d.date()), "from": day} for d in gap
    ]
    assert f"GLD on {gap[0].date()}: close of {day} carried" in capsys.readouterr().err


def test_a_run_of_blanks_beyond_the_limit_is_refused_by_symbol_and_dates(
    prices: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thin = prices.copy()
    gap = thin.index[150:152]
    thin.loc[gap, "GLD"] = np.nan
    thin.to_csv(tmp_path / "thin.csv")

    code = _backtest(tmp_path / "thin.csv", tmp_path / "out", "--max-carry-sessions", "1")

    assert code == 2
    err = capsys.readouterr().err
    assert f"GLD on {gap[0].date()} to {gap[1].date()}: no bar for 2 sessions" in err


def test_a_profile_is_backtested_as_the_portfolio_that_names_it_trades(
    prices: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    write_profile(
        Profile(
            name="steady",
            version=1,
            strategy_name="erc_static",
            params={"min_obs": 20, "cov_halflife": 30.0},
            source=ProfileSource(symbols=("SPY", "TLT", "GLD")),
        ),
        data_dir=tmp_path / "data",
    )
    path = tmp_path / "prices.csv"
    prices.to_csv(path)

    assert _backtest(path, tmp_path / "p", "--profile", "steady") == 0
    same = ("--strategy", "erc_static", "--strategy-params", '{"min_obs": 20, "cov_halflife": 30}')
    assert _backtest(path, tmp_path / "s", *same) == 0
    pd.testing.assert_frame_equal(_weights(tmp_path / "p"), _weights(tmp_path / "s"))
    config = json.loads((tmp_path / "p" / "metrics.json").read_text())["config"]
    assert (config["profile"], config["strategy"]) == ("steady v1", "erc_static")

    # Overrides go on top of the profile; no strategy option at all is the default profile.
    assert _backtest(path, tmp_path / "o", "--profile", "steady", *same[2:]) == 0
    pd.testing.assert_frame_equal(_weights(tmp_path / "o"), _weights(tmp_path / "s"))
    assert _backtest(path, tmp_path / "d") == 0
    default = json.loads((tmp_path / "d" / "metrics.json").read_text())["config"]
    assert default["profile"] == load_profile("default", data_dir=tmp_path / "data").label


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--profile", "nowhere"), "nowhere"),
        (("--profile", "baseline", "--strategy", "equal_weight"), "not --strategy equal_weight"),
    ],
    ids=["unknown", "other-strategy"],
)
def test_a_profile_that_cannot_be_backtested_exits_2_naming_it(
    prices: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    assert _backtest(path, tmp_path / "out", *extra) == 2
    assert message in capsys.readouterr().err


def test_a_risk_tolerance_is_backtested_as_the_portfolio_that_names_it_trades(
    prices: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regime_trader.service.config import load_settings
    from regime_trader.strategies.risk_tolerance import TOLERANCES

    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RT_RISK_TOLERANCE", "conservative")
    (portfolio,) = load_settings().portfolios  # what the live default portfolio would trade
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    assert _backtest(path, tmp_path / "t", "--risk-tolerance", "conservative") == 0
    config = json.loads((tmp_path / "t" / "metrics.json").read_text())["config"]
    assert config["strategy_params"] == portfolio.strategy_params
    assert config["weight_band"] == portfolio.no_trade_band == 0.03
    assert config["risk_tolerance"]["name"] == "conservative"
    weights = _weights(tmp_path / "t")
    invested = 1.0 - weights["cash"].iloc[-20:]
    tolerance = TOLERANCES["conservative"]
    assert (invested <= tolerance.max_exposure + 1e-9).all()
    assert (invested >= tolerance.min_exposure - 1e-9).all()
    # The same parameters by hand give the same weights: the tolerance is only parameters.
    by_hand = json.dumps(portfolio.strategy_params)
    same = ("--strategy", portfolio.strategy, "--strategy-params", by_hand, "--weight-band", "0.03")
    assert _backtest(path, tmp_path / "h", *same) == 0
    pd.testing.assert_frame_equal(weights, _weights(tmp_path / "h"))


def test_an_unknown_risk_tolerance_exits_2_naming_it(
    prices: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    with pytest.raises(SystemExit) as exit_info:
        _backtest(path, tmp_path / "x", "--risk-tolerance", "bold")
    assert exit_info.value.code == 2
    assert "unknown risk tolerance 'bold'" in capsys.readouterr().err

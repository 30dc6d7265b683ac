"""``regime-trader backtest --sleeve-prices``: assets and a momentum sleeve's stocks, end to end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regime_trader.service.cli import main
from regime_trader.strategies.synthetic import generate_market
from tests.conftest import SHARED_DATA
from tests.support.backtest_cli import run_backtest

ASSETS = ("SPY", "TLT", "GLD")
STOCKS = tuple(f"X{i:02d}" for i in range(16))
FAST = {"momentum": {"lookback": 60, "skip": 5, "top_k": 4}, "min_obs": 30}
START = "2016-01-04"
FAST_FROM_START = ("--strategy-params", json.dumps(FAST), "--start", START)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.Timestamp]:
    """An ETF file and a stock file that overlap partly; the stock file misses one session."""
    folder = tmp_path_factory.mktemp("sleeve")
    assets = generate_market(420, ASSETS, seed=4, start="2015-01-02").prices
    rng = np.random.default_rng(9)
    dates = assets.index[20:]  # the stocks start later and end with the ETFs
    steps = rng.normal(0.0, 0.002, len(STOCKS)) + rng.normal(0.0, 0.015, (len(dates), 16))
    stocks = pd.DataFrame(40.0 * np.exp(np.cumsum(steps, axis=0)), index=dates, columns=STOCKS)
    missing = dates[150]
    stocks = stocks.drop(index=missing)
    assets.to_csv(folder / "etfs.csv")
    stocks.to_csv(folder / "stocks.csv")
    return folder / "etfs.csv", folder / "stocks.csv", missing


def _sleeve_backtest(prices: Path, out: Path, sleeve: Path, *extra: str) -> int:
    """A backtest of ``erc_sleeve`` with ``sleeve`` as its stock file."""
    return run_backtest(
        prices, out, "--sleeve-prices", str(sleeve), "--strategy", "erc_sleeve", *extra
    )


def _metrics(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return loaded


def test_the_sleeve_backtest_runs_and_trades_assets_and_stocks(
    files: tuple[Path, Path, pd.Timestamp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etfs, stocks, missing = files
    out = tmp_path / "out"
    code = _sleeve_backtest(etfs, out, stocks, *FAST_FROM_START)

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"{missing.date()} is in one file only; dropped" in printed.err
    config = _metrics(out)["config"]
    assert config["strategy_params"]["sleeve_symbols"] == list(STOCKS)
    assert config["sleeve_prices"] == str(stocks)
    weights = pd.read_csv(out / "weights.csv", index_col=0, parse_dates=True)
    assert list(weights.columns) == [*ASSETS, *STOCKS, "cash"]
    assert pd.Timestamp(missing) not in weights.index
    held = weights[list(STOCKS)].gt(0).sum(axis=1)
    assert held.min() >= 1  # the sleeve is in the ERC from the first trading day
    assert (weights.drop(columns="cash").sum(axis=1) + weights["cash"]).sub(1).abs().max() < 1e-9


def test_the_benchmarks_run_on_the_assets_alone(
    files: tuple[Path, Path, pd.Timestamp], tmp_path: Path
) -> None:
    etfs, stocks, _ = files
    sleeve_out, alone_out = tmp_path / "sleeve", tmp_path / "alone"
    common = pd.read_csv(stocks, index_col=0, parse_dates=True).index
    assets = pd.read_csv(etfs, index_col=0, parse_dates=True)
    common_csv = tmp_path / "common.csv"
    assets.loc[assets.index.isin(common)].to_csv(common_csv)
    assert _sleeve_backtest(etfs, sleeve_out, stocks, *FAST_FROM_START) == 0
    assert run_backtest(common_csv, alone_out, "--strategy", "erc_static", "--start", START) == 0

    with_sleeve = _metrics(sleeve_out)["benchmarks"]
    alone = _metrics(alone_out)
    assert with_sleeve["erc_static"] == alone["benchmarks"]["erc_static"]
    assert with_sleeve["equal_weight"] == alone["benchmarks"]["equal_weight"]
    assert with_sleeve["erc_static"]["sharpe"] == alone["strategy"]["sharpe"]


def test_a_sleeve_file_for_another_strategy_is_refused(
    files: tuple[Path, Path, pd.Timestamp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etfs, stocks, _ = files
    code = run_backtest(
        etfs, tmp_path / "out", "--sleeve-prices", str(stocks), "--strategy", "erc_static"
    )

    assert code == 2
    assert "--sleeve-prices is for --strategy erc_sleeve, not erc_static" in capsys.readouterr().err


def test_a_symbol_in_both_files_and_a_sleeve_without_prices_are_refused(
    files: tuple[Path, Path, pd.Timestamp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etfs, _, _ = files
    code = _sleeve_backtest(etfs, tmp_path / "out", etfs)
    assert code == 2 and "are in the --prices file too" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["backtest", "--sleeve-prices", str(etfs), "--quiet", "--out", str(tmp_path)])
    assert code == 2 and "--sleeve-prices needs --prices" in capsys.readouterr().err


def test_the_shared_multi_asset_panel_with_the_stock_sleeve_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etfs = SHARED_DATA / "multiasset13_2007_2019.csv"
    stocks = SHARED_DATA / "sp500_stocks_2010_2019.csv"
    if not (etfs.is_file() and stocks.is_file()):
        pytest.skip(f"shared data not found in {SHARED_DATA}")
    out = tmp_path / "real"
    # A short window of the development years: the sleeve's first 12-1 score is in 2011-01,
    # it joins the ERC 60 returns later.
    code = _sleeve_backtest(etfs, out, stocks, "--start", "2011-06-01", "--end", "2011-12-30")

    assert code == 0, capsys.readouterr().err
    weights = pd.read_csv(out / "weights.csv", index_col=0, parse_dates=True)
    assert weights.shape[1] == 13 + 399 + 1
    stocks_held = weights.drop(columns="cash").iloc[:, 13:].gt(0).sum(axis=1)
    assert stocks_held.min() >= 20  # the top 20, and the capped rotation's remainders
    assert weights.index[-1] == pd.Timestamp("2011-12-30")


def test_the_files_are_deterministic_and_a_decision_ignores_later_stock_bars(
    files: tuple[Path, Path, pd.Timestamp], tmp_path: Path
) -> None:
    etfs, stocks, _ = files
    # round_trip: the unchanged rows must keep their exact floats through the rewrite.
    changed = pd.read_csv(stocks, index_col=0, parse_dates=True, float_precision="round_trip")
    cut = pd.Timestamp("2016-03-31")
    later = changed.index > cut
    changed.loc[later] *= np.random.default_rng(1).uniform(0.7, 1.3, (int(later.sum()), 16))
    changed.to_csv(tmp_path / "changed.csv")
    runs = {}
    for label, path in (("a", stocks), ("b", stocks), ("changed", tmp_path / "changed.csv")):
        assert _sleeve_backtest(etfs, tmp_path / label, path, *FAST_FROM_START) == 0
        weights = pd.read_csv(tmp_path / label / "weights.csv", index_col=0, parse_dates=True)
        runs[label] = weights.astype(float)  # a never-held column reads back as integers

    for name in ("weights.csv", "equity.csv", "metrics.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    pd.testing.assert_frame_equal(runs["a"].loc[:cut], runs["changed"].loc[:cut])
    assert not runs["a"].loc[cut:].iloc[1:].equals(runs["changed"].loc[cut:].iloc[1:])

"""``regime-trader backtest --strategy bl_regime`` end to end: a synthetic file, and the factor
ETFs against EW(7) when the shared data is present (development years only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.synthetic import generate_market
from tests.conftest import SHARED_DATA
from tests.support.backtest_cli import run_backtest

FACTOR7 = SHARED_DATA / "factor7_2013_2019.csv"
# A first training window of 120 rows reaches the fitted path in a short file.
FAST = {"regimes": {"regime": {"min_train_obs": 120, "n_init": 2}}}


def _backtest(prices: Path, out: Path, start: str, *extra: str) -> int:
    return run_backtest(prices, out, "--start", start, *extra)


@pytest.fixture(scope="module")
def price_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "prices.csv"
    generate_market(320, seed=3, start="2010-01-04").prices.to_csv(path)
    return path


def test_a_synthetic_backtest_runs_and_reports_ew7(price_csv: Path, tmp_path: Path) -> None:
    params = json.dumps({**FAST, "te_target": 0.02})
    code = _backtest(
        price_csv, tmp_path, "2010-08-02", "--strategy", "bl_regime", "--strategy-params", params
    )
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["strategy"] == "bl_regime"
    assert metrics["config"]["strategy_params"]["te_target"] == 0.02
    assert "equal_weight_quarterly" in metrics["benchmarks"]  # EW(7) of the literature
    assert metrics["strategy"]["sharpe"] is not None
    weights = pd.read_csv(tmp_path / "weights.csv", index_col="date")
    invested = weights.drop(columns="cash")
    assert (invested.to_numpy() >= 0).all()
    ready = invested[invested.sum(axis=1) > 0]
    assert len(ready) > 50 and np.allclose(ready.sum(axis=1), 1.0, atol=1e-9)
    assert (ready.std() > 0).any()  # the views move the weights


def test_without_confidence_the_backtest_holds_the_benchmark(
    price_csv: Path, tmp_path: Path
) -> None:
    params = json.dumps({**FAST, "view_confidence": 0.0})
    args = ("--strategy", "bl_regime", "--strategy-params", params)
    assert _backtest(price_csv, tmp_path, "2010-08-02", *args) == 0
    weights = pd.read_csv(tmp_path / "weights.csv", index_col="date").drop(columns="cash")
    ready = weights[weights.sum(axis=1) > 0]
    assert len(ready) > 50
    np.testing.assert_allclose(ready.to_numpy(), 1 / 3, atol=1e-12)


def test_a_parameter_out_of_range_is_refused_by_name(
    price_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = json.dumps({"te_target": -0.1})
    args = ("--strategy", "bl_regime", "--strategy-params", params)
    assert _backtest(price_csv, tmp_path, "2010-08-02", *args) == 2
    assert "te_target must be a finite number >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_the_factor_etfs_against_ew7_in_development_years(tmp_path: Path) -> None:
    if not FACTOR7.is_file():
        pytest.skip(f"shared data not found at {FACTOR7}")
    # Development data only (the file's 2018-2019 are the validation window): a short window
    # after a short first fit, to keep the test quick; the numbers are the report's, not here.
    args = ("--strategy", "bl_regime", "--strategy-params", json.dumps(FAST))
    assert _backtest(FACTOR7, tmp_path, "2014-06-02", "--end", "2014-12-31", *args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["symbols"] == ["SPY", "QUAL", "MTUM", "USMV", "VLUE", "SIZE", "IWF"]
    assert metrics["benchmarks"]["equal_weight_quarterly"]["sharpe"] is not None
    weights = pd.read_csv(tmp_path / "weights.csv", index_col="date")
    assert weights.index[-1] == "2014-12-31"
    invested = weights.drop(columns="cash")
    ready = invested[invested.sum(axis=1) > 0]
    assert len(ready) > 100 and np.allclose(ready.sum(axis=1), 1.0, atol=1e-9)
    assert (invested.to_numpy() >= 0).all()

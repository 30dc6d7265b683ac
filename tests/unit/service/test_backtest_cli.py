"""The backtest command end to end: files, causality and determinism at the file level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from regime_trader.strategies.backtest_metrics import VOL_MATCHED
from regime_trader.strategies.registry import BENCHMARKS
from regime_trader.strategies.synthetic import generate_market
from tests.support.backtest_cli import run_backtest
from tests.unit.strategies.engines import ENGINES, engine_params

START = "2011-03-01"  # about 300 sessions into the synthetic file: after the first HMM fit


@pytest.fixture(scope="module")
def price_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "prices.csv"
    generate_market(520, seed=3, start="2010-01-04").prices.to_csv(path)
    return path


def _backtest(prices: Path, out: Path, *extra: str) -> int:
    return run_backtest(prices, out, "--start", START, *extra)


def _engine(engine: str) -> tuple[str, ...]:
    """The command-line options that select ``engine`` (the HMM: regime_erc's defaults)."""
    if engine == "hmm":
        return ("--strategy", "regime_erc")
    return ("--strategy-params", json.dumps(engine_params(engine)))


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def full_run(price_csv: Path, engine: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"full-{engine}")
    assert _backtest(price_csv, out, *_engine(engine)) == 0
    return out


FILES = {"metrics.json", "metrics.csv", "weights.csv", "regimes.csv", "equity.csv", "report.html"}


def test_backtest_writes_every_file_with_the_documented_shape(full_run: Path, engine: str) -> None:
    names = {p.name for p in full_run.iterdir()}
    assert names == FILES
    metrics = json.loads((full_run / "metrics.json").read_text())
    assert list(metrics["benchmarks"]) == [BENCHMARKS[0], VOL_MATCHED, *BENCHMARKS[1:]]
    assert metrics["config"]["cost_bps"] == 5.0
    # A portfolio's default no-trade band is the default execution band.
    assert (metrics["config"]["weight_band"], metrics["config"]["exposure_band"]) == (0.02, 0.0)
    years = sorted({str(d)[:4] for d in pd.read_csv(full_run / "equity.csv")["date"]})
    assert list(metrics["per_year"]) == years and len(years) >= 1
    table = pd.read_csv(full_run / "metrics.csv", dtype={"slice": str})
    assert list(table.columns[:3]) == ["kind", "slice", "name"]
    assert set(table["slice"]) == {"all", *years}
    assert len(table) == (1 + len(years)) * (1 + len(metrics["benchmarks"]))
    assert (table[table["name"] == VOL_MATCHED]["vol_scale"] > 0).all()
    weights = pd.read_csv(full_run / "weights.csv", index_col="date")
    assert list(weights.columns) == ["SPY", "TLT", "GLD", "cash"]
    assert (weights.sum(axis=1) - 1).abs().max() < 1e-8
    assert weights.index[0] >= START
    equity = pd.read_csv(full_run / "equity.csv", index_col="date")
    assert list(equity.columns) == ["strategy", *metrics["benchmarks"]]
    html = (full_run / "report.html").read_text()
    # The tearsheet: 7 charts, and the realised risk chart when the asset returns are passed.
    with_risk = "they were not given" not in html
    assert html.count("data:image/png;base64,") == 7 + with_risk
    assert "Sharpe ratio by calendar year" in html and "Monthly returns of the strategy" in html
    assert "static ERC at the strategy&#x27;s volatility" in html  # VOL_MATCHED, in words


def test_rows_up_to_a_cut_date_are_identical_when_the_file_ends_there(
    price_csv: Path, full_run: Path, engine: str, tmp_path: Path
) -> None:
    prices = pd.read_csv(price_csv, index_col="date")
    cut_date = prices.index[430]
    short_csv = tmp_path / "short.csv"
    prices.loc[:cut_date].to_csv(short_csv)
    assert _backtest(short_csv, tmp_path / "cut", *_engine(engine)) == 0
    for name in ("weights.csv", "regimes.csv"):
        full = (full_run / name).read_text().splitlines()
        cut = (tmp_path / "cut" / name).read_text().splitlines()
        assert cut[-1].startswith(cut_date)
        assert full[: len(cut)] == cut


def test_two_runs_write_byte_identical_files(
    price_csv: Path, full_run: Path, engine: str, tmp_path: Path
) -> None:
    assert _backtest(price_csv, tmp_path, *_engine(engine)) == 0
    for path in full_run.iterdir():
        assert path.read_bytes() == (tmp_path / path.name).read_bytes(), path.name


def test_bad_price_file_exits_non_zero_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,SPY\n2020-01-02,100\n2020-01-03,-1\n", encoding="utf-8")
    assert _backtest(bad, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "line 3: SPY on 2020-01-03 = '-1' is not a positive price" in err
    assert not (tmp_path / "out").exists()


def test_console_script_is_installed_and_answers_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "regime_trader.service", "backtest", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert "--cost-bps" in done.stdout

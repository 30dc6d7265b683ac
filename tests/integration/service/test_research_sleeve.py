"""A research study of ``erc_sleeve`` with ``--sleeve-prices``: the stocks are joined to the
assets as the backtest joins them, every trial gets them as its ``sleeve_symbols``, the
benchmarks run on the assets alone, and a worker, a close or a joining command given another
stock file is refused.

The Redis and the study's arguments are :mod:`tests.integration.service.test_research_study`'s.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from regime_trader.service import research_cli, research_close
from regime_trader.service.pricefile import PriceFileError
from regime_trader.service.research_close import close_study, closed_record
from regime_trader.service.research_config import (
    StudyConfig,
    file_sha256,
    load_study_prices,
    load_study_sleeve,
    tolerance_space,
)
from regime_trader.service.research_space import SearchSpaceError, parse_space
from regime_trader.service.research_storage import open_storage
from regime_trader.service.research_study import WorkerSpec, load_config, run_worker
from regime_trader.service.research_trial import BENCHMARK
from regime_trader.service.sleeve_prices import join_sleeve_prices, sleeve_params
from regime_trader.strategies.risk_tolerance import TOLERANCES
from tests.integration.service import test_research_study as shared

# The shared study's Redis fixtures, found by name.
redis_url = shared.redis_url
prefix = shared.prefix
study_prices = shared.study_prices
tiny = shared.tiny

STOCKS = tuple(f"X{i:02d}" for i in range(8))
SLEEVE_SPACE = """
strategy = "erc_sleeve"
[fixed]
momentum = { lookback = 60, skip = 5 }
min_obs = 30

[[parameter]]
path = "momentum.top_k"
int = { low = 2, high = 4 }

[[parameter]]
path = "risk_budgets.sleeve"
float = { low = 0.5, high = 3.0, log = true }
"""
REGIME_SPACE = shared.SPACE  # the shared tiny regime study's
STUDY = "tiny-sleeve"
NO_STORAGE = "redis://127.0.0.1:1/0"  # _config builds a study's configuration, storing nothing


def _write_stocks(path: Path, index: pd.Index, seed: int) -> pd.Timestamp:
    """Eight random-walk stocks on the assets' sessions but one; returns the one missing."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0, 0.002, len(STOCKS))
    steps = drift + rng.normal(0.0, 0.015, (len(index), len(STOCKS)))
    stocks = pd.DataFrame(40.0 * np.exp(np.cumsum(steps, axis=0)), index=index, columns=STOCKS)
    missing = pd.Timestamp(index[300])
    stocks.drop(index=missing).to_csv(path, float_format="%.6f")
    return missing


# (tmp_path, url, key_prefix, space_text, **extra): this module's tiny study.
_study_args = functools.partial(shared.small_study_args, study=STUDY)


@pytest.mark.slow
def test_a_sleeve_study_trades_the_stocks_against_benchmarks_on_the_assets_alone(
    tiny: shared.TinyStudy, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path, redis_url, prefix, assets = tiny.tmp, tiny.url, tiny.prefix, tiny.closes
    stocks = tmp_path / "stocks.csv"
    missing = _write_stocks(stocks, assets.index, seed=5)
    storage = open_storage(redis_url, prefix)

    # Stocks for a strategy without a sleeve, or erc_sleeve without its stocks: refused before
    # a study is created.
    regime = _study_args(tmp_path, redis_url, prefix, REGIME_SPACE, sleeve_prices=str(stocks))
    assert research_cli.run(regime) == 2
    assert "--sleeve-prices is for strategy 'erc_sleeve'" in capsys.readouterr().err
    assert research_cli.run(_study_args(tmp_path, redis_url, prefix, SLEEVE_SPACE)) == 2
    assert "give them with --sleeve-prices FILE" in capsys.readouterr().err
    assert optuna.get_all_study_names(storage) == []

    args = _study_args(tmp_path, redis_url, prefix, SLEEVE_SPACE, sleeve_prices=str(stocks))
    assert research_cli.run(args) == 0
    assert f"warning: {missing.date()} is in one file only; dropped" in capsys.readouterr().err
    study = optuna.load_study(study_name=STUDY, storage=storage)
    config = load_config(study)
    assert config.symbols == tuple(assets.columns)
    assert (config.sleeve_file, config.sleeve_sha256) == (str(stocks), file_sha256(stocks))
    record = closed_record(study)
    assert record is not None
    assert (
        f"`{stocks}`, SHA-256 `{config.sleeve_sha256}`" in (tmp_path / "out/report.md").read_text()
    )

    # The trials ran on the joined sessions; static ERC held no stock, and scored as static ERC
    # on the assets alone (not on all eleven columns).
    prices = load_study_prices(config, tmp_path / "prices.csv")
    sleeve = load_study_sleeve(config, prices)
    assert sleeve is not None and sleeve.sleeve_symbols == STOCKS
    joined = sleeve.closes
    assert missing not in joined.index
    evaluator = config.evaluator(joined)
    assert (evaluator.benchmark_.weights[list(STOCKS)] == 0.0).all().all()
    alone = config.evaluator(joined[list(assets.columns)]).benchmark_.returns
    pd.testing.assert_series_equal(evaluator.benchmark_.returns, alone)
    trial = study.get_trials()[0]
    recorded = [f["benchmark_sharpe"] for f in trial.user_attrs["folds"]]
    expected = [f.benchmark_sharpe for f in config.evaluator(joined).evaluate({}).folds]
    assert recorded == expected
    over_all = StudyConfig.from_dict({**config.to_dict(), "sleeve_sha256": None})
    assert [f.benchmark_sharpe for f in over_all.evaluator(joined).evaluate({}).folds] != recorded
    # The close's benchmarks too (equal weight, 60/40, ...): those of the assets alone; its
    # vol-matched ERC scales that static ERC to the chosen strategy's volatility.
    plan = evaluator.plan
    on_assets = research_close._window(
        joined[list(assets.columns)],
        over_all,
        {},
        *config.dev_window,
        plan.days[plan.warmup_days],
        None,
    )
    for name in (BENCHMARK, "equal_weight", "sixty_forty"):
        assert record.development.rows[name] == pytest.approx(on_assets.rows[name], rel=1e-9)

    # The trial traded the sleeve: its stocks were its sleeve_symbols (without them erc_sleeve
    # is plain ERC on every column and scores otherwise).
    overrides = parse_space(config.space_text, config.space_source).overrides(trial.params)
    given = sleeve_params(config.strategy, overrides, sleeve)
    assert given["sleeve_symbols"] == list(STOCKS)
    assert evaluator.evaluate(given).objective == trial.value
    assert evaluator.evaluate(overrides).objective != trial.value

    # The stock file changes: a worker (given it, or reading the study's path), the close and
    # the command joining the study refuse it.
    _write_stocks(stocks, assets.index, seed=6)
    for path in (stocks, None):
        with pytest.raises(PriceFileError, match="differs from the study's sleeve file"):
            run_worker(WorkerSpec(redis_url, prefix, STUDY, tmp_path / "prices.csv", 0, None, path))
    with pytest.raises(PriceFileError, match="differs from the study's sleeve file"):
        close_study(study, redis_url, prefix, assets, None, stocks)
    assert research_cli.run(args) == 2
    assert "sleeve_sha256: " in capsys.readouterr().err
    assert closed_record(study) == record

    # A study config stored before the sleeve fields still loads, joining no stocks.
    old = {k: v for k, v in config.to_dict().items() if not k.startswith("sleeve_")}
    assert load_study_sleeve(StudyConfig.from_dict(old), prices) is None


def test_a_tolerance_gives_the_sleeve_its_budgets_by_name_and_a_sampled_one_wins() -> None:
    symbols = ["SPY", "TLT", "GLD", *STOCKS]
    space = parse_space(SLEEVE_SPACE, "sleeve.toml")
    searched, params = tolerance_space(space, TOLERANCES["moderate"], symbols, None, STOCKS)
    budgets = params["risk_budgets"]
    assert list(budgets) == ["SPY", "TLT", "GLD", "sleeve"]  # the stocks share one budget
    assert sum(budgets.values()) == pytest.approx(1.0)
    sampled = searched.overrides({"momentum.top_k": 3, "risk_budgets.sleeve": 2.5})
    assert sampled["risk_budgets"] == {**budgets, "sleeve": 2.5}
    searched.check(symbols)


def test_the_space_is_checked_as_the_trials_build_it_with_the_sleeve_stocks(
    tmp_path: Path, study_prices: pd.DataFrame
) -> None:
    stocks = tmp_path / "stocks.csv"
    _write_stocks(stocks, study_prices.index, seed=5)
    sleeve = join_sleeve_prices(study_prices, stocks, 3)
    head = 'strategy = "erc_sleeve"\n[fixed]\nmomentum = { lookback = 60, skip = 5 }\n'
    top_k = '[[parameter]]\npath = "momentum.top_k"\nint = { low = 2, high = 4 }\n'

    def config(budgets: str) -> StudyConfig:
        space = head + budgets + top_k
        args = _study_args(tmp_path, NO_STORAGE, "unused", space, sleeve_prices=str(stocks))
        return research_cli._config(args, study_prices, None, sleeve)

    # A list of budgets holds one per asset and the sleeve's last, as every trial reads it.
    assert config("risk_budgets = [1.0, 1.0, 1.0, 2.0]\n").sleeve_sha256 is not None
    # A stock has no budget of its own (the stocks share the sleeve's): refused up front.
    with pytest.raises(SearchSpaceError, match=r"risk_budgets names \['X00'\]"):
        config("risk_budgets = { X00 = 2.0 }\n")

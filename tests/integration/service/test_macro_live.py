"""The true macro series live: a portfolio's ``macro_file`` feeds the regime engine as the
backtest's ``--macro`` file does, and a broken or stale file refuses the cycle, state kept.

The signal step runs against the emulator (real alpaca-py clients over HTTP, real Redis) for a
regime strategy with ``macro_source = "series"``; the backtest is the same strategy fed the
same served bars joined to the same file. The decisions must be equal, bar for bar.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from regime_trader.service.cli import main
from regime_trader.service.config import ConfigError, load_settings
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.exceptions import BadMarketDataError
from regime_trader.service.signal_step import SignalResult, backfill_start, compute_signal
from regime_trader.strategies.macro import join_macro
from regime_trader.strategies.registry import build_strategy
from tests.conftest import REAL_PRICES, SHARED_DATA
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import START, EmulatorDriver, emulator_config
from tests.support.fixtures import shared_emulator_fixture
from tests.support.macro import write_macro

P = "macro"
PARAMS = {
    "macro_features": ["vix", "vix_change", "curve_10y2y"],
    "macro_source": "series",
    "regime": {"min_train_obs": 120},
}
DAYS = pd.bdate_range("2021-01-01", "2024-12-31")  # every weekday: holidays included

shared_emulator = shared_emulator_fixture(emulator_config())


@pytest.fixture
def emulator_start() -> datetime:
    return START


@pytest.fixture
def macro_file(tmp_path: Path) -> Path:
    return write_macro(tmp_path / "macro.csv", DAYS, seed=5)


@pytest.fixture
def ctx(emu: EmulatorDriver, text_redis: redis.Redis, macro_file: Path) -> CycleContext:
    portfolio = small_portfolio(P, "regime_erc", strategy_params=PARAMS, macro_file=str(macro_file))
    return cycle_context(emu.url, text_redis, unique_namespace(), portfolio)


def _signal_of_today(ctx: CycleContext) -> SignalResult:
    """The signal step of the emulator's session, its state stored as a done cycle's."""
    clock = ctx.broker.clock()
    result = compute_signal(ctx, clock.timestamp.date(), clock.timestamp)
    key = ctx.store.key(P, "strategy")
    ctx.store.redis.set(key, json.dumps(result.state, allow_nan=False))
    return result


def test_the_live_signals_on_the_macro_file_equal_the_backtest_on_it(
    ctx: CycleContext, emu: EmulatorDriver, macro_file: Path
) -> None:
    first = date.fromisoformat(emu.open_session())
    live = [_signal_of_today(ctx)]
    for _ in range(4):
        emu.next_session()
        live.append(_signal_of_today(ctx))
    assert all(r.signal.ready for r in live)  # decided on the model, not warming up

    p = ctx.portfolio
    served = ctx.bars.daily_closes(
        list(p.symbols), backfill_start(ctx, first), live[-1].signal.date.date()
    )
    macro = pd.read_csv(macro_file, index_col="date", parse_dates=True)
    backtest = build_strategy(p.strategy, p.symbols, p.strategy_params)
    decided = {s.date: s for s in backtest.iter_update(join_macro(served, macro))}
    for result in live:
        expected = decided[result.signal.date]
        assert result.signal.weights == pytest.approx(expected.weights, abs=1e-12)
        assert result.signal.regime_probs == pytest.approx(expected.regime_probs, abs=1e-12)
    # The series are read: without them the same bars decide otherwise.
    without = build_strategy(p.strategy, p.symbols, {**p.strategy_params, "macro_features": []})
    other = {s.date: s for s in without.iter_update(served)}
    assert any(
        not np.allclose(
            list(other[r.signal.date].weights.values()), list(r.signal.weights.values())
        )
        for r in live
    )


def test_a_broken_or_stale_macro_file_refuses_the_cycle_and_keeps_the_state(
    ctx: CycleContext, emu: EmulatorDriver, macro_file: Path
) -> None:
    emu.open_session()
    _signal_of_today(ctx)
    emu.next_session()
    state = ctx.store.strategy_state(P)
    good = macro_file.read_text(encoding="utf-8")

    lines = good.splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",n/a"
    macro_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadMarketDataError, match=r"macro series: .*line 6, column 'SPREAD_10Y3M'"):
        _signal_of_today(ctx)
    assert ctx.store.strategy_state(P) == state

    header, *rows = good.splitlines()
    kept = [row for row in rows if row < "2023-12-20"]  # the last row 14 days before the bar
    macro_file.write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    with pytest.raises(BadMarketDataError, match=r"VIX on 2024-01-02: no value"):
        _signal_of_today(ctx)
    assert ctx.store.strategy_state(P) == state

    macro_file.write_text(good, encoding="utf-8")
    assert _signal_of_today(ctx).signal.ready  # mended, the cycle goes on


def test_a_series_strategy_without_a_macro_file_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("RT_", "ALPACA_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "portfolios.toml"
    path.write_text(
        '[[portfolio]]\nname = "core"\nsymbols = ["SPY", "TLT", "GLD"]\n'
        'strategy = "regime_erc"\n'
        '[portfolio.strategy_params]\nmacro_features = ["vix"]\nmacro_source = "series"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RT_CONFIG_FILE", str(path))
    with pytest.raises(
        ConfigError, match=r"portfolio 'core': its strategy reads \['VIX'.*macro_file"
    ):
        load_settings()
    url = "https://example.org/macro.csv"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'strategy = "regime_erc"\n', f'strategy = "regime_erc"\nmacro_file = "{url}"\n'
        ),
        encoding="utf-8",
    )
    assert [p.macro_file for p in load_settings().portfolios] == [url]


def test_the_cli_backtest_reads_the_true_series_with_macro(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    macro = SHARED_DATA / "macro_vix_ust_1990_2019.csv"
    if not (REAL_PRICES.is_file() and macro.is_file()):
        pytest.skip(f"shared data not found in {SHARED_DATA}")
    args = ["backtest", "--prices", str(REAL_PRICES), "--quiet", "--end", "2010-12-31"]
    args += ["--start", "2008-01-02", "--strategy-params", json.dumps(PARAMS)]
    assert main([*args, "--out", str(tmp_path / "no")]) == 2
    assert "give the macro series" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "yes"), "--macro", str(macro)]) == 0
    config = json.loads((tmp_path / "yes" / "metrics.json").read_text(encoding="utf-8"))
    assert config["config"]["macro"] == str(macro)
    weights = pd.read_csv(tmp_path / "yes" / "weights.csv", index_col="date")
    assert len(weights) == 757 and (weights["cash"] < 1).any()  # 2008-2010, decided on the model

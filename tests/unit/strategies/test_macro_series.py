"""The true macro series as regime-engine inputs: joined causally, equal to the batch signals,
refused when blank, and for every engine causal, deterministic and restorable."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.base import BarsError
from regime_trader.strategies.macro import MACRO_COLUMNS, ProxySpec, join_macro, macro_signals
from regime_trader.strategies.macro_online import MACRO_SIGNALS, MacroSeriesEngine
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.synthetic import generate_market
from tests.support.macro import synthetic_macro
from tests.unit.strategies.engines import ENGINES, engine_params, quiet_signals

SYMBOLS = ("SPY", "TLT", "GLD")  # the series need no proxy ETF in the universe
SERIES = {"macro_features": ["vix", "curve_10y2y"], "macro_source": "series"}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_market(520, SYMBOLS, seed=21).prices


@pytest.fixture(scope="module")
def macro(prices: pd.DataFrame) -> pd.DataFrame:
    return synthetic_macro(pd.DatetimeIndex(prices.index))


def _strategy(engine: str) -> RegimeERC:
    strategy = build_strategy("regime_erc", list(SYMBOLS), engine_params(engine, **SERIES))
    assert isinstance(strategy, RegimeERC)
    return strategy


def test_the_online_series_signals_equal_the_batch_ones_and_restore_exactly(
    macro: pd.DataFrame,
) -> None:
    spec = ProxySpec(curve_window=20, change_window=3)
    batch = macro_signals(macro, spec)[list(MACRO_SIGNALS)].to_numpy()
    engine = MacroSeriesEngine(MACRO_SIGNALS, spec)
    rows = []
    for i, values in enumerate(macro.to_numpy()):
        if i == 200:  # mid-stream, through JSON, as the store keeps it
            state = json.loads(json.dumps(engine.state_dict(), default=np.ndarray.tolist))
            engine = MacroSeriesEngine.from_state(state)
        engine.observe(values)
        rows.append(engine.update(np.ones(3)))
    online = np.array(rows)
    assert np.array_equal(np.isnan(online), np.isnan(batch))
    np.testing.assert_allclose(online[20:], batch[20:], rtol=0, atol=1e-12)
    assert engine.ready and np.isfinite(online[-1]).all()  # every window full at the end
    with pytest.raises(ValueError, match="not observed"):
        engine.update(np.ones(3))  # a bar whose values were not observed is refused


def test_the_join_takes_the_latest_row_on_or_before_each_session_and_never_a_later_one() -> None:
    sessions = pd.DatetimeIndex(
        ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-21"]
    )
    closes = pd.DataFrame({"SPY": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=sessions)
    dated = pd.DatetimeIndex(["2020-01-02", "2020-01-04", "2020-01-07"])  # Sat, then Tue
    macro = pd.DataFrame(
        {"VIX": [10.0, 11.0, 12.0], "SPREAD_10Y2Y": [1.0, 2.0, 3.0], "SPREAD_10Y3M": [0.0] * 3},
        index=dated,
    )
    joined = join_macro(closes, macro)
    assert list(joined.columns) == ["SPY", *MACRO_COLUMNS]
    # The 6th takes Saturday's row, not the 7th's; the 7th its own.
    assert joined["VIX"].iloc[:4].tolist() == [10.0, 10.0, 11.0, 12.0]
    assert math.isnan(joined["VIX"].iloc[4])  # the 21st: the last row is 14 days old
    with pytest.raises(ValueError, match=r"lack columns \['SPREAD_10Y3M'\]"):
        join_macro(closes, macro.drop(columns="SPREAD_10Y3M"))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_model_sees_the_true_series_causally_and_restores_exactly(
    engine: str, prices: pd.DataFrame, macro: pd.DataFrame
) -> None:
    bars = join_macro(prices, macro)
    seen, changed = _strategy(engine), _strategy(engine)
    full = quiet_signals(seen, bars)
    assert sum(s.ready for s in full) > 100
    later = macro.copy()
    later.iloc[400:] *= 1.5  # the series after bar 400 change...
    cut = quiet_signals(changed, join_macro(prices, later))
    assert [s.to_dict() for s in cut[:400]] == [s.to_dict() for s in full[:400]]  # ...not before
    windows = [s._source.tracker.window.features() for s in (seen, changed)]
    assert not np.array_equal(*windows)  # the model's inputs are the series (sparse may zero them)
    live = _strategy(engine)
    quiet_signals(live, bars.iloc[:380])
    state = live.state_dict()
    assert state["macro"]["source"] == "series"
    restored = strategy_from_state(json.loads(json.dumps(state)))
    rest = bars.iloc[380:]
    assert [s.to_dict() for s in quiet_signals(restored, rest)] == [
        s.to_dict() for s in quiet_signals(live, rest)
    ]


def test_bars_without_the_series_or_with_a_blank_are_refused(
    prices: pd.DataFrame, macro: pd.DataFrame
) -> None:
    strategy = _strategy("hmm")
    assert strategy.extra_inputs == MACRO_COLUMNS
    with pytest.raises(BarsError, match=r"bars lack inputs \['VIX', 'SPREAD_10Y2Y'"):
        strategy.update(prices)
    bars = join_macro(prices, macro)
    bars.iloc[10, bars.columns.get_loc("SPREAD_10Y2Y")] = np.nan
    day = bars.index[10].date()
    with pytest.raises(BarsError, match=f"SPREAD_10Y2Y on {day}: no value"):
        strategy.update(bars)
    assert strategy.last_date is None  # refused before any bar was consumed
    proxies = build_strategy("regime_erc", list(SYMBOLS), {"macro_features": []})
    assert proxies.extra_inputs == ()  # nothing beside the closes by default


def test_the_backtest_joins_the_series_and_asks_for_them(
    prices: pd.DataFrame, macro: pd.DataFrame
) -> None:
    start = prices.index[300]
    result = run_backtest(prices, _strategy("hmm"), start=start, macro=macro)
    direct = quiet_signals(_strategy("hmm"), join_macro(prices, macro))[300:]
    expected = pd.DataFrame(
        [[s.weights[x] for x in SYMBOLS] for s in direct], index=prices.index[300:]
    )
    np.testing.assert_array_equal(
        result.strategy.weights[list(SYMBOLS)].to_numpy(), expected.to_numpy()
    )
    with pytest.raises(ValueError, match=r"reads \['VIX'.*give the macro series"):
        run_backtest(prices, _strategy("hmm"), start=start)

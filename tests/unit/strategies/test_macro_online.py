"""The online macro proxies: the batch proxies' values, causal, and an exact restore."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.macro import ProxySpec, proxy_signals
from regime_trader.strategies.macro_online import MACRO_SIGNALS, MacroProxyEngine
from regime_trader.strategies.state import StrategyState

SYMBOLS = ["SPY", "IEF", "TLT", "SHY", "GLD"]


def _closes(n: int = 160, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, [0.012, 0.004, 0.009, 0.001, 0.008], size=(n, len(SYMBOLS)))
    index = pd.bdate_range("2011-01-03", periods=n)
    return pd.DataFrame(100 * np.exp(np.cumsum(steps, axis=0)), index=index, columns=SYMBOLS)


def _rows(engine: MacroProxyEngine, closes: pd.DataFrame) -> np.ndarray:
    return np.array([engine.update(row) for row in closes.to_numpy()])


def test_the_online_rows_are_the_batch_proxies() -> None:
    closes = _closes()
    spec = ProxySpec(vol_window=10, curve_window=20, change_window=3)
    online = _rows(MacroProxyEngine(SYMBOLS, MACRO_SIGNALS, spec), closes)
    batch = proxy_signals(closes, spec).loc[:, list(MACRO_SIGNALS)].to_numpy()
    assert np.array_equal(np.isnan(online), np.isnan(batch))  # the same warm-up
    defined = ~np.isnan(batch)
    assert defined.sum() > 400
    np.testing.assert_allclose(online[defined], batch[defined], rtol=1e-12, atol=1e-14)


def test_a_signal_needs_only_its_own_etfs() -> None:
    engine = MacroProxyEngine(["SPXTR", "TLT", "GLD"], ["vix"], ProxySpec(equity="SPXTR"))
    assert engine.names == ["macro_vix"]
    with pytest.raises(ValueError, match=r"'curve_10y2y' needs \['SHY', 'IEF'\]"):
        MacroProxyEngine(["SPXTR", "TLT", "GLD"], ["curve_10y2y"], ProxySpec(equity="SPXTR"))
    with pytest.raises(ValueError, match="macro signals must be some of"):
        MacroProxyEngine(SYMBOLS, ["vvix"])


def test_rows_up_to_t_ignore_later_bars_and_a_restore_continues_exactly() -> None:
    closes = _closes()
    full = _rows(MacroProxyEngine(SYMBOLS, MACRO_SIGNALS), closes)
    later = closes.copy()
    later.iloc[100:] *= 1.3
    np.testing.assert_array_equal(
        _rows(MacroProxyEngine(SYMBOLS, MACRO_SIGNALS), later)[:100], full[:100]
    )
    live = MacroProxyEngine(SYMBOLS, ["vix_change", "curve_10y3m"])
    _rows(live, closes.iloc[:90])
    saved = StrategyState.from_bytes(StrategyState(live.state_dict()).to_bytes())
    restored = MacroProxyEngine.from_state(saved.tree)
    np.testing.assert_array_equal(_rows(restored, closes.iloc[90:]), _rows(live, closes.iloc[90:]))
    as_json = json.loads(json.dumps(live.state_dict(), default=lambda a: a.tolist()))
    assert as_json["signals"] == ["vix_change", "curve_10y3m"]

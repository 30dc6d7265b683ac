"""Macro signals and their ETF proxies: causal, exact on known inputs, close to the true series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regime_trader.strategies.macro import (
    ProxySpec,
    macro_signals,
    proxy_correlations,
    proxy_signals,
)

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


def _closes(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2012-01-02", periods=n)
    steps = rng.normal(0.0, 0.01, size=(n, 4))
    return pd.DataFrame(
        100 * np.exp(np.cumsum(steps, axis=0)), index=index, columns=["SPY", "IEF", "TLT", "SHY"]
    )


def _macro(n: int = 200, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2012-01-02", periods=n)
    return pd.DataFrame(
        {
            "VIX": 15 + np.cumsum(rng.normal(0, 0.5, n)),
            "SPREAD_10Y2Y": 1 + np.cumsum(rng.normal(0, 0.02, n)),
            "SPREAD_10Y3M": 1.5 + np.cumsum(rng.normal(0, 0.02, n)),
        },
        index=index,
    )


def test_a_proxy_of_day_t_is_the_same_whatever_comes_after_it() -> None:
    closes = _closes()
    full = proxy_signals(closes)
    for t in (70, 120, 199):
        cut = proxy_signals(closes.iloc[: t + 1])
        pd.testing.assert_frame_equal(cut, full.iloc[: t + 1], check_exact=True)
        later = closes.copy()
        later.iloc[t + 1 :] *= 1.5  # a different future
        pd.testing.assert_frame_equal(
            proxy_signals(later).iloc[: t + 1], full.iloc[: t + 1], check_exact=True
        )


def test_a_true_signal_of_day_t_is_the_same_whatever_comes_after_it() -> None:
    macro = _macro()
    full = macro_signals(macro)
    later = macro.copy()
    later.iloc[101:] += 3.0
    pd.testing.assert_frame_equal(
        macro_signals(later).iloc[:101], full.iloc[:101], check_exact=True
    )


def test_the_vix_proxy_is_the_annualised_volatility_in_percent() -> None:
    n, step = 60, 0.01
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    index = pd.bdate_range("2015-01-02", periods=n)
    spy = 100 * np.exp(np.cumsum(step * signs))
    flat = np.full(n, 50.0)
    closes = pd.DataFrame({"SPY": spy, "IEF": flat, "TLT": flat, "SHY": flat}, index=index)
    vix = proxy_signals(closes, ProxySpec(vol_window=21))["vix"]
    assert vix.iloc[:21].isna().all()  # 21 returns need 22 closes
    assert vix.iloc[21:].to_numpy() == pytest.approx(100 * step * math.sqrt(252), rel=1e-12)


def test_the_curve_proxy_rises_when_the_long_bond_lags_the_short_one() -> None:
    n = 80
    index = pd.bdate_range("2015-01-02", periods=n)
    falling = 100 * np.exp(-0.001 * np.arange(n))  # long yields rising: the price falls
    flat = np.full(n, 50.0)
    closes = pd.DataFrame({"SPY": flat, "IEF": falling, "TLT": falling**2 / 100, "SHY": flat})
    closes.index = index
    got = proxy_signals(closes, ProxySpec(curve_window=10)).dropna()
    assert got["curve_10y2y"].to_numpy() == pytest.approx(0.01, rel=1e-9)
    assert got["curve_10y3m"].to_numpy() == pytest.approx(0.02, rel=1e-9)


def test_missing_inputs_and_bad_prices_are_refused_by_name() -> None:
    closes = _closes()
    with pytest.raises(ValueError, match=r"need closes of \['TLT'\]"):
        proxy_signals(closes.drop(columns="TLT"))
    bad = closes.copy()
    bad.iloc[5, 1] = 0.0
    with pytest.raises(ValueError, match="positive finite"):
        proxy_signals(bad)
    with pytest.raises(ValueError, match="SPREAD_10Y3M"):
        macro_signals(_macro().drop(columns="SPREAD_10Y3M"))
    with pytest.raises(ValueError, match="at least 2"):
        ProxySpec(curve_window=1)


def test_the_proxies_follow_the_true_series_on_the_development_window() -> None:
    prices, macro = DATA / "multiasset13_2007_2019.csv", DATA / "macro_vix_ust_1990_2019.csv"
    if not (prices.is_file() and macro.is_file()):
        pytest.skip("needs ../shared/data")
    closes = pd.read_csv(prices, index_col=0, parse_dates=True)
    series = pd.read_csv(macro, index_col=0, parse_dates=True)
    rows = {r.signal: r for r in proxy_correlations(closes, series, "2008-01-01", "2015-12-31")}
    # The sign is the point: a proxy with the wrong sign (or a look-ahead shift) would fail.
    assert rows["vix"].daily > 0.8
    assert rows["curve_10y2y"].independent > 0.4 and rows["curve_10y3m"].independent > 0.4
    for r in rows.values():
        assert r.low <= r.independent <= r.high and r.n_independent < r.n_daily

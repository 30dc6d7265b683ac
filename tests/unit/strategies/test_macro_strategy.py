"""Macro signals as regime-engine inputs: for every engine, causal, deterministic, restorable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.synthetic import generate_market
from tests.unit.strategies.engines import ENGINES, engine_params, quiet_signals

SYMBOLS = ("SPY", "IEF", "SHY")  # the VIX proxy's equity and the 10y-2y curve's two ETFs
MACRO = {"macro_features": ["vix", "curve_10y2y"], "bond_symbol": "IEF"}


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_market(520, SYMBOLS, seed=21).prices


def _strategy(engine: str) -> RegimeERC:
    strategy = build_strategy("regime_erc", list(SYMBOLS), engine_params(engine, **MACRO))
    assert isinstance(strategy, RegimeERC)
    return strategy


@pytest.mark.parametrize("engine", ENGINES)
def test_the_model_sees_the_macro_signals_causally_and_restores_exactly(
    engine: str, prices: pd.DataFrame
) -> None:
    full = quiet_signals(_strategy(engine), prices)
    assert sum(s.ready for s in full) > 100
    ready = next(s for s in full if s.ready)
    assert ready.date >= prices.index[63]  # the 63-session curve window is part of the warm-up
    later = prices.copy()
    later.iloc[400:] *= 1.2
    cut = quiet_signals(_strategy(engine), later)
    assert [s.to_dict() for s in cut[:400]] == [s.to_dict() for s in full[:400]]
    live = _strategy(engine)
    quiet_signals(live, prices.iloc[:380])
    state = live.state_dict()
    assert state["macro"]["signals"] == ["vix", "curve_10y2y"]
    restored = strategy_from_state(json.loads(json.dumps(state)))
    rest = prices.iloc[380:]
    assert [s.to_dict() for s in quiet_signals(restored, rest)] == [
        s.to_dict() for s in quiet_signals(live, rest)
    ]


def test_the_macro_columns_change_what_the_hmm_fits(prices: pd.DataFrame) -> None:
    with_macro = _strategy("hmm")
    without = build_strategy("regime_erc", list(SYMBOLS), engine_params("hmm", bond_symbol="IEF"))
    assert isinstance(without, RegimeERC)
    quiet_signals(with_macro, prices.iloc[:380])
    quiet_signals(without, prices.iloc[:380])
    fitted = [s._source.tracker.params for s in (with_macro, without)]
    assert fitted[0] is not None and fitted[1] is not None
    assert fitted[0].means.shape[1] == fitted[1].means.shape[1] + 2
    assert "macro" not in without.state_dict()  # without macro signals the state is as it was


def test_a_macro_signal_without_its_etfs_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match=r"'curve_10y3m' needs \['TLT'\]"):
        build_strategy("regime_erc", list(SYMBOLS), {"macro_features": ["curve_10y3m"]})
    with pytest.raises(ValueError, match="macro_features"):
        build_strategy("regime_erc", list(SYMBOLS), {"macro_features": ["vvix"]})


def test_a_research_space_can_choose_the_macro_features() -> None:
    from regime_trader.service.research_space import parse_space

    space = parse_space(
        'strategy = "regime_erc"\n'
        '[fixed]\nbond_symbol = "IEF"\n'
        "[[parameter]]\n"
        'path = "macro_features"\n'
        'choice = { none = [], vix = ["vix"], vix_curve = ["vix", "curve_10y2y"] }\n'
    )
    space.check(list(SYMBOLS))  # every choice builds the strategy on this universe
    chosen = space.overrides({"macro_features": "vix_curve"})
    assert chosen["macro_features"] == ("vix", "curve_10y2y")
    strategy = build_strategy("regime_erc", list(SYMBOLS), chosen)
    assert isinstance(strategy, RegimeERC) and strategy._source.macro is not None

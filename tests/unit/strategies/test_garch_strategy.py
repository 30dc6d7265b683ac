"""The regime strategy with a GARCH covariance: selectable, causal, deterministic, restorable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import build_strategy, strategy_from_state
from regime_trader.strategies.state import StrategyState
from tests.unit.strategies.engines import EVERY_OPTION, quiet_signals, regime_erc

SYMBOLS = ["SPY", "TLT", "GLD"]


def test_a_portfolios_table_selects_the_model_and_its_calendar() -> None:
    table = {"covariance": "gjr", "garch": {"refit_months": 3, "min_train_obs": 300}}
    params = RegimeERCParams.from_dict(table)
    assert params.covariance == "gjr" and params.garch.refit_months == 3
    assert RegimeERCParams.from_dict(params.to_dict()) == params
    assert RegimeERCParams().covariance == "ewma"  # the default is unchanged
    strategy = build_strategy("regime_erc", SYMBOLS, table)
    assert isinstance(strategy, RegimeERC) and strategy.settings()["covariance"] == "gjr"
    with pytest.raises(ValueError, match="covariance must be one of"):
        RegimeERCParams.from_dict({"covariance": "egarch"})
    with pytest.raises(ValueError, match="garch: need 50 <= min_train_obs"):
        RegimeERCParams.from_dict({"garch": {"min_train_obs": 10}})


def test_restored_strategy_gives_exactly_the_same_next_signals(
    synthetic_prices: pd.DataFrame,
) -> None:
    # GJR's recursion is GARCH's plus the asymmetric term: one model covers both code paths.
    covariance = "gjr"
    cut = 400  # after the first GARCH fit (250 returns) and the first regime fit
    live = regime_erc(SYMBOLS, "hmm", covariance=covariance, **EVERY_OPTION)
    quiet_signals(live, synthetic_prices.iloc[:cut])
    from_json = strategy_from_state(json.loads(json.dumps(live.state_dict(), allow_nan=False)))
    compact = StrategyState.from_bytes(live.save_state().to_bytes())
    from_bytes = strategy_from_state(compact)
    rest = synthetic_prices.iloc[cut:]
    expected = [s.to_dict() for s in quiet_signals(live, rest)]
    for restored in (from_json, from_bytes):
        assert [s.to_dict() for s in quiet_signals(restored, rest)] == expected
        assert json.dumps(restored.state_dict()) == json.dumps(live.state_dict())
    fits = [s["diagnostics"]["covariance"]["n_fits"] for s in expected if s["ready"]]
    assert fits[-1] - fits[0] >= 5  # monthly refits after the restore
    assert {s["diagnostics"]["covariance"]["model"] for s in expected if s["ready"]} == {covariance}


def test_the_garch_covariance_changes_the_decisions_and_ewma_keeps_its_state(
    synthetic_prices: pd.DataFrame,
) -> None:
    prices = synthetic_prices.iloc[:450]
    ewma = quiet_signals(RegimeERC(SYMBOLS), prices)
    assert "garch" not in RegimeERC(SYMBOLS).state_dict()
    assert all("covariance" not in s.diagnostics for s in ewma)
    garch = quiet_signals(RegimeERC(SYMBOLS, RegimeERCParams(covariance="garch")), prices)
    ready = [(a, b) for a, b in zip(ewma, garch, strict=True) if a.ready]
    assert ready and all(b.ready for _, b in ready)
    differ = [a.weights != b.weights for a, b in ready]
    assert all(differ)
    assert ready[-1][1].diagnostics["covariance"]["fallback"] == []


def _weights(covariance: str, prices: pd.DataFrame) -> pd.DataFrame:
    signals = quiet_signals(regime_erc(SYMBOLS, "hmm", covariance=covariance), prices)
    return pd.DataFrame([s.weights for s in signals], index=prices.index)


@pytest.mark.slow
def test_decisions_are_causal_and_deterministic(synthetic_prices: pd.DataFrame) -> None:
    prices = synthetic_prices.iloc[:560]
    full = _weights("garch", prices)
    assert (full.iloc[-100:].sum(axis=1) > 0).all()  # ready and invested: the GARCH path ran
    pd.testing.assert_frame_equal(_weights("garch", prices), full)  # the same bits again
    cut = 451  # after the first fits and a few monthly refits
    pd.testing.assert_frame_equal(_weights("garch", prices.iloc[: cut + 1]), full.iloc[: cut + 1])


def test_a_research_space_can_choose_the_covariance_and_fix_its_calendar() -> None:
    from regime_trader.service.research_space import parse_space

    space = parse_space(
        'strategy = "regime_erc"\n'
        "[fixed]\n"
        "garch = { refit_months = 3 }\n"
        "[[parameter]]\n"
        'path = "covariance"\n'
        'choice = ["ewma", "garch", "gjr"]\n'
    )
    space.check(SYMBOLS)  # every choice builds the strategy
    params = RegimeERCParams.from_dict(space.overrides({"covariance": "gjr"}))
    assert params.covariance == "gjr" and params.garch.refit_months == 3

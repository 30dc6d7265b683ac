"""The regime engines every strategy-level property is checked for, and their test settings.

The HMM runs with its defaults (the shipped strategy). The jump engines run with fewer seeded
starts (3 on the first fit, 1 beside the warm start at each refit) so that a walk-forward over
a few hundred bars takes seconds: the properties checked (causality, determinism, restore) are
properties of the code path, which these settings exercise in full (first fit, monthly refits,
the online DP, the per-regime covariances).
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from regime_trader.strategies.base import Signal, Strategy
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import STRATEGIES

ENGINES = ("hmm", "jump", "sparse_jump")

_FAST_JUMP = {"n_init": 3, "refit_cold_starts": 1}


def engine_params(engine: str, **overrides: Any) -> dict[str, Any]:
    """``strategy_params`` selecting ``engine`` (jump engines with few starts) plus overrides."""
    params: dict[str, Any] = {"engine": engine}
    if engine != "hmm":
        params["jump"] = {**_FAST_JUMP, **overrides.pop("jump", {})}
    return {**params, **overrides}


def regime_erc(symbols: list[str], engine: str, **overrides: Any) -> RegimeERC:
    """A fresh regime strategy on ``engine``."""
    return RegimeERC(symbols, RegimeERCParams.from_dict(engine_params(engine, **overrides)))


# Every option of the regime strategy engaged: the relative volatility target and both bands.
EVERY_OPTION: dict[str, Any] = {
    "policy": {"vol_target_mode": "relative", "vol_median_days": 40},
    "rebalance": {"weight_band": 0.01, "exposure_band": 0.02},
}


def registered_case(case: str, symbols: list[str]) -> Strategy:
    """A registered strategy by name, or ``regime_erc/<engine>`` (``regime_erc-<engine>`` in a
    file name) with :data:`EVERY_OPTION` engaged."""
    name, _, engine = case.replace("-", "/").partition("/")
    if not engine:
        return STRATEGIES[name](symbols)
    return regime_erc(symbols, engine, **EVERY_OPTION)


def quiet_signals(strategy: Strategy, prices: pd.DataFrame) -> list[Signal]:
    """The signal of every bar, the fit warnings of short test windows silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(strategy.iter_update(prices))

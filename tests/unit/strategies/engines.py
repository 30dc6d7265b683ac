"""The regime engines every strategy-level property is checked for, and their test settings.

The HMM runs with its defaults (the shipped strategy). The jump engines run with fewer seeded
starts (3 on the first fit, 1 beside the warm start at each refit) so that a walk-forward over
a few hundred bars takes seconds: the properties checked (causality, determinism, restore) are
properties of the code path, which these settings exercise in full (first fit, monthly refits,
the online DP, the per-regime covariances).
"""

from __future__ import annotations

from typing import Any

from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams

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

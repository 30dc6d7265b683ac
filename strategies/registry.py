"""Strategies by name, and restoring any of them from its saved state."""

from __future__ import annotations

from typing import Any

from strategies.base import Strategy
from strategies.reference import BuyHold, EqualWeight, SixtyForty, StaticERC
from strategies.regime_erc import RegimeERC

__all__ = ["BENCHMARKS", "STRATEGIES", "strategy_from_state"]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RegimeERC, StaticERC, EqualWeight, SixtyForty, BuyHold)
}

# The benchmarks a backtest reports, in the order of metrics.json.
BENCHMARKS: tuple[str, ...] = ("erc_static", "equal_weight", "sixty_forty", "buy_hold")


def strategy_from_state(state: dict[str, Any]) -> Strategy:
    """Rebuild whichever strategy ``state`` was saved from.

    Raises
    ------
    ValueError
        If the state names no known strategy.
    """
    name = state.get("strategy")
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} in state; known: {sorted(STRATEGIES)}")
    return STRATEGIES[str(name)].from_state(state)

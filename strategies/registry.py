"""Strategies by name: building one from configuration, and restoring one from its state.

The only place strategies are constructed: the service passes a name, a universe and the
parameter overrides from its configuration, and gets a validated :class:`Strategy` back, so
no caller outside this package branches on a strategy's internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from regime_trader.strategies.base import Strategy
from regime_trader.strategies.reference import BuyHold, EqualWeight, SixtyForty, StaticERC
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams

__all__ = ["BENCHMARKS", "STRATEGIES", "build_strategy", "strategy_from_state"]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RegimeERC, StaticERC, EqualWeight, SixtyForty, BuyHold)
}

# The benchmarks a backtest reports, in the order of metrics.json.
BENCHMARKS: tuple[str, ...] = ("erc_static", "equal_weight", "sixty_forty", "buy_hold")


def build_strategy(name: str, symbols: Sequence[str], params: Mapping[str, Any]) -> Strategy:
    """Return a fresh strategy built from configuration.

    Parameters
    ----------
    name : str
        A key of :data:`STRATEGIES`.
    symbols : sequence of str
        The universe, in the column order of the bars.
    params : mapping
        Overrides: for ``regime_erc`` any field of :class:`RegimeERCParams` (nested tables
        for ``features``, ``regime``, ``jump_feature_spec``, ``jump``, ``policy`` and
        ``rebalance``); for ``erc_static`` its keyword arguments; nothing for the
        fixed-weight strategies.

    Returns
    -------
    Strategy
        Not yet updated on any bar.

    Raises
    ------
    ValueError
        For an unknown strategy or parameter, or a parameter out of range.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    if name == RegimeERC.name:
        # Fields left out keep their defaults, nested tables field by field.
        return RegimeERC(symbols, RegimeERCParams.from_dict(params))
    if name == StaticERC.name:
        return StaticERC(symbols, **dict(params))
    if params:
        raise ValueError(f"strategy {name!r} takes no parameters, got {sorted(params)}")
    return STRATEGIES[name](symbols)


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

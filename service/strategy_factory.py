"""Build a strategy from its name, universe and parameter overrides (from configuration)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strategies.base import Strategy
from strategies.reference import StaticERC
from strategies.regime_erc import RegimeERC, RegimeERCParams
from strategies.registry import STRATEGIES

__all__ = ["build_strategy"]


def _merge(base: dict[str, Any], overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if key not in base:
            raise ValueError(f"unknown parameter {where}{key!r}; known: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            merged[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            merged[key] = value
    return merged


def build_strategy(name: str, symbols: Sequence[str], params: Mapping[str, Any]) -> Strategy:
    """A fresh strategy.

    Parameters
    ----------
    name : str
        A key of :data:`strategies.registry.STRATEGIES`.
    symbols : sequence of str
    params : mapping
        Overrides: for ``regime_erc`` any field of :class:`RegimeERCParams` (nested tables
        for ``features``, ``regime`` and ``policy``); for ``erc_static`` its keyword
        arguments; nothing for the fixed-weight strategies.

    Raises
    ------
    ValueError
        For an unknown strategy or parameter, or a parameter out of range.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    if name == "regime_erc":
        merged = _merge(RegimeERCParams().to_dict(), params, "")
        return RegimeERC(symbols, RegimeERCParams.from_dict(merged))
    if name == "erc_static":
        return StaticERC(symbols, **dict(params))
    if params:
        raise ValueError(f"strategy {name!r} takes no parameters, got {sorted(params)}")
    return STRATEGIES[name](symbols)

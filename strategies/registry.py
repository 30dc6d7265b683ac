"""Strategies by name: building one from configuration, and restoring one from its state.

The only place strategies are constructed: the service passes a name, a universe and the
parameter overrides from its configuration, and gets a validated :class:`Strategy` back, so
no caller outside this package branches on a strategy's internals.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from regime_trader.strategies.base import Strategy
from regime_trader.strategies.state import StrategyState

__all__ = [
    "BENCHMARKS",
    "STRATEGIES",
    "build_benchmarks",
    "build_strategy",
    "strategy_from_state",
    "upgrade_state",
]

# Each strategy's module and class: imported the first time the strategy is asked for, so a
# service trading static ERC never loads the regime, Black-Litterman or sleeve machinery.
_WHERE: dict[str, tuple[str, str]] = {
    "regime_erc": ("regime_erc", "RegimeERC"),
    "erc_static": ("reference", "StaticERC"),
    "inverse_vol": ("reference", "InverseVolatility"),
    "equal_weight": ("reference", "EqualWeight"),
    "equal_weight_quarterly": ("reference", "EqualWeightQuarterly"),
    "sixty_forty": ("reference", "SixtyForty"),
    "buy_hold": ("reference", "BuyHold"),
    "bl_regime": ("bl_regime", "BlackLittermanRegime"),
    "erc_sleeve": ("sleeve_erc", "SleeveERC"),
}


class _Strategies(Mapping[str, type[Strategy]]):
    """Strategy classes by name, each imported on first use."""

    def __getitem__(self, name: str) -> type[Strategy]:
        module, attribute = _WHERE[name]
        found = getattr(importlib.import_module(f"regime_trader.strategies.{module}"), attribute)
        if not (isinstance(found, type) and issubclass(found, Strategy) and found.name == name):
            raise TypeError(f"{module}.{attribute} is not the strategy {name!r}")
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)


STRATEGIES: Mapping[str, type[Strategy]] = _Strategies()

# The benchmarks a backtest reports, in the order of metrics.json (the backtest adds static ERC
# scaled to the strategy's volatility, "erc_static_vol_matched", after "erc_static").
BENCHMARKS: tuple[str, ...] = (
    "erc_static",
    "inverse_vol",
    "equal_weight",
    "equal_weight_quarterly",
    "sixty_forty",
    "buy_hold",
)


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
        for ``features``, ``regime``, ``jump_feature_spec``, ``jump``, ``policy``,
        ``rebalance`` and ``garch``); for ``erc_static`` and ``inverse_vol`` their keyword
        arguments; for ``sixty_forty`` and ``buy_hold`` ``equity_symbol`` and ``bond_symbol``; for
        ``bl_regime`` any field of :class:`BlackLittermanParams` (the regime machinery in the
        nested ``regimes`` table); for ``erc_sleeve`` any field of :class:`SleeveERCParams`
        (``sleeve_symbols``, ``risk_budgets``, the nested ``momentum`` table); nothing for
        the others.

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
    return STRATEGIES[name].from_params(symbols, params)


def build_benchmarks(
    symbols: Sequence[str], strategy_params: Mapping[str, Any] | None = None
) -> dict[str, Strategy]:
    """Fresh benchmarks of :data:`BENCHMARKS` for ``symbols``, in that order.

    Parameters
    ----------
    symbols : sequence of str
    strategy_params : mapping, optional
        The strategy's parameters: its ``equity_symbol`` and ``bond_symbol`` (when set, at the
        top or in a nested ``regimes`` table) are the equity and bond of 60/40 and
        buy-and-hold, so every path agrees on them.
    """
    given = dict(strategy_params or {})
    # bl_regime nests its regime strategy's parameters (the equity and bond among them).
    nested = given.get("regimes")
    if isinstance(nested, Mapping):
        given = {**nested, **given}
    pair = {k: given[k] for k in ("equity_symbol", "bond_symbol") if given.get(k) is not None}
    out: dict[str, Strategy] = {}
    for name in BENCHMARKS:
        wants_pair = name in ("sixty_forty", "buy_hold")
        out[name] = build_strategy(name, symbols, pair if wants_pair else {})
    return out


def strategy_from_state(state: Mapping[str, Any] | StrategyState) -> Strategy:
    """Rebuild whichever strategy ``state`` was saved from.

    Parameters
    ----------
    state : StrategyState or mapping
        :meth:`Strategy.save_state`'s compact form, or a JSON document of
        :meth:`Strategy.state_dict` (any readable version, the first release's included).

    Raises
    ------
    ValueError
        If the state names no known strategy.
    """
    tree = state.tree if isinstance(state, StrategyState) else state
    name = tree.get("strategy")
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} in state; known: {sorted(STRATEGIES)}")
    return STRATEGIES[str(name)].from_state(state)


def upgrade_state(document: Mapping[str, Any]) -> StrategyState:
    """The compact form of a JSON state document of any readable version (the migration).

    The strategy is rebuilt from the document and saved again, so the compact state gives
    the same next signal as the document, bit for bit.
    """
    return strategy_from_state(document).save_state()

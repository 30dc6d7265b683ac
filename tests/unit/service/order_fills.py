"""Filling a plan on paper: the tests' independent check of what a plan does to an account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from regime_trader.service.orders import AccountSnapshot, OrderPlan, PlanningError

D = Decimal


@dataclass(frozen=True)
class SimulatedAccount:
    """The account after filling a plan at the snapshot's prices (see `weights_after`)."""

    positions: Mapping[str, Decimal]
    cash: Decimal
    equity: Decimal
    weights: Mapping[str, Decimal]


def _price(snapshot: AccountSnapshot, symbol: str) -> Decimal:
    price = snapshot.prices.get(symbol)
    if price is None or not price.is_finite() or price <= 0:
        raise PlanningError(f"missing, non-finite or non-positive price for {symbol}: {price!r}")
    return price


def weights_after(plan: OrderPlan, snapshot: AccountSnapshot) -> SimulatedAccount:
    """Fill every order of ``plan`` at the snapshot's prices and return the resulting account.

    The tests' independent check of a plan: equity is marked to market (cash plus positions at
    the given prices), so it equals the snapshot's equity when that was marked at the same
    prices. Raises PlanningError if a sell exceeds the held quantity or equity ends <= 0.
    """
    positions = dict(snapshot.positions)
    cash = snapshot.cash
    for order in plan.orders:
        signed = order.qty if order.side == "buy" else -order.qty
        positions[order.symbol] = positions.get(order.symbol, D(0)) + signed
        cash -= signed * _price(snapshot, order.symbol)
    positions = {sym: qty for sym, qty in positions.items() if qty != 0}
    if short := sorted(sym for sym, qty in positions.items() if qty < 0):
        raise PlanningError(f"plan sells more than is held of {', '.join(short)}")
    values = {sym: qty * _price(snapshot, sym) for sym, qty in positions.items()}
    equity = cash + sum(values.values(), D(0))
    if equity <= 0:
        raise PlanningError(f"equity after the plan must be > 0, got {equity}")
    weights = {sym: value / equity for sym, value in values.items()}
    return SimulatedAccount(positions, cash, equity, weights)

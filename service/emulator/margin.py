"""Buying power of a cash or Reg T margin account, by Alpaca's documented formulas.

Alpaca's account ``buying_power`` is:

- multiplier 1 (cash account): cash;
- multiplier 2 (Reg T margin, Alpaca paper's default): ``max(equity - initial_margin, 0) x 2``;
- multiplier 4 (pattern day trader): ``(last_equity - last_maintenance_margin) x 4``.

The emulator takes the initial margin of a long position as 50 % of its market value and the
maintenance margin as 30 % (Alpaca's figures for plain ETFs); a cash account's margins are the
full value. Open buy orders hold their cost, so every buying power here is net of them.
``non_marginable_buying_power`` is the cash not borrowed and not held by open buys: what a buy
may spend without a loan (the service sizes buys from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["INITIAL_MARGIN", "MAINTENANCE_MARGIN", "Balances", "balances"]

INITIAL_MARGIN = Decimal("0.5")
MAINTENANCE_MARGIN = Decimal("0.3")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Balances:
    """The account's buying-power figures, in dollars (not rounded)."""

    buying_power: Decimal
    regt_buying_power: Decimal
    daytrading_buying_power: Decimal
    non_marginable_buying_power: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    last_maintenance_margin: Decimal


def balances(
    *,
    cash: Decimal,
    long_value: Decimal,
    last_equity: Decimal,
    last_long_value: Decimal,
    reserved: Decimal,
    multiplier: int,
) -> Balances:
    """Return the buying-power figures of an account.

    Parameters
    ----------
    cash : Decimal
        Cash balance (negative when a margin account borrows).
    long_value, last_long_value : Decimal
        Market value of the positions now and at the last close.
    last_equity : Decimal
        Equity at the last close.
    reserved : Decimal
        Cost held by open buy orders.
    multiplier : int
        1, 2 or 4.
    """
    if multiplier == 1:  # a cash account: margins are the full value, nothing is borrowed
        initial, maintenance, last_maintenance = long_value, long_value, last_long_value
        regt = cash - reserved
    else:
        initial = long_value * INITIAL_MARGIN
        maintenance = long_value * MAINTENANCE_MARGIN
        last_maintenance = last_long_value * MAINTENANCE_MARGIN
        regt = max(max(cash + long_value - initial, _ZERO) * 2 - reserved, _ZERO)
    daytrading = _ZERO
    if multiplier == 4:
        daytrading = max(max(last_equity - last_maintenance, _ZERO) * 4 - reserved, _ZERO)
    return Balances(
        buying_power=daytrading if multiplier == 4 else regt,
        regt_buying_power=regt,
        daytrading_buying_power=daytrading,
        non_marginable_buying_power=max(cash - reserved, _ZERO),
        initial_margin=initial,
        maintenance_margin=maintenance,
        last_maintenance_margin=last_maintenance,
    )

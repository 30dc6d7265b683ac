"""Which orders the emulator takes, and what a buy holds until it fills (pure functions)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from regime_trader.service.emulator.records import (
    BUY_COLLAR,
    CENT,
    CODE_UNPROCESSABLE,
    Asset,
    ExchangeError,
    OrderRequest,
    is_fractional,
    request_qty,
)

__all__ = ["buy_hold", "check_kind"]


def check_kind(request: OrderRequest, asset: Asset) -> None:
    """Refuse (422) an order kind the emulator or Alpaca does not take for ``asset``."""
    if request.notional is not None or is_fractional(request.qty):
        if not asset.fractionable:
            raise ExchangeError(
                422, CODE_UNPROCESSABLE, f"asset {asset.symbol} is not fractionable"
            )
        if request.type != "market":
            raise ExchangeError(422, CODE_UNPROCESSABLE, "fractional orders must be market orders")
        if request.time_in_force != "day":
            raise ExchangeError(422, CODE_UNPROCESSABLE, "fractional orders must be DAY orders")
    if request.type != "market":
        raise ExchangeError(
            422,
            CODE_UNPROCESSABLE,
            f'order type "{request.type}" is not supported by the emulator (market only)',
        )
    if request.time_in_force != "day":
        raise ExchangeError(
            422,
            CODE_UNPROCESSABLE,
            f'time_in_force "{request.time_in_force}" is not supported by the emulator (day only)',
        )
    if request.extended_hours:
        raise ExchangeError(
            422, CODE_UNPROCESSABLE, "extended hours orders are not supported by the emulator"
        )


def buy_hold(request: OrderRequest, price: Decimal, is_open: bool) -> Decimal:
    """Return the dollars a buy holds until it fills: its notional, or its value at ``price``
    (plus the 3 % collar while the market is closed: the fill price is unknown)."""
    if request.notional is not None:
        return request.notional
    value = request_qty(request) * price
    if not is_open:
        value *= 1 + BUY_COLLAR
    return value.quantize(CENT, rounding=ROUND_CEILING)

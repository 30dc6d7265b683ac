"""Alpaca's JSON shapes for the emulator's objects (pure functions, no I/O).

Field names and types follow what alpaca-py 0.44 parses (``alpaca.trading.models`` and
``alpaca.data.models``): money and quantities are strings, order timestamps are RFC 3339 in UTC
with a ``Z``, clock timestamps carry the New York offset, calendar times are ``HH:MM``, bars use
the short keys ``t o h l c v n vw``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from regime_trader.service.emulator.clock import NEW_YORK, Session
from regime_trader.service.emulator.exchange import Exchange
from regime_trader.service.emulator.market import Bar
from regime_trader.service.emulator.records import Asset, MarketView, Order, Position, money

__all__ = [
    "account_id",
    "account_json",
    "asset_id",
    "asset_json",
    "bar_json",
    "calendar_json",
    "clock_json",
    "fmt_money",
    "fmt_qty",
    "order_json",
    "position_json",
    "utc_text",
]

_NAMESPACE = uuid.UUID("6f1c4a52-5d0e-4d8c-9a3e-2b7f1f0e9a11")


def asset_id(symbol: str) -> str:
    """Return the stable asset id of ``symbol``."""
    return str(uuid.uuid5(_NAMESPACE, f"asset:{symbol}"))


def account_id(key_id: str) -> str:
    """Return the stable account id of an API key."""
    return str(uuid.uuid5(_NAMESPACE, f"account:{key_id}"))


def fmt_money(x: Decimal) -> str:
    """Format dollars with 2 to 9 decimals (``"100000.00"``, ``"101.123456789"``)."""
    x = x.quantize(Decimal("0.000000001"))
    if x == x.quantize(Decimal("0.01")):
        return f"{x.quantize(Decimal('0.01')):f}"
    return f"{x.normalize():f}"


def fmt_qty(x: Decimal) -> str:
    """Format a quantity without trailing zeros (``"10"``, ``"0.5"``)."""
    if x == 0:
        return "0"
    return f"{x.normalize():f}"


def utc_text(t: datetime | None) -> str | None:
    """Format an instant as RFC 3339 UTC with microseconds and ``Z``."""
    if t is None:
        return None
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ny_text(t: datetime) -> str:
    return t.astimezone(NEW_YORK).isoformat()


def order_json(order: Order) -> dict[str, Any]:
    """Return an order as Alpaca's Order object."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": utc_text(order.submitted_at),
        "updated_at": utc_text(order.updated_at),
        "submitted_at": utc_text(order.submitted_at),
        "filled_at": utc_text(order.filled_at),
        "expired_at": utc_text(order.expired_at),
        "expires_at": utc_text(order.expires_at),
        "canceled_at": utc_text(order.canceled_at),
        "failed_at": utc_text(order.failed_at),
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None if order.notional is None else fmt_money(order.notional),
        "qty": None if order.qty is None else fmt_qty(order.qty),
        "filled_qty": fmt_qty(order.filled_qty),
        "filled_avg_price": (
            None if order.filled_avg_price is None else fmt_money(order.filled_avg_price)
        ),
        "order_class": "simple",
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": "buy_to_open" if order.side == "buy" else "sell_to_close",
        "time_in_force": order.time_in_force,
        "limit_price": None,
        "stop_price": None,
        "status": order.status,
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "subtag": None,
        "source": None,
    }


def position_json(
    position: Position, asset: Asset, view: MarketView, held_for_orders: Decimal
) -> dict[str, Any]:
    """Return a position as Alpaca's Position object, valued at ``view``; ``qty_available``
    excludes the shares held by open sell orders."""
    price = view.price(position.symbol)
    lastday = view.lastday_price(position.symbol)
    market_value = money(position.qty * price)
    lastday_value = money(position.qty * lastday)
    pl = market_value - position.cost_basis
    intraday = market_value - lastday_value
    return {
        "asset_id": asset.id,
        "symbol": position.symbol,
        "exchange": asset.exchange,
        "asset_class": "us_equity",
        "asset_marginable": False,
        "qty": fmt_qty(position.qty),
        "qty_available": fmt_qty(position.qty - held_for_orders),
        "avg_entry_price": fmt_money(position.avg_entry_price),
        "side": "long",
        "market_value": fmt_money(market_value),
        "cost_basis": fmt_money(position.cost_basis),
        "unrealized_pl": fmt_money(pl),
        "unrealized_plpc": _ratio(pl, position.cost_basis),
        "unrealized_intraday_pl": fmt_money(intraday),
        "unrealized_intraday_plpc": _ratio(intraday, lastday_value),
        "current_price": fmt_money(price),
        "lastday_price": fmt_money(lastday),
        "change_today": _ratio(price - lastday, lastday),
    }


def _ratio(num: Decimal, den: Decimal) -> str:
    if den == 0:
        return "0"
    return fmt_qty((num / den).quantize(Decimal("0.0000000001")))


def account_json(
    exchange: Exchange, view: MarketView, *, key_id: str, created_at: datetime
) -> dict[str, Any]:
    """Return the account as Alpaca's TradeAccount object (figures of
    :mod:`regime_trader.service.emulator.margin`; a cash account has multiplier 1)."""
    cash = exchange.cash
    b = exchange.balances(view)
    long_value = exchange.long_market_value(view)
    equity = cash + long_value
    return {
        "id": account_id(key_id),
        "account_number": "PA" + account_id(key_id).replace("-", "")[:10].upper(),
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": fmt_money(money(b.buying_power)),
        "regt_buying_power": fmt_money(money(b.regt_buying_power)),
        "daytrading_buying_power": fmt_money(money(b.daytrading_buying_power)),
        "non_marginable_buying_power": fmt_money(money(b.non_marginable_buying_power)),
        "options_buying_power": fmt_money(Decimal(0)),
        "effective_buying_power": fmt_money(money(b.buying_power)),
        "cash": fmt_money(cash),
        "accrued_fees": fmt_money(Decimal(0)),
        "pending_transfer_in": fmt_money(Decimal(0)),
        "pending_transfer_out": fmt_money(Decimal(0)),
        "portfolio_value": fmt_money(equity),
        "pattern_day_trader": exchange.multiplier == 4,
        "trading_blocked": bool(exchange.flags.get("trading_blocked")),
        "transfers_blocked": bool(exchange.flags.get("account_blocked")),
        "account_blocked": bool(exchange.flags.get("account_blocked")),
        "created_at": utc_text(created_at),
        "trade_suspended_by_user": bool(exchange.flags.get("trade_suspended_by_user")),
        "multiplier": str(exchange.multiplier),
        "shorting_enabled": False,
        "equity": fmt_money(equity),
        "last_equity": fmt_money(exchange.last_equity),
        "long_market_value": fmt_money(long_value),
        "short_market_value": fmt_money(Decimal(0)),
        "position_market_value": fmt_money(long_value),
        "initial_margin": fmt_money(money(b.initial_margin)),
        "maintenance_margin": fmt_money(money(b.maintenance_margin)),
        "last_maintenance_margin": fmt_money(money(b.last_maintenance_margin)),
        "sma": fmt_money(Decimal(0)),
        "daytrade_count": 0,
        "balance_asof": view.now.astimezone(NEW_YORK).date().isoformat(),
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def asset_json(asset: Asset) -> dict[str, Any]:
    """Return an asset as Alpaca's Asset object."""
    return {
        "id": asset.id,
        "class": "us_equity",
        "exchange": asset.exchange,
        "symbol": asset.symbol,
        "name": f"{asset.symbol} (emulated)",
        "status": "active",
        "tradable": asset.tradable,
        "marginable": False,
        "maintenance_margin_requirement": 100,
        "margin_requirement_long": "100",
        "margin_requirement_short": "100",
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": asset.fractionable,
        "attributes": [],
    }


def clock_json(
    now: datetime, is_open: bool, next_open: datetime, next_close: datetime
) -> dict[str, Any]:
    """Return Alpaca's Clock object (timestamps with the New York offset)."""
    return {
        "timestamp": _ny_text(now),
        "is_open": is_open,
        "next_open": _ny_text(next_open),
        "next_close": _ny_text(next_close),
    }


def calendar_json(session: Session, settlement: date) -> dict[str, Any]:
    """Return one day of Alpaca's Calendar (times ``HH:MM`` New York)."""
    return {
        "date": session.date.isoformat(),
        "open": session.open.astimezone(NEW_YORK).strftime("%H:%M"),
        "close": session.close.astimezone(NEW_YORK).strftime("%H:%M"),
        "session_open": "0400",
        "session_close": "2000",
        "settlement_date": settlement.isoformat(),
    }


def bar_json(bar: Bar) -> dict[str, Any]:
    """Return a daily bar; ``t`` is midnight New York of the session, in UTC."""
    start = datetime.combine(bar.t, time(0), NEW_YORK)
    return {
        "t": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": bar.o,
        "h": bar.h,
        "l": bar.l,
        "c": bar.c,
        "v": bar.v,
        "n": bar.n,
        "vw": bar.vw,
    }

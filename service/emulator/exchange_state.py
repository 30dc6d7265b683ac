"""The exchange's state as JSON: the account part of the emulator's state file.

Decimals are written as strings; keys added after a state file was written take their defaults
when it is read back, so an older file still loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from regime_trader.service.emulator.exchange import FLAGS, Exchange
from regime_trader.service.emulator.records import (
    CODE_BAD_REQUEST,
    Asset,
    Position,
    order_from_json,
    order_to_json,
)

__all__ = ["exchange_from_json", "exchange_to_json"]


def exchange_to_json(exchange: Exchange) -> dict[str, Any]:
    """Return the state as JSON-compatible data (Decimals as strings)."""
    return {
        "cash": str(exchange.cash),
        "last_equity": str(exchange.last_equity),
        "last_long_value": str(exchange.last_long_value),
        "next_seq": exchange.next_seq,
        "flags": dict(exchange.flags),
        "corporate_log": list(exchange.corporate_log),
        "positions": [
            {"symbol": p.symbol, "qty": str(p.qty), "cost_basis": str(p.cost_basis)}
            for p in exchange.positions.values()
        ],
        "orders": [order_to_json(o) for o in exchange.orders.values()],
    }


def exchange_from_json(
    data: Mapping[str, Any],
    assets: Mapping[str, Asset],
    *,
    multiplier: int = 2,
    duplicate_code: int = CODE_BAD_REQUEST,
) -> Exchange:
    """Rebuild an exchange from :func:`exchange_to_json` output."""
    exchange = Exchange(
        assets=assets,
        cash=Decimal(data["cash"]),
        last_equity=Decimal(data["last_equity"]),
        next_seq=int(data["next_seq"]),
        multiplier=multiplier,
        duplicate_code=duplicate_code,
        last_long_value=Decimal(data.get("last_long_value", "0")),
    )
    exchange.flags.update({k: bool(v) for k, v in data.get("flags", {}).items() if k in FLAGS})
    exchange.corporate_log = list(data.get("corporate_log", []))
    for p in data["positions"]:
        exchange.positions[p["symbol"]] = Position(
            p["symbol"], Decimal(p["qty"]), Decimal(p["cost_basis"])
        )
    for raw in data["orders"]:
        order = order_from_json(raw)
        exchange.orders[order.id] = order
        exchange.client_ids[order.client_order_id] = order.id
    return exchange

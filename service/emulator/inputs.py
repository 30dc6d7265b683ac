"""Request parsing: JSON bodies and query strings -> typed requests, or an Alpaca-shaped error.

Every field is checked at the boundary and a refusal names the field and the value received.
Trading routes answer bad input with 422 (Alpaca's ``40010001`` / ``42210000``), market-data
routes with 400 ``40010001``, as the real services do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from regime_trader.service.emulator.corporate_actions import (
    ActionKind,
    CorporateActionError,
    parse_adjustment,
)
from regime_trader.service.emulator.records import (
    CODE_BAD_REQUEST,
    CODE_UNPROCESSABLE,
    ExchangeError,
    OrderRequest,
)

__all__ = [
    "BarsQuery",
    "OrdersQuery",
    "parse_bars_query",
    "parse_decimal",
    "parse_instant",
    "parse_order_body",
    "parse_orders_query",
]

MAX_CLIENT_ORDER_ID = 128
MAX_DECIMALS = 9
_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_FEEDS = frozenset({"iex", "sip", "otc", "boats", "overnight", "delayed_sip"})


def _bad(message: str, *, status: int = 422, code: int = CODE_BAD_REQUEST) -> ExchangeError:
    return ExchangeError(status, code, message)


def parse_decimal(name: str, value: Any, *, status: int = 422) -> Decimal:
    """Parse a positive number given as JSON number or numeric string, at most 9 decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(f"{name} must be a number, got {value!r}", status=status)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise _bad(f"{name} must be a number, got {value!r}", status=status) from e
    if not number.is_finite() or number <= 0:
        raise _bad(f"{name} must be > 0, got {value!r}", status=status)
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise _bad(f"{name} must have at most {MAX_DECIMALS} decimal places, got {value!r}")
    return number


def parse_instant(name: str, value: str, *, status: int = 422) -> datetime:
    """Parse an RFC 3339 timestamp or a date (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise _bad(f"invalid {name}: {value!r} is not an RFC 3339 time", status=status) from e
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string, got {value!r}")
    return value


def parse_order_body(body: Any) -> OrderRequest:
    """Parse the JSON body of ``POST /v2/orders``."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    symbol = _text(body, "symbol")
    side = _text(body, "side")
    if side not in ("buy", "sell"):
        raise _bad(f"invalid side: {side!r} (buy or sell)")
    order_type = _text(body, "type", required=False) or _text(body, "order_type", required=False)
    if order_type is None:
        raise _bad("type is required")
    tif = _text(body, "time_in_force")
    order_class = _text(body, "order_class", required=False)
    if order_class not in (None, "simple"):
        raise _bad(
            f'order_class "{order_class}" is not supported by the emulator (simple only)',
            code=CODE_UNPROCESSABLE,
        )
    has_qty, has_notional = body.get("qty") is not None, body.get("notional") is not None
    if has_qty and has_notional:
        raise _bad("only one of qty or notional may be given, not both")
    if not has_qty and not has_notional:
        raise _bad("qty or notional is required")
    qty = parse_decimal("qty", body["qty"]) if has_qty else None
    notional = parse_decimal("notional", body["notional"]) if has_notional else None
    client_order_id = _text(body, "client_order_id", required=False)
    if client_order_id is not None and len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise _bad(f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters")
    extended = body.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise _bad(f"extended_hours must be a boolean, got {extended!r}")
    # Both were required above; this only narrows the types.
    assert symbol is not None and tif is not None  # nosec B101
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=order_type,
        time_in_force=tif,
        qty=qty,
        notional=notional,
        client_order_id=client_order_id,
        extended_hours=extended,
    )


@dataclass(frozen=True)
class OrdersQuery:
    """Filters of ``GET /v2/orders``."""

    status: str = "open"
    limit: int = 50
    after: datetime | None = None
    until: datetime | None = None
    direction: str = "desc"
    symbols: frozenset[str] | None = None
    side: str | None = None


def _int(name: str, value: str, lo: int, hi: int, *, status: int) -> int:
    try:
        number = int(value)
    except ValueError as e:
        raise _bad(f"invalid {name}: {value!r} is not an integer", status=status) from e
    if not lo <= number <= hi:
        raise _bad(f"invalid {name}: {number} is not between {lo} and {hi}", status=status)
    return number


def _choice(name: str, value: str, choices: tuple[str, ...], *, status: int) -> str:
    if value not in choices:
        raise _bad(f"invalid {name}: {value!r} (one of {', '.join(choices)})", status=status)
    return value


def parse_orders_query(params: Mapping[str, str]) -> OrdersQuery:
    """Parse the query of ``GET /v2/orders``."""
    symbols = params.get("symbols")
    return OrdersQuery(
        status=_choice(
            "status", params.get("status", "open"), ("open", "closed", "all"), status=422
        ),
        limit=_int("limit", params.get("limit", "50"), 1, 500, status=422),
        after=parse_instant("after", params["after"]) if "after" in params else None,
        until=parse_instant("until", params["until"]) if "until" in params else None,
        direction=_choice(
            "direction", params.get("direction", "desc"), ("asc", "desc"), status=422
        ),
        symbols=frozenset(s.strip() for s in symbols.split(",") if s.strip()) if symbols else None,
        side=_choice("side", params["side"], ("buy", "sell"), status=422)
        if "side" in params
        else None,
    )


@dataclass(frozen=True)
class BarsQuery:
    """Parameters of ``GET /v2/stocks/bars``."""

    symbols: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    limit: int
    sort: str
    page_token: str | None
    adjustment: frozenset[ActionKind] = frozenset()
    feed: str = "sip"


def parse_bars_query(params: Mapping[str, str]) -> BarsQuery:
    """Parse the query of ``GET /v2/stocks/bars`` (daily bars only)."""
    symbols = parse_symbols(params)
    timeframe = params.get("timeframe", "")
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise _bad(f"invalid timeframe: {timeframe!r}", status=400)
    if match.group(1) != "1" or match.group(2) not in ("Day", "D"):
        raise _bad(
            f"unsupported timeframe {timeframe!r}: the emulator serves 1Day bars only",
            code=CODE_UNPROCESSABLE,
        )
    _check_common(params)
    try:
        adjustment = parse_adjustment(params.get("adjustment", "raw"))
    except CorporateActionError as e:
        raise _bad(str(e), status=400) from e
    start = parse_instant("start", params["start"], status=400) if "start" in params else None
    end = parse_instant("end", params["end"], status=400) if "end" in params else None
    if start is not None and end is not None and end < start:
        raise _bad("end should not be before start", status=400)
    return BarsQuery(
        symbols=symbols,
        start=start,
        end=end,
        limit=_int("limit", params.get("limit", "1000"), 1, 10_000, status=400),
        sort=_choice("sort", params.get("sort", "asc"), ("asc", "desc"), status=400),
        page_token=params.get("page_token") or None,
        adjustment=adjustment,
        feed=params.get("feed", "sip"),
    )


def parse_symbols(params: Mapping[str, str]) -> tuple[str, ...]:
    """Parse the comma-separated ``symbols`` of a market-data query (sorted, unique)."""
    raw = params.get("symbols", "")
    symbols = tuple(sorted({s.strip() for s in raw.split(",") if s.strip()}))
    if not symbols:
        raise _bad("missing symbols", status=400)
    _check_common(params)
    return symbols


def _check_common(params: Mapping[str, str]) -> None:
    if params.get("feed", "sip") not in _FEEDS:
        raise _bad(f"invalid feed: {params['feed']!r}", status=400)
    if params.get("currency", "USD") != "USD":
        raise _bad(f"unsupported currency: {params['currency']!r} (USD only)", status=400)

"""Alpaca JSON -> the service's frozen dataclasses (pure: no I/O, no SDK models).

Every function takes the decoded JSON exactly as Alpaca (or the emulator) sends it and either
returns a small frozen dataclass or raises
:class:`~regime_trader.service.exceptions.BadBrokerResponseError`
(:class:`~regime_trader.service.exceptions.BadMarketDataError` for bars) naming the object, the
field and the value. Money and quantities arrive as strings and become :class:`~decimal.Decimal`;
timestamps become timezone-aware datetimes; calendar times are New York wall-clock times.

An HTTP error answer is :mod:`regime_trader.service.alpaca_errors`' to translate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from regime_trader.service.exceptions import (
    BadBrokerResponseError,
    BadMarketDataError,
)
from regime_trader.service.order_status import OrderPhase, phase_of

__all__ = [
    "BAR_COLUMNS",
    "NEW_YORK",
    "BrokerAccount",
    "BrokerAsset",
    "BrokerClock",
    "BrokerOrder",
    "SessionDay",
    "account_to_broker_account",
    "asset_to_broker_asset",
    "bars_to_frame",
    "calendar_to_session_days",
    "clock_to_broker_clock",
    "order_list_to_broker_orders",
    "order_to_broker_order",
    "positions_to_quantities",
]

NEW_YORK = ZoneInfo("America/New_York")
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "trade_count", "vwap")
_BAR_KEYS = dict(zip(("o", "h", "l", "c", "v", "n", "vw"), BAR_COLUMNS, strict=True))


@dataclass(frozen=True)
class BrokerAccount:
    """Account balances in USD and the flags that forbid trading, as reported.

    ``buying_power`` of a margin account (Alpaca's paper default) includes borrowed money;
    ``non_marginable_buying_power`` does not (None when the answer lacks it: use ``cash``).
    """

    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    status: str
    trading_blocked: bool  # set by Alpaca: no orders may be placed
    account_blocked: bool = False  # set by Alpaca: all account activity is prohibited
    trade_suspended_by_user: bool = False  # set by the account owner: no orders
    non_marginable_buying_power: Decimal | None = None

    @property
    def blocking_flags(self) -> tuple[str, ...]:
        """The names of the flags that forbid trading, of those set (empty: may trade)."""
        flags = ("trading_blocked", "account_blocked", "trade_suspended_by_user")
        return tuple(name for name in flags if getattr(self, name))


@dataclass(frozen=True)
class BrokerClock:
    """The broker's clock: what time it is and whether the market is open."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


@dataclass(frozen=True)
class SessionDay:
    """One trading session; ``open`` and ``close`` are aware New York times (early closes)."""

    date: date
    open: datetime
    close: datetime


@dataclass(frozen=True)
class BrokerAsset:
    """What the broker allows for a symbol."""

    symbol: str
    tradable: bool
    fractionable: bool
    status: str


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it; ``qty`` is None for notional orders."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    status: str  # as sent; see regime_trader.service.order_status for what each value means
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    submitted_at: datetime | None
    filled_at: datetime | None

    @property
    def phase(self) -> OrderPhase:
        """What the cycle does next with this order (UNKNOWN for an undocumented status)."""
        return phase_of(self.status)

    @property
    def is_open(self) -> bool:
        """Whether the order may still fill; an unknown status counts as open (fail closed)."""
        return not self.phase.is_final


# ---------------------------------------------------------------------------- field readers


def _object(raw: object, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise BadBrokerResponseError(f"{what}: expected a JSON object, got {_show(raw)}")
    return raw


def _list(raw: object, what: str) -> Sequence[Any]:
    if not isinstance(raw, list):
        raise BadBrokerResponseError(f"{what}: expected a JSON array, got {_show(raw)}")
    return raw


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _get(obj: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in obj:
        raise BadBrokerResponseError(f"{what}: field {name!r} is missing")
    return obj[name]


def _text(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = _get(obj, name, what)
    if not isinstance(value, str) or not value:
        raise BadBrokerResponseError(f"{what}: field {name!r} = {_show(value)} is not a string")
    return value


def _flag(obj: Mapping[str, Any], name: str, what: str) -> bool:
    value = _get(obj, name, what)
    if not isinstance(value, bool):
        raise BadBrokerResponseError(f"{what}: field {name!r} = {_show(value)} is not a boolean")
    return value


def _optional_flag(obj: Mapping[str, Any], name: str, what: str, *, missing: bool) -> bool:
    """A boolean field; ``missing`` when absent or null."""
    return missing if obj.get(name) is None else _flag(obj, name, what)


def _decimal(obj: Mapping[str, Any], name: str, what: str) -> Decimal:
    value = _get(obj, name, what)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite():
            return number
    raise BadBrokerResponseError(f"{what}: field {name!r} = {_show(value)} is not a number")


def _optional_decimal(obj: Mapping[str, Any], name: str, what: str) -> Decimal | None:
    return None if obj.get(name) is None else _decimal(obj, name, what)


def _amount(obj: Mapping[str, Any], name: str, what: str) -> Decimal:
    """A quantity or price: a number that is never negative."""
    number = _decimal(obj, name, what)
    if number < 0:
        raise BadBrokerResponseError(f"{what}: field {name!r} = {_show(obj[name])} is negative")
    return number


def _optional_amount(obj: Mapping[str, Any], name: str, what: str) -> Decimal | None:
    return None if obj.get(name) is None else _amount(obj, name, what)


def _side(obj: Mapping[str, Any], what: str) -> str:
    side = _text(obj, "side", what)
    if side not in ("buy", "sell"):
        raise BadBrokerResponseError(f"{what}: field 'side' = {side!r} is not 'buy' or 'sell'")
    return side


def _instant(obj: Mapping[str, Any], name: str, what: str) -> datetime:
    value = _text(obj, name, what)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadBrokerResponseError(
            f"{what}: field {name!r} = {value!r} is not an RFC 3339 time with an offset"
        )
    return parsed


def _optional_instant(obj: Mapping[str, Any], name: str, what: str) -> datetime | None:
    return None if obj.get(name) is None else _instant(obj, name, what)


# ---------------------------------------------------------------------------- trading objects


def account_to_broker_account(raw: object) -> BrokerAccount:
    """Parse ``GET /v2/account``."""
    obj = _object(raw, "account")
    return BrokerAccount(
        equity=_decimal(obj, "equity", "account"),
        cash=_decimal(obj, "cash", "account"),
        buying_power=_decimal(obj, "buying_power", "account"),
        status=_text(obj, "status", "account"),
        trading_blocked=_flag(obj, "trading_blocked", "account"),
        # Alpaca always sends these; a missing flag is read as set (fail closed).
        account_blocked=_optional_flag(obj, "account_blocked", "account", missing=True),
        trade_suspended_by_user=_optional_flag(
            obj, "trade_suspended_by_user", "account", missing=True
        ),
        non_marginable_buying_power=_optional_decimal(
            obj, "non_marginable_buying_power", "account"
        ),
    )


def positions_to_quantities(raw: object) -> dict[str, Decimal]:
    """Parse ``GET /v2/positions`` into held quantity per symbol (negative for a short)."""
    out: dict[str, Decimal] = {}
    for i, item in enumerate(_list(raw, "positions")):
        obj = _object(item, f"positions[{i}]")
        symbol = _text(obj, "symbol", f"positions[{i}]")
        what = f"position {symbol}"
        if symbol in out:
            raise BadBrokerResponseError(f"{what}: listed twice")
        out[symbol] = _decimal(obj, "qty", what)
    return out


def clock_to_broker_clock(raw: object) -> BrokerClock:
    """Parse ``GET /v2/clock``."""
    obj = _object(raw, "clock")
    return BrokerClock(
        timestamp=_instant(obj, "timestamp", "clock"),
        is_open=_flag(obj, "is_open", "clock"),
        next_open=_instant(obj, "next_open", "clock"),
        next_close=_instant(obj, "next_close", "clock"),
    )


def _wall_time(obj: Mapping[str, Any], name: str, what: str) -> time:
    value = _text(obj, name, what)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise BadBrokerResponseError(f"{what}: field {name!r} = {value!r} is not HH:MM") from None


def calendar_to_session_days(raw: object) -> list[SessionDay]:
    """Parse ``GET /v2/calendar`` into sessions in strictly increasing date order."""
    days: list[SessionDay] = []
    for i, item in enumerate(_list(raw, "calendar")):
        obj = _object(item, f"calendar[{i}]")
        text = _text(obj, "date", f"calendar[{i}]")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadBrokerResponseError(
                f"calendar[{i}]: date {text!r} is not YYYY-MM-DD"
            ) from None
        what = f"calendar {day}"
        opens = datetime.combine(day, _wall_time(obj, "open", what), NEW_YORK)
        closes = datetime.combine(day, _wall_time(obj, "close", what), NEW_YORK)
        if closes <= opens:
            raise BadBrokerResponseError(f"{what}: close {closes:%H:%M} is not after open")
        if days and day <= days[-1].date:
            raise BadBrokerResponseError(f"{what}: comes after {days[-1].date}; not increasing")
        days.append(SessionDay(day, opens, closes))
    return days


def asset_to_broker_asset(raw: object) -> BrokerAsset:
    """Parse ``GET /v2/assets/{symbol}``."""
    obj = _object(raw, "asset")
    what = f"asset {obj.get('symbol', '?')}"
    return BrokerAsset(
        symbol=_text(obj, "symbol", what),
        tradable=_flag(obj, "tradable", what),
        fractionable=_flag(obj, "fractionable", what),
        status=_text(obj, "status", what),
    )


def order_to_broker_order(raw: object) -> BrokerOrder:
    """Parse one Alpaca Order object."""
    obj = _object(raw, "order")
    what = f"order {obj.get('client_order_id', obj.get('id', '?'))}"
    return BrokerOrder(
        id=_text(obj, "id", what),
        client_order_id=_text(obj, "client_order_id", what),
        symbol=_text(obj, "symbol", what),
        side=_side(obj, what),
        order_type=_text(obj, "type", what),
        time_in_force=_text(obj, "time_in_force", what),
        status=_text(obj, "status", what),
        qty=_optional_amount(obj, "qty", what),
        notional=_optional_amount(obj, "notional", what),
        filled_qty=_amount(obj, "filled_qty", what),
        filled_avg_price=_optional_amount(obj, "filled_avg_price", what),
        submitted_at=_optional_instant(obj, "submitted_at", what),
        filled_at=_optional_instant(obj, "filled_at", what),
    )


def order_list_to_broker_orders(raw: object) -> list[BrokerOrder]:
    """Parse ``GET /v2/orders``."""
    return [order_to_broker_order(item) for item in _list(raw, "orders")]


# ---------------------------------------------------------------------------- bars


def _bar_row(symbol: str, index: int, raw: object) -> list[object]:
    if not isinstance(raw, Mapping):
        raise BadMarketDataError(f"{symbol}: bar #{index} is not a JSON object: {_show(raw)}")
    stamp = raw.get("t")
    try:
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise BadMarketDataError(f"{symbol}: bar #{index} has no valid time 't': {_show(stamp)}")
    day = when.astimezone(NEW_YORK).date()
    row: list[object] = [pd.Timestamp(day), symbol]
    for key, column in _BAR_KEYS.items():
        value = raw.get(key)
        if key == "vw" and value is None:
            row.append(float("nan"))  # Alpaca omits vwap on some feeds; never used for trading
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadMarketDataError(f"{symbol} on {day}: {column} ({key!r}) = {_show(value)}")
        row.append(float(value))
    return row


def bars_to_frame(raw: object) -> pd.DataFrame:
    """Parse the ``bars`` object of ``GET /v2/stocks/bars`` (``{symbol: [bar, ...]}``).

    Returns
    -------
    DataFrame of shape (n_bars, 9)
        Columns ``date`` (session date, tz-naive midnight), ``symbol`` and :data:`BAR_COLUMNS`
        as floats, in the order received. Values are not range-checked here: see
        :func:`regime_trader.service.marketdata.check_bars`.

    Raises
    ------
    BadMarketDataError
        If a bar lacks a valid ``t`` or a numeric ``o h l c v n`` (``vw`` may be null).
    """
    if raw is None:
        raw = {}  # Alpaca sends "bars": null when no symbol has a bar in the range
    if not isinstance(raw, Mapping):
        raise BadMarketDataError(f"bars: expected an object keyed by symbol, got {_show(raw)}")
    rows: list[list[object]] = []
    for symbol, bars in raw.items():
        if not isinstance(bars, list):
            raise BadMarketDataError(f"{symbol}: bars are not a JSON array: {_show(bars)}")
        rows += [_bar_row(str(symbol), i, bar) for i, bar in enumerate(bars)]
    frame = pd.DataFrame(rows, columns=["date", "symbol", *BAR_COLUMNS])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.astype({c: float for c in BAR_COLUMNS})

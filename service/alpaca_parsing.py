"""Alpaca JSON -> the service's frozen dataclasses (pure: no I/O, no SDK models).

Every function takes the decoded JSON exactly as Alpaca (or the emulator) sends it and either
returns a small frozen dataclass or raises
:class:`~regime_trader.service.exceptions.BadBrokerResponseError`
(:class:`~regime_trader.service.exceptions.BadMarketDataError` for bars) naming the object, the
field and the value. Money and quantities arrive as strings and become :class:`~decimal.Decimal`;
timestamps become timezone-aware datetimes; calendar times are New York wall-clock times.

:func:`error_response_to_exception` maps an HTTP error answer to the project's taxonomy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from regime_trader.service.exceptions import (
    AuthenticationError,
    BadBrokerResponseError,
    BadMarketDataError,
    BrokerRejectedError,
    DuplicateClientOrderError,
    RegimeTraderError,
    TemporaryBrokerError,
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
    "error_response_to_exception",
    "order_list_to_broker_orders",
    "order_to_broker_order",
    "positions_to_quantities",
    "redact",
]

NEW_YORK = ZoneInfo("America/New_York")
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "trade_count", "vwap")
_BAR_KEYS = dict(zip(("o", "h", "l", "c", "v", "n", "vw"), BAR_COLUMNS, strict=True))
# A duplicate client_order_id comes as code 40010001 (documented) or 42210000 (seen from the
# real API), both with the message "client_order_id must be unique". Both codes are also
# Alpaca's generic validation codes (e.g. 42210000 'asset "XXXX" not found'), so a code alone
# is a duplicate only when its message is about the client_order_id or empty; the message
# alone is enough under any code. The caller always confirms by looking the order up.
_DUPLICATE_CODES = frozenset({40010001, 42210000})
_DUPLICATE_MESSAGE = "client_order_id must be unique"
_BODY_CHARS = 300
_MIN_SECRET_CHARS = 4  # shorter "secrets" are test values; replacing them would garble text


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
        :func:`regime_trader.service.marketdata.validate_bars`.

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


# ---------------------------------------------------------------------------- errors


def redact(text: str, secrets: Sequence[str]) -> str:
    """Return ``text`` with each secret of 4 or more characters replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text


def _is_duplicate(code: int | None, message: str) -> bool:
    """Whether an error answer says the ``client_order_id`` is taken (see _DUPLICATE_CODES)."""
    lowered = message.lower()
    if _DUPLICATE_MESSAGE in lowered:
        return True
    return code in _DUPLICATE_CODES and ("client_order_id" in lowered or not lowered.strip())


def _error_parts(body: str) -> tuple[int | None, str]:
    """Return Alpaca's ``code`` and ``message`` from an error body, or (None, the body)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        code = parsed.get("code")
        message = parsed.get("message")
        if isinstance(message, str):
            return (code if isinstance(code, int) and not isinstance(code, bool) else None), message
    text = " ".join(body.split())
    return None, text if len(text) <= _BODY_CHARS else text[: _BODY_CHARS - 3] + "..."


def error_response_to_exception(
    call: str, status: int, body: str, secrets: Sequence[str] = ()
) -> RegimeTraderError:
    """Return the project exception for an HTTP error answer (the caller raises it).

    Parameters
    ----------
    call : str
        The request, e.g. ``"POST /v2/orders"``; it starts the message.
    status : int
        HTTP status code (>= 400).
    body : str
        The response body.
    secrets : sequence of str
        Credentials to remove from the message (see :func:`redact`).

    Returns
    -------
    RegimeTraderError
        :class:`TemporaryBrokerError` for 408, 429 and 5xx; :class:`AuthenticationError` for
        401; :class:`DuplicateClientOrderError` for a duplicate ``client_order_id`` (the
        message "client_order_id must be unique" under any code, or code 40010001 or 42210000
        with a message about the client_order_id or none; the caller always looks the order
        up); :class:`BrokerRejectedError` for any other answer.
    """
    code, message = _error_parts(body)
    message = redact(message, secrets)
    detail = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {message}"
    text = f"{call} failed: {detail}"
    if status in (408, 429) or status >= 500:
        return TemporaryBrokerError(call, detail, status)
    if status == 401:
        return AuthenticationError(f"{text} (check the API key id and secret)")
    if _is_duplicate(code, message):
        return DuplicateClientOrderError(text, status, code, message)
    return BrokerRejectedError(text, status, code, message)

"""The exchange's records: errors, assets, orders, positions, and their JSON round trip.

Pure data (no I/O): :mod:`regime_trader.service.emulator.exchange` keeps the account's rules; these
are the things it works on, shared with the JSON shapes and the order-status scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, TypeVar

from regime_trader.service.order_status import OrderStatus

__all__ = [
    "ALL_STATUSES",
    "BUY_COLLAR",
    "CENT",
    "CODE_BAD_REQUEST",
    "CODE_FORBIDDEN",
    "CODE_NOT_FOUND",
    "CODE_UNPROCESSABLE",
    "MIN_NOTIONAL",
    "OPEN_STATUSES",
    "Asset",
    "ExchangeError",
    "MarketView",
    "Order",
    "OrderRequest",
    "Position",
    "floor_qty",
    "fmt_qty_text",
    "is_fractional",
    "money",
    "order_from_json",
    "order_to_json",
    "request_qty",
    "require",
    "use_once",
]

CODE_BAD_REQUEST = 40010001
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
MIN_NOTIONAL = Decimal("1")
BUY_COLLAR = Decimal("0.03")
# Alpaca statuses in which an order can still fill or be cancelled (holds stay reserved).
OPEN_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "partially_filled",
        "held",
        "suspended",
        "stopped",
        "pending_cancel",
        "pending_replace",
        "pending_review",
        "accepted_for_bidding",
    }
)
# Every status Alpaca documents (alpaca-py's OrderStatus): the service's one list of them.
ALL_STATUSES = frozenset(str(s) for s in OrderStatus)


class ExchangeError(Exception):
    """A refused request: HTTP ``status``, Alpaca ``code``, ``message`` and extra fields."""

    def __init__(
        self, status: int, code: int, message: str, extra: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """Return the JSON body Alpaca sends for this error."""
        return {"code": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Asset:
    """A tradable symbol."""

    symbol: str
    id: str
    fractionable: bool = True
    tradable: bool = True
    exchange: str = "ARCA"


@dataclass(frozen=True)
class MarketView:
    """The market as the exchange sees it at one instant.

    Attributes
    ----------
    now : datetime
        The instant (aware, UTC).
    is_open : bool
        Whether a session is in progress.
    day_order_expiry : datetime
        Close of the session a day order placed now belongs to.
    price : callable
        Symbol -> current price (dollars).
    lastday_price : callable
        Symbol -> close of the previous session.
    """

    now: datetime
    is_open: bool
    day_order_expiry: datetime
    price: Callable[[str], Decimal]
    lastday_price: Callable[[str], Decimal]


@dataclass(frozen=True)
class OrderRequest:
    """A parsed order submission (see :mod:`regime_trader.service.emulator.orderinput`)."""

    symbol: str
    side: str
    type: str = "market"
    time_in_force: str = "day"
    qty: Decimal | None = None
    notional: Decimal | None = None
    client_order_id: str | None = None
    extended_hours: bool = False


@dataclass
class Order:
    """An order and its life so far; money and quantities are Decimals."""

    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    status: str
    submitted_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    seq: int
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    expired_at: datetime | None = None
    reserved_cash: Decimal = Decimal(0)
    held_qty: Decimal = Decimal(0)
    # A status script (regime_trader.service.emulator.lifecycle) driving this order instead of the
    # default fill; empty when the order follows the default behaviour.
    script_steps: tuple[str, ...] = ()
    script_final: str | None = None
    script_fraction: Decimal = Decimal(1)
    script_advance: str = "poll"
    script_every: float = 1.0
    script_pos: int = 0
    script_polls: int = 0
    script_since: float = 0.0

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill or be cancelled."""
        return self.status in OPEN_STATUSES


@dataclass
class Position:
    """A long position: quantity and total cost in dollars."""

    symbol: str
    qty: Decimal
    cost_basis: Decimal

    @property
    def avg_entry_price(self) -> Decimal:
        """Cost per share."""
        return self.cost_basis / self.qty


def floor_qty(x: Decimal) -> Decimal:
    """Round a quantity down to 9 decimals."""
    return x.quantize(QTY_STEP, rounding=ROUND_FLOOR)


def money(x: Decimal) -> Decimal:
    """Round dollars to the cent, half to even."""
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN)


def is_fractional(qty: Decimal | None) -> bool:
    return qty is not None and qty != qty.to_integral_value()


def request_qty(request: OrderRequest) -> Decimal:
    return require(request.qty)


def require(x: Decimal | None) -> Decimal:
    if x is None:
        raise ExchangeError(422, CODE_BAD_REQUEST, "qty or notional is required")
    return x


def fmt_qty_text(x: Decimal) -> str:
    """Format a quantity without trailing zeros (``"10"``, ``"0.5"``)."""
    return f"{x.normalize():f}"


_DECIMAL_FIELDS = (
    "qty",
    "notional",
    "filled_qty",
    "filled_avg_price",
    "reserved_cash",
    "held_qty",
    "script_fraction",
)
_TIME_FIELDS = (
    "submitted_at",
    "updated_at",
    "expires_at",
    "filled_at",
    "canceled_at",
    "failed_at",
    "expired_at",
)


def order_to_json(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = dict(vars(order))
    for name in _DECIMAL_FIELDS:
        data[name] = None if data[name] is None else str(data[name])
    for name in _TIME_FIELDS:
        data[name] = None if data[name] is None else data[name].isoformat()
    data["script_steps"] = list(order.script_steps)
    return data


def order_from_json(raw: Mapping[str, Any]) -> Order:
    data = dict(raw)
    for name in _DECIMAL_FIELDS:
        if name in data:  # state files written before a field existed take its default
            data[name] = None if data[name] is None else Decimal(data[name])
    for name in _TIME_FIELDS:
        data[name] = None if data[name] is None else datetime.fromisoformat(data[name])
    data["script_steps"] = tuple(data.get("script_steps", ()))
    return Order(**data)


class _Counted(Protocol):
    remaining: int | None


_C = TypeVar("_C", bound=_Counted)


def use_once(entry: _C, active: list[_C]) -> None:
    """Count one use of ``entry`` (an injected fault, a status script): one fewer remaining, and
    out of ``active`` once none is left. ``remaining`` None: unlimited."""
    if entry.remaining is not None:
        entry.remaining -= 1
        if entry.remaining == 0:
            active.remove(entry)

"""A cash account with market orders and long positions, as a pure state machine.

No I/O, no clock of its own: every operation receives a :class:`MarketView` (the instant,
whether the market is open and the prices then), so the same calls always give the same state,
and the whole state round-trips through JSON (:meth:`Exchange.to_json`).

Rules, taken from Alpaca's paper trading for a cash account:

- market orders only, time in force ``day``; ``qty`` (up to 9 decimals) or ``notional``
  (dollars, at least $1); fractional quantities and notional orders only on fractionable assets;
- while the market is open an order fills at once at the current price; while it is closed it
  is accepted and queued, and fills at the next session's open;
- buying power = cash minus what open buy orders hold. A queued buy by quantity holds its value
  at the last price plus a 3 % collar (the fill price is unknown); if the open gaps above even
  that and the cost exceeds the cash, the order is rejected at the open (cash never goes
  negative);
- no shorting: a sell needs the shares, less those held by other open sells;
- a ``client_order_id`` is unique for the life of the account, cancelled orders included.

Errors are :class:`ExchangeError` with the HTTP status and Alpaca's error code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

__all__ = [
    "CODE_BAD_REQUEST",
    "CODE_FORBIDDEN",
    "CODE_NOT_FOUND",
    "CODE_UNPROCESSABLE",
    "OPEN_STATUSES",
    "Asset",
    "Exchange",
    "ExchangeError",
    "MarketView",
    "Order",
    "OrderRequest",
    "Position",
]

CODE_BAD_REQUEST = 40010001
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
MIN_NOTIONAL = Decimal("1")
BUY_COLLAR = Decimal("0.03")
OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled"})


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
    """A parsed order submission (see :mod:`service.emulator.orderinput`)."""

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


@dataclass
class Exchange:
    """The account: cash, positions and orders.

    Parameters
    ----------
    assets : mapping of str to Asset
        The tradable symbols.
    cash : Decimal
        Starting cash in dollars.
    """

    assets: Mapping[str, Asset]
    cash: Decimal
    last_equity: Decimal = Decimal(0)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    next_seq: int = 0

    def __post_init__(self) -> None:
        if self.last_equity == 0:
            self.last_equity = self.cash

    # ------------------------------------------------------------------ balances

    def reserved(self) -> Decimal:
        """Cash held by open buy orders."""
        return sum((o.reserved_cash for o in self.orders.values() if o.is_open), Decimal(0))

    def buying_power(self) -> Decimal:
        """Cash minus what open buy orders hold."""
        return self.cash - self.reserved()

    def held_qty(self, symbol: str) -> Decimal:
        """Shares of ``symbol`` held by open sell orders."""
        return sum(
            (o.held_qty for o in self.orders.values() if o.is_open and o.symbol == symbol),
            Decimal(0),
        )

    def long_market_value(self, view: MarketView) -> Decimal:
        """Value of all positions at current prices."""
        return sum((money(p.qty * view.price(s)) for s, p in self.positions.items()), Decimal(0))

    def equity(self, view: MarketView) -> Decimal:
        """Cash plus the value of the positions."""
        return self.cash + self.long_market_value(view)

    # ------------------------------------------------------------------ orders

    def submit(self, request: OrderRequest, view: MarketView) -> Order:
        """Validate and place an order; fill it at once when the market is open.

        Raises
        ------
        ExchangeError
            422 for a duplicate client order id, an unknown symbol or an unsupported order;
            403 for insufficient buying power or shares, or an order under $1.
        """
        if request.client_order_id is not None and request.client_order_id in self.client_ids:
            raise ExchangeError(422, CODE_BAD_REQUEST, "client_order_id must be unique")
        asset = self.assets.get(request.symbol)
        if asset is None:
            raise ExchangeError(422, CODE_UNPROCESSABLE, f'asset "{request.symbol}" not found')
        if not asset.tradable:
            raise ExchangeError(422, CODE_UNPROCESSABLE, f"{asset.symbol} is not tradable")
        self._check_kind(request, asset)
        price = view.price(asset.symbol)
        estimate = request.notional if request.notional is not None else _qty(request) * price
        if (
            request.notional is not None or _is_fractional(request.qty)
        ) and estimate < MIN_NOTIONAL:
            raise ExchangeError(
                403, CODE_FORBIDDEN, "cost basis must be >= minimal amount of order 1"
            )
        order = self._new_order(request, asset, view)
        if request.side == "buy":
            need = self._buy_hold(request, price, view.is_open)
            if need > self.buying_power():
                raise ExchangeError(
                    403,
                    CODE_FORBIDDEN,
                    "insufficient buying power",
                    {"buying_power": str(money(self.buying_power())), "cost_basis": str(need)},
                )
            order.reserved_cash = need
        else:
            want = request.qty if request.qty is not None else floor_qty(estimate / price)
            self._check_available(asset.symbol, want)
            order.held_qty = want
        self._register(order)
        if view.is_open:
            self._fill(order, price, view.now)
        return order

    def _check_kind(self, request: OrderRequest, asset: Asset) -> None:
        if request.notional is not None or _is_fractional(request.qty):
            if not asset.fractionable:
                raise ExchangeError(
                    422, CODE_UNPROCESSABLE, f"asset {asset.symbol} is not fractionable"
                )
            if request.type != "market":
                raise ExchangeError(
                    422, CODE_UNPROCESSABLE, "fractional orders must be market orders"
                )
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
                f'time_in_force "{request.time_in_force}" is not supported by the emulator '
                "(day only)",
            )
        if request.extended_hours:
            raise ExchangeError(
                422, CODE_UNPROCESSABLE, "extended hours orders are not supported by the emulator"
            )

    def _buy_hold(self, request: OrderRequest, price: Decimal, is_open: bool) -> Decimal:
        if request.notional is not None:
            return request.notional
        value = _qty(request) * price
        if not is_open:
            value *= 1 + BUY_COLLAR
        return value.quantize(CENT, rounding=ROUND_CEILING)

    def _check_available(self, symbol: str, want: Decimal) -> None:
        position = self.positions.get(symbol)
        existing = position.qty if position else Decimal(0)
        held = self.held_qty(symbol)
        available = existing - held
        if want > available:
            raise ExchangeError(
                403,
                CODE_FORBIDDEN,
                f"insufficient qty available for order (requested: {_fmt(want)}, "
                f"available: {_fmt(available)})",
                {
                    "available": _fmt(available),
                    "existing_qty": _fmt(existing),
                    "held_for_orders": _fmt(held),
                    "symbol": symbol,
                },
            )

    def _new_order(self, request: OrderRequest, asset: Asset, view: MarketView) -> Order:
        return Order(
            id=str(uuid.uuid4()),
            client_order_id=request.client_order_id or str(uuid.uuid4()),
            symbol=asset.symbol,
            asset_id=asset.id,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            qty=request.qty,
            notional=request.notional,
            status="accepted",
            submitted_at=view.now,
            updated_at=view.now,
            expires_at=view.day_order_expiry,
            seq=self.next_seq,
        )

    def _register(self, order: Order) -> None:
        self.next_seq += 1
        self.orders[order.id] = order
        self.client_ids[order.client_order_id] = order.id

    def _fill(self, order: Order, price: Decimal, at: datetime) -> None:
        qty = order.qty if order.qty is not None else floor_qty(_dec(order.notional) / price)
        position = self.positions.get(order.symbol)
        if order.side == "sell":
            qty = min(qty, position.qty if position else Decimal(0))
        value = money(qty * price)
        if qty <= 0 or (order.side == "buy" and value > self.cash):
            order.status, order.failed_at, order.updated_at = "rejected", at, at
            order.reserved_cash = order.held_qty = Decimal(0)
            return
        if order.side == "buy":
            self.cash -= value
            if position is None:
                self.positions[order.symbol] = Position(order.symbol, qty, value)
            else:
                position.qty += qty
                position.cost_basis += value
        else:
            # qty > 0 implies a position (type narrowing of an invariant checked above)
            assert position is not None  # nosec B101
            self.cash += value
            remaining = position.qty - qty
            if remaining <= 0:
                del self.positions[order.symbol]
            else:
                position.cost_basis = position.cost_basis * remaining / position.qty
                position.qty = remaining
        order.status = "filled"
        order.filled_qty, order.filled_avg_price = qty, price
        order.filled_at = order.updated_at = at
        order.reserved_cash = order.held_qty = Decimal(0)

    def get(self, order_id: str) -> Order:
        """Return an order by id (404 if unknown)."""
        order = self.orders.get(order_id)
        if order is None:
            raise ExchangeError(404, CODE_NOT_FOUND, "order not found")
        return order

    def get_by_client_id(self, client_order_id: str) -> Order:
        """Return an order by its client order id (404 if unknown)."""
        order_id = self.client_ids.get(client_order_id)
        if order_id is None:
            raise ExchangeError(404, CODE_NOT_FOUND, "order not found")
        return self.orders[order_id]

    def cancel(self, order_id: str, now: datetime) -> Order:
        """Cancel an open order (422 if it is already filled, cancelled, ...)."""
        order = self.get(order_id)
        if not order.is_open:
            raise ExchangeError(
                422, CODE_UNPROCESSABLE, f'order is already in "{order.status}" state'
            )
        order.status, order.canceled_at, order.updated_at = "canceled", now, now
        order.reserved_cash = order.held_qty = Decimal(0)
        return order

    def cancel_all(self, now: datetime) -> list[Order]:
        """Cancel every open order; return them."""
        return [self.cancel(o.id, now) for o in list(self.orders.values()) if o.is_open]

    def close_position(
        self,
        symbol: str,
        view: MarketView,
        *,
        qty: Decimal | None = None,
        percentage: Decimal | None = None,
    ) -> Order:
        """Sell all of a position, ``qty`` shares of it or ``percentage`` percent of it."""
        position = self.positions.get(symbol)
        if position is None:
            raise ExchangeError(404, CODE_NOT_FOUND, f"position not found: {symbol}")
        if qty is None:
            share = Decimal(100) if percentage is None else percentage
            if not Decimal(0) < share <= Decimal(100):
                raise ExchangeError(422, CODE_UNPROCESSABLE, "percentage must be between 0 and 100")
            qty = floor_qty(position.qty * share / 100)
            if not self.assets[symbol].fractionable:
                qty = qty.to_integral_value(rounding=ROUND_FLOOR)
        return self.submit(OrderRequest(symbol=symbol, side="sell", qty=qty), view)

    def close_all(
        self, view: MarketView, *, cancel_orders: bool
    ) -> list[tuple[str, int, Order | ExchangeError]]:
        """Close every position; return ``(symbol, status, order or error)`` per position."""
        if cancel_orders:
            self.cancel_all(view.now)
        results: list[tuple[str, int, Order | ExchangeError]] = []
        for symbol in sorted(self.positions):
            try:
                results.append((symbol, 200, self.close_position(symbol, view)))
            except ExchangeError as e:
                results.append((symbol, e.status, e))
        return results

    # ------------------------------------------------------------------ time

    def on_open(self, view: MarketView) -> list[Order]:
        """Fill the queued orders at the open, in the order they were placed."""
        queued = sorted((o for o in self.orders.values() if o.is_open), key=lambda o: o.seq)
        for order in queued:
            self._fill(order, view.price(order.symbol), view.now)
        return queued

    def on_close(self, view: MarketView) -> None:
        """Expire day orders still open and record the closing equity."""
        for order in self.orders.values():
            if order.is_open and order.expires_at is not None and order.expires_at <= view.now:
                order.status, order.expired_at, order.updated_at = "expired", view.now, view.now
                order.reserved_cash = order.held_qty = Decimal(0)
        self.last_equity = self.equity(view)

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        """Return the state as JSON-compatible data (Decimals as strings)."""
        return {
            "cash": str(self.cash),
            "last_equity": str(self.last_equity),
            "next_seq": self.next_seq,
            "positions": [
                {"symbol": p.symbol, "qty": str(p.qty), "cost_basis": str(p.cost_basis)}
                for p in self.positions.values()
            ],
            "orders": [_order_to_json(o) for o in self.orders.values()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], assets: Mapping[str, Asset]) -> Exchange:
        """Rebuild an exchange from :meth:`to_json` output."""
        exchange = cls(
            assets=assets,
            cash=Decimal(data["cash"]),
            last_equity=Decimal(data["last_equity"]),
            next_seq=int(data["next_seq"]),
        )
        for p in data["positions"]:
            exchange.positions[p["symbol"]] = Position(
                p["symbol"], Decimal(p["qty"]), Decimal(p["cost_basis"])
            )
        for raw in data["orders"]:
            order = _order_from_json(raw)
            exchange.orders[order.id] = order
            exchange.client_ids[order.client_order_id] = order.id
        return exchange


def _is_fractional(qty: Decimal | None) -> bool:
    return qty is not None and qty != qty.to_integral_value()


def _qty(request: OrderRequest) -> Decimal:
    return _dec(request.qty)


def _dec(x: Decimal | None) -> Decimal:
    if x is None:
        raise ExchangeError(422, CODE_BAD_REQUEST, "qty or notional is required")
    return x


def _fmt(x: Decimal) -> str:
    """Format a quantity without trailing zeros (``"10"``, ``"0.5"``)."""
    return f"{x.normalize():f}"


_DECIMAL_FIELDS = ("qty", "notional", "filled_qty", "filled_avg_price", "reserved_cash", "held_qty")
_TIME_FIELDS = (
    "submitted_at",
    "updated_at",
    "expires_at",
    "filled_at",
    "canceled_at",
    "failed_at",
    "expired_at",
)


def _order_to_json(order: Order) -> dict[str, Any]:
    data: dict[str, Any] = dict(vars(order))
    for name in _DECIMAL_FIELDS:
        data[name] = None if data[name] is None else str(data[name])
    for name in _TIME_FIELDS:
        data[name] = None if data[name] is None else data[name].isoformat()
    return data


def _order_from_json(raw: Mapping[str, Any]) -> Order:
    data = dict(raw)
    for name in _DECIMAL_FIELDS:
        data[name] = None if data[name] is None else Decimal(data[name])
    for name in _TIME_FIELDS:
        data[name] = None if data[name] is None else datetime.fromisoformat(data[name])
    return Order(**data)

"""A paper account with market orders and long positions, as a pure state machine.

No I/O, no clock of its own: every operation receives a :class:`MarketView` (the instant,
whether the market is open and the prices then), so the same calls always give the same state,
and the whole state round-trips through JSON (:mod:`regime_trader.service.emulator.exchange_state`).

Rules, taken from Alpaca's paper trading:

- market orders only, time in force ``day``; ``qty`` (up to 9 decimals) or ``notional``
  (dollars, at least $1); fractional quantities and notional orders only on fractionable assets;
- while the market is open an order fills at once at the current price; while it is closed it
  is accepted and queued, and fills at the next session's open (unless a status script of
  :mod:`regime_trader.service.emulator.lifecycle` drives it, see
  :mod:`regime_trader.service.emulator.fills`);
- buying power (:mod:`regime_trader.service.emulator.margin`): a margin account (multiplier 2,
Alpaca paper's
  default) may borrow, so cash can go negative; a cash account (multiplier 1) may not. Open buy
  orders hold their cost; a queued buy by quantity holds its value at the last price plus a 3 %
  collar (the fill price is unknown); if the open gaps above even that and the cost exceeds the
  buying power, the order is rejected at the open;
- no shorting: a sell needs the shares, less those held by other open sells;
- a ``client_order_id`` is unique for the life of the account, cancelled orders included
  (422 with the configured code of :data:`~regime_trader.service.emulator.config.DUPLICATE_CODES`);
- new orders are refused (403) while ``trading_blocked``, ``account_blocked`` or
  ``trade_suspended_by_user`` is set;
- corporate actions at the ex-date's open: a split multiplies held quantities (the total cost
  stays, so the cost per share divides); a cash dividend credits ``D x qty`` to cash (Alpaca
  credits on the pay date: crediting at the ex-date is the emulator's simplification). Open
  orders are left as they were placed.

Errors are :class:`ExchangeError` with the HTTP status and Alpaca's error code.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from regime_trader.service.emulator import margin
from regime_trader.service.emulator.corporate_actions import ActionKind, CorporateAction
from regime_trader.service.emulator.fills import advance_script, fill_qty, start_script
from regime_trader.service.emulator.lifecycle import OrderScript
from regime_trader.service.emulator.order_rules import buy_hold, check_kind
from regime_trader.service.emulator.records import (
    CODE_BAD_REQUEST,
    CODE_FORBIDDEN,
    CODE_NOT_FOUND,
    CODE_UNPROCESSABLE,
    MIN_NOTIONAL,
    Asset,
    ExchangeError,
    MarketView,
    Order,
    OrderRequest,
    Position,
    floor_qty,
    fmt_qty_text,
    is_fractional,
    money,
    request_qty,
    require,
)

__all__ = ["FLAGS", "Exchange"]

# Account flags that refuse new orders, and the message Alpaca answers (403, 40310000).
# "new orders are rejected by user request" is the real API's text for a user suspension;
# the other two texts are the emulator's own.
FLAGS: dict[str, str] = {
    "trading_blocked": "trading is blocked for this account",
    "account_blocked": "account is blocked",
    "trade_suspended_by_user": "new orders are rejected by user request",
}


@dataclass
class Exchange:
    """The account: cash, positions, orders, flags.

    Parameters
    ----------
    assets : mapping of str to Asset
        The tradable symbols.
    cash : Decimal
        Starting cash in dollars.
    multiplier : int
        Buying-power multiplier (1 = cash account).
    duplicate_code : int
        Alpaca code of the 422 answered to a duplicate client order id.
    """

    assets: Mapping[str, Asset]
    cash: Decimal
    last_equity: Decimal = Decimal(0)
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    next_seq: int = 0
    multiplier: int = 2
    duplicate_code: int = CODE_BAD_REQUEST
    flags: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FLAGS, False))
    last_long_value: Decimal = Decimal(0)
    corporate_log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.last_equity == 0:
            self.last_equity = self.cash

    # ------------------------------------------------------------------ balances

    def reserved(self) -> Decimal:
        """Cash held by open buy orders."""
        return sum((o.reserved_cash for o in self.orders.values() if o.is_open), Decimal(0))

    def long_market_value(self, view: MarketView) -> Decimal:
        """Value of all positions at current prices."""
        return sum((money(p.qty * view.price(s)) for s, p in self.positions.items()), Decimal(0))

    def equity(self, view: MarketView) -> Decimal:
        """Cash plus the value of the positions."""
        return self.cash + self.long_market_value(view)

    def balances(self, view: MarketView) -> margin.Balances:
        """Every buying-power figure of the account at ``view``."""
        return margin.balances(
            cash=self.cash,
            long_value=self.long_market_value(view),
            last_equity=self.last_equity,
            last_long_value=self.last_long_value,
            reserved=self.reserved(),
            multiplier=self.multiplier,
        )

    def buying_power(self, view: MarketView) -> Decimal:
        """What new buys may spend now (borrowing included on a margin account)."""
        return self.balances(view).buying_power

    def held_qty(self, symbol: str) -> Decimal:
        """Shares of ``symbol`` held by open sell orders."""
        return sum(
            (o.held_qty for o in self.orders.values() if o.is_open and o.symbol == symbol),
            Decimal(0),
        )

    # ------------------------------------------------------------------ orders

    def submit(
        self,
        request: OrderRequest,
        view: MarketView,
        script: OrderScript | None = None,
        wall_secs: float = 0.0,
    ) -> Order:
        """Validate and place an order; fill it at once when the market is open.

        Parameters
        ----------
        request : OrderRequest
            The parsed order.
        view : MarketView
            The market now.
        script : OrderScript, optional
            Status script driving the order instead of the default fill.
        wall_secs : float
            Wall clock (Unix seconds) the script's ``seconds`` steps count from.

        Raises
        ------
        ExchangeError
            422 for a duplicate client order id, an unknown symbol or an unsupported order;
            403 for a blocked account, insufficient buying power or shares, or an order
            under $1.
        """
        if request.client_order_id is not None and request.client_order_id in self.client_ids:
            raise ExchangeError(422, self.duplicate_code, "client_order_id must be unique")
        for flag, message in FLAGS.items():
            if self.flags.get(flag):
                raise ExchangeError(403, CODE_FORBIDDEN, message)
        asset = self.assets.get(request.symbol)
        if asset is None:
            raise ExchangeError(422, CODE_UNPROCESSABLE, f'asset "{request.symbol}" not found')
        if not asset.tradable:
            raise ExchangeError(422, CODE_UNPROCESSABLE, f"{asset.symbol} is not tradable")
        check_kind(request, asset)
        price = view.price(asset.symbol)
        estimate = (
            request.notional if request.notional is not None else request_qty(request) * price
        )
        if (request.notional is not None or is_fractional(request.qty)) and estimate < MIN_NOTIONAL:
            raise ExchangeError(
                403, CODE_FORBIDDEN, "cost basis must be >= minimal amount of order 1"
            )
        order = self._new_order(request, asset, view)
        if request.side == "buy":
            need = buy_hold(request, price, view.is_open)
            power = self.buying_power(view)
            if need > power:
                raise ExchangeError(
                    403,
                    CODE_FORBIDDEN,
                    "insufficient buying power",
                    {"buying_power": str(money(power)), "cost_basis": str(need)},
                )
            order.reserved_cash = need
        else:
            want = request.qty if request.qty is not None else floor_qty(estimate / price)
            self._check_available(asset.symbol, want)
            order.held_qty = want
        self._register(order)
        if script is not None:
            start_script(self, order, script, view, wall_secs)
        elif view.is_open:
            self._fill(order, view)
        return order

    def _check_available(self, symbol: str, want: Decimal) -> None:
        position = self.positions.get(symbol)
        existing = position.qty if position else Decimal(0)
        held = self.held_qty(symbol)
        available = existing - held
        if want > available:
            raise ExchangeError(
                403,
                CODE_FORBIDDEN,
                f"insufficient qty available for order (requested: {fmt_qty_text(want)}, "
                f"available: {fmt_qty_text(available)})",
                {
                    "available": fmt_qty_text(available),
                    "existing_qty": fmt_qty_text(existing),
                    "held_for_orders": fmt_qty_text(held),
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

    def _fill(self, order: Order, view: MarketView) -> None:
        """Fill the whole order now (or reject it if it can no longer be paid)."""
        price = view.price(order.symbol)
        qty = order.qty if order.qty is not None else floor_qty(require(order.notional) / price)
        if fill_qty(self, order, qty, price, view.now, self.spend_limit(order, view)) <= 0:
            order.status, order.failed_at, order.updated_at = "rejected", view.now, view.now
        else:
            order.status = "filled"
        order.reserved_cash = order.held_qty = Decimal(0)

    def spend_limit(self, order: Order, view: MarketView) -> Decimal:
        """Dollars a buy ``order`` may spend when it fills: the buying power plus its own hold
        (a cash account never spends more than its cash)."""
        if self.multiplier == 1:
            return self.cash
        return self.buying_power(view) + order.reserved_cash

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
        order.script_steps, order.script_final = (), None
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
        """Fill the queued orders at the open, in the order they were placed (scripted orders
        follow their script instead)."""
        queued = sorted(
            (o for o in self.orders.values() if o.is_open and not o.script_final),
            key=lambda o: o.seq,
        )
        for order in queued:
            self._fill(order, view)
        return queued

    def on_close(self, view: MarketView) -> None:
        """Expire day orders still open and record the closing equity."""
        for order in self.orders.values():
            if order.is_open and order.expires_at is not None and order.expires_at <= view.now:
                order.status, order.expired_at, order.updated_at = "expired", view.now, view.now
                order.reserved_cash = order.held_qty = Decimal(0)
                order.script_steps, order.script_final = (), None
        self.last_long_value = self.long_market_value(view)
        self.last_equity = self.cash + self.last_long_value

    def advance_scripts(self, view: MarketView, wall_secs: float, polled: set[str]) -> None:
        """Move scripted orders on: one poll for each id in ``polled``, and the wall time."""
        for order in sorted(self.orders.values(), key=lambda o: o.seq):
            if order.script_final:
                advance_script(self, order, view, wall_secs, polled=order.id in polled)

    # ------------------------------------------------------------------ corporate actions

    def apply_action(self, action: CorporateAction, at: datetime) -> None:
        """Apply a split or a cash dividend to the holdings at its ex-date's open."""
        position = self.positions.get(action.symbol)
        qty = position.qty if position is not None else Decimal(0)
        entry: dict[str, Any] = {
            **action.to_json(),
            "at": at.isoformat(),
            "qty_before": fmt_qty_text(qty),
        }
        ratio = Decimal(str(action.value))
        if action.kind is ActionKind.SPLIT:
            if position is not None:
                # The total cost stays; the cost per share divides by the ratio.
                position.qty = floor_qty(position.qty * ratio)
            entry["qty_after"] = fmt_qty_text(position.qty if position else Decimal(0))
        else:
            credit = money(qty * ratio)
            self.cash += credit
            entry["cash_credited"] = str(credit)
        self.corporate_log.append(entry)

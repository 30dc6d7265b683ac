"""The Alpaca trading adapter: alpaca-py's ``TradingClient`` behind our timeouts and retries.

:class:`AlpacaBroker` returns the frozen dataclasses of
:mod:`regime_trader.service.alpaca_parsing`, never SDK models, and raises only the errors of
:mod:`regime_trader.service.exceptions`.

Timeouts, retries and rate-limit pacing live in :mod:`regime_trader.service.alpaca_http`, shared
with :mod:`regime_trader.service.marketdata`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Literal

from alpaca.common.enums import Sort
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest

from regime_trader.service.alpaca_http import AlpacaTransport, HttpPolicy
from regime_trader.service.alpaca_parsing import (
    BrokerAccount,
    BrokerAsset,
    BrokerClock,
    BrokerOrder,
    SessionDay,
    account_to_broker_account,
    asset_to_broker_asset,
    calendar_to_session_days,
    clock_to_broker_clock,
    order_list_to_broker_orders,
    order_to_broker_order,
    positions_to_quantities,
)
from regime_trader.service.exceptions import BadBrokerResponseError, BrokerRejectedError
from regime_trader.service.orders import AccountSnapshot

__all__ = ["AlpacaBroker"]

ORDERS_PAGE_SIZE = 500  # Alpaca's maximum for GET /v2/orders
_MAX_CLIENT_ORDER_ID = 128


class AlpacaBroker:
    """The Alpaca trading API as the daily cycle needs it.

    Parameters
    ----------
    key_id, secret_key : str
        API key pair (never logged or put in messages).
    paper : bool, default True
        Alpaca's paper endpoint; False trades real money.
    url_override : str, optional
        Base URL instead of Alpaca's, e.g. the emulator's ``http://127.0.0.1:PORT``.
    policy : HttpPolicy, optional
        Timeouts and retry budget.
    """

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        paper: bool = True,
        url_override: str | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self._client = TradingClient(
            key_id, secret_key, paper=paper, raw_data=True, url_override=url_override
        )
        self._http = AlpacaTransport(self._client, policy or HttpPolicy(), (key_id, secret_key))

    def clock(self) -> BrokerClock:
        """Return the broker's clock (``GET /v2/clock``)."""
        return clock_to_broker_clock(self._http.call("GET /v2/clock", self._client.get_clock))

    def calendar(self, start: date, end: date) -> list[SessionDay]:
        """Return the sessions from ``start`` to ``end`` inclusive (``GET /v2/calendar``)."""
        if end < start:
            raise ValueError(f"calendar: end {end} is before start {start}")
        request = GetCalendarRequest(start=start, end=end)
        raw = self._http.call("GET /v2/calendar", lambda: self._client.get_calendar(request))
        return calendar_to_session_days(raw)

    def account(self) -> BrokerAccount:
        """Return equity, cash and buying power (``GET /v2/account``)."""
        return account_to_broker_account(
            self._http.call("GET /v2/account", self._client.get_account)
        )

    def positions(self) -> dict[str, Decimal]:
        """Return the held quantity per symbol (``GET /v2/positions``)."""
        raw = self._http.call("GET /v2/positions", self._client.get_all_positions)
        return positions_to_quantities(raw)

    def assets(self, symbols: Sequence[str]) -> dict[str, BrokerAsset]:
        """Return tradability and fractionability per symbol (``GET /v2/assets/{symbol}``).

        Raises
        ------
        BrokerRejectedError
            HTTP 404 for a symbol the broker does not know.
        """
        out: dict[str, BrokerAsset] = {}
        for symbol in dict.fromkeys(symbols):
            call = f"GET /v2/assets/{symbol}"
            asset = asset_to_broker_asset(
                self._http.call(call, partial(self._client.get_asset, symbol))
            )
            if asset.symbol != symbol:
                raise BadBrokerResponseError(f"{call}: answered for {asset.symbol!r}")
            out[symbol] = asset
        return out

    def snapshot(self, symbols: Sequence[str], prices: Mapping[str, Decimal]) -> AccountSnapshot:
        """Return the account, positions and fractionable flags for the order planner.

        Parameters
        ----------
        symbols : sequence of str
            The portfolio's universe; assets are looked up for these and every held symbol.
        prices : mapping of str to Decimal
            Prices to plan with (they must cover every symbol the plan may trade).
        """
        account = self.account()
        held = self.positions()
        assets = self.assets([*symbols, *sorted(held)])
        return AccountSnapshot(
            equity=account.equity,
            cash=account.cash,
            buying_power=account.buying_power,
            non_marginable_buying_power=account.non_marginable_buying_power,
            positions=held,
            prices=dict(prices),
            fractionable={s: a.fractionable for s, a in assets.items()},
        )

    def open_orders(self) -> list[BrokerOrder]:
        """Return every order that may still fill."""
        return self.orders(status="open")

    def orders(
        self,
        *,
        after: datetime | None = None,
        status: Literal["open", "closed", "all"] = "all",
    ) -> list[BrokerOrder]:
        """Return orders submitted after ``after`` (all if None), oldest first.

        Pages through ``GET /v2/orders`` (at most 500 per request) by submission time; orders
        on a page boundary are fetched again and de-duplicated by id.
        """
        if after is not None and after.tzinfo is None:
            raise ValueError(f"after must be timezone-aware, got {after!r}")
        found: dict[str, BrokerOrder] = {}
        cursor = after
        while True:
            page = self._orders_page(status, cursor)
            new = {o.id: o for o in page if o.id not in found}
            found.update(new)
            if len(page) < ORDERS_PAGE_SIZE:
                return list(found.values())
            stamps = [o.submitted_at for o in page if o.submitted_at is not None]
            if not new or not stamps:
                raise BadBrokerResponseError(
                    f"GET /v2/orders: more than {ORDERS_PAGE_SIZE} orders submitted at "
                    f"{cursor}; cannot page further"
                )
            cursor = max(stamps) - timedelta(microseconds=1)

    def _orders_page(self, status: str, after: datetime | None) -> list[BrokerOrder]:
        request = GetOrdersRequest(
            status=QueryOrderStatus(status),
            after=after,
            limit=ORDERS_PAGE_SIZE,
            direction=Sort.ASC,
        )
        raw = self._http.call("GET /v2/orders", lambda: self._client.get_orders(request))
        return order_list_to_broker_orders(raw)

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        """Return the order with this client order id, or None if the broker has none."""
        call = "GET /v2/orders:by_client_order_id"
        try:
            raw = self._http.call(
                call, lambda: self._client.get_order_by_client_id(client_order_id)
            )
        except BrokerRejectedError as e:
            if e.status == 404:
                return None
            raise
        return order_to_broker_order(raw)

    def submit_market_order(
        self, symbol: str, side: Literal["buy", "sell"], qty: Decimal, client_order_id: str
    ) -> BrokerOrder:
        """Submit a market, time-in-force day order for ``qty`` shares.

        The quantity is sent as a decimal string (exact to 9 places; the SDK's request model
        would turn it into a float).

        Raises
        ------
        DuplicateClientOrderError
            The broker already has an order with ``client_order_id``: fetch it instead.
        BrokerRejectedError
            E.g. HTTP 403 code 40310000, insufficient buying power or shares.
        """
        _check_order(symbol, side, qty, client_order_id)
        body = {
            "symbol": symbol,
            "qty": format(qty.normalize(), "f"),
            "side": side,
            "type": "market",
            "time_in_force": "day",
            "client_order_id": client_order_id,
        }
        raw = self._http.call("POST /v2/orders", lambda: self._client.post("/orders", body))
        return order_to_broker_order(raw)

    def cancel_order(self, order_id: str) -> None:
        """Cancel an open order (``DELETE /v2/orders/{id}``).

        Raises
        ------
        BrokerRejectedError
            HTTP 404 (unknown id) or 422 (already filled, cancelled or expired).
        """
        try:
            uuid.UUID(order_id)
        except ValueError:
            raise ValueError(f"order_id must be a UUID, got {order_id!r}") from None
        self._http.call(
            f"DELETE /v2/orders/{order_id}", lambda: self._client.cancel_order_by_id(order_id)
        )


def _check_order(symbol: str, side: str, qty: Decimal, client_order_id: str) -> None:
    if not symbol or symbol != symbol.strip():
        raise ValueError(f"symbol must be a non-empty, unpadded string, got {symbol!r}")
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
        raise ValueError(f"qty must be a positive finite Decimal, got {qty!r}")
    if not 0 < len(client_order_id) <= _MAX_CLIENT_ORDER_ID:
        raise ValueError(f"client_order_id must have 1 to 128 characters, got {client_order_id!r}")

"""The Alpaca trading adapter: alpaca-py's ``TradingClient`` behind our timeouts and retries.

:class:`AlpacaBroker` returns the frozen dataclasses of :mod:`service.alpaca_parsing`, never SDK
models, and raises only the errors of :mod:`service.exceptions`.

Timeouts and retries (:class:`AlpacaTransport`, shared with :mod:`service.marketdata`)
--------------------------------------------------------------------------------------
alpaca-py 0.44 sets no request timeout and, inside ``RESTClient._request``, retries HTTP 429
and 504 up to 3 times with a fixed 3 s sleep. ``TradingClient`` and
``StockHistoricalDataClient`` do not pass ``retry_attempts`` / ``retry_exception_codes`` on
(and ``retry_attempts=0`` would fall back to 3), and no environment variable controls them. So
the transport sets the client's ``_retry`` to 0 (one request per call; a 429 or 504 then raises
``APIError`` at once) and mounts a ``requests`` adapter that gives every request of the client's
session a connect and read timeout. Both touch private attributes, checked at construction: a
future alpaca-py without them fails loudly there instead of retrying blindly.

Our retries (tenacity) apply to HTTP 408, 429, 5xx, timeouts and lost connections only:
exponential backoff with jitter, stopped by whichever comes first of ``retry_attempts`` or
``retry_max_secs`` (no attempt starts whose wait would cross it; an attempt in flight may add
up to ``timeout_secs``). ``POST /v2/orders`` is retried too: the order carries its
``client_order_id``, so a retry of an order that did reach the broker is refused as a duplicate
(:class:`~service.exceptions.DuplicateClientOrderError`) and never creates a second order.
Error messages name the call and never contain the key id or secret.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Literal, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from service.alpaca_parsing import (
    BrokerAccount,
    BrokerAsset,
    BrokerClock,
    BrokerOrder,
    SessionDay,
    account_to_broker_account,
    asset_to_broker_asset,
    calendar_to_session_days,
    clock_to_broker_clock,
    error_response_to_exception,
    order_list_to_broker_orders,
    order_to_broker_order,
    positions_to_quantities,
    redact,
)
from service.exceptions import (
    BadBrokerResponseError,
    BrokerRejectedError,
    BrokerUnavailableError,
    TemporaryBrokerError,
)
from service.orders import AccountSnapshot

__all__ = ["AlpacaBroker", "AlpacaTransport", "HttpPolicy"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
ORDERS_PAGE_SIZE = 500  # Alpaca's maximum for GET /v2/orders
_MAX_CLIENT_ORDER_ID = 128


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry budget of every broker and market-data request.

    Parameters
    ----------
    timeout_secs : float, default 10
        Connect and read timeout of one request, > 0.
    retry_attempts : int, default 4
        Most attempts per call (1 = no retry), >= 1.
    retry_max_secs : float, default 30
        No retry starts whose wait would end later than this after the first attempt, >= 0.
    retry_wait_initial_secs, retry_wait_max_secs : float, default 0.5 and 8
        Wait before retry ``n``: ``min(initial * 2**(n-1), max)`` plus a uniform jitter in
        ``[0, initial]``.
    """

    timeout_secs: float = 10.0
    retry_attempts: int = 4
    retry_max_secs: float = 30.0
    retry_wait_initial_secs: float = 0.5
    retry_wait_max_secs: float = 8.0

    def __post_init__(self) -> None:
        if not self.timeout_secs > 0:
            raise ValueError(f"timeout_secs must be > 0, got {self.timeout_secs!r}")
        if isinstance(self.retry_attempts, bool) or not isinstance(self.retry_attempts, int):
            raise ValueError(f"retry_attempts must be an int, got {self.retry_attempts!r}")
        if self.retry_attempts < 1:
            raise ValueError(f"retry_attempts must be >= 1, got {self.retry_attempts}")
        for name in ("retry_max_secs", "retry_wait_initial_secs", "retry_wait_max_secs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


class _TimeoutAdapter(HTTPAdapter):
    """A ``requests`` adapter that applies a default timeout to requests sent without one."""

    def __init__(self, timeout_secs: float) -> None:
        super().__init__(max_retries=0)
        self._timeout = (timeout_secs, timeout_secs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request``, with our timeout unless the caller gave one."""
        timeout = self._timeout if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


def _configure_sdk_client(client: RESTClient, timeout_secs: float) -> None:
    """Switch off the SDK's own retries and give its HTTP session our timeout."""
    session = getattr(client, "_session", None)
    if not isinstance(getattr(client, "_retry", None), int) or not isinstance(
        session, requests.Session
    ):
        raise RuntimeError(
            "alpaca-py has no RESTClient._retry / _session any more: cannot disable its "
            "fixed-sleep retries or set a timeout; check service/broker.py against this version"
        )
    client._retry = 0
    adapter = _TimeoutAdapter(timeout_secs)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class AlpacaTransport:
    """Run SDK calls with a timeout, bounded retries and translation to project errors.

    Parameters
    ----------
    client : RESTClient
        An alpaca-py client created with ``raw_data=True``; it is reconfigured in place.
    policy : HttpPolicy
        Timeouts and retry budget.
    secrets : iterable of str
        Strings removed from every error message (the key id and secret).
    """

    def __init__(self, client: RESTClient, policy: HttpPolicy, secrets: Iterable[str]) -> None:
        _configure_sdk_client(client, policy.timeout_secs)
        self.policy = policy
        self._secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        """Return ``text`` with every credential replaced by ``***``."""
        return redact(text, self._secrets)

    def call(self, name: str, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` (one HTTP request), retrying temporary failures within the budget.

        Parameters
        ----------
        name : str
            The request for messages and logs, e.g. ``"GET /v2/account"``.
        fn : callable
            Makes the request through the SDK client.

        Raises
        ------
        BrokerUnavailableError
            Retries exhausted, or the request could not be sent.
        AuthenticationError, BrokerRejectedError, BadBrokerResponseError
            Not retried: see :func:`service.alpaca_parsing.error_response_to_exception`.
        """
        p = self.policy
        retrying = Retrying(
            stop=stop_after_attempt(p.retry_attempts) | stop_before_delay(p.retry_max_secs),
            wait=wait_exponential(multiplier=p.retry_wait_initial_secs, max=p.retry_wait_max_secs)
            + wait_random(0, p.retry_wait_initial_secs),
            retry=retry_if_exception_type(TemporaryBrokerError),
            before_sleep=self._log_retry,
        )
        began = time.monotonic()
        try:
            result: _T = retrying(self._attempt, name, fn)
        except RetryError as e:
            attempts = e.last_attempt.attempt_number
            cause = e.last_attempt.exception()
            detail = cause.detail if isinstance(cause, TemporaryBrokerError) else str(cause)
            raise BrokerUnavailableError(
                f"{name} failed after {attempts} attempts in {time.monotonic() - began:.1f} s: "
                f"{detail}",
                attempts,
            ) from cause
        return result

    def _attempt(self, name: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except APIError as e:
            response = e.response
            status = int(response.status_code) if response is not None else 0
            body = response.text if response is not None else str(e)
            raise error_response_to_exception(name, status, body, self._secrets) from e
        except requests.exceptions.JSONDecodeError as e:  # before RequestException: a subclass
            raise BadBrokerResponseError(f"{name}: the response is not JSON ({e})") from e
        except requests.Timeout as e:
            detail = f"no answer within {self.policy.timeout_secs} s (timeout)"
            raise TemporaryBrokerError(name, detail) from e
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            detail = f"connection failed or dropped: {self.redact(str(e))[:300]}"
            raise TemporaryBrokerError(name, detail) from e
        except requests.RequestException as e:
            message = f"{name} could not be sent: {type(e).__name__}: {self.redact(str(e))[:300]}"
            raise BrokerUnavailableError(message, 0) from e

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        _log.warning("%s; attempt %d failed, retrying in %.2f s", error, state.attempt_number, wait)


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

"""HTTP policy of every Alpaca request: timeouts, bounded retries and rate-limit pacing.

Timeouts and retries (:class:`AlpacaTransport`, used by :mod:`regime_trader.service.broker` and
:mod:`regime_trader.service.marketdata`)
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
(:class:`~regime_trader.service.exceptions.DuplicateClientOrderError`) and never creates a second
order. Error messages name the call and never contain the key id or secret.

Rate limits
-----------
Alpaca allows 200 requests per minute per account and answers every request with
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix seconds when
the budget refills). Two rules keep the service, and several replicas sharing one account,
under it:

- **Pacing**: the adapter reads the headers of every answer; when ``Remaining`` is at most
  ``rate_limit_reserve``, the next request waits until ``Reset`` (plus a jitter, bounded by
  ``rate_limit_wait_max_secs``). The reserve leaves room for the requests other replicas have
  in flight when they read the same low number.
- **429**: a refused request is retried after ``Reset`` (same bound and jitter), not after the
  exponential backoff, which would only spend the next attempts inside the same window. These
  waits have their own budget: ``rate_limit_wait_max_secs`` on top of ``retry_max_secs``. A
  429 whose headers still report requests remaining is not the spent budget (a proxy, an
  injected fault): it gets the exponential backoff.
- Every 429 calls ``HttpPolicy.rate_limited_hook`` (the service counts them in
  ``regime_trader_broker_rate_limited_total``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type

from regime_trader.service.alpaca_errors import error_response_to_exception, redact
from regime_trader.service.exceptions import (
    BadBrokerResponseError,
    BrokerUnavailableError,
    RateLimitedError,
    TemporaryBrokerError,
)

__all__ = ["AlpacaTransport", "HttpPolicy", "RatePacer"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retry budget and rate-limit pacing of every broker and market-data request.

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
    rate_limit_wait_max_secs : float, default 61
        Longest wait for ``X-RateLimit-Reset`` (after a 429, or to pace), >= 0; one minute
        window plus a second of clock skew.
    rate_limit_reserve : int, default 5
        Pace (wait for the reset) once ``X-RateLimit-Remaining`` is at most this, >= 0.
    rate_limited_hook : callable(call), optional
        Called with the request's name for every HTTP 429 answer (a metrics counter).
    request_gate : callable(), optional
        Called before every request and blocks until it may go: the account's budget shared
        by all replicas (:class:`regime_trader.service.request_budget.SharedRequestBudget`).
    """

    timeout_secs: float = 10.0
    retry_attempts: int = 4
    retry_max_secs: float = 30.0
    retry_wait_initial_secs: float = 0.5
    retry_wait_max_secs: float = 8.0
    rate_limit_wait_max_secs: float = 61.0
    rate_limit_reserve: int = 5
    rate_limited_hook: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    request_gate: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.timeout_secs > 0:
            raise ValueError(f"timeout_secs must be > 0, got {self.timeout_secs!r}")
        for name in ("retry_attempts", "rate_limit_reserve"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.retry_attempts < 1:
            raise ValueError(f"retry_attempts must be >= 1, got {self.retry_attempts}")
        if self.rate_limit_reserve < 0:
            raise ValueError(f"rate_limit_reserve must be >= 0, got {self.rate_limit_reserve}")
        for name in (
            "retry_max_secs",
            "retry_wait_initial_secs",
            "retry_wait_max_secs",
            "rate_limit_wait_max_secs",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric header, its name in any case, or None if absent or not a number."""
    value = headers.get(name)
    if value is None:  # a plain mapping: HTTP header names are case-insensitive
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _spent_until(headers: Mapping[str, str]) -> float | None:
    """``X-RateLimit-Reset`` of a 429 whose headers say the budget is spent, else None.

    A 429 that reports requests remaining (a proxy's refusal, an injected fault) is not the
    per-minute budget: waiting a whole window for it would be wasted, so it gets the
    exponential backoff like any other temporary error.
    """
    remaining = _header_number(headers, "X-RateLimit-Remaining")
    if remaining is not None and remaining > 0:
        return None
    return _header_number(headers, "X-RateLimit-Reset")


class RatePacer:
    """Remembers the last ``X-RateLimit-*`` headers and spaces requests when few remain.

    Parameters
    ----------
    reserve : int
        Wait before a request once ``Remaining`` is at most this.
    max_wait_secs : float
        Longest single wait.
    jitter_secs : float
        A uniform ``[0, jitter_secs]`` added to each wait, so replicas do not all send at the
        reset instant.
    now, sleep : callable
        Wall clock (Unix seconds) and sleep; the defaults are the real ones.
    """

    def __init__(
        self,
        reserve: int,
        max_wait_secs: float,
        jitter_secs: float,
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        gate: Callable[[], None] | None = None,
    ) -> None:
        self.reserve = reserve
        self._gate = gate
        self.max_wait_secs = max_wait_secs
        self.jitter_secs = jitter_secs
        self._now, self._sleep = now, sleep
        self._lock = threading.Lock()
        self._remaining: float | None = None
        self._reset: float | None = None
        self.paced = 0  # requests that waited for a reset (for logs and tests)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the rate-limit headers of an answer (other than a 429: see below)."""
        remaining = _header_number(headers, "X-RateLimit-Remaining")
        reset = _header_number(headers, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        with self._lock:
            self._remaining, self._reset = remaining, reset

    @property
    def reset_epoch_secs(self) -> float | None:
        """The last ``X-RateLimit-Reset`` seen."""
        return self._reset

    def wait_for_reset(self) -> float:
        """Seconds from now until the last reset plus jitter, bounded (0 if it has passed)."""
        reset = self._reset
        if reset is None:
            return 0.0
        ahead = reset - self._now()
        if ahead <= 0:
            return 0.0
        # Seeded per call by the OS: spreading replicas, not security.
        jitter = random.uniform(0, self.jitter_secs)  # nosec B311
        return min(ahead + jitter, self.max_wait_secs)

    def before_request(self) -> None:
        """Wait for the shared budget (if any), then for the reset if the last answer left at
        most ``reserve`` requests."""
        if self._gate is not None:
            self._gate()
        with self._lock:
            low = self._remaining is not None and self._remaining <= self.reserve
            wait = self.wait_for_reset() if low else 0.0
            if low:
                self._remaining = None  # the next answer tells the new budget
        if wait > 0:
            self.paced += 1
            _log.info("rate limit nearly spent: waiting %.2f s for the reset", wait)
            self._sleep(wait)


class _TimeoutAdapter(HTTPAdapter):
    """A ``requests`` adapter: default timeout, rate-limit pacing before, headers after."""

    def __init__(self, timeout_secs: float, pacer: RatePacer) -> None:
        super().__init__(max_retries=0)
        self._timeout = (timeout_secs, timeout_secs)
        self._pacer = pacer

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
        self._pacer.before_request()
        response = super().send(request, stream, timeout, verify, cert, proxies)
        # A 429 is waited out by the transport's retry (until its reset): pacing on it as well
        # would wait twice.
        if response.status_code != 429:
            self._pacer.observe(response.headers)
        return response


def _configure_sdk_client(client: RESTClient, timeout_secs: float, pacer: RatePacer) -> None:
    """Switch off the SDK's own retries and give its HTTP session our timeout and pacing."""
    session = getattr(client, "_session", None)
    if not isinstance(getattr(client, "_retry", None), int) or not isinstance(
        session, requests.Session
    ):
        raise RuntimeError(
            "alpaca-py has no RESTClient._retry / _session any more: cannot disable its "
            "fixed-sleep retries or set a timeout; check service/alpaca_http.py against this "
            "version"
        )
    client._retry = 0
    adapter = _TimeoutAdapter(timeout_secs, pacer)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


class AlpacaTransport:
    """Run SDK calls with a timeout, bounded retries, pacing and translation to project errors.

    Parameters
    ----------
    client : RESTClient
        An alpaca-py client created with ``raw_data=True``; it is reconfigured in place.
    policy : HttpPolicy
        Timeouts, retry budget and rate-limit pacing.
    secrets : iterable of str
        Strings removed from every error message (the key id and secret).
    now, sleep : callable, optional
        Wall clock (Unix seconds) and sleep used for retry and pacing waits; the real ones by
        default (tests pass a recording sleep to measure waits without spending them).
    """

    def __init__(
        self,
        client: RESTClient,
        policy: HttpPolicy,
        secrets: Iterable[str],
        *,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pacer = RatePacer(
            policy.rate_limit_reserve,
            policy.rate_limit_wait_max_secs,
            policy.retry_wait_initial_secs,
            now=now,
            sleep=sleep,
            gate=policy.request_gate,
        )
        _configure_sdk_client(client, policy.timeout_secs, self.pacer)
        self.policy = policy
        self._secrets = tuple(s for s in secrets if s)
        self._now, self._sleep = now, sleep

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
            Not retried: see
            :func:`regime_trader.service.alpaca_parsing.error_response_to_exception`.
        """
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(TemporaryBrokerError),
            before_sleep=self._log_retry,
            sleep=self._sleep,
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

    def _wait(self, state: RetryCallState) -> float:
        """Until the rate-limit reset after a 429; exponential backoff with jitter otherwise."""
        p = self.policy
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimitedError) and error.reset_epoch_secs is not None:
            ahead = error.reset_epoch_secs - self._now()
            # Seeded by the OS: spreading replicas, not security.
            jitter = random.uniform(0, p.retry_wait_initial_secs)  # nosec B311
            return min(max(ahead, 0.0) + jitter, p.rate_limit_wait_max_secs)
        growth = float(2 ** (state.attempt_number - 1))
        backoff = min(p.retry_wait_initial_secs * growth, p.retry_wait_max_secs)
        return backoff + random.uniform(0, p.retry_wait_initial_secs)  # nosec B311

    def _stop(self, state: RetryCallState) -> bool:
        """Out of attempts, or the next wait would end past the budget."""
        p = self.policy
        if state.attempt_number >= p.retry_attempts:
            return True
        error = state.outcome.exception() if state.outcome is not None else None
        budget = p.retry_max_secs
        if isinstance(error, RateLimitedError):
            budget += p.rate_limit_wait_max_secs
        upcoming = state.upcoming_sleep or 0.0
        elapsed = state.seconds_since_start or 0.0
        return elapsed + upcoming >= budget

    def _attempt(self, name: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except APIError as e:
            response = e.response
            status = int(response.status_code) if response is not None else 0
            body = response.text if response is not None else str(e)
            error = error_response_to_exception(name, status, body, self._secrets)
            if status == 429 and isinstance(error, TemporaryBrokerError):
                if hook := self.policy.rate_limited_hook:
                    hook(name)
                headers = response.headers if response is not None else {}
                raise RateLimitedError(name, error.detail, _spent_until(headers)) from e
            raise error from e
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

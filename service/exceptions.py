"""The service's errors, grouped by what the caller does next.

========================== ====================================================================
group                      the caller ...
========================== ====================================================================
ConfigError                does not start: the settings or the portfolio file are invalid; the
                           message names the setting and the fix
TemporaryBrokerError       retries (the adapters already do, within their retry budget)
OperationalError           stops the cycle and alerts: the broker is unreachable or the keys are
                           wrong; retrying now will not help
BrokerRejectedError        handles this one request: the broker understood it and said no
InvalidInputError          trades nothing on it and alerts: external input (bars, broker JSON,
                           a macro file) failed validation; the message names the field
========================== ====================================================================

Third-party exceptions (alpaca-py, requests) are translated inside the adapters only, with
``raise ... from e``. Messages name the call or field and the value, never a credential.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadBrokerResponseError",
    "BadMarketDataError",
    "BrokerRejectedError",
    "BrokerUnavailableError",
    "ConfigError",
    "DuplicateClientOrderError",
    "InvalidInputError",
    "OperationalError",
    "OrderStateUnknownError",
    "RateLimitedError",
    "ReconciliationError",
    "RegimeTraderError",
    "TemporaryBrokerError",
]


class RegimeTraderError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(RegimeTraderError):
    """The configuration is invalid; the service must not start."""


class TemporaryBrokerError(RegimeTraderError):
    """One attempt failed in a way worth retrying: HTTP 429 or 5xx, a timeout, a lost connection.

    Parameters
    ----------
    call : str
        The request, e.g. ``"GET /v2/account"``.
    detail : str
        What went wrong, e.g. ``"HTTP 503 code 50310000: service unavailable"``.
    status : int, optional
        The HTTP status, if a response arrived.
    """

    def __init__(self, call: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{call} failed: {detail}")
        self.call = call
        self.detail = detail
        self.status = status


class RateLimitedError(TemporaryBrokerError):
    """HTTP 429: the account's request budget is spent until ``reset_epoch_secs``.

    Parameters
    ----------
    call, detail : str
        As for :class:`TemporaryBrokerError`.
    reset_epoch_secs : float, optional
        Alpaca's ``X-RateLimit-Reset`` (Unix seconds when the budget refills), if sent.
    """

    def __init__(self, call: str, detail: str, reset_epoch_secs: float | None) -> None:
        super().__init__(call, detail, 429)
        self.reset_epoch_secs = reset_epoch_secs


class OperationalError(RegimeTraderError):
    """The cycle cannot go on: stop, alert, and let the next wake-up try again."""


class BrokerUnavailableError(OperationalError):
    """The broker could not be reached within the retry budget, or the request could not be sent.

    Parameters
    ----------
    message : str
        The call, the number of attempts and the last failure.
    attempts : int
        Attempts made (0 if the request could not be sent at all).
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class ReconciliationError(OperationalError):
    """The broker's account is not in a state we can trade from (blocked, foreign open orders)."""


class AuthenticationError(OperationalError):
    """The broker refused the API keys (HTTP 401); fix the configuration."""


class BrokerRejectedError(RegimeTraderError):
    """The broker understood the request and refused it (HTTP 4xx other than 401 and 429).

    Parameters
    ----------
    message : str
        The call, the HTTP status and Alpaca's code and message.
    status : int
        HTTP status, e.g. 403 or 422.
    code : int, optional
        Alpaca's error code, e.g. 40310000 (insufficient buying power or shares).
    broker_message : str
        Alpaca's ``message`` (or the start of the response body).
    """

    def __init__(self, message: str, status: int, code: int | None, broker_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.broker_message = broker_message


class DuplicateClientOrderError(BrokerRejectedError):
    """An order with this ``client_order_id`` already exists (HTTP 422, code 40010001/42210000).

    The earlier order may come from a previous run of the same cycle, or from an earlier attempt
    of the same call whose answer was lost: fetch it by client order id instead of resubmitting.
    """


class InvalidInputError(RegimeTraderError, ValueError):
    """External input failed validation; nothing is traded on it."""


class BadBrokerResponseError(InvalidInputError):
    """A broker response does not have the expected shape; the message names the field."""


class OrderStateUnknownError(BadBrokerResponseError):
    """What an order of ours is doing cannot be told: nothing more is traded on top of it.

    An undocumented status (see :mod:`regime_trader.service.order_status`), or a
    ``client_order_id`` the broker calls a duplicate but cannot find. The message names each order
    and why.
    """


class BadMarketDataError(InvalidInputError):
    """Bars failed validation; the message names the symbol, the session date and the problem."""

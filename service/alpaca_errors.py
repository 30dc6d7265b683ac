"""Alpaca's HTTP error answers -> the project's exception taxonomy (pure: no I/O).

Grouped by what the caller does next (STYLE.md): :class:`TemporaryBrokerError` is retried,
:class:`AuthenticationError` and :class:`BrokerRejectedError` are not, and
:class:`DuplicateClientOrderError` makes the caller look the order up. Credentials are removed
from every message (:func:`redact`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from regime_trader.service.exceptions import (
    AuthenticationError,
    BrokerRejectedError,
    DuplicateClientOrderError,
    RegimeTraderError,
    TemporaryBrokerError,
)

__all__ = ["error_response_to_exception", "redact"]

# A duplicate client_order_id comes as code 40010001 (documented) or 42210000 (seen from the
# real API), both with the message "client_order_id must be unique". Both codes are also
# Alpaca's generic validation codes (e.g. 42210000 'asset "XXXX" not found'), so a code alone
# is a duplicate only when its message is about the client_order_id or empty; the message
# alone is enough under any code. The caller always confirms by looking the order up.
_DUPLICATE_CODES = frozenset({40010001, 42210000})
_DUPLICATE_MESSAGE = "client_order_id must be unique"
_BODY_CHARS = 300
_MIN_SECRET_CHARS = 4  # shorter "secrets" are test values; replacing them would garble text


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
    # The code is shown as well: a secret the body echoes can stand in it too (digits of a key).
    shown = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {message}"
    detail = redact(shown, secrets)
    text = f"{call} failed: {detail}"
    if status in (408, 429) or status >= 500:
        return TemporaryBrokerError(call, detail, status)
    if status == 401:
        return AuthenticationError(f"{text} (check the API key id and secret)")
    if _is_duplicate(code, message):
        return DuplicateClientOrderError(text, status, code, message)
    return BrokerRejectedError(text, status, code, message)

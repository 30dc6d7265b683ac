"""Alpaca's error answers (recorded from the emulator, and the shapes the real API sends) map to
the exception the caller acts on, with credentials removed."""

from __future__ import annotations

import json

import pytest

from regime_trader.service.alpaca_errors import error_response_to_exception, redact
from regime_trader.service.exceptions import (
    AuthenticationError,
    BrokerRejectedError,
    DuplicateClientOrderError,
    TemporaryBrokerError,
)
from tests.support.alpaca_recorded import RECORDED


def test_recorded_duplicate_client_order_id_is_its_own_error() -> None:
    body = json.dumps(RECORDED["error_duplicate"])
    error = error_response_to_exception("POST /v2/orders", 422, body)
    assert isinstance(error, DuplicateClientOrderError)
    assert (error.status, error.code) == (422, 40010001)
    assert str(error) == (
        "POST /v2/orders failed: HTTP 422 code 40010001: client_order_id must be unique"
    )


# Both duplicate shapes reported from the real API, and the message without any code.
DUPLICATE_ANSWERS = {
    "code_40010001": (422, '{"code": 40010001, "message": "client_order_id must be unique"}'),
    "code_42210000": (422, '{"code": 42210000, "message": "client_order_id must be unique"}'),
    "message_only": (422, '{"message": "client_order_id must be unique"}'),
    "message_other_code": (400, '{"code": 40010000, "message": "Client_Order_Id must be unique"}'),
    "code_42210000_no_message": (422, '{"code": 42210000, "message": ""}'),
}


@pytest.mark.parametrize("name", sorted(DUPLICATE_ANSWERS))
def test_duplicate_client_order_id_is_recognised_by_code_or_message(name: str) -> None:
    status, body = DUPLICATE_ANSWERS[name]
    error = error_response_to_exception("POST /v2/orders", status, body)
    assert isinstance(error, DuplicateClientOrderError), name
    assert error.status == status


@pytest.mark.parametrize(
    "body",
    [
        '{"code": 42210000, "message": "asset \\"XXXX\\" not found"}',
        '{"code": 42210000, "message": "qty must be > 0"}',
        '{"code": 40010001, "message": "order_id is missing"}',
    ],
)
def test_a_duplicate_code_about_something_else_is_a_plain_rejection(body: str) -> None:
    # Both codes are also Alpaca's generic validation codes: the message decides.
    error = error_response_to_exception("POST /v2/orders", 422, body)
    assert type(error) is BrokerRejectedError
    assert error.code in (40010001, 42210000)


def test_recorded_insufficient_buying_power_is_a_rejection_with_its_code() -> None:
    body = json.dumps(RECORDED["error_buying_power"])
    error = error_response_to_exception("POST /v2/orders", 403, body)
    assert type(error) is BrokerRejectedError
    assert (error.code, error.broker_message) == (40310000, "insufficient buying power")


def test_other_422_with_the_same_code_is_not_a_duplicate() -> None:
    body = json.dumps({"code": 40010001, "message": "qty must be > 0"})
    assert type(error_response_to_exception("POST /v2/orders", 422, body)) is BrokerRejectedError


def test_recorded_unauthorized_is_an_authentication_error() -> None:
    error = error_response_to_exception(
        "GET /v2/account", 401, json.dumps(RECORDED["error_unauthorized"])
    )
    assert isinstance(error, AuthenticationError)
    assert "HTTP 401 code 40110000: request is not authorized" in str(error)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_rate_limit_and_server_errors_are_temporary(status: int) -> None:
    error = error_response_to_exception("GET /v2/clock", status, '{"code":1,"message":"x"}')
    assert isinstance(error, TemporaryBrokerError) and error.status == status
    assert error.detail == f"HTTP {status} code 1: x"


def test_non_json_error_body_is_quoted_shortened() -> None:
    error = error_response_to_exception("GET /v2/clock", 502, "<html>\n bad   gateway" + "x" * 500)
    assert isinstance(error, TemporaryBrokerError)
    assert error.detail.startswith("HTTP 502: <html> bad gateway") and error.detail.endswith("...")
    assert len(error.detail) < 320


def test_credentials_echoed_in_a_body_are_redacted() -> None:
    body = json.dumps({"code": 40010000, "message": "bad key AKID1234 with SECRET99"})
    error = error_response_to_exception("GET /v2/x", 400, body, ("AKID1234", "SECRET99"))
    assert "AKID1234" not in str(error) and "SECRET99" not in str(error)
    assert isinstance(error, BrokerRejectedError) and error.broker_message == "bad key *** with ***"
    assert redact("ab abc", ("ab",)) == "ab abc"  # too short to be a credential: left alone

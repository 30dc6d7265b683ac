"""Timeouts, retries and error translation against faults injected into the emulator."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.exceptions import (
    AuthenticationError,
    BrokerRejectedError,
    BrokerUnavailableError,
    DuplicateClientOrderError,
)
from regime_trader.service.marketdata import AlpacaBars
from tests.support.emulator import FAST, KEY_ID, NY, SECRET_KEY, EmulatorDriver

OPEN = datetime(2024, 1, 3, 11, 0, tzinfo=NY)


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "regime_trader.service.alpaca_http"]


@pytest.mark.parametrize(("status", "code"), [(429, 42910000), (503, 50310000)])
def test_temporary_error_is_recovered_within_the_budget(
    emu: EmulatorDriver,
    broker: AlpacaBroker,
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: int,
) -> None:
    emu.add_fault(path="/v2/account", status=status, count=2)
    with caplog.at_level(logging.WARNING, logger="regime_trader.service.alpaca_http"):
        assert broker.account().cash == Decimal("100000.00")
    logged = retries_logged(caplog)
    assert len(logged) == 2  # two failed attempts, the third succeeded
    assert all(f"GET /v2/account failed: HTTP {status} code {code}" in m for m in logged)
    assert emu.faults() == []  # both injected answers were consumed


def test_exhausted_budget_is_broker_unavailable_naming_the_call(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    fault = emu.add_fault(path="/v2/account", status=503)
    with pytest.raises(
        BrokerUnavailableError,
        match=r"^GET /v2/account failed after 4 attempts in \d+\.\d s: HTTP 503 code 50310000: "
        "service unavailable$",
    ) as err:
        broker.account()
    assert err.value.attempts == emu.hits(fault.id) == 4


def test_sdk_fixed_sleep_retries_are_off(emu: EmulatorDriver, broker: AlpacaBroker) -> None:
    fault = emu.add_fault(path="/v2/clock", status=429)
    began = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="after 4 attempts"):
        broker.clock()
    assert emu.hits(fault.id) == 4  # alpaca-py alone would make 4 requests per attempt, 3 s apart
    assert time.monotonic() - began < 2.0


def test_time_budget_stops_retries_before_the_attempts_run_out(emu: EmulatorDriver) -> None:
    policy = replace(
        FAST, retry_attempts=50, retry_max_secs=0.5, retry_wait_initial_secs=0.1,
        retry_wait_max_secs=0.1,
    )  # fmt: skip
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=emu.url, policy=policy)
    fault = emu.add_fault(path="/v2/positions", status=500)
    began = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as err:
        broker.positions()
    assert 2 <= err.value.attempts == emu.hits(fault.id) <= 5
    assert time.monotonic() - began < 1.0


def test_rejections_are_not_retried(emu: EmulatorDriver, broker: AlpacaBroker) -> None:
    emu.set_clock(OPEN)
    fault = emu.add_fault(path="/v2/orders", method="POST", status=403, code=40310000)
    with pytest.raises(BrokerRejectedError, match="HTTP 403 code 40310000"):
        broker.submit_market_order("SPY", "buy", Decimal(1), "refused-once")
    assert emu.hits(fault.id) == 1


def test_dropped_connection_is_retried(
    emu: EmulatorDriver, broker: AlpacaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    emu.add_fault(path="/v2/positions", drop=True, count=1)
    with caplog.at_level(logging.WARNING, logger="regime_trader.service.alpaca_http"):
        assert broker.positions() == {}
    (logged,) = retries_logged(caplog)
    assert "GET /v2/positions failed: connection failed or dropped" in logged


def test_connection_dropped_every_time_is_broker_unavailable(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    fault = emu.add_fault(path="/v2/clock", drop=True)
    with pytest.raises(
        BrokerUnavailableError,
        match=r"GET /v2/clock failed after 4 attempts .*: connection failed or dropped",
    ):
        broker.clock()
    assert emu.hits(fault.id) == 4


def test_slow_response_times_out_and_is_retried(
    emu: EmulatorDriver, caplog: pytest.LogCaptureFixture
) -> None:
    broker = AlpacaBroker(
        KEY_ID, SECRET_KEY, url_override=emu.url, policy=replace(FAST, timeout_secs=0.2)
    )
    emu.add_fault(path="/v2/account", latency_ms=1000, count=1)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="regime_trader.service.alpaca_http"):
        assert broker.account().equity == Decimal("100000.00")
    assert 0.2 <= time.monotonic() - began < 0.9  # gave up on the slow answer
    (logged,) = retries_logged(caplog)
    assert "GET /v2/account failed: no answer within 0.2 s (timeout)" in logged


def test_always_slow_is_unavailable_after_timeouts(emu: EmulatorDriver) -> None:
    policy = replace(FAST, timeout_secs=0.2, retry_attempts=2)
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=emu.url, policy=policy)
    emu.add_fault(path="/v2/clock", latency_ms=600)
    with pytest.raises(BrokerUnavailableError, match=r"after 2 attempts .*0\.2 s \(timeout\)"):
        broker.clock()


def test_submit_retried_after_503_creates_one_order(
    emu: EmulatorDriver, broker: AlpacaBroker
) -> None:
    emu.set_clock(OPEN)
    emu.add_fault(path="/v2/orders", method="POST", status=503, count=2)
    order = broker.submit_market_order("SPY", "buy", Decimal(2), "retried-submit")
    assert order.status == "filled"
    assert [o["client_order_id"] for o in emu.orders()] == ["retried-submit"]


def test_submit_whose_answer_was_lost_never_creates_a_second_order(emu: EmulatorDriver) -> None:
    emu.set_clock(OPEN)
    policy = replace(FAST, timeout_secs=0.3)
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=emu.url, policy=policy)
    emu.add_fault(path="/v2/orders", method="POST", latency_ms=800, count=1)  # then it is served
    try:
        order = broker.submit_market_order("SPY", "buy", Decimal(2), "lost-answer")
    except DuplicateClientOrderError:
        order = None  # the slow first request landed before our retry
    time.sleep(0.8)  # let the slow first request finish on the server
    placed = [o for o in emu.orders() if o["client_order_id"] == "lost-answer"]
    assert len(placed) == 1
    assert order is None or order.id == placed[0]["id"]
    assert broker.positions() == {"SPY": Decimal(2)}


def test_wrong_secret_is_an_authentication_error_without_retry_or_key(emu: EmulatorDriver) -> None:
    fault = emu.add_fault(path="/v2/account", latency_ms=1)  # counts requests
    broker = AlpacaBroker(KEY_ID, "wrong-secret-key", url_override=emu.url, policy=FAST)
    with pytest.raises(AuthenticationError, match="GET /v2/account failed: HTTP 401") as err:
        broker.account()
    assert emu.hits(fault.id) == 1
    assert KEY_ID not in str(err.value) and "wrong-secret-key" not in str(err.value)


def test_credentials_echoed_by_the_server_never_reach_messages_or_logs(
    emu: EmulatorDriver, broker: AlpacaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    echo = f"upstream said: key={KEY_ID} secret={SECRET_KEY}"
    emu.add_fault(path="/v2/account", status=502, message=echo)
    with caplog.at_level(logging.WARNING), pytest.raises(BrokerUnavailableError) as err:
        broker.account()
    text = str(err.value) + caplog.text
    assert "upstream said: key=*** secret=***" in str(err.value)
    assert KEY_ID not in text and SECRET_KEY not in text


def test_market_data_pages_are_retried(emu: EmulatorDriver, bars: AlpacaBars) -> None:
    emu.add_fault(path="/v2/stocks/bars", status=504, count=1)
    closes = bars.daily_closes(["SPY"], date(2023, 12, 1), date(2023, 12, 29))
    assert len(closes) == 20


def test_market_data_outage_is_broker_unavailable(emu: EmulatorDriver, bars: AlpacaBars) -> None:
    emu.add_fault(path="/v2/stocks/bars", status=500)
    with pytest.raises(BrokerUnavailableError, match=r"GET /v2/stocks/bars \(page 1\) failed"):
        bars.daily_closes(["SPY"], date(2023, 12, 1), date(2023, 12, 29))

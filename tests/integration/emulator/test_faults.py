"""Injected faults as a client sees them: error statuses, latency, dropped connections."""

from __future__ import annotations

import time

import httpx
import pytest
import requests
from alpaca.common.exceptions import APIError

from tests.support.emulator import HEADERS, EmulatorDriver


def get_clock(emu: EmulatorDriver) -> httpx.Response:
    return emu.http.get("/v2/clock", headers=HEADERS)


def test_injected_503_is_seen_by_raw_http_and_by_the_sdk(emu: EmulatorDriver) -> None:
    emu.add_fault(path="/v2/account", method="GET", status=503, count=2)
    response = emu.http.get("/v2/account", headers=HEADERS)
    assert response.status_code == 503
    assert response.json() == {"code": 50310000, "message": "service unavailable"}
    with pytest.raises(APIError) as err:
        emu.trading.get_account()
    assert (err.value.status_code, err.value.code) == (503, 50310000)
    assert emu.trading.get_account().cash == "100000.00"  # count=2 used up
    assert emu.faults() == []


def test_injected_429_with_custom_body_then_normal_service(emu: EmulatorDriver) -> None:
    emu.add_fault(
        path="/v2/orders*",
        method="POST",
        status=429,
        code=42910000,
        message="rate limit exceeded",
        count=1,
    )
    body = {"symbol": "SPY", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day"}
    refused = emu.http.post("/v2/orders", json=body, headers=HEADERS)
    assert refused.status_code == 429
    assert refused.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert emu.http.get("/v2/orders", headers=HEADERS).json() == []  # GET unaffected
    accepted = emu.http.post("/v2/orders", json=body, headers=HEADERS)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"


def test_dropped_connection_gives_no_response_at_all(emu: EmulatorDriver) -> None:
    emu.add_fault(path="/v2/clock", drop=True, count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        get_clock(emu)
    assert get_clock(emu).status_code == 200


def test_dropped_connection_surfaces_in_the_sdk_as_a_connection_error(emu: EmulatorDriver) -> None:
    emu.add_fault(path="/v2/positions", drop=True, count=1)
    with pytest.raises(requests.ConnectionError):
        emu.trading.get_all_positions()
    assert emu.trading.get_all_positions() == []


def test_latency_delays_the_answer(emu: EmulatorDriver) -> None:
    emu.add_fault(path="/v2/clock", latency_ms=300, count=1)
    began = time.monotonic()
    assert get_clock(emu).status_code == 200
    assert time.monotonic() - began >= 0.3


def test_probabilistic_fault_replays_identically_with_the_same_seed(emu: EmulatorDriver) -> None:
    def pattern() -> list[int]:
        emu.clear_faults()
        emu.add_fault(path="/v2/clock", status=500, probability=0.5, seed=7)
        return [get_clock(emu).status_code for _ in range(24)]

    first, second = pattern(), pattern()
    assert first == second
    assert set(first) == {200, 500}


def test_fault_spec_errors_are_refused(emu: EmulatorDriver) -> None:
    for spec in (
        {"path": "v2/clock", "status": 500},
        {"path": "/v2/clock"},
        {"path": "/v2/clock", "status": 200},
        {"path": "/x", "status": 500, "bogus": 1},
    ):
        response = emu.http.post("/admin/faults", json=spec)
        assert response.status_code == 400, spec
    assert emu.faults() == []

"""API keys are checked on every /v2 call; the request rate is limited like Alpaca's."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockLatestBarRequest
from alpaca.trading.client import TradingClient

from regime_trader.service.emulator import EmulatorConfig
from regime_trader.service.emulator.ratelimit import RequestStats
from tests.support.emulator import HEADERS, KEY_ID, EmulatorDriver


def test_wrong_secret_is_401_for_trading_and_data(emu: EmulatorDriver) -> None:
    trading = TradingClient(KEY_ID, "wrong", paper=True, url_override=emu.url)
    with pytest.raises(APIError) as err:
        trading.get_account()
    assert (err.value.status_code, err.value.code) == (401, 40110000)
    data = StockHistoricalDataClient("other-key", "wrong", url_override=emu.url)
    with pytest.raises(APIError) as err:
        data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="SPY"))
    assert err.value.status_code == 401


def test_missing_headers_are_401_and_admin_needs_none(emu: EmulatorDriver) -> None:
    response = emu.http.get("/v2/clock")
    assert response.status_code == 401
    assert response.json() == {"code": 40110000, "message": "request is not authorized"}
    assert emu.http.get("/admin/health").json() == {"status": "ok"}


def test_unknown_route_is_an_alpaca_shaped_404(emu: EmulatorDriver) -> None:
    response = emu.http.get("/v2/watchlists", headers=HEADERS)
    assert response.status_code == 404 and response.json()["code"] == 40410000


def _early_in_a_minute() -> None:
    """Return with at least 2 s left in the limiter's one-minute window."""
    while 60 - time.time() % 60 < 2:
        time.sleep(0.1)


def test_rate_limit_refuses_with_429_and_headers_on_every_answer(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(rate_limit_per_min=3)
    _early_in_a_minute()  # the four requests inside one one-minute window
    answers = [emu.http.get("/v2/clock", headers=HEADERS) for _ in range(3)]
    answers.append(emu.http.get("/v2/clock"))  # unauthorised still counts, still has headers
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["X-Ratelimit-Limit"] for a in answers} == {"3"}
    resets = {int(a.headers["X-Ratelimit-Reset"]) for a in answers}
    assert len(resets) == 1 and resets.pop() % 60 == 0
    assert answers[-1].json()["code"] == 42910000
    assert emu.http.get("/admin/health").status_code == 200  # admin is not limited


def test_rate_limit_off_sends_no_headers(emu: EmulatorDriver) -> None:
    response = emu.http.get("/v2/clock", headers=HEADERS)
    assert "X-Ratelimit-Limit" not in response.headers


def test_the_limiter_is_on_by_default_with_alpacas_200_per_minute(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    assert EmulatorConfig().rate_limit_per_min == 200
    emu = start_emulator(rate_limit_per_min=EmulatorConfig().rate_limit_per_min)
    response = emu.http.get("/v2/account", headers=HEADERS)
    assert response.headers["X-Ratelimit-Limit"] == "200"
    assert int(response.headers["X-Ratelimit-Remaining"]) < 200


def test_request_statistics_count_requests_429s_and_the_busiest_minute_per_key(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(rate_limit_per_min=3)
    _early_in_a_minute()  # the five requests inside one one-minute window
    codes = [emu.http.get("/v2/clock", headers=HEADERS).status_code for _ in range(5)]
    emu.http.get("/v2/clock", headers={"APCA-API-KEY-ID": "someone-else"})
    assert codes == [200, 200, 200, 429, 429]
    stats = emu.requests()
    assert stats.limit_per_min == 3
    mine = stats.accounts[KEY_ID]
    assert (mine.requests, mine.rate_limited, mine.max_per_60s) == (5, 2, 5)
    assert stats.accounts["someone-else"].requests == 1
    assert emu.healthy()  # admin routes are not counted
    assert emu.requests().accounts[KEY_ID].requests == 5
    emu.clear_requests()
    assert emu.requests().accounts == {}


def test_the_busiest_minute_is_a_sliding_60_second_window() -> None:
    clock = [0.0]
    stats = RequestStats(now=lambda: clock[0])
    for t in (0.0, 10.0, 59.9, 60.0, 61.0, 200.0):
        clock[0] = t
        stats.record("k", limited=False)
    # (10, 59.9, 60, 61) lie within 60 s of each other; 0 drops out at 60.
    assert stats.to_json()["k"]["max_per_60s"] == 4
    assert stats.to_json()["k"]["requests"] == 6


def test_an_unknown_v2_route_is_counted_and_carries_the_headers(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(rate_limit_per_min=50)
    response = emu.http.get("/v2/watchlists", headers=HEADERS)
    assert response.status_code == 404 and response.json()["code"] == 40410000
    assert response.headers["X-Ratelimit-Limit"] == "50"
    assert emu.requests().accounts[KEY_ID].requests == 1

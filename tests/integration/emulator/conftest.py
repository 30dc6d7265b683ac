"""Emulators on free loopback ports, and the real alpaca-py clients pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from regime_trader.service.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.e2e.harness import ADMIN_LIMITS

NY = ZoneInfo("America/New_York")
KEY_ID = "test-key-id"
SECRET_KEY = "test-secret-key"
# The default start: Tuesday 2024-01-02, 08:00 New York, before the first open of 2024.
START = datetime(2024, 1, 2, 8, 0, tzinfo=NY)
BASE_CONFIG = EmulatorConfig(
    port=0,
    key_id=KEY_ID,
    secret_key=SECRET_KEY,
    rate_limit_per_min=0,
    non_fractionable=frozenset({"GLD"}),
    # The original tests were written for a cash account; margin has its own tests.
    multiplier=1,
)


@dataclass
class Harness:
    """One emulator seen through the SDK clients, plus a raw HTTP client for /admin."""

    running: RunningEmulator
    trading: TradingClient
    data: StockHistoricalDataClient
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def advance(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/admin/clock/advance", body)
        return result

    def set_clock(self, when: datetime) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("PUT", "/admin/clock", {"timestamp": when.isoformat()})
        return result

    def inject(self, **fault: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/admin/faults", fault)
        return result

    def auth_headers(self) -> dict[str, str]:
        return {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}


def _harness(running: RunningEmulator) -> Harness:
    return Harness(
        running=running,
        trading=TradingClient(KEY_ID, SECRET_KEY, paper=True, url_override=running.url),
        data=StockHistoricalDataClient(KEY_ID, SECRET_KEY, url_override=running.url),
        http=httpx.Client(base_url=running.url, timeout=10.0, limits=ADMIN_LIMITS),
    )


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[RunningEmulator]:
    running = start_in_thread(BASE_CONFIG)
    yield running
    running.stop()


@pytest.fixture
def emu(shared_emulator: RunningEmulator) -> Iterator[Harness]:
    """The shared emulator with a fresh account, the clock at START and no faults."""
    harness = _harness(shared_emulator)
    harness.admin("DELETE", "/admin/faults")
    harness.admin("POST", "/admin/reset", {"timestamp": START.isoformat()})
    yield harness
    harness.admin("DELETE", "/admin/faults")
    harness.http.close()


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Harness]]:
    """Start dedicated emulators (``**changes`` to the base config); all stopped at the end."""
    started: list[Harness] = []

    def start(**changes: Any) -> Harness:
        harness = _harness(start_in_thread(replace(BASE_CONFIG, **changes)))
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.http.close()
        harness.running.stop()

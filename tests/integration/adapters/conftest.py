"""One emulator on a free loopback port for the adapter tests, reset before each test.

The pattern of ``tests/integration/emulator/conftest.py`` (not imported: each package keeps its
own fixtures): the adapters talk to the emulator over real HTTP through alpaca-py, and the
tests drive its clock and inject faults through its ``/admin`` routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from regime_trader.service.marketdata import AlpacaBars

NY = ZoneInfo("America/New_York")
KEY_ID = "adapter-test-key-id"
SECRET_KEY = "adapter-test-secret-key"
# Tuesday 2024-01-02, 08:00 New York: before the first open of 2024; 756 sessions of history.
START = datetime(2024, 1, 2, 8, 0, tzinfo=NY)
# Tiny waits keep the retry tests fast; the budget is the default's shape.
FAST = HttpPolicy(
    timeout_secs=2.0,
    retry_attempts=4,
    retry_max_secs=5.0,
    retry_wait_initial_secs=0.005,
    retry_wait_max_secs=0.02,
)


@dataclass
class Emu:
    """The emulator's admin surface."""

    running: RunningEmulator
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def set_clock(self, when: datetime) -> None:
        self.admin("PUT", "/admin/clock", {"timestamp": when.isoformat()})

    def advance(self, **body: Any) -> None:
        self.admin("POST", "/admin/clock/advance", body)

    def inject(self, **fault: Any) -> int:
        """Add a fault; return its id."""
        return int(self.admin("POST", "/admin/faults", fault)["id"])

    def hits(self, fault_id: int) -> int:
        """Requests a still-active fault has matched."""
        (fault,) = [f for f in self.admin("GET", "/admin/faults") if f["id"] == fault_id]
        return int(fault["hits"])

    def orders(self) -> list[dict[str, Any]]:
        headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
        response = self.http.get("/v2/orders", params={"status": "all"}, headers=headers)
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result


@pytest.fixture(scope="session")
def running() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        port=0,
        key_id=KEY_ID,
        secret_key=SECRET_KEY,
        rate_limit_per_min=0,
        non_fractionable=frozenset({"GLD"}),
    )
    emulator = start_in_thread(config)
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(running: RunningEmulator) -> Iterator[Emu]:
    """The shared emulator with a fresh account, the clock at START and no faults."""
    with httpx.Client(base_url=running.url, timeout=10.0) as http:
        harness = Emu(running, http)
        harness.admin("DELETE", "/admin/faults")
        harness.admin("POST", "/admin/reset", {"timestamp": START.isoformat()})
        yield harness
        harness.admin("DELETE", "/admin/faults")


@pytest.fixture
def broker(emu: Emu) -> AlpacaBroker:
    return AlpacaBroker(KEY_ID, SECRET_KEY, url_override=emu.url, policy=FAST)


@pytest.fixture
def bars(emu: Emu) -> AlpacaBars:
    return AlpacaBars(KEY_ID, SECRET_KEY, url_override=emu.url, policy=FAST)

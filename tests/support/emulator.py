"""The emulator as every test sees it: one key pair, the start instants, one fast retry policy.

:class:`EmulatorDriver` is the production admin client
(:class:`~regime_trader.service.emulator.admin_client.EmulatorAdmin`: clock, faults, scenario,
request statistics) plus what only a test does: read and place orders on the account with the
test keys, as someone other than the service would.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.emulator import EmulatorConfig, RunningEmulator
from regime_trader.service.emulator.admin_client import EmulatorAdmin

__all__ = [
    "CYCLE_START",
    "FAST",
    "HEADERS",
    "KEY_ID",
    "NY",
    "SECRET_KEY",
    "START",
    "EmulatorDriver",
    "emulator_config",
]

NY = ZoneInfo("America/New_York")
# Distinctive enough that the secret-leak tests can search every artefact for them.
KEY_ID = "AKTESTKEYID7F3A9C4C1D"
SECRET_KEY = "sk-test-SECRET-9d8e7f6a5b4c3d2e1f0a"  # nosec B105 - the emulator's test key
HEADERS = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
# Tuesday 2024-01-02, 08:00 New York: before the first open of 2024 (the emulator's default
# start), 756 sessions of history behind.
START = datetime(2024, 1, 2, 8, 0, tzinfo=NY)
# Monday 2024-03-04, 08:00 New York: the market is closed, 800+ sessions of history behind; the
# cycle tests' day one.
CYCLE_START = datetime(2024, 3, 4, 8, 0, tzinfo=NY)
# The default policy's shape (4 attempts) with waits of milliseconds, so retry tests run fast.
FAST = HttpPolicy(
    timeout_secs=5.0,
    retry_attempts=4,
    retry_max_secs=5.0,
    retry_wait_initial_secs=0.005,
    retry_wait_max_secs=0.02,
)


def emulator_config(**changes: Any) -> EmulatorConfig:
    """An emulator on a free loopback port with the test keys and no rate limit, changed by
    ``changes`` (any :class:`EmulatorConfig` field)."""
    base = EmulatorConfig(port=0, key_id=KEY_ID, secret_key=SECRET_KEY, rate_limit_per_min=0)
    return replace(base, **changes)


class EmulatorDriver(EmulatorAdmin):
    """The admin client, plus the account seen and traded with the test keys over ``/v2``.

    ``running`` is the emulator when it runs in this process (:meth:`attach`); ``trading`` and
    ``data`` are the real alpaca-py clients pointed at it with the test keys.
    """

    running: RunningEmulator | None = None

    @classmethod
    def attach(cls, running: RunningEmulator) -> EmulatorDriver:
        """The driver of an emulator started in this process."""
        driver = cls(running.url)
        driver.running = running
        return driver

    @functools.cached_property
    def trading(self) -> TradingClient:
        return TradingClient(KEY_ID, SECRET_KEY, paper=True, url_override=self.url)

    @functools.cached_property
    def data(self) -> StockHistoricalDataClient:
        return StockHistoricalDataClient(KEY_ID, SECRET_KEY, url_override=self.url)

    def _v2(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=HEADERS, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.text}"
        return response.json()

    def orders(self) -> list[dict[str, Any]]:
        """Every order of the account, oldest first, as the broker answers them."""
        params = {"status": "all", "limit": 500, "direction": "asc"}
        return list(self._v2("GET", "/v2/orders", params=params))

    def positions(self) -> dict[str, Decimal]:
        """Shares held per symbol, exactly as the broker reports them."""
        return {p["symbol"]: Decimal(p["qty"]) for p in self._v2("GET", "/v2/positions")}

    def account(self) -> dict[str, Any]:
        """``GET /v2/account`` as the broker answers it."""
        return dict(self._v2("GET", "/v2/account"))

    def submit(self, symbol: str, side: str, qty: str, client_order_id: str) -> dict[str, Any]:
        """Place a market day order as someone else would (the web UI, another program)."""
        body = {
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "type": "market",
            "time_in_force": "day",
            "client_order_id": client_order_id,
        }
        return dict(self._v2("POST", "/v2/orders", json=body))

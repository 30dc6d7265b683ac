"""Helpers for the store and cycle integration tests (imported explicitly, not a conftest).

- :func:`text_client` turns the conftest's ``redis_client`` (bytes) into the ``decode_responses``
  client the :class:`~regime_trader.service.store.Store` expects, on the same server and database;
- :class:`Emu` drives an emulator started in a thread: reset, simulated clock, faults, orders
  placed directly (an operator's "foreign" order) and the order list;
- :func:`cycle_context` wires a portfolio's
:class:`~regime_trader.service.cycle_steps.CycleContext` the way
  :class:`regime_trader.service.app.Service` does, but with a fast retry policy and a test
  namespace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import redis

from regime_trader.service.alerts import Alert, AlertPublisher, read_alerts
from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.config import PortfolioConfig
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from regime_trader.service.marketdata import AlpacaBars, BarSource
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.store import Store
from tests.e2e.harness import ADMIN_LIMITS

NY = ZoneInfo("America/New_York")
KEY_ID = "cycle-test-key-id"
SECRET_KEY = "cycle-test-secret-key"
# Monday 2024-03-04, 08:00 New York: the market is closed, 800+ sessions of history behind.
START = datetime(2024, 3, 4, 8, 0, tzinfo=NY)
# Same shape as the default policy, with waits of milliseconds: 3 attempts, then give up.
FAST = HttpPolicy(
    timeout_secs=5.0,
    retry_attempts=3,
    retry_max_secs=2.0,
    retry_wait_initial_secs=0.005,
    retry_wait_max_secs=0.02,
)
HEADERS = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}


def text_client(raw: redis.Redis) -> redis.Redis:
    """A ``decode_responses=True`` client on the server and database of ``raw``."""
    pool = raw.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": True}
    client: redis.Redis = redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )
    return client


def unique_namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def namespace_keys(client: redis.Redis, namespace: str) -> list[str]:
    return sorted(str(k) for k in client.scan_iter(f"{namespace}:*", count=1000))


def snapshot(raw: redis.Redis, namespace: str) -> dict[str, bytes | None]:
    """Every key of the namespace with its serialised value (``DUMP``): equal means unchanged."""
    keys = sorted(raw.scan_iter(f"{namespace}:*".encode(), count=1000))
    return {k.decode(): raw.dump(k) for k in keys}


def start_emulator(state_file: Path | None = None) -> RunningEmulator:
    return start_in_thread(
        EmulatorConfig(
            port=0,
            key_id=KEY_ID,
            secret_key=SECRET_KEY,
            rate_limit_per_min=0,
            state_file=state_file,
        )
    )


@dataclass
class Emu:
    """The admin surface of an emulator running in a thread."""

    running: RunningEmulator
    http: httpx.Client

    @classmethod
    def attach(cls, running: RunningEmulator) -> Emu:
        return cls(running, httpx.Client(base_url=running.url, timeout=10.0, limits=ADMIN_LIMITS))

    @property
    def url(self) -> str:
        return self.running.url

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def reset(self, when: datetime = START) -> None:
        self.admin("DELETE", "/admin/faults")
        self.admin("POST", "/admin/reset", {"timestamp": when.isoformat()})

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/admin/clock")
        return result

    def advance(self, **body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "/admin/clock/advance", body)
        return result

    def open_session(self, minutes_after_open: float = 31) -> str:
        """Move to the next open, then ``minutes_after_open`` later; return the session date."""
        self.advance(to="next_open")
        return str(self.advance(minutes=minutes_after_open)["session"])

    def next_session(self, minutes_after_open: float = 31) -> str:
        self.advance(to="next_session_open")
        return str(self.advance(minutes=minutes_after_open)["session"])

    def inject(self, **fault: Any) -> int:
        return int(self.admin("POST", "/admin/faults", fault)["id"])

    def count_requests(self, method: str, path: str) -> int:
        """Start counting requests: a 1 ms latency fault whose ``hits`` are the count."""
        return self.inject(path=path, method=method, latency_ms=1)

    def hits(self, fault_id: int) -> int:
        (fault,) = [f for f in self.admin("GET", "/admin/faults") if f["id"] == fault_id]
        return int(fault["hits"])

    def clear_faults(self) -> None:
        self.admin("DELETE", "/admin/faults")

    def orders(self) -> list[dict[str, Any]]:
        response = self.http.get(
            "/v2/orders",
            params={"status": "all", "limit": 500, "direction": "asc"},
            headers=HEADERS,
        )
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    def account(self) -> dict[str, Any]:
        """``GET /v2/account`` as the broker answers it."""
        response = self.http.get("/v2/account", headers=HEADERS)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def submit(self, symbol: str, side: str, qty: str, client_order_id: str) -> dict[str, Any]:
        """Place an order as someone else would (the Alpaca web UI, another program)."""
        body = {
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "type": "market",
            "time_in_force": "day",
            "client_order_id": client_order_id,
        }
        response = self.http.post("/v2/orders", json=body, headers=HEADERS)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def cycle_context(
    url: str,
    client: redis.Redis,
    namespace: str,
    portfolio: PortfolioConfig,
    *,
    bars: BarSource | None = None,
    policy: HttpPolicy = FAST,
) -> CycleContext:
    """The context :class:`~regime_trader.service.app.Service` builds for one portfolio."""
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=url, policy=policy)
    return CycleContext(
        portfolio,
        broker,
        bars or AlpacaBars(KEY_ID, SECRET_KEY, url_override=url, policy=policy),
        Store(client, namespace),
        AlertPublisher(client, namespace=namespace),
        ServiceMetrics(),
        poll_interval_secs=0.02,
    )


def alerts(client: redis.Redis, namespace: str, portfolio: str | None = None) -> list[Alert]:
    return read_alerts(client, namespace=namespace, count=1000, portfolio=portfolio)

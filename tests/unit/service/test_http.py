"""The ops endpoints over httpx's in-process ASGI transport (real server: integration tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from regime_trader.service.http import build_http_app, drop_secret_keys
from regime_trader.service.logs import redactor
from regime_trader.service.metrics import ServiceMetrics

SECRET = "PK-SECRET-VALUE-123"


class Ready:
    """A readiness callback whose answer the test flips."""

    def __init__(self) -> None:
        self.ok = True
        self.error: Exception | None = None

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        if self.error is not None:
            raise self.error
        return self.ok, {"redis": "ok" if self.ok else "down", "broker": "ok"}


def _status() -> dict[str, Any]:
    return {
        "portfolios": {
            "core": {"halted": False, "last_outcome": "rebalanced", "api_key": SECRET},
        },
        "broker": {"url": "https://paper-api.alpaca.markets", "Secret_Key": SECRET},
        "notifiers": [{"label": "slack://***", "webhook_token": SECRET}],
        "redis_password": SECRET,
        "note": f"connected with {SECRET}",
    }


class Client:
    """A synchronous face on httpx's ASGI transport (starlette's TestClient is deprecated)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ops") as c:
                return await c.request(method, path)

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str) -> httpx.Response:
        return self.request("POST", path)


@pytest.fixture
def ready() -> Ready:
    return Ready()


@pytest.fixture
def client(ready: Ready) -> Client:
    metrics = ServiceMetrics()
    metrics.cycles_total.labels(portfolio="core", outcome="no_trade").inc()
    app = build_http_app(
        status=_status, readiness=ready, metrics=metrics, redact=redactor([SECRET])
    )
    return Client(app)


def test_healthz_is_ok_whatever_readiness_says(client: Client, ready: Ready) -> None:
    ready.ok = False
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_flips_between_200_and_503_with_the_checks(client: Client, ready: Ready) -> None:
    up = client.get("/readyz")
    ready.ok = False
    down = client.get("/readyz")

    assert up.status_code == 200
    assert up.json() == {"ready": True, "checks": {"redis": "ok", "broker": "ok"}}
    assert down.status_code == 503
    assert down.json() == {"ready": False, "checks": {"redis": "down", "broker": "ok"}}


def test_readyz_reports_only_the_class_of_a_raising_check(client: Client, ready: Ready) -> None:
    ready.error = ConnectionError(f"redis://:{SECRET}@redis:6379 refused")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "error": "ConnectionError"}
    assert SECRET not in response.text


def test_metrics_serves_prometheus_text(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'regime_trader_cycles_total{outcome="no_trade",portfolio="core"} 1.0' in response.text
    assert "regime_trader_equity_usd" in response.text


def test_status_drops_secret_like_keys_redacts_values_and_says_so(client: Client) -> None:
    response = client.get("/status")
    body = response.json()

    assert response.status_code == 200
    assert SECRET not in response.text
    assert body["portfolios"]["core"] == {"halted": False, "last_outcome": "rebalanced"}
    assert body["broker"] == {"url": "https://paper-api.alpaca.markets"}
    assert body["notifiers"] == [{"label": "slack://***"}]
    assert body["note"] == "connected with ***"
    assert sorted(body["dropped_fields"]) == [
        "broker.Secret_Key",
        "notifiers[0].webhook_token",
        "portfolios.core.api_key",
        "redis_password",
    ]


def test_status_error_is_a_500_naming_only_the_class() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError(f"cannot read {SECRET}")

    app = build_http_app(status=broken, readiness=lambda: (True, {}), metrics=ServiceMetrics())
    response = Client(app).get("/status")
    assert response.status_code == 500
    assert response.json() == {"error": "RuntimeError"}


def test_status_renders_values_json_cannot_hold() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    when = datetime(2024, 3, 15, 20, 0, tzinfo=UTC)
    app = build_http_app(
        status=lambda: {"equity": Decimal("100.5"), "at": when},
        readiness=lambda: (True, {}),
        metrics=ServiceMetrics(),
    )
    assert Client(app).get("/status").json() == {"equity": "100.5", "at": str(when)}


def test_drop_secret_keys_keeps_a_clean_document_intact() -> None:
    document = {"a": [1, {"b": None}], "c": {"d": "e"}}
    assert drop_secret_keys(document) == (document, [])


def test_only_get_is_allowed(client: Client) -> None:
    assert client.post("/readyz").status_code == 405

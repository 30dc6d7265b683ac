"""The ops endpoint served by uvicorn in a thread, over real HTTP."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog

from regime_trader.service.http import build_http_app, start_http_server
from regime_trader.service.logs import configure_logging
from regime_trader.service.metrics import ServiceMetrics


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()


def test_threaded_server_answers_over_http_logs_through_structlog_and_stops(
    log_buffer: io.StringIO,
) -> None:
    state = {"ready": True}
    metrics = ServiceMetrics()
    metrics.halted.labels(portfolio="core").set(1)
    app = build_http_app(
        status=lambda: {"portfolios": ["core"], "token": "x"},
        readiness=lambda: (state["ready"], {"redis": "ok" if state["ready"] else "down"}),
        metrics=metrics,
    )

    server = start_http_server(app, port=0)
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").status_code == 200
            state["ready"] = False
            assert http.get("/readyz").status_code == 503
            assert 'regime_trader_halted{portfolio="core"} 1.0' in http.get("/metrics").text
            assert http.get("/status").json() == {
                "portfolios": ["core"],
                "dropped_fields": ["token"],
            }
    finally:
        server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=1)
    lines: list[dict[str, Any]] = [json.loads(x) for x in log_buffer.getvalue().splitlines()]
    uvicorn_lines = [x for x in lines if x["logger"].startswith("uvicorn")]
    assert uvicorn_lines, "uvicorn's lines should arrive as JSON through regime_trader.service.logs"
    # The access log is off: no request line mentions a path.
    assert not any("/healthz" in x["event"] for x in lines)


def test_occupied_port_fails_in_the_callers_thread() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    app = build_http_app(status=dict, readiness=lambda: (True, {}), metrics=ServiceMetrics())
    try:
        with pytest.raises(OSError):
            start_http_server(app, port=taken.getsockname()[1])
    finally:
        taken.close()


def test_server_works_as_a_context_manager() -> None:
    app = build_http_app(status=dict, readiness=lambda: (True, {}), metrics=ServiceMetrics())
    with start_http_server(app, port=0) as server:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=1)

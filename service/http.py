"""The operations HTTP endpoint: liveness, readiness, Prometheus metrics and a JSON status.

=============  ==========================================================================
``/healthz``   liveness: 200 ``{"status": "ok"}`` while the process serves requests
``/readyz``    readiness: 200 or 503 with the checks from ``readiness()``; if it raises, 503
               with the error's class name only (a message may quote a URL with a password)
``/metrics``   Prometheus text from :class:`regime_trader.service.metrics.ServiceMetrics`
``/status``    JSON from ``status()``, with every key that looks like a secret dropped
``/``          the dashboard, when ``run`` passes its routes
               (:class:`regime_trader.service.dashboard.Dashboard`)
=============  ==========================================================================

Liveness and readiness are separate on purpose: a Redis outage makes the service unready (do
not route to it, do not count on its cycle) but restarting it would not help, so it stays live.

The handlers that call back into the application are plain functions, so Starlette runs them
in its thread pool: a slow Redis ping cannot stall ``/healthz``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from regime_trader.service.logs import get_logger, redact_value
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.server_thread import ServerThread, bind_socket

__all__ = [
    "SECRET_KEY_PATTERN",
    "build_http_app",
    "drop_secret_keys",
    "start_http_server",
]

_log = get_logger(__name__)

# Keys such as "api_key", "secret_key", "password", "access_token" (case-insensitive).
SECRET_KEY_PATTERN = re.compile(r"key|secret|password|token", re.IGNORECASE)


def _identity(text: str) -> str:
    return text


def drop_secret_keys(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Return ``value`` without any mapping key that looks like a secret, and the dropped paths.

    Parameters
    ----------
    value : Any
        JSON-like structure (dicts, lists, scalars).
    path : str
        Dotted path of ``value`` itself, used to name the dropped keys.

    Returns
    -------
    cleaned : Any
        A copy; keys matching :data:`SECRET_KEY_PATTERN` are removed at every depth.
    dropped : list of str
        Dotted paths of the removed keys, e.g. ``["broker.api_key"]`` (names, never values).
    """
    dropped: list[str] = []
    if isinstance(value, dict):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            item_path = f"{path}.{key}" if path else str(key)
            if SECRET_KEY_PATTERN.search(str(key)):
                dropped.append(item_path)
                continue
            cleaned[key], sub = drop_secret_keys(item, item_path)
            dropped.extend(sub)
        return cleaned, dropped
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            cleaned_item, sub = drop_secret_keys(item, f"{path}[{index}]")
            items.append(cleaned_item)
            dropped.extend(sub)
        return items, dropped
    return value, dropped


class _JSON(JSONResponse):
    """JSON response that renders datetimes, Decimals and paths as strings instead of failing."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, ensure_ascii=False).encode("utf-8")


def build_http_app(
    *,
    status: Callable[[], dict[str, Any]],
    readiness: Callable[[], tuple[bool, dict[str, Any]]],
    metrics: ServiceMetrics,
    redact: Callable[[str], str] = _identity,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the Starlette app serving ``/healthz``, ``/readyz``, ``/metrics`` and ``/status``.

    Parameters
    ----------
    status : callable
        Returns the status document (portfolios, last cycles, halted flags, ...).
    readiness : callable
        Returns ``(ready, checks)``, e.g. ``(False, {"redis": "down", "broker": "ok"})``.
    metrics : ServiceMetrics
        Rendered by ``/metrics``.
    redact : callable, default identity
        Applied to every string of ``/status`` and ``/readyz`` bodies (see
        :func:`regime_trader.service.logs.redactor`), after secret-looking keys are dropped.
    extra_routes : sequence of routes, optional
        Served as well, e.g. ``Dashboard(...).routes()`` (``/``, ``/static``, ``/control``).

    Returns
    -------
    Starlette
        The ASGI app.
    """

    def _safe(document: dict[str, Any], what: str) -> dict[str, Any]:
        cleaned, dropped = drop_secret_keys(document)
        cleaned = redact_value(cleaned, redact)
        if dropped:
            # Belt and braces: the caller should never hand us these; say so loudly.
            _log.warning("secret_like_keys_dropped", endpoint=what, keys=dropped)
            cleaned["dropped_fields"] = dropped
        return dict(cleaned)

    async def healthz(_request: Request) -> Response:
        return _JSON({"status": "ok"})

    def readyz(_request: Request) -> Response:
        try:
            ready, checks = readiness()
        except Exception as e:  # any failure of the check means "not ready", never a 500
            _log.warning("readiness_check_raised", error_type=type(e).__name__)
            return _JSON({"ready": False, "error": type(e).__name__}, status_code=503)
        body = _safe({"ready": bool(ready), "checks": checks}, "/readyz")
        return _JSON(body, status_code=200 if ready else 503)

    def metrics_endpoint(_request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    def status_endpoint(_request: Request) -> Response:
        try:
            document = status()
        except Exception as e:  # the message may carry a secret: report the class only
            _log.warning("status_raised", error_type=type(e).__name__)
            return _JSON({"error": type(e).__name__}, status_code=500)
        return _JSON(_safe(document, "/status"))

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/status", status_endpoint, methods=["GET"]),
            *extra_routes,
        ]
    )


def start_http_server(
    app: Starlette,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    sock: socket.socket | None = None,
    startup_timeout_secs: float = 10.0,
) -> ServerThread:
    """Serve ``app`` with uvicorn in a daemon thread; return once it accepts connections.

    uvicorn's own logging configuration is disabled (``log_config=None``) so its lines go through
    :func:`regime_trader.service.logs.configure_logging` like every other line; the access log is
    off.

    Parameters
    ----------
    app : Starlette
        From :func:`build_http_app`.
    host : str, default "127.0.0.1"
        Interface to bind; ``"0.0.0.0"`` inside a container.
    port : int, default 8080
        Port; 0 picks a free one (read it from ``.port``).
    sock : socket.socket, optional
        A socket already listening (from :func:`bind_socket`); ``host`` and ``port`` are then
        ignored. ``run`` binds first so a taken port is reported before anything else runs.
    startup_timeout_secs : float, default 10.0
        How long to wait for the server to accept connections.

    Returns
    -------
    ServerThread
        ``.url``, ``.port``; ``.stop()`` ends it.

    Raises
    ------
    OSError
        If the address cannot be bound.
    RuntimeError
        If the server does not accept connections within ``startup_timeout_secs``.
    """
    if sock is None:
        sock = bind_socket(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    running = ServerThread(uvicorn.Server(config), sock, f"http-{sock.getsockname()[1]}")
    running.start(startup_timeout_secs)
    _log.info("http_server_started", url=running.url)
    return running

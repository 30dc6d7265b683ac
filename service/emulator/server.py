"""Serve the emulator with uvicorn: in the foreground (the CLI) or on a background thread.

:func:`start_in_thread` is what tests, benchmarks and the service's embedded default use: it
binds a loopback socket (port 0 picks a free one), serves on a daemon thread and returns a
:class:`RunningEmulator` with the real ``url``; ``stop()`` shuts the server down.

The server uses uvicorn's h11 protocol with one addition: each request's ASGI scope carries an
extension to abort its connection, which the fault injector uses to drop a connection without
sending any response (plain ASGI has no way to do that).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from regime_trader.service.emulator.app import DROP_EXTENSION, create_app
from regime_trader.service.emulator.config import EmulatorConfig
from regime_trader.service.emulator.engine import Emulator
from regime_trader.service.emulator.faults import FaultInjector
from regime_trader.service.server_thread import ServerThread, bind_socket

__all__ = ["RunningEmulator", "build_server", "serve_forever", "start_in_thread"]

STARTUP_TIMEOUT_SECS = 15.0


class _DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a scope extension that aborts the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                scope.setdefault("extensions", {})[DROP_EXTENSION] = {"abort": self._abort}
            await inner(scope, receive, send)

        self.app = app

    def _abort(self) -> None:
        self.transport.abort()


def build_server(config: EmulatorConfig, emulator: Emulator | None = None) -> uvicorn.Server:
    """Return a uvicorn server for ``config`` (the emulator is created if not given)."""
    emulator = emulator or Emulator.create(config)
    app = create_app(emulator, FaultInjector())
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=_DroppableH11Protocol,
        lifespan="off",
        access_log=False,
        # No log_level and no dictConfig: inside the service (embedded emulator) either would
        # take over the process's logging; uvicorn's records go where the process says.
        log_config=None,
    )
    return uvicorn.Server(uv_config)


def serve_forever(config: EmulatorConfig) -> None:
    """Serve in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    build_server(config).run()


@dataclass
class RunningEmulator:
    """An emulator serving on a background thread.

    ``emulator`` is the live engine, for inspection after ``stop()``; while the server runs it
    belongs to the server's thread (drive it over HTTP, e.g. the ``/admin`` routes).
    """

    url: str
    config: EmulatorConfig
    emulator: Emulator
    _server: ServerThread

    def stop(self, timeout_secs: float = 10.0) -> None:
        """Shut the server down and wait for its thread."""
        self._server.stop(timeout_secs)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(config: EmulatorConfig) -> RunningEmulator:
    """Start an emulator on a daemon thread and return once it accepts connections.

    The socket is bound here, so ``port=0`` gives a free port and the returned ``url`` names
    it. The host is the configured one (loopback by default).

    Raises
    ------
    EmulatorConfigError
        If the configuration cannot be used (raised here, before any thread starts).
    RuntimeError
        If the server does not start within 15 s.
    """
    emulator = Emulator.create(config)
    sock = bind_socket(config.host, config.port)
    config = replace(config, port=int(sock.getsockname()[1]))
    server = ServerThread(build_server(config, emulator), sock, f"emulator:{config.port}")
    server.start(STARTUP_TIMEOUT_SECS)
    return RunningEmulator(f"http://{config.host}:{config.port}", config, emulator, server)

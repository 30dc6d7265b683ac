"""The embedded Redis's exit-time ``SHUTDOWN`` is sent once, never retried.

The server answers ``SHUTDOWN SAVE`` by saving and closing the connection; redis-py's default
retry took that for a failure and resent the command to the gone socket three times, with
backoff sleeps: about 5 s at the end of every offline command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regime_trader.service.embedded_redis import open_embedded_redis


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

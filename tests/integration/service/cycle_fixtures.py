"""Helpers for the store and cycle integration tests (imported explicitly, not a conftest).

- :func:`text_client` turns the conftest's ``redis_client`` (bytes) into the ``decode_responses``
  client the :class:`~regime_trader.service.store.Store` expects, on the same server and database;
- :func:`small_portfolio` is the small portfolio the cycle tests trade (SPY, TLT, GLD; 300
  sessions of history, the least the service takes);
- :func:`cycle_context` wires a portfolio's
  :class:`~regime_trader.service.cycle_context.CycleContext` the way
  :class:`regime_trader.service.app.Service` does, but with the fast retry policy and a test
  namespace.

The emulator, its keys and the policy are :mod:`tests.support.emulator`'s; ``Emu`` and the
constants are re-exported for ``test_live_equals_backtest.py``, which imports them from here.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

from regime_trader.service.alert_channels import AlertPublisher, read_alerts
from regime_trader.service.alerts import Alert
from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.marketdata import AlpacaBars, BarSource
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.portfolio_config import PortfolioConfig
from regime_trader.service.store import Store
from tests.support.emulator import FAST, HEADERS, KEY_ID, SECRET_KEY
from tests.support.emulator import EmulatorDriver as Emu

__all__ = [
    "FAST",
    "HEADERS",
    "KEY_ID",
    "SECRET_KEY",
    "Emu",
    "alerts",
    "cycle_context",
    "namespace_keys",
    "small_portfolio",
    "snapshot",
    "text_client",
    "unique_namespace",
]


def small_portfolio(name: str, strategy: str = "equal_weight", **fields: Any) -> PortfolioConfig:
    """A portfolio of SPY, TLT and GLD on 300 sessions of history; ``equal_weight`` needs no
    model fit, so each cycle takes milliseconds."""
    table = {"name": name, "symbols": ("SPY", "TLT", "GLD"), "strategy": strategy}
    return PortfolioConfig.model_validate({**table, "history_sessions": 300, **fields})


def text_client(raw: redis.Redis) -> redis.Redis:
    """A ``decode_responses=True`` client on the server and database of ``raw``."""
    pool = raw.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": True}
    client: redis.Redis = redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )
    return client


def unique_namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def namespace_keys(client: redis.Redis, namespace: str) -> list[str]:
    return sorted(str(k) for k in client.scan_iter(f"{namespace}:*", count=1000))


def snapshot(raw: redis.Redis, namespace: str) -> dict[str, bytes | None]:
    """Every key of the namespace with its serialised value (``DUMP``): equal means unchanged."""
    keys = sorted(raw.scan_iter(f"{namespace}:*".encode(), count=1000))
    return {k.decode(): raw.dump(k) for k in keys}


def cycle_context(
    url: str,
    client: redis.Redis,
    namespace: str,
    portfolio: PortfolioConfig,
    *,
    bars: BarSource | None = None,
    policy: HttpPolicy = FAST,
) -> CycleContext:
    """The context :class:`~regime_trader.service.app.Service` builds for one portfolio."""
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=url, policy=policy)
    return CycleContext(
        portfolio,
        broker,
        bars or AlpacaBars(KEY_ID, SECRET_KEY, url_override=url, policy=policy),
        Store(client, namespace),
        AlertPublisher(client, namespace=namespace),
        ServiceMetrics(),
        poll_interval_secs=0.02,
    )


def alerts(client: redis.Redis, namespace: str, portfolio: str | None = None) -> list[Alert]:
    return read_alerts(client, namespace=namespace, count=1000, portfolio=portfolio)

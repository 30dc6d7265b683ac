"""What the fault-matrix tests (``tests/reliability/test_faults_*``) share on top of
:mod:`tests.support.processes`: the portfolio file, the in-process service, and the readers and
assertions every case repeats (ledger, alerts, the orders of a session).

The fault matrix's emulator (:func:`emulator_process`) keeps 400 sessions of history and 60 to
come: enough for :func:`fast_portfolio` and quick to start.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.store import Store
from tests.support import processes
from tests.support.processes import EmulatorProcess, service_env

if TYPE_CHECKING:
    from regime_trader.service.app import Service

PORTFOLIO = "default"

emulator_process = functools.partial(
    processes.emulator_process, history_sessions=400, future_sessions=60
)


# ------------------------------------------------------------------------------------ config


def portfolio_toml(tmp: Path, *portfolios: Mapping[str, Any], name: str = "portfolios") -> Path:
    """Write a portfolio file; each mapping is one ``[[portfolio]]`` table (flat values)."""
    lines: list[str] = []
    for table in portfolios:
        lines.append("[[portfolio]]")
        for key, value in table.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def fast_portfolio(**overrides: Any) -> dict[str, Any]:
    """A portfolio that trades every session and needs no model fit: equal weights, no band.

    Equal weights drift with prices, so with ``no_trade_band = 0`` every session sells what
    rose and buys what fell: orders on both sides in every cycle.
    """
    return {
        "name": PORTFOLIO,
        "strategy": "equal_weight",
        "no_trade_band": 0.0,
        "cash_buffer": 0.0,
        "history_sessions": 300,
        "fill_timeout_secs": 3.0,
        **overrides,
    }


def env_for(
    tmp: Path, redis_url: str, emulator: EmulatorProcess, config: Path, **extra: str
) -> dict[str, str]:
    """``regime-trader run`` against ``emulator`` and ``redis_url`` with the portfolio file."""
    return service_env(tmp, redis_url, emulator.url, RT_CONFIG_FILE=str(config), **extra)


# ------------------------------------------------------------------------------------ service


@contextlib.contextmanager
def in_process_service(env: Mapping[str, str]) -> Iterator[Service]:
    """The service's objects in this process (no scheduler, no HTTP): ``Service.create`` from
    the settings ``env`` describes, exactly as ``regime-trader run`` builds them.

    For cases where what matters is each call to the broker (retry counts), not the process.
    """
    from regime_trader.service.app import Service
    from regime_trader.service.config import load_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        service = Service.create(load_settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield service
    finally:
        service.close()


def planned_ids(store: Store, session: str, portfolio: str = PORTFOLIO) -> set[str]:
    """client_order_ids a session's cycle planned: the sells of ``plan``, the buys of ``buys``."""
    record = store.cycle(portfolio, session)
    assert record is not None, f"no cycle record for {session}"
    return {o.client_order_id for o in record.planned_orders}


def session_orders(orders: list[dict[str, Any]], session: str) -> list[dict[str, Any]]:
    """The broker's orders whose client_order_id names ``session``."""
    tag = "-" + session.replace("-", "") + "-"
    return [o for o in orders if tag in o["client_order_id"]]


# ------------------------------------------------------------------------------------ reading


def ledger_ids(client: redis.Redis, portfolio: str = PORTFOLIO) -> set[str]:
    """client_order_ids of every order the ledger says reached the broker."""
    return {
        e["client_order_id"]
        for e in Store(client).ledger(portfolio, 100_000)
        if e.get("event") == "order" and e.get("broker_id")
    }


def alerts(client: redis.Redis) -> list[Alert]:
    """Every alert in the ``rt:alerts`` stream, oldest first."""
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange("rt:alerts"))
    return [Alert.from_json(fields["json"]) for _, fields in entries]


def duplicates(orders: list[dict[str, Any]]) -> list[str]:
    counts = collections.Counter(o["client_order_id"] for o in orders)
    return sorted(coid for coid, n in counts.items() if n > 1)


def assert_ledger_matches_broker(
    client: redis.Redis, orders: list[dict[str, Any]], portfolio: str = PORTFOLIO
) -> None:
    """No duplicate at the broker, and the ledger and the broker know the same orders."""
    assert duplicates(orders) == [], "orders sent twice"
    mine = {
        o["client_order_id"] for o in orders if o["client_order_id"].startswith(f"rt-{portfolio}-")
    }
    assert ledger_ids(client, portfolio) == mine

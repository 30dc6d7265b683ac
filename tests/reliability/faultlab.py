"""What the fault-matrix tests (``tests/reliability/test_faults_*``) share on top of
:mod:`tests.support.processes`.

:func:`fault_lab` opens one case's world, a :class:`FaultLab`: a private Redis (or one the case
kills and restarts), the emulator as a process, the environment of ``regime-trader run`` on a
portfolio file, and the readers and assertions every case repeats (alerts, the ledger, the
orders a session planned and sent). The fault matrix's emulator (:func:`emulator_process`) keeps
400 sessions of history and 60 to come: enough for :func:`fast_portfolio` and quick to start.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_record import CycleRecord
from regime_trader.service.store import Store
from tests.support import processes
from tests.support.emulator import EmulatorDriver
from tests.support.processes import (
    EmulatorProcess,
    RedisLike,
    private_redis,
    service_env,
    wait_until,
)

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


# ------------------------------------------------------------------------------------ a case


@dataclass
class FaultLab:
    """One fault-matrix case: its directory, Redis, emulator process and what it reads."""

    tmp: Path
    redis: RedisLike
    emulator: EmulatorProcess
    client: redis.Redis = field(init=False)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.redis.client()  # connects at its first command
        self.store = Store(self.client)

    @property
    def api(self) -> EmulatorDriver:
        return self.emulator.api

    def env(
        self, *portfolios: Mapping[str, Any], name: str = "portfolios", **extra: str
    ) -> dict[str, str]:
        """``regime-trader run`` on a file of ``portfolios`` (default: one fast portfolio)."""
        config = portfolio_toml(self.tmp, *(portfolios or (fast_portfolio(),)), name=name)
        return service_env(
            self.tmp, self.redis.url, self.emulator.url, RT_CONFIG_FILE=str(config), **extra
        )

    def record(self, session: str, portfolio: str = PORTFOLIO) -> CycleRecord:
        record = self.store.cycle(portfolio, session)
        assert record is not None, f"no cycle record for {session}"
        return record

    def wait_alerted(
        self, session: str, what: str = "", timeout: float = 60, portfolio: str = PORTFOLIO
    ) -> CycleRecord:
        """Wait until the cycle of ``session`` is done and its alert published; return it."""

        def alerted() -> CycleRecord | None:
            record = self.store.cycle(portfolio, session)
            return record if record is not None and record.alerted else None

        found = wait_until(alerted, timeout, what or f"the cycle of {session}")
        assert found is not None
        return found

    def trade(self, count: int = 1) -> list[str]:
        """Open ``count`` sessions, each once the service finished and alerted the last."""
        sessions = []
        for _ in range(count):
            sessions.append(self.api.open_session())
            self.wait_alerted(sessions[-1])
        return sessions

    def planned_ids(self, session: str, portfolio: str = PORTFOLIO) -> set[str]:
        return planned_ids(self.store, session, portfolio)

    def session_orders(self, session: str) -> list[dict[str, Any]]:
        """The broker's orders of ``session`` now."""
        return session_orders(self.api.orders(), session)

    def alerts(self) -> list[Alert]:
        return alerts(self.client)

    def ledger_ids(self) -> set[str]:
        return ledger_ids(self.client)

    def assert_ledger_matches_broker(self, orders: list[dict[str, Any]] | None = None) -> None:
        """No duplicate at the broker, and the ledger knows the broker's orders (now, or
        ``orders`` as read earlier)."""
        assert_ledger_matches_broker(self.client, self.api.orders() if orders is None else orders)


@contextlib.contextmanager
def fault_lab(
    tmp: Path, start_date: str, *, redis_like: RedisLike | None = None, **emulator_options: Any
) -> Iterator[FaultLab]:
    """A case's world: ``redis_like`` (default a private Redis, stopped at the end) and the
    fault matrix's emulator from ``start_date``."""
    with contextlib.ExitStack() as stack:
        server = redis_like or stack.enter_context(private_redis(tmp))
        emulator = stack.enter_context(emulator_process(tmp, start_date, **emulator_options))
        lab = FaultLab(tmp, server, emulator)
        stack.callback(lab.client.close)
        yield lab

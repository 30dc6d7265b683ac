"""Processes and fault switches for the fault-matrix tests (``tests/reliability/test_faults_*``).

What :mod:`tests.e2e.harness` gives (service process, environment, clock driver) is imported
from there; this module adds what a fault matrix needs on top of it:

- :class:`RedisServer`: a private ``redis-server`` on a free port, with an append-only file so
  that a kill and a restart keep the data. Nothing else can touch or flush it (other test
  suites share the server on 6379). Without the binary, the cases that need no Redis restart
  fall back to database 7 of the shared server (:func:`tests.e2e.harness.redis_server`).
- :class:`EmulatorProcess`: the emulator as a process that can be killed and restarted on the
  same port with the same ``--state`` file, plus its ``/admin/faults`` switch.
- portfolio TOML writing, ledger/alert readers and the assertions every case repeats.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx
import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.store import Store
from tests.e2e.harness import (
    KEY_ID,
    ROOT,
    SECRET_KEY,
    Emulator,
    ServiceProcess,
    answers,
    free_port,
    service_env,
    wait_until,
)
from tests.e2e.harness import redis_server as shared_redis_server

if TYPE_CHECKING:
    from regime_trader.service.app import Service

REDIS_SERVER = shutil.which("redis-server")
PORTFOLIO = "default"


def needs_redis_server() -> pytest.MarkDecorator:
    """Skip a test that must stop and restart Redis when there is no ``redis-server`` binary."""
    return pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary on PATH")


# ------------------------------------------------------------------------------------ Redis


@dataclass
class RedisServer:
    """A private ``redis-server``: AOF on (``appendfsync always``), RDB snapshots off."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            **kwargs,
        )

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None, "redis-server binary missing"
        assert self.process is None or self.process.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.answers, 20, f"redis-server on port {self.port}", interval=0.05)
        return self

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server is gone at once (clients see refused connections)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class RedisLike(Protocol):
    @property
    def url(self) -> str: ...

    def client(self) -> redis.Redis: ...


@dataclass(frozen=True)
class SharedRedis:
    """A database of a Redis this module did not start (no kill, no restart)."""

    url: str

    def client(self) -> redis.Redis:
        client: redis.Redis = redis.Redis.from_url(self.url, decode_responses=True)
        return client


@contextlib.contextmanager
def private_redis(tmp: Path) -> Iterator[RedisLike]:
    """A running private Redis for one test, stopped at the end (or, without the binary,
    a flushed database of the shared one)."""
    if REDIS_SERVER is None:
        with shared_redis_server(db=7) as url:
            yield SharedRedis(url)
        return
    server = RedisServer(tmp / "redis").start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ emulator


@dataclass
class EmulatorProcess:
    """The emulator as a process that survives kills: same port, same ``--state`` file."""

    tmp: Path
    start_date: str
    seed: int = 3
    symbols: tuple[str, ...] = ()
    rate_limit_per_min: int = 0  # Alpaca's 200 where a test measures the request budget
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _api: Emulator | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> Emulator:
        """The harness's client (clock, orders, positions) for the running process."""
        assert self.process is not None
        if self._api is None or self._api.process is not self.process:
            self._api = Emulator(self.url, self.process)
        return self._api

    def start(self) -> EmulatorProcess:
        self.starts += 1
        log = (self.tmp / f"emulator-{self.starts}.log").open("wb")
        args = [
            sys.executable,
            "-m",
            # the same server as `regime-trader emulator`, with fewer imports
            "regime_trader.service.emulator",
            "--port",
            str(self.port),
            "--seed",
            str(self.seed),
            "--start-date",
            self.start_date,
            "--key-id",
            KEY_ID,
            "--secret-key",
            SECRET_KEY,
            "--rate-limit-per-min",
            str(self.rate_limit_per_min),
            "--history-sessions",
            "400",
            "--future-sessions",
            "60",
            "--state",
            str(self.tmp / "emulator.json"),
        ]
        if self.symbols:
            args += ["--symbols", ",".join(self.symbols)]
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        wait_until(
            lambda: (
                self.process is not None
                and (self.process.poll() is not None or answers(self.url + "/admin/health"))
            ),
            60,
            "the emulator",
        )
        assert self.process.poll() is None, (self.tmp / f"emulator-{self.starts}.log").read_text()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    # ---------------------------------------------------------------- admin

    def fault(self, **spec: Any) -> dict[str, Any]:
        """Add a fault (``POST /admin/faults``); returns it with its ``id``."""
        response = httpx.post(self.url + "/admin/faults", json=spec, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def faults(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.url + "/admin/faults", timeout=10).json())

    def clear_faults(self) -> None:
        httpx.delete(self.url + "/admin/faults", timeout=10).raise_for_status()

    def requests(self) -> dict[str, Any]:
        """Request statistics per key (``GET /admin/requests``): counts, 429s, busiest 60 s."""
        return dict(httpx.get(self.url + "/admin/requests", timeout=10).json())

    def reset_requests(self) -> None:
        httpx.delete(self.url + "/admin/requests", timeout=10).raise_for_status()

    def hits(self, fault_id: int) -> int | None:
        """Hits of an active fault (None once a counted fault has been used up and removed)."""
        return next((int(f["hits"]) for f in self.faults() if f["id"] == fault_id), None)


@contextlib.contextmanager
def emulator_process(
    tmp: Path,
    start_date: str,
    *,
    symbols: Iterable[str] = (),
    seed: int = 3,
    rate_limit_per_min: int = 0,
) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(
        tmp, start_date, seed=seed, symbols=tuple(symbols), rate_limit_per_min=rate_limit_per_min
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


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


def clean_env() -> dict[str, str]:
    """The test process's environment without any of the service's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RT_", "ALPACA_", "REDIS"))}


def env_for(
    tmp: Path, redis_url: str, emulator: EmulatorProcess, config: Path, **extra: str
) -> dict[str, str]:
    """``regime-trader run`` against ``emulator`` and ``redis_url`` with the portfolio file."""
    return service_env(tmp, redis_url, emulator.api, RT_CONFIG_FILE=str(config), **extra)


# ------------------------------------------------------------------------------------ service


def start_services(tmp: Path, envs: Mapping[str, dict[str, str]]) -> list[ServiceProcess]:
    """Start several ``regime-trader run`` processes at once (named by the keys of ``envs``)
    and wait until each answers ``/healthz``: on two cores that halves the start-up cost."""
    started = []
    for name, env in envs.items():
        log_path = tmp / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "regime_trader.service", "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        started.append(ServiceProcess(process, f"http://127.0.0.1:{env['RT_HTTP_PORT']}", log_path))
    for service in started:
        wait_until(
            lambda s=service: s.process.poll() is not None or answers(s.url + "/healthz"),
            90,
            f"{service.log_path.stem} to answer /healthz",
        )
        assert service.process.poll() is None, service.log_path.read_text()[-3000:]
        # The answer must come from this process, not from another one on the same port.
        instance = httpx.get(service.url + "/status", timeout=10).json()["instance"]
        assert instance.split("/")[1] == str(service.process.pid), (instance, service.log_path)
    return started


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``regime-trader ARGS`` as a subprocess; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "regime_trader.service", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


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
    sells = [o for o in (record.plan or {}).get("orders", []) if o["side"] == "sell"]
    buys = [o for o in (record.buys or {}).get("orders", []) if o["side"] == "buy"]
    return {o["client_order_id"] for o in sells + buys}


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


def log_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            line = json.loads(raw)
            if isinstance(line, dict):
                out.append(line)
    return out

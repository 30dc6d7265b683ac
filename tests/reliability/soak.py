"""Soak: ``regime-trader run`` against the emulator process through many simulated sessions.

Run it by hand (it prints the figures)::

    python -m tests.reliability.soak --sessions 1000

The emulator's simulated clock is moved session by session (to the open, then 31 minutes on,
past the cycle's scheduled minute) and the service, a separate process polling the broker
clock every 0.3 s, runs that session's cycle. After each cycle reaches ``done`` the driver
records:

* the positions the service recorded: the running sum of the signed ``filled_qty`` of every
  order in the session's cycle record (``rt:<portfolio>:cycle:<session>`` field ``orders``),
  against the emulator's ``GET /v2/positions`` -- they must be equal, exactly, every session;
* the service process's resident memory (``VmRSS`` of ``/proc/<pid>/status``);
* the key count (``DBSIZE``) and ``used_memory`` of a Redis database that holds nothing else.

The portfolio trades every session (``no_trade_band = 0.0``). Redis is a private
``redis-server`` on a free port when the binary exists (nothing else can touch or flush it),
otherwise database ``--redis-db`` of the local server (``tests.support.processes``).

What bounds the key count: every cycle writes one hash ``rt:<p>:cycle:<session>`` that expires
after 90 days of *real* time; every other key is fixed (lock, strategy, status, history list
capped at 500, ledger stream capped at 10,000 entries, cycle index capped at 400, alerts stream
capped at 10,000, one heartbeat per process). Simulated sessions pass in seconds, so in a soak
the hashes accumulate at one key per session; in production one session is one calendar day
and the TTL holds them to the sessions of the last 90 days (about 63).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from tests.support.processes import (
    EmulatorProcess,
    ServiceProcess,
    emulator_process,
    private_redis,
    service_env,
    start_service,
    wait_for_cycle,
)

__all__ = ["FIXED_KEYS", "SessionSample", "SoakResult", "rss_kib", "run_soak"]

PORTFOLIO = "default"
# Keys that do not grow with sessions: lock (while a cycle runs), strategy, status, history,
# ledger, cycles index, one heartbeat per service process, the alerts stream, and the shadow
# benchmarks' ledger, its points and the paper equity (issue 12). The last two are hashes that
# gain one field per session (about 250 a year, each a few hundred bytes): the dashboard draws
# the whole history from them, so they are kept, not capped.
FIXED_KEYS = 11
CYCLE_TIMEOUT_SECS = 120.0
PORTFOLIO_TOML = f"""\
[[portfolio]]
name = "{PORTFOLIO}"
symbols = ["SPY", "TLT", "GLD"]
no_trade_band = 0.0
profile = "baseline"  # the regime strategy: the heaviest one's memory is the one to watch
"""


def rss_kib(pid: int) -> int:
    """Return the resident memory of process ``pid`` in KiB (``VmRSS``), 0 if unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class SessionSample:
    """What was measured after one session's cycle finished."""

    index: int
    session: str
    outcome: str
    cycle_secs: float
    rss_kib: int
    keys: int
    redis_used_bytes: int
    orders: int
    mismatch: dict[str, list[str]]


@dataclass
class SoakResult:
    """All samples of a soak run and its wall time."""

    samples: list[SessionSample] = field(default_factory=list)
    wall_secs: float = 0.0
    service_exit_code: int | None = None

    @property
    def mismatches(self) -> list[SessionSample]:
        return [s for s in self.samples if s.mismatch]

    def summary(self) -> dict[str, Any]:
        """The figures, as a JSON-able dict."""
        s = self.samples
        if not s:
            return {"sessions": 0}
        rss = [x.rss_kib for x in s]
        after = s[min(9, len(s) - 1)]
        tail = s[min(10, len(s) - 1) :]
        key_slope = (s[-1].keys - s[0].keys) / max(1, len(s) - 1)
        return {
            "sessions": len(s),
            "first_session": s[0].session,
            "last_session": s[-1].session,
            "wall_secs": round(self.wall_secs, 1),
            "median_cycle_secs": round(statistics.median(x.cycle_secs for x in s), 3),
            "max_cycle_secs": round(max(x.cycle_secs for x in s), 3),
            "outcomes": {o: sum(1 for x in s if x.outcome == o) for o in {x.outcome for x in s}},
            "orders": sum(x.orders for x in s),
            "rss_mib_first": round(rss[0] / 1024, 1),
            "rss_mib_after_10": round(after.rss_kib / 1024, 1),
            "rss_mib_end": round(rss[-1] / 1024, 1),
            "rss_mib_max": round(max(rss) / 1024, 1),
            "rss_growth_mib_after_10": round(
                (max(x.rss_kib for x in tail) - after.rss_kib) / 1024, 1
            ),
            "keys_first": s[0].keys,
            "keys_end": s[-1].keys,
            "keys_per_session": round(key_slope, 3),
            "redis_used_mib_first": round(s[0].redis_used_bytes / 2**20, 2),
            "redis_used_mib_end": round(s[-1].redis_used_bytes / 2**20, 2),
            "mismatched_sessions": [x.session for x in self.mismatches],
            "service_exit_code": self.service_exit_code,
        }


def _fills(record: dict[str, str]) -> tuple[dict[str, Decimal], int]:
    """Signed filled quantity per symbol of one cycle record's order table, and its size."""
    orders: dict[str, dict[str, Any]] = json.loads(record.get("orders") or "{}")
    out: dict[str, Decimal] = {}
    for row in orders.values():
        qty = Decimal(row.get("filled_qty") or "0")
        sign = 1 if row["side"] == "buy" else -1
        out[row["symbol"]] = out.get(row["symbol"], Decimal(0)) + sign * qty
    return out, len(orders)


def _compare(ours: dict[str, Decimal], theirs: dict[str, Decimal]) -> dict[str, list[str]]:
    diff = {}
    for symbol in sorted(set(ours) | set(theirs)):
        a, b = ours.get(symbol, Decimal(0)), theirs.get(symbol, Decimal(0))
        if a != b:
            diff[symbol] = [str(a), str(b)]
    return diff


def _used_memory(client: redis.Redis) -> int:
    info: dict[str, Any] = client.info("memory")
    return int(info["used_memory"])


def drive(
    emulator: EmulatorProcess,
    service: ServiceProcess,
    client: redis.Redis,
    sessions: int,
    *,
    on_sample: Callable[[SessionSample], None] | None = None,
) -> list[SessionSample]:
    """Drive ``sessions`` sessions and sample after each; see the module docstring."""
    held: dict[str, Decimal] = {}
    samples: list[SessionSample] = []
    for index in range(1, sessions + 1):
        began = time.monotonic()
        session = emulator.api.open_session()
        record = wait_for_cycle(
            client, session, PORTFOLIO, timeout=CYCLE_TIMEOUT_SECS, service=service
        )
        fills, n_orders = _fills(record)
        for symbol, qty in fills.items():
            held[symbol] = held.get(symbol, Decimal(0)) + qty
        ours = {s: q for s, q in held.items() if q != 0}
        sample = SessionSample(
            index=index,
            session=session,
            outcome=record.get("outcome", "?"),
            cycle_secs=time.monotonic() - began,
            rss_kib=rss_kib(service.process.pid),
            keys=int(client.dbsize()),
            redis_used_bytes=_used_memory(client),
            orders=n_orders,
            mismatch=_compare(ours, emulator.api.positions()),
        )
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
    return samples


def run_soak(
    sessions: int,
    tmp: Path,
    *,
    start_date: str = "2019-01-02",
    redis_db: int = 9,
    on_sample: Callable[[SessionSample], None] | None = None,
) -> SoakResult:
    """Run the soak in ``tmp`` and return every sample (see the module docstring)."""
    result = SoakResult()
    config = tmp / "portfolio.toml"
    config.write_text(PORTFOLIO_TOML, encoding="utf-8")
    future = max(756, sessions + 100)
    began = time.monotonic()
    with (
        private_redis(tmp, persistent=False, fallback_db=redis_db) as server,
        emulator_process(tmp, start_date, future_sessions=future, state=False) as emulator,
    ):
        client = server.client()
        env = service_env(tmp, server.url, emulator.url, RT_CONFIG_FILE=str(config))
        service = start_service(tmp, env)
        try:
            result.samples = drive(emulator, service, client, sessions, on_sample=on_sample)
        finally:
            result.service_exit_code = service.stop()
            result.wall_secs = time.monotonic() - began
            client.close()
    return result


def _print_sample(every: int) -> Callable[[SessionSample], None]:
    def show(s: SessionSample) -> None:
        if s.index == 1 or s.index % every == 0 or s.mismatch:
            print(
                f"session {s.index:5d} {s.session} {s.outcome:<10} cycle {s.cycle_secs:5.2f}s "
                f"rss {s.rss_kib / 1024:7.1f} MiB keys {s.keys:5d} "
                f"redis {s.redis_used_bytes / 2**20:6.2f} MiB"
                + (f" MISMATCH {s.mismatch}" if s.mismatch else ""),
                flush=True,
            )

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the soak, print progress and the figures; exit 1 on a mismatch."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000, help="sessions to drive")
    parser.add_argument("--start-date", default="2019-01-02", help="emulator start date")
    parser.add_argument("--redis-db", type=int, default=9, help="db if no redis-server binary")
    parser.add_argument("--every", type=int, default=50, help="print a line every N sessions")
    parser.add_argument("--json", type=Path, help="also write every sample and the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rt-soak-"))
    try:
        result = run_soak(
            args.sessions,
            work,
            start_date=args.start_date,
            redis_db=args.redis_db,
            on_sample=_print_sample(args.every),
        )
    finally:
        if args.keep:
            print(f"work directory: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    figures = result.summary()
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        detail = {"figures": figures, "samples": [asdict(s) for s in result.samples]}
        args.json.write_text(json.dumps(detail), encoding="utf-8")
    return 1 if result.mismatches or figures["sessions"] != args.sessions else 0


if __name__ == "__main__":
    sys.exit(main())

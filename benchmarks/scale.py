"""Scale: a wide universe through the signal path, and many portfolios across replicas.

Run from the repository root: ``python -m benchmarks.scale [--part signal|portfolios|both]``.

**signal** — the S&P 500 stock panel of ``../shared/data`` (399 stocks: the file's all; the
issue asked for 500, the panel has no more) through the signal step on the service path
(:mod:`benchmarks.state_step_worker`: load the compact state from Redis, feed one bar, write
it ahead and complete the cycle), the regime strategy at N = 50, 100, 200 and 399 after
``--history`` sessions. Each row: the medians in milliseconds, the stored state, and the ratio
to the N=50 row and to one Redis round trip of the same run.

**portfolios** — ``--counts`` portfolios (default 100, 300, 1000), each trading its own paper
account of one emulator (``--accounts``), configured in one portfolio file read by
``--replicas`` ``regime-trader run`` processes (default 3) on one Redis. For each count, after
every replica has woken up once, ``--sessions`` sessions are opened one after the other; a
session's time runs from opening it to the last portfolio's cycle stored as done. Printed per
count: the session time (first session: each portfolio fetches its history; later ones: a
daily update), milliseconds per portfolio, the ratio to the smallest count's per-portfolio
time (1.0 = time grows linearly with the count), the ratio to one broker round trip
(``GET /v2/clock`` through the adapter, measured here), how the cycles were shared among the
replicas (cycles done by each, from their logs) and their resident memory at the end.

Every replica wakes every portfolio each ``--wake-secs`` seconds (the interval job that also
catches up missed cycles); its start-up burst and the clock the emulator serves to every wake
are part of what is measured. Nothing here is asserted; the machine is shared, so read ratios.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis

from benchmarks.revision import run_worker
from benchmarks.state_step import phase_cells
from tests.support.emulator import KEY_ID, SECRET_KEY
from tests.support.processes import (
    EmulatorProcess,
    ServiceProcess,
    service_env,
    shared_redis,
    start_services,
    wait_until,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PANEL = "sp500_stocks_2010_2019.csv"
WIDTHS = (50, 100, 200, 399)
SYMBOLS = ("SPY", "TLT", "GLD")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("signal", "portfolios", "both"), default="both")
    parser.add_argument("--history", type=int, default=1500, help="sessions before the steps")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--counts", default="100,300,1000")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--wake-secs", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.part in ("signal", "both"):
        if not (DATA / PANEL).is_file():
            print(f"no {PANEL} under {DATA}: the signal part needs it", file=sys.stderr)
            return 2
        _print_signal(args)
    if args.part in ("portfolios", "both"):
        counts = [int(c) for c in args.counts.split(",")]
        _print_portfolios(args, counts)
    return 0


# ------------------------------------------------------------------------------------ signal


def _print_signal(args: argparse.Namespace) -> None:
    with shared_redis(db=9) as redis_db:
        rows = []
        for n in WIDTHS:
            worker_args = ["--mode", "compact", "--prices", str(DATA / PANEL)]
            worker_args += ["--n-assets", str(n), "--history", str(args.history)]
            worker_args += ["--steps", str(args.steps), "--redis-url", redis_db.url]
            rows.append((n, run_worker("benchmarks.state_step_worker", worker_args)))
            print(f"signal N={n} done", file=sys.stderr, flush=True)
    print(
        f"\nsignal step, regime strategy, {args.history} sessions of history, median of "
        f"{args.steps} steps"
    )
    print(f"{'N':>4} | load, update, save, total | x N=50  x RTT | stored, written per step")
    first = rows[0][1]["load"] + rows[0][1]["update"] + rows[0][1]["save"]
    for n, r in rows:
        cells, total = phase_cells(r)
        ratios = f"{total / first:6.2f}x {total / r['redis_round_trip']:5.0f}x"
        sizes = f"{r['stored_bytes'] / 1e6:7.2f} MB, {r['written_bytes'] / 1e6:5.2f} MB"
        print(f"{n:>4} | {cells} | {ratios} | {sizes}")


# -------------------------------------------------------------------------------- portfolios


@dataclass
class ManyAccounts(EmulatorProcess):
    """The tests' emulator process serving ``accounts`` paper accounts (no state file)."""

    accounts: int = 1

    def _arguments(self) -> list[str]:
        return [*super()._arguments(), "--accounts", str(self.accounts)]


@dataclass(frozen=True)
class CountResult:
    count: int
    sessions: tuple[float, ...]  # seconds, open -> last cycle done
    busy: tuple[float, ...]  # seconds, first cycle started -> last cycle done
    cycles_by_replica: tuple[int, ...]
    rss_mib: tuple[float, ...]
    startup_secs: float
    round_trip_secs: float


def _print_portfolios(args: argparse.Namespace, counts: Sequence[int]) -> None:
    results = [_one_count(args, n) for n in counts]
    base = results[0]
    print(
        f"\n{args.replicas} replicas, one emulator with one account per portfolio, wake-ups "
        f"every {args.wake_secs:g} s; session 1 fetches each portfolio's history. Per session: "
        "open -> all done (busy: first cycle start -> last cycle end)"
    )
    header = (
        f"{'portfolios':>10} | {'start-up':>8} | "
        + " ".join(f"{f'session {i + 1}':>16}" for i in range(args.sessions))
        + f" | {'busy ms/portf.':>14} {'x first':>7} {'x RTT':>6} | cycles per replica | RSS MiB"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        steady = r.busy[-1] / r.count
        first = base.busy[-1] / base.count
        print(
            f"{r.count:>10} | {r.startup_secs:7.1f}s | "
            + " ".join(f"{s:6.1f}s ({b:5.1f}s)" for s, b in zip(r.sessions, r.busy, strict=True))
            + f" | {steady * 1e3:14.1f} {steady / first:6.2f}x "
            + f"{steady / r.round_trip_secs:5.0f}x"
            + f" | {'/'.join(str(c) for c in r.cycles_by_replica):>18} | "
            + "/".join(f"{m:.0f}" for m in r.rss_mib)
        )


def _portfolio_file(path: Path, count: int) -> dict[str, str]:
    """Write ``count`` portfolios, each on its own account; return the keys' environment."""
    env: dict[str, str] = {}
    tables = []
    for i in range(count):
        key, secret = (KEY_ID, SECRET_KEY) if i == 0 else (f"{KEY_ID}-{i}", f"{SECRET_KEY}-{i}")
        env[f"RT_SCALE_KEY_{i}"], env[f"RT_SCALE_SECRET_{i}"] = key, secret
        tables.append(
            f'[[portfolio]]\nname = "p{i:04d}"\nsymbols = {list(SYMBOLS)!r}\n'
            f'key_id_env = "RT_SCALE_KEY_{i}"\nsecret_key_env = "RT_SCALE_SECRET_{i}"\n'
        )
    path.write_text("\n".join(tables).replace("'", '"'), "utf-8")
    return env


def _one_count(args: argparse.Namespace, count: int) -> CountResult:
    with tempfile.TemporaryDirectory() as tmp_name, shared_redis(db=9) as redis_db:
        tmp = Path(tmp_name)
        emulator = ManyAccounts(tmp, "2024-03-04", state=False, accounts=count)
        emulator.history_sessions = 1100  # the service's 1000 sessions of history, and more
        emulator.start()
        replicas: list[ServiceProcess] = []
        try:
            trip = _broker_round_trip(emulator.url)  # before the replicas load the emulator
            keys = _portfolio_file(tmp / "portfolios.toml", count)
            extra = {"RT_CONFIG_FILE": str(tmp / "portfolios.toml"), **keys}
            extra["RT_WAKE_INTERVAL_SECS"] = str(args.wake_secs)
            extra["RT_LOCK_TTL_SECS"] = "30"
            began = time.perf_counter()
            envs = {
                f"replica-{i}": service_env(tmp, redis_db.url, emulator.url, **extra)
                for i in range(args.replicas)
            }
            replicas = start_services(tmp, envs)
            for replica in replicas:  # every portfolio asked once: the start-up burst is over
                _wait_for_wakes(replica, count)
            startup = time.perf_counter() - began
            client = redis_db.client()
            names = [f"p{i:04d}" for i in range(count)]
            sessions: list[float] = []
            busy: list[float] = []
            for _ in range(args.sessions):
                opened = time.perf_counter()
                session = emulator.api.open_session()
                wait_until(
                    functools.partial(_all_done, client, session, names),
                    max(600.0, count * 2.0),
                    f"{count} cycles of {session}",
                    interval=0.5,
                )
                sessions.append(time.perf_counter() - opened)
                busy.append(_busy_secs(client, session, names))
                print(f"portfolios={count}: {session} in {sessions[-1]:.1f}s", file=sys.stderr)
            rss = tuple(_rss_mib(r.process.pid) for r in replicas)
        finally:
            for replica in replicas:
                replica.stop()
            emulator.stop()
        done = tuple(_cycles_done(r) for r in replicas)
        return CountResult(count, tuple(sessions), tuple(busy), done, rss, startup, trip)


def _wait_for_wakes(replica: ServiceProcess, count: int) -> None:
    def woke_all() -> bool:
        assert replica.process.poll() is None, replica.log_path.read_text()[-3000:]
        return len({w.portfolio for w in replica.wake_ups()}) >= count

    wait_until(woke_all, max(300.0, count * 1.0), f"{replica.log_path.stem}'s wake-ups", 1.0)


def _all_done(client: redis.Redis, session: str, names: Sequence[str]) -> bool:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(f"rt:{name}:cycle:{session}", "step")
    return all(step == "done" for step in pipe.execute())


def _busy_secs(client: redis.Redis, session: str, names: Sequence[str]) -> float:
    """From the first cycle's start to the last one's end (the records' own timestamps)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(f"rt:{name}:cycle:{session}", ["started_at", "updated_at"])
    rows = pipe.execute()
    first = min(datetime.fromisoformat(started) for started, _ in rows)
    last = max(datetime.fromisoformat(updated) for _, updated in rows)
    return (last - first).total_seconds()


def _cycles_done(replica: ServiceProcess) -> int:
    return sum(line.get("event") == "cycle done" for line in replica.log_lines())


def _broker_round_trip(url: str) -> float:
    from regime_trader.service.broker import AlpacaBroker

    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=url)
    times = []
    for _ in range(30):
        began = time.perf_counter()
        broker.clock()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _rss_mib(pid: int) -> float:
    with Path(f"/proc/{pid}/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())

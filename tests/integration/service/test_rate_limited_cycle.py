"""Whole cycles against the emulator with Alpaca's limit on (200 requests/min per account).

Three replicas wake up together on one portfolio, as a deployment with three pods does; every
request is counted on its way through a proxy. None may be answered 429, and the whole
session's traffic stays far below the per-minute limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from regime_trader.service.cycle import CycleOutcome, CycleRunner
from regime_trader.service.emulator import RunningEmulator, start_in_thread
from tests.integration.service.alpaca_proxy import running_proxy
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import CYCLE_START, FAST, KEY_ID, EmulatorDriver, emulator_config

ALPACA_LIMIT = 200  # requests per minute per account
PORTFOLIO = small_portfolio("core", fill_timeout_secs=10)


@pytest.fixture
def limited() -> Iterator[RunningEmulator]:
    emulator = start_in_thread(emulator_config(rate_limit_per_min=ALPACA_LIMIT))
    yield emulator
    emulator.stop()


def test_three_replicas_run_a_session_without_one_429_far_below_the_limit(
    limited: RunningEmulator, text_redis: redis.Redis
) -> None:
    emu = EmulatorDriver.attach(limited)
    emu.reset(timestamp=CYCLE_START)
    emu.open_session()
    emu.clear_requests()  # the emulator's own count of what reaches it
    ns = unique_namespace()
    refused: list[str] = []
    policy = replace(FAST, rate_limited_hook=refused.append)
    outcomes: list[CycleOutcome] = []
    with running_proxy(emu.url) as proxy:
        runners = [
            CycleRunner(
                cycle_context(proxy.url, text_redis, ns, PORTFOLIO, policy=policy),
                owner=f"replica-{i}",
                lock_ttl_secs=10,
            )
            for i in range(3)
        ]
        threads = [threading.Thread(target=lambda r=r: outcomes.append(r.run())) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # Each replica's next wake-up finds the session done.
        outcomes += [r.run() for r in runners]
        seen = list(proxy.rewrites.seen)

    first = sorted(o.outcome for o in outcomes[:3])
    assert first.count("rebalanced") == 1, outcomes
    assert {o.outcome for o in outcomes[3:]} == {"already_done"}
    assert refused == [], f"answered 429: {refused}"
    # The whole session (three replicas, every wake-up) in requests: printed for the report.
    span = max(t for t, _, _ in seen) - min(t for t, _, _ in seen)
    print(f"\nrequests for one session with 3 replicas: {len(seen)} in {span:.1f} s")
    assert len(seen) < ALPACA_LIMIT / 2
    # The emulator's side: every request of the account, none refused, the busiest minute.
    stats = emu.requests().accounts[KEY_ID]
    assert stats.rate_limited == 0 and stats.requests == len(seen)
    assert stats.max_per_60s < ALPACA_LIMIT / 2
    emu.close()

"""Fault matrix, case 8: three replicas share one account under Alpaca's request budget.

Alpaca allows 200 requests per minute per account, counted across every process that uses the
key. Three ``regime-trader run`` replicas wake up every second (far more often than the default
300 s, so that waking alone would spend 180 of the 200 requests a minute) while the simulated
clock moves through a session every few seconds. The emulator's limiter is on at Alpaca's
200/min and counts what it answers. The service must pace itself from the ``X-RateLimit-*``
headers and hold all three to one budget shared through Redis (``RT_BROKER_REQUESTS_PER_MIN``,
a moving window): every session traded exactly once, no request answered 429, and no 60 s
window with more than 200 requests. The figures are printed (``-s``) for the record.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.faultlab import PORTFOLIO, fault_lab
from tests.support.emulator import KEY_ID
from tests.support.processes import start_services, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

LIMIT_PER_MIN = 200  # Alpaca's, per account
BUDGET_PER_MIN = 180  # the service's default budget, shared through Redis
RUN_SECS = 75.0  # more than one 60 s window
SESSION_EVERY_SECS = 5.0


def test_three_replicas_stay_under_the_request_budget_with_no_429(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-03-04", rate_limit_per_min=LIMIT_PER_MIN) as lab:
        emu, store = lab.api, lab.store
        emu.clear_requests()
        # One environment each: each replica listens on its own port.
        envs = {
            f"replica-{i}": lab.env(
                RT_WAKE_INTERVAL_SECS="1.0", RT_BROKER_REQUESTS_PER_MIN=str(BUDGET_PER_MIN)
            )
            for i in range(3)
        }
        replicas = start_services(tmp_path, envs)
        sessions: list[str] = []
        try:
            began = time.monotonic()
            while time.monotonic() - began < RUN_SECS:
                session = emu.open_session()
                sessions.append(session)
                wait_until(
                    lambda s=session: (r := store.cycle(PORTFOLIO, s)) is not None and r.finished,
                    120,
                    f"the cycle of {session}",
                )
                # A steady pace: the next session starts SESSION_EVERY_SECS after this one.
                time.sleep(
                    max(0.0, SESSION_EVERY_SECS * len(sessions) - (time.monotonic() - began))
                )
            outcomes = {
                s: (r.outcome if (r := store.cycle(PORTFOLIO, s)) else None) for s in sessions
            }
        finally:
            codes = [r.stop() for r in replicas]
        account = emu.requests().accounts[KEY_ID]
    print(
        f"\nrate budget: {len(sessions)} sessions in {RUN_SECS:.0f} s by 3 replicas; "
        f"{account.requests} requests, busiest 60 s window {account.max_per_60s} "
        f"(limit {LIMIT_PER_MIN}), {account.rate_limited} answered 429"
    )
    assert codes == [0, 0, 0]
    assert len(sessions) >= 3  # at least a few cycles' bursts on top of the wake-ups
    # Proof of traffic: three replicas asking the clock every second would alone send about
    # 3 x 60 requests a minute, so the budget was under pressure the whole run.
    assert account.requests >= 0.8 * BUDGET_PER_MIN * RUN_SECS / 60
    assert set(outcomes.values()) == {"rebalanced"}, outcomes  # no band: every session trades
    assert account.rate_limited == 0
    assert account.max_per_60s <= LIMIT_PER_MIN

"""Alpaca's 200 requests/min against the emulator with its limiter on.

The emulator counts requests in fixed one-minute windows of wall time and answers with
``X-Ratelimit-Limit/Remaining/Reset``; past the limit, 429. Here: the transport waits for the
reset after a genuine 429, backs off normally on a 429 that reports requests remaining, and
paces itself below a small limit so that no request is refused at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from regime_trader.service.alpaca_http import AlpacaTransport, HttpPolicy
from regime_trader.service.broker import AlpacaBroker
from regime_trader.service.emulator import RunningEmulator, start_in_thread
from regime_trader.service.emulator.ratelimit import AccountStats
from regime_trader.service.exceptions import BrokerUnavailableError
from tests.support.emulator import (
    FAST,
    HEADERS,
    KEY_ID,
    SECRET_KEY,
    START,
    EmulatorDriver,
    emulator_config,
)

WINDOW_SECS = 60


@pytest.fixture
def small_limit() -> Iterator[RunningEmulator]:
    config = emulator_config(
        rate_limit_per_min=10, start_date=START.date(), history_sessions=30, future_sessions=30
    )
    emulator = start_in_thread(config)
    yield emulator
    emulator.stop()


def _start_of_a_window(margin_secs: float = 8.0) -> None:
    """Return early in a limiter window, so the test's requests all fall in one window."""
    while time.time() % WINDOW_SECS > WINDOW_SECS - margin_secs:
        time.sleep(0.2)


def _stats(url: str) -> AccountStats:
    """The emulator's request statistics of the test key (requests, rate_limited, ...)."""
    with EmulatorDriver(url) as admin:
        return admin.requests().accounts[KEY_ID]


class RecordedSleep:
    """Records each wait the transport asks for and spends none of it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, secs: float) -> None:
        self.waits.append(secs)


def _broker_that_records_its_waits(
    url: str, policy: HttpPolicy
) -> tuple[AlpacaBroker, RecordedSleep]:
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=url, policy=policy)
    sleep = RecordedSleep()
    broker._http = AlpacaTransport(broker._client, policy, (KEY_ID, SECRET_KEY), sleep=sleep)
    return broker, sleep


def _spend_the_budget(url: str) -> float:
    """Use every request of the window as another replica would; return the reset epoch."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=10) as other:
        while True:
            answer = other.get("/v2/clock")
            if answer.status_code == 429 or int(answer.headers["X-Ratelimit-Remaining"]) == 0:
                return float(answer.headers["X-Ratelimit-Reset"])


def test_a_spent_budget_is_waited_out_until_the_reset(small_limit: RunningEmulator) -> None:
    _start_of_a_window()
    refused: list[str] = []
    policy = replace(
        FAST,
        retry_attempts=3,
        retry_wait_initial_secs=0.05,
        retry_wait_max_secs=0.1,
        rate_limited_hook=refused.append,
    )
    broker, sleep = _broker_that_records_its_waits(small_limit.url, policy)
    reset = _spend_the_budget(small_limit.url)

    asked_at = time.time()
    with pytest.raises(BrokerUnavailableError, match="HTTP 429") as err:
        broker.clock()  # the recorded sleeps do not wait: every attempt meets the same window
    # Every attempt reached the emulator and was refused there; each is counted once.
    assert err.value.attempts == 3 and refused == ["GET /v2/clock"] * 3
    assert _stats(small_limit.url).rate_limited == 3
    # Each retry waited for the reset (plus at most its jitter), not for a backoff of 0.05 s.
    assert len(sleep.waits) == 2
    for wait in sleep.waits:
        assert reset - asked_at - 1.0 <= wait <= reset - asked_at + 0.05 + 0.5
    assert min(sleep.waits) > policy.retry_wait_max_secs


def test_a_429_that_reports_requests_left_gets_the_normal_backoff(
    small_limit: RunningEmulator,
) -> None:
    # An injected 429 (a proxy's, say): the emulator's headers still show budget left.
    _start_of_a_window()
    with EmulatorDriver(small_limit.url) as admin:
        admin.add_fault(path="/v2/clock", status=429, count=2)
        refused: list[str] = []
        policy = HttpPolicy(
            retry_attempts=4,
            retry_wait_initial_secs=0.05,
            retry_wait_max_secs=0.1,
            rate_limited_hook=refused.append,
        )
        broker, sleep = _broker_that_records_its_waits(small_limit.url, policy)
        assert broker.clock().timestamp == START
        assert admin.faults() == []  # both injected answers were used
    assert refused == ["GET /v2/clock"] * 2
    assert len(sleep.waits) == 2 and all(w <= 0.15 for w in sleep.waits)


@pytest.mark.slow
def test_pacing_keeps_a_burst_under_a_small_limit_without_a_single_429(
    small_limit: RunningEmulator,
) -> None:
    """12 requests against 10 a minute: the transport waits for the next window instead.

    Spends real time: up to one limiter window (60 s), until the emulator's budget refills.
    """
    refused: list[str] = []
    policy = HttpPolicy(
        retry_attempts=1,  # a single 429 would fail the call: pacing must prevent it
        rate_limit_reserve=2,
        rate_limited_hook=refused.append,
    )
    broker = AlpacaBroker(KEY_ID, SECRET_KEY, url_override=small_limit.url, policy=policy)
    windows = set()
    for _ in range(12):
        broker.clock()
        windows.add(int(time.time() // WINDOW_SECS))
    assert refused == [] and _stats(small_limit.url).rate_limited == 0
    assert broker._http.pacer.paced >= 1
    assert len(windows) >= 2  # the burst was spread over the next window

"""``run`` offline: a simulated session from the first tick on, and none skipped silently.

Before: the demo clock moved every 30 s but cycles ran only at the wake-up interval (300 s by
default), so the first cycle came after five minutes and the sessions that passed in between
were left without a trade or an alert. Here the wake-up interval is an hour: every cycle below
comes from the pacer itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from regime_trader.service.alert_channels import read_alerts
from regime_trader.service.app import Service
from regime_trader.service.config import load_settings
from regime_trader.service.emulator.admin_client import EmulatorAdmin
from regime_trader.service.scheduler import DEMO_ATTEMPTS_PER_SESSION, CycleScheduler
from tests.integration.service.offline_service import offline_env
from tests.support.processes import wait_until

__all__ = ["offline_env"]

TICK_SECS = 0.5


@dataclass
class Paced:
    service: Service
    admin: EmulatorAdmin

    def done_sessions(self) -> list[str]:
        sessions = self.service.store.sessions("default", 100)
        return [
            s
            for s in sessions
            if (r := self.service.store.cycle("default", s)) is not None and r.finished
        ]


@pytest.fixture
def paced(offline_env: Path) -> Iterator[Paced]:
    service = Service.create(load_settings(), serve_emulator=True)
    assert service.emulator is not None
    stop = threading.Event()
    scheduler = CycleScheduler(
        service,
        stop=stop,
        wake_interval_secs=3600.0,  # no help from the catch-up wake-up
        misfire_grace_secs=60.0,
        demo_secs_per_session=TICK_SECS,
    ).start()
    admin = EmulatorAdmin(service.emulator.url)
    try:
        yield Paced(service, admin)
    finally:
        stop.set()
        scheduler.shutdown()
        admin.close()
        service.close()


def test_each_tick_trades_the_next_simulated_session_from_start_up(paced: Paced) -> None:
    done = wait_until(lambda: (d := paced.done_sessions())[3:] and d, 180, "four done sessions")
    first, last = date.fromisoformat(done[0]), date.fromisoformat(done[-1])
    calendar = paced.service.contexts["default"].broker.calendar(first, last)
    # The very first simulated session, and every session after it: none passed untraded.
    assert done[0] == "2024-01-02"
    assert done == [day.date.isoformat() for day in calendar]


def test_a_session_whose_cycle_cannot_start_is_left_with_an_alert(paced: Paced) -> None:
    wait_until(paced.done_sessions, 180, "the first done session")
    # The broker refuses its clock: the runner cannot even start a cycle, so no record.
    fault = paced.admin.add_fault(path="/v2/clock", status=403, code=40310000, message="no")

    def skipped() -> list[str]:
        found = read_alerts(paced.service.store.redis, count=50, portfolio="default")
        return [a.session for a in found if a.kind == "skipped"]

    left = wait_until(skipped, 120, "a skipped-session alert")[0]
    assert (paced.admin.hits(fault.id) or 0) >= DEMO_ATTEMPTS_PER_SESSION
    paced.admin.clear_faults()
    assert paced.service.store.cycle("default", left) is None
    [alert] = [
        a
        for a in read_alerts(paced.service.store.redis, count=50, portfolio="default")
        if a.kind == "skipped"
    ][:1]
    assert f"after {DEMO_ATTEMPTS_PER_SESSION} attempts" in alert.summary
    assert "failed" in alert.details["last_outcome"]
    # And the market goes on: the next session is traded once the broker answers again.
    wait_until(lambda: any(s > left for s in paced.done_sessions()), 180, "a done session after it")

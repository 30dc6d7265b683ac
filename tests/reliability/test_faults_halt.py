"""Fault matrix, case 6: an operator halts a portfolio while its cycle is in progress.

Two ways a halt meets a running cycle, on a real Redis with the emulator and the service as
processes:

- live: the halt is written (``Store.halt``, what ``regime-trader halt`` does) while the first
  order of the session is in flight at the broker (a latency fault holds the request). That
  order may complete; nothing after it may be sent. ``Store.resume`` lets the same process
  finish the same cycle.
- across a crash: the service is SIGKILLed right after the first order (``order_sent``),
  ``regime-trader halt --reason ...`` (the command, as a process) runs while it is down, and the
  restarted service must send nothing until ``regime-trader resume``; then it finishes the
  cycle without sending an order twice.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from regime_trader.service.store import Store
from tests.reliability.faultlab import (
    PORTFOLIO,
    alerts,
    assert_ledger_matches_broker,
    emulator_process,
    env_for,
    fast_portfolio,
    planned_ids,
    portfolio_toml,
    session_orders,
)
from tests.support.processes import private_redis, run_cli, start_service, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_halt_during_a_cycle_sends_nothing_more_until_resume(tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server, emulator_process(tmp_path, "2024-03-04") as emu:
        client = redis_server.client()
        store = Store(client)
        env = env_for(tmp_path, redis_server.url, emu, portfolio_toml(tmp_path, fast_portfolio()))

        def halted_alert(session: str) -> bool:
            return any(a.kind == "halted" and a.session == session for a in alerts(client))

        def done(session: str) -> bool:
            return (r := store.cycle(PORTFOLIO, session)) is not None and r.alerted

        # ---- live: halted while the first order is at the broker
        service = start_service(tmp_path, env, "live")
        try:
            s1 = emu.api.open_session()
            emu.api.add_fault(path="/v2/orders", method="POST", latency_ms=1500, count=1)
            wait_until(lambda: not emu.api.faults(), 60, "the first order in flight", interval=0.02)
            store.halt(PORTFOLIO, "reliability: halted mid-cycle", by="test")
            wait_until(lambda: halted_alert(s1), 30, "the cycle to see the halt")
            # Two wake-ups that found the portfolio halted, the second begun after the
            # attempt that saw the halt had ended: only then is "nothing more" a finding.
            mark = len(service.wake_ups())
            service.wait_for_wake_ups(2, after=mark, outcomes={"halted"}, session=s1)
            assert len(session_orders(emu.api.orders(), s1)) == 1, "sent after the halt"
            record = store.cycle(PORTFOLIO, s1)
            assert record is not None and record.step == "buys_planned"
            assert record.error and "halted" in record.error
            status = httpx.get(service.url + "/status", timeout=10).json()
            assert status["portfolios"][PORTFOLIO]["halted"]["reason"].startswith("reliability")

            assert store.resume(PORTFOLIO)
            wait_until(lambda: done(s1), 60, f"the cycle of {s1} after resume")
        finally:
            assert service.stop() == 0
        sent = {o["client_order_id"] for o in session_orders(emu.api.orders(), s1)}
        assert sent == planned_ids(store, s1) and len(sent) > 1

        # ---- across a crash: killed after the first order, halted while down
        s2 = emu.api.open_session()
        doomed = start_service(tmp_path, env, "doomed", kill_at="order_sent")
        wait_until(lambda: doomed.process.poll() is not None, 60, "the kill at order_sent")
        assert doomed.process.returncode == -signal.SIGKILL
        halted = run_cli("halt", "--reason", "reliability: halted while down", env=env)
        assert halted.returncode == 0, halted.stderr
        survivor = start_service(tmp_path, env, "survivor")
        try:
            wait_until(lambda: halted_alert(s2), 30, "the restarted service to see the halt")
            survivor.wait_for_wake_ups(2, outcomes={"halted"}, session=s2)
            assert len(session_orders(emu.api.orders(), s2)) == 1, "sent while halted"
            record = store.cycle(PORTFOLIO, s2)
            assert record is not None and record.step == "planned"  # sells go first
            resumed = run_cli("resume", env=env)
            assert resumed.returncode == 0, resumed.stderr
            assert "resumed" in resumed.stdout
            wait_until(lambda: done(s2), 60, f"the cycle of {s2} after resume")
        finally:
            assert survivor.stop() == 0
        sent = {o["client_order_id"] for o in session_orders(emu.api.orders(), s2)}
        assert sent == planned_ids(store, s2) and len(sent) > 1
        assert_ledger_matches_broker(client, emu.api.orders())
        finished = [a.session for a in alerts(client) if a.kind in ("rebalanced", "no_trade")]
        assert finished == [s1, s2]

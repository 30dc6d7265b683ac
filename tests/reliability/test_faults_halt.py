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

from tests.reliability.faultlab import PORTFOLIO, fault_lab
from tests.support.processes import run_cli, start_service, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_halt_during_a_cycle_sends_nothing_more_until_resume(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-03-04") as lab:
        store, env = lab.store, lab.env()

        def halted_alert(session: str) -> bool:
            return any(a.kind == "halted" and a.session == session for a in lab.alerts())

        # ---- live: halted while the first order is at the broker
        service = start_service(tmp_path, env, "live")
        try:
            s1 = lab.api.open_session()
            lab.api.add_fault(path="/v2/orders", method="POST", latency_ms=1500, count=1)
            wait_until(lambda: not lab.api.faults(), 60, "the first order in flight", interval=0.02)
            store.halt(PORTFOLIO, "reliability: halted mid-cycle", by="test")
            wait_until(lambda: halted_alert(s1), 30, "the cycle to see the halt")
            # Two wake-ups that found the portfolio halted, the second begun after the
            # attempt that saw the halt had ended: only then is "nothing more" a finding.
            mark = len(service.wake_ups())
            service.wait_for_wake_ups(2, after=mark, outcomes={"halted"}, session=s1)
            assert len(lab.session_orders(s1)) == 1, "sent after the halt"
            record = lab.record(s1)
            assert record.step == "buys_planned"
            assert record.error and "halted" in record.error
            status = httpx.get(service.url + "/status", timeout=10).json()
            assert status["portfolios"][PORTFOLIO]["halted"]["reason"].startswith("reliability")

            assert store.resume(PORTFOLIO)
            lab.wait_alerted(s1, f"the cycle of {s1} after resume")
        finally:
            assert service.stop() == 0
        sent = {o["client_order_id"] for o in lab.session_orders(s1)}
        assert sent == lab.planned_ids(s1) and len(sent) > 1

        # ---- across a crash: killed after the first order, halted while down
        s2 = lab.api.open_session()
        doomed = start_service(tmp_path, env, "doomed", kill_at="order_sent")
        wait_until(lambda: doomed.process.poll() is not None, 60, "the kill at order_sent")
        assert doomed.process.returncode == -signal.SIGKILL
        halted = run_cli("halt", "--reason", "reliability: halted while down", env=env)
        assert halted.returncode == 0, halted.stderr
        survivor = start_service(tmp_path, env, "survivor")
        try:
            wait_until(lambda: halted_alert(s2), 30, "the restarted service to see the halt")
            survivor.wait_for_wake_ups(2, outcomes={"halted"}, session=s2)
            assert len(lab.session_orders(s2)) == 1, "sent while halted"
            assert lab.record(s2).step == "planned"  # sells go first
            resumed = run_cli("resume", env=env)
            assert resumed.returncode == 0, resumed.stderr
            assert "resumed" in resumed.stdout
            lab.wait_alerted(s2, f"the cycle of {s2} after resume")
        finally:
            assert survivor.stop() == 0
        sent = {o["client_order_id"] for o in lab.session_orders(s2)}
        assert sent == lab.planned_ids(s2) and len(sent) > 1
        lab.assert_ledger_matches_broker()
        finished = [a.session for a in lab.alerts() if a.kind in ("rebalanced", "no_trade")]
        assert finished == [s1, s2]

"""Fault matrix, case 2: Redis is not there at start, or goes away in the middle of a cycle.

Redis is a private ``redis-server`` (append-only file, so a kill and a restart keep what was
written); the service and the emulator are processes. What must hold:

- Redis down at start: the service stays up and says why (``/healthz`` 200, ``/readyz`` 503
  with ``redis: false``, an error line naming Redis), sends nothing, and trades once Redis is
  there.
- Redis lost mid-cycle: killed while the broker holds a request of the cycle (a latency fault
  on the emulator keeps it in flight). Killed before the plan is stored: no order at all; killed
  after it, while the first order is in flight: that order and no other. ``/readyz`` is 503 and
  the logs name Redis while it is down; after Redis is back the same cycle completes and no
  order is sent twice.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.reliability.faultlab import PORTFOLIO, fault_lab
from tests.support.processes import (
    RedisServer,
    json_lines,
    needs_redis_server,
    start_service,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.reliability, needs_redis_server()]


def _ready(url: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(url + "/readyz", timeout=15)
    return response.status_code, dict(response.json())


def _redis_errors(log: Path, since: int = 0) -> list[str]:
    """Error/warning lines (after the first ``since`` lines) whose text names Redis."""
    found = []
    for line in json_lines(log)[since:]:
        text = " ".join(str(v) for v in line.values()).lower()
        if line.get("level") in ("error", "warning", "critical") and "redis" in text:
            found.append(f"{line.get('event')}: {text[-300:]}")
    return found


def test_redis_down_at_start_then_up_trades_once(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")  # port reserved, server not started
    with fault_lab(tmp_path, "2024-03-04", redis_like=redis_server) as lab:
        emu, env = lab.api, lab.env()
        session = emu.open_session()
        service = start_service(tmp_path, env)
        try:
            assert service.process.poll() is None, "the service exited instead of waiting"
            # Two wake-ups against the missing Redis: each asked the broker's clock (the
            # session is open), tried the store and gave up -- without sending anything.
            tried = service.wait_for_wake_ups(2)
            assert {w.outcome for w in tried} <= {"failed", "crashed"}, tried
            assert service.process.poll() is None, "the service died without Redis"
            assert httpx.get(service.url + "/healthz", timeout=10).status_code == 200
            status, body = _ready(service.url)
            assert status == 503 and body["checks"]["redis"] is False  # type: ignore[index]
            assert _redis_errors(service.log_path), "no log line says Redis is unavailable"
            assert emu.orders() == [], "an order went out with no Redis to record it"

            redis_server.start()
            lab.wait_alerted(session, "the cycle once Redis is up")
            wait_until(lambda: _ready(service.url)[0] == 200, 30, "/readyz 200")
            assert service.stop() == 0
            record = lab.record(session)
            assert (record.step, record.attempts) == ("done", 1)
            lab.assert_ledger_matches_broker()
        finally:
            service.stop()
            redis_server.stop()


def test_redis_lost_mid_cycle_sends_nothing_unplanned_and_completes_after(
    tmp_path: Path,
) -> None:
    redis_server = RedisServer(tmp_path / "redis").start()
    with fault_lab(tmp_path, "2024-03-04", redis_like=redis_server) as lab:
        emu, store = lab.api, lab.store
        service = start_service(tmp_path, lab.env())
        try:
            # (a) Lost while the plan is being made: GET /v2/account is the first call of
            # planning; the plan can then not be stored, so nothing may be sent.
            # (b) Lost while the first order is in flight: the plan is stored; that order
            # reaches the broker, nothing else may.
            for path, method, expect_sent in (
                ("/v2/account", "GET", 0),
                ("/v2/orders", "POST", 1),
            ):
                session = emu.open_session()
                emu.add_fault(path=path, method=method, latency_ms=1500, count=1)
                wait_until(lambda: not emu.faults(), 30, f"{method} {path} in flight", 0.02)
                step_at_loss = store.cycle(PORTFOLIO, session)
                lines_before = len(json_lines(service.log_path))
                redis_server.kill()
                assert step_at_loss is not None
                # Session 1 buys from cash; session 2 has sells, sent first.
                assert step_at_loss.step == ("signal" if expect_sent == 0 else "planned")

                # The held request returns and that attempt fails; then a whole wake-up runs
                # without Redis. Two wake-ups logged after the kill prove both.
                mark = len(service.wake_ups())
                tried = service.wait_for_wake_ups(2, after=mark)
                assert {w.outcome for w in tried} <= {"failed", "crashed"}, tried
                assert len(lab.session_orders(session)) == expect_sent
                status, body = _ready(service.url)
                assert status == 503 and body["checks"]["redis"] is False  # type: ignore[index]
                assert _redis_errors(service.log_path, lines_before), "no error names Redis"
                assert service.process.poll() is None, "the service died with Redis"

                redis_server.start()
                record = lab.wait_alerted(session, f"the cycle of {session} after Redis came back")
                assert record.step == "done" and record.attempts >= 2
                sent = {o["client_order_id"] for o in lab.session_orders(session)}
                assert sent == set(record.orders), "the broker has what the cycle recorded"
                assert len(sent) > expect_sent
            wait_until(lambda: _ready(service.url)[0] == 200, 30, "/readyz 200 again")
            assert service.stop() == 0
            lab.assert_ledger_matches_broker()
            done = [a.session for a in lab.alerts() if a.kind in ("rebalanced", "no_trade")]
            assert len(done) == len(set(done)) == 2
        finally:
            service.stop()
            redis_server.stop()

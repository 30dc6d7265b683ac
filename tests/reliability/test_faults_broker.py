"""Fault matrix, case 3: the broker fails — 429 bursts, 5xx, stalls past the timeout, dropped
connections, the exchange process itself restarting mid-session.

Faults are injected per route by the emulator (``POST /admin/faults``) and every attempt is
counted from its hit counters. Faults are checked in the order they were added and a request
takes the first that matches, so a harmless *marker* fault (1 ms of latency, no limit) added
after a counted fault counts the requests that got past it: the attempts of a call are
``hits(counted fault) + hits(marker)``.

The retry budget is the adapter's default :class:`regime_trader.service.broker.HttpPolicy`: 4
attempts, 10 s timeout, exponential backoff with jitter. Retry counting runs the service's own
objects in this process (``Service.create`` from the same settings as ``regime-trader run``: one
``run()`` is one cycle attempt, so the counts are exact); the exchange restart runs the service
as a process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from regime_trader.service.alpaca_http import HttpPolicy
from tests.reliability.faultlab import (
    PORTFOLIO,
    alerts,
    duplicates,
    fast_portfolio,
    fault_lab,
    in_process_service,
    portfolio_toml,
)
from tests.support.processes import free_port, private_redis, service_env, start_service, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

BUDGET = HttpPolicy().retry_attempts  # attempts per call before the cycle gives up


def test_broker_429_5xx_drops_and_timeouts_are_retried_within_budget(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-03-04") as lab:
        emu, store = lab.api, lab.store
        with in_process_service(lab.env()) as service:
            runner = service.runner(PORTFOLIO)

            # Session 1: a 429 burst on POST /v2/orders, a 503 then a 500 on the account, a
            # dropped connection on the positions. Each stays within the budget.
            s1 = emu.open_session()
            emu.add_fault(path="/v2/orders", method="POST", status=429, count=BUDGET - 1)
            posts = emu.add_fault(path="/v2/orders", method="POST", latency_ms=1)  # marker
            emu.add_fault(path="/v2/account", method="GET", status=503, count=1)
            emu.add_fault(path="/v2/account", method="GET", status=500, count=1)
            emu.add_fault(path="/v2/positions", method="GET", drop=True, count=1)
            outcome = runner.run()
            assert (outcome.outcome, outcome.session) == ("rebalanced", s1), outcome
            faults = emu.faults()
            assert [f.id for f in faults] == [posts.id], "every counted fault used up"
            sent = lab.session_orders(s1)
            assert {o["client_order_id"] for o in sent} == lab.planned_ids(s1)
            # The first order took BUDGET attempts (BUDGET - 1 refusals), the others one each.
            assert next(f.hits for f in faults if f.id == posts.id) == len(sent)
            assert {o["status"] for o in sent} == {"filled"}

            # Session 2: the first order's request stalls past the adapter's timeout. The
            # emulator still processes it after the stall, so the retry meets an order that
            # exists (or creates it first): either way one order per client_order_id.
            s2 = emu.open_session()
            emu.clear_faults()
            stall = HttpPolicy().timeout_secs * 1000 + 500
            emu.add_fault(path="/v2/orders", method="POST", latency_ms=int(stall), count=1)
            posts = emu.add_fault(path="/v2/orders", method="POST", latency_ms=1)  # marker
            began = time.monotonic()
            outcome = runner.run()
            assert outcome.outcome == "rebalanced", outcome
            assert time.monotonic() - began >= HttpPolicy().timeout_secs
            sent = lab.session_orders(s2)
            assert {o["client_order_id"] for o in sent} == lab.planned_ids(s2)
            # The stall fault took the first attempt; the marker saw the retry of the first
            # order and one attempt of each other order: len(sent) + 1 requests in all.
            assert emu.hits(posts.id) == len(sent)
            assert duplicates(emu.orders()) == []

            # Session 3: the budget runs out on the first order: the attempt stops there.
            s3 = emu.open_session()
            emu.clear_faults()
            refused = emu.add_fault(path="/v2/orders", method="POST", status=503)
            outcome = runner.run()
            assert outcome.outcome == "failed" and "POST /v2/orders" in outcome.reason, outcome
            assert emu.hits(refused.id) == BUDGET
            assert lab.session_orders(s3) == []
            failed = [a for a in lab.alerts() if a.kind == "failed" and a.session == s3]
            assert len(failed) == 1, [a.summary for a in failed]
            assert "POST /v2/orders" in failed[0].summary
            assert f"{BUDGET} attempts" in failed[0].summary

            # The fault clears: the same cycle completes, nothing twice.
            emu.clear_faults()
            outcome = runner.run()
            assert outcome.outcome == "rebalanced", outcome
            record = store.cycle(PORTFOLIO, s3)
            assert record is not None and (record.step, record.attempts) == ("done", 2)
            sent = lab.session_orders(s3)
            assert {o["client_order_id"] for o in sent} == lab.planned_ids(s3)
        orders = emu.orders()
        lab.assert_ledger_matches_broker(orders)
        assert not [a for a in lab.alerts() if a.kind == "failed" and a.session != s3]


def test_emulator_restart_mid_session_fails_the_attempt_then_completes(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-03-04") as lab:
        emu, store = lab.api, lab.store
        service = start_service(tmp_path, lab.env())
        try:
            first = emu.open_session()
            lab.wait_alerted(first, "the first cycle")
            before_kill = {o["client_order_id"] for o in emu.orders()}
            session = emu.open_session()
            emu.add_fault(path="/v2/orders", method="POST", latency_ms=3000, count=1)
            wait_until(lambda: not emu.faults(), 30, "the first order in flight", interval=0.02)
            lab.emulator.kill()  # the request in flight is lost, the next ones are refused
            wait_until(
                lambda: any(a.kind == "failed" and a.session == session for a in lab.alerts()),
                60,
                "the failed alert once the retry budget is spent",
            )
            record = store.cycle(PORTFOLIO, session)
            assert record is not None and record.step == "planned"
            assert record.error and "POST /v2/orders" in record.error

            lab.emulator.start()  # same port, same --state file
            lab.wait_alerted(session, "the cycle after the emulator restart")
        finally:
            assert service.stop() == 0
        record = store.cycle(PORTFOLIO, session)
        assert record is not None and record.step == "done" and record.attempts >= 2
        orders = emu.orders()
        sent = lab.session_orders(session)
        assert {o["client_order_id"] for o in sent} == lab.planned_ids(session)
        lab.assert_ledger_matches_broker(orders)
        # The restarted emulator kept its account: the first session's orders, and positions
        # that are exactly what every fill adds up to.
        assert before_kill <= {o["client_order_id"] for o in orders}
        held: dict[str, float] = {}
        for o in orders:
            sign = 1 if o["side"] == "buy" else -1
            held[o["symbol"]] = held.get(o["symbol"], 0.0) + sign * float(o["filled_qty"])
        positions = emu.positions()
        assert set(positions) == {s for s, q in held.items() if abs(q) > 1e-9}
        assert all(abs(float(q) - held[s]) < 1e-6 for s, q in positions.items())


def test_broker_unreachable_at_the_clock_check_alerts_failed(tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server:
        client = redis_server.client()

        nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens
        config = portfolio_toml(tmp_path, fast_portfolio())
        env = service_env(tmp_path, redis_server.url, nowhere, RT_CONFIG_FILE=str(config))
        with in_process_service(env) as service:
            outcome = service.runner(PORTFOLIO).run()
            again = service.runner(PORTFOLIO).run()  # the next wake-up of the same outage
        for attempt in (outcome, again):
            assert (attempt.outcome, attempt.session) == ("failed", None), attempt
            assert "GET /v2/clock" in attempt.reason and f"{BUDGET} attempts" in attempt.reason
        failed = [a for a in alerts(client) if a.kind == "failed"]
        # One alert for the outage, not one per wake-up.
        assert len(failed) == 1, [a.summary for a in failed]
        assert "GET /v2/clock" in failed[0].summary and failed[0].severity == "error"

"""Fault matrix, case 1: the service is SIGKILLed while it sends orders or waits for fills.

A real Redis (private ``redis-server``), the emulator as a process over HTTP and
``regime-trader run`` as a process killed at a step boundary (``start_service(kill_at=...)``,
through :mod:`tests.support.faulty_service`):

- ``order_sent``: the process dies right after the first order of a plan reached the broker,
  with the rest of the plan unsent. A restart must send the rest, and nothing twice.
- ``waiting_fills`` with orders that cannot fill yet: the market closes while the first order
  is in flight (a latency fault holds the request while the test moves the emulator's clock
  to the close), so the orders are accepted and queued until the next open, and the process
  dies at the start of the fill wait. The restart, while the market is still closed, finds
  the session over: it closes the killed cycle as ``interrupted`` (orders refreshed from the
  broker, an alert naming the unsent buys) and sends nothing; the next session's open fills
  the queued orders and the next cycle runs.

The portfolio is equal-weight with no band and no cash buffer, so every session has sells
(what rose) and buys (what fell).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_record import CycleRecord, PlannedOrder
from tests.reliability.faultlab import duplicates, fault_lab, session_orders
from tests.support.processes import start_service, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_sigkill_after_the_first_order_then_restart_sends_the_rest_once(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-03-04") as lab:
        env = lab.env()
        sessions = []
        # Session 1 starts from cash (the first order is a buy), session 2 sells first.
        for n in range(2):
            session = lab.api.open_session()
            sessions.append(session)
            doomed = start_service(tmp_path, env, f"kill-{n}", kill_at="order_sent")
            wait_until(lambda p=doomed: p.process.poll() is not None, 60, "the kill at order_sent")
            assert doomed.process.returncode == -signal.SIGKILL
            at_kill = lab.record(session)
            sent = lab.session_orders(session)
            assert len(sent) == 1, "the kill must come right after the first order"
            first = at_kill.plan if at_kill.step == "planned" else at_kill.buys
            assert first is not None, f"no stored plan at step {at_kill.step}"
            assert sent[0]["client_order_id"] == first.orders[0].client_order_id
            assert at_kill.step in ("planned", "buys_planned")
            assert set(at_kill.orders) == {sent[0]["client_order_id"]}, "recorded, then killed"

            survivor = start_service(tmp_path, env, f"after-kill-{n}")
            try:
                lab.wait_alerted(session, f"the cycle of {session} after the kill")
            finally:
                assert survivor.stop() == 0
            done = lab.record(session)
            assert (done.step, done.outcome, done.attempts) == ("done", "rebalanced", 2)
            planned = {o.client_order_id for o in done.planned_orders}
            at_broker = {o["client_order_id"] for o in lab.session_orders(session)}
            assert len(planned) > 1, "the plan must have had orders left to send at the kill"
            assert at_broker == planned, "every planned order sent, and nothing else"
        orders = lab.api.orders()
        assert any(o["side"] == "sell" for o in orders) and any(o["side"] == "buy" for o in orders)
        assert all(o["status"] == "filled" for o in orders)
        lab.assert_ledger_matches_broker(orders)
        done_alerts = [a.session for a in lab.alerts() if a.kind in ("rebalanced", "no_trade")]
        assert done_alerts == sessions


# ---------------------------------------------------------------------------- waiting_fills


@dataclass(frozen=True)
class QueuedFillWait:
    """What the fill-wait kill left behind, observed once for the tests below."""

    killed: str  # the session whose fill wait was interrupted
    next_session: str
    exit_code: int | None
    step_at_kill: str
    planned_at_kill: list[PlannedOrder]  # every stored intent: the plan's, then the buys'
    queued_at_kill: list[dict[str, Any]]  # the broker's orders of ``killed`` at the kill
    ledger_at_kill: set[str]
    wake_ups_while_closed: int  # wake-ups after the sweep, before the next open
    orders_while_closed: list[dict[str, Any]]  # the broker's orders then
    closed_record: CycleRecord  # the killed cycle as the restart left it, market still closed
    alerts_while_closed: list[Alert]
    orders: list[dict[str, Any]]  # the broker's orders at the end
    ledger: set[str]
    killed_record: CycleRecord
    next_record: CycleRecord
    alerts: list[Alert]


@pytest.fixture(scope="module")
def queued_fill_wait(tmp_path_factory: pytest.TempPathFactory) -> QueuedFillWait:
    tmp = tmp_path_factory.mktemp("queued-fill-wait")
    with fault_lab(tmp, "2024-05-06") as lab:
        env = lab.env()
        first = lab.api.open_session()  # buy the portfolio, so that the next session sells
        service = start_service(tmp, env, "first")
        try:
            lab.wait_alerted(first, "the first cycle")
        finally:
            assert service.stop() == 0

        killed = lab.api.open_session()
        # Hold the first order request for 2 s; the market closes meanwhile.
        lab.api.add_fault(path="/v2/orders", method="POST", latency_ms=2000, count=1)
        doomed = start_service(tmp, env, "doomed", kill_at="waiting_fills")
        wait_until(lambda: not lab.api.faults(), 60, "the first order request", interval=0.02)
        lab.api.advance(to="next_close")
        wait_until(lambda: doomed.process.poll() is not None, 60, "the kill at waiting_fills")
        queued = lab.session_orders(killed)
        at_kill = lab.record(killed)
        ledger_at_kill = lab.ledger_ids()

        restarted = start_service(tmp, env, "restarted")
        try:
            # The sweep of interrupted cycles runs at every wake-up, before the due check; it
            # needs the portfolio's lock, which the killed process held until its TTL runs out,
            # so it closes the killed cycle at the first wake-up after that.
            wait_until(
                lambda: lab.record(killed).finished,
                60,
                f"the restart to close the interrupted cycle of {killed}",
            )
            # Then two more wake-ups that found no cycle due, the second begun after the first
            # ended: evidence that the restarted service kept running while closed.
            mark = len(restarted.wake_ups())
            wake_ups = restarted.wait_for_wake_ups(2, after=mark, outcomes={"not_due"})
            orders_while_closed = lab.api.orders()
            closed_record = lab.record(killed)
            alerts_while_closed = lab.alerts()
            assert lab.api.clock().is_open is False, "the market opened under the test"

            following = lab.api.open_session()  # its open fills the queued orders
            lab.wait_alerted(following, "the next session's cycle")
            # Anything late about either session would come from a later wake-up: wait for
            # two that found the next session's cycle already done.
            mark = len(restarted.wake_ups())
            restarted.wait_for_wake_ups(2, after=mark, outcomes={"already_done"}, session=following)
        finally:
            assert restarted.stop() == 0
        return QueuedFillWait(
            killed=killed,
            next_session=following,
            exit_code=doomed.process.returncode,
            step_at_kill=at_kill.step,
            planned_at_kill=[
                *(at_kill.plan.orders if at_kill.plan else ()),
                *(at_kill.buys.orders if at_kill.buys else ()),
            ],
            queued_at_kill=queued,
            ledger_at_kill=ledger_at_kill,
            wake_ups_while_closed=len(wake_ups),
            orders_while_closed=orders_while_closed,
            closed_record=closed_record,
            alerts_while_closed=alerts_while_closed,
            orders=lab.api.orders(),
            ledger=lab.ledger_ids(),
            killed_record=lab.record(killed),
            next_record=lab.record(following),
            alerts=lab.alerts(),
        )


def test_sigkill_in_the_fill_wait_with_queued_orders_sends_nothing_twice(
    queued_fill_wait: QueuedFillWait,
) -> None:
    w = queued_fill_wait
    assert w.exit_code == -signal.SIGKILL
    assert w.step_at_kill == "sells_submitted"
    # The fill wait was real: every sell was queued (market closed), none filled yet.
    assert w.queued_at_kill, "the session had no sell to wait for"
    assert {o["side"] for o in w.queued_at_kill} == {"sell"}
    assert {o["status"] for o in w.queued_at_kill} == {"accepted"}
    assert w.ledger_at_kill >= {o["client_order_id"] for o in w.queued_at_kill}
    # Restarted while closed (>= 2 wake-ups after the sweep): not one order more at the broker.
    assert w.wake_ups_while_closed >= 2
    assert len(w.orders_while_closed) == len(w.ledger_at_kill)
    assert {o["client_order_id"] for o in w.orders_while_closed} == w.ledger_at_kill
    # The next open filled the queued sells; the old session's plan was never resumed there.
    mine = {o["client_order_id"] for o in w.queued_at_kill}
    assert {o["status"] for o in w.orders if o["client_order_id"] in mine} == {"filled"}
    assert session_orders(w.orders, w.killed) == [
        o for o in w.orders if o["client_order_id"] in mine
    ]
    assert duplicates(w.orders) == []
    assert w.ledger == {o["client_order_id"] for o in w.orders}
    assert (w.next_record.step, w.next_record.attempts) == ("done", 1)
    assert w.next_session in [a.session for a in w.alerts]


def test_sigkill_in_the_fill_wait_then_session_over_ends_the_interrupted_cycle(
    queued_fill_wait: QueuedFillWait,
) -> None:
    """The restart finds the killed session over (market closed): ``_close_interrupted``
    ends that cycle at once, before any next session, and never trades it again."""
    w = queued_fill_wait
    closed = w.closed_record
    assert (closed.step, closed.outcome) == ("done", "interrupted"), (
        f"the cycle of {w.killed} is at step {closed.step!r} ({closed.outcome!r}) after a "
        f"restart with its session over: its sells are queued, its buys never sent"
    )
    # Its orders were refreshed from the broker: one row per queued order, as the broker has it.
    by_id = {o["client_order_id"]: o for o in w.orders_while_closed}
    queued = {o["client_order_id"] for o in w.queued_at_kill}
    assert set(closed.orders) == queued
    for coid, row in closed.orders.items():
        assert (row.status, row.broker_id) == (by_id[coid]["status"], by_id[coid]["id"])
    # One alert, while still closed, naming what was left unsent: the plan's buys.
    unsent = [i.client_order_id for i in w.planned_at_kill if i.client_order_id not in queued]
    assert unsent, "the plan had no buy left to send at the kill"
    assert {i.side for i in w.planned_at_kill if i.client_order_id in unsent} == {"buy"}
    about_killed = [a for a in w.alerts_while_closed if a.session == w.killed]
    assert [(a.kind, a.severity) for a in about_killed] == [("failed", "error")]
    assert about_killed[0].details["unsent"] == unsent
    assert "interrupted at step sells_submitted" in about_killed[0].summary
    # Nothing about the killed session changed afterwards: same record, same single alert.
    assert (w.killed_record.outcome, set(w.killed_record.orders)) == ("interrupted", queued)
    assert [a.kind for a in w.alerts if a.session == w.killed] == ["failed"]

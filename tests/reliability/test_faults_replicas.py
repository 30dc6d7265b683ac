"""Fault matrix, case 5: several replicas on one Redis and one broker, and several portfolios in
one process on one broker account.

- Two, then three ``regime-trader run`` replicas with overlapping wake-ups (different wake
  intervals, all polling the same emulator clock): each session's cycle runs exactly once —
  one attempt in the cycle record, one ``cycle done`` line across all replicas' logs, one
  done-alert, no duplicate order, the ledger equal to the broker's orders.
- Two portfolios with disjoint symbols in one process, trading the same emulator account:
  each runs one cycle per session and trades only its own symbols.
- The simplest form of a shared account: a position the portfolio does not trade (bought by
  hand). The cycle must neither sell it nor crash on it.
"""

from __future__ import annotations

import collections
import http.server
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.reliability.faultlab import (
    PORTFOLIO,
    fast_portfolio,
    fault_lab,
    in_process_service,
    portfolio_toml,
)
from tests.support.processes import (
    ServiceProcess,
    clean_env,
    json_lines,
    run_cli,
    start_services,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.reliability]

SESSIONS_PER_PHASE = 6  # two replicas, then three: 12 sessions


def _done_lines(replicas: list[ServiceProcess]) -> collections.Counter[tuple[str, str]]:
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for replica in replicas:
        for line in json_lines(replica.log_path):
            if line.get("event") == "cycle done":
                counts[(str(line.get("portfolio")), str(line.get("session")))] += 1
    return counts


def test_two_then_three_replicas_run_each_session_exactly_once(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-06-03") as lab:
        store = lab.store

        def env(wake: str) -> dict[str, str]:
            return lab.env(RT_WAKE_INTERVAL_SECS=wake)

        replicas = start_services(tmp_path, {"replica-0": env("0.3"), "replica-1": env("0.2")})
        sessions: list[str] = []
        try:
            for phase in range(2):
                if phase == 1:
                    replicas += start_services(tmp_path, {"replica-2": env("0.25")})
                sessions += lab.trade(SESSIONS_PER_PHASE)
        finally:
            codes = [r.stop() for r in replicas]
        assert codes == [0, 0, 0]
        records = {s: store.cycle(PORTFOLIO, s) for s in sessions}
        assert {s: (r.step, r.attempts) for s, r in records.items() if r} == dict.fromkeys(
            sessions, ("done", 1)
        )
        assert _done_lines(replicas) == {(PORTFOLIO, s): 1 for s in sessions}
        done = [a.session for a in lab.alerts() if a.kind in ("rebalanced", "no_trade")]
        # Every session alerted; "exactly once" races (see the slow-notifier test below).
        assert sorted(set(done)) == sessions
        orders = lab.api.orders()
        assert len(orders) >= 2 * len(sessions), "the replicas must have traded every session"
        lab.assert_ledger_matches_broker(orders)


def test_a_replica_frozen_mid_cycle_past_its_lock_is_taken_over_without_duplicates(
    tmp_path: Path,
) -> None:
    """SIGSTOP the replica that holds the lock while its first order is at the broker (a GC
    pause, a frozen VM), for longer than the lock TTL: the other replica takes the cycle over
    and finishes it; the frozen one, woken up, must not send or record anything more."""
    with fault_lab(tmp_path, "2024-06-03") as lab:
        emu, store = lab.api, lab.store
        replicas = start_services(tmp_path, {f"replica-{i}": lab.env() for i in range(2)})
        by_pid = {r.process.pid: r for r in replicas}
        frozen: ServiceProcess | None = None
        try:
            (first,) = lab.trade()
            session = emu.open_session()
            emu.add_fault(path="/v2/orders", method="POST", latency_ms=1500, count=1)
            wait_until(lambda: not emu.faults(), 60, "the first order in flight", interval=0.02)
            owner = store.lock_owner(PORTFOLIO)
            assert owner is not None
            frozen = by_pid[int(owner.split("/")[1])]
            frozen.process.send_signal(signal.SIGSTOP)
            lab.wait_alerted(session, "the other replica to take the cycle over")
            mark = len(frozen.wake_ups())
            frozen.process.send_signal(signal.SIGCONT)
            # The frozen replica wakes up in the middle of its attempt: that attempt ends
            # (stopped, its lock gone) and a later wake-up finds the cycle done by the other.
            frozen.wait_for_wake_ups(1, after=mark, outcomes={"lost_lock"}, session=session)
            frozen.wait_for_wake_ups(1, after=mark, outcomes={"already_done"}, session=session)
        finally:
            if frozen is not None:
                frozen.process.send_signal(signal.SIGCONT)
            codes = [r.stop() for r in replicas]
        assert codes == [0, 0]
        record = store.cycle(PORTFOLIO, session)
        assert record is not None and (record.step, record.attempts) == ("done", 2)
        assert _done_lines(replicas) == {(PORTFOLIO, first): 1, (PORTFOLIO, session): 1}
        sent = {o["client_order_id"] for o in lab.session_orders(session)}
        assert sent == lab.planned_ids(session)
        lab.assert_ledger_matches_broker()
        stopped = [
            line
            for line in json_lines(frozen.log_path)
            if line.get("event") == "cycle attempt stopped" and line.get("session") == session
        ]
        assert stopped, "the frozen replica did not notice it lost the lock"


class _SlowWebhook(http.server.BaseHTTPRequestHandler):
    """A notifier endpoint that takes a second to answer and counts what it receives."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(1.0)
        self.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_replicas_with_a_slow_notifier_alert_each_session_once(tmp_path: Path) -> None:
    webhook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowWebhook)
    _SlowWebhook.received = []
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    try:
        with fault_lab(tmp_path, "2024-06-03") as lab:
            url = f"json://127.0.0.1:{webhook.server_address[1]}/"
            replicas = start_services(
                tmp_path, {f"replica-{i}": lab.env(RT_ALERT_URLS=url) for i in range(2)}
            )
            try:
                sessions = lab.trade(2)
                # A late notification would be sent by a wake-up in flight now; each replica's
                # second wake-up from here began after that one ended (publishing waits for
                # the webhook's answer), and finds the last cycle done.
                for replica in replicas:
                    replica.wait_for_wake_ups(
                        2,
                        after=len(replica.wake_ups()),
                        outcomes={"already_done"},
                        session=sessions[-1],
                    )
            finally:
                codes = [r.stop() for r in replicas]
            assert codes == [0, 0]
            assert _done_lines(replicas) == {(PORTFOLIO, s): 1 for s in sessions}
            done = [a for a in lab.alerts() if a.kind in ("rebalanced", "no_trade")]
            assert [a.session for a in done] == sessions, [
                (a.session, a.details.get("reason")) for a in done
            ]
            assert len(_SlowWebhook.received) == len(sessions)
    finally:
        webhook.shutdown()


def test_two_portfolios_on_one_account_are_refused_at_start_up(tmp_path: Path) -> None:
    # One account's cash and positions are not split between portfolios (each would plan on
    # the whole account and sell the other's holdings), so sharing keys is a configuration
    # error, named at start-up rather than discovered in a cycle.
    config = portfolio_toml(
        tmp_path,
        fast_portfolio(name="alpha", symbols=["SPY", "TLT"]),
        fast_portfolio(name="beta", symbols=["GLD", "IEF"]),
    )
    env = clean_env() | {"RT_CONFIG_FILE": str(config), "RT_DATA_DIR": str(tmp_path / "data")}
    done = run_cli("rebalance", env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "share one account" in done.stderr and "'alpha', 'beta'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_position_outside_the_portfolio_is_neither_sold_nor_a_crash(tmp_path: Path) -> None:
    with fault_lab(tmp_path, "2024-06-03") as lab:
        emu = lab.api
        session = emu.open_session()
        emu.submit("GLD", "buy", "10", "by-hand-1")
        with in_process_service(lab.env(fast_portfolio(symbols=["SPY", "TLT"]))) as service:
            outcome = service.runner(PORTFOLIO).run()  # must end with an outcome, not raise
        # The planner has no price for a symbol outside the portfolio and refuses to plan on
        # an account it cannot value: refused input, with an alert naming the symbol.
        assert (outcome.outcome, outcome.session) == ("refused", session), outcome
        assert "GLD" in outcome.reason, outcome.reason
        mine = [o for o in emu.orders() if o["client_order_id"].startswith("rt-")]
        assert mine == [], "traded on an account it could not value"
        refusals = [a for a in lab.alerts() if a.session == session]
        assert [(a.kind, a.severity) for a in refusals] == [("skipped", "warning")], refusals
        assert "GLD" in refusals[0].summary
        assert emu.positions().get("GLD") == 10

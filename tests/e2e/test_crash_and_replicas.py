"""Crash safety and scale-out, with real processes, a real Redis and the emulator over HTTP.

- SIGKILL at every cycle step in turn (``start_service(kill_at=...)``: the process is started
  through :mod:`tests.support.faulty_service`, which kills it the moment the step is stored),
  then a restart: each session ends with exactly one cycle and the emulator's order list has no
  duplicate.
- Two replicas on one Redis for 20 sessions: each session's cycle runs once.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import cast

import pytest
import redis

from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_steps import STEP_ORDER
from tests.support.processes import cycle, service_stack, start_service, trade_sessions, wait_until

pytestmark = pytest.mark.slow


def _assert_no_duplicates(orders: list[dict[str, object]]) -> None:
    ids = [o["client_order_id"] for o in orders]
    duplicated = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert duplicated == [], f"orders sent twice: {duplicated}"


def test_sigkill_at_every_step_then_restart_finishes_each_session_once(tmp_path: Path) -> None:
    with service_stack(tmp_path, "2024-03-04") as stack:
        emulator, client = stack.emulator, stack.client
        # No band: every session sells what drifted up and buys what drifted down, so every
        # kill point has orders on both sides in flight.
        config = tmp_path / "portfolios.toml"
        config.write_text('[[portfolio]]\nname = "default"\nno_trade_band = 0.0\n', "utf-8")
        env = stack.env(RT_CONFIG_FILE=str(config))
        sessions = []
        for step in STEP_ORDER:
            session = emulator.api.open_session()
            sessions.append(session)
            doomed = start_service(tmp_path, env, name=f"kill-{step}", kill_at=step)
            try:
                wait_until(lambda p=doomed: p.process.poll() is not None, 90, f"the kill at {step}")
            finally:  # a process that was never killed must not outlive a failed test
                if doomed.process.poll() is None:
                    doomed.stop()
            assert doomed.process.returncode == -9, f"expected SIGKILL at {step}"
            record = cycle(client, session)
            assert record.get("step") == step, (step, record.get("step"))
            survivor = start_service(tmp_path, env, name=f"after-{step}")
            try:
                wait_until(
                    lambda s=session: cycle(client, s).get("alerted") == "1",
                    90,
                    f"the cycle of {session} after a kill at {step}",
                )
            finally:
                assert survivor.stop() == 0
            # A kill after 'done' leaves nothing to redo but the alert.
            assert int(cycle(client, session)["attempts"]) == (1 if step == "done" else 2)
            wait_until(
                lambda s=session: cycle(client, s).get("alerted") == "1",
                30,
                f"the alert of {session}",
            )
        orders = emulator.api.orders()
        _assert_no_duplicates(orders)
        assert any(o["side"] == "sell" for o in orders), "the run never exercised sells"
        # Every order the service recorded is at the broker, and nothing else is.
        recorded = {coid for s in sessions for coid in _recorded(client, s)}
        assert recorded == {o["client_order_id"] for o in orders}
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange("rt:alerts"))
        alerts = [Alert.from_json(fields["json"]) for _, fields in entries]
        per_session = collections.Counter(
            a.session for a in alerts if a.kind in ("rebalanced", "no_trade")
        )
        assert per_session == dict.fromkeys(sessions, 1)


def _recorded(client: redis.Redis, session: str) -> set[str]:
    import json

    orders = json.loads(cycle(client, session).get("orders") or "{}")
    return {coid for coid, row in orders.items() if row.get("status") != "rejected"}


_REPLICA_OUTCOMES = {"rebalanced", "no_trade", "locked", "already_done", "not_due"}


def test_two_replicas_run_each_session_exactly_once(tmp_path: Path) -> None:
    with service_stack(tmp_path, "2024-06-03") as stack:
        emulator, client = stack.emulator, stack.client
        replicas = [start_service(tmp_path, stack.env(), name=f"replica-{i}") for i in range(2)]
        try:
            sessions = trade_sessions(emulator.api, client, 20)
            for replica in replicas:
                replica.wait_for_wake_ups(1, session=sessions[-1])
        finally:
            codes = [r.stop() for r in replicas]
        assert codes == [0, 0]
        assert all(int(cycle(client, s)["attempts"]) == 1 for s in sessions)
        _assert_no_duplicates(emulator.api.orders())
        done_lines: collections.Counter[str] = collections.Counter()
        for replica in replicas:
            for line in replica.log_lines():
                if line.get("event") == "cycle done":
                    done_lines[line["session"]] += 1
        assert sorted(done_lines) == sorted(sessions)
        assert set(done_lines.values()) == {1}
        # Both replicas were alive and asking for the same cycles (each woke up for the last
        # session before it was stopped), and across both, the wake-ups that traded or
        # decided not to are exactly one per session; the others found it locked or done (or,
        # between the two clock moves of open_session, the session open but not yet due).
        outcomes = {s: collections.Counter[str]() for s in sessions}
        for replica in replicas:
            for wake in replica.wake_ups():
                if wake.session in outcomes:
                    outcomes[wake.session][wake.outcome] += 1
        for session, seen in outcomes.items():
            decided = seen["rebalanced"] + seen["no_trade"]
            assert decided == 1, (session, seen)
            assert set(seen) <= _REPLICA_OUTCOMES, seen

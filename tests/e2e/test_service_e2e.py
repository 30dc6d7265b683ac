"""End to end: the emulator and ``regime-trader run`` as separate processes on a real Redis.

The test moves the emulator's simulated clock session by session (Thanksgiving 2024 and the
early close after it, Christmas Eve's early close and Christmas inside the range) and checks
what a user would: orders and positions at the broker, alerts, /readyz, /metrics, /status.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import cast

import httpx
import pytest

from regime_trader.service.alerts import Alert
from tests.support.emulator import KEY_ID, SECRET_KEY
from tests.support.processes import cycle, service_stack, start_service, trade_sessions

pytestmark = pytest.mark.slow
SESSIONS = 27  # 2024-11-18 .. 2024-12-26


def test_service_trades_every_session_and_reports_it(tmp_path: Path) -> None:
    with service_stack(tmp_path, "2024-11-18") as stack:
        emulator, client = stack.emulator, stack.client
        # The regime profile, so the regime's alerts, metrics and status are exercised too.
        env = stack.env(RT_PROFILE="baseline")
        service = start_service(tmp_path, env)
        try:
            sessions = trade_sessions(emulator.api, client, SESSIONS)
            ready = httpx.get(service.url + "/readyz", timeout=10)
            metrics = httpx.get(service.url + "/metrics", timeout=10).text
            status = httpx.get(service.url + "/status", timeout=10)
        finally:
            assert service.stop() == 0, "SIGTERM must end the service cleanly"

        # The calendar: Thanksgiving and Christmas skipped, the early closes traded.
        assert "2024-11-28" not in sessions and "2024-12-25" not in sessions
        assert "2024-11-29" in sessions and "2024-12-24" in sessions
        outcomes = collections.Counter(cycle(client, s)["outcome"] for s in sessions)
        assert outcomes["rebalanced"] >= 1 and sum(outcomes.values()) == SESSIONS

        orders = emulator.api.orders()
        ids = [o["client_order_id"] for o in orders]
        assert len(ids) == len(set(ids)), "an order was sent twice"
        assert all(o["status"] == "filled" for o in orders)
        # The first cycle buys the whole portfolio from cash.
        assert {
            o["symbol"] for o in orders if sessions[0].replace("-", "") in o["client_order_id"]
        } == {"SPY", "TLT", "GLD"}

        # Positions at the broker are what the service's fills add up to.
        held: dict[str, float] = collections.defaultdict(float)
        for o in orders:
            held[o["symbol"]] += float(o["filled_qty"]) * (1 if o["side"] == "buy" else -1)
        broker = emulator.api.positions()
        assert set(broker) == {s for s, q in held.items() if abs(q) > 1e-9}
        for symbol, qty in broker.items():
            assert float(qty) == pytest.approx(held[symbol], abs=1e-6)

        # One alert per session, in order, each naming its session.
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange("rt:alerts"))
        alerts = [Alert.from_json(fields["json"]) for _, fields in entries]
        done = [a for a in alerts if a.kind in ("rebalanced", "no_trade")]
        assert [a.session for a in done] == sessions
        assert all(a.details.get("regime") in ("calm", "stress") for a in done)

        assert ready.status_code == 200, ready.text
        assert "regime_trader_cycles_total" in metrics
        assert 'regime_trader_regime_probability{portfolio="default"' in metrics
        assert "regime_trader_cycle_step_seconds_bucket" in metrics
        body = status.json()
        assert body["portfolios"]["default"]["last_session"] == sessions[-1]
        assert body["portfolios"]["default"]["regime"] in ("calm", "stress")
        for text in (status.text, metrics, service.log_path.read_text()):
            assert SECRET_KEY not in text and KEY_ID not in text

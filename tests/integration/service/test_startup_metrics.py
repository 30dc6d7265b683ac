"""Metrics have values from start-up, and the halted gauge follows halt/resume at once.

Before: ``/metrics`` of a fresh service held no portfolio series until its first cycle, a
restart forgot the last success, and ``regime_trader_halted`` stayed 0 after ``halt`` until the
next cycle looked at the halt key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from regime_trader.service.alert_channels import read_alerts
from regime_trader.service.alerts import Alert
from regime_trader.service.app import Service
from regime_trader.service.config import load_settings
from regime_trader.service.emulator.admin_client import EmulatorAdmin
from regime_trader.service.startup_metrics import HaltedProbe
from regime_trader.service.store import Store, StoreUnavailableError
from tests.integration.service.offline_service import offline_env

__all__ = ["offline_env"]


def _samples(service: Service) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = service.metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _value(service: Service, name: str, **labels: str) -> float | None:
    return _samples(service).get((name, frozenset(labels.items())))


@pytest.fixture
def service(offline_env: Path) -> Iterator[Service]:
    running = Service.create(load_settings())
    try:
        yield running
    finally:
        running.close()


def test_a_fresh_service_exposes_every_portfolio_series_before_any_cycle(service: Service) -> None:
    p = {"portfolio": "default"}
    for outcome in ("rebalanced", "no_trade", "failed", "halted", "locked"):
        assert _value(service, "regime_trader_cycles_total", outcome=outcome, **p) == 0.0
    assert _value(service, "regime_trader_orders_submitted_total", side="buy", **p) == 0.0
    assert _value(service, "regime_trader_cycle_step_seconds_count", step="planned", **p) == 0.0
    assert _value(service, "regime_trader_halted", **p) == 0.0
    # No cycle ever succeeded: no invented time for an alert to trust.
    assert _value(service, "regime_trader_last_success_timestamp_seconds", **p) is None


def test_the_halted_gauge_follows_halt_and_resume_without_a_cycle(service: Service) -> None:
    service.store.halt("default", "earnings", by="test")  # as `regime-trader halt` writes it
    assert _value(service, "regime_trader_halted", portfolio="default") == 1.0
    service.store.resume("default")
    assert _value(service, "regime_trader_halted", portfolio="default") == 0.0


def test_a_restarted_service_reports_what_the_last_cycle_reported(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RT_PROFILE", "baseline")  # a regime strategy: probabilities to restore
    first = Service.create(load_settings())
    try:
        assert first.emulator is not None
        with EmulatorAdmin(first.emulator.url) as admin:
            admin.open_session(31)
        [outcome] = first.run_once(force=True)
        assert outcome.outcome == "rebalanced", outcome
        before = _samples(first)
    finally:
        first.close()
    second = Service.create(load_settings())
    try:
        after = _samples(second)
    finally:
        second.close()
    for name in (
        "regime_trader_last_success_timestamp_seconds",
        "regime_trader_equity_usd",
        "regime_trader_exposure_ratio",
    ):
        key = (name, frozenset({("portfolio", "default")}))
        assert key in before and after[key] == pytest.approx(before[key], abs=1.0), name
    shadow = {k: v for k, v in before.items() if k[0] == "regime_trader_shadow_equity_usd"}
    assert len(shadow) == 2  # static ERC and buy-and-hold, from the first done cycle
    assert {k: after.get(k) for k in shadow} == shadow  # read back from the stored ledger
    probs = {k: v for k, v in after.items() if k[0] == "regime_trader_regime_probability"}
    assert probs and math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)
    age = after[("regime_trader_data_age_seconds", frozenset({("portfolio", "default")}))]
    assert age > 0


class _DownStore(Store):
    def __init__(self, store: Store, down: list[bool]) -> None:
        super().__init__(store.redis, store.ns)
        self._down = down

    def halted(self, portfolio: str) -> dict[str, object] | None:
        if self._down[0]:
            raise StoreUnavailableError("redis unavailable during halt read: ConnectionError")
        return super().halted(portfolio)


def test_the_halted_gauge_keeps_the_last_value_read_while_redis_is_down(service: Service) -> None:
    down = [True]
    probe = HaltedProbe(_DownStore(service.store, down), "default")
    assert math.isnan(probe())  # never read: unknown, not a reassuring 0
    down[0] = False
    service.store.halt("default", "maintenance", by="test")
    assert probe() == 1.0
    down[0] = True
    assert probe() == 1.0


def test_status_names_the_profile_and_version_each_portfolio_trades(service: Service) -> None:
    (portfolio,) = service.settings.portfolios
    shown = service.status()["portfolios"]["default"]
    assert shown["profile"] == portfolio.profile_label is not None
    assert shown["trades"] == f"profile {portfolio.profile_label} ({portfolio.strategy})"


def test_status_and_alerts_name_the_risk_tolerance(
    offline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RT_RISK_TOLERANCE", "moderate")
    service = Service.create(load_settings())
    try:
        shown = service.status()["portfolios"]["default"]
        assert shown["risk_tolerance"] == "moderate"
        assert shown["trades"].endswith(", risk tolerance moderate")
        service.alerts.publish(Alert("default", "2024-01-02", "halted", "warning", "test"))
        (alert,) = read_alerts(service.store.redis, namespace=service.store.ns, count=1)
        assert f"Trades: {shown['trades']}" in alert.to_text()
    finally:
        service.close()

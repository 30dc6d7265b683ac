"""Prometheus metrics: private registries, names, labels and the exposition text."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from regime_trader.service.metrics import STEP_BUCKETS_SECS, ServiceMetrics

NAMES = [
    "regime_trader_cycle_step_seconds",
    "regime_trader_cycles",
    "regime_trader_last_success_timestamp_seconds",
    "regime_trader_orders_submitted",
    "regime_trader_orders_failed",
    "regime_trader_regime_probability",
    "regime_trader_equity_usd",
    "regime_trader_exposure_ratio",
    "regime_trader_data_age_seconds",
    "regime_trader_halted",
]


def _samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _observe_a_cycle(m: ServiceMetrics) -> None:
    m.cycle_step_seconds.labels(portfolio="core", step="fetch_bars").observe(0.003)
    m.cycles_total.labels(portfolio="core", outcome="rebalanced").inc()
    m.last_success_timestamp_seconds.labels(portfolio="core").set(1_710_500_000)
    m.orders_submitted_total.labels(portfolio="core", side="buy").inc(2)
    m.orders_failed_total.labels(portfolio="core", reason="insufficient_buying_power").inc()
    m.regime_probability.labels(portfolio="core", state="calm").set(0.25)
    m.regime_probability.labels(portfolio="core", state="stress").set(0.75)
    m.equity_usd.labels(portfolio="core").set(101_234.5)
    m.exposure_ratio.labels(portfolio="core").set(0.93)
    m.data_age_seconds.labels(portfolio="core").set(3600)
    m.halted.labels(portfolio="core").set(0)


def test_every_metric_appears_with_its_values_after_a_cycle() -> None:
    metrics = ServiceMetrics()
    _observe_a_cycle(metrics)
    body, content_type = metrics.render()

    assert content_type.startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    assert set(NAMES) <= families
    samples = _samples(metrics)
    core = (("portfolio", "core"),)
    assert samples[("regime_trader_cycles_total", (("outcome", "rebalanced"), *core))] == 1
    assert samples[("regime_trader_orders_submitted_total", (*core, ("side", "buy")))] == 2
    assert samples[("regime_trader_regime_probability", (*core, ("state", "stress")))] == 0.75
    assert samples[("regime_trader_equity_usd", core)] == 101_234.5
    step = (*core, ("step", "fetch_bars"))
    assert samples[("regime_trader_cycle_step_seconds_count", step)] == 1
    # 3 ms lands in the 5 ms bucket and not in the 2.5 ms one.
    assert samples[("regime_trader_cycle_step_seconds_bucket", (("le", "0.005"), *step))] == 1
    assert samples[("regime_trader_cycle_step_seconds_bucket", (("le", "0.0025"), *step))] == 0


def test_buckets_span_one_millisecond_to_two_minutes() -> None:
    assert STEP_BUCKETS_SECS[0] == 0.001 and STEP_BUCKETS_SECS[-1] == 120.0
    assert list(STEP_BUCKETS_SECS) == sorted(set(STEP_BUCKETS_SECS))


def test_instances_have_separate_registries() -> None:
    a, b = ServiceMetrics(), ServiceMetrics()
    a.halted.labels(portfolio="core").set(1)
    assert _samples(a)[("regime_trader_halted", (("portfolio", "core"),))] == 1
    assert ("regime_trader_halted", (("portfolio", "core"),)) not in _samples(b)


def test_a_given_registry_is_used_and_cannot_hold_two_instances() -> None:
    registry = CollectorRegistry()
    ServiceMetrics(registry)
    assert registry.get_sample_value("regime_trader_halted", {"portfolio": "x"}) is None
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        ServiceMetrics(registry)


def test_time_step_observes_even_when_the_step_raises() -> None:
    metrics = ServiceMetrics()
    with pytest.raises(RuntimeError), metrics.time_step("core", "submit"):
        time.sleep(0.002)
        raise RuntimeError("broker down")
    key = ("regime_trader_cycle_step_seconds_sum", (("portfolio", "core"), ("step", "submit")))
    assert 0.002 <= _samples(metrics)[key] < 1.0


def test_data_age_keeps_growing_between_cycles() -> None:
    metrics = ServiceMetrics()
    metrics.set_last_bar_close("core", time.time() - 100.0)
    key = ("regime_trader_data_age_seconds", (("portfolio", "core"),))
    first = _samples(metrics)[key]
    time.sleep(0.02)
    second = _samples(metrics)[key]
    assert 100.0 <= first < second < 101.0

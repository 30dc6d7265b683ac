"""The real ``/metrics`` of a service that has traded, through ``promtool check metrics``.

A portfolio trades three sessions against the emulator (real Redis, real HTTP); its ops server is
scraped as Prometheus would scrape it, and the text must pass promtool's lint and carry every
series the alert rules and the Grafana dashboard in deploy/ query.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest
import redis

from regime_trader.service.cycle import CycleRunner
from regime_trader.service.http import build_http_app, start_http_server
from tests.integration.service.cycle_fixtures import (
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import EmulatorDriver
from tests.unit.test_monitoring import _panel_queries, _rules

P = "core"
PROMTOOL = shutil.which("promtool")


@pytest.fixture
def scraped(emu: EmulatorDriver, text_redis: redis.Redis) -> str:
    ctx = cycle_context(
        emu.url, text_redis, unique_namespace(), small_portfolio(P, fill_timeout_secs=10)
    )
    runner = CycleRunner(ctx, owner="test", lock_ttl_secs=10)
    for _ in range(3):
        emu.open_session()
        assert runner.run().outcome in ("rebalanced", "no_trade")
    app = build_http_app(status=dict, readiness=lambda: (True, {}), metrics=ctx.metrics)
    with start_http_server(app, port=0) as server:
        response = httpx.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_the_scraped_metrics_pass_promtool_check_metrics(scraped: str) -> None:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=scraped,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", "promtool found lint problems"


def test_the_scrape_has_every_series_the_rules_and_the_panels_query(scraped: str) -> None:
    declared = set(re.findall(r"^# TYPE (\S+) ", scraped, re.M))
    exposed = declared | {f"{name}_total" for name in declared}
    exposed |= {f"{name}{part}" for name in declared for part in ("_bucket", "_count", "_sum")}
    used = {m for rule in _rules() for m in re.findall(r"regime_trader_[a-z0-9_]+", rule["expr"])}
    used |= {m for expr in _panel_queries() for m in re.findall(r"regime_trader_[a-z0-9_]+", expr)}
    assert used - exposed == set()
    # The values the operator's panels start from are there after three cycles.
    for series in (
        f'regime_trader_shadow_equity_usd{{benchmark="erc_static",portfolio="{P}"}}',
        f'regime_trader_shadow_equity_usd{{benchmark="buy_hold",portfolio="{P}"}}',
        f'regime_trader_cycle_due_timestamp_seconds{{portfolio="{P}"}}',
        f'regime_trader_equity_usd{{portfolio="{P}"}}',
        'regime_trader_build_info{version="',
    ):
        assert series in scraped, series

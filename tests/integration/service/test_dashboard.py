"""The dashboard over real HTTP: a real Redis, the emulator, the real alpaca-py clients.

A regime strategy trades a few sessions; the page served by the ops HTTP server must then show
each panel with the numbers the store and the broker hold, computed again here; the controls
must refuse without the right token and change nothing, and a page must never carry a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

import httpx
import pytest
import redis
from markupsafe import escape
from pydantic import SecretStr

from regime_trader.service.alerts import Alert
from regime_trader.service.app import Service
from regime_trader.service.config import Settings
from regime_trader.service.cycle import CycleRunner
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.dashboard import service_http_app
from regime_trader.service.dashboard.data import portfolio_view
from regime_trader.service.http import start_http_server
from regime_trader.service.logs import redactor
from regime_trader.service.server_thread import ServerThread
from regime_trader.service.shadow import ShadowStore
from tests.integration.service.cycle_fixtures import (
    alerts,
    cycle_context,
    small_portfolio,
    unique_namespace,
)
from tests.support.emulator import KEY_ID, SECRET_KEY, EmulatorDriver

P = "core"
SESSIONS = 6
TOKEN = "ctl-TOKEN-7c1e5a9b3d2f"  # nosec B105 - the test's control token


@dataclass
class Site:
    url: str
    ctx: CycleContext
    runner: CycleRunner
    sessions: list[str]


def _serve(ctx: CycleContext, emu: EmulatorDriver, token: str | None) -> ServerThread:
    settings = Settings.model_construct(alpaca_base_url=emu.url)
    service = Service(settings, ctx.store, ctx.alerts, ctx.metrics, {P: ctx}, "test/1/owner")
    app = service_http_app(
        service,
        control_token=None if token is None else SecretStr(token),
        redact=redactor([KEY_ID, SECRET_KEY, TOKEN]),
    )
    return start_http_server(app, port=0)


def _site(emu: EmulatorDriver, client: redis.Redis, token: str | None) -> Iterator[Site]:
    ctx = cycle_context(
        emu.url, client, unique_namespace(), small_portfolio(P, "regime_erc", fill_timeout_secs=10)
    )
    runner = CycleRunner(ctx, owner="test", lock_ttl_secs=10)
    sessions = []
    for _ in range(SESSIONS):
        sessions.append(emu.open_session())
        assert runner.run().outcome in ("rebalanced", "no_trade")
    server = _serve(ctx, emu, token)
    try:
        yield Site(server.url, ctx, runner, sessions)
    finally:
        server.stop()


@pytest.fixture
def site(emu: EmulatorDriver, text_redis: redis.Redis) -> Iterator[Site]:
    yield from _site(emu, text_redis, TOKEN)


@pytest.fixture
def read_only(emu: EmulatorDriver, text_redis: redis.Redis) -> Iterator[Site]:
    yield from _site(emu, text_redis, None)


def _panel(page: str, name: str) -> str:
    match = re.search(
        rf'<article class="panel[^"]*" data-panel="{name}">(.*?)</article>', page, re.S
    )
    assert match, f"no {name} panel"
    return match.group(1)


def _points(panel: str, series: str) -> int:
    found = re.findall(rf'data-series="{series}" data-points="(\d+)"', panel)
    return sum(int(n) for n in found)


def _percent(text: str) -> float:
    return float(text.replace("\N{MINUS SIGN}", "-").rstrip("%")) / 100


def test_the_page_shows_every_panel_with_the_stored_numbers(
    site: Site, emu: EmulatorDriver
) -> None:
    response = httpx.get(site.url + "/", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text

    equity = _panel(page, "equity")
    for series in ("paper", "erc_static", "buy_hold"):
        assert _points(equity, series) == SESSIONS, series
    shadows = ShadowStore(site.ctx.store)
    ledger = shadows.ledger(P)
    assert ledger is not None
    last_paper = shadows.paper_equity(P)[-1].equity / ledger.start_equity - 1
    shown = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", equity))
    assert _percent(shown["Paper account"]) == pytest.approx(float(last_paper), abs=5e-5)
    assert _percent(shown["Static ERC (shadow)"]) == pytest.approx(
        ledger.books["erc_static"].growth - 1, abs=5e-5
    )

    regimes = _panel(page, "regimes")
    assert _points(regimes, "regime-calm") == _points(regimes, "regime-stress") == SESSIONS
    assert _points(regimes, "price") >= SESSIONS

    weights = _panel(page, "weights")
    assert weights.count('data-series="target"') == weights.count('data-series="held"') == 3

    # Held weights, from the broker's positions and cash at the last cycle's prices, again here.
    risk = _panel(page, "risk")
    record = site.ctx.store.cycle(P, site.sessions[-1])
    assert record is not None and record.prices is not None
    held = {s: Decimal(q) * record.prices[s] for s, q in emu.positions().items()}
    equity_now = Decimal(emu.account()["cash"]) + sum(held.values(), Decimal(0))
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", risk)
    assert [r[0] for r in rows] == ["SPY", "TLT", "GLD"]
    for symbol, weight, _share in rows:
        assert _percent(weight) == pytest.approx(float(held[symbol] / equity_now), abs=5e-4)
    assert sum(_percent(share) for *_, share in rows) == pytest.approx(1.0, abs=2e-3)
    assert risk.count('data-series="held"') == 3

    # Where the risk is: each basis's shares add up to 100%, as portfolio_view computes them.
    attribution = _panel(page, "attribution")
    view = portfolio_view(site.ctx).attribution
    assert view is not None and view.rows[0].label == "forecast today"
    assert any(r.label.startswith("realised") for r in view.rows)
    shown_rows = re.findall(r'<tr data-row="attribution"><td>([^<]+)</td>(.*?)</tr>', attribution)
    assert [label for label, _ in shown_rows] == [r.label for r in view.rows]
    for (_, cells), row in zip(shown_rows, view.rows, strict=True):
        values = [_percent(c) for c in re.findall(r"<td>([^<]*%)</td>", cells)][:3]
        assert sum(values) == pytest.approx(1.0, abs=2e-3)
        assert values == pytest.approx([row.shares[s] for s in view.symbols], abs=6e-4)
        assert sum(row.shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert view.sentence and str(escape(view.sentence)) in attribution

    orders = _panel(page, "orders")
    sent = {o["client_order_id"] for o in emu.orders()}
    assert 0 < orders.count('data-row="order"') == min(len(sent), 20)

    shown_alerts = _panel(page, "alerts")
    assert shown_alerts.count('data-row="alert"') == SESSIONS
    for session in site.sessions:
        assert f"{P} {session}:" in shown_alerts

    assert 'data-field="next-run"' in page
    next_run = re.search(r'data-field="next-run">([^<]+)<', page)
    assert next_run and next_run.group(1).endswith("America/New_York")
    assert re.search(r'data-field="profile">regime_erc, built-in defaults', page)  # no profile
    assert re.search(r'data-field="version">[0-9][^<]*<', page)
    assert "Not halted." in _panel(page, "halts")


def test_the_risk_panel_groups_by_the_portfolios_own_asset_classes(site: Site) -> None:
    built_in = portfolio_view(site.ctx).attribution
    assert built_in is not None
    assert [c.name for c in built_in.rows[0].classes] == ["equities", "bonds", "real assets"]
    # The same cycles read for a portfolio that calls GLD an equity: SPY keeps its built-in class.
    own = site.ctx.portfolio.model_copy(update={"asset_classes": {"GLD": "equity"}})
    view = portfolio_view(replace(site.ctx, portfolio=own)).attribution
    assert view is not None and view.symbols == built_in.symbols
    for row, before in zip(view.rows, built_in.rows, strict=True):
        assert [(c.name, c.symbols) for c in row.classes] == [
            ("equities", ("SPY", "GLD")),
            ("bonds", ("TLT",)),
        ]
        equities = row.classes[0].share
        assert equities == pytest.approx(before.shares["SPY"] + before.shares["GLD"], abs=1e-12)
    top = max(view.rows[0].classes, key=lambda c: c.share)
    assert view.sentence is not None and view.sentence.startswith(
        f"{top.share:.0%} of today's risk is in {top.describe()}"
    )


def test_the_page_loads_nothing_from_elsewhere(site: Site) -> None:
    page = httpx.get(site.url + "/", timeout=30).text
    assert re.findall(r'(?:src|href)="(?!/|#)[^"]*"', page) == []
    css = httpx.get(site.url + "/static/dashboard.css", timeout=10)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "http" not in css.text


def test_controls_refuse_without_the_right_token_and_change_nothing(
    site: Site, emu: EmulatorDriver, read_only: Site
) -> None:
    store = site.ctx.store
    form = {"portfolio": P, "reason": "earnings"}
    attempts = [
        httpx.post(site.url + "/control/halt", data=form, timeout=10),
        httpx.post(site.url + "/control/halt", data={**form, "token": "wrong"}, timeout=10),
        httpx.post(site.url + "/control/halt", data={**form, "token": TOKEN[:-1]}, timeout=10),
        httpx.post(
            site.url + "/control/halt",
            data=form,
            headers={"Authorization": "Bearer nope"},
            timeout=10,
        ),
        # A read-only dashboard refuses even the other dashboard's token.
        httpx.post(read_only.url + "/control/halt", data={**form, "token": TOKEN}, timeout=10),
    ]
    assert [r.status_code for r in attempts] == [403] * 5
    assert store.halted(P) is None and read_only.ctx.store.halted(P) is None
    assert all(TOKEN not in r.text for r in attempts)
    kinds = [a.kind for a in alerts(store.redis, store.ns, P)]
    assert "halted" not in kinds

    # The right token halts: the key every step obeys, an alert, the page says so.
    halted = httpx.post(
        site.url + "/control/halt",
        data={**form, "token": TOKEN},
        follow_redirects=False,
        timeout=10,
    )
    assert halted.status_code == 303 and halted.headers["location"] == f"/#portfolio-{P}"
    halt = store.halted(P)
    assert halt is not None and halt["reason"] == "earnings"
    (alert,) = [a for a in alerts(store.redis, store.ns, P) if a.kind == "halted"]
    assert alert.severity == "warning" and "earnings" in alert.summary
    page = httpx.get(site.url + "/", timeout=30).text
    assert 'data-field="state">halted' in page and "earnings" in _panel(page, "halts")
    emu.open_session()
    assert site.runner.run().outcome == "halted"  # the next cycle obeys it

    bad = [
        httpx.post(site.url + "/control/halt", data={"portfolio": "nope", "token": TOKEN}),
        httpx.post(site.url + "/control/halt", data={"portfolio": P, "token": TOKEN}),
    ]
    assert [r.status_code for r in bad] == [404, 400]
    resumed = httpx.post(
        site.url + "/control/resume",
        data={"portfolio": P},
        headers={"Authorization": f"Bearer {TOKEN}"},
        follow_redirects=False,
        timeout=10,
    )
    assert resumed.status_code == 303 and store.halted(P) is None
    assert "resumed" in [a.kind for a in alerts(store.redis, store.ns, P)]


def test_a_page_never_shows_a_secret(site: Site) -> None:
    """A secret that reached a stored alert (a broker error quoting the keys) is redacted."""
    store = site.ctx.store
    leak = f"upstream refused APCA-API-KEY-ID={KEY_ID} APCA-API-SECRET-KEY={SECRET_KEY} {TOKEN}"
    site.ctx.alerts.publish(Alert(P, site.sessions[-1], "failed", "error", leak))
    script = Alert(P, site.sessions[-1], "skipped", "warning", "<script>alert(1)</script>")
    site.ctx.alerts.publish(script)
    httpx.post(site.url + "/control/halt", data={"portfolio": P, "reason": "x", "token": TOKEN})
    page = httpx.get(site.url + "/", timeout=30).text
    for secret in (KEY_ID, SECRET_KEY, TOKEN):
        assert secret not in page
    assert "APCA-API-KEY-ID=***" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert store.halted(P) is not None


@pytest.mark.parametrize(("strategy", "noted"), [("erc_static", True), ("regime_erc", False)])
def test_only_a_strategy_without_regimes_is_said_to_have_none(
    emu: EmulatorDriver, text_redis: redis.Redis, strategy: str, noted: bool
) -> None:
    # Before the first cycle neither has regime probabilities: the regime strategy's panel
    # must wait for them, not claim the strategy has none.
    ctx = cycle_context(emu.url, text_redis, unique_namespace(), small_portfolio(P, strategy))
    view = portfolio_view(ctx)
    assert ("has no regimes" in view.notes.get("regimes", "")) is noted

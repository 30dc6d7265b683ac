"""The dashboard in a real headless Chromium, after the service has run 22 simulated sessions.

The emulator runs as its own process on a private Redis (as every e2e test here); the service is
the real one built from the environment (:meth:`Service.create`, the scheduler, the ops HTTP
server with the dashboard's routes, exactly what ``regime-trader run`` starts) and trades each
session the test opens on the emulator's clock. Then Debian's Chromium, driven by Playwright
(``executable_path``: Playwright never downloads a browser here), opens ``/`` and checks that
every panel shows data, that nothing is loaded from anywhere else, and that a halt needs the
control token: the form with a wrong token gets 403 and changes nothing, a POST without one too,
the right one halts and the page says so. The screenshot goes to the test's directory and, when
``RT_TEST_ARTIFACTS`` names a directory, there too.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from regime_trader.service.app import Service
from regime_trader.service.config import load_settings
from regime_trader.service.dashboard import service_http_app
from regime_trader.service.http import start_http_server
from regime_trader.service.logs import redactor
from regime_trader.service.scheduler import CycleScheduler
from regime_trader.service.server_thread import ServerThread
from tests.support.emulator import KEY_ID, SECRET_KEY
from tests.support.processes import service_stack, trade_sessions

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
SESSIONS = 22
TOKEN = "ctl-BROWSER-TOKEN-51d7e9a2"  # nosec B105 - the test's control token
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PANELS = ("equity", "regimes", "weights", "risk", "orders", "alerts", "halts")
# Read now: the service's fixture clears the RT_ variables of the environment.
ARTIFACTS = os.environ.get("RT_TEST_ARTIFACTS")


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Service, redis.Redis]]:
    """The service after SESSIONS sessions, serving the dashboard; (url, service, client)."""
    with service_stack(tmp_path, "2024-03-04", state=False) as stack:
        env = stack.env(
            RT_CONTROL_TOKEN=TOKEN,
            RT_PROFILE="baseline",  # a regime strategy: the regimes panel has probabilities
            RT_FILL_POLL_INTERVAL_SECS="1",
            RT_HTTP_PORT="0",
            RT_LOG_LEVEL="WARNING",
        )
        for name in [n for n in os.environ if n.startswith(("RT_", "ALPACA_", "REDIS"))]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        service = Service.create(settings)
        stop = threading.Event()
        scheduler = CycleScheduler(
            service,
            stop=stop,
            wake_interval_secs=settings.wake_interval_secs,
            misfire_grace_secs=60,
        ).start()
        http: ServerThread | None = None
        try:
            # What run serves (ops_cli builds the same app from the same settings).
            app = service_http_app(
                service,
                control_token=settings.control_token,
                redact=redactor(settings.secret_values()),
            )
            http = start_http_server(app, settings.http_host, 0)
            began = time.monotonic()
            trade_sessions(stack.emulator.api, stack.client, SESSIONS)
            print(f"\n{SESSIONS} sessions traded in {time.monotonic() - began:.1f} s")
            yield http.url, service, stack.client
        finally:
            stop.set()
            scheduler.shutdown()
            if http is not None:
                http.stop()
            service.close()


def _shots(tmp_path: Path) -> list[Path]:
    targets = [tmp_path / "dashboard.png"]
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        targets.append(Path(ARTIFACTS) / "dashboard.png")
    return targets


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_the_dashboard_shows_every_panel_with_data_in_chromium(
    served: tuple[str, Service, redis.Redis], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    url, service, _client = served
    began = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            response = page.goto(url + "/")
            assert response is not None and response.status == 200

            for panel in PANELS:
                box = page.locator(f'[data-panel="{panel}"]').bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 80, panel

            def points(panel: str, series: str) -> int:
                found = page.locator(f'[data-panel="{panel}"] [data-series="{series}"]')
                return sum(
                    int(found.nth(i).get_attribute("data-points") or 0)
                    for i in range(found.count())
                )

            for series in ("paper", "erc_static", "buy_hold"):
                assert points("equity", series) >= 20, series
            assert (
                points("regimes", "regime-calm") >= 20 and points("regimes", "regime-stress") >= 20
            )
            assert points("regimes", "price") >= 20
            assert points("weights", "target") == points("weights", "held") == 3
            assert points("risk", "held") == 3
            shares = page.locator('[data-table="risk"] tr td:nth-child(3)').all_inner_texts()
            assert len(shares) == 3
            assert sum(
                float(s.rstrip("%").replace("\N{MINUS SIGN}", "-")) for s in shares
            ) == pytest.approx(100, abs=0.2)
            assert page.locator('[data-panel="orders"] [data-row="order"]').count() >= 3
            assert page.locator('[data-panel="alerts"] [data-row="alert"]').count() >= 10
            assert page.locator('[data-field="next-run"]').inner_text().endswith("America/New_York")
            assert (
                page.locator('[data-field="profile"]')
                .inner_text()
                .startswith(("profile ", "strategy "))
            )
            assert page.locator('[data-field="version"]').inner_text()[0].isdigit()
            # Everything the page loaded came from the service itself.
            assert requested and all(r.startswith(url) for r in requested), requested
            for shot in _shots(tmp_path):
                page.screenshot(path=str(shot), full_page=True)

            # A POST without the token: 403, nothing changes.
            name = next(iter(service.contexts))
            bare = page.request.post(url + "/control/halt", form={"portfolio": name, "reason": "x"})
            assert bare.status == 403 and service.store.halted(name) is None
            # The form with a wrong token: 403 shown, nothing changes.
            halts = page.locator('[data-panel="halts"]')
            halts.locator('input[name="reason"]').fill("earnings call")
            halts.locator('input[name="token"]').fill("not-the-token")
            with page.expect_navigation():
                halts.locator('button[type="submit"]').click()
            assert "403" in page.content() and service.store.halted(name) is None
            # The right token: halted, and the page says so.
            page.goto(url + "/")
            halts.locator('input[name="reason"]').fill("earnings call")
            halts.locator('input[name="token"]').fill(TOKEN)
            with page.expect_navigation():
                halts.locator('button[type="submit"]').click()
            halt = service.store.halted(name)
            assert halt is not None and halt["reason"] == "earnings call"
            assert page.locator('[data-field="state"]').inner_text() == "halted"
            assert "earnings call" in halts.inner_text()
            for secret in (TOKEN, KEY_ID, SECRET_KEY):
                assert secret not in page.content()
        finally:
            browser.close()
    print(f"browser checks in {time.monotonic() - began:.1f} s; screenshot {_shots(tmp_path)}")
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

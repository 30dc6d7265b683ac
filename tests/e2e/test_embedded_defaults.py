"""A fresh machine: no Redis server, no Alpaca account, no configuration at all.

``regime-trader rebalance`` runs a whole cycle against the embedded Redis and the bundled
emulator and prints what it did, once; ``regime-trader run`` answers /healthz, trades its first
simulated session at once, and shares its emulator with ``status`` run beside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.processes import clean_env, free_port, run_cli, start_service, wait_until

pytestmark = pytest.mark.slow


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**clean_env(), "RT_DATA_DIR": str(tmp_path / "data"), **extra}


def test_rebalance_runs_a_whole_cycle_offline_and_says_what_it_did(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    done = run_cli("rebalance", env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    # One line per event: the cycle's summary once (it used to come three times), then the
    # weights, one line per order and the account. The default (static ERC) has no regime.
    assert lines[0] == "default 2024-01-02: rebalanced with 3 orders", lines
    assert not any(line.strip().startswith("regime") for line in lines), lines
    assert sum("rebalanced" in line for line in lines) == 1, lines
    orders = [line.strip() for line in lines if line.strip().startswith("BUY ")]
    assert [o.split()[1] for o in orders] == ["GLD", "SPY", "TLT"]
    for order in orders:  # quantities rounded for reading: at most 4 decimals
        assert not re.search(r"\d\.\d{5,}", order), order
        assert re.match(r"BUY [A-Z]+ \d+(\.\d{1,4})?, filled .* @ \$[\d,]+\.\d\d = \$", order), (
            order
        )
    assert re.search(
        r"equity \$[\d,]+\.\d\d, cash \$[\d,]+\.\d\d \(\d+\.\d% of equity\)", lines[-1]
    )
    assert "Redis shutdown failed" not in done.stderr
    assert (tmp_path / "data" / "redis.db").exists()
    assert (tmp_path / "data" / "emulator.json").exists()
    # --json: the same, with the broker's full precision.
    again = run_cli("rebalance", "--json", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    assert report["session"] == "2024-01-03" and report["exit_code"] == 0
    assert report["alert"]["session"] == "2024-01-03"  # this session's alert, not the last one
    assert report["account"]["cash"] and report["account"]["equity"]
    # Again: the same simulated session is already done, the next one trades; nothing twice.
    dry = run_cli("rebalance", "--dry-run", env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "dry run" in dry.stdout


def _metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_run_offline_trades_at_once_and_shares_its_emulator(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, RT_HTTP_PORT=str(free_port()), RT_LOG_FORMAT="json")
    service = start_service(tmp_path, env, "run", timeout=120)
    try:
        assert service.process.poll() is None, service.log_path.read_text()[-3000:]
        # Every portfolio series exists from start-up, before any cycle reported anything.
        assert _metric(service.url, "regime_trader_halted") == 0.0
        assert _metric(service.url, "regime_trader_cycles_total") is not None
        status = httpx.get(f"{service.url}/status", timeout=5).json()
        assert status["broker"] == "emulator (embedded)"
        page = httpx.get(f"{service.url}/", timeout=30)  # run serves the dashboard
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # The first simulated session is traded in the first seconds, not after the 300 s
        # wake-up interval.
        wait_until(
            lambda: (
                httpx.get(f"{service.url}/status", timeout=5)
                .json()["portfolios"]["default"]
                .get("last_session")
                == "2024-01-02"
            ),
            120,
            "the first simulated session's cycle",
        )
        # `status` beside `run`: the same emulator (served by run), not a second one.
        beside = run_cli("status", env=env, timeout=120)
        assert beside.returncode == 0, beside.stderr[-2000:]
        doc = json.loads(beside.stdout)
        assert doc["emulator"]["served_by_pid"] == service.process.pid
        assert doc["emulator"]["started_here"] is False
        next_run = doc["portfolios"]["default"]["next_run"]
        assert next_run["timezone"] == "America/New_York" and next_run["clock"] == "simulated"
        assert next_run["simulated_session_every_secs"] == 30.0
        # halt from another process: the gauge says so at the next scrape.
        assert run_cli("halt", "--reason", "test", env=env, timeout=120).returncode == 0
        assert _metric(service.url, "regime_trader_halted") == 1.0
        assert run_cli("resume", env=env, timeout=120).returncode == 0
        assert _metric(service.url, "regime_trader_halted") == 0.0
    finally:
        assert service.stop() == 0
    assert "Redis shutdown failed" not in service.log_path.read_text()

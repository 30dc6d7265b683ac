"""A fresh machine: no Redis server, no Alpaca account, no configuration at all.

``regime-trader rebalance`` runs a whole cycle against the embedded Redis and the bundled
emulator and prints what it did; ``regime-trader run`` answers /healthz and wakes up.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.processes import clean_env, free_port, run_cli, start_service

pytestmark = pytest.mark.slow


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**clean_env(), "RT_DATA_DIR": str(tmp_path / "data"), **extra}


def test_rebalance_runs_a_whole_cycle_offline_and_says_what_it_did(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    done = run_cli("rebalance", env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rebalanced" in done.stdout
    assert "BUY SPY" in done.stdout and "BUY TLT" in done.stdout
    assert (tmp_path / "data" / "redis.db").exists()
    assert (tmp_path / "data" / "emulator.json").exists()
    # Again: the same simulated session is already done, the next one trades; nothing twice.
    again = run_cli("rebalance", "--dry-run", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "dry run" in again.stdout


def test_run_answers_healthz_and_wakes_up_against_the_embedded_emulator(tmp_path: Path) -> None:
    env = _clean_env(tmp_path, RT_HTTP_PORT=str(free_port()), RT_LOG_FORMAT="json")
    service = start_service(tmp_path, env, "run", timeout=120)
    try:
        assert service.process.poll() is None, service.log_path.read_text()[-3000:]
        status = httpx.get(f"{service.url}/status", timeout=5).json()
        assert status["broker"] == "emulator (embedded)"
        # /healthz says only that the HTTP server is up: the scheduler must also have asked
        # the embedded broker whether a cycle is due, and got an answer (not a crash).
        first = service.wait_for_wake_ups(1, timeout=120)[0]
        assert first.portfolio == "default" and first.outcome != "crashed", first
    finally:
        assert service.stop() == 0

"""A fresh machine: no Redis server, no Alpaca account, no configuration at all.

``regime-trader rebalance`` runs a whole cycle against the embedded Redis and the bundled
emulator and prints what it did; ``regime-trader run`` answers /healthz.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RT_", "ALPACA_", "REDIS"))}
    return {**env, "RT_DATA_DIR": str(tmp_path / "data"), **extra}


def test_rebalance_runs_a_whole_cycle_offline_and_says_what_it_did(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "service", "rebalance"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rebalanced" in done.stdout
    assert "BUY SPY" in done.stdout and "BUY TLT" in done.stdout
    assert (tmp_path / "data" / "redis.db").exists()
    assert (tmp_path / "data" / "emulator.json").exists()
    # Again: the same simulated session is already done, the next one trades; nothing twice.
    again = subprocess.run(
        [sys.executable, "-m", "service", "rebalance", "--dry-run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "dry run" in again.stdout


def test_run_answers_healthz_with_embedded_defaults(tmp_path: Path) -> None:
    port = free_port()
    env = _clean_env(tmp_path, RT_HTTP_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None

        wait_until(healthy, 120, "/healthz")
        assert process.poll() is None
        status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=5).json()
        assert status["broker"] == "emulator (embedded)"
    finally:
        process.terminate()
        assert process.wait(60) == 0

"""The state file survives a restart; the CLI serves the SDK and refuses bad settings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from service.emulator import EmulatorConfigError, start_in_thread
from tests.integration.emulator.conftest import BASE_CONFIG, KEY_ID, NY, SECRET_KEY, Harness

ROOT = Path(__file__).resolve().parents[3]


def test_restarted_emulator_keeps_account_orders_and_clock(
    tmp_path: Path, start_emulator: Callable[..., Harness]
) -> None:
    state = tmp_path / "emulator-state.json"
    first = start_emulator(state_file=state)
    first.advance(to="next_open")
    first.trading.submit_order(
        MarketOrderRequest(
            symbol="SPY",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            client_order_id="day1-SPY",
        )
    )
    first.advance(to="next_close")
    first.trading.submit_order(
        MarketOrderRequest(
            symbol="TLT",
            notional=500,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            client_order_id="day1-TLT",
        )
    )
    before = (
        first.trading.get_account(),
        first.trading.get_all_positions(),
        first.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)),
        first.trading.get_clock(),
    )
    dumped = first.admin("GET", "/admin/state")
    first.running.stop()
    assert json.loads(state.read_text()) == dumped
    assert json.loads(state.read_text())["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["emulator-state.json"]  # no temp files

    second = start_emulator(state_file=state)
    after = (
        second.trading.get_account(),
        second.trading.get_all_positions(),
        second.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)),
        second.trading.get_clock(),
    )
    assert after == before
    with pytest.raises(APIError) as err:  # the client order ids are remembered too
        second.trading.submit_order(
            MarketOrderRequest(
                symbol="SPY",
                qty=1,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                client_order_id="day1-SPY",
            )
        )
    assert (err.value.status_code, err.value.code) == (422, 40010001)
    second.advance(to="next_open")  # the queued TLT order fills after the restart
    assert [p.symbol for p in second.trading.get_all_positions()] == ["SPY", "TLT"]


def test_state_file_of_another_market_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    start_in_thread(replace(BASE_CONFIG, state_file=state)).stop()
    with pytest.raises(EmulatorConfigError, match="saved for market"):
        start_in_thread(replace(BASE_CONFIG, state_file=state, seed=9))


def test_cli_serves_the_sdk_and_refuses_bad_settings(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = subprocess.run(
        [sys.executable, "-m", "service.emulator", "--prices", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 2 and "missing.csv" in bad.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.emulator",
            "--port",
            str(port),
            "--seed",
            "3",
            "--key-id",
            KEY_ID,
            "--secret-key",
            SECRET_KEY,
            "--state",
            str(tmp_path / "s.json"),
        ],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/admin/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        trading = TradingClient(KEY_ID, SECRET_KEY, paper=True, url_override=url)
        assert trading.get_clock().timestamp == datetime(2024, 1, 2, 8, 0, tzinfo=NY)
        assert (tmp_path / "s.json").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)

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

from regime_trader.service.emulator import EmulatorConfigError, start_in_thread
from tests.integration.emulator.conftest import BASE_CONFIG
from tests.support.emulator import KEY_ID, NY, SECRET_KEY, EmulatorDriver

ROOT = Path(__file__).resolve().parents[3]


def _buy(symbol: str, client_order_id: str | None, **size: float) -> MarketOrderRequest:
    """A market day buy of ``qty`` shares or ``notional`` dollars."""
    return MarketOrderRequest(
        symbol=symbol,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=client_order_id,
        **size,
    )


def test_restarted_emulator_keeps_account_orders_and_clock(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    state = tmp_path / "emulator-state.json"
    first = start_emulator(state_file=state)
    first.advance(to="next_open")
    first.trading.submit_order(_buy("SPY", "day1-SPY", qty=5))
    first.advance(to="next_close")
    first.trading.submit_order(_buy("TLT", "day1-TLT", notional=500))
    before = (
        first.trading.get_account(),
        first.trading.get_all_positions(),
        first.trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)),
        first.trading.get_clock(),
    )
    dumped = first.state()
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
        second.trading.submit_order(_buy("SPY", "day1-SPY", qty=1))
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
        [
            sys.executable,
            "-m",
            "regime_trader.service.emulator",
            "--prices",
            str(tmp_path / "missing.csv"),
        ],
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
            "regime_trader.service.emulator",
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


def test_flags_duplicate_code_and_scripts_survive_a_restart(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    state = tmp_path / "state.json"
    first = start_emulator(state_file=state)
    first.set_account_flags(**{"trade_suspended_by_user": True})
    first.set_duplicate_code(42210000)
    first.add_order_script(**{"statuses": ["held"], "final": "filled"})
    saved = json.loads(state.read_text())
    assert saved["exchange"]["flags"]["trade_suspended_by_user"] is True
    assert saved["scenario"]["duplicate_code"] == 42210000
    first.running.stop()
    second = start_emulator(state_file=state)
    assert second.trading.get_account().trade_suspended_by_user is True
    assert second.scenario()["duplicate_code"] == 42210000
    assert [s["final"] for s in second.order_scripts()] == ["filled"]


def test_a_state_file_written_before_the_new_fields_still_loads(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    state = tmp_path / "state.json"
    first = start_emulator(state_file=state)
    first.trading.submit_order(_buy("SPY", None, qty=1))
    first.running.stop()
    old = json.loads(state.read_text())
    del old["scenario"]
    for key in ("flags", "corporate_log", "last_long_value"):
        del old["exchange"][key]
    for order in old["exchange"]["orders"]:
        for key in [k for k in order if k.startswith("script_")]:
            del order[key]
    state.write_text(json.dumps(old))
    second = start_emulator(state_file=state)
    (order,) = second.trading.get_orders()
    assert order.symbol == "SPY" and order.status.value == "accepted"
    assert second.trading.get_account().trade_suspended_by_user is False


def test_the_cli_takes_the_new_scenario_options() -> None:
    import argparse

    from regime_trader.service.emulator.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(
        parser.parse_args(
            [
                "--multiplier",
                "1",
                "--duplicate-code",
                "42210000",
                "--iex-missing",
                "SPY:2023-12-27,GLD:2023-12-28",
            ]
        )
    )
    assert (config.multiplier, config.duplicate_code) == (1, 42210000)
    assert [(s, d.isoformat()) for s, d in config.iex_missing] == [
        ("SPY", "2023-12-27"),
        ("GLD", "2023-12-28"),
    ]
    assert config.symbols is None and config.rate_limit_per_min == 200
    with pytest.raises(SystemExit):
        parser.parse_args(["--iex-missing", "SPY-2023-12-27"])

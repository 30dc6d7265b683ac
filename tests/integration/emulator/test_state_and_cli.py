"""The state file survives a restart; the CLI serves; a CSV of closes is replayed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from service.emulator import EmulatorConfigError, start_in_thread
from service.emulator.clock import TradingCalendar
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
    first.running.stop()
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


def xnys_closes_csv(path: Path, first: str, last: str) -> list[str]:
    calendar = TradingCalendar.xnys(date.fromisoformat(first), date.fromisoformat(last))
    rows = [f"{d},{100 + i:.2f},{50 + i / 2:.2f}" for i, d in enumerate(calendar.dates)]
    path.write_text("date,AAA,BBB\n" + "\n".join(rows) + "\n")
    return rows


def test_csv_closes_are_replayed_as_bar_closes(
    tmp_path: Path, start_emulator: Callable[..., Harness]
) -> None:
    csv = tmp_path / "closes.csv"
    rows = xnys_closes_csv(csv, "2024-01-02", "2024-03-28")
    emu = start_emulator(prices_csv=csv, history_sessions=20, non_fractionable=frozenset())
    assert emu.trading.get_clock().timestamp == datetime(2024, 1, 31, 8, 0, tzinfo=NY)
    bars = emu.data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["AAA", "BBB"], timeframe=TimeFrame.Day, start=datetime(2023, 1, 1)
        )
    )
    assert [b.close for b in bars.data["AAA"]] == [float(r.split(",")[1]) for r in rows[:20]]
    assert [b.close for b in bars.data["BBB"]] == [float(r.split(",")[2]) for r in rows[:20]]
    emu.advance(to="next_close")
    order = emu.trading.submit_order(
        MarketOrderRequest(symbol="AAA", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    emu.advance(to="next_open")
    filled = emu.trading.get_order_by_id(order.id)
    assert Decimal(filled.filled_avg_price) > Decimal("100")


def test_csv_with_a_holiday_row_is_refused_naming_the_date(tmp_path: Path) -> None:
    csv = tmp_path / "closes.csv"
    xnys_closes_csv(csv, "2024-01-02", "2024-01-31")
    text = csv.read_text().replace("2024-01-16,", "2024-01-15,")  # MLK day instead of the 16th
    csv.write_text(text)
    config = replace(BASE_CONFIG, prices_csv=csv, non_fractionable=frozenset())
    with pytest.raises(EmulatorConfigError, match="2024-01-15"):
        start_in_thread(config)


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

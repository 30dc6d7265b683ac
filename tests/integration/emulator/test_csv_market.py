"""A CSV of closes replayed through the emulator, including a gap beyond a queued order's hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator import EmulatorConfigError, start_in_thread
from regime_trader.service.emulator.clock import TradingCalendar
from tests.integration.emulator.conftest import BASE_CONFIG
from tests.support.emulator import NY, EmulatorDriver


def xnys_closes_csv(path: Path, first: str, last: str) -> list[str]:
    calendar = TradingCalendar.xnys(date.fromisoformat(first), date.fromisoformat(last))
    rows = [f"{d},{100 + i:.2f},{50 + i / 2:.2f}" for i, d in enumerate(calendar.dates)]
    path.write_text("date,AAA,BBB\n" + "\n".join(rows) + "\n")
    return rows


def test_csv_closes_are_replayed_as_bar_closes(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
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


def test_queued_buy_is_rejected_when_the_open_gaps_beyond_the_cash(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> None:
    calendar = TradingCalendar.xnys(date(2024, 1, 2), date(2024, 1, 12))
    closes = [100.0] * 5 + [200.0] * (len(calendar.dates) - 5)  # doubles on the 6th session
    csv = tmp_path / "gap.csv"
    csv.write_text(
        "date,GAP\n" + "".join(f"{d},{c}\n" for d, c in zip(calendar.dates, closes, strict=True))
    )
    emu = start_emulator(
        prices_csv=csv, history_sessions=5, non_fractionable=frozenset(), cash=Decimal(10_000)
    )
    # Queued at 08:00 before the 6th session: holds 90 x $100 x 1.03 = $9270 of the $10 000.
    order = emu.trading.submit_order(
        MarketOrderRequest(symbol="GAP", qty=90, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert Decimal(emu.trading.get_account().buying_power) == Decimal("730")
    emu.advance(to="next_open")  # the 6th session opens between $120 and $180
    rejected = emu.trading.get_order_by_id(order.id)
    assert rejected.status == OrderStatus.REJECTED and rejected.failed_at is not None
    account = emu.trading.get_account()
    assert account.cash == account.buying_power == "10000.00"
    assert emu.trading.get_all_positions() == []

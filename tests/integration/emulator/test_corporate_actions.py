"""Splits and dividends: bars adjusted as of the simulated date, holdings at the ex-date open.

Through the real ``StockHistoricalDataClient`` (and the raw REST call the service's
``AlpacaBars`` makes), against an emulator replaying a CSV of RAW closes with a 2:1 split and a
cash dividend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from alpaca.data.enums import Adjustment
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator import EmulatorConfigError, start_in_thread
from regime_trader.service.emulator.cli import config_from_args
from regime_trader.service.emulator.clock import TradingCalendar
from regime_trader.service.emulator.corporate_actions import adjust_closes, load_corporate_actions
from tests.integration.emulator.conftest import BASE_CONFIG
from tests.support.emulator import HEADERS, NY, EmulatorDriver

SPLIT_DAY = date(2024, 2, 5)
DIVIDEND_DAY = date(2024, 2, 12)
DIVIDEND = 0.5


def raw_market(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """RAW closes of AAA (halving at the split) and BBB, and the actions file."""
    calendar = TradingCalendar.xnys(date(2024, 1, 2), date(2024, 2, 29))
    rows = []
    for i, d in enumerate(calendar.dates):
        aaa = 100.0 + i * 0.5
        if d >= SPLIT_DAY:
            aaa /= 2
        rows.append((d, round(aaa, 2), round(50.0 + i * 0.25, 2)))
    prices = tmp_path / "raw.csv"
    prices.write_text("date,AAA,BBB\n" + "".join(f"{d},{a},{b}\n" for d, a, b in rows))
    actions = tmp_path / "actions.csv"
    actions.write_text(
        "symbol,ex_date,kind,value\n"
        f"AAA,{SPLIT_DAY},split,2\n"
        f"AAA,{DIVIDEND_DAY},cash_dividend,{DIVIDEND}\n"
    )
    frame = pd.DataFrame(
        {"AAA": [r[1] for r in rows], "BBB": [r[2] for r in rows]},
        index=pd.DatetimeIndex([pd.Timestamp(r[0]) for r in rows]),
    )
    return prices, actions, frame


def closes(emu: EmulatorDriver, adjustment: Adjustment) -> dict[date, float]:
    bars = emu.data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAA",
            timeframe=TimeFrame.Day,
            start=datetime(2024, 1, 1),
            adjustment=adjustment,
        )
    )
    return {b.timestamp.astimezone(NY).date(): b.close for b in bars.data["AAA"]}


@pytest.fixture
def emu(
    tmp_path: Path, start_emulator: Callable[..., EmulatorDriver]
) -> tuple[EmulatorDriver, pd.DataFrame]:
    prices, actions, frame = raw_market(tmp_path)
    harness = start_emulator(
        prices_csv=prices,
        corporate_actions=load_corporate_actions(actions),
        history_sessions=15,
        non_fractionable=frozenset(),
    )
    return harness, frame


def test_adjusted_bars_change_after_the_ex_date_as_on_alpaca(
    emu: tuple[EmulatorDriver, pd.DataFrame],
) -> None:
    harness, raw = emu
    before = closes(harness, Adjustment.ALL)
    # No action is known yet: adjusted history equals the raw one.
    assert before == closes(harness, Adjustment.RAW)
    assert before == {d.date(): c for d, c in raw["AAA"].items() if d.date() in before}
    harness.set_clock(datetime(2024, 2, 20, 8, 0, tzinfo=NY))
    after = closes(harness, Adjustment.ALL)
    expected = adjust_closes(
        raw, harness.running.config.corporate_actions, date(2024, 2, 20), "all"
    )
    assert set(after) == set(before) | {d for d in after if d > max(before)}
    for day, close in after.items():
        assert close == pytest.approx(float(expected.loc[pd.Timestamp(day), "AAA"]), abs=1e-4)
    # The same day fetched before and after the ex-dates differs by the split and dividend.
    first = min(before)
    factor = 1 - DIVIDEND / float(raw.loc[pd.Timestamp(date(2024, 2, 9)), "AAA"])
    assert after[first] == pytest.approx(before[first] / 2 * factor, abs=1e-4)
    # Raw stays raw, and split-only divides by the ratio only.
    assert closes(harness, Adjustment.RAW)[first] == before[first]
    assert closes(harness, Adjustment.SPLIT)[first] == pytest.approx(before[first] / 2)


def test_the_services_raw_rest_call_gets_adjusted_bars_and_unknown_symbols_are_absent(
    emu: tuple[EmulatorDriver, pd.DataFrame],
) -> None:
    harness, raw = emu
    harness.set_clock(datetime(2024, 2, 20, 8, 0, tzinfo=NY))
    params = {
        "symbols": "AAA,XXXX",
        "timeframe": "1Day",
        "start": "2024-01-01",
        "adjustment": "all",
        "feed": "iex",
        "limit": "10000",
    }
    answer = harness.http.get("/v2/stocks/bars", params=params, headers=HEADERS)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body["bars"]) == {"AAA"}
    jan2 = body["bars"]["AAA"][0]
    assert jan2["t"] == "2024-01-02T05:00:00Z"
    factor = 1 - DIVIDEND / float(raw.loc[pd.Timestamp(date(2024, 2, 9)), "AAA"])
    assert jan2["c"] == pytest.approx(100.0 / 2 * factor, abs=1e-4)
    assert jan2["l"] <= jan2["c"] <= jan2["h"]


def test_holdings_split_and_dividends_are_credited_at_the_ex_date_open(
    emu: tuple[EmulatorDriver, pd.DataFrame],
) -> None:
    harness, raw = emu
    raw_close_before_split = raw.loc[pd.Timestamp(date(2024, 2, 2)), "AAA"]
    harness.advance(to="next_open")
    harness.trading.submit_order(
        MarketOrderRequest(symbol="AAA", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    bought = harness.trading.get_open_position("AAA")
    cash_before = Decimal(harness.trading.get_account().cash)
    harness.set_clock(datetime(2024, 2, 5, 9, 31, tzinfo=NY))  # split's ex-date, after the open
    split = harness.trading.get_open_position("AAA")
    assert Decimal(split.qty) == 20
    assert split.cost_basis == bought.cost_basis
    assert Decimal(split.avg_entry_price) == pytest.approx(Decimal(bought.avg_entry_price) / 2)
    # Trades fill at RAW prices: around the post-split close, not across the gap.
    price = float(split.current_price)
    assert 45 < price < 60
    # lastday_price is the previous close in the new share basis: no fake -50 % day.
    assert float(split.lastday_price) == pytest.approx(float(raw_close_before_split) / 2, abs=0.01)
    assert Decimal(harness.trading.get_account().cash) == cash_before
    harness.set_clock(datetime(2024, 2, 12, 9, 31, tzinfo=NY))  # dividend's ex-date
    credited = Decimal(harness.trading.get_account().cash) - cash_before
    assert credited == Decimal("10.00")  # $0.50 x 20 shares
    applied = harness.corporate_actions()["applied"]
    assert [(a["kind"], a["qty_before"]) for a in applied] == [
        ("split", "10"),
        ("cash_dividend", "20"),
    ]


def test_actions_for_untraded_symbols_or_non_sessions_are_refused(tmp_path: Path) -> None:
    prices, _, _ = raw_market(tmp_path)
    bad = tmp_path / "bad.csv"
    base = replace(BASE_CONFIG, prices_csv=prices, non_fractionable=frozenset())
    bad.write_text("symbol,ex_date,kind,value\nZZZ,2024-02-05,split,2\n")
    with pytest.raises(EmulatorConfigError, match="'ZZZ' is not traded"):
        start_in_thread(replace(base, corporate_actions=load_corporate_actions(bad)))
    bad.write_text("symbol,ex_date,kind,value\nAAA,2024-02-03,split,2\n")  # a Saturday
    with pytest.raises(EmulatorConfigError, match="2024-02-03 is not a priced session"):
        start_in_thread(replace(base, corporate_actions=load_corporate_actions(bad)))
    bad.write_text("symbol,ex_date,kind,value\nBBB,2024-02-05,cash_dividend,80\n")
    with pytest.raises(EmulatorConfigError, match=r"dividend 80\.0 on 2024-02-05 is not below"):
        start_in_thread(replace(base, corporate_actions=load_corporate_actions(bad)))


def test_cli_reads_the_actions_file_and_names_a_bad_line(tmp_path: Path) -> None:
    import argparse

    from regime_trader.service.emulator.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    prices, actions, _ = raw_market(tmp_path)
    config = config_from_args(
        parser.parse_args(["--prices", str(prices), "--corporate-actions", str(actions)])
    )
    assert [(a.symbol, a.kind.value) for a in config.corporate_actions] == [
        ("AAA", "split"),
        ("AAA", "cash_dividend"),
    ]
    assert config.rate_limit_per_min == 200  # the limiter is on by default
    actions.write_text("symbol,ex_date,kind,value\nAAA,2024-02-05,split,0\n")
    with pytest.raises(EmulatorConfigError, match="line 2, field 'value'"):
        config_from_args(parser.parse_args(["--corporate-actions", str(actions)]))

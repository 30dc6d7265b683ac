"""Pure parsing of Alpaca JSON recorded from the emulator, and of malformed variants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regime_trader.service.alpaca_parsing import (
    NEW_YORK,
    account_to_broker_account,
    asset_to_broker_asset,
    bars_to_frame,
    calendar_to_session_days,
    clock_to_broker_clock,
    order_list_to_broker_orders,
    order_to_broker_order,
    positions_to_quantities,
)
from regime_trader.service.exceptions import BadBrokerResponseError, BadMarketDataError
from tests.support.alpaca_recorded import RECORDED, recorded

# ---------------------------------------------------------------------------- account


def test_recorded_account_parses_money_strings_exactly() -> None:
    raw = recorded("account")
    account = account_to_broker_account(raw)
    assert account.equity == Decimal(raw["equity"])
    assert account.cash == Decimal(raw["cash"])
    assert account.buying_power == Decimal(raw["buying_power"])
    assert (account.status, account.trading_blocked) == ("ACTIVE", False)
    assert (account.account_blocked, account.trade_suspended_by_user) == (False, False)
    assert account.non_marginable_buying_power == Decimal(raw["non_marginable_buying_power"])
    assert account.blocking_flags == ()


@pytest.mark.parametrize("flag", ["trading_blocked", "account_blocked", "trade_suspended_by_user"])
def test_each_account_flag_that_forbids_trading_is_read(flag: str) -> None:
    raw = recorded("account") | {flag: True}
    account = account_to_broker_account(raw)
    assert getattr(account, flag) is True
    assert account.blocking_flags == (flag,)


@pytest.mark.parametrize("flag", ["account_blocked", "trade_suspended_by_user"])
def test_a_missing_blocking_flag_is_read_as_set(flag: str) -> None:
    raw = recorded("account")
    del raw[flag]
    assert account_to_broker_account(raw).blocking_flags == (flag,)


def test_a_blocking_flag_that_is_not_a_boolean_is_named() -> None:
    with pytest.raises(BadBrokerResponseError, match="'account_blocked' = 'no'"):
        account_to_broker_account(recorded("account") | {"account_blocked": "no"})


def test_margin_account_keeps_non_marginable_buying_power_apart() -> None:
    # Alpaca's default paper account: margin, buying power twice the cash.
    raw = recorded("account") | {
        "cash": "10000",
        "buying_power": "20000",
        "non_marginable_buying_power": "10000",
        "multiplier": "2",
    }
    account = account_to_broker_account(raw)
    assert account.buying_power == 2 * account.cash
    assert account.non_marginable_buying_power == Decimal("10000")


def test_absent_non_marginable_buying_power_is_none() -> None:
    raw = recorded("account")
    del raw["non_marginable_buying_power"]
    assert account_to_broker_account(raw).non_marginable_buying_power is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("abc", "'abc'"),
        ("NaN", "'NaN'"),
        ("Infinity", "'Infinity'"),
        (None, "None"),
        (True, "True"),
    ],
)
def test_non_numeric_money_field_names_the_field_and_value(value: object, shown: str) -> None:
    raw = recorded("account")
    raw["equity"] = value
    with pytest.raises(BadBrokerResponseError, match=rf"account: field 'equity' = {shown} is not"):
        account_to_broker_account(raw)


def test_account_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadBrokerResponseError, match="account: expected a JSON object, got"):
        account_to_broker_account(["not", "an", "account"])


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2))
def test_any_money_string_round_trips(amount: Decimal) -> None:
    raw = {**RECORDED["account"], "cash": str(amount)}
    assert account_to_broker_account(raw).cash == amount


# ---------------------------------------------------------------------------- positions, assets


def test_recorded_positions_become_quantities_per_symbol() -> None:
    raw = recorded("positions")
    assert positions_to_quantities(raw) == {p["symbol"]: Decimal(p["qty"]) for p in raw}
    assert positions_to_quantities(raw) == {"SPY": Decimal(10), "TLT": Decimal("2.5")}
    assert positions_to_quantities([]) == {}


def test_position_with_bad_qty_names_the_symbol() -> None:
    raw = recorded("positions")
    raw[1]["qty"] = "2,5"
    with pytest.raises(BadBrokerResponseError, match="position TLT: field 'qty' = '2,5'"):
        positions_to_quantities(raw)


def test_position_listed_twice_is_refused() -> None:
    raw = recorded("positions")
    with pytest.raises(BadBrokerResponseError, match="position SPY: listed twice"):
        positions_to_quantities([raw[0], raw[0]])


def test_positions_must_be_a_list() -> None:
    with pytest.raises(BadBrokerResponseError, match="positions: expected a JSON array"):
        positions_to_quantities({"SPY": "10"})


def test_recorded_assets_carry_the_fractionable_flag() -> None:
    spy = asset_to_broker_asset(recorded("asset_fractionable"))
    gld = asset_to_broker_asset(recorded("asset_whole_shares"))
    assert (spy.symbol, spy.fractionable, spy.tradable) == ("SPY", True, True)
    assert (gld.symbol, gld.fractionable) == ("GLD", False)


def test_asset_flag_that_is_not_a_boolean_is_refused() -> None:
    raw = recorded("asset_fractionable")
    raw["fractionable"] = "true"
    with pytest.raises(BadBrokerResponseError, match="asset SPY: field 'fractionable' = 'true'"):
        asset_to_broker_asset(raw)


# ---------------------------------------------------------------------------- clock, calendar


def test_recorded_clock_has_aware_times() -> None:
    closed = clock_to_broker_clock(recorded("clock_closed"))
    assert closed.timestamp == datetime(2024, 1, 2, 8, 0, tzinfo=NEW_YORK)
    assert not closed.is_open
    assert closed.next_open == datetime(2024, 1, 2, 9, 30, tzinfo=NEW_YORK)
    opened = clock_to_broker_clock(recorded("clock_open"))
    assert opened.is_open and opened.next_close == datetime(2024, 1, 3, 16, tzinfo=NEW_YORK)


def test_clock_with_nanoseconds_as_alpaca_sends_them() -> None:
    raw = {**RECORDED["clock_open"], "timestamp": "2024-01-03T11:00:00.123456789-05:00"}
    assert clock_to_broker_clock(raw).timestamp == datetime(
        2024, 1, 3, 16, 0, 0, 123456, tzinfo=UTC
    )


def test_clock_time_without_offset_is_refused() -> None:
    raw = {**RECORDED["clock_open"], "next_open": "2024-01-04T09:30:00"}
    with pytest.raises(
        BadBrokerResponseError, match=r"clock: field 'next_open' = .* with an offset"
    ):
        clock_to_broker_clock(raw)


def test_recorded_calendar_skips_the_holiday_and_has_new_york_hours() -> None:
    days = calendar_to_session_days(recorded("calendar"))
    assert [d.date for d in days] == [
        date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12), date(2024, 1, 16),
        date(2024, 1, 17),
    ]  # fmt: skip
    for day in days:
        assert day.open == datetime.combine(day.date, time(9, 30), NEW_YORK)
        assert day.close == datetime.combine(day.date, time(16), NEW_YORK)


def test_early_close_is_kept() -> None:
    raw = [{"date": "2024-11-29", "open": "09:30", "close": "13:00"}]
    (day,) = calendar_to_session_days(raw)
    assert day.close == datetime(2024, 11, 29, 13, 0, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("row", "change", "message"),
    [
        (0, {"close": "25:00"}, r"calendar 2024-01-10: field 'close' = '25:00' is not HH:MM"),
        (0, {"close": "09:00"}, r"calendar 2024-01-10: close 09:00 is not after open"),
        (0, {"date": "10/01/2024"}, r"calendar\[0\]: date '10/01/2024' is not YYYY-MM-DD"),
        (1, {"date": "2024-01-10"}, r"calendar 2024-01-10: comes after 2024-01-10; not increasing"),
        (2, {"date": "2024-01-09"}, r"calendar 2024-01-09: comes after 2024-01-11; not increasing"),
    ],
)
def test_malformed_calendar_day_is_named(row: int, change: dict[str, str], message: str) -> None:
    raw = recorded("calendar")
    raw[row].update(change)
    with pytest.raises(BadBrokerResponseError, match=message):
        calendar_to_session_days(raw)


# ---------------------------------------------------------------------------- orders


def test_recorded_filled_order() -> None:
    raw = recorded("order_filled")
    order = order_to_broker_order(raw)
    assert order.client_order_id == "p1-20240103-SPY-buy-1" and order.id == raw["id"]
    assert (order.symbol, order.side, order.order_type, order.time_in_force) == (
        "SPY", "buy", "market", "day",
    )  # fmt: skip
    assert order.qty == order.filled_qty == Decimal(10)
    assert order.filled_avg_price == Decimal(raw["filled_avg_price"])
    assert order.notional is None and order.status == "filled" and not order.is_open
    assert order.filled_at == datetime.fromisoformat(raw["filled_at"])


def test_recorded_accepted_order_is_open_and_unfilled() -> None:
    order = order_to_broker_order(recorded("order_accepted"))
    assert order.is_open and order.status == "accepted"
    assert order.filled_qty == 0 and order.filled_avg_price is None and order.filled_at is None


def test_recorded_order_list() -> None:
    orders = order_list_to_broker_orders(recorded("orders"))
    assert [o.symbol for o in orders] == ["SPY", "TLT", "GLD"]
    assert [o.is_open for o in orders] == [False, False, True]


def test_notional_order_has_no_qty() -> None:
    raw = {**RECORDED["order_accepted"], "qty": None, "notional": "250.5"}
    order = order_to_broker_order(raw)
    assert order.qty is None and order.notional == Decimal("250.5")


def test_order_with_bad_filled_qty_names_the_client_order_id() -> None:
    raw = {**RECORDED["order_filled"], "filled_qty": "ten"}
    with pytest.raises(
        BadBrokerResponseError, match="order p1-20240103-SPY-buy-1: field 'filled_qty' = 'ten'"
    ):
        order_to_broker_order(raw)


# ---------------------------------------------------------------------------- bars


def test_recorded_bar_pages_become_session_rows() -> None:
    pages = [RECORDED["bars_page_1"]["bars"], RECORDED["bars_page_2"]["bars"]]
    frame = pd.concat([bars_to_frame(p) for p in pages], ignore_index=True)
    expected = [
        (datetime.fromisoformat(b["t"]).astimezone(NEW_YORK).date(), symbol, b["c"])
        for page in pages
        for symbol, bars in page.items()
        for b in bars
    ]
    got = [(t.date(), s, c) for t, s, c in frame[["date", "symbol", "close"]].itertuples(False)]
    assert got == expected
    assert frame["date"].iloc[0] == pd.Timestamp("2023-12-27")  # 05:00Z is New York midnight
    assert {str(t) for t in frame.dtypes[2:]} == {"float64"}


def test_null_bars_is_an_empty_frame() -> None:
    frame = bars_to_frame(None)
    assert frame.empty and list(frame.columns)[:3] == ["date", "symbol", "open"]


def test_missing_vwap_is_allowed_but_missing_close_is_not() -> None:
    bars = recorded("bars_page_1")["bars"]
    del bars["SPY"][0]["vw"]
    assert bars_to_frame(bars)["vwap"].isna().sum() == 1
    del bars["SPY"][1]["c"]
    with pytest.raises(BadMarketDataError, match=r"SPY on 2023-12-28: close \('c'\) = None"):
        bars_to_frame(bars)


def test_bar_with_text_price_or_bad_time_is_named() -> None:
    bars = recorded("bars_page_1")["bars"]
    bars["SPY"][2]["o"] = "66.87"
    with pytest.raises(BadMarketDataError, match=r"SPY on 2023-12-29: open \('o'\) = '66.87'"):
        bars_to_frame(bars)
    bars = recorded("bars_page_1")["bars"]
    bars["SPY"][0]["t"] = "yesterday"
    with pytest.raises(BadMarketDataError, match=r"SPY: bar #0 has no valid time 't': 'yesterday'"):
        bars_to_frame(bars)


# ---------------------------------------------------------------------------- any answer


@pytest.mark.parametrize(
    ("answer", "field", "parse", "message"),
    [
        pytest.param(
            "account",
            "buying_power",
            account_to_broker_account,
            "account: field 'buying_power' is missing",
            id="account-money",
        ),
        pytest.param(
            "order_filled",
            "status",
            order_to_broker_order,
            "field 'status' is missing",
            id="order-status",
        ),
    ],
)
def test_a_missing_required_field_is_named(
    answer: str, field: str, parse: Callable[[Any], object], message: str
) -> None:
    raw = recorded(answer)
    del raw[field]
    with pytest.raises(BadBrokerResponseError, match=message):
        parse(raw)

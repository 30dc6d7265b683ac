"""Many accounts on one emulator: each key pair trades its own account on one market and clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from regime_trader.service.emulator import EmulatorConfigError
from regime_trader.service.emulator.config import account_keys
from tests.support.emulator import KEY_ID, SECRET_KEY, EmulatorDriver, emulator_config


def _client(emu: EmulatorDriver, pair: tuple[str, str]) -> TradingClient:
    return TradingClient(pair[0], pair[1], paper=True, url_override=emu.url)


def test_each_key_pair_trades_its_own_account(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(accounts=3)
    pairs = account_keys(replace(emulator_config(), accounts=3))
    assert pairs[0] == (KEY_ID, SECRET_KEY) and len(set(pairs)) == 3
    emu.advance(to="next_open")
    first, second, third = (_client(emu, p) for p in pairs)
    ids = {str(a.id) for a in (c.get_account() for c in (first, second, third))}
    assert len(ids) == 3  # three accounts, not one seen three times
    order = MarketOrderRequest(
        symbol="SPY", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
    )
    second.submit_order(order)
    assert [p.symbol for p in second.get_all_positions()] == ["SPY"]
    assert first.get_all_positions() == [] and third.get_all_positions() == []
    assert first.get_orders() == [] and second.get_orders() == []  # filled at once: none open
    assert float(first.get_account().cash) > float(second.get_account().cash)


def test_the_clock_and_a_reset_move_every_account(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(accounts=2)
    first, second = (_client(emu, p) for p in account_keys(replace(emulator_config(), accounts=2)))
    emu.advance(to="next_open")
    assert first.get_clock().timestamp == second.get_clock().timestamp
    second.submit_order(
        MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    emu.advance(to="next_close")
    assert first.get_clock().timestamp == second.get_clock().timestamp
    assert first.get_clock().is_open is False
    emu.reset()
    assert second.get_all_positions() == []


def test_a_wrong_secret_of_another_account_is_401(
    start_emulator: Callable[..., EmulatorDriver],
) -> None:
    emu = start_emulator(accounts=2)
    (key, _), (other_key, other_secret) = account_keys(replace(emulator_config(), accounts=2))
    for pair in ((other_key, SECRET_KEY), (key, other_secret), (f"{KEY_ID}-2", f"{SECRET_KEY}-2")):
        with pytest.raises(APIError) as err:
            _client(emu, pair).get_account()
        assert err.value.status_code == 401, pair


def test_many_accounts_keep_no_state_file(tmp_path: Path) -> None:
    with pytest.raises(EmulatorConfigError, match="state file keeps one account"):
        emulator_config(accounts=2, state_file=tmp_path / "state.json")
    with pytest.raises(EmulatorConfigError, match="accounts must be in"):
        emulator_config(accounts=0)

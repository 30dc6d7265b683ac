"""Scenario controls of the emulator: account flags, order-status scripts, the duplicate code,
and the corporate actions (checked against the market at start).

A mixin of :class:`~regime_trader.service.emulator.engine.Emulator`, kept apart so the Alpaca
operations and the knobs a test turns read separately; every change is saved to the state file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regime_trader.service.emulator.config import (
    DUPLICATE_CODES,
    EmulatorConfigError,
)
from regime_trader.service.emulator.corporate_actions import (
    ActionKind,
    CorporateAction,
    CorporateActionError,
    adjustment_factors,
)
from regime_trader.service.emulator.exchange import FLAGS
from regime_trader.service.emulator.lifecycle import OrderScript
from regime_trader.service.emulator.market import Market
from regime_trader.service.emulator.parts import EmulatorParts
from regime_trader.service.emulator.records import CODE_BAD_REQUEST, ExchangeError

__all__ = ["ScenarioControls", "checked_actions"]


class ScenarioControls(EmulatorParts):
    """The ``/admin`` scenario operations (mixed into the emulator)."""

    def flags(self) -> dict[str, bool]:
        """The account flags that refuse new orders."""
        return dict(self.exchange.flags)

    def set_flags(self, body: Mapping[str, Any]) -> dict[str, bool]:
        """Set some of ``trading_blocked``, ``account_blocked``, ``trade_suspended_by_user``."""
        unknown = sorted(set(body) - set(FLAGS))
        if unknown:
            raise ExchangeError(400, CODE_BAD_REQUEST, f"unknown flags {unknown}; {sorted(FLAGS)}")
        for name, value in body.items():
            if not isinstance(value, bool):
                raise ExchangeError(400, CODE_BAD_REQUEST, f"{name} must be true or false")
        self.exchange.flags.update(body)
        self._save()
        return self.flags()

    def add_script(self, script: OrderScript) -> dict[str, Any]:
        """Activate an order-status script for the next orders."""
        result = self.scripts.add(script)
        self._save()
        return result

    def clear_scripts(self) -> None:
        """Remove the active scripts (orders already scripted keep theirs)."""
        self.scripts.clear()
        self._save()

    def scenario(self) -> dict[str, Any]:
        """Duplicate code and the ids of the flags, for ``GET /admin/scenario``."""
        return {"duplicate_code": self.duplicate_code, "multiplier": self.config.multiplier}

    def set_duplicate_code(self, code: Any) -> dict[str, Any]:
        """Choose the code answered to a duplicate client order id (40010001 or 42210000)."""
        if code not in DUPLICATE_CODES:
            raise ExchangeError(
                400, CODE_BAD_REQUEST, f"duplicate_code must be one of {DUPLICATE_CODES}"
            )
        self.duplicate_code = self.exchange.duplicate_code = int(code)
        self._save()
        return self.scenario()

    def corporate_actions(self) -> dict[str, Any]:
        """The configured actions and what was applied to the account."""
        return {
            "actions": [a.to_json() for a in self.actions],
            "applied": list(self.exchange.corporate_log),
        }


def checked_actions(
    actions: tuple[CorporateAction, ...], market: Market
) -> tuple[CorporateAction, ...]:
    """Refuse actions of unknown symbols, on dates that are not priced sessions, or dividends
    not below the close before their ex-date (their adjustment factor would be <= 0)."""
    dates = market.calendar.dates[: market.n_sessions]
    priced = set(dates)
    for action in actions:
        if not market.has(action.symbol):
            raise EmulatorConfigError(
                f"corporate action {action.kind.value} on {action.ex_date}: symbol "
                f"{action.symbol!r} is not traded (symbols: {list(market.symbols)})"
            )
        if action.ex_date not in priced or action.ex_date == market.calendar.dates[0]:
            raise EmulatorConfigError(
                f"corporate action {action.kind.value} of {action.symbol}: ex_date "
                f"{action.ex_date} is not a priced session after the first"
            )
    for symbol in {a.symbol for a in actions}:
        mine = [a for a in actions if a.symbol == symbol]
        try:
            adjustment_factors(dates, market.closes(symbol), mine, dates[-1], set(ActionKind))
        except CorporateActionError as e:
            raise EmulatorConfigError(f"corporate actions: {e}") from e
    return tuple(sorted(actions, key=lambda a: (a.ex_date, a.symbol, a.kind.value)))

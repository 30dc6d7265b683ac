"""What the emulator's operation mixins work on: the state :class:`Emulator` holds.

:class:`~regime_trader.service.emulator.timeline.TimeControls` (moving the clock) and
:class:`~regime_trader.service.emulator.scenario.ScenarioControls` (the test knobs) are mixed into
:class:`~regime_trader.service.emulator.engine.Emulator`; both read and change these parts, and
save through :meth:`EmulatorParts._save`. Declared once here, defined by the engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from regime_trader.service.emulator.clock import TradingCalendar
from regime_trader.service.emulator.config import EmulatorConfig
from regime_trader.service.emulator.corporate_actions import CorporateAction
from regime_trader.service.emulator.exchange import Exchange
from regime_trader.service.emulator.lifecycle import ScriptBook
from regime_trader.service.emulator.market import Market
from regime_trader.service.emulator.records import MarketView

__all__ = ["EmulatorParts"]


class EmulatorParts:
    """The emulator's settings, clock, market, account, scripts and corporate actions."""

    config: EmulatorConfig
    now: datetime
    calendar: TradingCalendar
    market: Market
    exchange: Exchange
    scripts: ScriptBook
    duplicate_code: int
    actions: tuple[CorporateAction, ...]

    def _save(self) -> None:
        """Write the state file (when the emulator has one)."""
        raise NotImplementedError

    def view(self, at: datetime | None = None) -> MarketView:
        """The market at ``at`` (default now)."""
        raise NotImplementedError

    def clock(self) -> dict[str, Any]:
        """``GET /v2/clock``."""
        raise NotImplementedError

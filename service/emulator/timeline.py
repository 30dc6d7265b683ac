"""Moving the emulator's simulated clock: forward only, replaying every open and close crossed.

At each open the corporate actions of that session apply to the holdings first, then queued
orders fill; at each close day orders expire and the closing equity is recorded. A mixin of
:class:`~regime_trader.service.emulator.engine.Emulator`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from regime_trader.service.emulator import shapes
from regime_trader.service.emulator.clock import CalendarError
from regime_trader.service.emulator.inputs import parse_instant
from regime_trader.service.emulator.parts import EmulatorParts
from regime_trader.service.emulator.records import CODE_BAD_REQUEST, ExchangeError

__all__ = ["ADVANCE_TARGETS", "CODE_CONFLICT", "TimeControls"]

ADVANCE_TARGETS = ("next_open", "next_close", "next_session_open")
CODE_CONFLICT = 40910000


class TimeControls(EmulatorParts):
    """The ``/admin/clock`` operations (mixed into the emulator)."""

    def admin_clock(self) -> dict[str, Any]:
        """The clock plus what the admin needs: the session and the reachable range."""
        i = self.calendar.last_opened(self.now)
        return {
            **self.clock(),
            "timestamp_utc": shapes.utc_text(self.now),
            "session": self.calendar.dates[i].isoformat() if i >= 0 else None,
            "last_priced_session": self.calendar.dates[self.market.n_sessions - 1].isoformat(),
        }

    def set_clock(self, value: str) -> dict[str, Any]:
        """Move the clock to an instant (forward only), replaying the opens and closes."""
        self._move_to(parse_instant("timestamp", value))
        return self.admin_clock()

    def advance(self, to: str | None, minutes: Any) -> dict[str, Any]:
        """Advance to ``next_open``, ``next_close``, ``next_session_open`` or by ``minutes``."""
        if (to is None) == (minutes is None):
            raise ExchangeError(
                400, CODE_BAD_REQUEST, f"give exactly one of 'to' ({ADVANCE_TARGETS}) or 'minutes'"
            )
        try:
            if to == "next_open":
                target = self.calendar.next_open(self.now)
            elif to == "next_close":
                target = self.calendar.next_close(self.now)
            elif to == "next_session_open":
                target = self.calendar.next_session_open(self.now)
            elif to is not None:
                raise ExchangeError(
                    400, CODE_BAD_REQUEST, f"unknown target {to!r}; one of {ADVANCE_TARGETS}"
                )
            else:
                if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
                    raise ExchangeError(
                        400, CODE_BAD_REQUEST, f"minutes must be a number >= 0, got {minutes!r}"
                    )
                target = self.now + timedelta(minutes=minutes)
        except CalendarError as e:
            raise ExchangeError(409, CODE_CONFLICT, str(e)) from e
        self._move_to(target)
        return self.admin_clock()

    def _move_to(self, target: datetime) -> None:
        target = target.astimezone(UTC)
        if target < self.now:
            raise ExchangeError(
                409,
                CODE_CONFLICT,
                f"the clock only moves forward (now {self.now.isoformat()}, asked "
                f"{target.isoformat()}); POST /admin/reset to start again",
            )
        if self.calendar.last_opened(target) >= self.market.n_sessions:
            last = self.calendar.session(self.market.n_sessions - 1)
            raise ExchangeError(
                409,
                CODE_CONFLICT,
                f"no prices after session {last.date}: the clock cannot reach {target.isoformat()}",
            )
        for at, kind, i in self.calendar.events_between(self.now, target):
            view = self.view(at)
            if kind == "open":
                day = self.calendar.dates[i]
                for action in self.actions:
                    if action.ex_date == day:
                        self.exchange.apply_action(action, at)
                self.exchange.on_open(view)
            else:
                self.exchange.on_close(view)
        self.now = target
        self._save()

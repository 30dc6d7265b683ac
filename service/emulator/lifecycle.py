"""Order-status scripts: make the next orders walk through chosen Alpaca statuses.

By default an order fills at once while the market is open and waits (``accepted``) for the
next open while it is closed. A script replaces that for the next ``count`` orders of a symbol
(or of every symbol): the order answers the POST with the first scripted status and moves one
status further every ``every`` polls of that order (``advance="poll"``: a GET of the order, by
id or client order id; a ``GET /v2/orders`` list counts as one poll of every scripted order)
or every ``every`` seconds of wall time (``advance="seconds"``, checked on every trading-API
read), ending in ``final``.

Fills follow the statuses: entering ``partially_filled`` fills half of the final quantity,
entering ``final`` fills up to ``filled_fraction`` of the order (at the price of that instant,
open market or not). Example, Alpaca's usual life of a market order::

    {"statuses": ["accepted", "pending_new", "new", "partially_filled"],
     "final": "filled", "advance": "poll", "every": 1}

A partial fill then a cancellation: ``"final": "canceled", "filled_fraction": 0.4``; an order
done for the day: ``"final": "done_for_day", "filled_fraction": 0.5``; an order stuck in review:
``"statuses": [], "final": "pending_review"`` (an open final status stays until the close
expires it, like any day order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from regime_trader.service.emulator.records import ALL_STATUSES, OPEN_STATUSES, use_once

__all__ = ["Advance", "OrderScript", "ScriptBook", "ScriptError"]

# Final statuses the emulator can end a script in; "replaced" needs a replacing order, which
# the emulator does not create.
FINAL_STATUSES = ALL_STATUSES - {"replaced"}


class ScriptError(ValueError):
    """A status script is invalid; the message names the field and the value."""


class Advance(StrEnum):
    """What moves a scripted order to its next status."""

    POLL = "poll"
    SECONDS = "seconds"


@dataclass(frozen=True)
class OrderScript:
    """The statuses the next orders go through (see the module docstring).

    Parameters
    ----------
    statuses : tuple of str
        Open statuses before the final one, in order; the first is the POST's answer.
    final : str
        The last status: any Alpaca status but ``replaced``.
    filled_fraction : Decimal
        Share of the order filled when ``final`` is reached, in [0, 1]; 1 for ``filled``,
        0 for ``rejected``.
    symbol : str, optional
        Only orders of this symbol (None: every order).
    advance : Advance
        ``poll`` or ``seconds``.
    every : float
        Polls (an integer >= 1) or seconds (> 0) per status.
    count : int, optional
        The script applies to this many next orders (None: until cleared).
    """

    statuses: tuple[str, ...]
    final: str
    filled_fraction: Decimal = Decimal(1)
    symbol: str | None = None
    advance: Advance = Advance.POLL
    every: float = 1.0
    count: int | None = None

    def __post_init__(self) -> None:
        for status in self.statuses:
            if status not in OPEN_STATUSES:
                raise ScriptError(
                    f"statuses: {status!r} is not an open Alpaca status "
                    f"(one of {sorted(OPEN_STATUSES)})"
                )
        if self.final not in FINAL_STATUSES:
            raise ScriptError(f"final: {self.final!r} is not one of {sorted(FINAL_STATUSES)}")
        if not Decimal(0) <= self.filled_fraction <= Decimal(1):
            raise ScriptError(f"filled_fraction must be in [0, 1], got {self.filled_fraction}")
        if self.final == "filled" and self.filled_fraction != 1:
            raise ScriptError(f"final 'filled' needs filled_fraction 1, got {self.filled_fraction}")
        if self.final == "rejected" and self.filled_fraction != 0:
            raise ScriptError(
                f"final 'rejected' needs filled_fraction 0, got {self.filled_fraction}"
            )
        if "partially_filled" in (*self.statuses, self.final) and not (self.filled_fraction > 0):
            raise ScriptError("a 'partially_filled' status needs filled_fraction > 0")
        if not math.isfinite(self.every) or self.every <= 0:
            raise ScriptError(f"every must be > 0, got {self.every}")
        if self.advance is Advance.POLL and self.every != int(self.every):
            raise ScriptError(f"every must be a whole number of polls, got {self.every}")
        if self.count is not None and self.count < 1:
            raise ScriptError(f"count must be >= 1 (or null for always), got {self.count}")

    @classmethod
    def from_json(cls, body: Any) -> OrderScript:
        """Parse the body of ``POST /admin/order_scripts``."""
        if not isinstance(body, Mapping):
            raise ScriptError("the body must be a JSON object")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ScriptError(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
        if "final" not in body:
            raise ScriptError("final is required")
        statuses = body.get("statuses", [])
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            raise ScriptError(f"statuses must be a list of strings, got {statuses!r}")
        try:
            fraction = Decimal(str(body.get("filled_fraction", 1)))
        except InvalidOperation:
            raise ScriptError(
                f"filled_fraction must be a number, got {body.get('filled_fraction')!r}"
            ) from None
        try:
            advance = Advance(body.get("advance", "poll"))
        except ValueError:
            raise ScriptError(
                f"advance must be 'poll' or 'seconds', got {body['advance']!r}"
            ) from None
        every, count, symbol = body.get("every", 1), body.get("count"), body.get("symbol")
        if isinstance(every, bool) or not isinstance(every, int | float):
            raise ScriptError(f"every must be a number, got {every!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise ScriptError(f"count must be an integer or null, got {count!r}")
        if symbol is not None and (not isinstance(symbol, str) or not symbol):
            raise ScriptError(f"symbol must be a non-empty string or null, got {symbol!r}")
        return cls(
            statuses=tuple(statuses),
            final=str(body["final"]),
            filled_fraction=fraction,
            symbol=symbol,
            advance=advance,
            every=float(every),
            count=count,
        )

    def to_json(self) -> dict[str, Any]:
        """Describe the script (JSON numbers for the fraction and ``every``)."""
        return {
            "statuses": list(self.statuses),
            "final": self.final,
            "filled_fraction": float(self.filled_fraction),
            "symbol": self.symbol,
            "advance": self.advance.value,
            "every": self.every,
            "count": self.count,
        }


@dataclass
class _Active:
    id: int
    script: OrderScript
    remaining: int | None
    used: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.script.to_json(),
            "remaining": self.remaining,
            "used": self.used,
        }


@dataclass
class ScriptBook:
    """The active scripts, matched in the order they were added."""

    active: list[_Active] = field(default_factory=list)
    next_id: int = 1

    def add(self, script: OrderScript) -> dict[str, Any]:
        """Activate a script; return its description (with ``id``)."""
        entry = _Active(self.next_id, script, script.count)
        self.next_id += 1
        self.active.append(entry)
        return entry.to_json()

    def clear(self) -> None:
        """Remove every script (orders already scripted keep theirs)."""
        self.active.clear()

    def to_json(self) -> list[dict[str, Any]]:
        """Describe the active scripts."""
        return [entry.to_json() for entry in self.active]

    def match(self, symbol: str) -> OrderScript | None:
        """Return the script the next order of ``symbol`` would follow, or None."""
        for entry in self.active:
            if entry.script.symbol in (None, symbol):
                return entry.script
        return None

    def consume(self, symbol: str) -> None:
        """Count one accepted order of ``symbol`` against its script (see :meth:`match`)."""
        for entry in self.active:
            if entry.script.symbol not in (None, symbol):
                continue
            entry.used += 1
            use_once(entry, self.active)
            return

    def state(self) -> dict[str, Any]:
        """The persisted form (``from_state`` reads it back)."""
        return {"next_id": self.next_id, "active": self.to_json()}

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None) -> ScriptBook:
        """Rebuild from :meth:`state` (None: empty)."""
        book = cls()
        if not data:
            return book
        book.next_id = int(data["next_id"])
        for raw in data["active"]:
            spec = {k: raw[k] for k in ("statuses", "final", "filled_fraction", "symbol")}
            spec.update(advance=raw["advance"], every=raw["every"], count=raw["count"])
            entry = _Active(int(raw["id"]), OrderScript.from_json(spec), raw["remaining"])
            entry.used = int(raw["used"])
            book.active.append(entry)
        return book

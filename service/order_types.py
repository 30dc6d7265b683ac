"""The records of order planning, each validated at construction, and the client order id.

What :func:`regime_trader.service.orders.plan_orders` reads (:class:`AccountSnapshot`,
:class:`PlanningSettings`) and returns (:class:`OrderPlan` of :class:`OrderIntent` and
:class:`Decision`), and the deterministic :func:`client_order_id`. Pure: no I/O, no clock.

Money, prices and quantities are :class:`decimal.Decimal`; floats are accepted at the boundary
and converted through ``str`` (``0.1 -> "0.1"``), and every bad value is refused with a
:class:`PlanningError` naming the field and the value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, TypeVar

from regime_trader.service.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_NO_TRADE_BAND",
    "AccountSnapshot",
    "Action",
    "Decision",
    "OrderIntent",
    "OrderPlan",
    "PlanningError",
    "PlanningSettings",
    "Reason",
    "Side",
    "as_decimal",
    "as_symbol",
    "client_order_id",
]

# A portfolio's default no-trade band (the weight band of the rebalancing rule); the backtest's
# and the research study's default execution band, so what they score is what a portfolio trades.
DEFAULT_NO_TRADE_BAND = 0.02

_T = TypeVar("_T")
Side = Literal["buy", "sell"]
Action = Literal["buy", "sell", "hold"]
_ZERO = Decimal(0)
_MAX_ATTEMPT = 9999  # keeps ids well under Alpaca's 128-character limit
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9.]+")  # "-" is our separator, so it is unsafe too


class PlanningError(InvalidInputError):
    """Input the planner refuses to trade on; the caller must not submit anything."""


class Reason(StrEnum):
    """Why a symbol got its decision: a trigger first, then any adjustments."""

    OUT_OF_BAND = "out_of_band"  # trigger: deviation >= band, trade toward the target
    NOT_IN_TARGET = "sold_out_not_in_target"  # trigger: absent or zero weight, sell all
    WITHIN_BAND = "within_band"  # trigger: deviation < band, no trade
    CAPPED = "capped_by_buying_power"  # buys scaled down, or a share not rounded up, for cash
    HELD_EXPOSURE = "scaled_to_held_exposure"  # the exposure band kept the held exposure
    WHOLE_SHARES = "rounded_to_whole_shares"  # non-fractionable: nearest affordable share
    BELOW_MINIMUM = "below_minimum"  # order under min_order_notional: skipped


def as_decimal(name: str, value: object, *, finite: bool = True) -> Decimal:
    """Convert ``value`` to Decimal or raise naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise PlanningError(f"{name} must be a number, got {value!r}")
    try:
        out = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise PlanningError(f"{name} must be a number, got {value!r}") from None
    if finite and not out.is_finite():
        raise PlanningError(f"{name} must be finite, got {value!r}")
    return out


def as_symbol(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise PlanningError(f"{name}: symbols must be non-empty, unpadded strings, got {value!r}")
    return value


def _in_range(name: str, value: object, low: Decimal, high: Decimal | None) -> Decimal:
    """Return ``value`` as Decimal if ``low <= value < high`` (no upper bound if None)."""
    out = as_decimal(name, value)
    if out < low or (high is not None and out >= high):
        bound = f"[{low}, {high})" if high is not None else f">= {low}"
        raise PlanningError(f"{name} must be in {bound}, got {value!r}")
    return out


@dataclass(frozen=True)
class PlanningSettings:
    """Planning knobs, validated at construction.

    Parameters
    ----------
    cash_buffer : Decimal, default 0.01
        Fraction of equity that buys must leave in cash, in [0, 1).
    no_trade_band : Decimal, default 0.02
        Absolute weight deviation under which a symbol is not traded, in [0, 1): the weight
        band of :class:`regime_trader.strategies.rebalance.RebalanceBand`.
    exposure_band : Decimal, default 0
        A total target exposure off the held exposure by less than this is scaled to the held
        exposure before the weight band applies, in [0, 1): the exposure band of the same rule
        (0: never).
    min_order_notional : Decimal, default 1
        Smallest order in USD; smaller orders are skipped.
    qty_decimals : int, default 9
        Decimals of fractional quantities, in [0, 9].
    allow_fractional : bool, default True
        If False, every symbol trades whole shares.
    """

    cash_buffer: Decimal = Decimal("0.01")
    no_trade_band: Decimal = Decimal(str(DEFAULT_NO_TRADE_BAND))
    exposure_band: Decimal = Decimal("0")
    min_order_notional: Decimal = Decimal("1")  # Alpaca's minimum for fractional orders
    qty_decimals: int = 9  # Alpaca accepts up to 9 decimals
    allow_fractional: bool = True

    def __post_init__(self) -> None:
        bounds = (
            ("cash_buffer", 1),
            ("no_trade_band", 1),
            ("exposure_band", 1),
            ("min_order_notional", None),
        )
        for name, high in bounds:
            bound = None if high is None else Decimal(high)
            object.__setattr__(self, name, _in_range(name, getattr(self, name), _ZERO, bound))
        if type(self.qty_decimals) is not int or not 0 <= self.qty_decimals <= 9:
            raise PlanningError(f"qty_decimals must be an int in [0, 9], got {self.qty_decimals!r}")
        _flag("allow_fractional", self.allow_fractional)


@dataclass(frozen=True)
class AccountSnapshot:
    """The account as the broker reported it, plus the prices to plan with.

    Parameters
    ----------
    equity : Decimal
        Account equity in USD, > 0; target weights are fractions of it.
    cash, buying_power : Decimal
        USD. Either may be negative (a margin call): that only leaves buys without a budget,
        sells still go ahead. A margin account's ``buying_power`` includes borrowed money;
        the planner never spends more than ``cash`` (long-only, no leverage).
    positions : mapping of str to Decimal
        Held quantity per symbol, >= 0 (long-only).
    prices : mapping of str to Decimal
        Last price per symbol. Checked (finite, > 0) only for symbols the plan would trade,
        so a bad quote for an unrelated symbol does not block the cycle.
    fractionable : mapping of str to bool
        Whether the broker accepts fractional quantities; a missing symbol is not.
    non_marginable_buying_power : Decimal, optional
        Alpaca's buying power without margin (what non-marginable securities, and fractional
        orders, can use); None when the broker did not report it.
    """

    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    fractionable: Mapping[str, bool] = field(default_factory=dict)
    non_marginable_buying_power: Decimal | None = None

    @property
    def spendable(self) -> Decimal:
        """USD buys may use: own money only, never margin.

        ``min(cash, buying_power, non_marginable_buying_power)``: cash is what the account
        holds (a margin account's ``buying_power`` is up to 2x or 4x it); buying power is
        lower when open orders or a margin call already reserve part of the cash; the
        non-marginable figure is Alpaca's own "without borrowing" number when it is sent.
        """
        amounts = [self.cash, self.buying_power]
        if self.non_marginable_buying_power is not None:
            amounts.append(self.non_marginable_buying_power)
        return min(amounts)

    def __post_init__(self) -> None:
        equity = as_decimal("equity", self.equity)
        if equity <= 0:
            raise PlanningError(f"equity must be > 0, got {self.equity!r}")
        values = {
            "equity": equity,
            "cash": as_decimal("cash", self.cash),
            "buying_power": as_decimal("buying_power", self.buying_power),
            "positions": _frozen("positions", self.positions, _holding),
            "prices": _frozen("prices", self.prices, lambda n, v: as_decimal(n, v, finite=False)),
            "fractionable": _frozen("fractionable", self.fractionable, _flag),
            "non_marginable_buying_power": None
            if self.non_marginable_buying_power is None
            else as_decimal("non_marginable_buying_power", self.non_marginable_buying_power),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _holding(name: str, value: object) -> Decimal:
    qty = as_decimal(name, value)
    if qty < 0:
        raise PlanningError(f"{name} must be >= 0 (the planner is long-only), got {value!r}")
    return qty


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise PlanningError(f"{name} must be a bool, got {value!r}")
    return value


def _frozen(
    name: str, mapping: Mapping[str, object], convert: Callable[[str, object], _T]
) -> Mapping[str, _T]:
    """Validate keys as symbols and values with ``convert``; return a read-only copy."""
    items = mapping.items()
    return MappingProxyType({as_symbol(name, k): convert(f"{name}[{k!r}]", v) for k, v in items})


@dataclass(frozen=True)
class OrderIntent:
    """One market/day order for the broker adapter, sized in shares on both sides."""

    symbol: str
    side: Side
    qty: Decimal  # whole for non-fractionable symbols, except an exact liquidation
    client_order_id: str
    estimated_notional: Decimal  # qty * planning price, USD


@dataclass(frozen=True)
class Decision:
    """What the planner decided for one symbol, and why.

    ``reasons`` starts with the trigger (OUT_OF_BAND, NOT_IN_TARGET, WITHIN_BAND), then the
    adjustments applied (CAPPED, WHOLE_SHARES, BELOW_MINIMUM). ``qty`` and
    ``estimated_notional`` are those of the order placed; both are zero for "hold".
    """

    symbol: str
    action: Action
    reasons: tuple[Reason, ...]
    current_weight: Decimal
    target_weight: Decimal
    qty: Decimal
    estimated_notional: Decimal


@dataclass(frozen=True)
class OrderPlan:
    """Orders (sells first, then buys, each by symbol) and one decision per symbol."""

    orders: tuple[OrderIntent, ...]
    diagnostics: tuple[Decision, ...]
    buy_budget: Decimal  # USD available to buys after planned sells and the cash buffer
    buy_scale: Decimal  # 1, or the factor every buy was scaled by to fit buy_budget


def client_order_id(
    portfolio: str, session: date, symbol: str, side: Side, attempt: int = 0
) -> str:
    """Return the deterministic Alpaca ``client_order_id`` of one order.

    The id is ``rt-{portfolio}-{YYYYMMDD}-{symbol}-{side}[-g{attempt}]-{hash}``. Readable parts
    are reduced to ``[A-Za-z0-9._]`` and truncated; 16 hex digits of the SHA-256 of the exact
    inputs keep ids distinct when that makes two readable parts equal. At most 101 characters
    (Alpaca allows 128). A restart re-plans the same ids, so the broker rejects a duplicate
    submission; pass ``attempt > 0`` only to deliberately re-trade a session.

    Raises
    ------
    PlanningError
        If ``portfolio`` or ``symbol`` is empty, ``session`` is not a plain date, ``side`` is
        unknown or ``attempt`` is outside [0, 9999].
    """
    if not isinstance(portfolio, str) or not portfolio:
        raise PlanningError(f"portfolio must be a non-empty string, got {portfolio!r}")
    # A datetime is a date too, but its time of day would silently change the hash.
    if not isinstance(session, date) or isinstance(session, datetime):
        raise PlanningError(f"session must be a datetime.date, got {session!r}")
    if side not in ("buy", "sell"):
        raise PlanningError(f"side must be 'buy' or 'sell', got {side!r}")
    if type(attempt) is not int or not 0 <= attempt <= _MAX_ATTEMPT:
        raise PlanningError(f"attempt must be an int in [0, {_MAX_ATTEMPT}], got {attempt!r}")
    as_symbol("symbol", symbol)
    # JSON is an unambiguous encoding of the tuple, whatever characters the names contain.
    exact = json.dumps([portfolio, session.isoformat(), symbol, side, attempt])
    digest = hashlib.sha256(exact.encode()).hexdigest()[:16]
    parts = ["rt", _safe(portfolio, 40), f"{session:%Y%m%d}", _safe(symbol, 20), side]
    if attempt:
        parts.append(f"g{attempt}")
    return "-".join([*parts, digest])


def _safe(text: str, limit: int) -> str:
    return _UNSAFE_ID_CHARS.sub("_", text)[:limit]

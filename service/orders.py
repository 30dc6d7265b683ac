"""Order planning: from an account snapshot and target weights to order intents.

Pure: no I/O, no clock, no network, no broker SDK. The cycle writes the returned plan to
Redis before the broker adapter submits it, so the plan, including every client order id,
is a deterministic function of its inputs.

Money, prices and quantities are :class:`decimal.Decimal`. Alpaca sends money as strings and
accepts quantities with up to 9 decimals; Decimal keeps both exact, so a liquidation sells
exactly the held quantity and rounding never invents buying power. Floats (e.g. numpy
weights) are accepted at the boundary and converted through ``str`` (``0.1 -> "0.1"``).

Orders carry a quantity on both sides, never a notional: one representation for the adapter,
exact liquidations (a notional sell leaves dust), and Alpaca accepts fractional quantities on
the same market/day terms as notional orders. ``estimated_notional`` carries the dollar size.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from functools import partial
from types import MappingProxyType
from typing import Literal, TypeVar

from service.exceptions import InvalidInputError

__all__ = [
    "AccountSnapshot",
    "Decision",
    "OrderIntent",
    "OrderPlan",
    "PlanningError",
    "PlanningSettings",
    "Reason",
    "SimulatedAccount",
    "client_order_id",
    "plan_orders",
    "weights_after",
]

_T = TypeVar("_T")
Side = Literal["buy", "sell"]
Action = Literal["buy", "sell", "hold"]
_ZERO = Decimal(0)
_WEIGHT_SUM_TOL = Decimal("1e-9")  # float weights from the optimiser may sum to 1 + 2e-16
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
    WHOLE_SHARES = "rounded_to_whole_shares"  # non-fractionable: nearest affordable share
    BELOW_MINIMUM = "below_minimum"  # order under min_order_notional: skipped


def _dec(name: str, value: object, *, finite: bool = True) -> Decimal:
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


def _symbol(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise PlanningError(f"{name}: symbols must be non-empty, unpadded strings, got {value!r}")
    return value


def _in_range(name: str, value: object, low: Decimal, high: Decimal | None) -> Decimal:
    """Return ``value`` as Decimal if ``low <= value < high`` (no upper bound if None)."""
    out = _dec(name, value)
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
        Absolute weight deviation under which a symbol is not traded, in [0, 1).
    min_order_notional : Decimal, default 1
        Smallest order in USD; smaller orders are skipped.
    qty_decimals : int, default 9
        Decimals of fractional quantities, in [0, 9].
    allow_fractional : bool, default True
        If False, every symbol trades whole shares.
    """

    cash_buffer: Decimal = Decimal("0.01")
    no_trade_band: Decimal = Decimal("0.02")
    min_order_notional: Decimal = Decimal("1")  # Alpaca's minimum for fractional orders
    qty_decimals: int = 9  # Alpaca accepts up to 9 decimals
    allow_fractional: bool = True

    def __post_init__(self) -> None:
        for name, high in (("cash_buffer", 1), ("no_trade_band", 1), ("min_order_notional", None)):
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
        equity = _dec("equity", self.equity)
        if equity <= 0:
            raise PlanningError(f"equity must be > 0, got {self.equity!r}")
        values = {
            "equity": equity,
            "cash": _dec("cash", self.cash),
            "buying_power": _dec("buying_power", self.buying_power),
            "positions": _frozen("positions", self.positions, _holding),
            "prices": _frozen("prices", self.prices, lambda n, v: _dec(n, v, finite=False)),
            "fractionable": _frozen("fractionable", self.fractionable, _flag),
            "non_marginable_buying_power": None
            if self.non_marginable_buying_power is None
            else _dec("non_marginable_buying_power", self.non_marginable_buying_power),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _holding(name: str, value: object) -> Decimal:
    qty = _dec(name, value)
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
    return MappingProxyType({_symbol(name, k): convert(f"{name}[{k!r}]", v) for k, v in items})


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


@dataclass(frozen=True)
class SimulatedAccount:
    """The account after filling a plan at the snapshot's prices (see `weights_after`)."""

    positions: Mapping[str, Decimal]
    cash: Decimal
    equity: Decimal
    weights: Mapping[str, Decimal]


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
    _symbol("symbol", symbol)
    # JSON is an unambiguous encoding of the tuple, whatever characters the names contain.
    exact = json.dumps([portfolio, session.isoformat(), symbol, side, attempt])
    digest = hashlib.sha256(exact.encode()).hexdigest()[:16]
    parts = ["rt", _safe(portfolio, 40), f"{session:%Y%m%d}", _safe(symbol, 20), side]
    if attempt:
        parts.append(f"g{attempt}")
    return "-".join([*parts, digest])


def _safe(text: str, limit: int) -> str:
    return _UNSAFE_ID_CHARS.sub("_", text)[:limit]


def plan_orders(
    snapshot: AccountSnapshot,
    target_weights: Mapping[str, Decimal | float],
    *,
    portfolio: str,
    session: date,
    settings: PlanningSettings | None = None,
    attempt: int = 0,
) -> OrderPlan:
    """Plan the orders that move ``snapshot`` toward ``target_weights``.

    1. A held symbol absent from the target (or at weight 0) is sold entirely, by its exact
       held quantity, so no dust remains.
    2. Otherwise a symbol whose weight is off its target by less than ``no_trade_band`` is
       not traded; beyond it, it is traded to the target.
    3. Non-fractionable symbols (unknown ones, or all if ``allow_fractional`` is False) trade
       the nearest whole share, rounded down where rounding up would exceed the buy budget
       or sell more than is held; others are floored to ``qty_decimals``.
    4. Buys are funded by `AccountSnapshot.spendable` (own money: ``min(cash, buying_power,
       non_marginable_buying_power)``, never margin) plus the estimated proceeds of the
       planned sells, minus ``cash_buffer * equity`` (no leverage; the buffer also absorbs
       sells filling a little below the given price). If they need more, every buy is scaled
       down by the same factor (`Reason.CAPPED`).
    5. Orders under ``min_order_notional`` are skipped; sells come before buys.

    Weights are position values over the account's ``equity``. Decimal arithmetic rounds
    toward zero here, so rounding can leave cash unspent but never overspend it.

    Parameters
    ----------
    snapshot : AccountSnapshot
    target_weights : mapping of str to Decimal or float
        Long-only weights summing to at most 1; the rest is cash.
    portfolio : str
        Portfolio name, part of every client order id.
    session : datetime.date
        Trading session the plan is for, part of every client order id.
    settings : PlanningSettings, optional
        Defaults to ``PlanningSettings()``.
    attempt : int, default 0
        Generation of the plan within the session; see `client_order_id`.

    Returns
    -------
    OrderPlan

    Raises
    ------
    PlanningError
        If a weight is negative or non-finite, the weights sum above 1, an id part is invalid,
        or a held or targeted symbol has a missing, non-finite or non-positive price (every
        such symbol is named; nothing is planned rather than guessing).
    """
    settings = settings or PlanningSettings()
    targets = _validate_targets(target_weights)
    client_order_id(portfolio, session, "ID", "buy", attempt)  # fail before any work
    with localcontext(Context(prec=34, rounding=ROUND_DOWN)):
        legs = _legs(snapshot, targets, settings)
        decisions = {d.symbol: d for leg in legs if (d := _hold_or_sell(leg, settings))}
        proceeds = sum((d.estimated_notional for d in decisions.values()), _ZERO)
        available = snapshot.spendable + proceeds
        budget = max(_ZERO, available - settings.cash_buffer * snapshot.equity)
        buys = [leg for leg in legs if leg.symbol not in decisions]
        scale, bought = _size_buys(buys, budget, settings)
        decisions.update((d.symbol, d) for d in bought)
    ordered = sorted(decisions.values(), key=lambda d: (d.action != "sell", d.symbol))
    ids = partial(client_order_id, portfolio, session, attempt=attempt)
    orders = tuple(
        OrderIntent(d.symbol, side, d.qty, ids(d.symbol, side), d.estimated_notional)
        for d in ordered
        if (side := _side(d.action))
    )
    diagnostics = tuple(sorted(decisions.values(), key=lambda d: d.symbol))
    return OrderPlan(orders, diagnostics, budget, scale)


def _side(action: Action) -> Side | None:
    return None if action == "hold" else action


@dataclass(frozen=True)
class _Leg:
    """One symbol's planning inputs; ``price`` is 0 only for symbols with nothing to do."""

    symbol: str
    held: Decimal
    price: Decimal
    target: Decimal
    equity: Decimal
    whole: bool  # trade whole shares only

    @property
    def current(self) -> Decimal:
        return self.held * self.price / self.equity

    @property
    def gap(self) -> Decimal:
        """Target value minus current value, USD; negative means sell."""
        return self.target * self.equity - self.held * self.price


def _validate_targets(weights: Mapping[str, Decimal | float]) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for sym, weight in weights.items():
        value = _dec(f"target_weights[{_symbol('target_weights', sym)!r}]", weight)
        if value < 0:
            raise PlanningError(f"target_weights[{sym!r}] must be >= 0 (long-only), got {weight!r}")
        targets[sym] = value
    total = sum(targets.values(), _ZERO)
    if total > 1 + _WEIGHT_SUM_TOL:
        raise PlanningError(f"target_weights must sum to <= 1 (the rest is cash), got {total}")
    return targets


def _legs(
    snapshot: AccountSnapshot, targets: Mapping[str, Decimal], s: PlanningSettings
) -> list[_Leg]:
    """Build one leg per target or held symbol; refuse if a symbol to trade lacks a price."""
    symbols = sorted(set(targets) | set(snapshot.positions))
    held = snapshot.positions
    active = [sym for sym in symbols if targets.get(sym, _ZERO) > 0 or held.get(sym, _ZERO) > 0]
    bad = [f"{sym}={snapshot.prices.get(sym)!r}" for sym in active if not _usable(snapshot, sym)]
    if bad:
        raise PlanningError(
            f"refusing to plan: missing, non-finite or non-positive price for {', '.join(bad)}"
        )
    return [
        _Leg(
            symbol=sym,
            held=snapshot.positions.get(sym, _ZERO),
            price=snapshot.prices[sym] if sym in active else _ZERO,
            target=targets.get(sym, _ZERO),
            equity=snapshot.equity,
            # Unknown fractionability means whole shares: always accepted by the broker.
            whole=not (s.allow_fractional and snapshot.fractionable.get(sym, False)),
        )
        for sym in symbols
    ]


def _hold_or_sell(leg: _Leg, s: PlanningSettings) -> Decision | None:
    """Decide a leg that needs no buying power; None means it is a buy."""
    if leg.target == 0 and leg.held > 0:
        return _decision(leg, "sell", leg.held, [Reason.NOT_IN_TARGET], s)
    if leg.gap == 0 or abs(leg.current - leg.target) < s.no_trade_band:
        return _hold(leg, [Reason.WITHIN_BAND])
    if leg.gap > 0:
        return None
    exact = -leg.gap / leg.price
    qty = _floor(leg, exact, s)
    if leg.whole:
        # Nearest whole share; selling more cannot overspend, but never more than is held.
        nearest = exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        qty = nearest if nearest <= leg.held else qty
    reasons = [Reason.OUT_OF_BAND, *([Reason.WHOLE_SHARES] if qty != exact and leg.whole else [])]
    return _decision(leg, "sell", qty, reasons, s)


def _size_buys(
    buys: list[_Leg], budget: Decimal, s: PlanningSettings
) -> tuple[Decimal, list[Decision]]:
    """Scale buys to ``budget``; round whole shares to the nearest share the budget allows."""
    wanted = sum((leg.gap for leg in buys), _ZERO)
    scale = min(Decimal(1), budget / wanted) if wanted > 0 else Decimal(1)
    exact = {leg.symbol: leg.gap * scale / leg.price for leg in buys}
    qty = {leg.symbol: _floor(leg, exact[leg.symbol], s) for leg in buys}
    spare = budget - sum((qty[leg.symbol] * leg.price for leg in buys), _ZERO)
    short_of_cash: set[str] = set()
    # Largest remainders first, so the spare cash goes where flooring cost the most.
    for leg in sorted(buys, key=lambda leg: (qty[leg.symbol] - exact[leg.symbol], leg.symbol)):
        if leg.whole and exact[leg.symbol] - qty[leg.symbol] >= Decimal("0.5"):
            if leg.price <= spare:
                qty[leg.symbol] += 1
                spare -= leg.price
            else:
                short_of_cash.add(leg.symbol)
    decisions = []
    for leg in buys:
        reasons = [Reason.OUT_OF_BAND]
        if scale < 1 or leg.symbol in short_of_cash:
            reasons.append(Reason.CAPPED)
        if leg.whole and qty[leg.symbol] != exact[leg.symbol]:
            reasons.append(Reason.WHOLE_SHARES)
        decisions.append(_decision(leg, "buy", qty[leg.symbol], reasons, s))
    return scale, decisions


def _floor(leg: _Leg, exact_qty: Decimal, s: PlanningSettings) -> Decimal:
    """Round ``exact_qty`` down to the leg's tradable step (a share or 10**-qty_decimals)."""
    step = Decimal(1) if leg.whole else Decimal(1).scaleb(-s.qty_decimals)
    return exact_qty.quantize(step, rounding=ROUND_DOWN)


def _decision(
    leg: _Leg, side: Side, qty: Decimal, reasons: list[Reason], s: PlanningSettings
) -> Decision:
    notional = qty * leg.price
    if qty > 0 and notional >= s.min_order_notional:
        return Decision(leg.symbol, side, tuple(reasons), leg.current, leg.target, qty, notional)
    # A zero qty from capping or rounding is explained already; anything else is too small.
    if qty > 0 or reasons == [Reason.OUT_OF_BAND]:
        reasons.append(Reason.BELOW_MINIMUM)
    return _hold(leg, reasons)


def _hold(leg: _Leg, reasons: list[Reason]) -> Decision:
    return Decision(leg.symbol, "hold", tuple(reasons), leg.current, leg.target, _ZERO, _ZERO)


def weights_after(plan: OrderPlan, snapshot: AccountSnapshot) -> SimulatedAccount:
    """Fill every order of ``plan`` at the snapshot's prices and return the resulting account.

    Equity is marked to market (cash plus positions at the given prices): it equals the
    snapshot's equity when that was marked at the same prices.

    Raises
    ------
    PlanningError
        If a held or traded symbol has no usable price, a sell exceeds the held quantity, or
        the resulting equity is not positive.
    """
    positions = dict(snapshot.positions)
    cash = snapshot.cash
    for order in plan.orders:
        signed = order.qty if order.side == "buy" else -order.qty
        positions[order.symbol] = positions.get(order.symbol, _ZERO) + signed
        cash -= signed * _price(snapshot, order.symbol)
    positions = {sym: qty for sym, qty in positions.items() if qty != 0}
    if short := sorted(sym for sym, qty in positions.items() if qty < 0):
        raise PlanningError(f"plan sells more than is held of {', '.join(short)}")
    values = {sym: qty * _price(snapshot, sym) for sym, qty in positions.items()}
    equity = cash + sum(values.values(), _ZERO)
    if equity <= 0:
        raise PlanningError(f"equity after the plan must be > 0, got {equity}")
    weights = {sym: value / equity for sym, value in values.items()}
    return SimulatedAccount(MappingProxyType(positions), cash, equity, MappingProxyType(weights))


def _usable(snapshot: AccountSnapshot, symbol: str) -> bool:
    price = snapshot.prices.get(symbol)
    return price is not None and price.is_finite() and price > 0


def _price(snapshot: AccountSnapshot, symbol: str) -> Decimal:
    if not _usable(snapshot, symbol):
        price = snapshot.prices.get(symbol)
        raise PlanningError(f"missing, non-finite or non-positive price for {symbol}: {price!r}")
    return snapshot.prices[symbol]

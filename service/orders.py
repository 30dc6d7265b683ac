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

The records planning reads and returns, their validation and :func:`client_order_id` live in
:mod:`regime_trader.service.order_types` and are re-exported here; this module holds the decisions:
the no-trade band, liquidations, the buy budget and the rounding of quantities. The no-trade
decision is :func:`regime_trader.strategies.rebalance.rebalance_targets`, the rule the backtest's
execution and the strategy's own decisions apply, here in Decimal arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, localcontext
from functools import partial

# The records live in regime_trader.service.order_types; re-exported (``X as X``) for the callers
# of this module.
from regime_trader.service.order_types import AccountSnapshot as AccountSnapshot
from regime_trader.service.order_types import Action, Side, as_decimal, as_symbol
from regime_trader.service.order_types import Decision as Decision
from regime_trader.service.order_types import OrderIntent as OrderIntent
from regime_trader.service.order_types import OrderPlan as OrderPlan
from regime_trader.service.order_types import PlanningError as PlanningError
from regime_trader.service.order_types import PlanningSettings as PlanningSettings
from regime_trader.service.order_types import Reason as Reason
from regime_trader.service.order_types import client_order_id as client_order_id
from regime_trader.strategies.rebalance import rebalance_targets

__all__ = ["plan_orders"]

_ZERO = Decimal(0)
_WEIGHT_SUM_TOL = Decimal("1e-9")  # float weights from the optimiser may sum to 1 + 2e-16


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
    2. The rebalancing rule (:func:`~regime_trader.strategies.rebalance.rebalance_targets`)
       decides the rest: a total target exposure within ``exposure_band`` of the held one is
       scaled to the held exposure (`Reason.HELD_EXPOSURE`); then a symbol whose weight is off
       its target by less than ``no_trade_band`` is not traded; beyond it, it is traded to
       the target; buys that would lift the total above 1 are scaled down (`Reason.CAPPED`).
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
        legs = _banded(_legs(snapshot, targets, settings), settings)
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
    aim: Decimal | None = None  # the weight the band trades to (None: the target)
    left_alone: bool = False  # within the band: not traded
    adjusted: tuple[Reason, ...] = ()  # why ``aim`` differs from the target

    @property
    def current(self) -> Decimal:
        return self.held * self.price / self.equity

    @property
    def gap(self) -> Decimal:
        """Aimed value minus current value, USD; negative means sell."""
        aim = self.target if self.aim is None else self.aim
        return aim * self.equity - self.held * self.price


def _banded(legs: list[_Leg], s: PlanningSettings) -> list[_Leg]:
    """Each leg with the weight the rebalancing rule trades it to, and whether it is left."""
    current = [leg.current for leg in legs]
    decided = rebalance_targets(
        current, [leg.target for leg in legs], s.no_trade_band, s.exposure_band
    )
    out = []
    for leg, aim, left in zip(legs, decided.weights, decided.left_alone, strict=True):
        adjusted: list[Reason] = []
        if decided.scaled_to_held and aim != leg.target and not left:
            adjusted.append(Reason.HELD_EXPOSURE)
        if decided.buys_capped and leg.current < aim < leg.target and not left:
            adjusted.append(Reason.CAPPED)
        out.append(replace(leg, aim=aim, left_alone=left, adjusted=tuple(adjusted)))
    return out


def _validate_targets(weights: Mapping[str, Decimal | float]) -> dict[str, Decimal]:
    targets: dict[str, Decimal] = {}
    for sym, weight in weights.items():
        value = as_decimal(f"target_weights[{as_symbol('target_weights', sym)!r}]", weight)
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
    if leg.gap == 0 or leg.left_alone:
        return _hold(leg, [Reason.WITHIN_BAND])
    if leg.gap > 0:
        return None
    exact = -leg.gap / leg.price
    qty = _floor(leg, exact, s)
    if leg.whole:
        # Nearest whole share; selling more cannot overspend, but never more than is held.
        nearest = exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        qty = nearest if nearest <= leg.held else qty
    rounded = [Reason.WHOLE_SHARES] if qty != exact and leg.whole else []
    return _decision(leg, "sell", qty, [Reason.OUT_OF_BAND, *leg.adjusted, *rounded], s)


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
        reasons = [Reason.OUT_OF_BAND, *leg.adjusted]
        if (scale < 1 or leg.symbol in short_of_cash) and Reason.CAPPED not in reasons:
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


def _usable(snapshot: AccountSnapshot, symbol: str) -> bool:
    price = snapshot.prices.get(symbol)
    return price is not None and price.is_finite() and price > 0

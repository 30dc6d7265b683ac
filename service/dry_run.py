"""``rebalance --dry-run``: today's signal and the orders it would send; nothing stored or sent."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.orders import plan_orders
from regime_trader.service.signal_step import compute_signal

__all__ = ["describe_dry_run"]

NEW_YORK = ZoneInfo("America/New_York")


def describe_dry_run(ctx: CycleContext) -> str:
    """Human-readable plan of today's cycle for one portfolio."""
    clock = ctx.broker.clock()
    now = clock.timestamp.astimezone(NEW_YORK)
    name = ctx.portfolio.name
    result = compute_signal(ctx, now.date(), now)
    signal = result.signal
    lines = [f"{name} {now:%Y-%m-%d %H:%M} NY (dry run: nothing sent, nothing stored)"]
    if not signal.ready:
        return "\n".join([*lines, f"  no trade: {result.reason}"])
    probs = ", ".join(f"{p:.2f}" for p in signal.regime_probs or ())
    if signal.regime_label is not None:
        lines.append(f"  regime {signal.regime_label} (filtered probabilities {probs})")
    lines.append(
        "  target "
        + ", ".join(f"{s} {w:.1%}" for s, w in signal.weights.items())
        + f", cash {signal.cash:.1%}"
    )
    prices = {s: Decimal(v) for s, v in result.prices.items()}
    snapshot = ctx.broker.snapshot(list(ctx.portfolio.symbols), prices)
    plan = plan_orders(
        snapshot, signal.weights, portfolio=name, session=now.date(), settings=ctx.planning
    )
    for order in plan.orders:
        lines.append(
            f"  would {order.side} {order.qty} {order.symbol} "
            f"(about ${order.estimated_notional:,.2f})"
        )
    for decision in plan.diagnostics:
        if decision.action == "hold":
            lines.append(f"  hold {decision.symbol}: {', '.join(decision.reasons)}")
    if not plan.orders:
        lines.append("  no order: every weight is within its no-trade band")
    return "\n".join(lines)

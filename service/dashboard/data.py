"""What the dashboard shows of one portfolio, read from Redis and the broker into frozen views.

Sources, each read once per page:

- Redis (:class:`~regime_trader.service.store.Store`): status, halt, the signal history (regime
  probabilities, target weights), the order ledger, alerts, and the shadow benchmarks with the
  paper equity per session (:mod:`regime_trader.service.shadow`);
- the broker: its clock and calendar (the next run), the account and positions (held weights).

A source that fails leaves its panel with a note saying why (the page itself never fails for
it), and the rest of the page is drawn: a broker outage is exactly when an operator opens it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
import redis

from regime_trader.service.alert_channels import read_alerts
from regime_trader.service.alerts import Alert
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.dashboard.charts import Line
from regime_trader.service.dashboard.risk import RealisedRisk, realised_risk
from regime_trader.service.dashboard.schedule import NEW_YORK, NextRun, next_run
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.shadow import (
    SHADOW_BENCHMARKS,
    PaperEquity,
    ShadowLedger,
    ShadowPoint,
    ShadowStore,
)
from regime_trader.strategies.base import regime_labels
from regime_trader.strategies.registry import STRATEGIES
from regime_trader.strategies.risk_attribution import RiskView, risk_view

__all__ = ["AlertLine", "Held", "OrderLine", "PortfolioView", "portfolio_view"]

ORDERS_SHOWN = 20
ALERTS_SHOWN = 12
HALT_EVENTS_SHOWN = 8
HISTORY_READ = 500  # the store keeps this many signals
CALENDAR_DAYS = 14

T = TypeVar("T")

BENCHMARK_LABELS: Mapping[str, str] = {
    "erc_static": "Static ERC (shadow)",
    "buy_hold": "Buy-and-hold {equity} (shadow)",
}


@dataclass(frozen=True)
class OrderLine:
    """The latest state of one order the cycle planned, from the ledger."""

    session: str
    symbol: str
    side: str
    qty: str
    filled_qty: str
    filled_avg_price: str
    status: str
    client_order_id: str


@dataclass(frozen=True)
class AlertLine:
    created_at: str
    session: str
    kind: str
    severity: str
    summary: str


@dataclass(frozen=True)
class Held:
    """What the account holds now: weights at the last cycle's prices, and cash."""

    weights: Mapping[str, float]
    cash: float
    equity: Decimal
    priced_on: str


@dataclass(frozen=True)
class PortfolioView:
    """Everything one portfolio's section of the page shows (notes say why a panel is empty)."""

    name: str
    symbols: tuple[str, ...]
    strategy: str
    schedule: str
    status: Mapping[str, Any]
    halt: Mapping[str, Any] | None
    halt_events: tuple[AlertLine, ...]
    equity_lines: tuple[Line, ...]
    equity_summary: tuple[tuple[str, float], ...]
    regime_days: tuple[date, ...]
    regime_probs: Mapping[str, tuple[float, ...]]
    price_symbol: str
    price: tuple[tuple[date, float], ...]
    target: Mapping[str, float]
    held: Held | None
    risk: RealisedRisk | None
    orders: tuple[OrderLine, ...]
    alerts: tuple[AlertLine, ...]
    next_run: NextRun | None
    notes: Mapping[str, str] = field(default_factory=dict)
    # Forecast (today, by regime) and realised risk shares of the last signal and the holdings.
    attribution: RiskView | None = None


class _Notes:
    """Runs each source, keeping what failed as a note for its panel."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def read(self, panel: str, fn: Callable[[], T], default: T) -> T:
        try:
            return fn()
        except (RegimeTraderError, redis.RedisError, ValueError, KeyError) as e:
            self.notes[panel] = f"{panel} unavailable: {type(e).__name__}: {e}"
            return default


def portfolio_view(ctx: CycleContext) -> PortfolioView:
    """Read everything of ``ctx``'s portfolio the page shows (see the module docstring)."""
    p, store, notes = ctx.portfolio, ctx.store, _Notes()
    name = p.name
    status: dict[str, Any] = notes.read("status", lambda: store.status(name), {})
    halt = notes.read("halt", lambda: store.halted(name), None)
    history: list[dict[str, Any]] = notes.read(
        "regimes", lambda: store.history(name, HISTORY_READ), []
    )
    shadows = ShadowStore(store)
    ledger = notes.read("equity", lambda: shadows.ledger(name), None)
    points: list[ShadowPoint] = notes.read("equity", lambda: shadows.points(name), [])
    equities: list[PaperEquity] = notes.read("equity", lambda: shadows.paper_equity(name), [])
    alerts: list[Alert] = notes.read(
        "alerts",
        lambda: read_alerts(store.redis, namespace=store.ns, count=200, portfolio=name),
        [],
    )
    equity_symbol = ledger.equity_symbol if ledger else p.symbols[0]
    lines, summary = _equity(ledger, points, equities, equity_symbol)
    if ledger is None and "equity" not in notes.notes:
        notes.notes["equity"] = "the shadow benchmarks start with the first cycle that plans"
    days, probs = _regimes(history)
    if not probs and "regimes" not in notes.notes and not STRATEGIES[p.strategy].has_regimes:
        notes.notes["regimes"] = f"{p.strategy_label} has no regimes: it weighs on risk alone"
    closes = pd.DataFrame(
        [pt.closes for pt in points], index=pd.DatetimeIndex([pt.date for pt in points])
    )
    held = notes.read("weights", lambda: _held(ctx), None)
    risk = None
    if held is not None and len(closes) > 2:
        risk = notes.read(
            "risk", lambda: realised_risk(held.weights, closes.loc[:, list(p.symbols)]), None
        )
    elif "risk" not in notes.notes:
        notes.notes["risk"] = "needs the held weights and at least 3 stored closes"
    attribution = notes.read("attribution", lambda: _attribution(ctx, history, held, closes), None)
    if attribution is None and "attribution" not in notes.notes:
        notes.notes["attribution"] = "needs a ready signal or the held weights"
    return PortfolioView(
        name=name,
        symbols=tuple(p.symbols),
        strategy=p.strategy_label,
        schedule=f"{p.schedule_time:%H:%M} America/New_York on trading days",
        status=status,
        halt=halt,
        halt_events=tuple(_line(a) for a in alerts if a.kind in ("halted", "resumed"))[
            -HALT_EVENTS_SHOWN:
        ][::-1],
        equity_lines=lines,
        equity_summary=summary,
        regime_days=days,
        regime_probs=probs,
        price_symbol=equity_symbol,
        price=_price(closes, equity_symbol, days),
        target=dict(history[0]["weights"]) if history else {},
        held=held,
        risk=risk,
        orders=notes.read("orders", lambda: _orders(ctx), ()),
        alerts=tuple(_line(a) for a in alerts[-ALERTS_SHOWN:][::-1]),
        next_run=notes.read("next run", lambda: _next_run(ctx), None),
        notes=notes.notes,
        attribution=attribution,
    )


def _attribution(
    ctx: CycleContext,
    history: Sequence[Mapping[str, Any]],
    held: Held | None,
    closes: pd.DataFrame,
) -> RiskView | None:
    """Where the risk is: the last signal's forecast shares, by regime, and the held ones."""
    p = ctx.portfolio
    last = history[0] if history else {}
    returns = closes.loc[:, list(p.symbols)].pct_change() if len(closes) > 2 else None
    return risk_view(
        last.get("weights") or {},
        last.get("diagnostics") or {},
        held=None if held is None else held.weights,
        returns=returns,
        # The portfolio's table over the built-in one, as its alerts group the risk.
        asset_classes=p.asset_classes,
    )


def _price(
    closes: pd.DataFrame, symbol: str, days: Sequence[date]
) -> tuple[tuple[date, float], ...]:
    """``symbol``'s stored closes from the first day with regimes on (all without regimes)."""
    dates = [t.date() for t in pd.DatetimeIndex(closes.index)]
    column = closes[symbol].tolist() if symbol in closes else []
    return tuple(
        (d, float(v))
        for d, v in zip(dates[: len(column)], column, strict=True)
        if not days or d >= days[0]
    )


def _equity(
    ledger: ShadowLedger | None,
    points: Sequence[ShadowPoint],
    equities: Sequence[PaperEquity],
    equity_symbol: str,
) -> tuple[tuple[Line, ...], tuple[tuple[str, float], ...]]:
    """Returns since the shadow start: the paper account's and each benchmark's."""
    if ledger is None:
        return (), ()
    start = float(ledger.start_equity)
    paper = [
        (date.fromisoformat(e.session), float(e.equity) / start - 1.0)
        for e in equities
        if e.session >= ledger.start_session
    ]
    lines = [Line("paper", "Paper account", paper)]
    for benchmark in SHADOW_BENCHMARKS:
        path = [
            (date.fromisoformat(pt.date), pt.growth[benchmark] - 1.0)
            for pt in points
            if benchmark in pt.growth
        ]
        label = BENCHMARK_LABELS[benchmark].format(equity=equity_symbol)
        lines.append(Line(benchmark, label, path))
    summary = tuple((line.label, line.points[-1][1]) for line in lines if line.points)
    return tuple(lines), summary


def _regimes(
    history: Sequence[Mapping[str, Any]],
) -> tuple[tuple[date, ...], dict[str, tuple[float, ...]]]:
    """Filtered probabilities of the done cycles, oldest first, by regime label."""
    rows = [h for h in reversed(history) if h.get("regime_probs")]
    if not rows:
        return (), {}
    n = len(rows[-1]["regime_probs"])
    rows = [h for h in rows if len(h["regime_probs"]) == n]
    labels = regime_labels(n)
    days = tuple(date.fromisoformat(str(h["date"])) for h in rows)
    return days, {
        label: tuple(float(h["regime_probs"][k]) for h in rows) for k, label in enumerate(labels)
    }


def _held(ctx: CycleContext) -> Held | None:
    """Held weights from the broker's positions and cash, at the last cycle's planning prices."""
    store, name = ctx.store, ctx.portfolio.name
    sessions = store.sessions(name, 10)
    record = next(
        (r for s in reversed(sessions) if (r := store.cycle(name, s)) is not None and r.prices),
        None,
    )
    if record is None or record.prices is None:
        return None
    positions = ctx.broker.positions()
    account = ctx.broker.account()
    prices = record.prices
    values = {s: positions.get(s, Decimal(0)) * prices[s] for s in prices}
    equity = account.cash + sum(values.values(), Decimal(0))
    if equity <= 0:
        return None
    weights = {s: float(v / equity) for s, v in values.items()}
    return Held(weights, float(account.cash / equity), equity, record.session)


def _orders(ctx: CycleContext) -> tuple[OrderLine, ...]:
    """The latest ledger event of each recent order, newest first."""
    key = ctx.store.key(ctx.portfolio.name, "ledger")
    entries: list[Any] = ctx.store.redis.xrevrange(key, count=ORDERS_SHOWN * 6)  # type: ignore[assignment]
    seen: dict[str, OrderLine] = {}
    for _id, fields in entries:
        event = json.loads(fields["json"])
        coid = str(event.get("client_order_id", ""))
        if event.get("event") != "order" or coid in seen:
            continue
        seen[coid] = OrderLine(
            session=str(event.get("session", "")),
            symbol=str(event.get("symbol", "")),
            side=str(event.get("side", "")),
            qty=_rounded(event.get("qty")),
            filled_qty=_rounded(event.get("filled_qty")),
            filled_avg_price=_rounded(event.get("filled_avg_price"), "0.01"),
            status=str(event.get("status", "")),
            client_order_id=coid,
        )
        if len(seen) == ORDERS_SHOWN:
            break
    return tuple(seen.values())


def _rounded(value: object, quantum: str = "0.0001") -> str:
    """A decimal text rounded for reading (the ledger keeps full precision)."""
    if value in (None, ""):
        return ""
    return str(Decimal(str(value)).quantize(Decimal(quantum)).normalize())


def _next_run(ctx: CycleContext) -> NextRun | None:
    clock = ctx.broker.clock()
    today = clock.timestamp.astimezone(NEW_YORK).date()
    sessions = ctx.broker.calendar(today, today + timedelta(days=CALENDAR_DAYS))
    record = ctx.store.cycle(ctx.portfolio.name, today.isoformat())
    done = record is not None and record.finished
    return next_run(clock, sessions, ctx.portfolio.schedule_time, done_today=done)


def _line(alert: Alert) -> AlertLine:
    return AlertLine(alert.created_at, alert.session, alert.kind, alert.severity, alert.summary)

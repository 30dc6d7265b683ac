"""The account views: ``positions``, ``history`` and ``pnl``.

- ``positions``: what the broker holds now -- quantity, price, market value, weight of equity
  against the last done cycle's target -- and cash. Prices are the latest daily close the
  market data serves (today's partial bar during a session), as the cycle plans with.
- ``history``: one line per stored cycle (newest first): outcome or the step it stopped at,
  attempts, orders filled, regime and exposure, then one line per order with its fill. Cycle
  records are kept for the last ``cycles_max`` sessions (400) and at most 90 days.
- ``pnl``: the paper account's equity per session (as each cycle measured it when planning,
  before it traded) or per month, its profit and return, against the live shadow benchmarks
  (static ERC and buy-and-hold from the same first session:
  :mod:`regime_trader.service.shadow`) valued at the same bar.

Every view takes ``--json`` (full precision, one JSON document) and ``--portfolio``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from regime_trader.service.app import Service
from regime_trader.service.cycle_context import CycleContext
from regime_trader.service.cycle_record import CycleRecord
from regime_trader.service.display_cli import money, percent, quantity, signed_percent, table
from regime_trader.service.ops_common_cli import (
    ExitCode,
    add_portfolio_option,
    load_command_settings,
    portfolio_names,
)
from regime_trader.service.shadow import SHADOW_BENCHMARKS, ShadowStore

__all__ = [
    "add_history",
    "add_pnl",
    "add_positions",
    "history",
    "pnl",
    "pnl_table",
    "positions",
]

# Calendar days of bars asked for the latest close (a long weekend and a holiday fit).
PRICE_LOOKBACK_DAYS = 10
BENCHMARK_TITLES = {"erc_static": "static ERC", "buy_hold": "buy & hold"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_json(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)
    parser.add_argument("--json", action="store_true", help="JSON, full precision")


View = Callable[[Service, str], dict[str, Any]]
Text = Callable[[dict[str, Any]], str]


def _each(args: argparse.Namespace, build: View, render: Text) -> int:
    """Build each portfolio's document; print it as JSON or as text."""
    settings = load_command_settings(args)
    service = Service.create(settings)
    try:
        documents = [build(service, name) for name in portfolio_names(service, args.portfolio)]
        if args.json:
            print(json.dumps(documents if len(documents) != 1 else documents[0], indent=2))
        else:
            print("\n\n".join(render(doc) for doc in documents))
        return ExitCode.OK
    finally:
        service.close()


# ---------------------------------------------------------------------------------- positions


def add_positions(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)


def positions(args: argparse.Namespace) -> int:
    """Print every portfolio's holdings against its target, and its cash."""

    def build(service: Service, name: str) -> dict[str, Any]:
        return _positions(service.contexts[name], service.store.status(name))

    return _each(args, build, _positions_text)


def _positions(ctx: CycleContext, status: dict[str, Any]) -> dict[str, Any]:
    account = ctx.broker.account()
    held = ctx.broker.positions()
    day = ctx.broker.clock().timestamp.date()
    symbols = list(dict.fromkeys([*ctx.portfolio.symbols, *sorted(held)]))
    closes = ctx.bars.daily_closes(symbols, day - timedelta(days=PRICE_LOOKBACK_DAYS), day)
    last = closes.ffill().iloc[-1] if len(closes) else pd.Series(dtype=float)
    target = status.get("target_weights") or {}
    rows = []
    for symbol in symbols:
        qty = held.get(symbol, Decimal(0))
        close = last.get(symbol)
        price = None if close is None or pd.isna(close) else Decimal(repr(float(close)))
        value = None if price is None else qty * price
        rows.append(
            {
                "symbol": symbol,
                "qty": str(qty),
                "price": None if price is None else str(price),
                "market_value": None if value is None else str(value),
                "weight": None
                if value is None or not account.equity
                else float(value / account.equity),
                "target": target.get(symbol),
            }
        )
    target_cash = 1.0 - sum(float(w) for w in target.values()) if target else None
    return {
        "portfolio": ctx.portfolio.name,
        "equity": str(account.equity),
        "cash": str(account.cash),
        "cash_weight": float(account.cash / account.equity) if account.equity else None,
        "target_cash": target_cash,
        "target_session": status.get("last_session"),
        "prices_as_of": None if not len(closes) else str(closes.index[-1].date()),
        "positions": rows,
    }


def _positions_text(doc: dict[str, Any]) -> str:
    head = (
        f"{doc['portfolio']}: equity {money(doc['equity'])}, cash {money(doc['cash'])} "
        f"({percent(doc['cash_weight'])} of equity)"
    )
    if doc["target_session"]:
        head += f"; target of the {doc['target_session']} cycle"
    head += f"; prices: closes of {doc['prices_as_of'] or '-'}"
    rows = []
    for p in doc["positions"]:
        off = None if p["weight"] is None or p["target"] is None else p["weight"] - p["target"]
        rows.append(
            [
                p["symbol"],
                quantity(p["qty"]),
                money(p["price"]),
                money(p["market_value"]),
                percent(p["weight"]),
                percent(p["target"]),
                signed_percent(off),
            ]
        )
    cash_off = (
        None
        if doc["cash_weight"] is None or doc["target_cash"] is None
        else doc["cash_weight"] - doc["target_cash"]
    )
    rows.append(
        [
            "cash",
            "",
            "",
            money(doc["cash"]),
            percent(doc["cash_weight"]),
            percent(doc["target_cash"]),
            signed_percent(cash_off),
        ]
    )
    header = ["symbol", "quantity", "price", "market value", "weight", "target", "off target"]
    return "\n".join([head, *table(header, rows, indent="  ")])


# ---------------------------------------------------------------------------------- history


def add_history(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument(
        "--limit", type=_positive_int, default=20, help="how many sessions (default 20)"
    )


def history(args: argparse.Namespace) -> int:
    """Print the stored cycles, newest first, with their orders and fills."""

    def build(service: Service, name: str) -> dict[str, Any]:
        sessions = service.store.sessions(name, args.limit)[::-1]
        records = [r for s in sessions if (r := service.store.cycle(name, s)) is not None]
        return {"portfolio": name, "cycles": [_cycle_json(r) for r in records]}

    return _each(args, build, _history_text)


def _cycle_json(record: CycleRecord) -> dict[str, Any]:
    signal = record.signal
    return {
        "session": record.session,
        "outcome": None if record.outcome is None else str(record.outcome),
        "step": str(record.step),
        "attempts": record.attempts,
        "error": record.error,
        "regime": None if signal is None else signal.regime_label,
        "exposure": None if signal is None else signal.exposure,
        "equity": None if record.plan is None else str(record.plan.equity),
        "orders": [row.to_json() for row in record.orders.values()],
    }


def _history_text(doc: dict[str, Any]) -> str:
    name, cycles = doc["portfolio"], doc["cycles"]
    if not cycles:
        return f"{name}: no cycle stored yet"
    rows = []
    for c in cycles:
        orders = c["orders"]
        filled = sum(1 for o in orders if Decimal(o.get("filled_qty") or 0) > 0)
        rows.append(
            [
                c["session"],
                c["outcome"] or f"stopped at {c['step']}",
                str(c["attempts"]),
                f"{filled}/{len(orders)}",
                c["regime"] or "-",
                percent(c["exposure"]),
                money(c["equity"]),
            ]
        )
    header = ["session", "outcome", "attempts", "filled", "regime", "exposure", "equity"]
    lines = table(header, rows, indent="  ")
    out = [f"{name}: the last {len(cycles)} cycles, newest first", lines[0]]
    for line, c in zip(lines[1:], cycles, strict=True):
        out.append(line)
        out += [f"      {_order_line(o)}" for o in c["orders"]]
        if c["error"] and c["outcome"] is None:
            out.append(f"      {c['error']}")
    return "\n".join(out)


def _order_line(o: dict[str, Any]) -> str:
    filled, price = Decimal(o.get("filled_qty") or 0), o.get("filled_avg_price")
    fill = (
        f"filled {quantity(filled)} @ {money(price)}"
        if filled > 0 and price is not None
        else "not filled"
    )
    note = f" — {o['error']}" if o.get("error") else ""
    side = str(o["side"]).upper()
    return f"{side} {o['symbol']} {quantity(o['qty'])}, {fill} [{o['status']}]{note}"


# ---------------------------------------------------------------------------------- pnl


def add_pnl(parser: argparse.ArgumentParser) -> None:
    _add_json(parser)
    parser.add_argument(
        "--period",
        choices=("day", "month"),
        default="day",
        help="one row per session (default) or per calendar month",
    )
    parser.add_argument(
        "--limit", type=_positive_int, default=30, help="the last N rows (default 30)"
    )


@dataclass(frozen=True)
class PnlRow:
    """One session (or a month's last session) of the paper account against the shadows.

    ``growth`` maps each shadow benchmark to the value of 1 unit invested at the shadows' start,
    at the bar this session decided on (None before the books started or without a point).
    """

    period: str
    bar_date: str
    equity: Decimal
    pnl: Decimal | None
    period_return: float | None
    total_return: float
    growth: dict[str, float | None]

    def excess_over(self, benchmark: str) -> float | None:
        """The account's return since the start minus the benchmark's."""
        g = self.growth.get(benchmark)
        return None if g is None else self.total_return - (g - 1.0)

    def to_json(self, shadow_start: Decimal | None) -> dict[str, Any]:
        return {
            "period": self.period,
            "bar_date": self.bar_date,
            "equity": str(self.equity),
            "pnl": None if self.pnl is None else str(self.pnl),
            "return": self.period_return,
            "total_return": self.total_return,
            "benchmarks": {
                name: {
                    "value": None
                    if g is None or shadow_start is None
                    else str(shadow_start * Decimal(repr(g))),
                    "total_return": None if g is None else g - 1.0,
                }
                for name, g in self.growth.items()
            },
        }


@dataclass(frozen=True)
class PnlTable:
    """A portfolio's P&L rows (oldest first) and what they are measured from."""

    rows: list[PnlRow]
    start_equity: Decimal | None  # the first recorded session's equity
    shadow_start: Decimal | None  # the shadow books' starting equity (the same session's)


def pnl_table(service: Service, name: str, period: str) -> PnlTable:
    """The paper account's equity per ``period`` (``day`` or ``month``) against the shadows."""
    shadows = ShadowStore(service.store)
    paper = shadows.paper_equity(name)
    if not paper:
        return PnlTable([], None, None)
    ledger = shadows.ledger(name)
    growth = {p.date: p.growth for p in shadows.points(name)}
    start = paper[0].equity
    if period == "month":
        paper = list({entry.session[:7]: entry for entry in paper}.values())
    rows, previous = [], None
    for entry in paper:
        point = growth.get(entry.bar_date, {})
        rows.append(
            PnlRow(
                period=entry.session if period == "day" else entry.session[:7],
                bar_date=entry.bar_date,
                equity=entry.equity,
                pnl=None if previous is None else entry.equity - previous,
                period_return=None if previous is None else float(entry.equity / previous - 1),
                total_return=float(entry.equity / start - 1),
                growth={b: point.get(b) for b in SHADOW_BENCHMARKS},
            )
        )
        previous = entry.equity
    return PnlTable(rows, start, None if ledger is None else ledger.start_equity)


def pnl(args: argparse.Namespace) -> int:
    """Print equity and profit per day or month against the shadow benchmarks."""

    def build(service: Service, name: str) -> dict[str, Any]:
        found = pnl_table(service, name, args.period)
        return {
            "portfolio": name,
            "period": args.period,
            "start_equity": None if found.start_equity is None else str(found.start_equity),
            "rows": [r.to_json(found.shadow_start) for r in found.rows[-args.limit :]],
        }

    return _each(args, build, _pnl_text)


def _pnl_text(doc: dict[str, Any]) -> str:
    name, period, rows = doc["portfolio"], doc["period"], doc["rows"]
    if not rows:
        return f"{name}: no session's equity recorded yet (the first done cycle records it)"
    head = (
        f"{name}: paper equity per {period} as each cycle measured it before trading, from "
        f"{money(doc['start_equity'])}, against the shadow benchmarks from the same first session"
    )
    titles = [BENCHMARK_TITLES.get(b, b) for b in SHADOW_BENCHMARKS]
    header = [period, "equity", "P&L", "return", "since start"]
    header += [f"{t} since start" for t in titles] + ["excess over static ERC"]
    out = []
    for r in rows:
        bench = {b: r["benchmarks"][b]["total_return"] for b in SHADOW_BENCHMARKS}
        erc = bench.get("erc_static")
        out.append(
            [
                r["period"],
                money(r["equity"]),
                money(r["pnl"]),
                signed_percent(r["return"], 2),
                signed_percent(r["total_return"], 2),
                *(signed_percent(bench[b], 2) for b in SHADOW_BENCHMARKS),
                signed_percent(None if erc is None else r["total_return"] - erc, 2),
            ]
        )
    return "\n".join([head, *table(header, out, indent="  ")])

"""``regime-trader rebalance``: run today's cycle now, and say what it did, once.

What it prints, per portfolio: the cycle's one-line summary, the regime, the target against the
previous weights, one line per order (quantities rounded for reading), and the account's equity
and cash after the cycle; ``--json`` prints the same as one JSON object per portfolio with the
full precision the broker reported. The alert shown is the one of the session this command ran,
never an earlier session's.

A cycle held by another process's lock -- a runner that is still at work, or one that crashed
and whose lock has not expired yet -- is waited for, up to ``--wait-secs`` (default the lock's
TTL plus a margin): once the lock is released or expires, the cycle is run (or resumed where the
dead runner left it) and its result printed. If the lock is still held then, the command says
so and exits 75 (EX_TEMPFAIL): never 0 without a done cycle. The exit codes are in
:mod:`regime_trader.service.ops_cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from regime_trader.service.alert_channels import read_alerts
from regime_trader.service.alerts import Alert
from regime_trader.service.app import Service
from regime_trader.service.cycle import CycleOutcome
from regime_trader.service.cycle_record import Outcome
from regime_trader.service.display_cli import money, percent, quantity, signed_percent, table
from regime_trader.service.emulator.admin_client import EmulatorAdmin, minutes_after_open
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.ops_common_cli import (
    ExitCode,
    checked_service,
    load_command_settings,
    portfolio_names,
    worst,
)

__all__ = ["LOCK_WAIT_MARGIN_SECS", "add_rebalance", "exit_code", "rebalance", "session_alert"]

# Beyond the lock's TTL: a crashed runner's lock expires within the TTL; the margin covers the
# clock skew between Redis and us and the cycle's own first steps.
LOCK_WAIT_MARGIN_SECS = 15.0
# Redis is asked this often whether the lock is gone (a broker request would spend the budget).
LOCK_POLL_SECS = 0.25
# How many of the portfolio's latest alerts are searched for the session's own.
ALERT_SEARCH = 50

_DONE = (Outcome.REBALANCED, Outcome.NO_TRADE, Outcome.ALREADY_DONE)


def add_rebalance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portfolio", help="only this portfolio (default: all)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compute the signal and the orders, send nothing, store nothing",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per portfolio, full precision"
    )
    parser.add_argument(
        "--wait-secs",
        type=float,
        default=None,
        help="how long to wait for a cycle another process holds (default: the lock TTL, "
        f"RT_LOCK_TTL_SECS, plus {LOCK_WAIT_MARGIN_SECS:g} s; 0: do not wait)",
    )


def exit_code(outcome: CycleOutcome) -> ExitCode:
    """The exit code of one portfolio's attempt (see :mod:`~.ops_cli`)."""
    if outcome.outcome is Outcome.ALREADY_DONE and outcome.reason == Outcome.INTERRUPTED:
        return ExitCode.FAILED  # closed, but never traded: not a done cycle
    if outcome.outcome in _DONE:
        return ExitCode.OK
    return {
        Outcome.HALTED: ExitCode.HALTED,
        Outcome.NOT_DUE: ExitCode.MARKET_CLOSED,
        Outcome.LOCKED: ExitCode.LOCKED,
    }.get(outcome.outcome, ExitCode.FAILED)


def rebalance(args: argparse.Namespace) -> int:
    """Run today's cycle now (or show what it would do), and print what happened."""
    settings = load_command_settings(args)
    service = checked_service(settings)
    try:
        names = portfolio_names(service, args.portfolio)
        if service.emulator is not None:
            _next_simulated_session(service, names)
        if args.dry_run:
            from regime_trader.service.dry_run import describe_dry_run

            for name in names:
                print(describe_dry_run(service.contexts[name]))
            return ExitCode.OK
        wait = args.wait_secs
        if wait is None:
            wait = settings.lock_ttl_secs + LOCK_WAIT_MARGIN_SECS
        codes = []
        for name in names:
            began = datetime.now(UTC)
            outcome = run_waiting_for_lock(service, name, max(wait, 0.0), _say_waiting)
            code = exit_code(outcome)
            report = _Report(service, name, outcome, code, began, wait)
            print(report.json() if args.json else report.text(), flush=True)
            codes.append(code)
        return worst(codes)
    finally:
        service.close()


def _say_waiting(name: str, owner: str | None, wait_secs: float) -> None:
    print(
        f"{name}: another process holds this cycle ({owner or 'lock expiring'}); "
        f"waiting up to {wait_secs:g} s for it to finish or its lock to expire",
        file=sys.stderr,
        flush=True,
    )


def run_waiting_for_lock(
    service: Service,
    name: str,
    wait_secs: float,
    on_wait: Callable[[str, str | None, float], None] = lambda *_: None,
) -> CycleOutcome:
    """Run the cycle of ``name`` now; while another process holds it, wait and try again.

    The lock is watched in Redis (``LOCK_POLL_SECS`` apart), and the cycle is tried again only
    once it is gone: released by a runner that finished (the retry then finds the cycle done) or
    expired after a crash (the retry resumes the cycle from its stored step).

    Returns
    -------
    CycleOutcome
        The last attempt's; ``LOCKED`` only if the lock was still held after ``wait_secs``.
    """
    runner = service.runner(name)
    deadline = time.monotonic() + wait_secs
    outcome = runner.run(force=True)
    told = False
    while outcome.outcome is Outcome.LOCKED and time.monotonic() < deadline:
        owner = service.store.lock_owner(name)
        if not told:
            on_wait(name, owner, wait_secs)
            told = True
        while owner is not None and time.monotonic() < deadline:
            time.sleep(LOCK_POLL_SECS)
            owner = service.store.lock_owner(name)
        if owner is not None:
            break
        outcome = runner.run(force=True)
    return outcome


def session_alert(service: Service, name: str, session: str, since: datetime) -> Alert | None:
    """The latest alert of ``name`` for ``session``, preferring one sent since ``since``.

    An earlier alert of the same session (the cycle was done before this command) is shown
    when this run sent none; another session's alert never is.
    """
    alerts = [
        a
        for a in read_alerts(service.store.redis, count=ALERT_SEARCH, portfolio=name)
        if a.session == session
    ]
    recent = [a for a in alerts if datetime.fromisoformat(a.created_at) >= since]
    chosen = recent or alerts
    return chosen[-1] if chosen else None


class _Report:
    """What one portfolio's rebalance did: for people (:meth:`text`) and programs (:meth:`json`)."""

    def __init__(
        self,
        service: Service,
        name: str,
        outcome: CycleOutcome,
        code: ExitCode,
        began: datetime,
        wait_secs: float,
    ) -> None:
        self.name, self.outcome, self.code, self.wait_secs = name, outcome, code, wait_secs
        self.alert = None
        if outcome.session is not None and outcome.outcome is not Outcome.LOCKED:
            self.alert = session_alert(service, name, outcome.session, began)
        self.equity: Decimal | None = None
        self.cash: Decimal | None = None
        self.account_error = ""
        try:
            account = service.contexts[name].broker.account()
            self.equity, self.cash = account.equity, account.cash
        except RegimeTraderError as e:
            self.account_error = f"{type(e).__name__}: {e}"

    def json(self) -> str:
        o = self.outcome
        body: dict[str, Any] = {
            "portfolio": self.name,
            "session": o.session,
            "outcome": str(o.outcome),
            "reason": o.reason,
            "exit_code": int(self.code),
            "alert": None if self.alert is None else json.loads(self.alert.to_json()),
            "account": (
                {"error": self.account_error}
                if self.account_error
                else {"equity": str(self.equity), "cash": str(self.cash)}
            ),
        }
        return json.dumps(body)

    def text(self) -> str:
        o = self.outcome
        if o.outcome is Outcome.LOCKED:
            lines = [
                f"{self.name} {o.session}: locked — another process still held this cycle "
                f"after {self.wait_secs:g} s; nothing done here (exit {int(self.code)}: try again)"
            ]
        elif self.alert is None:
            lines = [
                f"{self.name} {o.session or ''}: {o.outcome}"
                + (f" — {o.reason}" if o.reason else "")
            ]
        else:
            lines = [self.alert.summary, *_alert_body(self.alert)]
        lines.append(self._account_line())
        return "\n".join(lines)

    def _account_line(self) -> str:
        if self.account_error:
            return f"  account: unavailable ({self.account_error})"
        share = (
            f" ({percent(self.cash / self.equity)} of equity)"
            if self.equity and self.cash is not None
            else ""
        )
        return f"  equity {money(self.equity)}, cash {money(self.cash)}{share}"


def _alert_body(alert: Alert) -> list[str]:
    """The alert's regime, weights and orders, one line each; its reason when it did not trade."""
    d = alert.details
    lines = []
    if d.get("regime") is not None:
        probs = d.get("regime_probs")
        shown = (
            ", ".join(f"{k} {percent(v, 0)}" for k, v in probs.items())
            if isinstance(probs, dict)
            else ""
        )
        lines.append(f"  regime {d['regime']}" + (f" ({shown})" if shown else ""))
    change = d.get("regime_change")
    if isinstance(change, dict):
        lines.append(f"  regime change: {change.get('from')} -> {change.get('to')}")
    target = _mapping(d.get("target_weights"))
    before = _mapping(d.get("previous_weights"))
    if target:
        rows = []
        for symbol in sorted(set(target) | set(before)):
            t, b = target.get(symbol, 0), before.get(symbol, 0 if before else None)
            delta = None if b is None else float(t) - float(b)
            rows.append([symbol, percent(t), percent(b), signed_percent(delta)])
        lines += table(["symbol", "target", "before", "change"], rows, indent="  ")
    orders = d.get("orders")
    for order in orders if isinstance(orders, list) else []:
        lines.append("  " + _order_line(order))
    if alert.kind not in ("rebalanced", "no_trade") and d.get("reason"):
        lines.append(f"  reason: {d['reason']}")
    return lines


def _mapping(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _order_line(o: Any) -> str:
    if not isinstance(o, dict):
        return str(o)
    line = f"{str(o.get('side', '?')).upper()} {o.get('symbol', '?')} {quantity(o.get('qty'))}"
    filled, price = o.get("filled_qty"), o.get("filled_avg_price")
    if filled is not None and Decimal(str(filled)) != 0:
        line += f", filled {quantity(filled)}"
        if price is not None:
            line += f" @ {money(price)} = {money(Decimal(str(filled)) * Decimal(str(price)))}"
    line += f" [{o.get('status', '?')}]"
    return line + (f" {o['error']}" if o.get("error") else "")


def _next_simulated_session(service: Service, names: list[str]) -> None:
    """Offline: bring the simulated market to the scheduled minute of a session not yet done.

    Each offline ``rebalance`` is then the next simulated trading day, as a user expects.
    """
    # Only called when the embedded emulator runs; this only narrows the type.
    assert service.emulator is not None  # nosec B101
    first = min(service.contexts[n].portfolio.schedule_time for n in names)
    minutes = minutes_after_open(first)
    with EmulatorAdmin(service.emulator.url) as clock:
        clock.to_schedule(minutes)
        session = clock.clock().session
        records = [service.store.cycle(name, str(session)) for name in names]
        if all(r is not None and r.finished for r in records):
            clock.next_session(minutes)

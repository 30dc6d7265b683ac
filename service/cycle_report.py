"""What a cycle tells people and dashboards: its alerts and its status fields, built here only.

:class:`regime_trader.service.cycle.CycleRunner` decides *when* to alert and *what* to store; this
module decides what an alert and a status update *say*, from the typed cycle record
(:mod:`regime_trader.service.cycle_record`). Every :class:`~regime_trader.service.alerts.Alert` of
a cycle is built by :func:`cycle_alert`, whose severity follows from the kind alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from regime_trader.service.alerts import Alert, AlertKind, Severity
from regime_trader.service.cycle_record import CycleRecord, OrderRow, Outcome, SignalSummary
from regime_trader.strategies.base import regime_labels
from regime_trader.strategies.risk_attribution import risk_sentence, signal_risk

# Alert details and status fields: JSON-serialisable values keyed by name (what the alert
# stream and the status hash hold; not part of the persisted cycle record).
Fields = dict[str, object]

__all__ = [
    "Fields",
    "cycle_alert",
    "done_alert",
    "done_details",
    "done_status",
    "interrupted_status",
    "labelled",
    "refusal_alert",
    "refusal_status",
    "restart_details",
    "risk_line",
    "summary_line",
]

# A done cycle informs; a refusal the operator may have chosen (halt, bad input) warns; a
# failure (broker, Redis, an interrupted cycle) is an error.
SEVERITY: Mapping[AlertKind, Severity] = {
    "rebalanced": "info",
    "no_trade": "info",
    "resumed": "info",
    "skipped": "warning",
    "halted": "warning",
    "failed": "error",
}


def cycle_alert(
    portfolio: str,
    session: str,
    kind: AlertKind,
    summary: str,
    details: Mapping[str, Any],
    severity: Severity | None = None,
) -> Alert:
    """The one constructor of the service's alerts; ``severity`` defaults to the kind's."""
    return Alert(
        portfolio=portfolio,
        session=session,
        kind=kind,
        severity=severity or SEVERITY[kind],
        summary=summary,
        details=dict(details),
    )


def refusal_alert(
    portfolio: str, session: str, outcome: Outcome, reason: str, **details: object
) -> Alert:
    """The alert of an attempt that did not trade (or of a cycle that was interrupted)."""
    kind: AlertKind = (
        "halted"
        if outcome is Outcome.HALTED
        else "failed"
        if outcome in (Outcome.FAILED, Outcome.INTERRUPTED)
        else "skipped"
    )
    body: dict[str, Any] = {"reason": reason, **(details or {"outcome": str(outcome)})}
    return cycle_alert(portfolio, session, kind, f"{portfolio} {session}: {reason}", body)


def labelled(probs: Sequence[float] | None) -> dict[str, float] | None:
    """Filtered probabilities keyed by regime name, for people and dashboards."""
    return None if not probs else dict(zip(regime_labels(len(probs)), probs, strict=True))


def _rows(record: CycleRecord) -> list[object]:
    return [row.to_json() for row in record.orders.values()]


def risk_line(
    signal: SignalSummary | None, asset_classes: Mapping[str, str] | None = None
) -> str | None:
    """Where today's forecast risk is, and where it would be in stress; None without the data.

    E.g. "34% of today's risk is in SPXTR (equities); in stress it would be 52%" (see
    :func:`~regime_trader.strategies.risk_attribution.risk_sentence`): a regime strategy's
    signal gives both parts, a reference strategy's the first, a signal in cash neither.
    ``asset_classes`` is the portfolio's own table, over the built-in one
    (:func:`~regime_trader.strategies.risk_attribution.asset_class`).
    """
    if signal is None or not signal.ready:
        return None
    risk = signal_risk(signal.weights, signal.diagnostics)
    return None if risk is None else risk_sentence(risk, asset_classes)


def done_details(
    record: CycleRecord,
    reason: str,
    previous_regime: str | None,
    asset_classes: Mapping[str, str] | None = None,
) -> Fields:
    """The details of a done cycle's alert (see :class:`~regime_trader.service.alerts.Alert`).

    ``asset_classes``: the portfolio's own table, which groups the risk sentence.
    """
    signal, plan = record.signal, record.plan
    regime = None if signal is None else signal.regime_label
    return {
        "regime": regime,
        "regime_probs": labelled(None if signal is None else signal.regime_probs),
        "regime_change": (
            {"from": previous_regime, "to": regime}
            if previous_regime and previous_regime != regime
            else None
        ),
        "target_weights": None if signal is None else dict(signal.weights),
        "previous_weights": (
            None if plan is None else {s: str(w) for s, w in plan.current_weights.items()}
        ),
        "orders": _rows(record),
        "reason": reason,
        "equity": None if plan is None else str(plan.equity),
        "exposure": None if signal is None else signal.diagnostics.get("exposure"),
        "risk": risk_line(signal, asset_classes),
        "bar_date": None if signal is None else signal.date,
        "data_notes": [] if signal is None else list(signal.data_notes or ()),
    }


def restart_details(record: CycleRecord, asset_classes: Mapping[str, str] | None = None) -> Fields:
    """The details of a done cycle's alert sent by a later run (its first run crashed)."""
    signal = record.signal
    return {
        "reason": "alert sent after a restart",
        "regime": None if signal is None else signal.regime_label,
        "target_weights": None if signal is None else dict(signal.weights),
        "risk": risk_line(signal, asset_classes),
        "orders": _rows(record),
        "data_notes": [] if signal is None else list(signal.data_notes or ()),
    }


def done_alert(record: CycleRecord, details: Fields) -> Alert:
    """The alert of a done cycle: rebalanced, or no trade and why."""
    kind: AlertKind = "rebalanced" if record.outcome is Outcome.REBALANCED else "no_trade"
    signal = record.signal
    line = summary_line(
        record.portfolio,
        record.session,
        kind,
        regime=None if signal is None else signal.regime_label,
        orders=record.orders.values(),
        reason=str(details.get("reason") or ""),
        data_notes=() if signal is None else signal.data_notes or (),
    )
    return cycle_alert(record.portfolio, record.session, kind, line, details)


def summary_line(
    name: str,
    session: str,
    kind: AlertKind,
    *,
    regime: str | None,
    orders: Sequence[OrderRow] | Any,
    reason: str = "",
    data_notes: Sequence[str] = (),
) -> str:
    """The one line people read: what happened, the regime and the data notes."""
    n = len([o for o in orders if o.status != "skipped"])
    # Re-adjusted history and carried bars are said in the one line people read.
    notes = "".join(f"; {note}" for note in data_notes)
    # A strategy without regimes (static ERC) or a cycle without a signal names none.
    label = f", regime {regime}" if regime else ""
    if kind == "rebalanced":
        return f"{name} {session}: rebalanced with {n} orders{label}{notes}"
    return f"{name} {session}: no trade ({reason or 'within bands'}){label}{notes}"


def done_status(outcome: Outcome, record: CycleRecord) -> Fields:
    """The status fields a done cycle sets (``/status``, the dashboard, ``status`` command)."""
    signal, plan = record.signal, record.plan
    return {
        "last_outcome": str(outcome),
        "last_reason": "",  # a done cycle clears the previous refusal
        "last_session": record.session,
        "last_success_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "regime": None if signal is None else signal.regime_label,
        "regime_probs": labelled(None if signal is None else signal.regime_probs),
        "target_weights": None if signal is None else dict(signal.weights),
        "equity": None if plan is None else str(plan.equity),
        "orders": len(record.orders),
    }


def refusal_status(outcome: Outcome, reason: str, session: str) -> Fields:
    """The status fields of an attempt that did not trade."""
    return {"last_outcome": str(outcome), "last_reason": reason, "last_attempt_session": session}


def interrupted_status(reason: str) -> Fields:
    """The status fields of a cycle closed as interrupted after its session."""
    return {"last_outcome": str(Outcome.INTERRUPTED), "last_reason": reason}

"""A cycle alert: what one cycle did, as a validated record, JSON and plain text.

One alert per cycle (and per operator halt or resume). Where alerts go -- the Redis stream, the
pub/sub channel, the user's notifiers -- and how they are read back is
:mod:`regime_trader.service.alert_channels`; which alert a cycle sends is
:mod:`regime_trader.service.cycle_report`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from regime_trader.service.exceptions import InvalidInputError

__all__ = ["Alert", "AlertKind", "Severity"]

AlertKind = Literal["rebalanced", "no_trade", "skipped", "failed", "halted", "resumed"]
Severity = Literal["info", "warning", "error"]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Alert:
    """What one cycle did, for people (:meth:`to_text`) and programs (:meth:`to_json`).

    Parameters
    ----------
    portfolio, session : str
        Portfolio name; trading session as YYYY-MM-DD.
    kind : {"rebalanced", "no_trade", "skipped", "failed", "halted", "resumed"}
    severity : {"info", "warning", "error"}
    summary : str
        One line, used as the notification title.
    details : dict
        JSON-serialisable; the cycle fills ``regime``, ``regime_probs``, ``regime_change``
        (``{"from", "to"}`` or None), ``target_weights``, ``previous_weights``, ``orders``
        (``symbol, side, qty, client_order_id, status, filled_qty, filled_avg_price``),
        ``reason``, ``equity`` and ``risk`` (one sentence: where today's forecast risk is and
        where it would be in stress). Every key is optional for :meth:`to_text`.
    created_at : str
        ISO-8601 UTC time; now by default.

    Raises
    ------
    ValueError
        If a field is out of its domain; the message names the field and quotes the value.
    """

    portfolio: str
    session: str
    kind: AlertKind
    severity: Severity
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        if self.kind not in get_args(AlertKind):
            raise ValueError(f"Alert.kind must be one of {get_args(AlertKind)}, got {self.kind!r}")
        if self.severity not in get_args(Severity):
            raise ValueError(
                f"Alert.severity must be one of {get_args(Severity)}, got {self.severity!r}"
            )
        try:
            date.fromisoformat(self.session)
            datetime.fromisoformat(self.created_at)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Alert.session/created_at must be ISO dates: {e}") from e
        # A summary built from an exception message may span lines; a title cannot.
        one_line = " ".join(str(self.summary).split()) or f"{self.portfolio} {self.session}"
        object.__setattr__(self, "summary", one_line)

    def to_json(self) -> str:
        """Return the alert as one JSON object (the stream and pub/sub payload).

        Values JSON cannot hold (``Decimal``, ``datetime``) become strings rather than failing a
        cycle whose orders are already sent.
        """
        return json.dumps(asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str | bytes) -> Alert:
        """Parse :meth:`to_json` output.

        Raises
        ------
        InvalidInputError
            If ``text`` is not such an object; the message names the problem.
        """
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"not an alert: {e}") from e

    def to_text(self) -> str:
        """Render the alert for people: title, regime, weights table, orders or reason.

        Plain text (no markup: it reads the same in e-mail, Slack and Telegram). Numbers may be
        numbers or numeric strings (the cycle keeps Decimals as strings); anything missing or
        odd is skipped or shown as given, never raised.
        """
        d = self.details
        lines = [f"[{self.kind}] {self.portfolio} {self.session} ({self.severity})", self.summary]
        if d.get("profile"):
            lines.append(f"Trades: {d['profile']}")
        probs = d.get("regime_probs")
        if isinstance(probs, list):
            probs = dict(enumerate(probs))
        if d.get("regime") is not None or probs:
            shown = ", ".join(f"{k} {_fmt(v, '.2f')}" for k, v in _items(probs))
            lines.append(f"Regime: {d.get('regime', '?')}" + (f" ({shown})" if shown else ""))
        change = d.get("regime_change")
        if isinstance(change, dict):
            lines.append(f"Regime change: {change.get('from')} -> {change.get('to')}")
        target, prev = (
            dict(_items(d.get("target_weights"))),
            dict(_items(d.get("previous_weights"))),
        )
        if target or prev:
            lines.append(f"{'Weights':<10}{'target':>9}{'previous':>10}{'change':>9}")
            for sym in sorted(set(target) | set(prev)):
                # A symbol absent from a non-empty weights dict is held at 0.
                tw, pw = target.get(sym, 0 if target else None), prev.get(sym, 0 if prev else None)
                t, p = _float(tw), _float(pw)
                delta = t - p if t is not None and p is not None else None
                row = f"  {sym:<8}{_pct(tw):>9}{_pct(pw):>10}"
                lines.append(row + f"{_pct(delta, '+.1f'):>9}")
        orders = d.get("orders")
        if isinstance(orders, list) and orders:
            lines += ["Orders:", *(f"  {_order_line(o)}" for o in orders)]
        elif self.kind == "rebalanced":
            lines.append("Orders: none")
        if d.get("risk"):
            lines.append(f"Risk: {d['risk']}")
        if d.get("reason"):
            lines.append(f"Reason: {d['reason']}")
        if d.get("equity") is not None:
            lines.append(f"Equity: ${_fmt(d['equity'], ',.2f')}")
        return "\n".join(lines)


def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float | str):
        return None
    try:
        return float(x)
    except ValueError:
        return None


def _fmt(x: Any, spec: str) -> str:
    value = _float(x)
    return str(x) if value is None else format(value, spec)


def _pct(x: Any, spec: str = ".1f") -> str:
    value = _float(x)
    return ("-" if x is None else str(x)) if value is None else format(100 * value, spec) + "%"


def _items(mapping: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in mapping.items()] if isinstance(mapping, dict) else []


def _order_line(o: Any) -> str:
    if not isinstance(o, dict):
        return str(o)
    line = f"{str(o.get('side', '?')).upper()} {o.get('symbol', '?')} qty {o.get('qty', '?')}"
    if o.get("filled_qty") is not None:
        line += f", filled {o['filled_qty']}"
        if _float(o.get("filled_avg_price")) is not None:
            line += f" @ {_fmt(o['filled_avg_price'], ',.2f')}"
    line += f" [{o.get('status', '?')}]"
    return line + (f" id={o['client_order_id']}" if o.get("client_order_id") else "")

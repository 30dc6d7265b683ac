"""Cycle alerts: one per cycle, to a Redis stream, a pub/sub channel and the user's notifiers.

* ``{ns}:alerts`` -- stream, the durable history (``XADD MAXLEN ~``, field ``json``), read by
  :func:`read_alerts` and :func:`follow_alerts` (``regime-trader alerts [--follow]``);
* ``{ns}:alerts:live`` -- pub/sub for whoever listens right now;
* notifier URLs -- apprise (``slack://``, ``discord://``, ``tgram://``, ``mailtos://``, a
  ``json://`` webhook): title = summary, body = :meth:`Alert.to_text`.

Like freqtrade's RPC manager, every channel is isolated: each notifier is its own
``apprise.Apprise`` in its own thread against one shared deadline, the stream and pub/sub have
their own ``try``, and :meth:`AlertPublisher.publish` never raises -- a failed alert must not
fail a cycle whose orders are already at the broker. Failures come back in
:class:`PublishReport` and in the log, where a notifier is named by scheme and network host only
(:func:`channel_label`): the rest of such a URL is a token.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qsl, unquote

import apprise
from redis import Redis
from redis.exceptions import RedisError

from regime_trader.service.exceptions import InvalidInputError
from regime_trader.service.logs import get_logger, redact_value, redactor

__all__ = [
    "Alert",
    "AlertKind",
    "AlertPublisher",
    "PublishReport",
    "Severity",
    "channel_label",
    "follow_alerts",
    "notifier_url_secrets",
    "read_alerts",
]

AlertKind = Literal["rebalanced", "no_trade", "skipped", "failed", "halted", "resumed"]
Severity = Literal["info", "warning", "error"]

_log = get_logger(__name__)
# How long past notify_timeout_secs we wait for apprise to report its own timeout.
_GRACE_SECS = 1.0
_HOSTNAME = re.compile(r"^(localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?$")
_NOTIFY_TYPES = {"info": "info", "warning": "warning", "error": "failure"}


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _identity(text: str) -> str:
    return text


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
        ``reason`` and ``equity``. Every key is optional for :meth:`to_text`.
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


@dataclass(frozen=True)
class PublishReport:
    """Outcome of :meth:`AlertPublisher.publish`: the stream entry id (None if XADD failed),
    the channels that took the alert (``"stream"``, ``"pubsub"``, notifier labels) and, for the
    others, channel -> error (redacted; a class name or apprise's message, never a URL token).
    """

    stream_id: str | None
    delivered: tuple[str, ...]
    failed: dict[str, str]


def channel_label(url: str) -> str:
    """Name a notifier URL by scheme and network host only, e.g. ``json://hooks.example:8443``.

    The host is shown only when it looks like a hostname or IP address: in ``tgram://``,
    ``slack://`` and ``discord://`` URLs the "host" is the bot token or webhook id, so it
    becomes ``***``. Credentials, path and query are never shown.
    """
    scheme, _, rest = url.partition("://")
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    return f"{scheme or '?'}://{host if _HOSTNAME.match(host) else '***'}"


def notifier_url_secrets(url: str) -> list[str]:
    """Return the parts of a notifier URL that may be secret, for
    :func:`regime_trader.service.logs.redactor`.

    The whole URL, user and password, a host that is not a hostname, every path segment and
    every query value. Pass them to ``configure_logging(secrets=...)`` so a library logging the
    URL cannot leak it either.
    """
    _, _, rest = url.partition("://")
    netloc, _, path_query = rest.partition("/") if "/" in rest else (rest, "", "")
    userinfo, _, host = netloc.rpartition("@")
    parts = [url, *userinfo.split(":"), *(() if _HOSTNAME.match(host) else (host,))]
    path, _, query = path_query.partition("?")
    parts += [unquote(seg) for seg in path.split("/")]
    parts += [value for _, value in parse_qsl(query)]
    return [p for p in parts if p]


@dataclass
class _Notifier:
    label: str
    apobj: apprise.Apprise
    redact_url: Callable[[str], str]


class AlertPublisher:
    """Publish alerts to the stream, the live channel and every configured notifier.

    Parameters
    ----------
    redis : redis.Redis
        Client for the stream and the pub/sub channel.
    namespace : str, default "rt"
        Key prefix: stream ``{namespace}:alerts``, channel ``{namespace}:alerts:live``.
    notifier_urls : sequence of str
        apprise URLs; each becomes its own channel.
    stream_maxlen : int, default 10_000
        Approximate cap of the stream (Redis trims whole nodes, so it may hold a node more).
    redact : callable, default identity
        Applied to every string that leaves the process (see
        :func:`regime_trader.service.logs.redactor`).
    notify_timeout_secs : float, default 10.0
        Deadline shared by all notifiers of one publish (they run in parallel), passed to
        apprise and capping its socket timeouts; publish waits at most 1 s longer.

    Raises
    ------
    InvalidInputError
        If a notifier URL is not understood by apprise (named by :func:`channel_label`): a typo
        in a webhook should stop start-up, not silently drop every alert.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str = "rt",
        notifier_urls: Sequence[str] = (),
        stream_maxlen: int = 10_000,
        redact: Callable[[str], str] = _identity,
        notify_timeout_secs: float = 10.0,
    ) -> None:
        if stream_maxlen < 1 or notify_timeout_secs <= 0:
            raise ValueError(
                f"need stream_maxlen >= 1 and notify_timeout_secs > 0, got "
                f"{stream_maxlen!r} and {notify_timeout_secs!r}"
            )
        self._redis = redis
        self.stream_key = f"{namespace}:alerts"
        self.channel = f"{namespace}:alerts:live"
        self._maxlen = stream_maxlen
        self._redact = redact
        self._timeout = notify_timeout_secs
        self._notifiers: list[_Notifier] = []
        for url in notifier_urls:
            label = channel_label(url)
            if any(n.label == label for n in self._notifiers):
                label = f"{label}#{len(self._notifiers) + 1}"
            apobj = apprise.Apprise()
            if not apobj.add(url):
                raise InvalidInputError(f"notifier URL {label} is not a valid apprise URL")
            for service in apobj:  # no socket outliving the deadline by much
                service.socket_connect_timeout = min(service.socket_connect_timeout, self._timeout)
                service.socket_read_timeout = min(service.socket_read_timeout, self._timeout)
            self._notifiers.append(_Notifier(label, apobj, redactor(notifier_url_secrets(url))))

    def publish(self, alert: Alert) -> PublishReport:
        """Send ``alert`` to every channel; never raises.

        Returns
        -------
        PublishReport
            Which channels took it and why the others did not.
        """
        # Redact the free-text fields (keeps the JSON valid), then the final text as well.
        safe = replace(
            alert,
            summary=self._redact(alert.summary),
            details=redact_value(alert.details, self._redact),
        )
        payload = self._redact(safe.to_json())
        delivered: list[str] = []
        failed: dict[str, str] = {}
        stream_id: str | None = None
        try:
            raw_id = self._redis.xadd(
                self.stream_key, {"json": payload}, maxlen=self._maxlen, approximate=True
            )
            stream_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            delivered.append("stream")
        except (RedisError, OSError) as e:
            failed["stream"] = type(e).__name__ + ": " + self._redact(str(e))
        try:
            self._redis.publish(self.channel, payload)
            delivered.append("pubsub")
        except (RedisError, OSError) as e:
            failed["pubsub"] = type(e).__name__ + ": " + self._redact(str(e))

        title, body = self._redact(safe.summary), self._redact(safe.to_text())
        results: dict[str, str | None] = {}
        threads = [
            threading.Thread(
                target=self._notify_one,
                args=(n, title, body, safe.severity, results),
                name=f"notify-{n.label}",
                daemon=True,
            )
            for n in self._notifiers
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + self._timeout + _GRACE_SECS
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for n in self._notifiers:
            # A thread still running past the deadline is abandoned (daemon), reported here.
            error = results.get(n.label, f"no answer within {self._timeout:g}s")
            if error is None:
                delivered.append(n.label)
            else:
                failed[n.label] = self._redact(n.redact_url(error))

        log = _log.bind(portfolio=safe.portfolio, session=safe.session, kind=safe.kind)
        for channel, error in failed.items():
            log.warning("alert_channel_failed", channel=channel, error=error)
        log.info("alert_published", stream_id=stream_id, delivered=delivered, failed=sorted(failed))
        return PublishReport(stream_id=stream_id, delivered=tuple(delivered), failed=failed)

    def _notify_one(
        self, n: _Notifier, title: str, body: str, severity: str, out: dict[str, str | None]
    ) -> None:
        try:
            result = n.apobj.notify(
                body=body,
                title=title,
                notify_type=_NOTIFY_TYPES[severity],
                body_format=apprise.NotifyFormat.TEXT,
                timeout=self._timeout,
            )
            if result:
                out[n.label] = None
                return
            messages = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
            out[n.label] = f"{result.status.name.lower()}: " + ("; ".join(messages) or "no detail")
        except Exception as e:  # one notifier's bug must not reach the cycle
            out[n.label] = f"{type(e).__name__}: {e}"


def _decode(fields: Any) -> Alert | None:
    raw = fields.get(b"json", fields.get("json")) if isinstance(fields, dict) else None
    try:
        return Alert.from_json(raw) if raw is not None else None
    except InvalidInputError as e:
        _log.warning("alert_entry_unreadable", error=str(e))
        return None


def read_alerts(
    redis: Redis, *, namespace: str = "rt", count: int = 20, portfolio: str | None = None
) -> list[Alert]:
    """Return up to ``count`` most recent alerts (of ``portfolio`` if given), newest last.

    Unreadable entries are skipped with a warning.
    """
    key, upper = f"{namespace}:alerts", "+"
    found: list[Alert] = []
    while len(found) < count:
        # redis-py types replies as optional unions; XREVRANGE always answers a list.
        batch: list[Any] = cast(
            list[Any], redis.xrevrange(key, max=upper, min="-", count=max(count, 100))
        )
        for _entry_id, fields in batch:
            alert = _decode(fields)
            if alert is not None and (portfolio is None or alert.portfolio == portfolio):
                found.append(alert)
                if len(found) == count:
                    break
        if len(batch) < max(count, 100):
            break
        last = batch[-1][0]
        upper = "(" + (last.decode() if isinstance(last, bytes) else last)
    return found[::-1]


def follow_alerts(
    redis: Redis, *, namespace: str = "rt", block_ms: int = 1000, stop: Callable[[], bool]
) -> Iterator[Alert]:
    """Yield alerts added after the call, as they arrive, until ``stop()`` returns True.

    ``stop`` is checked at least every ``block_ms`` milliseconds (``XREAD BLOCK`` from ``$``).
    """
    key, last = f"{namespace}:alerts", "$"
    while not stop():
        response: Any = redis.xread({key: last}, count=100, block=block_ms) or []
        streams = response.items() if isinstance(response, dict) else response
        for _key, entries in streams:
            for entry_id, fields in entries:
                last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                alert = _decode(fields)
                if alert is not None:
                    yield alert

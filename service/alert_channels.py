"""Where alerts go and how they are read back: a Redis stream, pub/sub, the user's notifiers.

* ``{ns}:alerts`` -- stream, the durable history (``XADD MAXLEN ~``, field ``json``), read by
  :func:`read_alerts` and :func:`follow_alerts` (``regime-trader alerts [--follow]``);
* ``{ns}:alerts:live`` -- pub/sub for whoever listens right now;
* notifier URLs -- apprise (``slack://``, ``discord://``, ``tgram://``, ``mailtos://``, a
  ``json://`` webhook): title = summary, body = :meth:`~regime_trader.service.alerts.Alert.to_text`.

Like freqtrade's RPC manager, every channel is isolated: each notifier is its own
``apprise.Apprise`` in its own thread against one shared deadline, the stream and pub/sub have
their own ``try``, and :meth:`AlertPublisher.publish` never raises -- a failed alert must not
fail a cycle whose orders are already at the broker. Failures come back in
:class:`PublishReport` and in the log, where a notifier is named by scheme and network host only
(:func:`channel_label`): the rest of such a URL is a token.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, unquote

from redis import Redis
from redis.exceptions import RedisError

from regime_trader.service.alerts import Alert
from regime_trader.service.exceptions import InvalidInputError
from regime_trader.service.logs import get_logger, redact_value, redactor

if TYPE_CHECKING:
    import apprise

__all__ = [
    "AlertPublisher",
    "PublishReport",
    "channel_label",
    "follow_alerts",
    "notifier_url_secrets",
    "read_alerts",
]

_log = get_logger(__name__)
# How long past notify_timeout_secs we wait for apprise to report its own timeout.
_GRACE_SECS = 1.0
_HOSTNAME = re.compile(r"^(localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?$")
_NOTIFY_TYPES = {"info": "info", "warning": "warning", "error": "failure"}


def _identity(text: str) -> str:
    return text


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
    trades : mapping of str to str, optional
        What each portfolio trades (its profile and version), stamped on every alert of that
        portfolio as ``details["profile"]`` unless the alert names one: whoever builds an alert
        (a cycle, an operator command, the dashboard), the reader sees what was traded.

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
        trades: Mapping[str, str] | None = None,
    ) -> None:
        self._trades = dict(trades or {})
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
        if notifier_urls:  # apprise and its plugins only for a service that notifies
            import apprise
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
        details = alert.details
        if alert.portfolio in self._trades and "profile" not in details:
            details = {**details, "profile": self._trades[alert.portfolio]}
        # Redact the free-text fields (keeps the JSON valid), then the final text as well.
        safe = replace(
            alert,
            summary=self._redact(alert.summary),
            details=redact_value(details, self._redact),
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
        import apprise  # already imported: this notifier was built with it

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

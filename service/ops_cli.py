"""Operator commands: ``run``, ``rebalance``, ``status``, ``halt``, ``resume``, ``alerts``."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from regime_trader.service.alert_channels import follow_alerts, read_alerts
from regime_trader.service.alerts import Alert, AlertKind
from regime_trader.service.app import Service
from regime_trader.service.config import ConfigError, Settings, load_settings
from regime_trader.service.cycle_report import cycle_alert
from regime_trader.service.emulator.admin_client import EmulatorAdmin, minutes_after_open
from regime_trader.service.exceptions import OperationalError, RegimeTraderError
from regime_trader.service.http import build_http_app, start_http_server
from regime_trader.service.logs import configure_logging, get_logger, redactor

__all__ = ["COMMANDS", "run_with_step_hook"]

log = get_logger(__name__)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    fmt = getattr(args, "log_format", None) or settings.log_format
    configure_logging(settings.log_level, fmt, settings.secret_values(), stream=sys.stderr)
    # APScheduler logs every job run at INFO: with a wake-up every few seconds that drowns
    # the cycle's own lines. Its warnings (missed jobs) still come through.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def _portfolio_names(service: Service, wanted: str | None) -> list[str]:
    if wanted is None:
        return list(service.contexts)
    if wanted not in service.contexts:
        raise ConfigError(f"unknown portfolio {wanted!r}; configured: {sorted(service.contexts)}")
    return [wanted]


def _checked_service(settings: Settings) -> Service:
    """The service, once every portfolio symbol passed the broker's asset check.

    An unknown, inactive or non-tradable symbol (ConfigError, exit 2) or a broker that cannot
    be asked (exit 1) ends the command here, before any order. ``run`` checks after it
    listens, and carries on through a broker outage (see :func:`run`).
    """
    service = Service.create(settings)
    try:
        service.check_symbols()
    except BaseException:
        service.close()
        raise
    return service


# ---------------------------------------------------------------------------------- run


def add_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wake-interval-secs",
        type=float,
        default=None,
        help="how often to ask the broker whether a cycle is due "
        "(default 300; RT_WAKE_INTERVAL_SECS)",
    )
    parser.add_argument(
        "--demo-secs-per-session",
        type=float,
        default=None,
        help="embedded emulator only: simulated sessions advance every N seconds "
        "(default 30; 0 freezes the simulated clock)",
    )


def _listen(service: Service, settings: Settings, redact: Callable[[str], str]) -> Any:
    app = build_http_app(
        status=service.status, readiness=service.readiness, metrics=service.metrics, redact=redact
    )
    return start_http_server(app, settings.http_host, settings.http_port)


def run(args: argparse.Namespace, *, step_hook: Callable[[str], None] | None = None) -> int:
    """Trade every session on schedule until SIGTERM/SIGINT; serve health, metrics, status.

    ``step_hook`` is called at every step boundary of every cycle (see
    :func:`run_with_step_hook`); the console script never passes one.
    """
    from regime_trader.service.scheduler import CycleScheduler  # APScheduler only for this command

    settings = _settings(args)
    service = Service.create(settings)
    redact = redactor(settings.secret_values())
    try:
        http = _listen(service, settings, redact)
    except OSError as e:
        service.close()
        where = f"{settings.http_host}:{settings.http_port}"
        raise ConfigError(f"RT_HTTP_HOST/RT_HTTP_PORT={where}: cannot listen ({e})") from None
    try:
        service.check_symbols()
    except OperationalError as e:
        # A long-running service outlives a broker outage at start-up: the cycles cannot
        # trade while it lasts, alert about it, and look every symbol up again when planning
        # (an unknown one is refused there).
        log.error("could not check the symbols at start-up", error=str(e))
    except BaseException:
        http.stop()
        service.close()
        raise
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    wake = args.wake_interval_secs or settings.wake_interval_secs
    demo = args.demo_secs_per_session if args.demo_secs_per_session is not None else 30.0
    scheduler = CycleScheduler(
        service,
        stop=stop,
        wake_interval_secs=wake,
        misfire_grace_secs=settings.misfire_grace_secs,
        demo_secs_per_session=demo or None,
        step_hook=step_hook,
    ).start()
    log.info(
        "regime-trader running",
        http=http.url,
        portfolios=list(service.contexts),
        broker=service.status()["broker"],
    )
    print(
        f"regime-trader running: health {http.url}/healthz, status {http.url}/status",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    log.info("stopping: waiting for a running cycle to reach a step boundary")
    scheduler.shutdown()
    http.stop()
    service.close()
    return 0


# ---------------------------------------------------------------------------------- rebalance


def add_rebalance(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portfolio", help="only this portfolio (default: all)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compute the signal and the orders, send nothing, store nothing",
    )


def rebalance(args: argparse.Namespace) -> int:
    """Run today's cycle now (or show what it would do), and print what happened."""
    settings = _settings(args)
    service = _checked_service(settings)
    try:
        names = _portfolio_names(service, args.portfolio)
        if service.emulator is not None:
            _next_simulated_session(service, names)
        if args.dry_run:
            from regime_trader.service.dry_run import describe_dry_run

            for name in names:
                print(describe_dry_run(service.contexts[name]))
            return 0
        failed = False
        for name in names:
            outcome = service.runner(name).run(force=True)
            print(
                f"{name} {outcome.session}: {outcome.outcome}"
                + (f" — {outcome.reason}" if outcome.reason else "")
            )
            for alert in read_alerts(service.store.redis, count=1, portfolio=name):
                print(alert.to_text())
            failed |= outcome.outcome in ("failed", "refused", "lost_lock")
        return 1 if failed else 0
    finally:
        service.close()


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


# ---------------------------------------------------------------------------------- status etc.


def add_portfolio_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portfolio", help="only this portfolio (default: all)")


def status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    service = Service.create(settings)
    try:
        doc = service.status()
        ready, checks = service.readiness()
        doc["ready"], doc["checks"] = ready, checks
        print(redactor(settings.secret_values())(json.dumps(doc, indent=2, default=str)))
        return 0
    finally:
        service.close()


def add_halt(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)
    parser.add_argument("--reason", required=True, help="why trading stops (shown in alerts)")


def _flag(args: argparse.Namespace, act: Callable[[Service, str], str]) -> int:
    settings = _settings(args)
    service = Service.create(settings)
    try:
        for name in _portfolio_names(service, args.portfolio):
            print(act(service, name))
        return 0
    finally:
        service.close()


def _alert(service: Service, name: str, kind: AlertKind, summary: str, reason: str) -> None:
    session = datetime.now(UTC).date().isoformat()
    # An operator's halt or resume is worth a look whichever it is: both warn.
    alert = cycle_alert(name, session, kind, summary, {"reason": reason}, severity="warning")
    service.alerts.publish(alert)


def halt(args: argparse.Namespace) -> int:
    def act(service: Service, name: str) -> str:
        service.store.halt(name, args.reason, by=service.owner)
        _alert(service, name, "halted", f"{name}: halted ({args.reason})", args.reason)
        return f"{name}: halted — no new order will be sent until 'regime-trader resume'"

    return _flag(args, act)


def resume(args: argparse.Namespace) -> int:
    def act(service: Service, name: str) -> str:
        was = service.store.resume(name)
        _alert(service, name, "resumed", f"{name}: resumed", "operator resumed trading")
        return f"{name}: {'resumed' if was else 'was not halted'}"

    return _flag(args, act)


def add_alerts(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)
    parser.add_argument("--count", type=int, default=10, help="how many recent alerts")
    parser.add_argument("--follow", action="store_true", help="then wait for new ones")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of text")


def alerts(args: argparse.Namespace) -> int:
    settings = _settings(args)
    service = Service.create(settings)
    show: Callable[[Alert], str] = (
        (lambda a: a.to_json()) if args.json else (lambda a: a.to_text() + "\n")
    )
    try:
        for alert in read_alerts(service.store.redis, count=args.count, portfolio=args.portfolio):
            print(show(alert), flush=True)
        if args.follow:
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            for alert in follow_alerts(service.store.redis, stop=stop.is_set):
                if args.portfolio is None or alert.portfolio == args.portfolio:
                    print(show(alert), flush=True)
        return 0
    finally:
        service.close()


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Configuration and service errors end with one clear line and exit code 2 or 1."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError as e:
            print(f"regime-trader {args.command}: configuration error: {e}", file=sys.stderr)
            return 2
        except RegimeTraderError as e:
            print(f"regime-trader {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1

    return guarded


def run_with_step_hook(step_hook: Callable[[str], None]) -> Callable[[argparse.Namespace], int]:
    """The ``run`` command whose cycles call ``step_hook`` at every step boundary.

    For test builds only: the crash tests start the service through a launcher under
    ``tests/`` that installs a hook killing the process at a chosen boundary. Nothing in the
    service reads a fault switch of its own.
    """
    return _guard(functools.partial(run, step_hook=step_hook))


COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "run": (
        "trade every session on schedule; serve /healthz /readyz /metrics /status",
        add_run,
        _guard(run),
    ),
    "rebalance": ("run today's cycle now and print what it did", add_rebalance, _guard(rebalance)),
    "status": (
        "print portfolios, last cycles, halts and readiness as JSON",
        lambda p: None,
        _guard(status),
    ),
    "halt": (
        "stop trading a portfolio (persisted; takes effect at the next step boundary)",
        add_halt,
        _guard(halt),
    ),
    "resume": ("resume a halted portfolio", add_portfolio_option, _guard(resume)),
    "alerts": ("show recent alerts, optionally follow new ones", add_alerts, _guard(alerts)),
}

"""Operator commands: ``run``, ``rebalance``, ``status``, ``halt``, ``resume``, ``alerts``,
``positions``, ``history``, ``pnl`` and ``config check|show``.

``run``, ``status``, ``halt``, ``resume`` and ``alerts`` live here; ``rebalance`` in
:mod:`~regime_trader.service.rebalance_cli`, the account views in
:mod:`~regime_trader.service.account_cli`, ``config`` in :mod:`~regime_trader.service.config_cli`.
:data:`regime_trader.service.cli.COMMANDS` routes to them (and holds their one-line help).

Exit codes
----------
Every command ends with one of these (:class:`~regime_trader.service.ops_common_cli.ExitCode`);
with several portfolios, the one that needs the most attention (the order of the table):

====  =================  ===================================================================
code  name               when
====  =================  ===================================================================
2     configuration      invalid settings or portfolio file, an unknown ``--portfolio``, a
                         symbol the broker cannot trade, a bad command line (argparse);
                         ``config check``: the configuration is invalid
1     failed             Redis or the broker could not be reached or refused; ``rebalance``:
                         a cycle failed, was refused (bad data, reconciliation), lost its lock,
                         was stopped, or its session was closed as interrupted; ``status``:
                         not ready (Redis or broker down, last success too old)
75    locked             ``rebalance``: another process still held the cycle's lock when
                         ``--wait-secs`` ran out (EX_TEMPFAIL: try again later)
3     halted             ``rebalance``: the portfolio is halted, nothing was sent (``resume``)
4     market closed      ``rebalance``: the broker's market is closed, no session to trade
0     done               the command did what it says; ``rebalance``: every portfolio's cycle
                         of the session is done (rebalanced, nothing to trade, or done before);
                         ``status``: ready; ``run``: stopped by SIGTERM/SIGINT
====  =================  ===================================================================

``rebalance`` never exits 0 without a done cycle: a cron job or a supervisor can trust it.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from regime_trader.service.alert_channels import follow_alerts, read_alerts
from regime_trader.service.alerts import Alert, AlertKind
from regime_trader.service.app import Service
from regime_trader.service.config import ConfigError, Settings
from regime_trader.service.cycle_report import cycle_alert
from regime_trader.service.exceptions import OperationalError
from regime_trader.service.http import start_http_server
from regime_trader.service.logs import get_logger, redactor
from regime_trader.service.next_run import next_runs
from regime_trader.service.ops_common_cli import (
    ExitCode,
    add_portfolio_option,
    guard,
    load_command_settings,
    portfolio_names,
)
from regime_trader.service.server_thread import bind_socket

__all__ = [
    "DEMO_SECS_PER_SESSION",
    "add_alerts",
    "add_halt",
    "add_resume",
    "add_run",
    "add_status",
    "alerts",
    "halt",
    "resume",
    "run",
    "run_with_step_hook",
    "status",
]

log = get_logger(__name__)

# Offline (`run` with the embedded emulator): one simulated session this many seconds apart.
DEMO_SECS_PER_SESSION = 30.0


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
        help="embedded emulator only: a simulated session every N seconds, the first at "
        f"start-up (default {DEMO_SECS_PER_SESSION:g}; 0 freezes the simulated clock)",
    )


def _bind(settings: Settings) -> socket.socket:
    """The HTTP socket, bound before the service touches Redis or the broker."""
    try:
        return bind_socket(settings.http_host, settings.http_port)
    except OSError as e:
        where = f"{settings.http_host}:{settings.http_port}"
        raise ConfigError(f"RT_HTTP_HOST/RT_HTTP_PORT={where}: cannot listen ({e})") from None


def _listen(
    service: Service, settings: Settings, sock: socket.socket, redact: Callable[[str], str]
) -> Any:
    """Serve health, readiness, metrics, status and the dashboard at ``/`` on ``sock``."""
    # Jinja2 and the templates only for this command.
    from regime_trader.service.dashboard import service_http_app

    app = service_http_app(service, control_token=settings.control_token, redact=redact)
    return start_http_server(app, sock=sock)


def run(args: argparse.Namespace, *, step_hook: Callable[[str], None] | None = None) -> int:
    """Trade every session on schedule until SIGTERM/SIGINT; serve health, metrics, status.

    ``step_hook`` is called at every step boundary of every cycle (see
    :func:`run_with_step_hook`); the console script never passes one.
    """
    from regime_trader.service.scheduler import CycleScheduler  # APScheduler only for this command

    settings = load_command_settings(args)
    # A port that cannot be bound is a configuration error, reported alone and first.
    sock = _bind(settings)
    try:
        # The embedded emulator outlives any one-shot command: run serves it itself.
        service = Service.create(settings, serve_emulator=True)
    except BaseException:
        sock.close()
        raise
    redact = redactor(settings.secret_values())
    try:
        http = _listen(service, settings, sock, redact)
    except BaseException:
        sock.close()
        service.close()
        raise
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
    demo = args.demo_secs_per_session
    demo = DEMO_SECS_PER_SESSION if demo is None else demo
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
    pace = (
        f", a simulated session every {demo:g} s" if service.emulator is not None and demo else ""
    )
    print(
        f"regime-trader running{pace}: dashboard {http.url}/, health {http.url}/healthz",
        file=sys.stderr,
        flush=True,
    )
    stop.wait()
    log.info("stopping: waiting for a running cycle to reach a step boundary")
    scheduler.shutdown()
    http.stop()
    service.close()
    return ExitCode.OK


# ---------------------------------------------------------------------------------- status


def add_status(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)


def status(args: argparse.Namespace) -> int:
    """Print portfolios, last cycles, halts, the next run and readiness; exit 1 if not ready."""
    settings = load_command_settings(args)
    service = Service.create(settings)
    try:
        names = portfolio_names(service, args.portfolio)
        doc = service.status()
        doc["portfolios"] = {n: doc["portfolios"][n] for n in names}
        for name, run_at in next_runs(service, names).items():
            doc["portfolios"][name]["next_run"] = run_at
        ready, checks = service.readiness()
        doc["ready"], doc["checks"] = ready, checks
        print(redactor(settings.secret_values())(json.dumps(doc, indent=2, default=str)))
        if not ready:
            failed = [k for k in ("redis", "broker") if checks.get(k) is False]
            why = ", ".join([*(f"{k} unreachable" for k in failed), *checks.get("stale", [])])
            print(f"regime-trader status: not ready ({why or 'see checks'})", file=sys.stderr)
        return ExitCode.OK if ready else ExitCode.FAILED
    finally:
        service.close()


# ---------------------------------------------------------------------------------- halt etc.


def add_halt(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)
    parser.add_argument("--reason", required=True, help="why trading stops (shown in alerts)")


def _flag(args: argparse.Namespace, act: Callable[[Service, str], str]) -> int:
    settings = load_command_settings(args)
    service = Service.create(settings)
    try:
        for name in portfolio_names(service, args.portfolio):
            print(act(service, name))
        return ExitCode.OK
    finally:
        service.close()


def _alert(service: Service, name: str, kind: AlertKind, summary: str, reason: str) -> None:
    session = datetime.now(UTC).date().isoformat()
    # An operator's halt or resume is worth a look whichever it is: both warn.
    alert = cycle_alert(name, session, kind, summary, {"reason": reason}, severity="warning")
    service.alerts.publish(alert)


def add_resume(parser: argparse.ArgumentParser) -> None:
    add_portfolio_option(parser)


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
    settings = load_command_settings(args)
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
        return ExitCode.OK
    finally:
        service.close()


def run_with_step_hook(step_hook: Callable[[str], None]) -> Callable[[argparse.Namespace], int]:
    """The ``run`` command whose cycles call ``step_hook`` at every step boundary.

    For test builds only: the crash tests start the service through a launcher under
    ``tests/`` that installs a hook killing the process at a chosen boundary. Nothing in the
    service reads a fault switch of its own.
    """
    return guard(functools.partial(run, step_hook=step_hook))

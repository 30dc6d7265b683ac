"""What every operator command shares: settings and logging, portfolio selection, exit codes.

The exit codes are documented, with every command's use of them, in
:mod:`regime_trader.service.ops_cli`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from enum import IntEnum

from regime_trader.service.app import Service
from regime_trader.service.config import ConfigError, Settings, load_settings
from regime_trader.service.exceptions import RegimeTraderError
from regime_trader.service.logs import configure_logging

__all__ = [
    "ExitCode",
    "add_portfolio_option",
    "checked_service",
    "guard",
    "load_command_settings",
    "portfolio_names",
    "worst",
]


class ExitCode(IntEnum):
    """The process exit codes of the operator commands (see :mod:`~.ops_cli`)."""

    OK = 0
    FAILED = 1  # also: status not ready
    CONFIG = 2  # also argparse's code for a bad command line
    HALTED = 3
    MARKET_CLOSED = 4
    LOCKED = 75  # sysexits.h EX_TEMPFAIL: try again later


# When several portfolios end differently, the code that needs the most attention wins.
_PRIORITY = (
    ExitCode.CONFIG,
    ExitCode.FAILED,
    ExitCode.LOCKED,
    ExitCode.HALTED,
    ExitCode.MARKET_CLOSED,
    ExitCode.OK,
)


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The code of a command over several portfolios (OK when there are none)."""
    given = set(codes)
    return next((c for c in _PRIORITY if c in given), ExitCode.OK)


def load_command_settings(args: argparse.Namespace) -> Settings:
    """The settings, with logging configured for a command (to stderr)."""
    settings = load_settings()
    fmt = getattr(args, "log_format", None) or settings.log_format
    configure_logging(settings.log_level, fmt, settings.secret_values(), stream=sys.stderr)
    # APScheduler logs every job run at INFO: with a wake-up every few seconds that drowns
    # the cycle's own lines. Its warnings (missed jobs) still come through.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def add_portfolio_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portfolio", help="only this portfolio (default: all)")


def portfolio_names(service: Service, wanted: str | None) -> list[str]:
    """The portfolios a command acts on: ``wanted``, or every configured one.

    Raises
    ------
    ConfigError
        ``wanted`` is not a configured portfolio.
    """
    if wanted is None:
        return list(service.contexts)
    if wanted not in service.contexts:
        raise ConfigError(f"unknown portfolio {wanted!r}; configured: {sorted(service.contexts)}")
    return [wanted]


def checked_service(settings: Settings) -> Service:
    """The service, once every portfolio symbol passed the broker's asset check.

    An unknown, inactive or non-tradable symbol (ConfigError, exit 2) or a broker that cannot
    be asked (exit 1) ends the command here, before any order. ``run`` checks after it
    listens, and carries on through a broker outage.
    """
    service = Service.create(settings)
    try:
        service.check_symbols()
    except BaseException:
        service.close()
        raise
    return service


def guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Configuration and service errors end with one clear line and exit code 2 or 1."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ConfigError as e:
            print(f"regime-trader {args.command}: configuration error: {e}", file=sys.stderr)
            return ExitCode.CONFIG
        except RegimeTraderError as e:
            print(f"regime-trader {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
            return ExitCode.FAILED

    return guarded

"""``regime-trader emulator``: serve an Alpaca-compatible paper exchange.

The main CLI adds these options to its ``emulator`` sub-command with :func:`add_arguments`
and calls :func:`run`; ``python -m service.emulator`` does the same on its own.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from service.emulator.config import (
    DEFAULT_KEY_ID,
    DEFAULT_SECRET_KEY,
    DEFAULT_START_DATE,
    DEFAULT_SYMBOLS,
    EmulatorConfig,
    EmulatorConfigError,
)

__all__ = ["add_arguments", "config_from_args", "run"]


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError(f"expected comma-separated symbols, got {text!r}")
    return symbols


def _money(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as e:
        raise argparse.ArgumentTypeError(f"expected an amount in dollars, got {text!r}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="listen port (default %(default)s)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--prices", type=Path, metavar="CSV", help="replay daily closes from this CSV file"
    )
    source.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic market (default %(default)s)"
    )
    parser.add_argument(
        "--cash", type=_money, default=Decimal("100000"), help="starting cash (default %(default)s)"
    )
    parser.add_argument(
        "--start-date",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help=f"day the simulated clock starts (08:00 New York); default {DEFAULT_START_DATE} "
        "for the synthetic market, the session after --history-sessions rows for a CSV",
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", help="persist account, orders and clock to FILE"
    )
    parser.add_argument("--key-id", default=DEFAULT_KEY_ID, help="accepted APCA-API-KEY-ID")
    parser.add_argument(
        "--secret-key", default=DEFAULT_SECRET_KEY, help="accepted APCA-API-SECRET-KEY"
    )
    parser.add_argument(
        "--rate-limit-per-min",
        type=int,
        default=200,
        help="requests per minute on /v2, 0 = off (default %(default)s)",
    )
    parser.add_argument(
        "--symbols",
        type=_symbols,
        help=f"comma-separated symbols (default {','.join(DEFAULT_SYMBOLS)}, or all CSV columns)",
    )
    parser.add_argument(
        "--non-fractionable",
        type=_symbols,
        default=(),
        metavar="SYMS",
        help="comma-separated symbols that take whole-share orders only",
    )
    parser.add_argument(
        "--history-sessions",
        type=int,
        default=756,
        help="synthetic sessions before the start date (default %(default)s)",
    )
    parser.add_argument(
        "--future-sessions",
        type=int,
        default=756,
        help="synthetic sessions from the start date on (default %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Return the configuration the parsed options describe."""
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        key_id=args.key_id,
        secret_key=args.secret_key,
        cash=args.cash,
        seed=args.seed,
        prices_csv=args.prices,
        symbols=args.symbols,
        non_fractionable=frozenset(args.non_fractionable),
        start_date=args.start_date,
        history_sessions=args.history_sessions,
        future_sessions=args.future_sessions,
        rate_limit_per_min=args.rate_limit_per_min,
        state_file=args.state,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; return the process exit status (2: bad configuration)."""
    from service.emulator.server import build_server

    try:
        config = config_from_args(args)
        server = build_server(config)
    except EmulatorConfigError as e:
        print(f"regime-trader emulator: {e}", file=sys.stderr)
        return 2
    print(
        f"Alpaca paper exchange emulator on http://{config.host}:{config.port} "
        f"(key id {config.key_id!r}); admin routes under /admin",
        file=sys.stderr,
    )
    server.run()
    return 0

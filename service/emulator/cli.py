"""``regime-trader emulator``: serve an Alpaca-compatible paper exchange.

The main CLI adds these options to its ``emulator`` sub-command with :func:`add_arguments`
and calls :func:`run`; ``python -m regime_trader.service.emulator`` does the same on its own.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from regime_trader.service.emulator.catalogue import CATALOGUE_SYMBOLS, THIN_SYMBOL
from regime_trader.service.emulator.config import (
    DEFAULT_KEY_ID,
    DEFAULT_SECRET_KEY,
    DEFAULT_START_DATE,
    DUPLICATE_CODES,
    EmulatorConfig,
    EmulatorConfigError,
)
from regime_trader.service.emulator.corporate_actions import (
    CorporateAction,
    CorporateActionError,
    load_corporate_actions,
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


def _missing_bars(text: str) -> tuple[tuple[str, date], ...]:
    pairs = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        symbol, _, day = item.partition(":")
        try:
            pairs.append((symbol.strip(), date.fromisoformat(day.strip())))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected SYMBOL:YYYY-MM-DD, got {item!r}") from None
    return tuple(pairs)


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
        help=f"comma-separated symbols (default: the catalogue {','.join(CATALOGUE_SYMBOLS)}, "
        "or all CSV columns)",
    )
    parser.add_argument(
        "--corporate-actions",
        type=Path,
        metavar="CSV",
        help="splits and cash dividends, a CSV with header symbol,ex_date,kind,value "
        "(kind split: new shares per old share; cash_dividend: dollars per share)",
    )
    parser.add_argument(
        "--multiplier",
        type=int,
        choices=(1, 2, 4),
        default=2,
        help="buying-power multiplier: 2 = margin account (Alpaca paper default), "
        "1 = cash account (default %(default)s)",
    )
    parser.add_argument(
        "--duplicate-code",
        type=int,
        choices=DUPLICATE_CODES,
        default=DUPLICATE_CODES[0],
        help="Alpaca code of the 422 answered to a duplicate client_order_id (default %(default)s)",
    )
    parser.add_argument(
        "--iex-missing",
        type=_missing_bars,
        default=(),
        metavar="SYM:YYYY-MM-DD,...",
        help=f"sessions with no feed=iex daily bar (besides the thin symbol {THIN_SYMBOL}'s)",
    )
    parser.add_argument(
        "--non-fractionable",
        type=_symbols,
        default=(),
        metavar="SYMS",
        help="comma-separated symbols that take whole-share orders only",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="paper accounts served, one per key pair: the given pair, then "
        "<key-id>-<i> / <secret-key>-<i> for i = 1, 2, ... (default %(default)s)",
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
    """Return the configuration the parsed options describe.

    Raises
    ------
    EmulatorConfigError
        If the corporate-actions file cannot be used (the message names line and field).
    """
    actions: tuple[CorporateAction, ...] = ()
    path = getattr(args, "corporate_actions", None)
    if path is not None:
        try:
            actions = load_corporate_actions(path)
        except CorporateActionError as e:
            raise EmulatorConfigError(str(e)) from e
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
        corporate_actions=actions,
        multiplier=getattr(args, "multiplier", 2),
        duplicate_code=getattr(args, "duplicate_code", DUPLICATE_CODES[0]),
        iex_missing=getattr(args, "iex_missing", ()),
        accounts=getattr(args, "accounts", 1),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; return the process exit status (2: bad configuration)."""
    from regime_trader.service.emulator.server import build_server

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

"""The ``regime-trader`` command: one sub-command per job.

Each sub-command lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only routes, so importing it stays cheap and a broken optional
part cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

__all__ = ["main", "package_version"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "backtest": (
        "regime_trader.service.backtest_cli",
        "walk-forward backtest of the strategy and benchmarks",
    ),
    "emulator": (
        "regime_trader.service.emulator.cli",
        "serve the Alpaca-compatible paper exchange emulator",
    ),
    "research": (
        "regime_trader.service.research_cli",
        "tune on a development window, validate once, write a profile",
    ),
    "profile": (
        "regime_trader.service.research_profile_cli",
        "list, show and promote strategy profiles",
    ),
}


def package_version() -> str:
    """The installed distribution's version (``regime-trader``)."""
    try:
        return version("regime-trader")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regime-trader",
        description="Regime-aware risk-parity signals, backtested and paper-traded on Alpaca. "
        "Exit codes: see 'regime-trader status --help' and the README.",
    )
    parser.add_argument("--version", action="version", version=f"regime-trader {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from regime_trader.service.ops_cli import COMMANDS as OPERATIONS

    for name, (help_text, add_arguments, _) in OPERATIONS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    from regime_trader.service.ops_cli import COMMANDS as OPERATIONS

    if args.command in OPERATIONS:
        return OPERATIONS[args.command][2](args)
    module = importlib.import_module(COMMANDS[args.command][0])
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

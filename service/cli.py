"""The ``regime-trader`` command: one sub-command per job.

Each sub-command lives in a module of its own, with a function that adds its arguments to a
parser and one that runs it (``args -> exit code``). This file only routes, and lazily: the
top-level parser knows every sub-command's name and one-line help from :data:`COMMANDS`
alone, and a sub-command's module (with pandas, scikit-learn, matplotlib, the emulator, the
broker SDK behind it) is imported only when that sub-command runs or its ``--help`` is asked.
``regime-trader --help`` and ``--version`` import none of them, and a broken optional part
cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

__all__ = ["COMMANDS", "Command", "build_parser", "main", "package_version"]

_SERVICE = "regime_trader.service"


@dataclass(frozen=True)
class Command:
    """Where one sub-command lives, and its one-line help (shown without importing it).

    Attributes
    ----------
    module : str
        The module that holds the sub-command.
    help : str
        Its one-line help: the top-level listing and the sub-command's description.
    add_arguments, run : str
        The names, in ``module``, of ``add_arguments(parser)`` and ``run(args) -> int``.
    operator : bool
        An operator command: configuration and service errors end with one line and exit
        code 2 or 1 (:func:`~regime_trader.service.ops_common_cli.guard`).
    """

    module: str
    help: str
    add_arguments: str = "add_arguments"
    run: str = "run"
    operator: bool = False


def _operator(module: str, name: str, help_text: str) -> Command:
    return Command(f"{_SERVICE}.{module}", help_text, f"add_{name}", name, operator=True)


# In the order of the top-level help. The exit codes are documented in ops_cli.
COMMANDS: dict[str, Command] = {
    "run": _operator(
        "ops_cli",
        "run",
        "trade every session on schedule; serve the dashboard at / and /healthz /readyz "
        "/metrics /status",
    ),
    "rebalance": _operator(
        "rebalance_cli", "rebalance", "run today's cycle now and print what it did"
    ),
    "status": _operator(
        "ops_cli",
        "status",
        "print portfolios, last cycles, halts, the next run and readiness as JSON "
        "(exit 1 when not ready)",
    ),
    "positions": _operator(
        "account_cli",
        "positions",
        "held quantities, market value and weight against the target, and cash",
    ),
    "history": _operator(
        "account_cli", "history", "past cycles: outcome, orders and fills, per session"
    ),
    "pnl": _operator("account_cli", "pnl", "equity and profit per day or month"),
    "config": _operator(
        "config_cli",
        "config",
        "check the configuration, or show the effective settings (secrets as ***)",
    ),
    "halt": _operator(
        "ops_cli",
        "halt",
        "stop trading a portfolio (persisted; takes effect at the next step boundary)",
    ),
    "resume": _operator("ops_cli", "resume", "resume a halted portfolio"),
    "alerts": _operator("ops_cli", "alerts", "show recent alerts, optionally follow new ones"),
    "backtest": Command(
        f"{_SERVICE}.backtest_cli", "walk-forward backtest of the strategy and benchmarks"
    ),
    "emulator": Command(
        f"{_SERVICE}.emulator.cli", "serve the Alpaca-compatible paper exchange emulator"
    ),
    "research": Command(
        f"{_SERVICE}.research_cli",
        "tune on a development window, validate once, write a profile",
    ),
    "profile": Command(
        f"{_SERVICE}.research_profile_cli", "list, show and promote strategy profiles"
    ),
}


def package_version() -> str:
    """The installed distribution's version (``regime-trader``)."""
    try:
        return version("regime-trader")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _function(command: Command, attribute: str) -> Callable[..., int]:
    fn: Callable[..., int] = getattr(importlib.import_module(command.module), attribute)
    return fn


def _runner(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs sub-command ``name``: its module is imported here."""
    command = COMMANDS[name]
    run = _function(command, command.run)
    if not command.operator:
        return run
    from regime_trader.service.ops_common_cli import guard

    return guard(run)


def _named_command(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names: its first word that is not an option.

    The top-level options (``-h``, ``--help``, ``--version``) take no value, so the first
    other word (or the word after ``--``) is the sub-command, or a word argparse refuses.
    """
    for i, word in enumerate(argv):
        if word == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not word.startswith("-"):
            return word
    return None


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``regime-trader`` parser; the arguments of ``commands`` only (default: every one).

    Every sub-command is listed, with its help, either way; only the sub-commands in
    ``commands`` get their own arguments, which imports their modules. Parse a command line
    with the parser built for the sub-command it names (what :func:`main` does).
    """
    parser = argparse.ArgumentParser(
        prog="regime-trader",
        description="Regime-aware risk-parity signals, backtested and paper-traded on Alpaca. "
        "Exit codes: see 'regime-trader status --help' and the README.",
    )
    parser.add_argument("--version", action="version", version=f"regime-trader {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        if commands is None or name in commands:
            _function(command, command.add_arguments)(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = _named_command(argv)
    wanted = [named] if named in COMMANDS else []
    args = build_parser(wanted).parse_args(argv)
    return _runner(args.command)(args)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m regime_trader.service.emulator``: the emulator without the main CLI."""

from __future__ import annotations

import argparse
import sys

from regime_trader.service.emulator.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m regime_trader.service.emulator",
        description="Alpaca-compatible paper exchange",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

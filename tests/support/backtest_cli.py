"""``regime-trader backtest`` run in the test's process, as the command-line tests call it."""

from __future__ import annotations

import warnings
from pathlib import Path

from regime_trader.service.cli import main


def run_backtest(prices: Path, out: Path, *options: str) -> int:
    """``regime-trader backtest --prices PRICES --out OUT --quiet OPTIONS``: its exit code.

    The fitting libraries' warnings (an HMM fit that stops at its iteration cap) are silenced:
    the tests judge the run by its exit code, its messages and the files it writes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["backtest", "--prices", str(prices), "--out", str(out), "--quiet", *options])

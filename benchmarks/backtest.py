"""Full walk-forward backtest on the real 2004-2019 data: wall time and quality.

Run: ``python benchmarks/backtest.py [--prices CSV] [--start 2006-01-02] [--cost-bps 5]``.

Prints the wall time of the regime strategy's walk-forward next to the static ERC
benchmark's in the same run (the machine is noisy, so the ratio is the figure to compare),
then the metrics table over the whole period and over the 2006-2014 tuning period and the
2015-2019 out-of-sample check separately.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from regime_trader.service.pricefile import load_prices
from regime_trader.strategies.backtest import StrategyPath, run_backtest
from regime_trader.strategies.metrics import METRIC_NAMES, performance_metrics
from regime_trader.strategies.regime_erc import RegimeERC
from regime_trader.strategies.registry import BENCHMARKS, STRATEGIES

DEFAULT_PRICES = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "spxtr_tlt_gld_2004_2019.csv"
)
COLUMNS = METRIC_NAMES
PERIODS = (("2006-01-01", "2019-12-31"), ("2006-01-01", "2014-12-31"), ("2015-01-01", "2019-12-31"))


def _table(paths: dict[str, StrategyPath], first: str, last: str) -> pd.DataFrame:
    rows = {}
    for name, path in paths.items():
        returns, turnover = path.returns.loc[first:last], path.turnover.loc[first:last]
        rows[name] = performance_metrics(returns, turnover)
    return pd.DataFrame(rows).T.loc[:, list(COLUMNS)].astype(float)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--start", default="2006-01-02")
    parser.add_argument("--cost-bps", type=float, default=5.0)
    args = parser.parse_args()
    if not args.prices.is_file():
        print(f"no price file at {args.prices}; pass --prices", file=sys.stderr)
        return 2
    prices = load_prices(args.prices)
    symbols = list(prices.columns)
    warnings.simplefilter("ignore")
    with threadpool_limits(limits=1):
        began = time.perf_counter()
        baseline = run_backtest(
            prices, STRATEGIES["erc_static"](symbols), start=args.start, cost_bps=args.cost_bps
        )
        baseline_secs = time.perf_counter() - began
        began = time.perf_counter()
        result = run_backtest(
            prices,
            RegimeERC(symbols),
            {b: STRATEGIES[b](symbols) for b in BENCHMARKS},
            start=args.start,
            cost_bps=args.cost_bps,
        )
        full_secs = time.perf_counter() - began
    del baseline
    print(
        f"data: {args.prices.name}, {len(prices)} sessions, trading from {args.start}, "
        f"{args.cost_bps:g} bps"
    )
    print(
        f"wall time, full walk-forward (regime strategy + 4 benchmarks): {full_secs:.1f} s "
        f"(target < 30 s)"
    )
    print(
        f"baseline, static ERC alone through the same engine: {baseline_secs:.2f} s "
        f"-> ratio {full_secs / baseline_secs:.1f}x"
    )
    paths = {"regime_erc": result.strategy, **result.benchmarks}
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        for first, last in PERIODS:
            print(f"\n{first[:4]}-{last[:4]}")
            print(_table(paths, first, last).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time one engine's walk-forward in this process and print the seconds as JSON (one line).

Started by ``benchmarks/backtest.py --before REV`` on the working tree's code and on REV's, so
it uses only what both have: ``load_prices``, ``RegimeERC(symbols, RegimeERCParams(engine=))``,
``iter_update``, ``run_backtest`` and ``build_benchmarks``. Two figures: the regime strategy
alone over every bar, and the whole backtest with the six benchmarks, as ``backtest.py`` runs it.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from threadpoolctl import threadpool_limits

from regime_trader.service.pricefile import load_prices
from regime_trader.strategies.backtest import run_backtest
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.registry import build_benchmarks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--prices", type=Path, required=True)
    parser.add_argument("--start", default="2006-01-02")
    parser.add_argument("--cost-bps", type=float, default=5.0)
    args = parser.parse_args()
    prices = load_prices(args.prices)
    symbols = list(prices.columns)
    warnings.simplefilter("ignore")
    # Warm up (lazy imports, first-call caches) on a first fit, so neither figure pays it.
    for _ in RegimeERC(symbols, RegimeERCParams(engine=args.engine)).iter_update(prices.iloc[:300]):
        pass
    # Limited after the warm-up: a revision that imports hmmlearn when it first fits loads
    # SciPy's own OpenBLAS and scikit-learn's OpenMP then, and threadpoolctl limits only the
    # libraries already loaded; both revisions' fits run on one thread this way.
    with threadpool_limits(limits=1):
        began = time.perf_counter()
        for _ in RegimeERC(symbols, RegimeERCParams(engine=args.engine)).iter_update(prices):
            pass
        alone = time.perf_counter() - began
        began = time.perf_counter()
        run_backtest(
            prices,
            RegimeERC(symbols, RegimeERCParams(engine=args.engine)),
            build_benchmarks(symbols),
            start=args.start,
            cost_bps=args.cost_bps,
        )
        whole = time.perf_counter() - began
    print(json.dumps({"strategy_secs": alone, "backtest_secs": whole}))


if __name__ == "__main__":
    main()

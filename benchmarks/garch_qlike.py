"""Out-of-sample QLIKE of the EWMA, GARCH(1,1) and GJR-GARCH variance forecasts on a price file.

Run: ``python -m benchmarks.garch_qlike PRICES.csv --dev-start 2006-01-01 --dev-end 2014-12-31
[--halflife 63] [--bootstrap 2000]``.

The daily log returns of the file up to ``--dev-end`` (the rows after it are dropped as soon as
the file is read: nothing after the development window is looked at) feed each model online,
as the strategy runs it (:func:`regime_trader.strategies.forecast_loss.compare_forecasts`):
the EWMA with the strategy's default half-life, per-asset GARCH and GJR-GARCH on the default
:class:`~regime_trader.strategies.garch.GarchSettings` (the regime engine's calendar: first fit
after 250 returns, monthly refits on at most 2520). Days before ``--dev-start`` only warm the
models up. The table is Markdown: mean QLIKE per asset and across assets, each GARCH model
less EWMA with its 95% block-bootstrap interval and Diebold-Mariano p-value; the wall time of
the whole comparison is printed after it.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from regime_trader.service.pricefile import load_prices
from regime_trader.strategies.forecast_loss import compare_forecasts, markdown_table
from regime_trader.strategies.regime_erc_params import RegimeERCParams


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prices", type=Path, help="wide CSV of daily closes")
    parser.add_argument("--dev-start", required=True, help="first evaluated session")
    parser.add_argument("--dev-end", required=True, help="last session read and evaluated")
    parser.add_argument(
        "--halflife",
        type=float,
        default=RegimeERCParams().cov_halflife,
        help="EWMA half-life in days (default the strategy's)",
    )
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    prices = load_prices(args.prices).loc[: args.dev_end]
    log_closes = np.log(prices.to_numpy(dtype=float))
    returns = pd.DataFrame(np.diff(log_closes, axis=0), prices.index[1:], prices.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comparison = compare_forecasts(
            returns,
            args.dev_start,
            args.dev_end,
            halflife=args.halflife,
            n_boot=args.bootstrap,
        )
    elapsed = time.perf_counter() - began
    print(
        f"{args.prices.name}: QLIKE of one-day-ahead variance forecasts, "
        f"{comparison.start.date()}..{comparison.end.date()} "
        f"(EWMA half-life {args.halflife:g} days)"
    )
    print(markdown_table(comparison))
    print(f"wall time {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main())

"""Walk-forward backtest of every regime engine on the real 3-asset file: wall time per engine.

Run: ``python -m benchmarks.backtest [--prices CSV] [--start 2006-01-02] [--cost-bps 5]
[--before REV] [--repeats 1]``.

For each engine (``hmm``, ``jump``, ``sparse_jump``, each with its default parameters) the
regime strategy walks forward through the whole input (2004-2019 by default, trading from
``--start``) together with every benchmark, and the wall time is printed next to the static ERC
benchmark's alone through the same engine in the same run (the machine is noisy, so the ratio
is the figure to compare). Wall time is only time.

With ``--before REV`` (e.g. the commit before a speed-up) each engine's walk-forward is also timed
on REV's code and on the working tree's, each in a fresh process (:mod:`benchmarks.revision`),
interleaved ``--repeats`` times, and the table gives the fastest of each and their ratio: the
regime strategy alone over every bar, and the whole backtest with its six benchmarks.

Performance figures are printed for the development window (``--report-from`` to
``--report-to``, 2006-2014 by default) only: the later years are the validation window, which
the project looks at once, through the research protocol, never while building.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks.revision import revision_code, run_worker
from regime_trader.service.pricefile import load_prices
from regime_trader.strategies.backtest import StrategyPath, run_backtest
from regime_trader.strategies.backtest_metrics import VOL_MATCHED, vol_scale
from regime_trader.strategies.metrics import performance_metrics
from regime_trader.strategies.regime_erc import RegimeERC, RegimeERCParams
from regime_trader.strategies.regime_erc_params import EngineName
from regime_trader.strategies.registry import STRATEGIES, build_benchmarks

DEFAULT_PRICES = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "spxtr_tlt_gld_2004_2019.csv"
)
ENGINES: tuple[EngineName, ...] = ("hmm", "jump", "sparse_jump")
COLUMNS = ("cagr", "volatility", "sharpe", "max_drawdown", "turnover_per_year")


def _row(path: StrategyPath, first: str, last: str, scale: float = 1.0) -> dict[str, float]:
    returns, turnover = path.returns.loc[first:last], path.turnover.loc[first:last]
    stats = performance_metrics(returns * scale, turnover * scale)
    values = {c: stats[c] for c in COLUMNS}
    return {c: float("nan") if v is None else v for c, v in values.items()}


def _rows(
    engine: str, strategy: StrategyPath, erc: StrategyPath, first: str, last: str
) -> dict[str, dict[str, float]]:
    """The strategy and static ERC scaled to its volatility *within* the reported window."""
    k = vol_scale(erc.returns.loc[first:last], strategy.returns.loc[first:last])
    return {
        f"regime_erc[{engine}]": _row(strategy, first, last),
        f"{VOL_MATCHED}[{engine}]": _row(erc, first, last, float("nan") if k is None else k),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    parser.add_argument("--start", default="2006-01-02")
    parser.add_argument("--cost-bps", type=float, default=5.0)
    parser.add_argument("--report-from", default="2006-01-01")
    parser.add_argument("--report-to", default="2014-12-31")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated (default: all three)"
    )
    parser.add_argument("--before", help="also time the walk-forward on this git revision")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs with --before")
    args = parser.parse_args()
    if not args.prices.is_file():
        print(f"no price file at {args.prices}; pass --prices", file=sys.stderr)
        return 2
    prices = load_prices(args.prices)
    symbols = list(prices.columns)
    warnings.simplefilter("ignore")
    print(
        f"data: {args.prices.name}, {len(prices)} sessions {prices.index[0].date()} to "
        f"{prices.index[-1].date()}, trading from {args.start}, {args.cost_bps:g} bps"
    )
    for engine in _engines(args):  # lazy imports and first-call caches, before the limit
        for _ in RegimeERC(symbols, RegimeERCParams(engine=engine)).iter_update(prices[:300]):
            pass
    # threadpoolctl limits only the libraries already loaded: SciPy's own OpenBLAS and
    # scikit-learn's OpenMP come with hmmlearn, which the warm-up's first fit imported.
    with threadpool_limits(limits=1):
        began = time.perf_counter()
        run_backtest(
            prices, STRATEGIES["erc_static"](symbols), start=args.start, cost_bps=args.cost_bps
        )
        baseline = time.perf_counter() - began
        print(f"baseline, static ERC alone through the same engine: {baseline:.2f} s")
        rows: dict[str, dict[str, float]] = {}
        benchmarks: dict[str, StrategyPath] = {}
        for engine in _engines(args):
            strategy = RegimeERC(symbols, RegimeERCParams(engine=engine))
            began = time.perf_counter()
            result = run_backtest(
                prices,
                strategy,
                build_benchmarks(symbols),
                start=args.start,
                cost_bps=args.cost_bps,
            )
            secs = time.perf_counter() - began
            print(
                f"wall time, {engine:>11} (strategy + {len(build_benchmarks(symbols))} "
                f"benchmarks): {secs:6.1f} s -> {secs / baseline:5.1f}x the baseline"
            )
            erc = result.benchmarks["erc_static"]
            rows.update(_rows(engine, result.strategy, erc, args.report_from, args.report_to))
            benchmarks = {k: v for k, v in result.benchmarks.items() if k != VOL_MATCHED}
    for name, path in benchmarks.items():
        rows[name] = _row(path, args.report_from, args.report_to)
    if args.before:
        _before_after(args)
    print(f"\nmetrics {args.report_from} to {args.report_to} (development window only)")
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(rows).T.to_string())
    return 0


def _engines(args: argparse.Namespace) -> list[EngineName]:
    chosen = [e for e in ENGINES if e in str(args.engines).split(",")]
    if not chosen:
        raise SystemExit(f"--engines must name some of {list(ENGINES)}, got {args.engines!r}")
    return chosen


def _before_after(args: argparse.Namespace) -> None:
    """Each engine on ``args.before``'s code and on the working tree's, fastest of the repeats."""
    worker = "benchmarks.walk_forward_worker"
    options = ["--prices", str(args.prices), "--start", args.start]
    options += ["--cost-bps", str(args.cost_bps)]
    print(f"\nbefore = {args.before}, after = the working tree, fastest of {args.repeats} run(s)")
    print(
        f"{'engine':>11} | {'strategy alone: before':>22} {'after':>7} {'speed-up':>8} | "
        f"{'with 6 benchmarks: before':>25} {'after':>7} {'speed-up':>8}"
    )
    with revision_code(args.before) as old:
        for engine in _engines(args):
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                runs["before"].append(run_worker(worker, ["--engine", engine, *options], old))
                runs["after"].append(run_worker(worker, ["--engine", engine, *options]))
            best = {
                (when, what): min(r[what] for r in rs)
                for when, rs in runs.items()
                for what in ("strategy_secs", "backtest_secs")
            }
            cells = []
            for what in ("strategy_secs", "backtest_secs"):
                before, after = best["before", what], best["after", what]
                cells.append(f"{before:7.2f} s {after:6.2f} s {before / after:7.2f}x")
            print(f"{engine:>11} | {cells[0]:>40} | {cells[1]:>43}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

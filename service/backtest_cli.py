"""``regime-trader backtest``: the walk-forward backtest from the command line.

Without ``--prices`` it runs on a seeded synthetic regime-switching market, so it works on a
fresh machine with no data; with ``--prices`` it reads and validates a wide or long CSV. A thin
symbol's blank close is carried for at most ``--max-carry-sessions`` sessions by the same
function as the live cycle (:mod:`regime_trader.strategies.missing_bars`), noted on stderr and in
``config.json``. ``--profile``, ``--strategy`` and ``--strategy-params`` pick the strategy as a
portfolio does (with none of them: the default profile, what the default portfolio trades; with
``--strategy`` or ``--strategy-params`` and no ``--profile``: that strategy's built-in defaults
with the overrides), so a backtest reproduces the weights a configured portfolio trades.
``--weight-band`` (default a portfolio's ``no_trade_band``) and ``--exposure-band`` are the
execution band, the rule the live planner applies to the broker's positions
(:class:`~regime_trader.strategies.rebalance.RebalanceBand`); ``--period`` adds named slices to
the metrics (calendar years are always reported). ``--sleeve-prices`` adds a momentum sleeve's
stock file for ``--strategy erc_sleeve`` (:mod:`regime_trader.service.sleeve_prices`): the run
is on the sessions both files share, and the benchmarks run on the ``--prices`` symbols alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from regime_trader.service.macro_source import MacroFileError, load_macro
from regime_trader.service.order_types import DEFAULT_NO_TRADE_BAND
from regime_trader.service.pricefile import PriceFileError, load_prices_carried
from regime_trader.service.profiles import ProfileError, load_profile, merged_params
from regime_trader.service.report import write_backtest
from regime_trader.service.sleeve_prices import SleeveJoin, join_sleeve_prices, sleeve_params
from regime_trader.service.tolerance_options import asset_classes_argument, tolerance_argument
from regime_trader.strategies.backtest import BacktestResult, Period, run_backtest
from regime_trader.strategies.base import Strategy
from regime_trader.strategies.missing_bars import DEFAULT_MAX_CARRY_SESSIONS, CarriedClose
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.registry import STRATEGIES, build_benchmarks, build_strategy
from regime_trader.strategies.risk_tolerance import RiskTolerance
from regime_trader.strategies.sleeve_erc import Widened
from regime_trader.strategies.synthetic import generate_market

__all__ = ["add_arguments", "run"]

SYNTHETIC_DAYS = 2520
SYNTHETIC_SYMBOLS = ("SPY", "TLT", "GLD")


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from e


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({e})") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _carry(text: str) -> int:
    return int(_bounded(text, int, 0, None))


def _band(text: str) -> float:
    return _bounded(text, float, 0.0, 1.0)


def _bounded(text: str, kind: type[int] | type[float], low: float, high: float | None) -> float:
    """``text`` as ``kind`` within [low, high], or the argument error naming the bound."""
    try:
        value = kind(text)
    except ValueError as e:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from e
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low:g}, {high:g}]"
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def _period(text: str) -> Period:
    label, sep, span = text.partition("=")
    first, sep2, last = span.partition(":")
    if not (sep and sep2 and label):
        raise argparse.ArgumentTypeError(f"not LABEL=FIRST:LAST: {text!r}")
    try:
        return Period(label, _date(first), _date(last))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the backtest's options on its sub-parser."""
    parser.add_argument(
        "--prices",
        type=Path,
        help="CSV of daily closes, wide (date,SYM,...) or long (date,symbol,close);"
        " default: a seeded synthetic market",
    )
    parser.add_argument(
        "--sleeve-prices",
        type=Path,
        help="CSV of a momentum sleeve's stock closes, joined to --prices on their common "
        "sessions (for --strategy erc_sleeve; its sleeve_symbols default to this file's columns;"
        " the benchmarks run on the --prices symbols)",
    )
    parser.add_argument(
        "--macro",
        help="CSV file or http(s) URL of the true macro series (date, VIX, SPREAD_10Y2Y, "
        "SPREAD_10Y3M, as ../shared/data/macro_vix_ust_1990_2019.csv), for a strategy with "
        'macro_source "series"; joined to the closes as the live cycle joins its macro_file',
    )
    parser.add_argument(
        "--start",
        type=_date,
        help="first trading session; earlier bars are learning history "
        "(default: two years into the data)",
    )
    parser.add_argument("--end", type=_date, help="last session used (default: the last)")
    parser.add_argument(
        "--cost-bps",
        type=float,
        default=5.0,
        help="cost per unit of one-way turnover, basis points (default 5)",
    )
    parser.add_argument(
        "--lag",
        type=int,
        default=1,
        help="days from decision to the first return it earns (default 1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("backtest-out"),
        help="output directory (default ./backtest-out)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic market")
    parser.add_argument(
        "--profile",
        help="a strategy profile (regime-trader profile list); default: the default profile "
        "unless --strategy or --strategy-params is given",
    )
    parser.add_argument(
        "--profile-version", type=_carry, help="a version of --profile (default: the highest)"
    )
    parser.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        help="the strategy under test, with its built-in defaults (without --profile)",
    )
    parser.add_argument(
        "--strategy-params",
        type=_params,
        default=None,
        help="parameter overrides as a JSON object, as a portfolio's strategy_params, on top "
        'of --profile (e.g. \'{"regime": {"min_train_obs": 120}}\')',
    )
    parser.add_argument(
        "--risk-tolerance",
        type=tolerance_argument,
        default=None,
        help="a risk tolerance, as a portfolio's risk_tolerance: conservative, moderate, "
        'aggressive, or a JSON object (e.g. \'{"base": "moderate", "target_vol": 0.08}\'); '
        "its band is the --weight-band unless that is given",
    )
    parser.add_argument(
        "--asset-classes",
        type=asset_classes_argument,
        default=None,
        help="asset class (equity, bond, real) of symbols the built-in table lacks, as a JSON "
        "object, for --risk-tolerance",
    )
    parser.add_argument(
        "--max-carry-sessions",
        type=_carry,
        default=DEFAULT_MAX_CARRY_SESSIONS,
        help="a thin symbol's blank close takes its last close for at most this many "
        f"sessions, as in the live cycle; 0 refuses any (default {DEFAULT_MAX_CARRY_SESSIONS})",
    )
    parser.add_argument(
        "--weight-band",
        type=_band,
        default=None,
        help="execution band: a weight off its target by less than this is not traded, as the "
        f"live planner's no_trade_band (default {DEFAULT_NO_TRADE_BAND}, a portfolio's, or the "
        "--risk-tolerance's; 0 trades every deviation)",
    )
    parser.add_argument(
        "--exposure-band",
        type=_band,
        default=0.0,
        help="execution band: a total exposure off the held one by less than this keeps the "
        "held exposure, as the live planner's exposure_band (default 0)",
    )
    parser.add_argument(
        "--period",
        type=_period,
        action="append",
        default=[],
        metavar="LABEL=FIRST:LAST",
        help="a named slice of the metrics (repeatable), e.g. dev=2006-01-01:2014-12-31",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, str, tuple[CarriedClose, ...]]:
    if args.prices is not None:
        loaded = load_prices_carried(args.prices, args.max_carry_sessions)
        return loaded.closes, str(args.prices), loaded.carried
    market = generate_market(SYNTHETIC_DAYS, SYNTHETIC_SYMBOLS, seed=args.seed)
    return market.prices, f"synthetic regime-switching market (seed {args.seed})", ()


def _join_sleeve(args: argparse.Namespace, prices: pd.DataFrame) -> SleeveJoin | None:
    if args.sleeve_prices is None:
        return None
    if args.prices is None:
        raise PriceFileError("--sleeve-prices needs --prices (the assets beside the sleeve)")
    return join_sleeve_prices(prices, args.sleeve_prices, args.max_carry_sessions)


def _with_tolerance(
    args: argparse.Namespace, name: str, symbols: list[str], params: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """The parameters and weight band under ``--risk-tolerance``, as a portfolio's (its
    values win over the profile's and ``--strategy-params``' for the keys it sets)."""
    band = DEFAULT_NO_TRADE_BAND if args.weight_band is None else args.weight_band
    tolerance: RiskTolerance | None = args.risk_tolerance
    if tolerance is None:
        return params, band
    sleeve = params.get("sleeve_symbols", ())
    knobs = tolerance.strategy_params(name, symbols, args.asset_classes, sleeve)
    own_band = args.weight_band is not None
    return merged_params(params, knobs), band if own_band else tolerance.no_trade_band


def _benchmarks(
    symbols: list[str], params: dict[str, Any], sleeve: SleeveJoin | None
) -> dict[str, Strategy]:
    """The benchmarks, on the assets alone when a sleeve's stocks are in the universe."""
    if sleeve is None:
        return dict(build_benchmarks(symbols, params))
    stocks = set(sleeve.sleeve_symbols)
    assets = [s for s in symbols if s not in stocks]
    return {k: Widened(b, symbols) for k, b in build_benchmarks(assets, params).items()}


def _progress(quiet: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if quiet:
        return None, lambda: None
    bar = tqdm(unit="bar", desc="walk-forward", file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _summary(result: BacktestResult) -> str:
    rows = {"strategy": result.metrics["strategy"], **result.metrics["benchmarks"]}
    lines = [f"{'':24}{'CAGR':>8}{'vol':>8}{'Sharpe':>8}{'maxDD':>8}{'turnover':>10}"]
    for name, m in rows.items():

        def pct(key: str, m: dict[str, Any] = m) -> str:
            return "n/a" if m[key] is None else f"{100 * m[key]:.1f}%"

        def num(key: str, m: dict[str, Any] = m) -> str:
            return "n/a" if m[key] is None else f"{m[key]:.2f}"

        lines.append(
            f"{name:24}{pct('cagr'):>8}{pct('volatility'):>8}{num('sharpe'):>8}"
            f"{pct('max_drawdown'):>8}{num('turnover_per_year'):>10}"
        )
    return "\n".join(lines)


def _strategy_spec(args: argparse.Namespace) -> tuple[str, dict[str, Any], str | None]:
    """The strategy's name, its parameters and the profile's label (None without a profile).

    Raises
    ------
    ProfileError
        If the profile cannot be loaded, or is not of ``--strategy``.
    """
    overrides = args.strategy_params or {}
    if args.profile is None and (args.strategy is not None or args.strategy_params is not None):
        return args.strategy or "regime_erc", overrides, None
    found = load_profile(args.profile or "default", args.profile_version)
    if args.strategy is not None and args.strategy != found.strategy_name:
        raise ProfileError(
            f"{found.label} is a {found.strategy_name} profile, not --strategy {args.strategy}"
        )
    return found.strategy_name, found.overridden(overrides), found.label


def run(args: argparse.Namespace) -> int:
    """Run the backtest and write its files; returns the process exit code."""
    try:
        prices, source, carried = _load(args)
        sleeve = _join_sleeve(args, prices)
        macro = None if args.macro is None else load_macro(args.macro)
    except (PriceFileError, MacroFileError) as e:
        print(f"regime-trader backtest: {e}", file=sys.stderr)
        return 2
    if sleeve is not None:
        prices, source = sleeve.closes, f"{source} + {args.sleeve_prices}"
        carried = (*carried, *sleeve.carried)
        for warning in sleeve.warnings():
            print(f"regime-trader backtest: warning: {warning}", file=sys.stderr)
    for c in carried:
        print(f"regime-trader backtest: warning: {c.describe()}", file=sys.stderr)
    # hmmlearn logs every tiny EM likelihood dip; convergence is judged and recorded by
    # RegimeModel (FitReport, RegimeConvergenceWarning), so its per-fit chatter is noise here.
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    start = args.start if args.start is not None else prices.index[min(504, len(prices) - 2)]
    symbols = list(prices.columns)
    name, profile = args.strategy or "regime_erc", None
    try:
        name, params, profile = _strategy_spec(args)
        params = sleeve_params(name, params, sleeve)
        params, weight_band = _with_tolerance(args, name, symbols, params)
        strategy = build_strategy(name, symbols, params)
        benchmarks = _benchmarks(symbols, params, sleeve)
    except ProfileError as e:
        print(f"regime-trader backtest: --profile: {e}", file=sys.stderr)
        return 2
    except (TypeError, ValueError, KeyError) as e:  # as the portfolio configuration does
        where = f"profile {profile}" if profile else f"--strategy-params for {name}"
        print(f"regime-trader backtest: {where}: {e}", file=sys.stderr)
        return 2
    progress, close = _progress(args.quiet)
    began = time.perf_counter()
    try:
        # The matrices are 3x3 to 500x500: BLAS threads only add contention here.
        with threadpool_limits(limits=1):
            result = run_backtest(
                prices,
                strategy,
                benchmarks,
                start=start,
                end=args.end,
                cost_bps=args.cost_bps,
                lag=args.lag,
                execution_band=RebalanceBand(weight_band, args.exposure_band),
                periods=args.period,
                progress=progress,
                macro=macro,
            )
    except ValueError as e:
        close()
        print(f"regime-trader backtest: {e}", file=sys.stderr)
        return 2
    close()
    elapsed = time.perf_counter() - began
    config = {
        "source": source,
        "sleeve_prices": None if sleeve is None else str(args.sleeve_prices),
        "macro": args.macro,
        "symbols": symbols,
        "start": str(pd.Timestamp(start).date()),
        "end": None if args.end is None else str(args.end.date()),
        "cost_bps": args.cost_bps,
        "lag": args.lag,
        "weight_band": weight_band,
        "exposure_band": args.exposure_band,
        "periods": {p.label: [str(p.first.date()), str(p.last.date())] for p in args.period},
        "profile": profile,
        "risk_tolerance": None if args.risk_tolerance is None else args.risk_tolerance.to_dict(),
        "strategy": name,
        "strategy_params": params,
        "max_carry_sessions": args.max_carry_sessions,
        "carried": [
            {"symbol": c.symbol, "session": str(c.session.date()), "from": str(c.source.date())}
            for c in carried
        ],
    }
    written = write_backtest(result, args.out, config, asset_returns=prices.pct_change())
    traded = len(result.strategy.weights)  # from --start to --end, not the file's length
    print(f"backtest on {source}: {traded} sessions traded in {elapsed:.1f} s")
    print(_summary(result))
    print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0

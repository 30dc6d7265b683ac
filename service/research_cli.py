"""``regime-trader research``: tune on a development window, validate once, write a profile.

One command runs the whole protocol:

1. read and validate the price file and the declared search space (every parameter is built
   against the strategy first; an unknown one stops here);
2. create the study in Optuna's journal storage on Redis, or join it when it exists with the
   same configuration (``--storage`` and ``--study`` let other machines join);
3. start ``--workers`` processes that run trials until the study has ``--trials``, showing
   progress (trials done / total, best so far);
4. when every trial has finished: close the study once (chosen parameters, development-window
   comparison, deflated Sharpe ratio, PBO, then the validation window), write the chosen
   parameters as a new profile version in ``<RT_DATA_DIR>/profiles`` and the report
   (``report.md``, ``report.html``) in ``--out``.

``--risk-tolerance NAME`` (``conservative``, ``moderate``, ``aggressive``, or a JSON table as a
portfolio's ``risk_tolerance``) searches under a risk tolerance: every trial, the validation run
and the profile get the strategy parameters it sets (risk budgets by asset class, volatility
target, exposure floor and cap, as ``regime-trader backtest --risk-tolerance``), its band is the
execution band unless ``--weight-band`` is given, and the study and its report name it. A
sampled parameter wins over the tolerance; a ``[fixed]`` entry that sets one of its parameters to
another value is refused by name. ``--asset-classes`` classes symbols the built-in table lacks.

``--macro FILE_OR_URL`` gives the true macro series (a CSV as for ``regime-trader backtest
--macro``) to a strategy that reads them (``macro_source = "series"`` in the space's ``[fixed]``
or among its options): read once, checked to cover every session through the validation end,
and recorded in the study by their SHA-256, so every trial, the validation run, each worker and
a command that joins the study read the same series. A study whose strategy reads them is
refused without it, before the first trial; ``--macro`` for one that reads none is refused too.

``--sleeve-prices FILE`` adds a momentum sleeve's stock closes for ``erc_sleeve``, joined to
``--prices`` on their common sessions as ``regime-trader backtest --sleeve-prices`` joins them
(:mod:`regime_trader.service.sleeve_prices`; a session in one file only is dropped, with a
warning). The study records the file and its SHA-256, so each worker, the close and a command
that joins the study read the same stocks; every trial and the validation run get the file's
columns as ``sleeve_symbols`` unless the space sets them, and every benchmark (the objective's
static ERC, vol-matched ERC, equal weight, ...) runs on the ``--prices`` assets alone. It is
refused for another strategy, and ``erc_sleeve`` without it unless the space sets
``sleeve_symbols``.

Run again on a closed study (or with ``--report-only``) it only rewrites the report from what
the study stores. Storage: ``--storage URL``, else ``REDIS_URL`` (``REDIS_PASSWORD`` too), else
the embedded Redis of ``RT_DATA_DIR`` (this machine only).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import redis
from tqdm import tqdm

from regime_trader.service.macro_source import MacroFileError, load_macro, shown_source
from regime_trader.service.order_types import DEFAULT_NO_TRADE_BAND
from regime_trader.service.pricefile import PriceFileError, load_prices_carried
from regime_trader.service.profiles import (
    Profile,
    ProfileError,
    ProfileSource,
    default_data_dir,
    next_version,
    write_profile,
)
from regime_trader.service.research_close import (
    StudyClose,
    StudyNotFinishedError,
    close_study,
    closed_record,
)
from regime_trader.service.research_config import (
    StudyConfig,
    file_sha256,
    load_study_closes,
    macro_gap,
    macro_sha256,
    space_inputs,
    tolerance_leaves,
    tolerance_space,
)
from regime_trader.service.research_report import write_report
from regime_trader.service.research_space import (
    SearchSpace,
    SearchSpaceError,
    default_space_path,
    load_space,
)
from regime_trader.service.research_storage import (
    DEFAULT_PREFIX,
    embedded_redis_url,
    open_storage,
    shown_url,
    with_password,
)
from regime_trader.service.research_study import (
    Progress,
    StudyConfigError,
    create_or_join,
    load_config,
    run_local_workers,
)
from regime_trader.service.sleeve_prices import SleeveJoin, join_sleeve_prices, sleeve_params
from regime_trader.service.tolerance_options import asset_classes_argument, tolerance_argument
from regime_trader.strategies.macro import MAX_MACRO_STALE_DAYS
from regime_trader.strategies.missing_bars import DEFAULT_MAX_CARRY_SESSIONS
from regime_trader.strategies.research_folds import FoldPlan
from regime_trader.strategies.risk_tolerance import RiskTolerance
from regime_trader.strategies.sleeve_erc import SleeveERC

__all__ = ["add_arguments", "run"]

PROFILE_ATTR = "profile"
_SLUG = re.compile(r"[^a-z0-9_-]+")


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from e


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from e
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)

# A portfolio's default no_trade_band: a study scores what a portfolio with the default planner
# settings trades.
DEFAULT_WEIGHT_BAND = DEFAULT_NO_TRADE_BAND


def _band(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"a band is in [0, 1), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the research command's options on its sub-parser."""
    add = parser.add_argument

    def count(flag: str, kind: Callable[[str], int], default: int, what: str) -> None:
        """An integer option whose help ends with its default."""
        add(flag, type=kind, default=default, help=f"{what} (default {default})")

    add("--prices", type=Path, help="CSV of daily closes (wide or long), as for backtest")
    add("--dev-start", type=_date, help="first trading session of the development window")
    add("--dev-end", type=_date, help="last session of the development window")
    add(
        "--validation-end",
        type=_date,
        help="last session of the validation window (it starts the session after --dev-end)",
    )
    count("--trials", _positive, 50, "trials in the study")
    count("--workers", _positive, 1, "worker processes here")
    add("--storage", help="Redis URL of the journal storage (default REDIS_URL, else embedded)")
    add("--storage-prefix", default=DEFAULT_PREFIX, help=f"key prefix (default {DEFAULT_PREFIX})")
    add("--study", help="study name (default from the strategy, file, windows and seed)")
    add("--out", type=Path, help="report directory (default ./research-out/<study>)")
    add("--seed", type=int, default=0, help="seed of the sampler and the bootstrap (default 0)")
    count("--folds", _positive, 4, "walk-forward test blocks")
    count(
        "--warmup-days",
        _non_negative,
        252,
        "leading return days of the development window no fold scores",
    )
    add(
        "--purge-days",
        type=_non_negative,
        default=1,
        help="returns left out at each block's start, decided before it (default 1 = lag)",
    )
    count("--embargo-days", _non_negative, 21, "returns left out after each test block")
    add("--cost-bps", type=float, default=5.0, help="cost per unit of turnover (default 5)")
    add(
        "--weight-band",
        type=_band,
        default=None,
        help="the live planner's no-trade band on every execution (default the "
        f"--risk-tolerance's, else {DEFAULT_WEIGHT_BAND}: a portfolio's default no_trade_band)",
    )
    add(
        "--exposure-band",
        type=_band,
        default=0.0,
        help="the live planner's exposure band on every execution (default 0)",
    )
    add(
        "--no-drawdown-guard",
        dest="drawdown_guard",
        action="store_false",
        help="choose on the objective alone, not only among trials whose drawdown is no deeper "
        "than vol-matched static ERC's",
    )
    add(
        "--risk-tolerance",
        type=tolerance_argument,
        help="search under a risk tolerance, as a portfolio's risk_tolerance: conservative, "
        'moderate, aggressive, or a JSON object (e.g. \'{"base": "moderate", '
        "\"target_vol\": 0.08}'); its parameters join every trial's fixed ones (a sampled "
        "parameter wins)",
    )
    add(
        "--asset-classes",
        type=asset_classes_argument,
        help="asset class (equity, bond, real) of symbols the built-in table lacks, as a JSON "
        "object, for --risk-tolerance",
    )
    add(
        "--macro",
        help="CSV file or http(s) URL of the true macro series (date, VIX, SPREAD_10Y2Y, "
        'SPREAD_10Y3M), for a strategy with macro_source "series"; read by every trial, '
        "the validation run and each worker, which refuse other data (SHA-256)",
    )
    add(
        "--sleeve-prices",
        type=Path,
        help="CSV of a momentum sleeve's stock closes, joined to --prices on their common "
        "sessions as for backtest (for erc_sleeve: its sleeve_symbols default to the file's "
        "columns, the benchmarks run on the --prices symbols); read by each worker and the "
        "close, which refuse another file (SHA-256)",
    )
    add(
        "--space",
        type=Path,
        help=f"search-space TOML (default the shipped {default_space_path().name})",
    )
    count("--startup-trials", _positive, 10, "random trials before TPE models the results")
    add("--pbo-blocks", type=_positive, default=16, help="CSCV blocks S (even, default 16)")
    count("--bootstrap", _positive, 2000, "bootstrap resamples")
    count(
        "--max-carry-sessions",
        _non_negative,
        DEFAULT_MAX_CARRY_SESSIONS,
        "a thin symbol's blank close is carried this many sessions",
    )
    add("--profile-name", help="name of the profile written at the close (default: the study's)")
    add("--report-only", action="store_true", help="only write the report of --study")
    add("--quiet", action="store_true", help="no progress bar")


class UsageError(ValueError):
    """The arguments cannot make a study."""


def _check_macro(
    args: argparse.Namespace,
    space: SearchSpace,
    prices: pd.DataFrame,
    macro: pd.DataFrame | None,
) -> None:
    """Refuse a study whose strategy reads the macro series without them (or with a gap in
    them), and ``--macro`` for one that reads none: before the first trial, not in each."""
    inputs = space_inputs(space, list(prices.columns))
    if not inputs:
        if macro is not None:
            raise UsageError(
                f"--macro is for a strategy that reads the true macro series "
                f'(macro_source = "series"); {space.source}: {space.strategy!r} reads none'
            )
        return
    if macro is None:
        raise UsageError(
            f"{space.source}: strategy {space.strategy!r} reads the true macro series "
            f'{list(inputs)} (macro_source = "series"): give them with --macro FILE_OR_URL '
            "(date, VIX, SPREAD_10Y2Y, SPREAD_10Y3M, as for regime-trader backtest --macro)"
        )
    gap = macro_gap(prices, macro)
    if gap is not None:
        raise UsageError(
            f"{shown_source(args.macro)}: no macro row on {gap.date()} or in the "
            f"{MAX_MACRO_STALE_DAYS} days before it; the strategy reads the series from the "
            "price file's first session to --validation-end"
        )


def _check_sleeve(space: SearchSpace, sleeve: SleeveJoin | None) -> None:
    """Refuse ``--sleeve-prices`` for a strategy other than ``erc_sleeve``, and ``erc_sleeve``
    without them unless the space names its ``sleeve_symbols`` (else it is plain ERC)."""
    names = "sleeve_symbols" in space.fixed or any(
        p.path == "sleeve_symbols" for p in space.parameters
    )
    if sleeve is not None and space.strategy != SleeveERC.name:
        raise UsageError(
            f"--sleeve-prices is for strategy {SleeveERC.name!r}; {space.source}: "
            f"{space.strategy!r} trades the --prices symbols alone"
        )
    if sleeve is None and space.strategy == SleeveERC.name and not names:
        raise UsageError(
            f"{space.source}: strategy {SleeveERC.name!r} needs its stocks: give them with "
            "--sleeve-prices FILE (as for regime-trader backtest), or set sleeve_symbols in "
            "the space's [fixed]"
        )


def _recorded_macro(source: str) -> str:
    """The macro source as the study records it: a URL as messages show it, a path absolute
    (as the data file's), so a worker started elsewhere finds it."""
    if source.startswith(("http://", "https://")):
        return shown_source(source)
    return str(Path(source).resolve())


def _config(
    args: argparse.Namespace,
    assets: pd.DataFrame,
    macro: pd.DataFrame | None = None,
    sleeve: SleeveJoin | None = None,
) -> StudyConfig:
    """The study the arguments make on the ``--prices`` closes ``assets``; ``macro`` is
    ``--macro`` as loaded, ``sleeve`` ``--sleeve-prices`` joined to ``assets``."""
    prices = assets if sleeve is None else sleeve.closes
    missing = [
        f"--{n}"
        for n in ("dev-start", "dev-end", "validation-end")
        if getattr(args, n.replace("-", "_")) is None
    ]
    if missing:
        raise UsageError(f"a new study needs {', '.join(missing)}")
    dev_start, dev_end, validation_end = args.dev_start, args.dev_end, args.validation_end
    if not dev_start < dev_end < validation_end:
        raise UsageError(
            f"need --dev-start < --dev-end < --validation-end, got {dev_start.date()}, "
            f"{dev_end.date()}, {validation_end.date()}"
        )
    after = prices.index[prices.index > dev_end]
    if len(after) == 0 or after[0] > validation_end:
        raise UsageError(f"{args.prices}: no session after --dev-end {dev_end.date()}")
    if prices.index[-1] < validation_end:
        raise UsageError(
            f"{args.prices}: ends {prices.index[-1].date()}, before --validation-end "
            f"{validation_end.date()}"
        )
    declared = load_space(args.space)
    tolerance: RiskTolerance | None = args.risk_tolerance
    if tolerance is None and args.asset_classes:
        raise UsageError("--asset-classes is for --risk-tolerance (it places symbols in classes)")
    _check_sleeve(declared, sleeve)
    space, knobs = declared, None
    if tolerance is not None:
        stocks = () if sleeve is None else sleeve.sleeve_symbols
        space, knobs = tolerance_space(
            declared, tolerance, list(prices.columns), args.asset_classes, stocks
        )
    # Checked as the trials build it: with the sleeve's stocks as its sleeve_symbols.
    checked = space
    if sleeve is not None:
        fixed = sleeve_params(space.strategy, dict(space.fixed), sleeve)
        checked = dataclasses.replace(space, fixed=fixed)
    checked.check(list(prices.columns))
    _check_macro(args, checked, prices.loc[:validation_end], macro)
    band = args.weight_band
    if band is None:  # as a portfolio's: the tolerance's band unless its own is given
        band = DEFAULT_WEIGHT_BAND if tolerance is None else tolerance.no_trade_band
    config = StudyConfig(
        data_file=str(args.prices.resolve()),
        data_sha256=file_sha256(args.prices),
        symbols=tuple(assets.columns),
        max_carry_sessions=args.max_carry_sessions,
        dev_start=str(dev_start.date()),
        dev_end=str(dev_end.date()),
        validation_start=str(after[0].date()),
        validation_end=str(validation_end.date()),
        n_trials=args.trials,
        n_folds=args.folds,
        warmup_days=args.warmup_days,
        purge_days=args.purge_days,
        embargo_days=args.embargo_days,
        cost_bps=args.cost_bps,
        lag=1,
        seed=args.seed,
        startup_trials=args.startup_trials,
        strategy=space.strategy,
        space_source=space.source,
        space_text=space.text,
        pbo_blocks=args.pbo_blocks,
        n_boot=args.bootstrap,
        execution_weight_band=band,
        execution_exposure_band=args.exposure_band,
        drawdown_guard=args.drawdown_guard,
        risk_tolerance=None if tolerance is None else tolerance.to_dict(),
        risk_tolerance_params=knobs,
        asset_classes=dict(args.asset_classes) if tolerance and args.asset_classes else None,
        declared_space_text=None if tolerance is None else declared.text,
        macro_source=None if macro is None else _recorded_macro(args.macro),
        macro_sha256=None if macro is None else macro_sha256(macro),
        sleeve_file=None if sleeve is None else str(args.sleeve_prices.resolve()),
        sleeve_sha256=None if sleeve is None else file_sha256(args.sleeve_prices),
    )
    try:
        config.plan(prices.index)
    except ValueError as e:
        raise UsageError(f"the folds do not fit the development window: {e}") from e
    return config


def _default_study_name(config: StudyConfig) -> str:
    stem = Path(config.data_file).stem
    name = f"{config.strategy}-{stem}-dev{config.dev_start[:4]}-{config.dev_end[:4]}"
    # Two tolerances are two studies: the same default name would refuse the second one.
    tolerance = config.risk_tolerance_name
    if tolerance is not None:
        name += "-" + _SLUG.sub("-", tolerance.lower()).strip("-")
    return f"{name}-seed{config.seed}"


@contextlib.contextmanager
def _storage_url(args: argparse.Namespace) -> Iterator[str]:
    if args.storage:
        yield args.storage
    elif os.environ.get("REDIS_URL"):
        yield with_password(os.environ["REDIS_URL"], os.environ.get("REDIS_PASSWORD"))
    else:
        with embedded_redis_url(default_data_dir()) as url:
            yield url


def _progress_bar(quiet: bool, total: int) -> tuple[Any, Any]:
    """A progress bar on a terminal; elsewhere (a job's log) one line per tenth of the trials."""
    if quiet:
        return (lambda p: None), (lambda: None)
    if not sys.stderr.isatty():
        return _progress_lines(max(1, total // 10)), (lambda: None)
    bar = tqdm(total=total, unit="trial", desc="research", file=sys.stderr)

    def show(p: Progress) -> None:
        bar.total = p.total
        bar.update(p.finished - bar.n)
        bar.set_postfix_str(f"running {p.running}, failed {p.failed}, best {_best(p)}")

    return show, bar.close


def _best(p: Progress) -> str:
    return "-" if p.best_value is None else f"{p.best_value:.3f} (#{p.best_trial})"


def _progress_lines(every: int) -> Any:
    printed = {"finished": -every}  # the first call prints

    def show(p: Progress) -> None:
        last = printed["finished"]
        if p.finished >= last + every or (p.finished == p.total and last != p.total):
            printed["finished"] = p.finished
            print(
                f"research: {p.finished}/{p.total} trials, running {p.running}, "
                f"failed {p.failed}, best {_best(p)}",
                file=sys.stderr,
                flush=True,
            )

    return show


def _figures(record: StudyClose) -> dict[str, float]:
    dev, val = record.development, record.validation
    raw: dict[str, Any] = {
        "objective": record.objective,
        "dev_sharpe": dev.rows["strategy"]["sharpe"],
        "dev_erc_sharpe": dev.rows["erc_static"]["sharpe"],
        "dev_sharpe_difference": dev.difference["difference"],
        "dev_max_drawdown": dev.rows["strategy"]["max_drawdown"],
        "dev_vol_matched_max_drawdown": dev.rows["erc_static_vol_matched"]["max_drawdown"],
        "dev_cagr": dev.rows["strategy"]["cagr"],
        "deflated_sharpe": None if record.deflated is None else record.deflated["dsr"],
        "deflated_sharpe_active": (
            None if record.deflated_active is None else record.deflated_active["dsr"]
        ),
        "pbo": None if record.pbo is None else record.pbo["pbo"],
        "validation_sharpe": val.rows["strategy"]["sharpe"],
        "validation_erc_sharpe": val.rows["erc_static"]["sharpe"],
        "validation_sharpe_difference": val.difference["difference"],
        "validation_sharpe_difference_ci_low": val.difference["ci_low"],
        "validation_sharpe_difference_ci_high": val.difference["ci_high"],
        "validation_max_drawdown": val.rows["strategy"]["max_drawdown"],
        "validation_erc_max_drawdown": val.rows["erc_static"]["max_drawdown"],
        "validation_vol_matched_max_drawdown": val.rows["erc_static_vol_matched"]["max_drawdown"],
        "validation_cagr": val.rows["strategy"]["cagr"],
    }
    return {k: float(v) for k, v in raw.items() if v is not None and math.isfinite(float(v))}


def _write_profile(args: argparse.Namespace, study: Any, record: StudyClose) -> str:
    """Write the chosen parameters as a profile once per study; returns its label."""
    existing = study.user_attrs.get(PROFILE_ATTR)
    if isinstance(existing, dict):
        return f"{existing['name']} v{existing['version']} (written at the close)"
    config = load_config(study)
    tolerance = config.risk_tolerance_name
    name = args.profile_name or _SLUG.sub("-", study.study_name.lower()).strip("-_")[:64]
    data_dir = default_data_dir()
    profile = Profile(
        name=name,
        version=next_version(name, data_dir),
        strategy_name=config.strategy,
        params=record.chosen_overrides,
        source=ProfileSource(
            symbols=config.symbols,
            study=study.study_name,
            data_file=config.data_file,
            data_sha256=config.data_sha256,
            dev_start=config.dev_start,
            dev_end=config.dev_end,
            validation_start=config.validation_start,
            validation_end=config.validation_end,
        ),
        figures=_figures(record),
        description=f"chosen by research study {study.study_name} (trial {record.chosen_trial})"
        + ("" if tolerance is None else f" under risk tolerance {tolerance}"),
        created=record.closed_at,
    )
    path = write_profile(profile, data_dir)
    study.set_user_attr(PROFILE_ATTR, {"name": profile.name, "version": profile.version})
    return f"{profile.label} at {path}"


def _plan(config: StudyConfig, prices: pd.DataFrame | None) -> FoldPlan | None:
    return None if prices is None else config.plan(prices.index)


def _report_only(args: argparse.Namespace, url: str) -> int:
    if not args.study:
        raise UsageError("--report-only needs --study")
    import optuna

    study = optuna.load_study(study_name=args.study, storage=open_storage(url, args.storage_prefix))
    config = load_config(study)
    prices = None
    with contextlib.suppress(OSError, ValueError):  # the fold table needs the data file
        prices, _ = load_study_closes(config, args.prices, args.sleeve_prices)
    out = args.out or Path("research-out") / args.study
    paths = write_report(study, shown_url(url), _plan(config, prices), out)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _join_sleeve(args: argparse.Namespace, prices: pd.DataFrame) -> SleeveJoin | None:
    """``--sleeve-prices`` joined to the closes, each session dropped from one file said."""
    if args.sleeve_prices is None:
        return None
    sleeve = join_sleeve_prices(prices, args.sleeve_prices, args.max_carry_sessions)
    for warning in sleeve.warnings():
        print(f"regime-trader research: warning: {warning}", file=sys.stderr)
    return sleeve


def _study(args: argparse.Namespace, url: str) -> int:
    if args.prices is None:
        raise UsageError("--prices is required (the study's data file)")
    prices = load_prices_carried(args.prices, args.max_carry_sessions).closes
    sleeve = _join_sleeve(args, prices)
    sessions = prices.index if sleeve is None else sleeve.closes.index  # the trials' sessions
    macro = None if args.macro is None else load_macro(args.macro)  # once: trials and close
    config = _config(args, prices, macro, sleeve)
    name = args.study or _default_study_name(config)
    study = create_or_join(url, args.storage_prefix, name, config)
    over = [path for path, _, sampled in tolerance_leaves(config) if sampled]
    if over:  # said before the search, not only in the report after it
        print(
            f"research: the space samples {', '.join(over)}: the sampled values win over risk "
            f"tolerance {config.risk_tolerance_name!r}",
            file=sys.stderr,
        )
    out = args.out or Path("research-out") / name
    if closed_record(study) is None:
        show, close_bar = _progress_bar(args.quiet, config.n_trials)
        try:
            codes = run_local_workers(
                url,
                args.storage_prefix,
                study,
                args.prices,
                args.workers,
                show,
                macro=args.macro,
                sleeve=args.sleeve_prices,
            )
        finally:
            close_bar()
        if any(codes):
            print(f"regime-trader research: workers exited with {codes}", file=sys.stderr)
            return 1
    else:
        print(f"study {name!r} is closed: it takes no more trials; writing its report")
    try:
        record = close_study(study, url, args.storage_prefix, prices, macro, args.sleeve_prices)
    except StudyNotFinishedError as e:
        paths = write_report(study, shown_url(url), config.plan(sessions), out)
        print(f"{e}; the study closes when its last trial ends. Report so far: {paths[0]}")
        return 0
    profile = _write_profile(args, study, record)
    paths = write_report(study, shown_url(url), config.plan(sessions), out)
    print(
        f"study {name!r}: chosen trial {record.chosen_trial} (objective {record.objective:.3f}); "
        f"validation Sharpe {record.validation.rows['strategy']['sharpe']:.2f} against static "
        f"ERC {record.validation.rows['erc_static']['sharpe']:.2f}"
    )
    print(f"profile {profile}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run (or join, or report on) a study; returns the process exit code."""
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with _storage_url(args) as url:
            if args.report_only:
                return _report_only(args, url)
            return _study(args, url)
    except (
        UsageError,
        PriceFileError,
        MacroFileError,
        SearchSpaceError,
        StudyConfigError,
        ProfileError,
    ) as e:
        print(f"regime-trader research: {e}", file=sys.stderr)
        return 2
    except redis.RedisError as e:
        print(f"regime-trader research: the study storage is unreachable: {e}", file=sys.stderr)
        return 1
    except KeyError as e:  # optuna.load_study of an unknown name
        print(f"regime-trader research: no such study: {e}", file=sys.stderr)
        return 2


def main() -> int:
    parser = argparse.ArgumentParser(prog="regime-trader research", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

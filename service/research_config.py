"""What a research study is: its data, windows, folds, costs and search space, stored with it.

:class:`StudyConfig` is written into the Optuna study (user attribute ``config``) when the study
is created; every worker, on this machine or another, rebuilds the same folds and trials from
it, and refuses to join a study whose configuration differs from its own arguments. The data
file is identified by its SHA-256, so a worker elsewhere may read it from another path but
never from other data.

A study searched under a risk tolerance (``--risk-tolerance``, as a portfolio's
``risk_tolerance``) stores the tolerance, the strategy parameters it sets, and as its
``space_text`` the space the trials sample: the declared one with those parameters added to its
``[fixed]`` (:func:`tolerance_space`). Every worker and the close read that one text, so a trial,
the validation run and the profile written at the close all trade what the tolerance sets, and
the parameters the space samples win over it.

A study of a strategy that reads the true macro series (``macro_source = "series"``: its built
strategy has :attr:`~regime_trader.strategies.base.Strategy.extra_inputs`) stores where the
series were read (``macro_source``, as :func:`~regime_trader.service.macro_source.shown_source`
shows it) and their SHA-256 (:func:`macro_sha256`); every worker and the close give the same
series to every backtest, and refuse other data (:func:`check_study_macro`).

A study of ``erc_sleeve`` with a sleeve's stock file (``--sleeve-prices``) stores the file
(``sleeve_file``, absolute) and its SHA-256; every worker and the close join it to the price file
as the backtest does (:func:`load_study_sleeve`, refusing another file), give each trial the
file's columns as ``sleeve_symbols`` unless the space sets them
(:func:`~regime_trader.service.sleeve_prices.sleeve_params`), and run the benchmarks on the
study's ``symbols`` (the price file's: the assets) alone.

The trial records (:func:`record_trial`, :func:`trial_returns`) are what a finished trial
leaves in the study besides its objective value: its fold scores and its daily returns on the
scored days (for the deflated Sharpe ratio and PBO), as typed JSON.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from regime_trader.service.macro_source import MacroFileError, load_macro, shown_source
from regime_trader.service.pricefile import PriceFileError, load_prices_carried
from regime_trader.service.profiles import merged_params
from regime_trader.service.research_space import (
    Choice,
    SearchSpace,
    SearchSpaceError,
    parse_space,
)
from regime_trader.service.research_trial import FoldScore, TrialEvaluator, TrialScore
from regime_trader.service.sleeve_prices import SleeveJoin, join_sleeve_prices
from regime_trader.strategies.macro import MACRO_COLUMNS, join_macro
from regime_trader.strategies.rebalance import RebalanceBand
from regime_trader.strategies.registry import build_strategy
from regime_trader.strategies.research_folds import FoldPlan, plan_folds, return_days
from regime_trader.strategies.risk_tolerance import RiskTolerance, RiskToleranceError

__all__ = [
    "StudyConfig",
    "check_study_macro",
    "file_sha256",
    "load_study_closes",
    "load_study_macro",
    "load_study_prices",
    "load_study_sleeve",
    "macro_gap",
    "macro_sha256",
    "record_trial",
    "space_inputs",
    "tolerance_leaves",
    "tolerance_space",
    "trial_folds",
    "trial_returns",
]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study's trials and its validation.

    Attributes
    ----------
    data_file, data_sha256 : str
        The price file as given when the study was created, and its SHA-256.
    symbols : tuple of str
    max_carry_sessions : int
        The carry policy applied when reading the file (as the live cycle's).
    dev_start, dev_end, validation_start, validation_end : str
        ISO dates: trading in the development window starts on the first session on or after
        ``dev_start``; the validation window starts on the session after ``dev_end``.
    n_trials : int
        Trials the study runs in all (every worker stops when the study has that many).
    n_folds, warmup_days, purge_days, embargo_days : int
        The fold plan (:func:`regime_trader.strategies.research_folds.plan_folds`).
    cost_bps : float
    lag : int
    seed : int
        Seed of the sampler (each trial's random draws come from ``(seed, trial number)``).
    startup_trials : int
        Trials sampled at random before TPE models the results.
    strategy, space_source, space_text : str
        The declared search space, as written.
    pbo_blocks : int
        S of the CSCV (reduced to what the scored days allow).
    n_boot : int
    block_length : float
        Stationary-bootstrap settings of the Sharpe-difference intervals.
    execution_weight_band, execution_exposure_band : float
        The live planner's rebalancing band (:class:`~regime_trader.strategies.rebalance.
        RebalanceBand`) applied to every execution of every trial, benchmark and window, so a
        study scores what a portfolio with that ``no_trade_band`` / ``exposure_band`` trades.
    drawdown_guard : bool
        A trial is *feasible* only if its maximum drawdown after the warm-up is no deeper than
        that of static ERC scaled to its volatility on the same days; the sampler prefers
        feasible trials and the close chooses among them (see ``research_trial``).
    risk_tolerance : dict or None
        The risk tolerance the study searched under (``RiskTolerance.to_dict()``), or None.
    risk_tolerance_params : dict or None
        The strategy parameters that tolerance sets, added to the space's ``[fixed]``.
    asset_classes : dict or None
        The classes given for symbols the built-in table lacks (``--asset-classes``).
    declared_space_text : str or None
        Under a tolerance, the space as written (``space_text`` is then the space searched).
    macro_source, macro_sha256 : str or None
        The true macro series the strategy reads (``--macro``, shown without a URL's user,
        password or query) and their :func:`macro_sha256`; None when it reads none.
    sleeve_file, sleeve_sha256 : str or None
        The sleeve's stock file (``--sleeve-prices``, absolute) joined to the price file, and
        its SHA-256; None for a study on the price file alone.
    """

    data_file: str
    data_sha256: str
    symbols: tuple[str, ...]
    max_carry_sessions: int
    dev_start: str
    dev_end: str
    validation_start: str
    validation_end: str
    n_trials: int
    n_folds: int
    warmup_days: int
    purge_days: int
    embargo_days: int
    cost_bps: float
    lag: int
    seed: int
    startup_trials: int
    strategy: str
    space_source: str
    space_text: str
    pbo_blocks: int = 16
    n_boot: int = 2000
    block_length: float = 21.0
    execution_weight_band: float = 0.0
    execution_exposure_band: float = 0.0
    drawdown_guard: bool = False
    risk_tolerance: dict[str, Any] | None = None
    risk_tolerance_params: dict[str, Any] | None = None
    asset_classes: dict[str, str] | None = None
    declared_space_text: str | None = None
    macro_source: str | None = None
    macro_sha256: str | None = None
    sleeve_file: str | None = None
    sleeve_sha256: str | None = None

    @property
    def risk_tolerance_name(self) -> str | None:
        return None if self.risk_tolerance is None else str(self.risk_tolerance["name"])

    @property
    def execution_band(self) -> RebalanceBand:
        return RebalanceBand(self.execution_weight_band, self.execution_exposure_band)

    @property
    def dev_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``dev_start`` and ``dev_end`` as timestamps."""
        return pd.Timestamp(self.dev_start), pd.Timestamp(self.dev_end)

    @property
    def validation_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``validation_start`` and ``validation_end`` as timestamps."""
        return pd.Timestamp(self.validation_start), pd.Timestamp(self.validation_end)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["symbols"] = list(self.symbols)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"study config has unknown fields {unknown}")
        values = dict(data)
        values["symbols"] = tuple(values["symbols"])
        return cls(**values)

    def differences(self, other: StudyConfig) -> list[str]:
        """Fields whose values differ (the data's, macro series' and sleeve file's paths may:
        their hashes may not)."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if f.name not in ("data_file", "space_source", "macro_source", "sleeve_file")
            and getattr(self, f.name) != getattr(other, f.name)
        ]

    def plan(self, sessions: pd.Index) -> FoldPlan:
        """The fold plan on the development window's return days."""
        days = return_days(sessions, *self.dev_window, self.lag)
        return plan_folds(
            days,
            n_folds=self.n_folds,
            warmup_days=self.warmup_days,
            purge_days=self.purge_days,
            embargo_days=self.embargo_days,
        )

    def evaluator(self, prices: pd.DataFrame, macro: pd.DataFrame | None = None) -> TrialEvaluator:
        """The evaluator of this study's trials on ``prices`` and its macro series (the
        workers' and the close's; ``macro`` as :func:`load_study_macro` checks it). For a
        sleeve study ``prices`` are the joined closes (:func:`load_study_sleeve`) and static
        ERC runs on the study's ``symbols`` alone."""
        dev_start, dev_end = self.dev_window
        return TrialEvaluator(
            prices,
            self.plan(prices.index),
            self.strategy,
            dev_start=dev_start,
            dev_end=dev_end,
            cost_bps=self.cost_bps,
            lag=self.lag,
            execution_band=self.execution_band,
            macro=macro,
            benchmark_symbols=self.benchmark_symbols,
        )

    @property
    def benchmark_symbols(self) -> list[str] | None:
        """The symbols the benchmarks run on: the assets of a sleeve study, else None (all)."""
        return None if self.sleeve_sha256 is None else list(self.symbols)


TOLERANCE_HEADER = (
    "# The search space {source}, with the strategy parameters of risk tolerance {name!r} added\n"
    "# to [fixed] by `regime-trader research --risk-tolerance` (the file's comments are not "
    "kept).\n"
)


def tolerance_space(
    space: SearchSpace,
    tolerance: RiskTolerance,
    symbols: Sequence[str],
    asset_classes: Mapping[str, str] | None = None,
    sleeve: Sequence[str] = (),
) -> tuple[SearchSpace, dict[str, Any]]:
    """The space a study searches under ``tolerance``, and the strategy parameters it sets.

    The tolerance's parameters (:meth:`~regime_trader.strategies.risk_tolerance.RiskTolerance.
    strategy_params`, as a portfolio's ``risk_tolerance`` resolves them) join the space's
    ``[fixed]``; a sampled parameter still wins over them (it is set after ``[fixed]``), so a
    space may search ``policy.target_vol`` around a tolerance's budgets. The returned space is
    parsed from its own text, the one the study stores. ``sleeve``: the sleeve's stocks among
    ``symbols`` when the space's ``[fixed]`` names none (a ``--sleeve-prices`` file's columns).
    For ``erc_sleeve`` the tolerance names its budgets by asset and ``sleeve``, so a space may
    sample ``risk_budgets.sleeve`` over them.

    Raises
    ------
    SearchSpaceError
        If the strategy has no risk knobs, a symbol has no asset class, or ``[fixed]`` sets a
        parameter the tolerance sets to another value (each such key named).
    """
    sleeve = space.fixed.get("sleeve_symbols") or sleeve
    try:
        params = tolerance.strategy_params(
            space.strategy, symbols, asset_classes, tuple(sleeve) if sleeve else ()
        )
    except RiskToleranceError as e:
        raise SearchSpaceError(f"{space.source}: risk tolerance {tolerance.name!r}: {e}") from e
    clashes = _clashes(space.fixed, params)
    if clashes:
        raise SearchSpaceError(
            f"{space.source}: [fixed] sets {', '.join(clashes)}, which risk tolerance "
            f"{tolerance.name!r} sets to {', '.join(repr(_at(params, k)) for k in clashes)}: "
            "remove it from [fixed], or search it as a [[parameter]] (a sampled value wins over "
            "the tolerance)"
        )
    data = tomllib.loads(space.text)
    data["fixed"] = merged_params(data.get("fixed", {}), params)
    header = TOLERANCE_HEADER.format(source=space.source, name=tolerance.name)
    return parse_space(header + tomli_w.dumps(data), space.source), params


def tolerance_leaves(config: StudyConfig) -> list[tuple[str, Any, bool]]:
    """The tolerance's parameters as ``(dotted path, value, sampled)``: ``sampled`` when the
    space samples that path, which then wins over the tolerance. Empty without a tolerance."""
    if config.risk_tolerance_params is None:
        return []
    sampled = {p.path for p in parse_space(config.space_text, config.space_source).parameters}
    return [(k, v, k in sampled) for k, v in _leaves(config.risk_tolerance_params)]


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _frozen(value: Any) -> Any:
    """Lists as tuples, recursively (a space's values are tuples, a tolerance's lists)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _clashes(fixed: Mapping[str, Any], params: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys ``fixed`` and ``params`` both set, to different values (tables merge)."""
    out: list[str] = []
    for key, value in params.items():
        if key not in fixed:
            continue
        mine = fixed[key]
        if isinstance(mine, Mapping) and isinstance(value, Mapping):
            out += _clashes(mine, value, f"{prefix}{key}.")
        elif _frozen(mine) != _frozen(value):
            out.append(f"{prefix}{key}")
    return out


def _at(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        node = node[key]
    return node


def load_study_prices(config: StudyConfig, path: Path | None = None) -> pd.DataFrame:
    """Read the study's price file (from ``path`` if given) and check it is the same data.

    Raises
    ------
    ValueError
        If the file's SHA-256 or symbols differ from the study's.
    regime_trader.service.pricefile.PriceFileError
        If the file is unreadable or invalid.
    """
    source = path or Path(config.data_file)
    sha = file_sha256(source)
    if sha != config.data_sha256:
        raise ValueError(
            f"{source}: SHA-256 {sha[:12]}... differs from the study's data file "
            f"{config.data_file} ({config.data_sha256[:12]}...): not the same data"
        )
    closes = load_prices_carried(source, config.max_carry_sessions).closes
    if tuple(closes.columns) != config.symbols:
        raise ValueError(f"{source}: symbols {list(closes.columns)} != {list(config.symbols)}")
    return closes


def load_study_sleeve(
    config: StudyConfig, prices: pd.DataFrame, path: Path | None = None
) -> SleeveJoin | None:
    """The study's sleeve file (from ``path`` if given, else where the study read it), checked
    to be the same bytes and joined to the study's ``prices`` as the backtest joins it; None
    for a study without one.

    Raises
    ------
    PriceFileError
        If the study has no sleeve file and ``path`` is given, the file's SHA-256 differs from
        the study's, or the join refuses it.
    """
    if path is None:
        if config.sleeve_file is None:
            return None
        path = Path(config.sleeve_file)
    if config.sleeve_sha256 is None:
        raise PriceFileError(
            f"{path}: the study has no sleeve prices (its strategy {config.strategy} trades "
            "the price file's symbols)"
        )
    sha = file_sha256(path)
    if sha != config.sleeve_sha256:
        raise PriceFileError(
            f"{path}: SHA-256 {sha[:12]}... differs from the study's sleeve file "
            f"{config.sleeve_file} ({config.sleeve_sha256[:12]}...): not the same data"
        )
    return join_sleeve_prices(prices, path, config.max_carry_sessions)


def load_study_closes(
    config: StudyConfig, prices_path: Path, sleeve_path: Path | None = None
) -> tuple[pd.DataFrame, SleeveJoin | None]:
    """The closes the study's trials run on, checked as :func:`load_study_prices` and
    :func:`load_study_sleeve` check them: the price file's, with the sleeve's stocks joined
    for a sleeve study; and that join (None without one)."""
    prices = load_study_prices(config, prices_path)
    sleeve = load_study_sleeve(config, prices, sleeve_path)
    return (prices if sleeve is None else sleeve.closes), sleeve


def macro_sha256(macro: pd.DataFrame) -> str:
    """Hex SHA-256 of macro series as loaded: their dates and values, written canonically.

    Of the data rather than of a file's bytes: :func:`~regime_trader.service.macro_source.
    load_macro` fetches a URL once and keeps no text, and the same series read from a copy
    elsewhere (another path, a URL) is the same data.
    """
    text = macro.to_csv(date_format="%Y-%m-%d", float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_study_macro(config: StudyConfig, macro: pd.DataFrame | None, where: str) -> None:
    """Refuse macro series (read from ``where``) other than the study's, or none for a study
    that reads them.

    Raises
    ------
    MacroFileError
        Naming the source, both hashes and the study's source.
    """
    sha = None if macro is None else macro_sha256(macro)
    if sha == config.macro_sha256:
        return
    if config.macro_sha256 is None:
        raise MacroFileError(f"{where}: the study's strategy reads no macro series")
    study = f"the study's macro series {config.macro_source} ({config.macro_sha256[:12]}...)"
    if sha is None:
        raise MacroFileError(f"the strategy reads {study}: give them (--macro FILE_OR_URL)")
    raise MacroFileError(
        f"{where}: SHA-256 {sha[:12]}... of the macro series differs from {study}: "
        "not the same data"
    )


def load_study_macro(config: StudyConfig, source: str | None = None) -> pd.DataFrame | None:
    """The study's macro series from ``source`` (default where the study read them), checked
    to be the same data; None for a study whose strategy reads none.

    Raises
    ------
    MacroFileError
        If they cannot be read or are not the study's (:func:`check_study_macro`).
    """
    if source is None:
        if config.macro_source is None:
            return None
        source = config.macro_source
    macro = load_macro(source)
    check_study_macro(config, macro, shown_source(source))
    return macro


def space_inputs(space: SearchSpace, symbols: Sequence[str]) -> tuple[str, ...]:
    """The extra inputs beside the closes (the macro series' columns) that some trial's
    strategy reads: the strategy built with the fixed overrides, then with each option of
    each parameter (as :meth:`~regime_trader.service.research_space.SearchSpace.check` builds
    it; run that first, this builds again without catching a refusal), and with every
    combination of the options of the ``macro_*`` parameters, which decide it together (a
    space may sample ``macro_source`` and ``macro_features`` apart)."""
    candidates: list[dict[str, Any]] = [{}]
    macro: list[list[dict[str, Any]]] = []
    for p in space.parameters:
        base = {} if p.when is None else {p.when.path: p.when.labels[0]}
        options = p.distribution.labels if isinstance(p.distribution, Choice) else None
        chosen = [{**base, p.path: value} for value in options or p.distribution.candidates()]
        candidates += chosen
        if p.path.rsplit(".", 1)[-1].startswith("macro_"):
            macro.append(chosen)
    for combination in itertools.product(*macro) if len(macro) > 1 else ():
        candidates.append({k: v for part in combination for k, v in part.items()})
    names: dict[str, None] = {}
    for sampled in candidates:
        strategy = build_strategy(space.strategy, symbols, space.overrides(sampled))
        names.update(dict.fromkeys(strategy.extra_inputs))
    return tuple(names)


def macro_gap(prices: pd.DataFrame, macro: pd.DataFrame) -> pd.Timestamp | None:
    """The first session of ``prices`` the series leave blank (no row on it or within
    :data:`~regime_trader.strategies.macro.MAX_MACRO_STALE_DAYS` days before), or None."""
    blank = join_macro(prices, macro)[list(MACRO_COLUMNS)].isna().any(axis=1)
    return pd.Timestamp(blank.index[blank.to_numpy()][0]) if blank.any() else None


def _encode(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").copy()


def record_trial(score: TrialScore, seconds: float) -> dict[str, Any]:
    """The user attributes a finished trial keeps (JSON values)."""
    return {
        "folds": [asdict(f) for f in score.folds],
        "scored_returns": _encode(score.scored_returns),
        "sharpe": score.sharpe,
        "max_drawdown": score.max_drawdown,
        "vol_matched_max_drawdown": score.vol_matched_max_drawdown,
        "drawdown_excess": score.drawdown_excess,
        "turnover_per_year": score.turnover_per_year,
        "n_warnings": score.n_warnings,
        "seconds": seconds,
    }


def trial_returns(user_attrs: dict[str, Any]) -> np.ndarray:
    """A finished trial's daily returns on the scored days."""
    return _decode(str(user_attrs["scored_returns"]))


def trial_folds(user_attrs: dict[str, Any]) -> tuple[FoldScore, ...]:
    """A finished trial's fold scores."""
    return tuple(FoldScore(**f) for f in user_attrs["folds"])

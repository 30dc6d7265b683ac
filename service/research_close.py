"""Closing a research study: choose, measure on the development window, validate once.

When every trial has finished the study is *closed*, once, under a Redis lock:

1. the chosen parameters are those of the best complete trial (highest objective) among the
   feasible ones when the study has a drawdown guard (any complete trial if none is feasible,
   said in the report);
2. on the development window (from the end of the folds' warm-up to the development end) the
   chosen strategy is compared with static ERC, vol-matched static ERC, equal weight, 60/40 and
   buy-and-hold, with the block-bootstrap interval of its Sharpe difference against static ERC;
3. over the complete trials: the deflated Sharpe ratio of the chosen trial (of its returns, and
   of its active returns over vol-matched static ERC, on the scored days) and PBO by CSCV;
4. then, and only then, the chosen parameters are run on the validation window (the session
   after the development end to the validation end).

The result (:class:`StudyClose`) is stored in the study (user attribute ``closed``). Every later
report shows it from there; a closed study takes no more trials, so the protocol itself cannot
be used to look at the validation window again and again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from regime_trader.service.research_config import (
    StudyConfig,
    check_study_macro,
    load_study_sleeve,
    trial_returns,
)
from regime_trader.service.research_space import parse_space
from regime_trader.service.research_study import CLOSED_ATTR, load_config
from regime_trader.service.research_trial import WindowResult, evaluate_window
from regime_trader.service.sleeve_prices import SleeveJoin, sleeve_params
from regime_trader.strategies.research_pbo import probability_of_backtest_overfitting
from regime_trader.strategies.research_stats import deflated_sharpe_ratio

__all__ = [
    "StudyClose",
    "StudyNotFinishedError",
    "choose_trial",
    "close_study",
    "closed_record",
    "is_feasible",
]

LOCK_TTL_SECS = 3600


class StudyNotFinishedError(RuntimeError):
    """The study still has trials to run or trials running."""


@dataclass(frozen=True)
class StudyClose:
    """What closing a study computed, once.

    Attributes
    ----------
    closed_at : str
        ISO time (UTC).
    chosen_feasible : bool
        Whether the chosen trial met the drawdown guard (False only if no trial did: then the
        best trial is chosen and the report says so).
    chosen_params : dict
        Optuna's parameters of the chosen trial (choice labels).
    chosen_overrides : dict
        The strategy overrides they stand for (nested, as a profile stores them).
    deflated : dict or None
        :class:`~regime_trader.strategies.research_stats.DeflatedSharpe` fields of the chosen
        trial's returns on the scored days (None with fewer than 2 complete trials).
    deflated_active : dict or None
        The same for its active returns over vol-matched static ERC.
    pbo : dict or None
        ``pbo``, ``n_blocks``, ``n_combinations``, ``n_obs``, ``n_trials``, ``prob_oos_loss``.
    """

    closed_at: str
    n_complete: int
    n_failed: int
    chosen_trial: int
    chosen_feasible: bool
    n_feasible: int
    chosen_params: dict[str, Any]
    chosen_overrides: dict[str, Any]
    objective: float
    development: WindowResult
    deflated: dict[str, float] | None
    deflated_active: dict[str, float] | None
    pbo: dict[str, float] | None
    validation: WindowResult

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["development"] = self.development.to_dict()
        data["validation"] = self.validation.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyClose:
        values = dict(data)
        values["development"] = WindowResult.from_dict(data["development"])
        values["validation"] = WindowResult.from_dict(data["validation"])
        return cls(**values)


def is_feasible(config: StudyConfig, trial: FrozenTrial) -> bool:
    """Whether a complete trial meets the study's drawdown guard (always, without one)."""
    if not config.drawdown_guard:
        return True
    return float(trial.user_attrs.get("drawdown_excess", math.inf)) <= 0.0


def choose_trial(
    config: StudyConfig, complete: list[FrozenTrial]
) -> tuple[FrozenTrial, list[FrozenTrial]]:
    """The best complete trial among the feasible ones (among all if none is), and those.

    Ties go to the earlier trial.
    """
    feasible = [t for t in complete if is_feasible(config, t)]
    chosen = max(feasible or complete, key=lambda t: (float(t.value or -math.inf), -t.number))
    return chosen, feasible


def closed_record(study: Study) -> StudyClose | None:
    """The study's close record, or None while it is open."""
    data = study.user_attrs.get(CLOSED_ATTR)
    return None if data is None else StudyClose.from_dict(data)


def _pbo_blocks(requested: int, n_obs: int) -> int:
    """The largest even S <= ``requested`` that leaves >= 20 days a block (at least 2)."""
    blocks = min(requested, n_obs // 20)
    return max(2, blocks - blocks % 2)


def _selection_statistics(
    config: StudyConfig, trials: list[FrozenTrial], chosen: FrozenTrial, erc: np.ndarray
) -> tuple[dict[str, float] | None, dict[str, float] | None, dict[str, float] | None]:
    if len(trials) < 2:
        return None, None, None
    matrix = np.column_stack([trial_returns(t.user_attrs) for t in trials])
    col = [t.number for t in trials].index(chosen.number)
    sd = matrix.std(axis=0, ddof=1)
    sharpes = matrix.mean(axis=0) / np.where(sd > 0, sd, np.nan)
    active = matrix - erc[:, None] * (sd / erc.std(ddof=1))[None, :]
    active_sd = active.std(axis=0, ddof=1)
    active_sharpes = active.mean(axis=0) / np.where(active_sd > 0, active_sd, np.nan)
    finite = np.isfinite(sharpes)
    deflated = asdict(deflated_sharpe_ratio(matrix[:, col], sharpes[finite]))
    finite_active = np.isfinite(active_sharpes)
    deflated_active = (
        asdict(deflated_sharpe_ratio(active[:, col], active_sharpes[finite_active]))
        if active_sd[col] > 0
        else None
    )
    blocks = _pbo_blocks(config.pbo_blocks, matrix.shape[0])
    cscv = probability_of_backtest_overfitting(matrix, n_blocks=blocks)
    pbo = {
        "pbo": cscv.pbo,
        "n_blocks": float(cscv.n_blocks),
        "n_combinations": float(cscv.n_combinations),
        "n_obs": float(cscv.n_obs),
        "n_trials": float(cscv.n_trials),
        "prob_oos_loss": cscv.prob_oos_loss,
    }
    return deflated, deflated_active, pbo


def _window(
    prices: pd.DataFrame,
    config: StudyConfig,
    overrides: dict[str, Any],
    start: pd.Timestamp,
    end: pd.Timestamp,
    first_scored: pd.Timestamp | None,
    macro: pd.DataFrame | None,
) -> WindowResult:
    return evaluate_window(
        prices,
        config.strategy,
        overrides,
        start=start,
        end=end,
        first_scored=first_scored,
        cost_bps=config.cost_bps,
        lag=config.lag,
        execution_band=config.execution_band,
        n_boot=config.n_boot,
        block_length=config.block_length,
        seed=config.seed,
        macro=macro,
        benchmark_symbols=config.benchmark_symbols,
    )


def _compute(
    study: Study,
    config: StudyConfig,
    prices: pd.DataFrame,
    macro: pd.DataFrame | None,
    sleeve: SleeveJoin | None,
) -> StudyClose:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        raise StudyNotFinishedError(f"study {study.study_name!r} has no complete trial")
    chosen, feasible = choose_trial(config, complete)
    space = parse_space(config.space_text, config.space_source)
    overrides = space.overrides(chosen.params)
    if sleeve is not None:  # the stocks beside the assets, as every trial traded them
        prices = sleeve.closes
    run = sleeve_params(config.strategy, overrides, sleeve)
    evaluator = config.evaluator(prices, macro)
    plan = evaluator.plan
    erc = evaluator.benchmark_.returns.loc[plan.scored_days()]
    deflated, deflated_active, pbo = _selection_statistics(
        config, complete, chosen, erc.to_numpy(dtype=float)
    )
    development = _window(
        prices,
        config,
        run,
        *config.dev_window,
        plan.days[plan.warmup_days],
        macro,
    )
    # The search is over: the one look at the validation window.
    validation = _window(prices, config, run, *config.validation_window, None, macro)
    return StudyClose(
        closed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        n_complete=len(complete),
        n_failed=sum(t.state == TrialState.FAIL for t in trials),
        chosen_trial=chosen.number,
        chosen_feasible=is_feasible(config, chosen),
        n_feasible=len(feasible),
        chosen_params=dict(chosen.params),
        chosen_overrides=overrides,
        objective=float(chosen.value or 0.0),
        development=development,
        deflated=deflated,
        deflated_active=deflated_active,
        pbo=pbo,
        validation=validation,
    )


def close_study(
    study: Study,
    url: str,
    prefix: str,
    prices: pd.DataFrame,
    macro: pd.DataFrame | None = None,
    sleeve: Path | None = None,
) -> StudyClose:
    """Close the study once, or return its existing close record.

    Parameters
    ----------
    study : Study
    url, prefix : str
        The storage's Redis and key prefix (the lock lives beside the journal).
    prices : DataFrame
        The study's whole price file (validated against its hash by the caller).
    macro : DataFrame, optional
        The study's macro series, for a strategy that reads them (checked against the hash
        the study recorded).
    sleeve : Path, optional
        The study's sleeve file, joined to ``prices`` (default the study's path, if it has
        one); the chosen parameters' ``sleeve_symbols`` default to its columns, as every
        trial's, while the profile keeps the chosen parameters alone.

    Raises
    ------
    StudyNotFinishedError
        If trials remain to run or are running, or another process is closing it now.
    MacroFileError
        If ``macro`` is not the study's macro series, or missing for a study that reads them.
    PriceFileError
        If ``sleeve`` (or the study's sleeve file) is not the study's.
    """
    config = load_config(study)
    # Even for a closed study: a close with other series must fail the same way every time.
    check_study_macro(config, macro, "the macro series given to the close")
    joined = load_study_sleeve(config, prices, sleeve)
    existing = closed_record(study)
    if existing is not None:
        return existing
    trials = study.get_trials(deepcopy=False)
    running = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    if len(trials) < config.n_trials or running:
        raise StudyNotFinishedError(
            f"study {study.study_name!r}: {len(trials) - running} of {config.n_trials} trials "
            f"finished, {running} running"
        )
    client: redis.Redis = redis.Redis.from_url(url)
    lock_key = f"{prefix}:close-lock:{study.study_name}"
    if not client.set(lock_key, datetime.now(UTC).isoformat(), nx=True, ex=LOCK_TTL_SECS):
        raise StudyNotFinishedError(
            f"study {study.study_name!r} is being closed by another process"
        )
    try:
        existing = closed_record(study)  # closed between our first look and the lock
        if existing is not None:
            return existing
        record = _compute(study, config, prices, macro, joined)
        study.set_user_attr(CLOSED_ATTR, record.to_dict())
        return record
    finally:
        client.delete(lock_key)
        client.close()

"""Study progress and the refusal to close an unfinished study (Optuna's in-memory storage)."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

from regime_trader.service.research_close import (
    StudyNotFinishedError,
    choose_trial,
    close_study,
    is_feasible,
)
from regime_trader.service.research_config import StudyConfig
from regime_trader.service.research_study import CONFIG_ATTR, load_config, progress


def _config(n_trials: int, *, drawdown_guard: bool = False) -> StudyConfig:
    return StudyConfig(
        data_file="/data/p.csv",
        data_sha256="00" * 32,
        symbols=("SPY", "TLT", "GLD"),
        max_carry_sessions=3,
        dev_start="2010-01-04",
        dev_end="2011-12-30",
        validation_start="2012-01-02",
        validation_end="2012-12-31",
        n_trials=n_trials,
        n_folds=2,
        warmup_days=20,
        purge_days=1,
        embargo_days=5,
        cost_bps=5.0,
        lag=1,
        seed=0,
        startup_trials=2,
        strategy="regime_erc",
        space_source="s.toml",
        space_text="",
        drawdown_guard=drawdown_guard,
    )


def _study(n_trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(CONFIG_ATTR, _config(n_trials).to_dict())
    return study


def test_progress_counts_finished_running_and_failed_and_names_the_best() -> None:
    study = _study(5)
    for value in (0.1, 0.4, 0.2):
        study.optimize(lambda t, v=value: v + 0 * t.suggest_float("x", 0, 1), n_trials=1)

    def refuse(trial: optuna.Trial) -> float:
        raise ValueError("refused")

    study.optimize(refuse, n_trials=1, catch=(ValueError,))
    study.ask()  # a running trial
    p = progress(study, 5)
    assert (p.finished, p.running, p.failed, p.total) == (4, 1, 1, 5)
    assert (p.best_value, p.best_trial) == (0.4, 1)
    assert load_config(study) == _config(5)


def test_an_unfinished_study_is_not_closed() -> None:
    study = _study(3)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(StudyNotFinishedError, match="2 of 3 trials finished, 0 running"):
        close_study(study, "redis://127.0.0.1:1/0", "unused", pd.DataFrame())
    study.ask()
    with pytest.raises(StudyNotFinishedError, match="1 running"):
        close_study(study, "redis://127.0.0.1:1/0", "unused", pd.DataFrame())


def test_the_drawdown_guard_keeps_only_trials_no_deeper_than_vol_matched_erc() -> None:
    study = _study(3)
    for excess in (0.02, -0.01, 0.0):
        trial = study.ask()
        trial.set_user_attr("drawdown_excess", excess)
        study.tell(trial, 1.0)
    refused = study.ask()
    study.tell(refused, state=optuna.trial.TrialState.FAIL)
    trials = study.get_trials()
    guarded, unguarded = _config(3, drawdown_guard=True), _config(3)
    assert [is_feasible(guarded, t) for t in trials[:3]] == [False, True, True]
    assert is_feasible(guarded, trials[3]) is False  # no record: never feasible
    assert all(is_feasible(unguarded, t) for t in trials)


def test_the_close_chooses_the_best_feasible_trial_and_falls_back_to_the_best() -> None:
    study = _study(3)
    for value, excess in ((0.9, 0.05), (0.5, -0.01), (0.7, 0.0), (0.7, -0.02)):
        trial = study.ask()
        trial.set_user_attr("drawdown_excess", excess)
        study.tell(trial, value)
    trials = study.get_trials()
    chosen, feasible = choose_trial(_config(3, drawdown_guard=True), trials)
    assert chosen.number == 2  # 0.7 and feasible; trial 3 ties and comes later
    assert [t.number for t in feasible] == [1, 2, 3]
    assert choose_trial(_config(3), trials)[0].number == 0
    nothing_feasible = [trials[0]]
    assert choose_trial(_config(3, drawdown_guard=True), nothing_feasible) == (trials[0], [])

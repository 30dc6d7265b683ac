"""Study progress and the refusal to close an unfinished study (Optuna's in-memory storage)."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest

from regime_trader.service.research_close import StudyNotFinishedError, close_study
from regime_trader.service.research_config import StudyConfig
from regime_trader.service.research_study import CONFIG_ATTR, load_config, progress


def _config(n_trials: int) -> StudyConfig:
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

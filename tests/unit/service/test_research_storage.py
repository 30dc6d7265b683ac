"""Study storage helpers and the per-trial seeded sampler (on Optuna's in-memory storage)."""

from __future__ import annotations

import optuna
import pytest

from regime_trader.service.research_storage import (
    TrialSeededSampler,
    shown_url,
    trial_seed,
    with_password,
)


def test_password_is_inserted_only_where_missing_and_never_shown() -> None:
    url = with_password("redis://redis.example:6380/2", "s3cr et")
    assert url == "redis://:s3cr%20et@redis.example:6380/2"
    assert with_password("redis://u:pw@h:1/0", "other") == "redis://u:pw@h:1/0"
    assert with_password("unix:///tmp/r.sock", "x") == "unix:///tmp/r.sock"
    assert shown_url(url) == "redis://redis.example:6380/2"
    assert "s3cr" not in shown_url(url)
    assert shown_url("unix:///tmp/r.sock?db=0") == "unix:///tmp/r.sock"


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    k = trial.suggest_int("k", 1, 9)
    c = trial.suggest_categorical("c", ["a", "b"])
    return -((x - 1) ** 2) - (k - 3) ** 2 + (c == "a")


def _params(seed: int, n: int = 10) -> list[dict[str, object]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=TrialSeededSampler(seed, 3))
    study.optimize(_objective, n_trials=n)
    return [t.params for t in study.trials]


def test_the_same_seed_and_trial_order_give_the_same_trials() -> None:
    first = _params(3)
    assert first == _params(3)
    assert first != _params(4)


def test_interleaved_workers_draw_different_trials() -> None:
    # Two samplers on one study (two workers) with the same study seed: each trial number has
    # its own random state, so the workers' random start-up trials differ.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    a = optuna.create_study(study_name="s", storage=storage, sampler=TrialSeededSampler(0, 10))
    b = optuna.load_study(study_name="s", storage=storage, sampler=TrialSeededSampler(0, 10))
    for _ in range(3):
        a.optimize(_objective, n_trials=1)
        b.optimize(_objective, n_trials=1)
    drawn = [tuple(sorted(t.params.items())) for t in a.trials]
    assert len(set(drawn)) == 6


def test_trial_seeds_differ_by_trial_and_by_study_seed() -> None:
    seeds = {trial_seed(s, n) for s in range(3) for n in range(50)}
    assert len(seeds) == 150
    with pytest.raises(ValueError):
        trial_seed(-1, 0)

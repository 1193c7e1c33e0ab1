"""One worker of a shared Optuna study: ``python -m dlhelpers.tuning_worker --storage URL --study NAME ...``.

Start as many as you like, on one machine or many: they coordinate only through the storage. Locally that is a
SQLite file (``sqlite:////tmp/study.db``); across machines it is a database server, with the same command::

    python -m dlhelpers.tuning_worker --storage postgresql://user:pass@db-host/optuna --study digits --n-trials 200

Fault tolerance: the storage is opened with a heartbeat (``heartbeat_interval`` seconds) and a
``grace_period``; a trial whose worker stopped beating (killed, machine lost) is marked ``FAIL`` by the next
worker that checks, and ``RetryHeartbeatStaleTrialCallback`` (Optuna < 4.9: ``RetryFailedTrialCallback``)
re-enqueues its parameters as a new trial; ``RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)``
names the original. Workers stop when the study has ``--n-trials`` completed trials
(``MaxTrialsCallback``), so a resumed study ends at the same size as an uninterrupted one.

Objectives: ``quadratic`` (instant, plus ``--sleep`` seconds to stand in for training; used by the tests),
``branin`` and ``digits`` (the MLP of :class:`dlhelpers.tuning.DigitsTask`, validation accuracy, maximized).
This module imports only Optuna at start-up (torch only for ``branin``/``digits``) so a worker starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

OBJECTIVES = ("quadratic", "branin", "digits")
# heartbeats and the retry callback are marked experimental in Optuna 5.0; the notice is not news to a worker log
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_storage(url: str, *, heartbeat_interval: int = 1, grace_period: int = 3, max_retry: int = 2) -> RDBStorage:
    """An ``RDBStorage`` with heartbeat-based failure detection and automatic retry of failed trials.

    Optuna 5.0 names: ``heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry)``; before 4.9
    the same thing was ``failed_trial_callback=RetryFailedTrialCallback(max_retry)`` (still accepted, deprecated).
    """
    return RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry))


def direction_of(objective: str) -> str:
    return "maximize" if objective == "digits" else "minimize"


def create_study(url: str, name: str, objective: str = "quadratic", seed: int = 0, **storage_kwargs) -> optuna.Study:
    """Create the study once (before starting workers: concurrent creation races on SQLite) or load it."""
    return optuna.create_study(study_name=name, storage=make_storage(url, **storage_kwargs),
                               direction=direction_of(objective), load_if_exists=True,
                               sampler=optuna.samplers.TPESampler(seed=seed))


def _objective(kind: str, sleep: float, seed: int):
    if kind == "quadratic":
        def f(trial: optuna.Trial) -> float:
            x, y = trial.suggest_float("x", -2.0, 2.0), trial.suggest_float("y", -2.0, 2.0)
            time.sleep(sleep)
            return (x - 0.5) ** 2 + (y + 0.25) ** 2
    elif kind == "branin":
        from dlhelpers.tuning import branin

        def f(trial: optuna.Trial) -> float:
            p = {"x1": trial.suggest_float("x1", -5.0, 10.0), "x2": trial.suggest_float("x2", 0.0, 15.0)}
            time.sleep(sleep)
            return branin(p)
    else:
        from dlhelpers.tuning import DIGITS_SPACE, DigitsTask

        task = DigitsTask(seed=seed)
        d = DIGITS_SPACE.dims

        def f(trial: optuna.Trial) -> float:
            p = {"lr": trial.suggest_float("lr", d["lr"].low, d["lr"].high, log=True),
                 "weight_decay": trial.suggest_float("weight_decay", d["weight_decay"].low, d["weight_decay"].high,
                                                     log=True),
                 "width": trial.suggest_int("width", d["width"].low, d["width"].high, log=True),
                 "dropout": trial.suggest_float("dropout", d["dropout"].low, d["dropout"].high),
                 "batch_size": trial.suggest_categorical("batch_size", list(d["batch_size"].choices))}
            time.sleep(sleep)
            return task.objective(p)[0]
    def wrapped(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker_pid", os.getpid())
        return f(trial)
    return wrapped


def run_worker(url: str, name: str, *, n_trials: int, objective: str = "quadratic", sleep: float = 0.0,
               seed: int = 0, heartbeat_interval: int = 1, grace_period: int = 3, max_retry: int = 2) -> int:
    """Work on study ``name`` until it has ``n_trials`` completed trials; returns how many this worker ran."""
    if objective not in OBJECTIVES:
        raise ValueError(f"run_worker: unknown objective {objective!r}; expected one of {list(OBJECTIVES)}")
    if n_trials < 1:
        raise ValueError(f"run_worker: n_trials must be >= 1, got {n_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                           max_retry=max_retry)
    # each worker samples with its own seed (same seed in two workers would propose the same points)
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed + os.getpid()))
    done = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    before = done()
    if before < n_trials:
        study.optimize(_objective(objective, sleep, seed), n_trials=10 * n_trials,
                       callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))])
    return done() - before


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dlhelpers.tuning_worker", description=__doc__.split("\n")[0])
    ap.add_argument("--storage", required=True, help="RDB URL: sqlite:///file.db, postgresql://..., mysql://...")
    ap.add_argument("--study", required=True)
    ap.add_argument("--n-trials", type=int, required=True, help="stop when the study has this many completed")
    ap.add_argument("--objective", choices=OBJECTIVES, default="quadratic")
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per trial, standing in for training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heartbeat", type=int, default=1)
    ap.add_argument("--grace", type=int, default=3)
    ap.add_argument("--max-retry", type=int, default=2)
    ap.add_argument("--create", action="store_true", help="create the study if it does not exist")
    a = ap.parse_args(argv)
    if a.create:
        create_study(a.storage, a.study, a.objective, a.seed, heartbeat_interval=a.heartbeat, grace_period=a.grace,
                     max_retry=a.max_retry)
    run_worker(a.storage, a.study, n_trials=a.n_trials, objective=a.objective, sleep=a.sleep, seed=a.seed,
               heartbeat_interval=a.heartbeat, grace_period=a.grace, max_retry=a.max_retry)
    return 0


if __name__ == "__main__":
    sys.exit(main())

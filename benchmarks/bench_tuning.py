"""Hyperparameter search: simple regret after 30 evaluations (median over seeds 0-9) on Branin and Hartmann-6 for
grid, random and scratch GP-EI (dlhelpers.tuning) and Optuna's RandomSampler, TPESampler and GPSampler; then the
wall time of one scratch GP-EI suggestion vs one GPSampler suggestion at 10-100 observations (both O(n^3)).

Run: ``.venv/bin/python benchmarks/run.py tuning`` (about 10-20 minutes on one thread). Not a test.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import optuna
import torch

from dlhelpers import tuning as T
from dlhelpers.utils import format_time

SEEDS = range(10)
N = 30
PROBLEMS = {"branin": (T.branin, T.BRANIN_SPACE, T.BRANIN_MIN, 5),
            "hartmann6": (T.hartmann6, T.HARTMANN6_SPACE, T.HARTMANN6_MIN, 2)}


def _optuna(fn, space: T.Space, sampler: optuna.samplers.BaseSampler) -> float:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: fn({k: t.suggest_float(k, d.low, d.high) for k, d in space.dims.items()}), n_trials=N)
    return study.best_value


def _methods(fn, space: T.Space, grid_points: int):
    def grid(seed):
        if space.width == 2:  # a 6 x 5 grid: the same points for every seed
            pts = {"x1": 6, "x2": 5}
            return min(r.value for r in T.search(fn, space, "grid", n_trials=N, points=pts, show_progress=False))
        s = T.GridSearcher(space, grid_points, seed=seed, shuffle=True)  # 2^6 = 64 points, 30 in random order
        return min(r.value for r in T.search(fn, space, s, n_trials=N, show_progress=False))
    return {
        "grid": grid,
        "random (ours)": lambda s: min(r.value for r in T.search(fn, space, "random", n_trials=N, seed=s,
                                                                 show_progress=False)),
        "GP-EI (ours)": lambda s: min(r.value for r in T.search(fn, space, "gp-ei", n_trials=N, seed=s,
                                                                show_progress=False)),
        "Optuna Random": lambda s: _optuna(fn, space, optuna.samplers.RandomSampler(seed=s)),
        "Optuna TPE": lambda s: _optuna(fn, space, optuna.samplers.TPESampler(seed=s)),
        "Optuna GP": lambda s: _optuna(fn, space, optuna.samplers.GPSampler(seed=s)),
    }


def regret_table(problems: list[str]) -> None:
    for name in problems:
        fn, space, best, grid_points = PROBLEMS[name]
        print(f"\n{name}: simple regret after {N} evaluations over seeds {SEEDS.start}-{SEEDS.stop - 1}")
        print(f"{'method':16s} {'median':>10s} {'q25':>10s} {'q75':>10s} {'time/run':>16s}")
        for method, run in _methods(fn, space, grid_points).items():
            regrets, start = [], time.perf_counter()
            for seed in SEEDS:
                regrets.append(run(seed) - best)
            per_run = (time.perf_counter() - start) / len(SEEDS)
            q25, q75 = np.quantile(regrets, [0.25, 0.75])
            print(f"{method:16s} {statistics.median(regrets):10.2e} {q25:10.2e} {q75:10.2e} "
                  f"{format_time(per_run):>16s}", flush=True)


def suggestion_time(ns=(10, 30, 60, 100)) -> None:
    """One ask() with n random observations on Hartmann-6 (GP fit + acquisition), ours vs GPSampler."""
    print("\nwall time of one suggestion with n observations (Hartmann-6): scratch GP-EI vs Optuna GPSampler")
    print(f"{'n':>5s} {'ours':>16s} {'Optuna GP':>16s} {'ratio':>7s}")
    space, rng = T.HARTMANN6_SPACE, np.random.default_rng(0)
    dists = {k: optuna.distributions.FloatDistribution(d.low, d.high) for k, d in space.dims.items()}
    for n in ns:
        pts = [space.sample(rng) for _ in range(n)]
        s = T.GPEISearcher(space, seed=0)
        for p in pts:
            s.tell(p, T.hartmann6(p))
        start = time.perf_counter()
        s.ask()
        ours = time.perf_counter() - start
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
        study.add_trials([optuna.trial.create_trial(params=p, distributions=dists, value=T.hartmann6(p)) for p in pts])
        start = time.perf_counter()
        study.optimize(lambda t: T.hartmann6({k: t.suggest_float(k, 0.0, 1.0) for k in space.dims}), n_trials=1)
        theirs = time.perf_counter() - start
        print(f"{n:5d} {format_time(ours):>16s} {format_time(theirs):>16s} {ours / theirs:7.2f}", flush=True)


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    torch.manual_seed(0)
    problems = [a for a in sys.argv[1:] if a in PROBLEMS] or list(PROBLEMS)
    suggestion_time()
    regret_table(problems)


if __name__ == "__main__":
    main()

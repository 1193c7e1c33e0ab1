"""dlhelpers.tuning: search spaces (against scikit-learn's ParameterGrid and SciPy's log-uniform), the search
loop and its records, the GP-EI searcher, the benchmark functions, the digits study, and a real kill-and-resume of
an Optuna study run by ``python -m dlhelpers.tuning_worker`` worker processes."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dlhelpers import tuning as T
from dlhelpers import tuning_worker as W


# --------------------------------------------------------------------------- spaces
@st.composite
def spaces(draw):
    dims = {}
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["float", "log", "int", "log_int", "cat"]))
        if kind in ("float", "log"):
            lo = draw(st.floats(1e-4, 10.0)) if kind == "log" else draw(st.floats(-10.0, 10.0))
            hi = lo * draw(st.floats(1.5, 1e3)) if kind == "log" else lo + draw(st.floats(0.1, 10.0))
            dims[f"p{i}"] = T.Float(lo, hi, log=kind == "log")
        elif kind in ("int", "log_int"):
            lo = draw(st.integers(1, 20))
            dims[f"p{i}"] = T.Int(lo, lo + draw(st.integers(1, 300)), log=kind == "log_int")
        else:
            dims[f"p{i}"] = T.Categorical(list(range(draw(st.integers(1, 4)))))
    return T.Space(dims)


@settings(max_examples=40, deadline=None)
@given(spaces(), st.integers(0, 2**31 - 1))
def test_samples_are_valid_and_survive_encode_decode(space, seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        p = space.sample(rng)
        u = space.encode(p)
        assert u.shape == (space.width,) and float(u.min()) >= 0 and float(u.max()) <= 1
        back = space.decode(u)
        for k, d in space.dims.items():
            if isinstance(d, T.Float) and not isinstance(d, T.Int):
                assert d.low <= p[k] <= d.high
                assert math.isclose(back[k], p[k], rel_tol=1e-9, abs_tol=1e-12)
            else:
                assert back[k] == p[k]
    # any point of the cube decodes to valid params
    q = space.decode(rng.uniform(size=space.width).tolist())
    for k, d in space.dims.items():
        assert q[k] in d.choices if isinstance(d, T.Categorical) else d.low <= q[k] <= d.high


@settings(max_examples=10, deadline=None)
@given(spaces(), st.integers(1, 4))
def test_grid_is_sklearns_parameter_grid(space, points):
    from sklearn.model_selection import ParameterGrid

    axes = {k: d.grid(points, k) for k, d in space.dims.items()}
    ours = space.grid(points)
    theirs = list(ParameterGrid(axes))
    key = lambda p: tuple(sorted((k, repr(v)) for k, v in p.items()))
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    for k, d in space.dims.items():
        if isinstance(d, T.Float) and not isinstance(d, T.Int):  # end points included, evenly spaced (log scale)
            vals = sorted(axes[k])
            assert len(vals) == points
            if points > 1:
                assert math.isclose(vals[0], d.low) and math.isclose(vals[-1], d.high)
                t = np.log(vals) if d.log else np.asarray(vals)
                assert np.allclose(np.diff(t), np.diff(t)[0])


def test_log_uniform_and_int_sampling_match_scipy_distributions():
    from scipy import stats

    rng = np.random.default_rng(0)
    d = T.Float(1e-4, 1e-1, log=True)
    xs = [d.sample(rng) for _ in range(4000)]
    assert stats.kstest(xs, stats.loguniform(1e-4, 1e-1).cdf).pvalue > 1e-3
    k = T.Int(3, 9)
    counts = np.bincount([k.sample(rng) for _ in range(7000)], minlength=10)[3:]
    assert stats.chisquare(counts).pvalue > 1e-3  # each integer equally likely


def test_space_accepts_tuple_specs():
    s = T.Space({"lr": ("log_uniform", 1e-4, 1e-1), "w": ("int", 1, 4), "a": ("categorical", ["relu", "gelu"]),
                 "p": ("uniform", 0.0, 0.5)})
    assert s.dims["lr"] == T.Float(1e-4, 1e-1, log=True) and s.dims["w"] == T.Int(1, 4)
    assert s.dims["a"].choices == ("relu", "gelu") and s.width == 1 + 1 + 2 + 1
    assert len(s.grid({"lr": 3, "p": 2})) == 3 * 4 * 2 * 2


def test_space_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="search space is empty"):
        T.Space({})
    with pytest.raises(ValueError, match="low must be < high, got low=1.0, high=1.0"):
        T.Float(1.0, 1.0)
    with pytest.raises(ValueError, match="low must be < high"):
        T.Int(5, 2)
    with pytest.raises(ValueError, match="log scale needs low > 0, got low=0.0"):
        T.Float(0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="unknown distribution 'lognormal' for 'lr'"):
        T.Space({"lr": ("lognormal", 0.0, 1.0)})
    with pytest.raises(ValueError, match="continuous range 'lr'.*needs a number of grid points"):
        T.Space({"lr": T.Float(1e-3, 1e-1, log=True)}).grid()
    with pytest.raises(ValueError, match="points for 'lr' must be a positive int, got 0"):
        T.Space({"lr": T.Float(1e-3, 1e-1)}).grid(0)
    with pytest.raises(ValueError, match="choices must not be empty"):
        T.Categorical([])
    with pytest.raises(TypeError, match="Int: low must be an int, got float"):
        T.Int(1.5, 3)
    with pytest.raises(TypeError, match="low must be a finite real number, got str"):
        T.Float("0", 1.0)
    with pytest.raises(TypeError, match="must be a Float, Int, Categorical or a tuple"):
        T.Space({"x": 3})
    with pytest.raises(TypeError, match="expected a dict"):
        T.Space([("x", T.Float(0, 1))])
    with pytest.raises(ValueError, match="expected a point with 2 coordinates, got 3"):
        T.BRANIN_SPACE.decode([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"params lack \['x2'\]"):
        T.BRANIN_SPACE.encode({"x1": 0.0})
    with pytest.raises(ValueError, match="'tanh' is not one of"):
        T.Categorical(["relu"]).to_unit("tanh")


# --------------------------------------------------------------------------- the search loop and its records
def test_nan_objective_is_a_failed_trial_and_the_search_goes_on(tmp_path):
    def f(p):
        return math.nan if p["x"] > 0.5 else (p["x"] - 0.2) ** 2, {"twice": 2 * p["x"]}
    recs = T.search(f, {"x": T.Float(0.0, 1.0)}, "random", n_trials=20, seed=1, log_path=tmp_path / "log.jsonl",
                    show_progress=False)
    states = [r.state for r in recs]
    assert len(recs) == 20 and "failed" in states and "complete" in states
    assert all(math.isnan(r.value) == (r.state == "failed") for r in recs)
    assert T.best_record(recs).state == "complete"
    same = lambda rs: [json.dumps(asdict(r)) for r in rs]  # NaN != NaN, but its JSON text is equal
    assert same(T.load_records(tmp_path / "log.jsonl")) == same(recs)  # the log was written as trials finished
    df = T.trials_dataframe(recs)
    assert list(df.columns[:6]) == ["number", "value", "state", "seconds", "seed", "searcher"]
    assert {"params_x", "metrics_twice"} <= set(df.columns) and len(df) == 20
    T.save_records(recs, tmp_path / "log.csv")
    import pandas as pd

    assert pd.read_csv(tmp_path / "log.csv")["state"].tolist() == states
    curve = T.best_so_far(recs)
    finite = [c for c in curve if not math.isnan(c)]
    assert finite == sorted(finite, reverse=True) and finite[-1] == T.best_record(recs).value


def test_gp_ignores_failed_trials():
    calls = iter(range(100))
    f = lambda p: math.nan if next(calls) % 3 == 1 else (p["x"] - 0.3) ** 2
    recs = T.search(f, {"x": T.Float(0.0, 1.0)}, "gp-ei", n_trials=9, seed=0, n_init=3, show_progress=False)
    assert sum(r.state == "failed" for r in recs) == 3
    assert T.best_record(recs).value < 1e-2


def test_grid_search_walks_the_grid_then_stops():
    recs = T.search(T.branin, T.BRANIN_SPACE, "grid", n_trials=100, points={"x1": 3, "x2": 2}, show_progress=False)
    assert len(recs) == 6
    assert {(r.params["x1"], r.params["x2"]) for r in recs} == {(a, b) for a in (-5.0, 2.5, 10.0) for b in (0.0, 15.0)}


def test_maximize_and_determinism():
    f = lambda p: -((p["x"] - 2) ** 2) - (0.0 if p["c"] == "b" else 1.0)
    space = {"x": T.Float(0.0, 4.0), "c": T.Categorical(["a", "b"])}
    a = T.search(f, space, "gp-ei", n_trials=8, seed=3, direction="maximize", n_init=4, show_progress=False)
    b = T.search(f, space, "gp-ei", n_trials=8, seed=3, direction="maximize", n_init=4, show_progress=False)
    assert [r.params for r in a] == [r.params for r in b]
    best = T.best_record(a, "maximize")
    assert best.params["c"] == "b" and best.value > -0.05
    assert T.best_so_far(a, "maximize")[-1] == best.value


def test_search_errors():
    with pytest.raises(ValueError, match="n_trials must be a positive int, got 0"):
        T.search(T.branin, T.BRANIN_SPACE, n_trials=0)
    with pytest.raises(ValueError, match="unknown searcher 'tpe'"):
        T.search(T.branin, T.BRANIN_SPACE, "tpe", n_trials=1)
    with pytest.raises(ValueError, match="unknown direction 'up'"):
        T.search(T.branin, T.BRANIN_SPACE, n_trials=1, direction="up")
    with pytest.raises(ValueError, match="no completed trial among 0 records"):
        T.best_record([])
    with pytest.raises(ValueError, match="must end in .jsonl or .csv"):
        T.save_records([], "x.txt")
    with pytest.raises(ValueError, match="n_init must be >= 1"):
        T.GPEISearcher(T.BRANIN_SPACE, n_init=0)
    with pytest.raises(TypeError, match="space must be a Space"):
        T.RandomSearcher({"x": T.Float(0, 1)})
    with pytest.raises(StopIteration):
        g = T.GridSearcher(T.Space({"c": T.Categorical([1])}))
        g.ask()
        g.ask()


def test_benchmark_functions_at_their_known_minima():
    for x1, x2 in [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)]:
        assert abs(T.branin({"x1": x1, "x2": x2}) - T.BRANIN_MIN) < 1e-5
    xstar = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    assert abs(T.hartmann6({f"x{i + 1}": v for i, v in enumerate(xstar)}) - T.HARTMANN6_MIN) < 1e-4
    rng = np.random.default_rng(0)
    assert all(T.hartmann6(T.HARTMANN6_SPACE.sample(rng)) > T.HARTMANN6_MIN for _ in range(200))


def test_digits_study_is_real_and_repeatable():
    a = T.run_digits_study(n_trials=2, seed=0, epochs=1)
    b = T.run_digits_study(n_trials=1, seed=0, epochs=1)
    assert a[0].params == b[0].params and a[0].value == b[0].value
    df = T.trials_dataframe(a)
    assert set(T.DIGITS_SPACE.names) == {c[len("params_"):] for c in df.columns if c.startswith("params_")}
    assert all(0.0 <= v <= 1.0 for v in df["value"]) and "metrics_val_loss" in df.columns


# --------------------------------------------------------------------------- multi-process Optuna study
def _worker(url: str, n: int, sleep: float) -> list[str]:
    return [sys.executable, "-m", "dlhelpers.tuning_worker", "--storage", url, "--study", "s", "--n-trials", str(n),
            "--sleep", str(sleep), "--grace", "2", "--heartbeat", "1"]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_killed_worker_loses_no_completed_trial_and_its_trial_is_retried(tmp_path):
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    W.create_study(url, "s", grace_period=2)
    study = optuna.load_study(study_name="s", storage=url)
    proc = subprocess.Popen(_worker(url, 6, 0.4), stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:  # wait until >= 2 trials are complete and a third is mid-training
            trials = study.get_trials(deepcopy=False)
            running = trials and trials[-1].state == TrialState.RUNNING and len(trials[-1].params) == 2
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 2 and running:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = study.get_trials()
    killed = before[-1]
    assert killed.state == TrialState.RUNNING and killed.params  # nobody told the storage; the heartbeat stops
    completed_before = {t.number: t.params for t in before if t.state == TrialState.COMPLETE}
    time.sleep(2.5)  # past the grace period: the resuming worker's first stale check must see the dead heartbeat
    subprocess.run(_worker(url, 6, 0.0), check=True, stderr=subprocess.DEVNULL, timeout=120)
    after = study.get_trials()
    assert {t.number: t.params for t in after if t.number in completed_before} == completed_before
    assert after[killed.number].state == TrialState.FAIL
    retries = [t for t in after if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == killed.params
    assert sum(t.state == TrialState.COMPLETE for t in after) == 6


def test_worker_errors():
    with pytest.raises(ValueError, match="unknown objective 'mnist'"):
        W.run_worker("sqlite://", "s", n_trials=1, objective="mnist")
    with pytest.raises(ValueError, match="n_trials must be >= 1, got 0"):
        W.run_worker("sqlite://", "s", n_trials=0)


# --------------------------------------------------------------------------- pruning: the median stopping rule
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.just(math.nan)),
                max_size=12), st.floats(0.0, 100.0))
def test_nanpercentile_rounds_exactly_like_numpy(values, q):
    ours = T.nanpercentile(values, q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's all-NaN slice warning
        theirs = float(np.nanpercentile(np.asarray(values, dtype=float), q)) if values else math.nan
    assert (math.isnan(ours) and math.isnan(theirs)) or ours == theirs


_VALUES = st.one_of(st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8]), st.floats(-2.0, 2.0),
                  st.sampled_from([0.1, 0.2, 0.3, 0.5, 0.8]), st.just(math.nan))


@st.composite
def curves(draw, max_step: int = 4):
    """A learning curve ``{step: value}``: usually steps 0..k (as a training loop reports), sometimes sparse."""
    if draw(st.booleans()) or draw(st.booleans()):
        steps = list(range(draw(st.integers(1, max_step + 1))))
    else:
        steps = draw(st.lists(st.integers(0, max_step), min_size=1, max_size=max_step + 1, unique=True))
    return {s: draw(_VALUES) for s in steps}


@st.composite
def prune_cases(draw):
    completed = draw(st.lists(curves(), max_size=7))
    others = draw(st.lists(st.tuples(st.sampled_from(["pruned", "failed"]), curves()), max_size=2))
    running = draw(curves())
    kw = {"n_startup_trials": draw(st.integers(0, 4)), "n_warmup_steps": draw(st.integers(0, 2)),
          "interval_steps": draw(st.integers(1, 3)), "n_min_trials": draw(st.integers(1, 3))}
    return completed, others, running, kw, draw(st.sampled_from(["minimize", "maximize"]))


def _optuna_decision(pruner, completed, others, running, direction) -> bool:
    """Optuna's own decision: a study holding the histories, a running trial that reports ``running``."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction=direction, pruner=pruner)
    for c in completed:
        study.add_trial(create_trial(value=0.0, intermediate_values=c))
    for state, c in others:  # pruned / failed trials must not count
        study.add_trial(create_trial(state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL,
                                     intermediate_values=c))
    trial = study.ask()
    for step, value in running.items():
        trial.report(value, step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's all-NaN slice warning
        return trial.should_prune()


@settings(max_examples=200, deadline=None)
@given(prune_cases())
def test_median_prune_decides_exactly_as_optunas_median_pruner(case):
    import optuna

    completed, others, running, kw, direction = case
    ours = T.median_prune(completed, running, direction=direction, **kw)
    n_min = kw.pop("n_min_trials")
    theirs = _optuna_decision(optuna.pruners.MedianPruner(**kw, n_min_trials=n_min), completed, others, running,
                              direction)
    assert ours == theirs
    event(f"prune={ours}")
    assert T.MedianPruner(**kw, n_min_trials=n_min).prune(completed, running, direction) == ours


@settings(max_examples=100, deadline=None)
@given(prune_cases(), st.floats(0.0, 100.0))
def test_percentile_prune_decides_exactly_as_optunas_percentile_pruner(case, percentile):
    import optuna

    completed, others, running, kw, direction = case
    ours = T.percentile_prune(completed, running, percentile, direction=direction, **kw)
    n_min = kw.pop("n_min_trials")
    pruner = optuna.pruners.PercentilePruner(percentile, **kw, n_min_trials=n_min)
    assert ours == _optuna_decision(pruner, completed, others, running, direction)


def test_median_prune_by_hand():
    history = [{0: 0.30, 1: 0.40}, {0: 0.42, 1: 0.50}, {0: 0.35, 1: 0.45}]
    # maximizing accuracy: the median at step 0 is 0.35; a trial whose best so far is 0.33 is below it
    assert T.median_prune(history, {0: 0.33}, n_startup_trials=3, direction="maximize")
    assert not T.median_prune(history, {0: 0.36}, n_startup_trials=3, direction="maximize")
    assert not T.median_prune(history, {0: 0.33}, n_startup_trials=4, direction="maximize")  # too few finished
    assert not T.median_prune(history, {0: 0.33}, n_startup_trials=3, n_warmup_steps=1, direction="maximize")
    # the best value so far counts, not the latest: 0.46 at step 0 beats the step-1 median 0.45
    assert not T.median_prune(history, {0: 0.46, 1: 0.10}, n_startup_trials=3, direction="maximize")


def test_pruner_errors():
    with pytest.raises(ValueError, match="n_startup_trials must be an int >= 0, got -1"):
        T.MedianPruner(n_startup_trials=-1)
    with pytest.raises(ValueError, match="interval_steps must be an int >= 1, got 0"):
        T.median_prune([], {0: 1.0}, interval_steps=0)
    with pytest.raises(ValueError, match="percentile must be a number in \\[0, 100\\], got 101"):
        T.PercentilePruner(101)
    with pytest.raises(ValueError, match="unknown direction 'up'"):
        T.median_prune([], {0: 1.0}, direction="up")


def test_search_with_a_pruner_stops_bad_trials_and_records_their_curves(tmp_path):
    space = T.Space({"rate": T.Float(0.0, 1.0)})

    def objective(params, report):  # a learning curve rising at `rate`; 6 steps
        for step in range(6):
            report(step, params["rate"] * (step + 1))
        return params["rate"] * 6

    recs = T.search(objective, space, "random", n_trials=12, seed=0, direction="maximize", show_progress=False,
                    pruner=T.MedianPruner(n_startup_trials=3, n_warmup_steps=1), log_path=tmp_path / "p.jsonl")
    states = [r.state for r in recs]
    assert states[:3] == ["complete"] * 3 and "pruned" in states
    for r in recs:
        steps = sorted(r.intermediate)
        assert steps == list(range(len(steps))) and r.value == r.intermediate[steps[-1]]
        assert (len(steps) < 6) == (r.state == "pruned")
        if r.state == "pruned":  # below the median of the completed ones at its last step
            done = [q.intermediate[steps[-1]] for q in recs[: r.number] if q.state == "complete"]
            assert r.value < np.median(done)
    assert T.best_record(recs, "maximize").state == "complete"
    back = T.load_records(tmp_path / "p.jsonl")
    assert [b.intermediate for b in back] == [r.intermediate for r in recs]  # int steps survive JSON
    with pytest.raises(ValueError, match="step must be a non-negative int, got -1"):
        T.search(lambda p, report: report(-1, 0.0), space, n_trials=1, pruner=T.MedianPruner(), show_progress=False)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_bridge_suggest_records_and_replay():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = T.Space({"lr": T.Float(1e-4, 1e-1, log=True), "w": T.Int(2, 64, log=True), "p": T.Float(0.0, 0.5),
                     "c": T.Categorical(["a", "b"])})
    f = lambda p: math.log10(p["lr"]) + p["w"] / 64 + p["p"] + (p["c"] == "b")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: f(T.suggest(t, space)), n_trials=6)
    assert all(t.distributions == T.optuna_distributions(space) for t in study.trials)
    recs = T.records_from_study(study, seed=0, searcher="optuna-random")
    assert [r.params for r in recs] == [t.params for t in study.trials] and all(r.state == "complete" for r in recs)
    replayed = T.search(f, space, T.ReplaySearcher(space, [r.params for r in recs]), n_trials=10,
                        show_progress=False)
    assert [r.value for r in replayed] == [t.value for t in study.trials]  # then StopIteration ends the search
    back = T.records_to_study(recs, space)
    assert [t.params for t in back.trials] == [t.params for t in study.trials]
    assert back.best_value == study.best_value
    with pytest.raises(TypeError, match="space must be a Space"):
        T.optuna_distributions({"x": T.Float(0, 1)})
    with pytest.raises(ValueError, match=r"params lack \['w'\]"):
        T.ReplaySearcher(space, [{"lr": 1e-3, "p": 0.1, "c": "a"}])


def test_mnist1d_task_is_deterministic_and_reports_every_epoch():
    task = T.MNIST1DTask(seed=0, epochs=2)
    assert task.X_train.shape == (3200, 40) and task.X_val.shape == (800, 40) and task.X_test.shape == (1000, 40)
    seen = []
    a, ma = task.objective(T.MNIST1D_DEFAULTS, lambda step, v: seen.append((step, v)))
    b, _ = task.objective(T.MNIST1D_DEFAULTS)
    assert a == b and [s for s, _ in seen] == [0, 1] and seen[-1][1] == a and ma["epochs"] == 2.0
    assert 0.1 < a < 1.0  # better than chance (10 classes)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        T.MNIST1DTask(epochs=0)

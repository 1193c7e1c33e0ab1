"""dlhelpers.tuning_worker: the from-scratch SQLite trial queue (atomic claims, budget, heartbeat sweep and retry,
on a fake clock with hypothesis-drawn interleavings), its worker processes (two at once, and a real SIGKILL), and
parity with Optuna: the same kill-and-resume protocol leaves the same table of trial states in both engines."""

from __future__ import annotations

import math
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlhelpers import tuning_worker as W


def _queue(tmp_path, name="q.db", **kw):
    kw.setdefault("n_trials", 4)
    return W.TrialQueue(tmp_path / name, **kw)


def _counter():
    it = iter(range(10**6))
    return lambda: {"x": float(next(it)), "y": 0.0}


# --------------------------------------------------------------------------- the queue, on a fake clock
def test_claims_budget_and_values(tmp_path):
    q = _queue(tmp_path, n_trials=3)
    sample = _counter()
    a, b, c = (q.ask(w, sample, now=0.0) for w in (1, 2, 1))
    assert [a[0], b[0], c[0]] == [0, 1, 2] and a[1] == {"x": 0.0, "y": 0.0}
    assert q.ask(2, sample, now=0.1) is None  # 3 running = the budget: nothing more to start
    assert q.tell(0, 1.5, now=0.2) and q.tell(1, math.nan, now=0.2)  # NaN: FAIL, and its slot is free again
    d = q.ask(2, sample, now=0.3)
    assert d[0] == 3 and d[1]["x"] == 3.0
    assert [t["state"] for t in q.trials()] == ["COMPLETE", "FAIL", "RUNNING", "RUNNING"]
    assert q.trials()[0]["value"] == 1.5 and q.trials()[0]["worker"] == 1


def test_stale_trial_is_failed_and_retried_with_its_params(tmp_path):
    q = _queue(tmp_path, n_trials=2, grace_period=3.0, max_retry=1)
    sample = _counter()
    n0, p0 = q.ask(1, sample, now=0.0)
    q.beat(n0, now=2.0)
    assert q.fail_stale(now=4.9) == []  # last beat 2.0, grace 3.0: still alive
    assert q.fail_stale(now=5.1) == [n0]
    assert not q.tell(n0, 0.0, now=5.2)  # the worker came back too late: its result is not taken
    n1, p1 = q.ask(2, sample, now=5.3)
    assert (n1, p1) == (1, p0) and q.trials()[1]["retry_of"] == n0
    assert q.fail_stale(now=20.0) == [n1]  # the retry dies too; max_retry=1: no third attempt
    assert q.count("WAITING") == 0
    n2, p2 = q.ask(2, sample, now=20.1)  # a fresh trial takes the free slot instead
    assert n2 == 2 and p2 != p0 and q.trials()[2]["retry_of"] is None


@settings(max_examples=30, deadline=None)
@given(n_trials=st.integers(1, 6), n_workers=st.integers(1, 4), max_retry=st.integers(0, 2),
       ops=st.lists(st.tuples(st.sampled_from(["ask", "tell", "beat", "wait"]), st.integers(0, 3),
                              st.floats(0.0, 2.0)), min_size=5, max_size=60))
def test_random_interleavings_keep_the_invariants(tmp_path_factory, n_trials, n_workers, max_retry, ops):
    """Workers ask, tell, beat or go silent in a random order on a fake clock: no trial runs twice at once, the
    budget is never overshot, every retry copies its original's params, and no chain exceeds max_retry."""
    q = W.TrialQueue(tmp_path_factory.mktemp("q") / "q.db", n_trials=n_trials, grace_period=1.0,
                     max_retry=max_retry)
    sample, now, holding = _counter(), 0.0, {}
    for op, w, dt in ops:
        w %= n_workers
        now += dt
        if op == "ask" and w not in holding:
            got = q.ask(w, sample, now=now)
            if got is not None:
                holding[w] = got[0]
        elif op == "tell" and w in holding:
            q.tell(holding.pop(w), float(w), now=now)
        elif op == "beat" and w in holding:
            q.beat(holding[w], now=now)
        trials = q.trials()
        running = [t["number"] for t in trials if t["state"] == "RUNNING"]
        assert len(running) == len(set(running)) <= n_workers
        assert sum(t["state"] != "FAIL" for t in trials) <= n_trials
        for t in trials:
            if t["retry_of"] is not None:
                assert t["params"] == trials[t["retry_of"]]["params"] and trials[t["retry_of"]]["state"] == "FAIL"
        chains = [t["retry_of"] for t in trials if t["retry_of"] is not None]
        assert all(chains.count(c) <= max_retry for c in chains)


def test_errors_name_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="n_trials must be a positive int, got 0"):
        _queue(tmp_path, n_trials=0)
    with pytest.raises(ValueError, match="grace_period must be a positive number of seconds, got 0"):
        _queue(tmp_path, grace_period=0)
    with pytest.raises(ValueError, match="max_retry must be an int >= 0, got -1"):
        _queue(tmp_path, max_retry=-1)
    with pytest.raises(ValueError, match="unknown engine 'ray'"):
        W.worker_command("ray", "x.db", n_trials=1)
    with pytest.raises(ValueError, match="unknown engine 'ray'"):
        W.read_trials("ray", "x.db")
    with pytest.raises(SystemExit):
        W.main(["--engine", "scratch", "--storage", str(tmp_path / "q.db"), "--n-trials", "1", "--objective",
                "digits"])
    with pytest.raises(SystemExit):
        W.main(["--storage", "sqlite://", "--n-trials", "1"])  # the optuna engine needs --study


# --------------------------------------------------------------------------- real worker processes
def test_two_scratch_workers_share_one_study(tmp_path):
    path = str(tmp_path / "q.db")
    procs = [subprocess.Popen(W.worker_command("scratch", path, n_trials=8, sleep=0.1)) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    trials = W.read_trials("scratch", path)
    assert [t["state"] for t in trials] == ["COMPLETE"] * 8  # exactly the budget: no overshoot, no failure
    assert all(t["value"] == pytest.approx(W.quadratic(t["params"])) for t in trials)
    assert {t["worker"] for t in trials} <= {p.pid for p in procs}


def _kill_and_resume(engine: str, tmp_path, n_trials: int = 5) -> tuple[list[dict], list[dict], int]:
    """One worker, SIGKILLed while its third trial runs; after the grace period one worker resumes the study."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}" if engine == "optuna" else str(tmp_path / "scratch.db")
    study = "s" if engine == "optuna" else None
    if engine == "optuna":
        W.create_study(storage, study, grace_period=2)
    proc = subprocess.Popen(W.worker_command(engine, storage, n_trials=n_trials, study=study, sleep=0.5,
                                             stall_after=2), stderr=subprocess.DEVNULL)
    killed = W.kill_mid_trial(proc, engine, storage, study, after_complete=2)
    before = W.read_trials(engine, storage, study)
    time.sleep(2.5)  # past the grace period: the resuming worker's first sweep sees the dead heartbeat
    subprocess.run(W.worker_command(engine, storage, n_trials=n_trials, study=study), check=True,
                   stderr=subprocess.DEVNULL, timeout=120)
    return before, W.read_trials(engine, storage, study), killed


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_kill_and_resume_leaves_the_same_table_as_optuna(tmp_path):
    tables = {}
    for engine in ("scratch", "optuna"):
        (tmp_path / engine).mkdir()
        before, after, killed = _kill_and_resume(engine, tmp_path / engine)
        assert killed == 2 and before[killed]["state"] == "RUNNING"
        completed = {t["number"]: t["params"] for t in before if t["state"] == "COMPLETE"}
        assert {t["number"]: t["params"] for t in after if t["number"] in completed} == completed  # none lost
        assert after[killed]["state"] == "FAIL"
        retries = [t for t in after if t["retry_of"] == killed]
        assert len(retries) == 1 and retries[0]["state"] == "COMPLETE" and retries[0]["params"] == before[killed][
            "params"]
        tables[engine] = [(t["number"], t["state"], t["retry_of"]) for t in after]
    assert tables["scratch"] == tables["optuna"] == [
        (0, "COMPLETE", None), (1, "COMPLETE", None), (2, "FAIL", None), (3, "COMPLETE", 2), (4, "COMPLETE", None),
        (5, "COMPLETE", None)]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_optuna_trial_is_stale_even_if_killed_before_its_heartbeat_thread_ran(tmp_path):
    """Optuna skips RUNNING trials with no heartbeat row when it looks for stale ones; our objective wrapper
    beats once before any work, so a worker killed at once still leaves a trial that is failed and retried."""
    import optuna

    url = f"sqlite:///{tmp_path / 'hb.db'}"
    study = W.create_study(url, "hb", grace_period=1)
    storage = study._storage
    bare, wrapped = study.ask(), study.ask()  # both RUNNING; only `wrapped` goes through the objective wrapper
    objective = W._objective("quadratic", 0.0, 0)
    objective(optuna.trial.Trial(study, wrapped._trial_id))
    time.sleep(2.1)  # past the 1 s grace period (Optuna compares whole-second-resolution timestamps)
    stale = storage._get_stale_trial_ids(study._study_id)
    assert wrapped._trial_id in stale and bare._trial_id not in stale

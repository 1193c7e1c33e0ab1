"""One worker of a shared study: ``python -m dlhelpers.tuning_worker --storage URL --study NAME ...``.

Start as many as you like, on one machine or many: they coordinate only through the storage. Two engines:

* **Optuna** (default). Locally the storage is a SQLite file (``sqlite:////tmp/study.db``); across machines it is a
  database server, with the same command on every machine::

      optuna create-study --storage postgresql://user:pass@db-host/optuna --study-name digits --direction maximize
      python -m dlhelpers.tuning_worker --storage postgresql://user:pass@db-host/optuna --study digits --n-trials 200

  Fault tolerance: the storage is opened with a heartbeat (``heartbeat_interval`` seconds) and a
  ``grace_period``; a trial whose worker stopped beating (killed, machine lost) is marked ``FAIL`` by the next
  worker that starts a trial, and ``RetryHeartbeatStaleTrialCallback`` (Optuna < 4.9: ``RetryFailedTrialCallback``)
  re-enqueues its parameters as a new trial; ``RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)``
  names the original. Workers stop when the study has ``--n-trials`` completed trials (``MaxTrialsCallback``,
  checked after each trial, so ``W`` workers can overshoot by up to ``W - 1``).

* **From scratch** (``--engine scratch``, storage = a SQLite file path): :class:`TrialQueue`, the three ideas that
  make Optuna's ``RDBStorage`` distributable in plain ``sqlite3`` — an atomic claim under the database's write lock,
  a heartbeat thread, and a stale sweep that fails and retries — with trials proposed by random search (each
  worker its own seeded stream). Its budget counts running trials inside the same lock, so it never overshoots.

Objectives: ``quadratic`` (instant, plus ``--sleep`` seconds to stand in for training; used by the tests),
``branin`` and ``digits`` (the MLP of :class:`dlhelpers.tuning.DigitsTask`, validation accuracy, maximized; Optuna
engine only). The module imports neither Optuna nor torch at start-up, so a worker starts fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

OBJECTIVES = ("quadratic", "branin", "digits")
ENGINES = ("optuna", "scratch")
QUADRATIC_SPACE = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}


def quadratic(params: Mapping[str, float]) -> float:
    """``(x - 0.5)^2 + (y + 0.25)^2``: the cheap objective of the tests and the chapter's notebook."""
    return (float(params["x"]) - 0.5) ** 2 + (float(params["y"]) + 0.25) ** 2


# --------------------------------------------------------------------------- from scratch: a SQLite trial queue
_SCHEMA = """CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY, state TEXT NOT NULL, params TEXT NOT NULL, value REAL, worker INTEGER,
    started REAL, heartbeat REAL, finished REAL, retry_of INTEGER)"""


class TrialQueue:
    """A study's trials as rows of one SQLite table that any number of worker processes share.

    States as in Optuna: ``WAITING`` (a retry not yet picked up) -> ``RUNNING`` -> ``COMPLETE`` or ``FAIL``.

    * :meth:`ask` runs inside ``BEGIN IMMEDIATE`` (SQLite's write lock, the role of ``SELECT ... FOR UPDATE`` on a
      server): sweep stale trials, then take the oldest ``WAITING`` trial, else create a new ``RUNNING`` one with
      ``sample()``'s params if ``COMPLETE + RUNNING + WAITING < n_trials``. Two workers never get the same trial
      and the budget is never overshot.
    * :meth:`beat` stamps ``heartbeat = now`` (a worker thread calls it every ``heartbeat_interval`` seconds).
    * :meth:`fail_stale`: a ``RUNNING`` trial whose heartbeat is older than ``grace_period`` seconds becomes
      ``FAIL`` and, while its chain has had fewer than ``max_retry`` retries, a ``WAITING`` copy of its params
      is appended with ``retry_of`` = the first failed number (Optuna's ``RetryHeartbeatStaleTrialCallback``:
      ``system_attrs["failed_trial"]``).
    * :meth:`tell` stores the value (NaN/inf: ``FAIL``); a trial already failed by a sweep stays failed and
      ``tell`` returns ``False`` (Optuna raises ``UpdateFinishedTrialError``).

    Times are ``time.time()`` of the calling process, passed explicitly as ``now`` in tests; across machines the
    clocks must agree to well within ``grace_period``.
    """

    def __init__(self, path: str | Path, *, n_trials: int, grace_period: float = 3.0, max_retry: int = 2) -> None:
        fn = "TrialQueue"
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise ValueError(f"{fn}: n_trials must be a positive int, got {n_trials!r}")
        if not isinstance(grace_period, int | float) or not grace_period > 0:
            raise ValueError(f"{fn}: grace_period must be a positive number of seconds, got {grace_period!r}")
        if isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0:
            raise ValueError(f"{fn}: max_retry must be an int >= 0, got {max_retry!r}")
        self.path, self.n_trials = str(path), n_trials
        self.grace_period, self.max_retry = float(grace_period), max_retry
        self._db = connect(self.path)
        self._db.execute(_SCHEMA)

    # the transaction every writer goes through
    def _write(self, body: Callable[[], Any]) -> Any:
        self._db.execute("BEGIN IMMEDIATE")  # take the write lock now: no other process can interleave
        try:
            out = body()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return out

    def _insert(self, state: str, params: Mapping[str, Any], **cols: Any) -> int:
        (number,) = self._db.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM trials").fetchone()
        names = ["number", "state", "params", *cols]
        self._db.execute(f"INSERT INTO trials ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                         (number, state, json.dumps(dict(params)), *cols.values()))
        return number

    def _sweep(self, now: float) -> list[int]:
        stale = self._db.execute("SELECT number, params, retry_of FROM trials WHERE state = 'RUNNING' AND "
                                 "heartbeat < ? ORDER BY number", (now - self.grace_period,)).fetchall()
        for number, params, retry_of in stale:
            self._db.execute("UPDATE trials SET state = 'FAIL', finished = ? WHERE number = ?", (now, number))
            first = number if retry_of is None else retry_of
            (retries,) = self._db.execute("SELECT COUNT(*) FROM trials WHERE retry_of = ?", (first,)).fetchone()
            if retries < self.max_retry:
                self._insert("WAITING", json.loads(params), retry_of=first)
        return [s[0] for s in stale]

    def fail_stale(self, now: float | None = None) -> list[int]:
        """Mark every stale ``RUNNING`` trial ``FAIL`` (and enqueue its retry); returns their numbers."""
        now = time.time() if now is None else now
        return self._write(lambda: self._sweep(now))

    def ask(self, worker: int, sample: Callable[[], Mapping[str, Any]], now: float | None = None
            ) -> tuple[int, dict[str, Any]] | None:
        """Claim a trial for ``worker``: ``(number, params)``, or ``None`` when nothing is left to start."""
        now = time.time() if now is None else now

        def claim():
            self._sweep(now)
            row = self._db.execute("SELECT number, params FROM trials WHERE state = 'WAITING' ORDER BY number "
                                   "LIMIT 1").fetchone()
            if row is not None:
                self._db.execute("UPDATE trials SET state = 'RUNNING', worker = ?, started = ?, heartbeat = ? "
                                 "WHERE number = ?", (worker, now, now, row[0]))
                return row[0], json.loads(row[1])
            (used,) = self._db.execute("SELECT COUNT(*) FROM trials WHERE state != 'FAIL'").fetchone()
            if used >= self.n_trials:
                return None
            params = dict(sample())
            return self._insert("RUNNING", params, worker=worker, started=now, heartbeat=now), params

        return self._write(claim)

    def beat(self, number: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._db.execute("UPDATE trials SET heartbeat = ? WHERE number = ? AND state = 'RUNNING'", (now, number))

    def tell(self, number: int, value: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        state = "COMPLETE" if math.isfinite(value) else "FAIL"
        cur = self._db.execute("UPDATE trials SET state = ?, value = ?, finished = ? WHERE number = ? AND "
                               "state = 'RUNNING'", (state, float(value), now, number))
        return cur.rowcount == 1

    def count(self, state: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[0]

    def trials(self) -> list[dict[str, Any]]:
        """Every trial as a dict (``number, state, params, value, worker, started, heartbeat, finished,
        retry_of``), in order."""
        cur = self._db.execute("SELECT * FROM trials ORDER BY number")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row), params=json.loads(row[2])) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()


def connect(path: str) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit ``BEGIN IMMEDIATE``) that waits up to 60 s for a lock."""
    return sqlite3.connect(path, timeout=60.0, isolation_level=None)


def _heartbeat(path: str, number: int, interval: float, stop: threading.Event) -> None:
    db = connect(path)  # a connection per thread
    try:
        while not stop.wait(interval):
            db.execute("UPDATE trials SET heartbeat = ? WHERE number = ? AND state = 'RUNNING'", (time.time(), number))
    finally:
        db.close()


def run_scratch_worker(path: str | Path, *, n_trials: int, sleep: float = 0.0, seed: int = 0,
                       heartbeat_interval: float = 1.0, grace_period: float = 3.0, max_retry: int = 2,
                       poll: float = 0.05, stall_after: int | None = None) -> int:
    """Work on the :class:`TrialQueue` at ``path`` until it holds ``n_trials`` completed trials and nothing is
    running; returns how many trials this worker finished. Objective: :func:`quadratic` after ``sleep`` s.

    A worker with nothing to start keeps polling while another worker's trial runs: if that worker dies, the
    sweep fails its trial and this one runs the retry (an Optuna worker stops instead; a restarted one resumes).
    """
    queue = TrialQueue(path, n_trials=n_trials, grace_period=grace_period, max_retry=max_retry)
    rng = random.Random(seed + os.getpid())  # random search; each worker its own stream (no torch import: fast start)
    sample = lambda: {k: rng.uniform(lo, hi) for k, (lo, hi) in QUADRATIC_SPACE.items()}
    done = 0
    while True:
        claimed = queue.ask(os.getpid(), sample)
        if claimed is None:
            if queue.count("RUNNING") == 0 and queue.count("WAITING") == 0:
                queue.close()
                return done
            time.sleep(poll)
            continue
        number, params = claimed
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(queue.path, number, heartbeat_interval, stop), daemon=True)
        beat.start()
        try:
            _stall_if(done, stall_after)
            time.sleep(sleep)
            value = quadratic(params)
        except Exception:
            value = math.nan
        finally:
            stop.set()
            beat.join()
        done += queue.tell(number, value)


STALL_SECONDS = 3600.0


def _stall_if(finished: int, stall_after: int | None) -> None:
    """For kill demos and tests: once this worker has finished ``stall_after`` trials, its next trial hangs
    (a trial that outlives the demo), so the kill lands on a known trial whatever the machine's load."""
    if stall_after is not None and finished >= stall_after:
        time.sleep(STALL_SECONDS)


# --------------------------------------------------------------------------- Optuna
def _quiet_experimental() -> None:
    import optuna

    # heartbeats and the retry callback are marked experimental in Optuna 5.0; the notice is not news to a worker log
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_storage(url: str, *, heartbeat_interval: int = 1, grace_period: int = 3, max_retry: int = 2):
    """An ``RDBStorage`` with heartbeat-based failure detection and automatic retry of failed trials.

    Optuna 5.0 names: ``heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry)``; before 4.9
    the same thing was ``failed_trial_callback=RetryFailedTrialCallback(max_retry)`` (still accepted, deprecated).
    """
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    _quiet_experimental()
    return RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry))


def direction_of(objective: str) -> str:
    return "maximize" if objective == "digits" else "minimize"


def create_study(url: str, name: str, objective: str = "quadratic", seed: int = 0, **storage_kwargs):
    """Create the study once (before starting workers: concurrent creation races on SQLite) or load it."""
    import optuna

    return optuna.create_study(study_name=name, storage=make_storage(url, **storage_kwargs),
                               direction=direction_of(objective), load_if_exists=True,
                               sampler=optuna.samplers.TPESampler(seed=seed))


def _objective(kind: str, sleep: float, seed: int, stall_after: int | None = None):
    finished = 0  # trials this worker has finished

    def pause() -> None:  # after the parameters are drawn: the training time, or a stall for kill demos
        _stall_if(finished, stall_after)
        time.sleep(sleep)

    if kind == "quadratic":
        def f(trial) -> float:
            p = {k: trial.suggest_float(k, *b) for k, b in QUADRATIC_SPACE.items()}
            pause()
            return quadratic(p)
    elif kind == "branin":
        from dlhelpers.tuning import branin

        def f(trial) -> float:
            p = {"x1": trial.suggest_float("x1", -5.0, 10.0), "x2": trial.suggest_float("x2", 0.0, 15.0)}
            pause()
            return branin(p)
    else:
        from dlhelpers.tuning import DIGITS_SPACE, DigitsTask

        task = DigitsTask(seed=seed)
        d = DIGITS_SPACE.dims

        def f(trial) -> float:
            p = {"lr": trial.suggest_float("lr", d["lr"].low, d["lr"].high, log=True),
                 "weight_decay": trial.suggest_float("weight_decay", d["weight_decay"].low, d["weight_decay"].high,
                                                     log=True),
                 "width": trial.suggest_int("width", d["width"].low, d["width"].high, log=True),
                 "dropout": trial.suggest_float("dropout", d["dropout"].low, d["dropout"].high),
                 "batch_size": trial.suggest_categorical("batch_size", list(d["batch_size"].choices))}
            pause()
            return task.objective(p)[0]

    def wrapped(trial) -> float:
        nonlocal finished
        # Optuna's heartbeat thread records its first beat whenever the scheduler runs it, and a RUNNING trial
        # with no beat recorded is never found stale: killed in that window, it stays RUNNING forever and is
        # never retried (seen once on a loaded machine). Beat once ourselves before any work, as the scratch
        # TrialQueue does when it claims a trial.
        trial.study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("worker_pid", os.getpid())
        value = f(trial)
        finished += 1
        return value
    return wrapped


def run_worker(url: str, name: str, *, n_trials: int, objective: str = "quadratic", sleep: float = 0.0,
               seed: int = 0, heartbeat_interval: int = 1, grace_period: int = 3, max_retry: int = 2,
               stall_after: int | None = None) -> int:
    """Work on study ``name`` until it has ``n_trials`` completed trials; returns how many this worker ran."""
    if objective not in OBJECTIVES:
        raise ValueError(f"run_worker: unknown objective {objective!r}; expected one of {list(OBJECTIVES)}")
    if n_trials < 1:
        raise ValueError(f"run_worker: n_trials must be >= 1, got {n_trials}")
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                           max_retry=max_retry)
    # each worker samples with its own seed (same seed in two workers would propose the same points)
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed + os.getpid()))
    done = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    before = done()
    if before < n_trials:
        study.optimize(_objective(objective, sleep, seed, stall_after), n_trials=10 * n_trials,
                       callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))])
    return done() - before


# --------------------------------------------------------------------------- driving workers (tests, notebook)
def worker_command(engine: str, storage: str, *, n_trials: int, study: str | None = None, sleep: float = 0.0,
                   heartbeat: int = 1, grace: int = 2, seed: int = 0, stall_after: int | None = None) -> list[str]:
    """The command line that starts one worker process of either engine (``subprocess.Popen(cmd)``)."""
    if engine not in ENGINES:
        raise ValueError(f"worker_command: unknown engine {engine!r}; expected one of {list(ENGINES)}")
    cmd = [sys.executable, "-m", "dlhelpers.tuning_worker", "--engine", engine, "--storage", storage,
           "--n-trials", str(n_trials), "--sleep", str(sleep), "--heartbeat", str(heartbeat), "--grace", str(grace),
           "--seed", str(seed)]
    cmd += ["--stall-after", str(stall_after)] if stall_after is not None else []
    return cmd + (["--study", study] if study is not None else [])


def read_trials(engine: str, storage: str, study: str | None = None) -> list[dict[str, Any]]:
    """The trials of either engine in one layout: ``number, state, params, value, worker, started, finished,
    retry_of`` (``state`` an Optuna state name; times in seconds since the epoch or ``None``)."""
    if engine == "scratch":
        if not Path(storage).exists():
            return []
        db = connect(storage)
        try:
            exists = db.execute("SELECT name FROM sqlite_master WHERE name = 'trials'").fetchone()
            rows = db.execute("SELECT number, state, params, value, worker, started, finished, retry_of FROM trials "
                              "ORDER BY number").fetchall() if exists else []
        finally:
            db.close()
        keys = ("number", "state", "params", "value", "worker", "started", "finished", "retry_of")
        return [dict(zip(keys, r), params=json.loads(r[2])) for r in rows]
    if engine != "optuna":
        raise ValueError(f"read_trials: unknown engine {engine!r}; expected one of {list(ENGINES)}")
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    _quiet_experimental()
    stamp = lambda d: None if d is None else d.timestamp()
    return [{"number": t.number, "state": t.state.name, "params": dict(t.params), "value": t.value,
             "worker": t.user_attrs.get("worker_pid"), "started": stamp(t.datetime_start),
             "finished": stamp(t.datetime_complete),
             "retry_of": RetryHeartbeatStaleTrialCallback.retried_trial_number(t)}
            for t in optuna.load_study(study_name=study, storage=storage).get_trials()]


def kill_mid_trial(proc, engine: str, storage: str, study: str | None = None, *, after_complete: int = 2,
                   timeout: float = 60.0, poll: float = 0.05) -> int:
    """Wait until ``after_complete`` trials are complete and ``proc`` runs a trial with its params drawn, then
    ``SIGKILL`` the worker (no clean-up runs, as when a machine dies); returns the number of that trial."""
    import signal

    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            trials = read_trials(engine, storage, study)
            done = sum(t["state"] == "COMPLETE" for t in trials)
            mine = [t for t in trials if t["state"] == "RUNNING" and t["params"] and t["worker"] == proc.pid]
            if done >= after_complete and mine:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                raise RuntimeError(f"kill_mid_trial: the worker exited (code {proc.returncode}) before the kill")
            time.sleep(poll)
        else:
            proc.kill()
            raise TimeoutError(f"kill_mid_trial: no running trial after {after_complete} complete in {timeout} s")
    finally:
        proc.wait()
    number = mine[-1]["number"]
    state = read_trials(engine, storage, study)[number]["state"]
    if state != "RUNNING":  # the trial ended between our look and the kill (a stalled machine): say so, loudly
        raise RuntimeError(f"kill_mid_trial: trial {number} was {state} when the kill landed; use a longer trial")
    return number


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dlhelpers.tuning_worker", description=__doc__.split("\n")[0])
    ap.add_argument("--storage", required=True,
                    help="optuna: RDB URL (sqlite:///file.db, postgresql://..., mysql://...); scratch: a file path")
    ap.add_argument("--study", default=None, help="study name (optuna engine)")
    ap.add_argument("--engine", choices=ENGINES, default="optuna")
    ap.add_argument("--n-trials", type=int, required=True, help="stop when the study has this many completed")
    ap.add_argument("--objective", choices=OBJECTIVES, default="quadratic")
    ap.add_argument("--sleep", type=float, default=0.0, help="seconds per trial, standing in for training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heartbeat", type=int, default=1)
    ap.add_argument("--grace", type=int, default=3)
    ap.add_argument("--max-retry", type=int, default=2)
    ap.add_argument("--stall-after", type=int, default=None,
                    help="after finishing this many trials, hang in the next one (kill demos and tests)")
    ap.add_argument("--create", action="store_true", help="create the study if it does not exist (optuna)")
    a = ap.parse_args(argv)
    if a.engine == "scratch":
        if a.objective != "quadratic":
            ap.error(f"the scratch engine runs the quadratic objective only, got --objective {a.objective}")
        run_scratch_worker(a.storage, n_trials=a.n_trials, sleep=a.sleep, seed=a.seed,
                           heartbeat_interval=a.heartbeat, grace_period=a.grace, max_retry=a.max_retry,
                           stall_after=a.stall_after)
        return 0
    if a.study is None:
        ap.error("the optuna engine needs --study NAME")
    if a.create:
        create_study(a.storage, a.study, a.objective, a.seed, heartbeat_interval=a.heartbeat, grace_period=a.grace,
                     max_retry=a.max_retry)
    run_worker(a.storage, a.study, n_trials=a.n_trials, objective=a.objective, sleep=a.sleep, seed=a.seed,
               heartbeat_interval=a.heartbeat, grace_period=a.grace, max_retry=a.max_retry,
               stall_after=a.stall_after)
    return 0


if __name__ == "__main__":
    sys.exit(main())

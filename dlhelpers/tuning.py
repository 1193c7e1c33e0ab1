"""Hyperparameter search from scratch: search spaces, grid / random / GP-EI search behind one interface,
trial records that plot and save, benchmark functions, and a small real study on the digits data.

=====================================  ======================================================================
here                                   Optuna counterpart
=====================================  ======================================================================
``Float(low, high, log=False)``        ``optuna.distributions.FloatDistribution`` / ``trial.suggest_float``
``Int(low, high, log=False)``          ``IntDistribution`` / ``trial.suggest_int``
``Categorical(choices)``               ``CategoricalDistribution`` / ``trial.suggest_categorical``
``Space({...})``                       the dict of distributions a study samples from
``GridSearcher``                       ``optuna.samplers.GridSampler``
``RandomSearcher``                     ``optuna.samplers.RandomSampler``
``GPEISearcher``                       ``optuna.samplers.GPSampler`` (GP + log-EI)
``search(objective, space, ...)``      ``study.optimize(objective, n_trials)``
``TrialRecord`` / ``trials_dataframe`` ``FrozenTrial`` / ``study.trials_dataframe()``
``median_prune`` / ``MedianPruner``    ``optuna.pruners.MedianPruner`` (``percentile_prune``: ``PercentilePruner``)
``search(..., pruner=...)``            ``trial.report(value, step)`` + ``trial.should_prune()``
``suggest(trial, space)``              the ``trial.suggest_*`` calls of an Optuna objective, from one ``Space``
``records_from_study``                 ``study.trials`` as our records (one log format for both engines)
``records_to_study``                   our records as an Optuna study (so its visualizations draw them)
``MNIST1DTask``                        a real objective: an MLP on MNIST-1D, validation accuracy per epoch
=====================================  ======================================================================

Every searcher has ``ask() -> params`` and ``tell(params, value)``; ``search`` runs the loop, times each
trial, records NaN/inf results as ``"failed"`` (the search goes on) and can append every trial to a JSON-lines
log. For the chapter-10 plots: ``trials_dataframe(run_digits_study(n_trials, seed))`` is a pandas DataFrame of a
real (small, about a second a trial) study.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlhelpers._checks import check_choice

__all__ = [
    "Float", "Int", "Categorical", "Space", "TrialRecord", "GridSearcher", "RandomSearcher", "GPEISearcher",
    "search", "best_so_far", "best_record", "trials_dataframe", "save_records", "load_records",
    "branin", "hartmann6", "BRANIN_SPACE", "BRANIN_MIN", "HARTMANN6_SPACE", "HARTMANN6_MIN",
    "DigitsTask", "DIGITS_SPACE", "DIGITS_DEFAULTS", "run_digits_study",
    "TrialPruned", "nanpercentile", "percentile_prune", "median_prune", "PercentilePruner", "MedianPruner",
    "ReplaySearcher", "suggest", "optuna_distributions", "records_from_study", "records_to_study",
    "MNIST1DTask", "MNIST1D_SPACE", "MNIST1D_DEFAULTS",
]


# --------------------------------------------------------------------------- distributions
def _real(value: object, name: str, fn: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{fn}: {name} must be a finite real number, got {type(value).__name__} {value!r}")
    return float(value)


@dataclass(frozen=True)
class Float:
    """A real hyperparameter in ``[low, high]``; ``log=True`` samples ``exp(U(log low, log high))`` (log-uniform).

    Encoded for the GP as ``u = (x - low) / (high - low)`` (or the same on ``log x``) in ``[0, 1]``.
    Optuna: ``trial.suggest_float(name, low, high, log=log)``.
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        fn = type(self).__name__
        low, high = _real(self.low, "low", fn), _real(self.high, "high", fn)
        if low >= high:
            raise ValueError(f"{fn}: low must be < high, got low={self.low!r}, high={self.high!r}")
        if self.log and low <= 0:
            raise ValueError(f"{fn}: a log scale needs low > 0, got low={self.low!r}")

    width = 1

    def _t(self, x: float) -> float:
        return math.log(x) if self.log else x

    def sample(self, rng: np.random.Generator) -> Any:
        return self.from_unit([rng.uniform()])

    def to_unit(self, value: Any) -> list[float]:
        a, b = self._t(self.low), self._t(self.high)
        return [(self._t(float(value)) - a) / (b - a)]

    def from_unit(self, u: Sequence[float]) -> Any:
        a, b = self._t(self.low), self._t(self.high)
        t = a + min(max(float(u[0]), 0.0), 1.0) * (b - a)
        return float(min(max(math.exp(t) if self.log else t, self.low), self.high))

    def grid(self, points: int | None, name: str) -> list[Any]:
        if points is None:
            raise ValueError(f"grid: the continuous range {name!r} ({self}) needs a number of grid points, "
                             f"got points=None")
        if not isinstance(points, int) or points < 1:
            raise ValueError(f"grid: points for {name!r} must be a positive int, got {points!r}")
        if points == 1:
            return [self.from_unit([0.5])]
        return [self.from_unit([i / (points - 1)]) for i in range(points)]


@dataclass(frozen=True)
class Int(Float):
    """An integer hyperparameter in ``[low, high]`` (both included); ``log=True`` for e.g. layer widths.

    Sampled and encoded as a real number on ``[low - 0.5, high + 0.5]`` (log scale: on the log of that), then
    rounded, so every integer gets the same share of the unit interval. Optuna: ``trial.suggest_int``.
    """

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"Int: {name} must be an int, got {type(v).__name__} {v!r}")
        super().__post_init__()

    def _edges(self) -> tuple[float, float]:
        return self._t(self.low - 0.5), self._t(self.high + 0.5)  # log scale: low >= 1, so low - 0.5 > 0

    def to_unit(self, value: Any) -> list[float]:
        a, b = self._edges()
        return [min(max((self._t(float(value)) - a) / (b - a), 0.0), 1.0)]

    def from_unit(self, u: Sequence[float]) -> Any:
        a, b = self._edges()
        t = a + min(max(float(u[0]), 0.0), 1.0) * (b - a)
        return int(min(max(round(math.exp(t) if self.log else t), self.low), self.high))

    def grid(self, points: int | None, name: str) -> list[Any]:
        if points is None:
            return list(range(self.low, self.high + 1))
        if not isinstance(points, int) or points < 1:
            raise ValueError(f"grid: points for {name!r} must be a positive int, got {points!r}")
        a, b = self._t(self.low), self._t(self.high)
        ts = [a + (b - a) * (i / (points - 1) if points > 1 else 0.5) for i in range(points)]
        return sorted({int(round(math.exp(t) if self.log else t)) for t in ts})


@dataclass(frozen=True)
class Categorical:
    """One of a finite list of ``choices``, encoded one-hot (the GP sees ``len(choices)`` columns in [0, 1] and
    the choice is the arg-max). Optuna: ``trial.suggest_categorical(name, choices)``."""

    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Sequence):
            raise TypeError(f"Categorical: choices must be a list or tuple, got {type(self.choices).__name__}")
        if len(self.choices) == 0:
            raise ValueError("Categorical: choices must not be empty, got []")
        object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def width(self) -> int:
        return len(self.choices)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def to_unit(self, value: Any) -> list[float]:
        if value not in self.choices:
            raise ValueError(f"Categorical: {value!r} is not one of {list(self.choices)}")
        return [1.0 if c == value else 0.0 for c in self.choices]

    def from_unit(self, u: Sequence[float]) -> Any:
        return self.choices[int(np.argmax(np.asarray(u, dtype=float)))]

    def grid(self, points: int | None, name: str) -> list[Any]:
        return list(self.choices)


Distribution = Float | Int | Categorical
_NAMED = {"uniform": lambda lo, hi: Float(lo, hi), "float": lambda lo, hi: Float(lo, hi),
          "log_uniform": lambda lo, hi: Float(lo, hi, log=True), "loguniform": lambda lo, hi: Float(lo, hi, log=True),
          "int": lambda lo, hi: Int(lo, hi), "log_int": lambda lo, hi: Int(lo, hi, log=True),
          "categorical": lambda *choices: Categorical(choices[0] if len(choices) == 1 else choices)}


def _as_distribution(name: str, spec: object) -> Distribution:
    if isinstance(spec, Float | Categorical):
        return spec
    if isinstance(spec, tuple | list) and spec and isinstance(spec[0], str):
        kind = spec[0]
        if kind not in _NAMED:
            raise ValueError(f"Space: unknown distribution {kind!r} for {name!r}; expected one of {sorted(_NAMED)}")
        return _NAMED[kind](*spec[1:])
    raise TypeError(f"Space: {name!r} must be a Float, Int, Categorical or a tuple like ('log_uniform', 1e-4, 1e-1), "
                    f"got {spec!r}")


class Space:
    """A named search space: ``Space({"lr": Float(1e-4, 1e-1, log=True), "width": Int(16, 256, log=True),
    "act": Categorical(["relu", "gelu"])})`` or with tuples ``("log_uniform", 1e-4, 1e-1)``, ``("int", 16, 256)``,
    ``("categorical", [...])``.

    ``encode`` maps a params dict to a point of the unit cube ``[0, 1]^D`` (``D`` = total width: 1 per number,
    one column per category) and ``decode`` maps any point of that cube back to valid params.
    """

    def __init__(self, dims: Mapping[str, object]) -> None:
        if not isinstance(dims, Mapping):
            raise TypeError(f"Space: expected a dict of name -> distribution, got {type(dims).__name__}")
        if len(dims) == 0:
            raise ValueError("Space: the search space is empty; expected at least one hyperparameter, got {}")
        self.dims: dict[str, Distribution] = {str(k): _as_distribution(str(k), v) for k, v in dims.items()}

    def __repr__(self) -> str:
        return f"Space({self.dims})"

    @property
    def names(self) -> list[str]:
        return list(self.dims)

    @property
    def width(self) -> int:
        return sum(d.width for d in self.dims.values())

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {k: d.sample(rng) for k, d in self.dims.items()}

    def encode(self, params: Mapping[str, Any]) -> torch.Tensor:
        missing = set(self.dims) - set(params)
        if missing:
            raise ValueError(f"Space.encode: params lack {sorted(missing)}; got {sorted(params)}")
        return torch.tensor([u for k, d in self.dims.items() for u in d.to_unit(params[k])], dtype=torch.float64)

    def decode(self, u: torch.Tensor | Sequence[float]) -> dict[str, Any]:
        u = [float(v) for v in u]
        if len(u) != self.width:
            raise ValueError(f"Space.decode: expected a point with {self.width} coordinates, got {len(u)}")
        out, i = {}, 0
        for k, d in self.dims.items():
            out[k] = d.from_unit(u[i:i + d.width])
            i += d.width
        return out

    def grid(self, points: int | Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """Cartesian product of per-dimension grids (``points``: one int for every continuous dimension or a dict
        per name). Categorical and (without points) integer dimensions are enumerated in full."""
        per = points if isinstance(points, Mapping) else {k: points for k in self.dims}
        axes = [d.grid(per.get(k), k) for k, d in self.dims.items()]
        return [dict(zip(self.dims, combo)) for combo in itertools.product(*axes)]


# --------------------------------------------------------------------------- records
@dataclass
class TrialRecord:
    """One evaluated configuration: what ``search`` returns a list of (JSON-serializable via ``asdict``)."""

    number: int
    params: dict[str, Any]
    value: float
    state: str  # "complete" or "failed"
    seconds: float
    seed: int
    searcher: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    #: ``{step: value}`` reported while the trial ran (``search(..., pruner=...)``); a pruned trial's ``value`` is
    #: its last reported one, as in Optuna. State ``"pruned"`` joins ``"complete"`` and ``"failed"``.
    intermediate: dict[int, float] = field(default_factory=dict)


def _check_direction(direction: str, fn: str) -> str:
    return check_choice(direction, ("minimize", "maximize"), "direction", fn)


def best_record(records: Sequence[TrialRecord], direction: str = "minimize") -> TrialRecord:
    """The completed trial with the lowest (``maximize``: highest) value."""
    _check_direction(direction, "best_record")
    done = [r for r in records if r.state == "complete"]
    if not done:
        raise ValueError(f"best_record: no completed trial among {len(records)} records")
    key = (lambda r: r.value) if direction == "minimize" else (lambda r: -r.value)
    return min(done, key=key)


def best_so_far(records: Sequence[TrialRecord], direction: str = "minimize") -> list[float]:
    """Running best value after each trial (failed trials repeat the previous best; NaN before the first)."""
    _check_direction(direction, "best_so_far")
    sign = 1.0 if direction == "minimize" else -1.0
    best, out = math.inf, []
    for r in records:
        if r.state == "complete":
            best = min(best, sign * r.value)
        out.append(sign * best if math.isfinite(best) else math.nan)
    return out


def trials_dataframe(records: Sequence[TrialRecord]):
    """A pandas DataFrame with one row per trial, in the layout of Optuna's ``study.trials_dataframe()``:
    ``number, value, state, seconds, seed, searcher, params_<name>..., metrics_<name>...``.

    Stable interface for plotting (chapter 10 uses it). An empty list gives an empty frame with those columns.
    """
    import pandas as pd

    rows = []
    for r in records:
        row = {"number": r.number, "value": r.value, "state": r.state, "seconds": r.seconds, "seed": r.seed,
               "searcher": r.searcher}
        row.update({f"params_{k}": v for k, v in r.params.items()})
        row.update({f"metrics_{k}": v for k, v in r.metrics.items()})
        rows.append(row)
    cols = ["number", "value", "state", "seconds", "seed", "searcher"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def save_records(records: Sequence[TrialRecord], path: str | Path) -> Path:
    """Write one JSON object per line (``.jsonl``) or a CSV (``.csv``, via :func:`trials_dataframe`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        trials_dataframe(records).to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    else:
        raise ValueError(f"save_records: path must end in .jsonl or .csv, got {path.name!r}")
    return path


def load_records(path: str | Path) -> list[TrialRecord]:
    """Read a ``.jsonl`` log written by :func:`save_records` or by ``search(..., log_path=...)``."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = TrialRecord(**json.loads(line))
            rec.intermediate = {int(k): v for k, v in rec.intermediate.items()}  # JSON keys are strings
            out.append(rec)
    return out


# --------------------------------------------------------------------------- searchers
class _Searcher:
    name = "searcher"

    def __init__(self, space: Space, seed: int = 0) -> None:
        if not isinstance(space, Space):
            raise TypeError(f"{type(self).__name__}: space must be a Space, got {type(space).__name__}")
        self.space, self.seed = space, seed
        self.rng = np.random.default_rng(seed)
        self.X: list[torch.Tensor] = []
        self.y: list[float] = []

    def ask(self) -> dict[str, Any]:
        raise NotImplementedError

    def tell(self, params: Mapping[str, Any], value: float) -> None:
        """Record an observation (minimization). Non-finite values are ignored: the trial failed."""
        if math.isfinite(value):
            self.X.append(self.space.encode(params))
            self.y.append(float(value))


class _ListSearcher(_Searcher):
    """Proposes ``self.points`` in order, then raises ``StopIteration(self._exhausted)``."""

    points: list[dict[str, Any]]
    _next: int
    _exhausted: str

    def ask(self) -> dict[str, Any]:
        if self._next >= len(self.points):
            raise StopIteration(self._exhausted)
        self._next += 1
        return dict(self.points[self._next - 1])


class GridSearcher(_ListSearcher):
    """Every point of ``space.grid(points)``, in order (``shuffle=True``: in a seeded random order).
    ``ask`` raises ``StopIteration`` when the grid is exhausted. Optuna: ``GridSampler(search_space)``."""

    name = "grid"

    def __init__(self, space: Space, points: int | Mapping[str, int] | None = None, *, seed: int = 0,
                 shuffle: bool = False) -> None:
        super().__init__(space, seed)
        self.points = space.grid(points)
        if shuffle:
            self.points = [self.points[i] for i in self.rng.permutation(len(self.points))]
        self._next = 0
        self._exhausted = "GridSearcher: every grid point has been evaluated"


class RandomSearcher(_Searcher):
    """Independent draws from each distribution. Optuna: ``RandomSampler(seed)``."""

    name = "random"

    def ask(self) -> dict[str, Any]:
        return self.space.sample(self.rng)


class GPEISearcher(_Searcher):
    """Bayesian optimization: a GP on the unit-cube encoding, expected improvement maximized over it.

    The first ``n_init`` trials are random (a GP on two points knows nothing). Then each ``ask``:

    1. fits :class:`dlhelpers.gp.GaussianProcess` (Matérn-5/2 ARD, standardized ``y``, optionally a rank /
       log warp ``y -> log(y - min + 1)`` that tames objectives spanning orders of magnitude, hyperparameters
       by maximum marginal likelihood with restarts, a fitted noise/jitter term);
    2. scores ``n_candidates`` uniform random points (plus perturbations of the best observations) by
       ``log EI`` and refines the ``n_refine`` best by L-BFGS-B on ``log EI`` (autograd gradients);
    3. returns the decoded best point.

    Optuna counterpart: ``GPSampler`` (same ingredients: Matérn-5/2, log-EI, L-BFGS-B refinement).
    """

    name = "gp-ei"

    def __init__(self, space: Space, seed: int = 0, *, n_init: int = 5, kernel: str = "matern52",
                 n_candidates: int = 2000, n_refine: int = 3, restarts: int = 2, warp: bool = True,
                 xi: float = 0.0) -> None:
        super().__init__(space, seed)
        from dlhelpers.gp import KERNELS

        check_choice(kernel, KERNELS, "kernel", "GPEISearcher")
        if n_init < 1:
            raise ValueError(f"GPEISearcher: n_init must be >= 1, got {n_init}")
        self.n_init, self.kernel, self.n_candidates, self.n_refine = n_init, kernel, n_candidates, n_refine
        self.restarts, self.warp, self.xi = restarts, warp, xi
        self.gp = None

    def _targets(self) -> torch.Tensor:
        y = torch.tensor(self.y, dtype=torch.float64)
        return torch.log(y - y.min() + 1.0) if self.warp else y

    def fit_gp(self):
        """Fit the surrogate to the observations so far (also used by the notebooks to draw it)."""
        from dlhelpers.gp import GaussianProcess

        previous = None if self.gp is None else self.gp.theta
        self.gp = GaussianProcess(kernel=self.kernel, restarts=self.restarts, seed=self.seed).fit(
            torch.stack(self.X), self._targets(), theta0=previous)
        return self.gp

    def acquisition(self, U: torch.Tensor) -> torch.Tensor:
        """``log EI`` of the fitted GP at unit-cube points ``U`` ``[m, D]`` (differentiable)."""
        from dlhelpers.gp import log_expected_improvement

        mu, sd = self.gp.predict(U)
        return log_expected_improvement(mu, sd, float(self._targets().min()), self.xi)

    def _maximize_acquisition(self) -> torch.Tensor:
        from scipy.optimize import minimize

        D = self.space.width
        cand = torch.from_numpy(self.rng.uniform(size=(self.n_candidates, D)))
        order = np.argsort(self.y)[:3]
        local = torch.stack([self.X[i] for i in order]).repeat_interleave(50, 0)
        local = (local + 0.05 * torch.from_numpy(self.rng.standard_normal(local.shape))).clamp(0, 1)
        cand = torch.cat([cand, local])
        with torch.no_grad():
            score = self.acquisition(cand)
        top = cand[torch.argsort(score, descending=True)[: self.n_refine]]

        def f_and_grad(u: np.ndarray) -> tuple[float, np.ndarray]:
            x = torch.tensor(u, dtype=torch.float64, requires_grad=True)
            val = -self.acquisition(x[None])[0]
            (g,) = torch.autograd.grad(val, x)
            return float(val.detach()), g.numpy()

        best_u, best_v = top[0].numpy(), -float(score.max())
        for u0 in top:
            res = minimize(f_and_grad, u0.numpy(), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * D,
                           options={"maxiter": 30})
            if np.isfinite(res.fun) and res.fun < best_v:
                best_u, best_v = res.x, float(res.fun)
        return torch.from_numpy(np.asarray(best_u))

    def ask(self) -> dict[str, Any]:
        if len(self.y) < self.n_init:
            return self.space.sample(self.rng)
        self.fit_gp()
        return self.space.decode(self._maximize_acquisition())


class ReplaySearcher(_ListSearcher):
    """Proposes the given ``points`` in order (e.g. the params an Optuna study drew), then stops: the way to run
    our loop on exactly another engine's proposals. ``ask`` raises ``StopIteration`` when they are used up."""

    name = "replay"

    def __init__(self, space: Space, points: Sequence[Mapping[str, Any]], seed: int = 0) -> None:
        super().__init__(space, seed)
        for p in points:
            space.encode(p)  # raises if a point lacks a hyperparameter or has an unknown choice
        self.points, self._next = [dict(p) for p in points], 0
        self._exhausted = "ReplaySearcher: every point has been evaluated"


# --------------------------------------------------------------------------- pruning (median stopping rule)
class TrialPruned(Exception):
    """Raised by ``report`` inside an objective when the pruner stops the trial (Optuna: ``TrialPruned``)."""


def nanpercentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of the non-NaN ``values`` by linear interpolation between order
    statistics: index ``h = (n - 1) q / 100``, result ``v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h])``.
    NaN when every value is NaN. Written to round exactly like ``numpy.nanpercentile(values, q)``: the weight
    ``t >= 0.5`` is applied from the upper neighbour, ``b - (b - a)(1 - t)``."""
    v = sorted(float(x) for x in values if not math.isnan(x))
    if not v:
        return math.nan
    h = (len(v) - 1) * (q / 100)
    lo = min(max(math.floor(h), 0), len(v) - 1)
    hi = min(lo + 1, len(v) - 1)
    a, b, t = v[lo], v[hi], h - lo
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _check_pruner_args(fn: str, n_startup_trials: int, n_warmup_steps: int, interval_steps: int,
                       n_min_trials: int, percentile: float = 50.0) -> None:
    for name, v, lo in (("n_startup_trials", n_startup_trials, 0), ("n_warmup_steps", n_warmup_steps, 0),
                        ("interval_steps", interval_steps, 1), ("n_min_trials", n_min_trials, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{fn}: {name} must be an int >= {lo}, got {v!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) or not 0.0 <= percentile <= 100.0:
        raise ValueError(f"{fn}: percentile must be a number in [0, 100], got {percentile!r}")


def percentile_prune(history: Sequence[Mapping[int, float]], intermediate: Mapping[int, float], percentile: float,
                     *, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1,
                     n_min_trials: int = 1, direction: str = "minimize") -> bool:
    """Should the running trial stop? The percentile stopping rule, decision for decision Optuna's
    ``PercentilePruner`` (``MedianPruner`` is ``percentile=50``).

    ``history``: the ``{step: value}`` curves of the *completed* trials (pruned and failed ones do not count);
    ``intermediate``: the running trial's curve so far, its current step ``s = max(intermediate)``. Minimizing,
    prune when ``min_{t <= s} intermediate[t] > P`` with ``P`` the ``percentile``-th percentile of the completed
    trials' values at step ``s`` (maximizing: ``max ... < P`` at the ``100 - percentile``-th percentile). Note
    it is the trial's *best* value so far that is compared, not its latest. No pruning when: no trial or fewer
    than ``n_startup_trials`` completed; ``s < n_warmup_steps``; ``s`` is not the first report in its interval of
    ``interval_steps`` (counted from ``n_warmup_steps``); fewer than ``n_min_trials`` completed trials reported
    step ``s``; or all those values are NaN. A trial whose own values are all NaN is pruned.
    """
    fn = "percentile_prune"
    _check_direction(direction, fn)
    _check_pruner_args(fn, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials, percentile)
    if not history or len(history) < n_startup_trials or not intermediate:
        return False
    step = max(intermediate)
    if step < n_warmup_steps:
        return False
    nearest_lower = (step - n_warmup_steps) // interval_steps * interval_steps + n_warmup_steps
    previous = max((s for s in intermediate if s != step), default=-1)
    if previous >= nearest_lower:  # an earlier report already fell in this interval
        return False
    own = [float(v) for v in intermediate.values() if not math.isnan(v)]
    if not own:
        return True
    best = max(own) if direction == "maximize" else min(own)
    at_step = [h[step] for h in history if step in h]
    if len(at_step) < n_min_trials:
        return False
    p = nanpercentile(at_step, 100.0 - percentile if direction == "maximize" else percentile)
    if math.isnan(p):
        return False
    return best < p if direction == "maximize" else best > p


def median_prune(history: Sequence[Mapping[int, float]], intermediate: Mapping[int, float], *,
                 n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1, n_min_trials: int = 1,
                 direction: str = "minimize") -> bool:
    """The median stopping rule (Golovin et al. 2017, "Google Vizier"): stop a trial whose best value so far is
    worse than the median of the completed trials at the same step. ``percentile_prune(..., 50.0)``; Optuna:
    ``MedianPruner(n_startup_trials, n_warmup_steps, interval_steps, n_min_trials=...)``."""
    return percentile_prune(history, intermediate, 50.0, n_startup_trials=n_startup_trials,
                            n_warmup_steps=n_warmup_steps, interval_steps=interval_steps, n_min_trials=n_min_trials,
                            direction=direction)


class PercentilePruner:
    """Stateless pruner object for ``search(..., pruner=...)``: ``prune(history, intermediate, direction)``
    applies :func:`percentile_prune`. Optuna: ``optuna.pruners.PercentilePruner`` (same arguments)."""

    def __init__(self, percentile: float, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, *, n_min_trials: int = 1) -> None:
        _check_pruner_args(type(self).__name__, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials,
                           percentile)
        self.percentile, self.n_startup_trials, self.n_warmup_steps = percentile, n_startup_trials, n_warmup_steps
        self.interval_steps, self.n_min_trials = interval_steps, n_min_trials

    def prune(self, history: Sequence[Mapping[int, float]], intermediate: Mapping[int, float],
              direction: str = "minimize") -> bool:
        return percentile_prune(history, intermediate, self.percentile, n_startup_trials=self.n_startup_trials,
                                n_warmup_steps=self.n_warmup_steps, interval_steps=self.interval_steps,
                                n_min_trials=self.n_min_trials, direction=direction)


class MedianPruner(PercentilePruner):
    """:func:`median_prune` as an object. Optuna: ``optuna.pruners.MedianPruner`` (same arguments)."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1, *,
                 n_min_trials: int = 1) -> None:
        super().__init__(50.0, n_startup_trials, n_warmup_steps, interval_steps, n_min_trials=n_min_trials)


# --------------------------------------------------------------------------- the loop
Objective = Callable[[dict[str, Any]], float | tuple[float, Mapping[str, float]]]


def _reporter(pruner: PercentilePruner, records: Sequence[TrialRecord], intermediate: dict[int, float],
              direction: str) -> Callable[[int, float], None]:
    history = [r.intermediate for r in records if r.state == "complete"]

    def report(step: int, value: float) -> None:
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"report: step must be a non-negative int, got {step!r}")
        if step in intermediate:
            return  # Optuna warns and keeps the first value
        intermediate[step] = float(value)
        if pruner.prune(history, intermediate, direction):
            raise TrialPruned(f"trial pruned at step {step} (value {float(value):.4g})")

    return report


def search(objective: Objective, space: Space | Mapping[str, object], searcher: str | _Searcher = "random", *,
           n_trials: int, seed: int = 0, direction: str = "minimize", points: int | Mapping[str, int] | None = None,
           log_path: str | Path | None = None, show_progress: bool = True, pruner: PercentilePruner | None = None,
           **searcher_kwargs: Any) -> list[TrialRecord]:
    """Evaluate ``objective(params)`` for ``n_trials`` configurations proposed by ``searcher``.

    ``searcher``: ``"grid"`` (``points`` per continuous dimension), ``"random"``, ``"gp-ei"``, or a searcher
    instance. ``objective`` returns a float or ``(value, metrics_dict)``. A NaN/inf value is recorded with
    ``state="failed"`` and not shown to the searcher; the search goes on. ``direction="maximize"`` negates the
    value for the searcher only (records keep the objective's sign). ``log_path`` (``.jsonl``) gets one line per
    trial as soon as it finishes. A grid smaller than ``n_trials`` ends the search early.

    With a ``pruner`` (e.g. :class:`MedianPruner`) the objective is called as ``objective(params, report)``:
    ``report(step, value)`` stores an intermediate value (a second report of the same step is ignored, as in
    Optuna) and raises :class:`TrialPruned` when ``pruner.prune(curves of the completed trials, this curve,
    direction)`` says so. A pruned trial is recorded with ``state="pruned"`` and its last reported value (also
    told to the searcher: a pessimistic guess that still steers it away).
    """
    fn = "search"
    _check_direction(direction, fn)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ValueError(f"{fn}: n_trials must be a positive int, got {n_trials!r}")
    space = space if isinstance(space, Space) else Space(space)
    if isinstance(searcher, str):
        check_choice(searcher, ("grid", "random", "gp-ei"), "searcher", fn)
        if searcher == "grid":
            searcher = GridSearcher(space, points, seed=seed, **searcher_kwargs)
        elif searcher == "random":
            searcher = RandomSearcher(space, seed)
        else:
            searcher = GPEISearcher(space, seed, **searcher_kwargs)
    sign = 1.0 if direction == "minimize" else -1.0
    log = Path(log_path) if log_path is not None else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
    from dlhelpers.utils import progress

    records: list[TrialRecord] = []
    steps = progress(range(n_trials), desc=searcher.name) if show_progress else range(n_trials)
    for number in steps:
        try:
            params = searcher.ask()
        except StopIteration:
            break
        intermediate: dict[int, float] = {}
        pruned = False
        start = time.perf_counter()
        if pruner is None:
            out = objective(dict(params))
        else:
            try:
                out = objective(dict(params), _reporter(pruner, records, intermediate, direction))
            except TrialPruned:
                pruned, out = True, (intermediate[max(intermediate)] if intermediate else math.nan)
        seconds = time.perf_counter() - start
        value, metrics = (out if isinstance(out, tuple) else (out, {}))
        value = float(value)
        state = "pruned" if pruned else "complete" if math.isfinite(value) else "failed"
        searcher.tell(params, sign * value)
        rec = TrialRecord(number, dict(params), value, state, seconds, seed, searcher.name,
                          {k: float(v) for k, v in dict(metrics).items()}, dict(intermediate))
        records.append(rec)
        if log is not None:
            with log.open("a") as f:
                f.write(json.dumps(asdict(rec)) + "\n")
    return records


# --------------------------------------------------------------------------- benchmark functions
BRANIN_MIN = 0.397887357729739
BRANIN_SPACE = Space({"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)})
HARTMANN6_MIN = -3.322368011391339
HARTMANN6_SPACE = Space({f"x{i}": Float(0.0, 1.0) for i in range(1, 7)})
_H6_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_H6_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
_H6_ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(params: Mapping[str, float]) -> float:
    """Branin-Hoo on ``x1 in [-5, 10]``, ``x2 in [0, 15]``:
    ``(x2 - 5.1 x1^2 / (4 pi^2) + 5 x1 / pi - 6)^2 + 10 (1 - 1/(8 pi)) cos x1 + 10``; three global minima, value
    ``BRANIN_MIN = 0.397887...`` (e.g. at ``(pi, 2.275)``)."""
    x1, x2 = float(params["x1"]), float(params["x2"])
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def hartmann6(params: Mapping[str, float]) -> float:
    """Hartmann-6 on ``[0, 1]^6``: ``-sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2)`` (``P`` scaled by 1e-4);
    global minimum ``HARTMANN6_MIN = -3.32237``."""
    x = [float(params[f"x{j}"]) for j in range(1, 7)]
    return -sum(a * math.exp(-sum(A[j] * (x[j] - P[j] * 1e-4) ** 2 for j in range(6)))
                for a, A, P in zip(_H6_ALPHA, _H6_A, _H6_P))


# --------------------------------------------------------------------------- a real model: an MLP on digits
DIGITS_SPACE = Space({
    "lr": Float(1e-4, 3e-1, log=True),
    "weight_decay": Float(1e-6, 1e-1, log=True),
    "width": Int(8, 256, log=True),
    "dropout": Float(0.0, 0.6),
    "batch_size": Categorical([32, 64, 128, 256]),
})
#: Reasonable "untuned" defaults (Adam's usual lr, no regularization) for the baseline comparison.
DIGITS_DEFAULTS = {"lr": 1e-3, "weight_decay": 1e-6, "width": 32, "dropout": 0.0, "batch_size": 64}


class DigitsTask:
    """scikit-learn's 8x8 digits split once (seeded) into train / validation / test (60 / 20 / 20 %), and an MLP
    ``64 -> width -> width -> 10`` (ReLU, dropout) trained with AdamW for ``epochs`` epochs.

    The validation set is what a search optimizes; the test set is touched once, for the final model.
    ``objective(params)`` returns ``(validation accuracy, metrics)`` (so ``search(..., direction="maximize")``).
    """

    def __init__(self, seed: int = 0, epochs: int = 5) -> None:
        from dlhelpers.data import load_digits, train_val_split

        X, y = load_digits()
        X = X.flatten(1)
        X_rest, y_rest, self.X_test, self.y_test = train_val_split(X, y, 0.2, seed=seed)
        self.X_train, self.y_train, self.X_val, self.y_val = train_val_split(X_rest, y_rest, 0.25, seed=seed + 1)
        self.seed, self.epochs = seed, epochs

    def build(self, params: Mapping[str, Any]) -> torch.nn.Module:
        from torch import nn

        w, p = int(params["width"]), float(params["dropout"])
        return nn.Sequential(nn.Linear(64, w), nn.ReLU(), nn.Dropout(p), nn.Linear(w, w), nn.ReLU(), nn.Dropout(p),
                             nn.Linear(w, 10))

    def train(self, params: Mapping[str, Any], *, epochs: int | None = None, seed: int | None = None,
              on_epoch: Callable[[int, float], None] | None = None) -> tuple[torch.nn.Module, dict[str, list]]:
        """Train a fresh model; ``on_epoch(epoch, val_acc)`` after every epoch (pruning hooks raise from it)."""
        from dlhelpers.data import make_loader
        from dlhelpers.train import Callback, fit

        torch.manual_seed(self.seed if seed is None else seed)
        model = self.build(params)
        opt = torch.optim.AdamW(model.parameters(), lr=float(params["lr"]),
                                weight_decay=float(params["weight_decay"]))
        train = make_loader(self.X_train, self.y_train, int(params["batch_size"]), shuffle=True, seed=self.seed)
        val = make_loader(self.X_val, self.y_val, 512, shuffle=False)

        class _Report(Callback):
            def on_epoch_end(self, state) -> None:
                if on_epoch is not None:
                    on_epoch(state.epoch, state.logs["val_acc"])

        history = fit(model, train, val, epochs=epochs or self.epochs, optimizer=opt, callbacks=[_Report()],
                      device=torch.device("cpu"), show_progress=False)
        return model, history

    def objective(self, params: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        _, h = self.train(params)
        return h["val_acc"][-1], {"val_loss": h["val_loss"][-1], "train_acc": h["train_acc"][-1]}

    def test_accuracy(self, model: torch.nn.Module) -> float:
        from dlhelpers.data import make_loader
        from dlhelpers.train import evaluate

        return evaluate(model, make_loader(self.X_test, self.y_test, 512, shuffle=False),
                        device=torch.device("cpu"))["acc"]


def run_digits_study(n_trials: int = 10, seed: int = 0, searcher: str = "random", *, epochs: int = 5
                     ) -> list[TrialRecord]:
    """A small real study: ``search`` over ``DIGITS_SPACE`` maximizing the validation accuracy of
    :class:`DigitsTask` (a fraction of a second per trial on one CPU thread). Deterministic for a fixed seed and
    thread count. ``trials_dataframe(run_digits_study(10))`` is the DataFrame chapter 10 plots."""
    task = DigitsTask(seed=seed, epochs=epochs)
    return search(task.objective, DIGITS_SPACE, searcher, n_trials=n_trials, seed=seed, direction="maximize",
                  show_progress=False)


# --------------------------------------------------------------------------- the same space and records in Optuna
def optuna_distributions(space: Space) -> dict[str, Any]:
    """``{name: optuna distribution}`` for a :class:`Space` (``Float`` -> ``FloatDistribution``, ``Int`` ->
    ``IntDistribution``, ``Categorical`` -> ``CategoricalDistribution``; ``log`` carried over)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not isinstance(space, Space):
        raise TypeError(f"optuna_distributions: space must be a Space, got {type(space).__name__}")
    out: dict[str, Any] = {}
    for name, d in space.dims.items():
        if isinstance(d, Categorical):
            out[name] = CategoricalDistribution(list(d.choices))
        elif isinstance(d, Int):
            out[name] = IntDistribution(d.low, d.high, log=d.log)
        else:
            out[name] = FloatDistribution(d.low, d.high, log=d.log)
    return out


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """The params of an Optuna ``trial`` drawn from our ``space``: one ``trial.suggest_float`` /
    ``suggest_int`` / ``suggest_categorical`` per dimension, so one ``Space`` drives both engines."""
    if not isinstance(space, Space):
        raise TypeError(f"suggest: space must be a Space, got {type(space).__name__}")
    out: dict[str, Any] = {}
    for name, d in space.dims.items():
        if isinstance(d, Categorical):
            out[name] = trial.suggest_categorical(name, list(d.choices))
        elif isinstance(d, Int):
            out[name] = trial.suggest_int(name, d.low, d.high, log=d.log)
        else:
            out[name] = trial.suggest_float(name, d.low, d.high, log=d.log)
    return out


_OPTUNA_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


def records_from_study(study: Any, *, seed: int = 0, searcher: str = "") -> list[TrialRecord]:
    """An Optuna study's finished trials as :class:`TrialRecord` s (value NaN where Optuna has none; numeric user
    attributes become ``metrics``; duration in ``seconds``), so one log format and one set of plots serve both."""
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in _OPTUNA_STATES:
            continue  # running / waiting
        metrics = {k: float(v) for k, v in t.user_attrs.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        out.append(TrialRecord(t.number, dict(t.params), math.nan if t.value is None else float(t.value),
                               _OPTUNA_STATES[t.state.name],
                               math.nan if t.duration is None else t.duration.total_seconds(), seed, searcher,
                               metrics, {int(k): float(v) for k, v in t.intermediate_values.items()}))
    return out


def records_to_study(records: Sequence[TrialRecord], space: Space, *, direction: str = "minimize",
                     study_name: str | None = None) -> Any:
    """A new in-memory Optuna study holding ``records`` as finished trials (``optuna.trial.create_trial``), so
    Optuna's visualizations can draw trials found by our searchers. Failed trials are added without a value."""
    import optuna
    from optuna.trial import TrialState

    _check_direction(direction, "records_to_study")
    dists = optuna_distributions(space)
    study = optuna.create_study(direction=direction, study_name=study_name)
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    for r in records:
        state = states[r.state]
        finite = state != TrialState.FAIL and math.isfinite(r.value)
        study.add_trial(optuna.trial.create_trial(
            state=state, value=r.value if finite and state == TrialState.COMPLETE else None, params=dict(r.params),
            distributions={k: dists[k] for k in r.params}, user_attrs={"searcher": r.searcher, **r.metrics},
            intermediate_values=dict(r.intermediate)))
    return study


# --------------------------------------------------------------------------- a real model: an MLP on MNIST-1D
MNIST1D_SPACE = Space({
    "lr": Float(1e-4, 1e-1, log=True),
    "weight_decay": Float(1e-6, 1e-1, log=True),
    "width": Int(16, 256, log=True),
    "dropout": Float(0.0, 0.5),
    "batch_size": Categorical([32, 64, 128, 256]),
})
#: The "untuned" baseline: ``torch.optim.AdamW``'s defaults (lr 1e-3, weight decay 1e-2), width 64, no dropout.
MNIST1D_DEFAULTS = {"lr": 1e-3, "weight_decay": 1e-2, "width": 64, "dropout": 0.0, "batch_size": 64}


class MNIST1DTask(DigitsTask):
    """MNIST-1D (Greydanus & Kobak 2020; generated locally, 4,000 training and 1,000 test signals of length 40):
    the 4,000 split once (seeded) into train / validation (80 / 20 %), the 1,000 kept as the test set (touched
    once, for the final model). The model is an MLP ``40 -> width -> width -> 10`` (ReLU, dropout) trained with
    AdamW for ``epochs`` epochs; ``train``, ``test_accuracy`` as in :class:`DigitsTask`.

    ``objective(params, report=None)`` returns ``(validation accuracy, metrics)``; with ``report`` (the second
    argument ``search(..., pruner=...)`` passes, or a wrapper around Optuna's ``trial.report``) it reports the
    validation accuracy after every epoch (step = epoch index, from 0), and a pruner may stop it there.
    Deterministic for a fixed ``seed`` and thread count: the same params give the same value in any engine.
    """

    in_features = 40

    def __init__(self, seed: int = 0, epochs: int = 3, *, val_fraction: float = 0.2) -> None:
        from dlhelpers.data import load_mnist1d, train_val_split

        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"MNIST1DTask: epochs must be a positive int, got {epochs!r}")
        d = load_mnist1d()
        self.X_train, self.y_train, self.X_val, self.y_val = train_val_split(d["x"].flatten(1), d["y"], val_fraction,
                                                                             seed=seed)
        self.X_test, self.y_test = d["x_test"].flatten(1), d["y_test"]
        self.seed, self.epochs = seed, epochs

    def build(self, params: Mapping[str, Any]) -> torch.nn.Module:
        from torch import nn

        w, p = int(params["width"]), float(params["dropout"])
        return nn.Sequential(nn.Linear(self.in_features, w), nn.ReLU(), nn.Dropout(p), nn.Linear(w, w), nn.ReLU(),
                             nn.Dropout(p), nn.Linear(w, 10))

    def objective(self, params: Mapping[str, Any], report: Callable[[int, float], None] | None = None
                  ) -> tuple[float, dict[str, float]]:
        _, h = self.train(params, on_epoch=report)
        return h["val_acc"][-1], {"val_loss": h["val_loss"][-1], "train_acc": h["train_acc"][-1],
                                  "epochs": float(len(h["val_acc"]))}

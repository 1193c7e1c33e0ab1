"""Experiments: track training, compare runs honestly, and look inside trained models.

==============================  ===============================================  ==================================
what                            from scratch here                                independent reference (tested)
==============================  ===============================================  ==================================
global gradient norm            :func:`grad_norm`                                ``torch.nn.utils.get_total_norm``
per-layer norms, update ratio   :func:`layer_grad_norms`, :func:`update_ratios`  direct ``Tensor.norm`` per tensor
training tracker                :class:`Tracker` (a ``dlhelpers.train`` callback) JSON lines + TensorBoard read back
Student-t CDF / quantile        :func:`t_cdf`, :func:`t_ppf`                     ``scipy.stats.t.cdf / .ppf``
confidence interval of a mean   :func:`mean_ci`                                  ``scipy.stats.t.interval``
paired t-test                   :func:`paired_ttest`                             ``scipy.stats.ttest_rel``
1-D / 2-D loss landscape        :func:`interpolate_loss`, :func:`loss_surface`   evaluating the model at each point
filter-normalized direction     :func:`filter_normalized_direction`              per-filter norms (Li et al. 2018)
sharpness (top Hessian eigval)  :func:`hessian_top_eigenvalue`                   ``eigvalsh`` of the dense Hessian
saliency map                    :func:`saliency`                                 ``torch.func.jacrev``
Grad-CAM                        :func:`grad_cam`                                 CAM identity for GAP + linear heads
==============================  ===============================================  ==================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlhelpers._checks import check_choice, check_number, check_tensor
from dlhelpers.clip import _norm_type, total_norm
from dlhelpers.train import Callback, TrainState

__all__ = ["grad_norm", "layer_grad_norms", "update_ratios", "ActivationStats", "Tracker", "read_jsonl",
           "read_tensorboard_scalars", "t_cdf", "t_ppf", "mean_ci", "paired_ttest", "summarize_runs",
           "plot_runs", "interpolate_loss", "filter_normalized_direction", "loss_surface",
           "hessian_top_eigenvalue", "saliency", "grad_cam"]

LossFn = Callable[[Tensor, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------------------
# gradient and update statistics
# ----------------------------------------------------------------------------------------------------------

def grad_norm(parameters: Iterable[Tensor] | Tensor, norm_type: float = 2.0) -> Tensor:
    """Global norm of all gradients: ``(sum_p ||g_p||_q^q)^(1/q)``; ``q = inf`` gives ``max_p max|g_p|``.

    Parameters without a gradient are skipped; no gradient at all gives ``0``. Torch counterpart:
    ``torch.nn.utils.get_total_norm([p.grad for p in parameters], norm_type)`` (also the value that
    ``clip_grad_norm_`` returns). The arithmetic is :func:`dlhelpers.clip.total_norm` over the gradients.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    q = _norm_type(norm_type, "grad_norm")
    return total_norm([p.grad.detach() for p in parameters if p.grad is not None], q)


def layer_grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of each named parameter's gradient: ``{name: ||dL/dw||_2}`` (parameters with a gradient)."""
    return {name: p.grad.detach().norm().item() for name, p in model.named_parameters() if p.grad is not None}


def update_ratios(before: Mapping[str, Tensor], model: nn.Module) -> dict[str, float]:
    """Update-to-weight ratio ``||w_after - w_before|| / ||w_before||`` per named parameter.

    A healthy rule of thumb (Karpathy) is about ``1e-3`` per step: much smaller means the layer barely
    learns, much larger means the step is too big for the weights. ``before`` maps names to copies taken
    before ``optimizer.step()``.
    """
    out = {}
    for name, p in model.named_parameters():
        if name in before:
            w0 = before[name]
            out[name] = ((p.detach() - w0).norm() / w0.norm().clamp_min(1e-12)).item()
    return out


# ----------------------------------------------------------------------------------------------------------
# activation statistics through forward hooks, and the tracker
# ----------------------------------------------------------------------------------------------------------

DEFAULT_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid)


class ActivationStats:
    """Forward hooks that record, for each watched module's output, its mean, std, the fraction of
    exact zeros and the fraction of *dead units* (units, i.e. features or channels, that are zero for every
    sample of the batch). ``enabled`` switches recording off without removing the hooks.

    ``modules`` defaults to every activation module (ReLU, GELU, Tanh, ...) in ``model``.
    """

    def __init__(self, model: nn.Module, modules: Mapping[str, nn.Module] | None = None) -> None:
        if modules is None:
            modules = {n: m for n, m in model.named_modules() if isinstance(m, DEFAULT_ACTIVATIONS)}
        self.latest: dict[str, float] = {}
        self.enabled = True
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]
        self.names = list(modules)

    def _hook(self, name: str) -> Callable:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if not self.enabled or not isinstance(output, Tensor):
                return
            a = output.detach()
            units = a.transpose(0, 1).reshape(a.shape[1], -1) if a.dim() > 1 else a[None]
            self.latest[f"act_mean/{name}"] = a.mean().item()
            self.latest[f"act_std/{name}"] = a.std().item() if a.numel() > 1 else 0.0
            self.latest[f"act_zero/{name}"] = (a == 0).float().mean().item()
            self.latest[f"act_dead/{name}"] = (units == 0).all(dim=1).float().mean().item()
        return hook

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []


class Tracker(Callback):
    """Record a training run of :func:`dlhelpers.train.fit` step by step and epoch by epoch.

    Every ``every`` steps it logs the batch ``loss`` and accuracy ``acc`` (from the logits the step was
    computed on, i.e. before the optimizer step), ``lr``, the global gradient norm ``grad_norm``, per-parameter
    gradient norms ``grad_norm/<name>``, update-to-weight ratios ``update_ratio/<name>`` and, with
    ``activations=True``, the :class:`ActivationStats` of every activation module. Each epoch it logs what
    ``fit`` put in ``state.logs`` (``train_loss``, ``val_acc``, ``lr`` ...).

    Records are kept in ``self.steps`` / ``self.epochs`` (lists of dicts) and, when ``log_dir`` is given,
    written to ``log_dir/steps.jsonl`` and ``log_dir/epochs.jsonl`` (one JSON object per line) and, with
    ``tensorboard=True``, to TensorBoard event files through ``torch.utils.tensorboard.SummaryWriter``
    (tags ``step/<key>`` and ``epoch/<key>``; view with ``tensorboard --logdir <log_dir>``).
    """

    def __init__(self, log_dir: str | Path | None = None, *, every: int = 1, activations: bool = True,
                 per_layer: bool = True, tensorboard: bool = True) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Tracker: every must be a positive int, got {every!r}")
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.every, self.activations, self.per_layer = every, activations, per_layer
        self.tensorboard = tensorboard and self.log_dir is not None
        self.steps: list[dict[str, float]] = []
        self.epochs: list[dict[str, float]] = []
        self._stats: ActivationStats | None = None
        self._before: dict[str, Tensor] = {}
        self._pending: dict[str, float] = {}
        self._files: dict[str, Any] = {}
        self.writer = None

    # -- callback hooks --------------------------------------------------------------------------------
    def on_train_begin(self, state: TrainState) -> None:
        if self.activations:
            self._stats = ActivationStats(state.model)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._files = {k: open(self.log_dir / f"{k}.jsonl", "w") for k in ("steps", "epochs")}
            if self.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.log_dir))
        self._sync_hooks(state.step)

    def _recording(self, step: int) -> bool:
        return step % self.every == 0

    def _sync_hooks(self, step: int) -> None:
        if self._stats is not None:
            self._stats.enabled = self._recording(step)

    def on_after_backward(self, state: TrainState) -> None:
        if not self._recording(state.step):
            return
        rec = {"grad_norm": grad_norm(state.model.parameters()).item()}
        if self.per_layer:
            rec.update({f"grad_norm/{k}": v for k, v in layer_grad_norms(state.model).items()})
            self._before = {n: p.detach().clone() for n, p in state.model.named_parameters()}
        self._pending = rec

    def on_batch_end(self, state: TrainState) -> None:
        step = state.step - 1  # fit increments the counter before on_batch_end
        if self._recording(step):
            rec = {"step": step, "epoch": state.epoch, "loss": state.batch_loss, "acc": state.batch_acc,
                   "lr": state.optimizer.param_groups[0]["lr"], **self._pending}
            if self.per_layer:
                rec.update({f"update_ratio/{k}": v for k, v in update_ratios(self._before, state.model).items()})
            if self._stats is not None:
                rec.update(self._stats.latest)
            self._write("steps", rec, step)
        self._sync_hooks(state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        rec = {"epoch": state.epoch, **{k: float(v) for k, v in state.logs.items()}}
        self._write("epochs", rec, state.epoch)

    def on_train_end(self, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks and flush/close the log files and the TensorBoard writer."""
        if self._stats is not None:
            self._stats.remove()
            self._stats = None
        for f in self._files.values():
            f.close()
        self._files = {}
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- output ----------------------------------------------------------------------------------------
    def _write(self, kind: str, rec: dict[str, float], x: int) -> None:
        (self.steps if kind == "steps" else self.epochs).append(rec)
        if kind in self._files:
            self._files[kind].write(json.dumps(rec) + "\n")
        if self.writer is not None:
            prefix = "step" if kind == "steps" else "epoch"
            for key, value in rec.items():
                if key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{prefix}/{key}", value, x)

    def frame(self, kind: str = "steps") -> Any:
        """The records as a ``pandas.DataFrame`` (``kind`` is ``"steps"`` or ``"epochs"``)."""
        import pandas as pd

        check_choice(kind, ("steps", "epochs"), "kind", "Tracker.frame")
        return pd.DataFrame(self.steps if kind == "steps" else self.epochs)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines log (one JSON object per line, as :class:`Tracker` writes)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"read_jsonl: no such log file {path}")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_tensorboard_scalars(log_dir: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar in the TensorBoard event files under ``log_dir``: ``{tag: (steps, values)}``.

    Uses ``tensorboard``'s ``EventAccumulator`` (what the TensorBoard UI reads); values are float32.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not Path(log_dir).is_dir():
        raise FileNotFoundError(f"read_tensorboard_scalars: no such log directory {log_dir}")
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events])
    return out


# ----------------------------------------------------------------------------------------------------------
# statistics over seeds: Student-t distribution, confidence intervals, paired t-test
# ----------------------------------------------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz, Numerical Recipes)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _check_df(df: object, fn: str) -> float:
    v = check_number(df, "df", fn)
    if v <= 0:
        raise ValueError(f"{fn}: df (degrees of freedom) must be > 0, got {df!r}")
    return v


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t with ``df`` degrees of freedom:
    ``P(T <= t) = 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2`` for ``t >= 0`` (symmetric for ``t < 0``), with
    ``I`` the regularized incomplete beta function (a continued fraction).
    Counterpart: ``scipy.stats.t.cdf(t, df)``."""
    t, df = check_number(t, "t", "t_cdf"), _check_df(df, "t_cdf")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if t * t < df:  # near the centre: P = 1/2 + sign(t) I_{t^2/(df+t^2)}(1/2, df/2) / 2 (no cancellation)
        return 0.5 + math.copysign(0.5 * _betainc(0.5, df / 2.0, t * t / (df + t * t)), t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t (inverse of :func:`t_cdf`, by bisection to 1e-12). ``scipy.stats.t.ppf``."""
    q, df = check_number(q, "q", "t_ppf"), _check_df(df, "t_ppf")
    if not 0.0 < q < 1.0:
        raise ValueError(f"t_ppf: q must be in (0, 1), got {q!r}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _as_sample(values: Sequence[float] | Tensor, name: str, fn: str, minimum: int = 2) -> list[float]:
    if isinstance(values, Tensor):
        values = values.detach().flatten().tolist()
    try:
        out = [float(v) for v in values]
    except TypeError as exc:
        raise TypeError(f"{fn}: {name} must be a sequence of numbers, got {type(values).__name__}") from exc
    if len(out) < minimum:
        raise ValueError(f"{fn}: {name} needs at least {minimum} values, got {len(out)}")
    return out


def mean_ci(values: Sequence[float] | Tensor, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval: ``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)``.

    Returns ``(mean, low, high)``. Counterpart: ``scipy.stats.t.interval(c, n-1, loc=mean, scale=sem)``.
    """
    x = _as_sample(values, "values", "mean_ci")
    c = check_number(confidence, "confidence", "mean_ci")
    if not 0.0 < c < 1.0:
        raise ValueError(f"mean_ci: confidence must be in (0, 1), got {confidence!r}")
    n = len(x)
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    half = t_ppf((1.0 + c) / 2.0, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_ttest(a: Sequence[float] | Tensor, b: Sequence[float] | Tensor,
                 alternative: str = "two-sided") -> tuple[float, float]:
    """Paired t-test of ``a`` vs ``b`` (e.g. two settings run on the same seeds).

    ``d = a - b``, ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom; the p-value is
    ``2 P(T >= |t|)`` (``"two-sided"``), ``P(T >= t)`` (``"greater"``) or ``P(T <= t)`` (``"less"``).
    Returns ``(t, p)``. Counterpart: ``scipy.stats.ttest_rel(a, b, alternative=...)``. Identical
    differences give ``t = ±inf`` (``p = 0``) or, for all-zero differences, ``nan``.
    """
    x, y = _as_sample(a, "a", "paired_ttest"), _as_sample(b, "b", "paired_ttest")
    if len(x) != len(y):
        raise ValueError(f"paired_ttest: a and b must have the same length (paired runs), got {len(x)} and {len(y)}")
    check_choice(alternative, ("two-sided", "less", "greater"), "alternative", "paired_ttest")
    d = [u - v for u, v in zip(x, y)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    if sd == 0.0:
        t = math.nan if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    if math.isnan(t):
        return t, math.nan
    if alternative == "two-sided":
        p = 2.0 * (1.0 - t_cdf(abs(t), n - 1))
    elif alternative == "greater":
        p = 1.0 - t_cdf(t, n - 1)
    else:
        p = t_cdf(t, n - 1)
    return t, min(1.0, p)


def summarize_runs(df: Any, metric: str, by: str = "setting", confidence: float = 0.95) -> Any:
    """One row per ``by`` group of a tidy run table: ``n, mean, sd, ci_low, ci_high`` of ``metric``."""
    import pandas as pd

    for col in (metric, by):
        if col not in df.columns:
            raise ValueError(f"summarize_runs: column {col!r} not in the table; columns are {list(df.columns)}")
    rows = []
    for key, group in df.groupby(by, sort=False):
        values = group[metric].tolist()
        mean, lo, hi = mean_ci(values, confidence)
        sd = float(pd.Series(values).std())
        rows.append({by: key, "n": len(values), "mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows).set_index(by)


def plot_runs(df: Any, y: str, *, x: str = "epoch", hue: str = "setting", ax: Any = None,
              band: str = "sd", title: str | None = None) -> Any:
    """Mean curve of ``y`` against ``x`` per ``hue`` group with a shaded band (``"sd"``: ± one standard
    deviation over the other rows, usually seeds; ``"minmax"``: the range). Returns the figure."""
    import matplotlib.pyplot as plt

    check_choice(band, ("sd", "minmax"), "band", "plot_runs")
    for col in (x, y, hue):
        if col not in df.columns:
            raise ValueError(f"plot_runs: column {col!r} not in the table; columns are {list(df.columns)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for name, group in df.groupby(hue, sort=False):
        stats = group.groupby(x)[y].agg(["mean", "std", "min", "max"])
        line, = ax.plot(stats.index, stats["mean"], label=str(name))
        lo, hi = ((stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0))
                  if band == "sd" else (stats["min"], stats["max"]))
        ax.fill_between(stats.index, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------------------------------------
# loss landscapes and sharpness
# ----------------------------------------------------------------------------------------------------------

def _params(model: nn.Module) -> list[Tensor]:
    return [p for p in model.parameters()]


@torch.no_grad()
def _loss_at(model: nn.Module, point: Sequence[Tensor], loss_fn: LossFn, X: Tensor, y: Tensor) -> float:
    for p, v in zip(_params(model), point):
        p.copy_(v)
    was_training = model.training
    model.eval()
    loss = loss_fn(model(X), y).item()
    model.train(was_training)
    return loss


def interpolate_loss(model: nn.Module, start: Sequence[Tensor], end: Sequence[Tensor], loss_fn: LossFn,
                     X: Tensor, y: Tensor, alphas: Sequence[float] | Tensor) -> list[float]:
    """Loss along the straight line ``theta(a) = (1 - a) start + a end`` (Goodfellow et al. 2015).

    ``start``/``end`` are lists of tensors shaped like ``model.parameters()`` (e.g. the initial and the
    trained weights). The model is evaluated in eval mode without gradients; its weights are restored.
    """
    start = [t.detach().clone() for t in start]  # copies: ``end`` may be the model's own parameters
    end = [t.detach().clone() for t in end]
    params = _params(model)
    if not (len(start) == len(end) == len(params)):
        raise ValueError(f"interpolate_loss: start, end and the model must have the same number of tensors, "
                         f"got {len(start)}, {len(end)} and {len(params)}")
    saved = [p.detach().clone() for p in params]
    try:
        return [_loss_at(model, [(1 - float(a)) * s + float(a) * e for s, e in zip(start, end)], loss_fn, X, y)
                for a in alphas]
    finally:
        _loss_at_restore(params, saved)


@torch.no_grad()
def _loss_at_restore(params: list[Tensor], saved: list[Tensor]) -> None:
    for p, v in zip(params, saved):
        p.copy_(v)


def filter_normalized_direction(model: nn.Module, *, generator: torch.Generator | None = None,
                                ignore_1d: bool = True) -> list[Tensor]:
    """A random direction ``d`` in weight space, filter-normalized (Li et al., "Visualizing the Loss
    Landscape of Neural Nets", 2018): ``d ~ N(0, I)`` and for every filter ``i`` (a slice along dim 0 of a
    weight with >= 2 dims) ``d_i <- d_i / ||d_i|| * ||theta_i||``. With ``ignore_1d`` the biases and
    norm-layer parameters get ``d = 0`` (the paper's choice); otherwise they are normalized as one filter.

    The rescaling removes the scale invariance of ReLU nets: a 2-D slice ``theta + a d1 + b d2`` then
    compares like with like across networks and optimizers.
    """
    out = []
    for p in _params(model):
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        w = p.detach()
        if p.dim() <= 1:
            d = torch.zeros_like(w) if ignore_1d else d * (w.norm() / d.norm().clamp_min(1e-12))
        else:
            dims = tuple(range(1, p.dim()))
            norm = torch.linalg.vector_norm
            d = d * (norm(w, dim=dims, keepdim=True) / norm(d, dim=dims, keepdim=True).clamp_min(1e-12))
        out.append(d)
    return out


def loss_surface(model: nn.Module, d1: Sequence[Tensor], d2: Sequence[Tensor], loss_fn: LossFn, X: Tensor,
                 y: Tensor, alphas: Sequence[float] | Tensor, betas: Sequence[float] | Tensor) -> Tensor:
    """Loss on the 2-D slice ``theta* + a d1 + b d2`` around the model's current weights ``theta*``.

    Returns ``Z`` of shape ``[len(alphas), len(betas)]`` (``Z[i, j]`` at ``alphas[i], betas[j]``); the
    weights are restored afterwards. Use :func:`filter_normalized_direction` for ``d1``, ``d2``.
    """
    params = _params(model)
    d1, d2 = [t.detach().clone() for t in d1], [t.detach().clone() for t in d2]
    if not (len(d1) == len(d2) == len(params)):
        raise ValueError(f"loss_surface: d1, d2 and the model must have the same number of tensors, "
                         f"got {len(d1)}, {len(d2)} and {len(params)}")
    centre = [p.detach().clone() for p in params]
    Z = torch.empty(len(alphas), len(betas), dtype=torch.float64)
    try:
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                point = [c + float(a) * u + float(b) * v for c, u, v in zip(centre, d1, d2)]
                Z[i, j] = _loss_at(model, point, loss_fn, X, y)
    finally:
        _loss_at_restore(params, centre)
    return Z


def hessian_top_eigenvalue(model: nn.Module, loss_fn: LossFn, X: Tensor, y: Tensor, *, iters: int = 100,
                           tol: float = 1e-6, generator: torch.Generator | None = None) -> float:
    """Sharpness: the largest-magnitude eigenvalue of the Hessian of the loss w.r.t. all parameters, by
    power iteration on Hessian-vector products ``Hv = d/dtheta (grad L . v)`` (double backprop; never
    forms ``H``). Stops when the Rayleigh quotient changes by less than ``tol`` (relative).

    Independent reference: ``torch.linalg.eigvalsh(torch.autograd.functional.hessian(...))`` for small
    models. Use it at a minimum (where the top eigenvalue is positive): ``lambda_max`` is the curvature
    along the sharpest direction; gradient descent with step ``lr`` is stable only if ``lambda_max < 2/lr``.
    """
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"hessian_top_eigenvalue: iters must be a positive int, got {iters!r}")
    params = [p for p in _params(model) if p.requires_grad]
    was_training = model.training
    model.eval()
    try:
        loss = loss_fn(model(X), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        v = [torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device) for p in params]
        norm = torch.sqrt(sum((u * u).sum() for u in v))
        v = [u / norm for u in v]
        eig = 0.0
        for _ in range(iters):
            hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
            new = sum((a * b).sum() for a, b in zip(hv, v)).item()  # Rayleigh quotient v^T H v
            norm = torch.sqrt(sum((h * h).sum() for h in hv))
            if norm == 0:
                return 0.0
            v = [h / norm for h in hv]
            if abs(new - eig) <= tol * max(abs(new), 1e-12):
                eig = new
                break
            eig = new
        return eig
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------------------
# inside the model: saliency and Grad-CAM
# ----------------------------------------------------------------------------------------------------------

def _targets(logits: Tensor, target: int | Sequence[int] | Tensor | None, fn: str) -> Tensor:
    n, k = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    t = torch.as_tensor(target, dtype=torch.long, device=logits.device).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n or (t < 0).any() or (t >= k).any():
        raise ValueError(f"{fn}: target must be a class in [0, {k}) or one per sample ({n}), got {target!r}")
    return t


def saliency(model: nn.Module, x: Tensor, target: int | Sequence[int] | Tensor | None = None) -> Tensor:
    """Vanilla gradient saliency (Simonyan et al. 2014): ``max_c |d y_target / d x_c|`` over input channels.

    ``x`` is ``[N, C, ...]``; returns ``[N, ...]``. ``target`` defaults to the predicted class. The model
    runs in eval mode. Counterpart: the same derivative from ``torch.func.jacrev``.
    """
    check_tensor(x, "x", "saliency")
    if x.dim() < 2:
        raise ValueError(f"saliency: expected x of shape [N, C, ...], got {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        logits = model(x)
        t = _targets(logits, target, "saliency")
        (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), x)
    finally:
        model.train(was_training)
    return grad.abs().amax(dim=1)


def grad_cam(model: nn.Module, layer: nn.Module, x: Tensor, target: int | Sequence[int] | Tensor | None = None,
             *, size: Sequence[int] | None = None) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017) of ``layer``'s output ``A`` (``[N, K, *spatial]``):
    ``alpha_k = mean_spatial(d y_c / d A_k)``, ``cam = ReLU(sum_k alpha_k A_k)``.

    Returns ``[N, *spatial]`` (or resized to ``size`` with (bi)linear interpolation). ``target`` defaults
    to the predicted class. For a network that ends in global average pooling + a linear layer, this is
    CAM (Zhou et al. 2016) divided by the number of spatial positions: ``ReLU(sum_k w_ck A_k) / (H W)``.
    """
    check_tensor(x, "x", "grad_cam")
    if not isinstance(layer, nn.Module):
        raise TypeError(f"grad_cam: layer must be an nn.Module inside the model, got {type(layer).__name__}")
    captured: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, out: Tensor) -> Tensor:
        if isinstance(out, Tensor) and not out.requires_grad:  # e.g. no parameters upstream: make A a leaf
            out = out.detach().requires_grad_(True)
        captured.append(out)
        return out

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise ValueError("grad_cam: layer was not called in the forward pass; pass a module of this model")
    A = captured[-1]
    if A.dim() < 3:
        raise ValueError(f"grad_cam: layer output must be [N, K, *spatial], got {tuple(A.shape)}")
    t = _targets(logits, target, "grad_cam")
    (dA,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), A)
    alpha = dA.mean(dim=tuple(range(2, A.dim())), keepdim=True)
    cam = F.relu((alpha * A).sum(dim=1)).detach()
    if size is not None:
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[cam.dim() - 1]
        cam = F.interpolate(cam[:, None], size=tuple(size), mode=mode, align_corners=False)[:, 0]
    return cam

"""Regularization from scratch: dropout (element-wise and channel-wise), L1/L2 penalties, (decoupled) weight
decay and parameter groups without decay, early stopping, label-smoothing cross-entropy, the expected
calibration error and temperature scaling.

==============================================  =============================================
here                                            PyTorch counterpart
==============================================  =============================================
``dropout`` / ``Dropout``                       ``F.dropout`` / ``nn.Dropout``
``dropout_with_mask``                           ``F.dropout`` given its Bernoulli mask
``dropout2d`` / ``Dropout2d``                   ``F.dropout2d`` / ``nn.Dropout2d`` (channel dropout)
``l1_penalty`` / ``l2_penalty``                 (added to the loss by hand)
``adam_step(..., decoupled=False)``             ``torch.optim.Adam(weight_decay=...)``
``adam_step(..., decoupled=True)``              ``torch.optim.AdamW(weight_decay=...)``
``param_groups_no_decay``                       (the usual recipe: no decay on biases and norm weights)
``EarlyStopping``                               (a ``dlhelpers.train.Callback``)
``cross_entropy`` / ``CrossEntropyLoss``        ``F.cross_entropy`` / ``nn.CrossEntropyLoss``
``expected_calibration_error``                  (no torch counterpart; checked by a direct loop)
``fit_temperature``                             (no torch counterpart; checked against scipy.optimize)
==============================================  =============================================
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from dlhelpers._checks import check_choice, check_tensor
from dlhelpers.optim import adam_step as optim_adam_step
from dlhelpers.train import Callback, TrainState

__all__ = [
    "dropout", "dropout_with_mask", "Dropout", "dropout2d", "Dropout2d", "l1_penalty", "l2_penalty",
    "param_groups_no_decay", "adam_step", "adamw_step", "EarlyStopping", "cross_entropy", "CrossEntropyLoss",
    "calibration_bins", "expected_calibration_error", "temperature_nll", "fit_temperature",
]


# --------------------------------------------------------------------------- dropout
def _check_p(p: float, fn: str) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"{fn}: p must be a float in [0, 1], got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: dropout probability p must be in [0, 1], got {p}")
    return float(p)


def dropout_with_mask(input: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with a given keep-mask: ``y = input * (mask / (1 - p))``.

    ``mask`` holds 1 where an element is kept and 0 where it is dropped (same shape as ``input`` or
    broadcastable to it). Dividing the kept elements by the keep probability ``1 - p`` keeps the
    expectation unchanged: ``E[y] = input``. With ``p = 1`` everything is dropped (``input * 0``).
    Backward: ``dL/dinput = dL/dy * mask / (1 - p)`` (autograd derives it from the product).
    PyTorch counterpart: ``F.dropout(input, p)`` with the mask it draws internally.
    """
    fn = "dropout_with_mask"
    check_tensor(input, "input", fn)
    check_tensor(mask, "mask", fn)
    p = _check_p(p, fn)
    if p == 1.0:
        return input * torch.zeros((), dtype=input.dtype, device=input.device)
    return input * (mask.to(input.dtype) / (1.0 - p))


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Training:  ``m_i ~ Bernoulli(1 - p)``,  ``y_i = x_i * m_i / (1 - p)``  so  ``E[y_i] = x_i``.
    Evaluation (``training=False``) or ``p = 0``: the identity (no rescaling needed at test time,
    that is the point of the *inverted* variant).

    The mask is drawn exactly as PyTorch does on the CPU (``empty_like(input).bernoulli_(1 - p)``),
    so with the same seed the output is bit-identical to ``F.dropout``. ``inplace=True`` overwrites
    ``input``. ``generator`` seeds the mask without touching the global RNG.
    PyTorch counterpart: ``torch.nn.functional.dropout(input, p, training, inplace)``.
    """
    fn = "dropout"
    check_tensor(input, "input", fn)
    p = _check_p(p, fn)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        zero = torch.zeros((), dtype=input.dtype, device=input.device)
        return input.mul_(zero) if inplace else input * zero
    mask = torch.empty_like(input).bernoulli_(1.0 - p, generator=generator)
    scale = mask.div_(1.0 - p)
    return input.mul_(scale) if inplace else input * scale


class Dropout(nn.Module):
    """Module form of :func:`dropout`: active in ``model.train()``, the identity in ``model.eval()``.

    PyTorch counterpart: ``torch.nn.Dropout(p, inplace)``.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p, "Dropout")
        self.inplace = inplace

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


def dropout2d(input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Channel dropout (Tompson et al. 2015): zero whole feature maps, ``y[n, c] = x[n, c] * m[n, c] / (1 - p)``
    with one ``m[n, c] ~ Bernoulli(1 - p)`` per sample and channel, shared by all H x W positions.

    Neighbouring pixels of a feature map are strongly correlated, so element-wise dropout barely removes
    information from a conv layer (the neighbours still carry it); dropping the whole map does.
    The (N, C, 1, 1) mask is drawn as PyTorch does on the CPU, so with the same seed the output is
    bit-identical to ``F.dropout2d``. Input must be 4-D (N, C, H, W): torch reads a 3-D input as
    (N, C, L) (deprecated, with a warning), which we do not copy.
    PyTorch counterpart: ``torch.nn.functional.dropout2d(input, p, training, inplace)``.
    """
    fn = "dropout2d"
    check_tensor(input, "input", fn)
    p = _check_p(p, fn)
    if input.dim() != 4:
        raise ValueError(f"{fn}: expected a 4-D input (N, C, H, W), got {input.dim()}-D with shape "
                         f"{tuple(input.shape)}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        zero = torch.zeros((), dtype=input.dtype, device=input.device)
        return input.mul_(zero) if inplace else input * zero
    mask = input.new_empty((input.shape[0], input.shape[1], 1, 1)).bernoulli_(1.0 - p, generator=generator)
    scale = mask.div_(1.0 - p)
    return input.mul_(scale) if inplace else input * scale


class Dropout2d(nn.Module):
    """Module form of :func:`dropout2d`. PyTorch counterpart: ``torch.nn.Dropout2d(p, inplace)``."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p, "Dropout2d")
        self.inplace = inplace

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


# --------------------------------------------------------------------------- L1 / L2 penalties
def _as_params(params: torch.Tensor | Iterable[torch.Tensor], fn: str) -> list[torch.Tensor]:
    if isinstance(params, nn.Module):
        raise TypeError(f"{fn}: params must be tensors (e.g. model.parameters()), got an nn.Module")
    tensors = [params] if isinstance(params, torch.Tensor) else list(params)
    for i, t in enumerate(tensors):
        check_tensor(t, f"params[{i}]", fn)
    if not tensors:
        raise ValueError(f"{fn}: params must contain at least one tensor, got an empty iterable")
    return tensors


def l1_penalty(params: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_i |w_i|`` over all parameters (add ``lambda * l1_penalty(...)`` to the loss).

    Its (sub)gradient is ``lambda * sign(w)``: a constant pull towards 0 whatever the size of ``w``,
    which drives small weights exactly to zero (sparsity).
    """
    return sum(t.abs().sum() for t in _as_params(params, "l1_penalty"))


def l2_penalty(params: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_i w_i^2`` over all parameters (no 1/2 factor).

    Adding ``(lambda / 2) * l2_penalty(params)`` to the loss adds ``lambda * w`` to every gradient,
    which is exactly what ``torch.optim.SGD(..., weight_decay=lambda)`` does.
    """
    return sum(t.pow(2).sum() for t in _as_params(params, "l2_penalty"))


NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def param_groups_no_decay(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer param groups: weights with ``weight_decay``, and biases plus every parameter of a
    normalization layer (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) with ``weight_decay = 0``.

    Decay pulls a parameter towards 0. For a weight matrix that is a useful prior (small, smooth
    functions); a bias or a norm layer's scale/shift only sets an offset or a scale, shrinking it does not
    make the function simpler (a BatchNorm scale driven to 0 kills the channel), and a norm layer makes
    the preceding weights scale-invariant anyway. Used as ``AdamW(param_groups_no_decay(model, 0.05), lr)``
    (the BERT / timm / nanoGPT recipe). Parameters with ``requires_grad=False`` are left out.
    """
    wd = float(weight_decay)
    if wd < 0:
        raise ValueError(f"param_groups_no_decay: weight_decay must be >= 0, got {weight_decay!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"param_groups_no_decay: model must be an nn.Module, got {type(model).__name__}")
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            (no_decay if isinstance(module, NORM_LAYERS) or name.endswith("bias") else decay).append(param)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- Adam vs AdamW
@torch.no_grad()
def adam_step(param: torch.Tensor, grad: torch.Tensor, state: dict, *, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled: bool = False) -> None:
    """One Adam update of ``param`` in place; ``state`` (a dict, initially empty) holds the moments.

    Coupled (``decoupled=False``, Adam's ``weight_decay`` = L2 in the loss):
        ``g = grad + wd * w``           -- the decay goes *through* the adaptive scaling
    Decoupled (``decoupled=True``, AdamW, Loshchilov & Hutter 2019):
        ``w = w * (1 - lr * wd)``       -- the decay bypasses the adaptive scaling; ``g = grad``
    then, with ``t`` the step count,
        ``m = b1 m + (1 - b1) g``,  ``v = b2 v + (1 - b2) g^2``,
        ``w = w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    PyTorch counterparts: ``torch.optim.Adam`` / ``torch.optim.AdamW``.
    """
    fn = "adam_step"
    check_tensor(param, "param", fn)
    check_tensor(grad, "grad", fn)
    if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"{fn}: need lr, eps, weight_decay >= 0 and betas in [0, 1), got lr={lr}, "
                         f"eps={eps}, weight_decay={weight_decay}, betas={betas}")
    # the arithmetic is dlhelpers.optim.adam_step (pure); here it is applied in place
    new_param, new_state = optim_adam_step(param, grad, state, lr=lr, betas=betas, eps=eps,
                                           weight_decay=weight_decay, decoupled_weight_decay=decoupled)
    param.copy_(new_param)
    state.update(new_state)


def adamw_step(param: torch.Tensor, grad: torch.Tensor, state: dict, *, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2) -> None:
    """Decoupled weight decay (AdamW): ``adam_step(..., decoupled=True)``; torch default wd = 0.01.

    PyTorch counterpart: ``torch.optim.AdamW``.
    """
    adam_step(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=True)


# --------------------------------------------------------------------------- early stopping
class EarlyStopping(Callback):
    """Stop ``dlhelpers.train.fit`` when ``monitor`` has not improved for ``patience`` epochs.

    Improvement (``mode="min"``): ``value < best - min_delta``; (``mode="max"``): ``value > best + min_delta``.
    After each epoch without improvement ``wait`` grows by one; training stops once ``wait >= patience``
    (``patience=0`` stops at the first epoch that does not improve). On every improvement the weights
    are copied (``restore_best_weights=True``: they are loaded back when training ends) and, if
    ``checkpoint_path`` is given, saved with ``torch.save`` as a dict ``{"model_state_dict", "epoch",
    "monitor", "best"}`` that loads with ``torch.load(path, weights_only=True)``.
    Attributes after training: ``best``, ``best_epoch``, ``stopped_epoch`` (``None`` if never stopped).
    Keras counterpart: ``keras.callbacks.EarlyStopping``; Lightning: ``EarlyStopping``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 5,
                 min_delta: float = 0.0, restore_best_weights: bool = True,
                 checkpoint_path: str | Path | None = None) -> None:
        fn = "EarlyStopping"
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{fn}: monitor must be a non-empty str such as 'val_loss', got {monitor!r}")
        check_choice(mode, ("min", "max"), "mode", fn)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"{fn}: patience must be a non-negative int, got {patience!r}")
        if not isinstance(min_delta, int | float) or min_delta < 0:
            raise ValueError(f"{fn}: min_delta must be a non-negative number, got {min_delta!r}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta``."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, state: TrainState) -> None:
        self._reset()

    def on_epoch_end(self, state: TrainState) -> None:
        if self.monitor not in state.logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not logged; available: "
                             f"{sorted(state.logs)}")
        value = float(state.logs[self.monitor])
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            if self.restore_best_weights:
                self.best_state = copy.deepcopy(state.model.state_dict())
            if self.checkpoint_path is not None:
                self.save_checkpoint(state)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop = True
                self.stopped_epoch = state.epoch

    def save_checkpoint(self, state: TrainState) -> None:
        """Write the current weights and the monitored value (safe for ``weights_only=True`` loading)."""
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model_state_dict": state.model.state_dict(), "epoch": state.epoch,
                    "monitor": self.monitor, "best": self.best}, self.checkpoint_path)

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best_weights and self.best_state is not None:
            state.model.load_state_dict(self.best_state)


# --------------------------------------------------------------------------- label-smoothing cross-entropy
def _check_ce_args(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, reduction: str,
                   label_smoothing: float) -> tuple[bool, int]:
    """Validate the arguments of :func:`cross_entropy`; return (probability targets?, class dim)."""
    fn = "cross_entropy"
    check_tensor(input, "input", fn)
    check_tensor(target, "target", fn)
    check_choice(reduction, ("none", "mean", "sum"), "reduction", fn)
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, int | float):
        raise TypeError(f"{fn}: label_smoothing must be a float in [0, 1], got {type(label_smoothing).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.dim() == 0:
        raise ValueError(f"{fn}: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-D tensor")
    class_dim = 0 if input.dim() == 1 else 1
    n_classes = input.shape[class_dim]
    probs = target.is_floating_point()
    if probs:
        if target.shape != input.shape:
            raise ValueError(f"{fn}: probability targets must have the input's shape {tuple(input.shape)}, "
                             f"got {tuple(target.shape)}")
    else:
        want = input.shape[:class_dim] + input.shape[class_dim + 1:]
        if target.shape != want:
            raise ValueError(f"{fn}: class-index target must have shape {tuple(want)} for input of shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
    if weight is not None:
        check_tensor(weight, "weight", fn)
        if weight.shape != (n_classes,):
            raise ValueError(f"{fn}: weight must have shape ({n_classes},), got {tuple(weight.shape)}")
    return probs, class_dim


def _class_view(weight: torch.Tensor, ndim: int, class_dim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[class_dim] = -1
    return weight.view(shape)


def _reduce(loss: torch.Tensor, reduction: str, denominator: torch.Tensor | float) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / denominator


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
                  ) -> torch.Tensor:
    """Cross-entropy with optional class weights, ``ignore_index`` and label smoothing.

    With ``z = log_softmax(input)`` over the class dim, ``C`` classes, smoothing ``eps``, a per-sample
    index target ``y`` and class weights ``w`` (all ones if ``None``), PyTorch's loss per sample is

        ``l_n = (1 - eps) * (-w_y z_y)  +  (eps / C) * sum_c (-w_c z_c)``

    i.e. the usual NLL term is weighted by the *target's* weight, the uniform smoothing term by
    *each class's* own weight. Ignored samples (``y == ignore_index``) get 0. ``reduction="mean"``
    divides the *sum over samples of both terms* by ``sum_n w_{y_n}`` over non-ignored samples
    (by their count if unweighted) -- the normaliser of ``nll_loss``, used for both terms.

    Probability targets (``target`` floating point, same shape as ``input``): the target is smoothed,
    ``q = (1 - eps) q + eps / C``, ``l_n = -sum_c w_c q_c z_c``; ``mean`` divides by the number of
    samples (``N * d1 * ...``), not by weights; ``ignore_index`` does not apply.
    PyTorch counterpart: ``torch.nn.functional.cross_entropy`` (same signature, minus legacy args).
    """
    probs, cdim = _check_ce_args(input, target, weight, reduction, label_smoothing)
    eps, n_classes = float(label_smoothing), input.shape[cdim]
    logp = torch.log_softmax(input, dim=cdim)
    w = None if weight is None else _class_view(weight.to(logp.dtype), logp.dim(), cdim)
    if probs:
        q = target.to(logp.dtype)
        if eps > 0:
            q = q * (1 - eps) + eps / n_classes
        loss = -((logp * q) if w is None else (logp * q * w)).sum(cdim)
        n_samples = input.numel() // n_classes if n_classes else 0
        return _reduce(loss, reduction, n_samples if n_samples else float("nan"))
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    if keep.any() and (safe.min() < 0 or safe.max() >= n_classes):
        raise ValueError(f"cross_entropy: target class indices must be in [0, {n_classes - 1}] "
                         f"(or ignore_index={ignore_index}), got values in "
                         f"[{int(target[keep].min())}, {int(target[keep].max())}]")
    nll = -logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)       # -z_y
    w_target = torch.ones_like(nll) if weight is None else weight.to(logp.dtype)[safe]
    nll = torch.where(keep, nll * w_target, torch.zeros_like(nll))
    smooth = -(logp if w is None else logp * w).sum(cdim)              # sum_c -w_c z_c
    smooth = torch.where(keep, smooth, torch.zeros_like(smooth))
    loss = (1 - eps) * nll + (eps / n_classes) * smooth if eps > 0 else nll
    return _reduce(loss, reduction, (w_target * keep).sum())


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy`. PyTorch counterpart: ``torch.nn.CrossEntropyLoss``."""

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        check_choice(reduction, ("none", "mean", "sum"), "reduction", "CrossEntropyLoss")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


# --------------------------------------------------------------------------- calibration
def _check_probs_target(probs: torch.Tensor, target: torch.Tensor, n_bins: int, fn: str) -> None:
    check_tensor(probs, "probs", fn)
    check_tensor(target, "target", fn)
    if probs.dim() != 2:
        raise ValueError(f"{fn}: probs must be 2-D (N, C), got shape {tuple(probs.shape)}")
    if target.shape != probs.shape[:1]:
        raise ValueError(f"{fn}: target must have shape ({probs.shape[0]},), got {tuple(target.shape)}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"{fn}: n_bins must be a positive int, got {n_bins!r}")
    if probs.numel() and (probs.min() < 0 or probs.max() > 1):
        raise ValueError(f"{fn}: probs must lie in [0, 1] (apply softmax first), got values in "
                         f"[{float(probs.min()):.4g}, {float(probs.max()):.4g}]")


@torch.no_grad()
def calibration_bins(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15, *,
                     _fn: str = "calibration_bins") -> dict[str, torch.Tensor]:
    """Reliability-diagram data: split predictions by confidence into ``n_bins`` equal-width bins.

    Confidence = ``max_c probs[n, c]``, prediction = its arg-max. Bin ``b`` holds confidences in
    ``(b / n_bins, (b + 1) / n_bins]``. Returns ``count``, ``confidence`` (mean confidence per bin),
    ``accuracy`` (fraction correct per bin; 0 for empty bins) and the bin ``edges``.
    """
    _check_probs_target(probs, target, n_bins, _fn)
    conf, pred = probs.max(dim=1)
    correct = (pred == target).to(probs.dtype)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype, device=probs.device)
    idx = torch.bucketize(conf, edges[1:-1], right=False)  # conf in (e_b, e_{b+1}] -> b
    count = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device).index_add_(0, idx, torch.ones_like(conf))
    conf_sum = torch.zeros_like(count).index_add_(0, idx, conf)
    acc_sum = torch.zeros_like(count).index_add_(0, idx, correct)
    safe = count.clamp_min(1)
    return {"count": count, "confidence": conf_sum / safe, "accuracy": acc_sum / safe, "edges": edges}


def expected_calibration_error(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15) -> torch.Tensor:
    """ECE (Guo et al. 2017): ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over equal-width confidence bins.

    0 for a perfectly calibrated model (among predictions made with 80 % confidence, 80 % are right);
    large when the model is over- or under-confident. No torch counterpart (torchmetrics'
    ``MulticlassCalibrationError(norm="l1")`` computes the same quantity).
    """
    bins = calibration_bins(probs, target, n_bins, _fn="expected_calibration_error")
    n = bins["count"].sum()
    if n == 0:
        raise ValueError("expected_calibration_error: probs must contain at least one row, got 0")
    return (bins["count"] / n * (bins["accuracy"] - bins["confidence"]).abs()).sum()



# --------------------------------------------------------------------------- temperature scaling
def _check_logits_target(logits: torch.Tensor, target: torch.Tensor, fn: str) -> None:
    check_tensor(logits, "logits", fn)
    check_tensor(target, "target", fn)
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"{fn}: logits must be 2-D (N, C) with N >= 1, got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] or target.is_floating_point():
        raise ValueError(f"{fn}: target must be class indices of shape ({logits.shape[0]},), got "
                         f"{target.dtype} of shape {tuple(target.shape)}")


def temperature_nll(logits: torch.Tensor, target: torch.Tensor, temperature: float | torch.Tensor
                    ) -> torch.Tensor:
    """Mean negative log-likelihood of ``softmax(logits / T)``: ``F.cross_entropy(logits / T, target)``."""
    _check_logits_target(logits, target, "temperature_nll")
    return cross_entropy(logits / temperature, target)


@torch.no_grad()
def fit_temperature(logits: torch.Tensor, target: torch.Tensor, *, max_iter: int = 100, tol: float = 1e-12
                    ) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T > 0`` minimising the validation NLL of
    ``softmax(logits / T)``. One parameter, so it cannot change which class is predicted (accuracy is
    unchanged), only how confident the model is; fit it on a held-out set, never the test set.

    In ``b = 1 / T`` the NLL  ``f(b) = mean_n [logsumexp_c(b z_nc) - b z_ny]``  is convex, with

        f'(b)  = mean_n (E_p[z_n] - z_ny),       f''(b) = mean_n Var_p[z_n] >= 0      (p = softmax(b z_n)),

    so Newton's method ``b <- b - f'(b) / f''(b)`` (halved until the NLL decreases, kept in
    [1e-4, 1e4]) finds the global minimum in a handful of steps. Returns ``T = 1 / b``.
    No torch counterpart; tested against ``scipy.optimize.minimize_scalar``.
    """
    fn = "fit_temperature"
    _check_logits_target(logits, target, fn)
    z = logits.to(torch.float64)
    zy = z.gather(1, target.view(-1, 1)).squeeze(1)

    def nll(b: float) -> float:
        return float((torch.logsumexp(b * z, dim=1) - b * zy).mean())

    b, f = 1.0, nll(1.0)
    for _ in range(max_iter):
        prob = torch.softmax(b * z, dim=1)
        mean_z = (prob * z).sum(1)
        grad = float((mean_z - zy).mean())
        hess = float((prob * (z - mean_z[:, None]) ** 2).sum(1).mean())
        step = grad / hess if hess > 0 else math.copysign(b, grad)
        new_b = min(max(b - step, 1e-4), 1e4)
        new_f = nll(new_b)
        while new_f > f and abs(new_b - b) > 1e-15:  # backtrack: halve the step until the NLL decreases
            new_b = (new_b + b) / 2
            new_f = nll(new_b)
        if abs(new_b - b) <= tol * max(1.0, b):
            b = new_b
            break
        b, f = new_b, new_f
    return 1.0 / b

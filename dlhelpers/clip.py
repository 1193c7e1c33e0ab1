"""Gradient clipping from scratch: rescale by the global norm, or clamp each coordinate.

* :func:`total_norm` — the p-norm of all gradients seen as one long vector,
  ``||g||_p = (sum_i ||g_i||_p^p)^(1/p)`` (computed as the norm of the per-tensor norms), and
  ``max_i max |g_i|`` for ``p = inf``;
* :func:`clip_grad_norm_` — if that norm exceeds ``max_norm``, multiply every gradient by
  ``max_norm / (norm + 1e-6)``: the *direction* of the update is kept, only its length is capped;
* :func:`clip_grad_value_` — clamp every coordinate to ``[-clip_value, clip_value]`` (changes the direction).

Both act in place on ``p.grad`` between ``loss.backward()`` and ``optimizer.step()``, skip parameters
without a gradient and mirror ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_`` (same arguments,
same return value, same 1e-6 in the coefficient, same error for a non-finite norm).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from dlhelpers._checks import check_number

__all__ = ["total_norm", "clip_grad_norm_", "clip_grad_value_"]

Parameters = Tensor | Iterable[Tensor]


def _grads(parameters: Parameters, fn: str) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters must be a tensor or an iterable of tensors, got "
                            f"{type(p).__name__} at position {i}")
    return [p.grad for p in params if p.grad is not None]


def _norm_type(norm_type: float | str, fn: str) -> float:
    value = float(norm_type) if isinstance(norm_type, str) and norm_type.lower() == "inf" else \
        check_number(norm_type, "norm_type", fn)
    if not value > 0:
        raise ValueError(f"{fn}: norm_type must be > 0 (or inf), got {norm_type!r}")
    return value


def total_norm(tensors: Iterable[Tensor], norm_type: float | str = 2.0) -> Tensor:
    """``||concat(tensors)||_p`` without concatenating: the p-norm of the per-tensor p-norms (they are equal,
    since sum_i sum_j |g_ij|^p = sum_i ||g_i||_p^p); ``p = inf`` gives the largest absolute entry.
    An empty list has norm 0. PyTorch: ``torch.nn.utils.get_total_norm``."""
    p = _norm_type(norm_type, "total_norm")
    tensors = list(tensors)
    if not tensors:
        return torch.tensor(0.0)
    if math.isinf(p):
        per_tensor = torch.stack([t.abs().max() if t.numel() else t.new_zeros(()) for t in tensors])
        return per_tensor.max()
    per_tensor = torch.stack([t.abs().pow(p).sum().pow(1 / p) for t in tensors])
    return per_tensor.abs().pow(p).sum().pow(1 / p)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients so that their total ``norm_type``-norm is at most ``max_norm``:

        n = total_norm(grads, norm_type);   c = min(1, max_norm / (n + 1e-6));   g <- c * g

    Returns ``n`` (the norm *before* clipping; log it, it is the best early warning of divergence).
    ``error_if_nonfinite=True`` raises if ``n`` is NaN or inf instead of writing NaNs into every gradient.
    ``foreach`` is accepted for torch's signature and ignored. PyTorch: ``torch.nn.utils.clip_grad_norm_``.
    """
    fn = "clip_grad_norm_"
    max_norm = check_number(max_norm, "max_norm", fn)
    grads = _grads(parameters, fn)
    p = _norm_type(norm_type, fn)
    with torch.no_grad():
        n = total_norm(grads, p)
        if error_if_nonfinite and not torch.isfinite(n):
            raise RuntimeError(f"{fn}: the total norm of order {p} of the gradients is {n.item()}, so they cannot "
                               "be clipped; set error_if_nonfinite=False to clip anyway (all become NaN)")
        coef = torch.clamp(max_norm / (n + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.device, g.dtype))
    return n


def clip_grad_value_(parameters: Parameters, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient coordinate to ``[-clip_value, clip_value]`` in place. Unlike norm clipping it
    changes the direction of the update. ``foreach`` is accepted and ignored.
    PyTorch: ``torch.nn.utils.clip_grad_value_``."""
    clip_value = check_number(clip_value, "clip_value", "clip_grad_value_")
    with torch.no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            g.clamp_(-clip_value, clip_value)

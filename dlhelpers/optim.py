"""Optimizers from scratch: SGD (momentum, Nesterov), Adagrad, RMSprop, Adam (AMSGrad) and AdamW.

Each optimizer has two faces:

* a **pure update rule** (``sgd_step``, ``adagrad_step``, ``rmsprop_step``, ``adam_step``, ``adamw_step``) that takes
  one parameter tensor, its gradient and a state dict and returns the *new* parameter and the *new* state
  without touching its inputs. It is the formula, written out, one line per equation;
* a :class:`torch.optim.Optimizer` subclass (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`,
  :class:`Adam`, :class:`AdamW`) with torch's constructor arguments. With ``foreach=True`` (the default) ``step()`` uses
  the fused multi-tensor ``torch._foreach_*`` kernels for speed; with ``foreach=False`` it calls the pure
  function parameter by parameter. Both follow ``torch.optim`` operation for operation, so trajectories
  agree with ``torch.optim`` to rounding error (tested in float64 over 200 steps).

Utilities for experiments: :func:`lr_finder` (Smith's LR range test), :func:`suggest_lr` and
:func:`compare_optimizers` (a tidy ``pandas`` table of learning curves over settings and seeds).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlhelpers._checks import check_number

State = dict[str, Any]
Params = Iterable[Tensor] | Iterable[dict[str, Any]]

__all__ = ["sgd_step", "adagrad_step", "rmsprop_step", "adam_step", "adamw_step", "SGD", "Adagrad", "RMSprop",
           "Adam", "AdamW",
           "lr_finder", "suggest_lr", "compare_optimizers"]


# ----------------------------------------------------------------------------------------------------------
# argument checks (messages name the optimizer, the argument, the rule and the value given)
# ----------------------------------------------------------------------------------------------------------

def _check_nonneg(fn: str, **values: object) -> None:
    for name, value in values.items():
        if check_number(value, name, fn) < 0:
            raise ValueError(f"{fn}: {name} must be >= 0, got {value!r}")


def _check_unit(fn: str, name: str, value: object) -> None:
    """``value`` must lie in [0, 1)."""
    v = check_number(value, name, fn)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{fn}: {name} must be in [0, 1), got {value!r}")


def _check_betas(fn: str, betas: object) -> tuple[float, float]:
    if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2:
        raise TypeError(f"{fn}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        _check_unit(fn, f"betas[{i}]", b)
    return float(betas[0]), float(betas[1])


def _check_sgd_args(fn: str, lr: float, momentum: float, dampening: float, weight_decay: float,
                    nesterov: bool) -> None:
    _check_nonneg(fn, lr=lr, momentum=momentum, weight_decay=weight_decay)
    check_number(dampening, "dampening", fn)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{fn}: nesterov=True requires momentum > 0 and dampening == 0, "
                         f"got momentum={momentum!r}, dampening={dampening!r}")


def _check_adagrad_args(fn: str, lr: float, lr_decay: float, weight_decay: float,
                        initial_accumulator_value: float, eps: float) -> None:
    _check_nonneg(fn, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                  initial_accumulator_value=initial_accumulator_value, eps=eps)


def _check_rmsprop_args(fn: str, lr: float, alpha: float, eps: float, weight_decay: float,
                        momentum: float) -> None:
    _check_nonneg(fn, lr=lr, eps=eps, weight_decay=weight_decay, momentum=momentum)
    _check_nonneg(fn, alpha=alpha)


def _check_adam_args(fn: str, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    _check_nonneg(fn, lr=lr, eps=eps, weight_decay=weight_decay)
    _check_betas(fn, betas)


# ----------------------------------------------------------------------------------------------------------
# pure update rules: (param, grad, state, hyper-parameters) -> (new_param, new_state); inputs untouched
# ----------------------------------------------------------------------------------------------------------

def sgd_step(param: Tensor, grad: Tensor, state: State, *, lr: float, momentum: float = 0.0,
             dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
             maximize: bool = False) -> tuple[Tensor, State]:
    """One step of SGD with optional momentum, dampening, Nesterov and L2 weight decay.

    g   = ±grad + weight_decay * param                  (minus sign when ``maximize``)
    b_1 = g;   b_t = momentum * b_{t-1} + (1 - dampening) * g          (only if momentum > 0)
    d   = g + momentum * b_t  (Nesterov)   or   b_t   (classical)   or   g   (no momentum)
    param <- param - lr * d

    ``state`` holds ``momentum_buffer`` (absent / ``None`` before the first step).
    PyTorch: ``torch.optim.SGD`` (the same formula, including the undamped first buffer).
    """
    _check_sgd_args("sgd_step", lr, momentum, dampening, weight_decay, nesterov)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = torch.add(g, param, alpha=weight_decay)  # g + wd * param  (torch.add(a, b, alpha) = a + alpha*b)
    new_state = dict(state)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        # b = momentum * b + (1 - dampening) * g
        buf = g.clone() if buf is None else torch.add(momentum * buf, g, alpha=1 - dampening)
        new_state["momentum_buffer"] = buf
        g = torch.add(g, buf, alpha=momentum) if nesterov else buf  # Nesterov: g + momentum * b
    return torch.add(param, g, alpha=-lr), new_state  # param - lr * d


def adagrad_step(param: Tensor, grad: Tensor, state: State, *, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False) -> tuple[Tensor, State]:
    """One step of Adagrad (Duchi, Hazan & Singer 2011): per-coordinate rates from the *sum* of all squared
    gradients so far, so often-updated coordinates slow down and rare ones keep large steps.

    g     = ±grad + weight_decay * param
    lr_t  = lr / (1 + (t - 1) * lr_decay)
    s_t   = s_{t-1} + g^2                       (s_0 = initial_accumulator_value)
    param <- param - lr_t * g / (sqrt(s_t) + eps)

    The sum only grows, so the effective rate decays like 1/sqrt(t): good for sparse features, too
    aggressive for long non-convex training (hence RMSprop's moving average). ``state`` holds ``step`` and
    ``sum``. PyTorch: ``torch.optim.Adagrad``.
    """
    _check_adagrad_args("adagrad_step", lr, lr_decay, weight_decay, initial_accumulator_value, eps)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = torch.add(g, param, alpha=weight_decay)  # g + wd * param
    step = state.get("step", 0) + 1
    clr = lr / (1 + (step - 1) * lr_decay)
    sum_ = state["sum"] if "sum" in state else torch.full_like(param, initial_accumulator_value)
    sum_ = torch.addcmul(sum_, g, g)  # s + g^2
    std = sum_.sqrt() + eps
    return torch.addcdiv(param, g, std, value=-clr), {"step": step, "sum": sum_}  # param - lr_t * g / std


def rmsprop_step(param: Tensor, grad: Tensor, state: State, *, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> tuple[Tensor, State]:
    """One step of RMSprop (Hinton's lecture 6e), with optional momentum and centering.

    g   = ±grad + weight_decay * param
    v_t = alpha * v_{t-1} + (1 - alpha) * g^2                  (running mean of squared gradients)
    m_t = alpha * m_{t-1} + (1 - alpha) * g                    (only if centered)
    s   = sqrt(v_t - m_t^2) + eps  (centered)   or   sqrt(v_t) + eps
    b_t = momentum * b_{t-1} + g / s;  param <- param - lr * b_t     (momentum > 0)
    param <- param - lr * g / s                                       (otherwise)

    ``state`` holds ``step``, ``square_avg`` and, when used, ``grad_avg`` and ``momentum_buffer``
    (all start at zero). PyTorch: ``torch.optim.RMSprop``.
    """
    _check_rmsprop_args("rmsprop_step", lr, alpha, eps, weight_decay, momentum)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = torch.add(g, param, alpha=weight_decay)  # g + wd * param
    zeros = torch.zeros_like(param)
    new_state: State = {"step": state.get("step", 0) + 1}
    # v = alpha * v + (1 - alpha) * g^2        (torch.addcmul(a, x, y, value=c) = a + c * x * y)
    square_avg = torch.addcmul(alpha * state.get("square_avg", zeros), g, g, value=1 - alpha)
    new_state["square_avg"] = square_avg
    if centered:
        grad_avg = torch.lerp(state.get("grad_avg", zeros), g, 1 - alpha)  # m = m + (1 - alpha) * (g - m)
        new_state["grad_avg"] = grad_avg
        avg = torch.addcmul(square_avg, grad_avg, grad_avg, value=-1).sqrt() + eps  # sqrt(v - m^2) + eps
    else:
        avg = square_avg.sqrt() + eps
    if momentum > 0:
        # b = momentum * b + g / s        (torch.addcdiv(a, x, y, value=c) = a + c * x / y)
        buf = torch.addcdiv(momentum * state.get("momentum_buffer", zeros), g, avg)
        new_state["momentum_buffer"] = buf
        return torch.add(param, buf, alpha=-lr), new_state  # param - lr * b
    return torch.addcdiv(param, g, avg, value=-lr), new_state  # param - lr * g / s


def adam_step(param: Tensor, grad: Tensor, state: State, *, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              amsgrad: bool = False, maximize: bool = False,
              decoupled_weight_decay: bool = False) -> tuple[Tensor, State]:
    """One step of Adam (Kingma & Ba 2015), optionally AMSGrad and decoupled weight decay (AdamW).

    g      = ±grad (+ weight_decay * param   for Adam's L2 penalty)
    param <- param * (1 - lr * weight_decay)  (AdamW, ``decoupled_weight_decay=True``, instead)
    m_t    = beta1 * m_{t-1} + (1 - beta1) * g            v_t = beta2 * v_{t-1} + (1 - beta2) * g^2
    m_hat  = m_t / (1 - beta1^t)                          v_hat = v_t / (1 - beta2^t)   (bias correction)
    v_max  = max(v_max, v_t) and v_t -> v_max             (AMSGrad)
    param <- param - lr * m_hat / (sqrt(v_hat) + eps)

    ``state`` holds ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and ``max_exp_avg_sq``.
    PyTorch: ``torch.optim.Adam`` / ``torch.optim.AdamW``.
    """
    fn = "adamw_step" if decoupled_weight_decay else "adam_step"
    _check_adam_args(fn, lr, betas, eps, weight_decay)
    beta1, beta2 = betas
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param = param * (1 - lr * weight_decay)
        else:
            g = torch.add(g, param, alpha=weight_decay)  # g + wd * param
    zeros = torch.zeros_like(param)
    step = state.get("step", 0) + 1
    exp_avg = torch.lerp(state.get("exp_avg", zeros), g, 1 - beta1)  # m + (1 - beta1) * (g - m)
    # v = beta2 * v + (1 - beta2) * g^2        (torch.addcmul(a, x, y, value=c) = a + c * x * y)
    exp_avg_sq = torch.addcmul(beta2 * state.get("exp_avg_sq", zeros), g, g, value=1 - beta2)
    new_state: State = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    second = exp_avg_sq
    if amsgrad:
        second = torch.maximum(state.get("max_exp_avg_sq", zeros), exp_avg_sq)
        new_state["max_exp_avg_sq"] = second
    denom = second.sqrt() / math.sqrt(bias_correction2) + eps  # sqrt(v_hat) + eps
    # param - (lr / (1 - beta1^t)) * m / denom = param - lr * m_hat / (sqrt(v_hat) + eps)
    return torch.addcdiv(param, exp_avg, denom, value=-lr / bias_correction1), new_state


def adamw_step(param: Tensor, grad: Tensor, state: State, *, lr: float = 1e-3,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
               amsgrad: bool = False, maximize: bool = False) -> tuple[Tensor, State]:
    """One step of AdamW (Loshchilov & Hutter 2019): Adam whose weight decay shrinks the weights directly,

    param <- param * (1 - lr * weight_decay), then the Adam step on the *un-penalised* gradient,

    so the decay is not rescaled by 1 / sqrt(v_hat). PyTorch: ``torch.optim.AdamW``.
    """
    return adam_step(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                     amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


# ----------------------------------------------------------------------------------------------------------
# torch.optim.Optimizer subclasses
# ----------------------------------------------------------------------------------------------------------

class _ScratchOptimizer(torch.optim.Optimizer):
    """Shared plumbing: gather (param, grad, state) of a group, run the pure rule or the foreach kernel."""

    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise TypeError(f"{type(self).__name__}: sparse gradients are not supported")
        return params

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Perform one update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = self._params_with_grad(group)
            if not params:
                continue
            if group["foreach"]:
                self._foreach_update(group, params)
            else:
                for p in params:
                    new_p, self.state[p] = self._pure_update(group, p, p.grad, self.state[p])
                    p.copy_(new_p)
        return loss

    def _pure_update(self, group: dict[str, Any], p: Tensor, grad: Tensor, state: State
                     ) -> tuple[Tensor, State]:
        raise NotImplementedError

    def _foreach_update(self, group: dict[str, Any], params: list[Tensor]) -> None:
        raise NotImplementedError


def _grads(params: list[Tensor], maximize: bool) -> list[Tensor]:
    grads = [p.grad for p in params]
    return list(torch._foreach_neg(grads)) if maximize else grads


class SGD(_ScratchOptimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (see :func:`sgd_step`).

    PyTorch: ``torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False, foreach=None)``.
    """

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool = True) -> None:
        _check_sgd_args("SGD", lr, momentum, dampening, weight_decay, nesterov)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _pure_update(self, group, p, grad, state):
        return sgd_step(p, grad, state, lr=group["lr"], momentum=group["momentum"],
                        dampening=group["dampening"], weight_decay=group["weight_decay"],
                        nesterov=group["nesterov"], maximize=group["maximize"])

    def _foreach_update(self, group, params):
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        grads = _grads(params, group["maximize"])
        if wd != 0:
            grads = list(torch._foreach_add(grads, params, alpha=wd))
        owned = group["maximize"] or wd != 0  # grads are our temporaries (not p.grad): may update in place
        if momentum != 0:
            new = [p for p in params if self.state[p].get("momentum_buffer") is None]
            old = [p for p in params if self.state[p].get("momentum_buffer") is not None]
            gmap = dict(zip(map(id, params), grads))
            if old:
                bufs = [self.state[p]["momentum_buffer"] for p in old]
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, [gmap[id(p)] for p in old], alpha=1 - group["dampening"])
            for p in new:
                self.state[p]["momentum_buffer"] = gmap[id(p)].detach().clone()
            bufs = [self.state[p]["momentum_buffer"] for p in params]
            if not group["nesterov"]:
                grads = bufs
            elif owned:
                torch._foreach_add_(grads, bufs, alpha=momentum)
            else:  # never write into p.grad (torch.optim.SGD does): use a reusable scratch buffer per param
                cache = self.__dict__.setdefault("_scratch", {})  # not optimizer state: not in state_dict
                scratch = [cache[p] if p in cache else cache.setdefault(p, torch.empty_like(p)) for p in params]
                torch._foreach_copy_(scratch, grads)
                torch._foreach_add_(scratch, bufs, alpha=momentum)
                grads = scratch
        torch._foreach_add_(params, grads, alpha=-lr)


class Adagrad(_ScratchOptimizer):
    """Adagrad with learning-rate decay, weight decay and an initial accumulator (see :func:`adagrad_step`).

    PyTorch: ``torch.optim.Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, maximize=False)``.
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False,
                 foreach: bool = True) -> None:
        _check_adagrad_args("Adagrad", lr, lr_decay, weight_decay, initial_accumulator_value, eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize,
                        foreach=foreach)
        super().__init__(params, defaults)

    def _pure_update(self, group, p, grad, state):
        return adagrad_step(p, grad, state, lr=group["lr"], lr_decay=group["lr_decay"],
                            weight_decay=group["weight_decay"],
                            initial_accumulator_value=group["initial_accumulator_value"], eps=group["eps"],
                            maximize=group["maximize"])

    def _foreach_update(self, group, params):
        for p in params:
            st = self.state[p]
            if not st:
                st["step"] = 0
                st["sum"] = torch.full_like(p, group["initial_accumulator_value"])
            st["step"] += 1
        grads = _grads(params, group["maximize"])
        if group["weight_decay"] != 0:
            grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
        sums = [self.state[p]["sum"] for p in params]
        torch._foreach_addcmul_(sums, grads, grads)
        std = torch._foreach_sqrt(sums)
        torch._foreach_add_(std, group["eps"])
        clrs = [-group["lr"] / (1 + (self.state[p]["step"] - 1) * group["lr_decay"]) for p in params]
        torch._foreach_addcdiv_(params, grads, std, clrs)


class RMSprop(_ScratchOptimizer):
    """RMSprop with optional momentum and centering (see :func:`rmsprop_step`).

    PyTorch: ``torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, maximize=False)``.
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False, foreach: bool = True) -> None:
        _check_rmsprop_args("RMSprop", lr, alpha, eps, weight_decay, momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _pure_update(self, group, p, grad, state):
        return rmsprop_step(p, grad, state, lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                            weight_decay=group["weight_decay"], momentum=group["momentum"],
                            centered=group["centered"], maximize=group["maximize"])

    def _foreach_update(self, group, params):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        for p in params:
            st = self.state[p]
            if not st:
                st["step"] = 0
                st["square_avg"] = torch.zeros_like(p)
                if momentum > 0:
                    st["momentum_buffer"] = torch.zeros_like(p)
                if group["centered"]:
                    st["grad_avg"] = torch.zeros_like(p)
            st["step"] += 1
        grads = _grads(params, group["maximize"])
        if group["weight_decay"] != 0:
            grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
        square_avgs = [self.state[p]["square_avg"] for p in params]
        torch._foreach_mul_(square_avgs, alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        if group["centered"]:
            grad_avgs = [self.state[p]["grad_avg"] for p in params]
            torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
            avg = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(avg, eps)
        if momentum > 0:
            bufs = [self.state[p]["momentum_buffer"] for p in params]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_addcdiv_(bufs, grads, avg)
            torch._foreach_add_(params, bufs, alpha=-lr)
        else:
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)


class Adam(_ScratchOptimizer):
    """Adam with bias correction, optional AMSGrad and L2 weight decay (see :func:`adam_step`).

    PyTorch: ``torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False, maximize=False)``.
    """

    _decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool = True) -> None:
        _check_adam_args(type(self).__name__, lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _pure_update(self, group, p, grad, state):
        return adam_step(p, grad, state, lr=group["lr"], betas=group["betas"], eps=group["eps"],
                         weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                         maximize=group["maximize"], decoupled_weight_decay=self._decoupled)

    def _foreach_update(self, group, params):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for p in params:
            st = self.state[p]
            if not st:
                st["step"] = 0
                st["exp_avg"] = torch.zeros_like(p)
                st["exp_avg_sq"] = torch.zeros_like(p)
                if group["amsgrad"]:
                    st["max_exp_avg_sq"] = torch.zeros_like(p)
            st["step"] += 1
        grads = _grads(params, group["maximize"])
        if wd != 0:
            if self._decoupled:
                torch._foreach_mul_(params, 1 - lr * wd)
            else:
                grads = list(torch._foreach_add(grads, params, alpha=wd))
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        steps = [self.state[p]["step"] for p in params]
        neg_step_size = [-lr / (1 - beta1**t) for t in steps]
        bc2_sqrt = [math.sqrt(1 - beta2**t) for t in steps]
        if group["amsgrad"]:
            max_sqs = [self.state[p]["max_exp_avg_sq"] for p in params]
            torch._foreach_maximum_(max_sqs, exp_avg_sqs)
            denom = torch._foreach_sqrt(max_sqs)
        else:
            denom = torch._foreach_sqrt(exp_avg_sqs)
        if len(set(steps)) == 1:  # the usual case: one scalar for the whole group is the fastest kernel
            torch._foreach_div_(denom, bc2_sqrt[0])
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denom, value=neg_step_size[0])
        else:
            torch._foreach_div_(denom, bc2_sqrt)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denom, neg_step_size)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (see :func:`adamw_step`).

    PyTorch: ``torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
    amsgrad=False, maximize=False)``.
    """

    _decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool = True) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, foreach=foreach)


# ----------------------------------------------------------------------------------------------------------
# LR range test and optimizer comparison
# ----------------------------------------------------------------------------------------------------------

OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


def lr_finder(model: nn.Module, loader: Iterable, loss_fn: Callable[[Tensor, Tensor], Tensor],
              optimizer_factory: OptimizerFactory, start_lr: float = 1e-7, end_lr: float = 10.0,
              num_steps: int = 100, *, smooth: float = 0.98, diverge: float = 4.0,
              device: torch.device | None = None) -> tuple[list[float], list[float]]:
    """LR range test (Smith 2017, "Cyclical learning rates"): train for ``num_steps`` mini-batches while the
    learning rate grows geometrically from ``start_lr`` to ``end_lr``,

        lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1)),

    and record the exponentially smoothed, bias-corrected loss
    ``s_i = (smooth * a_{i-1} + (1 - smooth) * loss_i) / (1 - smooth**(i+1))`` (``a`` is the raw average).
    Stops early once the smoothed loss exceeds ``diverge`` x its minimum. The model's weights (and
    buffers) are restored afterwards. Returns ``(lrs, smoothed_losses)``; see :func:`suggest_lr`.
    No PyTorch counterpart (fastai's ``lr_find`` / ``torch-lr-finder`` do the same).
    """
    fn = "lr_finder"
    if not 0 < start_lr < end_lr:
        raise ValueError(f"{fn}: need 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"{fn}: num_steps must be an int >= 2, got {num_steps!r}")
    if not 0 <= smooth < 1:
        raise ValueError(f"{fn}: smooth must be in [0, 1), got {smooth!r}")
    device = device or next(model.parameters()).device
    saved = copy.deepcopy(model.state_dict())
    was_training = model.training
    optimizer = optimizer_factory(model.parameters())
    ratio = end_lr / start_lr
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    batches = itertools.cycle(loader)
    model.train()
    try:
        for i in range(num_steps):
            lr = start_lr * ratio ** (i / (num_steps - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb, yb = next(batches)
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            avg = smooth * avg + (1 - smooth) * loss.item()
            smoothed = avg / (1 - smooth ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge * best:
                break
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return lrs, losses


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A learning rate from an LR range test: where the smoothed loss falls fastest, i.e. the minimum of
    d loss / d log(lr) (ignoring the noisy first and last 10 % of points)."""
    if len(lrs) != len(losses) or len(lrs) < 3:
        raise ValueError(f"suggest_lr: need >= 3 matching lrs and losses, got {len(lrs)} and {len(losses)}")
    log_lr = torch.tensor(lrs, dtype=torch.float64).log()
    loss = torch.tensor(losses, dtype=torch.float64)
    slope = (loss[1:] - loss[:-1]) / (log_lr[1:] - log_lr[:-1])
    lo, hi = len(slope) // 10, max(len(slope) - len(slope) // 10, len(slope) // 10 + 1)
    i = lo + int(slope[lo:hi].argmin())
    return float(lrs[i])


def compare_optimizers(model_factory: Callable[[], nn.Module], train_loader: Iterable, val_loader: Iterable,
                       settings: Mapping[str, tuple[OptimizerFactory, Callable[[Any], Any] | None]],
                       epochs: int, seeds: Sequence[int] = (0,), *,
                       loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                       device: torch.device | None = None, show_progress: bool = True) -> Any:
    """Train a freshly seeded ``model_factory()`` with every ``settings[name] = (optimizer_factory,
    scheduler_factory or None)`` and every seed, using :func:`dlhelpers.train.fit` (schedulers are stepped
    per epoch; a ``ReduceLROnPlateau``-like one gets the validation loss).

    Returns a tidy ``pandas.DataFrame`` with one row per (setting, seed, epoch) and the columns
    ``setting, seed, epoch, train_loss, val_loss, val_acc, lr`` (``lr`` = the rate used in that epoch).
    The same seed gives every setting the same initial weights and the same batch order (a loader with its
    own ``torch.Generator``, like :func:`dlhelpers.data.make_loader`'s, has it re-seeded with the seed).
    """
    import pandas as pd

    from dlhelpers.train import fit
    from dlhelpers.utils import progress, seed_everything

    if not settings:
        raise ValueError("compare_optimizers: settings is empty; expected {name: (optimizer_factory, "
                         "scheduler_factory or None)}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"compare_optimizers: epochs must be a positive int, got {epochs!r}")
    rows = []
    runs = [(name, seed) for name in settings for seed in seeds]
    for name, seed in (progress(runs, desc="runs") if show_progress else runs):
        opt_factory, sched_factory = settings[name]
        seed_everything(seed)
        generator = getattr(train_loader, "generator", None)
        if isinstance(generator, torch.Generator):  # e.g. dlhelpers.data.make_loader: same batch order
            generator.manual_seed(seed)
        model = model_factory()
        optimizer = opt_factory(model.parameters())
        scheduler = sched_factory(optimizer) if sched_factory is not None else None
        hist = fit(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer, loss_fn=loss_fn,
                   scheduler=scheduler, device=device, show_progress=False)
        for e in range(len(hist["train_loss"])):
            rows.append({"setting": name, "seed": seed, "epoch": e + 1, "train_loss": hist["train_loss"][e],
                         "val_loss": hist["val_loss"][e], "val_acc": hist["val_acc"][e], "lr": hist["lr"][e]})
    return pd.DataFrame(rows, columns=["setting", "seed", "epoch", "train_loss", "val_loss", "val_acc", "lr"])

"""Learning-rate schedulers from scratch, speaking ``torch.optim.lr_scheduler``'s protocol.

Every schedule is first a **closed-form function of the epoch** (``step_lr(base_lr, epoch, ...)``,
``cosine_annealing_lr(...)``, ...), then a scheduler class that writes that value into the optimizer's
``param_groups`` on ``step()``. The classes follow torch's protocol: construction performs the first step
(``last_epoch`` becomes 0 and the epoch-0 rate is set), ``step()`` advances ``last_epoch`` by one,
``get_last_lr()``, ``state_dict()`` / ``load_state_dict()``; they store ``initial_lr`` in every param group
so torch's and our schedulers can be mixed. :class:`ReduceLROnPlateau` has ``needs_metric = True`` so
:func:`dlhelpers.train.fit` passes it the validation loss.

Torch computes most schedules *recursively* (``lr_t = lr_{t-1} * factor``); we use the closed form. They
agree to rounding error (tested value for value over hundreds of steps).

Utilities: :func:`schedule_values` (the list of rates a scheduler produces) and :func:`plot_schedule`.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["step_lr", "multistep_lr", "exponential_lr", "cosine_annealing_lr", "linear_lr",
           "warmup_cosine_lr", "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "LinearLR", "LinearWarmup", "WarmupCosineLR", "ReduceLROnPlateau",
           "schedule_values", "plot_schedule"]


def _check_int(fn: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return value


def _check_positive(fn: str, name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value!r}")


# ----------------------------------------------------------------------------------------------------------
# closed forms: the rate at epoch t as a pure function
# ----------------------------------------------------------------------------------------------------------

def step_lr(base_lr: float, epoch: int, step_size: int, gamma: float = 0.1) -> float:
    """``lr_t = base_lr * gamma ** floor(t / step_size)``. PyTorch: ``lr_scheduler.StepLR``."""
    return base_lr * gamma ** (epoch // step_size)


def multistep_lr(base_lr: float, epoch: int, milestones: Sequence[int], gamma: float = 0.1) -> float:
    """``lr_t = base_lr * gamma ** #{m in milestones: m <= t}`` (repeated milestones count twice).
    PyTorch: ``lr_scheduler.MultiStepLR``."""
    return base_lr * gamma ** bisect_right(sorted(milestones), epoch)


def exponential_lr(base_lr: float, epoch: int, gamma: float) -> float:
    """``lr_t = base_lr * gamma ** t``. PyTorch: ``lr_scheduler.ExponentialLR``."""
    return base_lr * gamma**epoch


def cosine_annealing_lr(base_lr: float, epoch: int, T_max: int, eta_min: float = 0.0) -> float:
    """``lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (SGDR without restarts;
    past ``T_max`` the cosine keeps going, i.e. climbs back up). PyTorch: ``lr_scheduler.CosineAnnealingLR``."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2


def linear_lr(base_lr: float, epoch: int, start_factor: float = 1 / 3, end_factor: float = 1.0,
              total_iters: int = 5) -> float:
    """``lr_t = base_lr * (s + (e - s) * min(t, total_iters) / total_iters)``: a linear ramp of the factor
    from ``start_factor`` to ``end_factor`` (a warm-up when s < e = 1). PyTorch: ``lr_scheduler.LinearLR``."""
    return base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)


def warmup_cosine_lr(base_lr: float, epoch: int, warmup_steps: int, total_steps: int,
                     start_factor: float = 1 / 3, eta_min: float = 0.0) -> float:
    """Linear warm-up for ``warmup_steps`` epochs, then cosine decay to ``eta_min`` at ``total_steps``:

    lr_t = linear_lr(base_lr, t, start_factor, 1, warmup_steps)                   for t < warmup_steps
    lr_t = cosine_annealing_lr(base_lr, t - warmup_steps, total_steps - warmup_steps, eta_min)   otherwise

    PyTorch: ``SequentialLR(opt, [LinearLR(opt, start_factor, total_iters=warmup_steps),
    CosineAnnealingLR(opt, T_max=total_steps - warmup_steps, eta_min)], milestones=[warmup_steps])``.
    """
    if epoch < warmup_steps:
        return linear_lr(base_lr, epoch, start_factor, 1.0, warmup_steps)
    return cosine_annealing_lr(base_lr, epoch - warmup_steps, total_steps - warmup_steps, eta_min)


# ----------------------------------------------------------------------------------------------------------
# the scheduler protocol
# ----------------------------------------------------------------------------------------------------------

class _SchedulerState:
    """What every scheduler shares with torch's: the last rates and a state dict without the optimizer."""

    _last_lr: list[float]

    def get_last_lr(self) -> list[float]:
        """The rates set by the most recent ``step()``."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (as torch does)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class LRScheduler(_SchedulerState):
    """Base class: subclasses implement ``lr_at(base_lr, epoch)``; ``step()`` writes it into the optimizer.

    PyTorch: ``torch.optim.lr_scheduler.LRScheduler`` (same attributes: ``optimizer``, ``base_lrs``,
    ``last_epoch``; same methods: ``step``, ``get_lr``, ``get_last_lr``, ``state_dict``, ``load_state_dict``).
    """

    needs_metric = False

    def __init__(self, optimizer: torch.optim.Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{name}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        _check_int(name, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{name}: param_groups[{i}] has no 'initial_lr' although last_epoch="
                               f"{last_epoch} (resuming); load the optimizer state first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The rates for the current ``last_epoch`` (what ``step()`` just wrote)."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one epoch (or one batch, if you step per batch) and set the new rates."""
        self._update_lr()

    # torch's SequentialLR / ChainedScheduler call these two private hooks; providing them lets torch's
    # containers drive our schedulers.
    def _initial_step(self) -> None:
        self.step()

    def _update_lr(self, epoch: int | None = None) -> None:
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` epochs (:func:`step_lr`). PyTorch: ``lr_scheduler.StepLR``."""

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _check_int("StepLR", "step_size", step_size, 1)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return step_lr(base_lr, epoch, self.step_size, self.gamma)


class MultiStepLR(LRScheduler):
    """Decay by ``gamma`` at each milestone (:func:`multistep_lr`). PyTorch: ``lr_scheduler.MultiStepLR``."""

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        for m in milestones:
            _check_int("MultiStepLR", "milestones", m, 0)
        self.milestones = Counter(milestones)  # torch stores a Counter too
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return multistep_lr(base_lr, epoch, list(self.milestones.elements()), self.gamma)


class ExponentialLR(LRScheduler):
    """Multiply by ``gamma`` every epoch (:func:`exponential_lr`). PyTorch: ``lr_scheduler.ExponentialLR``."""

    def __init__(self, optimizer: torch.optim.Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return exponential_lr(base_lr, epoch, self.gamma)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``base_lr`` to ``eta_min`` over ``T_max`` epochs (:func:`cosine_annealing_lr`).
    PyTorch: ``lr_scheduler.CosineAnnealingLR``."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = _check_int("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return cosine_annealing_lr(base_lr, epoch, self.T_max, self.eta_min)


class LinearLR(LRScheduler):
    """Linear ramp of the factor from ``start_factor`` to ``end_factor`` over ``total_iters`` epochs
    (:func:`linear_lr`). PyTorch: ``lr_scheduler.LinearLR``."""

    def __init__(self, optimizer: torch.optim.Optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        name = type(self).__name__
        if not 0 < start_factor <= 1:
            raise ValueError(f"{name}: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"{name}: end_factor must be in [0, 1], got {end_factor!r}")
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = _check_int(name, "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return linear_lr(base_lr, epoch, self.start_factor, self.end_factor, self.total_iters)


class LinearWarmup(LinearLR):
    """Linear warm-up from ``start_factor * base_lr`` to ``base_lr`` over ``warmup_steps`` epochs, then
    constant. PyTorch: ``LinearLR(opt, start_factor, end_factor=1.0, total_iters=warmup_steps)``."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, start_factor: float = 1 / 3,
                 last_epoch: int = -1) -> None:
        super().__init__(optimizer, start_factor, 1.0, warmup_steps, last_epoch)


class WarmupCosineLR(LRScheduler):
    """Linear warm-up, then cosine decay (:func:`warmup_cosine_lr`).

    PyTorch: ``SequentialLR(opt, [LinearLR(opt, start_factor, total_iters=warmup_steps),
    CosineAnnealingLR(opt, T_max=total_steps - warmup_steps, eta_min=eta_min)], milestones=[warmup_steps])``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                 start_factor: float = 1 / 3, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        name = "WarmupCosineLR"
        self.warmup_steps = _check_int(name, "warmup_steps", warmup_steps, 1)
        self.total_steps = _check_int(name, "total_steps", total_steps, warmup_steps + 1)
        if not 0 < start_factor <= 1:
            raise ValueError(f"{name}: start_factor must be in (0, 1], got {start_factor!r}")
        self.start_factor, self.eta_min = start_factor, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return warmup_cosine_lr(base_lr, epoch, self.warmup_steps, self.total_steps, self.start_factor,
                                self.eta_min)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter 2017): cosine from ``base_lr`` to ``eta_min`` over ``T_i`` epochs, then
    restart at ``base_lr`` with ``T_{i+1} = T_mult * T_i`` (``T_0`` first):

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2,

    ``T_cur`` = epochs since the last restart. PyTorch: ``lr_scheduler.CosineAnnealingWarmRestarts``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        name = "CosineAnnealingWarmRestarts"
        self.T_0 = _check_int(name, "T_0", T_0, 1)
        self.T_mult = _check_int(name, "T_mult", T_mult, 1)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def cycle_position(self, epoch: int) -> tuple[int, int]:
        """``(T_cur, T_i)`` at ``epoch``: walk through cycles of length T_0, T_0*T_mult, ... (integers)."""
        T_i, T_cur = self.T_0, epoch
        while T_cur >= T_i:
            T_cur -= T_i
            T_i *= self.T_mult
        return T_cur, T_i

    def lr_at(self, base_lr: float, epoch: int) -> float:
        T_cur, T_i = self.cycle_position(epoch)
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


class ReduceLROnPlateau(_SchedulerState):
    """Multiply the rate by ``factor`` once the metric has not improved for more than ``patience`` epochs.

    "Improved" (``mode="min"``): metric < best * (1 - threshold) (``threshold_mode="rel"``) or
    metric < best - threshold (``"abs"``); mirrored for ``mode="max"``. After a reduction, ``cooldown``
    epochs pass before bad epochs are counted again. Rates never go below ``min_lr``, and a reduction smaller
    than ``eps`` is skipped. ``step(metric)`` needs the metric, hence ``needs_metric = True``.
    PyTorch: ``lr_scheduler.ReduceLROnPlateau`` (same arguments and state).
    """

    needs_metric = True

    def __init__(self, optimizer: torch.optim.Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{name}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0 <= factor < 1:
            raise ValueError(f"{name}: factor must be in [0, 1), got {factor!r}")
        self.patience = _check_int(name, "patience", patience, 0)
        self.cooldown = _check_int(name, "cooldown", cooldown, 0)
        n = len(optimizer.param_groups)
        if isinstance(min_lr, Sequence):
            if len(min_lr) != n:
                raise ValueError(f"{name}: expected {n} min_lr values (one per param group), got {len(min_lr)}")
            self.min_lrs = list(min_lr)
        else:
            self.min_lrs = [min_lr] * n
        self.optimizer = optimizer
        self.mode, self.factor, self.threshold, self.threshold_mode, self.eps = (
            mode, factor, threshold, threshold_mode, eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics: float | torch.Tensor) -> None:
        """Record this epoch's metric and reduce the rates if it has plateaued."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


# ----------------------------------------------------------------------------------------------------------
# utilities
# ----------------------------------------------------------------------------------------------------------

SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def schedule_values(scheduler_or_factory: Any, steps: int, *, base_lr: float = 0.1,
                    metrics: Sequence[float] | None = None) -> list[float]:
    """The first ``steps`` rates of a schedule: ``[lr at epoch 0, 1, ..., steps - 1]``.

    Accepts a scheduler (it is stepped in place) or a factory ``optimizer -> scheduler`` (called with a
    throw-away ``torch.optim.SGD`` on one parameter with ``lr=base_lr``). A scheduler with
    ``needs_metric`` (``ReduceLROnPlateau``) needs ``metrics`` (one value per step).
    """
    _check_int("schedule_values", "steps", steps, 1)
    if callable(scheduler_or_factory) and not hasattr(scheduler_or_factory, "step"):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
        scheduler = scheduler_or_factory(opt)
    else:
        scheduler = scheduler_or_factory
    needs = getattr(scheduler, "needs_metric", False) or \
        isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if needs and (metrics is None or len(metrics) < steps - 1):
        raise ValueError(f"schedule_values: a {type(scheduler).__name__} needs metrics (>= {steps - 1} values)")
    lrs = [scheduler.optimizer.param_groups[0]["lr"]]
    with warnings.catch_warnings():  # torch warns that optimizer.step() was never called: intended here
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler")
        for t in range(steps - 1):
            scheduler.step(metrics[t]) if needs else scheduler.step()
            lrs.append(scheduler.optimizer.param_groups[0]["lr"])
    return lrs


def plot_schedule(scheduler_or_factory: Any, steps: int, *, base_lr: float = 0.1,
                  metrics: Sequence[float] | None = None, ax: Any = None, label: str | None = None,
                  log: bool = False) -> Any:
    """Draw the rate against the epoch (see :func:`schedule_values`); returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    lrs = schedule_values(scheduler_or_factory, steps, base_lr=base_lr, metrics=metrics)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(steps), lrs, marker="." if steps <= 60 else None, label=label)
    ax.set(xlabel="epoch (scheduler step)", ylabel="learning rate")
    if log:
        ax.set_yscale("log")
    if label is not None:
        ax.legend()
    return ax.figure

"""A small, readable training loop that later chapters extend (through callbacks) rather than rewrite.

``fit`` runs epochs of ``train_one_epoch`` and ``evaluate``, records a history
(``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr`` per epoch) and calls
callbacks at fixed points. A callback can stop training (``state.stop = True``), read
gradients after ``backward`` (e.g. to track gradient norms) or save checkpoints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlhelpers.utils import get_device, progress

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target class (``target`` may be soft labels)."""
    if target.dim() == logits.dim():  # soft / mixed labels -> use their arg-max
        target = target.argmax(dim=-1)
    return (logits.argmax(dim=-1) == target).float().mean().item()


@dataclass
class TrainState:
    """What callbacks can see and change while ``fit`` runs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    batch_loss: float = float("nan")
    batch_acc: float = float("nan")  # accuracy of the last batch, from the logits before the step
    logs: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stop: bool = False


class Callback:
    """Base class: override any hook. All hooks receive the mutable :class:`TrainState`."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def on_after_backward(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class GradNormTracker(Callback):
    """Record the global L2 norm of all gradients after every backward pass (``history['grad_norm']``
    holds the per-epoch mean, ``self.steps`` every step)."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self._epoch: list[float] = []

    def on_after_backward(self, state: TrainState) -> None:
        grads = [p.grad.detach().flatten() for p in state.model.parameters() if p.grad is not None]
        norm = torch.cat(grads).norm().item() if grads else 0.0
        self.steps.append(norm)
        self._epoch.append(norm)

    def on_epoch_end(self, state: TrainState) -> None:
        state.logs["grad_norm"] = sum(self._epoch) / max(len(self._epoch), 1)
        self._epoch = []


def _move(batch: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    return [t.to(device) for t in batch]


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn = F.cross_entropy,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader`` (eval mode, no gradients)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, total_correct, n = 0.0, 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        logits = model(xb)
        total_loss += loss_fn(logits, yb).item() * len(xb)
        total_correct += accuracy(logits, yb) * len(xb)
        n += len(xb)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    return {"loss": total_loss / n, "acc": total_correct / n}


def train_one_epoch(state: TrainState, loader: Iterable, loss_fn: LossFn, device: torch.device,
                    callbacks: Sequence[Callback] = (), grad_clip: float | None = None,
                    scheduler_per_step: Any = None) -> dict[str, float]:
    """One pass over ``loader``: forward, loss, backward, (clip), step. Returns mean loss/acc."""
    model, opt = state.model, state.optimizer
    model.train()
    total_loss, total_correct, n = 0.0, 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        for cb in callbacks:
            cb.on_after_backward(state)
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        if scheduler_per_step is not None:
            scheduler_per_step.step()
        state.step += 1
        state.batch_loss = loss.item()
        state.batch_acc = accuracy(logits.detach(), yb)
        for cb in callbacks:
            cb.on_batch_end(state)
        total_loss += state.batch_loss * len(xb)
        total_correct += state.batch_acc * len(xb)
        n += len(xb)
    return {"loss": total_loss / max(n, 1), "acc": total_correct / max(n, 1)}


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None, *, epochs: int,
        optimizer: torch.optim.Optimizer, loss_fn: LossFn = F.cross_entropy, scheduler: Any = None,
        scheduler_interval: str = "epoch", callbacks: Sequence[Callback] = (), grad_clip: float | None = None,
        device: torch.device | None = None, show_progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` epochs and return its history (a dict of per-epoch lists).

    ``scheduler`` is stepped once per epoch (``scheduler_interval="epoch"``; a
    ``ReduceLROnPlateau``-style scheduler receives the validation loss) or once per batch
    (``"step"``). Progress is a ``tqdm.auto`` bar over epochs, silent under test.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    device = device or get_device()
    model.to(device)
    state = TrainState(model=model, optimizer=optimizer)
    for cb in callbacks:
        cb.on_train_begin(state)
    per_step = scheduler if scheduler_interval == "step" else None
    epoch_iter = progress(range(epochs), desc="epochs") if show_progress else range(epochs)
    for epoch in epoch_iter:
        state.epoch = epoch
        state.logs = {"lr": optimizer.param_groups[0]["lr"]}
        for cb in callbacks:
            cb.on_epoch_begin(state)
        train = train_one_epoch(state, train_loader, loss_fn, device, callbacks, grad_clip, per_step)
        state.logs.update(train_loss=train["loss"], train_acc=train["acc"])
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device)
            state.logs.update(val_loss=val["loss"], val_acc=val["acc"])
        if scheduler is not None and scheduler_interval == "epoch":
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) or \
                    getattr(scheduler, "needs_metric", False):
                scheduler.step(state.logs.get("val_loss", state.logs["train_loss"]))
            else:
                scheduler.step()
        for cb in callbacks:
            cb.on_epoch_end(state)
        for key, value in state.logs.items():
            state.history[key].append(value)
        if state.stop:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    return dict(state.history)

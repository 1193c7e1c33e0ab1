"""Step time of our SGD(momentum), Adam(W), RMSprop, Adagrad vs ``torch.optim`` (foreach=True), ~1M-param MLP.

Gradients are filled once with random values; only ``optimizer.step()`` is timed, both optimizers in the
same run, interleaved, so the ratio (ours / torch) is comparable across machines. Target: <= 1.5x.
"""

from __future__ import annotations

import torch
from torch import nn

from dlhelpers import optim as O
from dlhelpers.utils import benchmark, format_time


def _model() -> nn.Module:
    # 784*1024 + 1024 + 1024*256 + 256 + 256*10 + 10 = 1,068,810 parameters in 6 tensors
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10))


def _with_grads(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = _model()
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    return model


CASES = {
    "SGD(momentum=0.9)": (lambda p: O.SGD(p, lr=1e-3, momentum=0.9),
                          lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, foreach=True)),
    "SGD(momentum=0.9, nesterov)": (lambda p: O.SGD(p, lr=1e-3, momentum=0.9, nesterov=True),
                                    lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True,
                                                              foreach=True)),
    "Adam": (lambda p: O.Adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
    "AdamW": (lambda p: O.AdamW(p, lr=1e-3), lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=True)),
    "RMSprop": (lambda p: O.RMSprop(p, lr=1e-3), lambda p: torch.optim.RMSprop(p, lr=1e-3, foreach=True)),
    "Adagrad(lr_decay=1e-3)": (lambda p: O.Adagrad(p, lr=1e-2, lr_decay=1e-3),
                               lambda p: torch.optim.Adagrad(p, lr=1e-2, lr_decay=1e-3, foreach=True)),
}


def main() -> None:
    n = sum(p.numel() for p in _model().parameters())
    print(f"model: MLP with {n:,} parameters, float32; timing optimizer.step() only")
    print(f"{'optimizer':<30} {'ours':>14} {'torch':>14} {'ratio':>7}")
    for name, (ours_f, torch_f) in CASES.items():
        ours, theirs = ours_f(_with_grads().parameters()), torch_f(_with_grads().parameters())
        ours.step()
        theirs.step()  # build state before timing
        t_ours, t_theirs = [], []
        for _ in range(7):  # interleave, and keep the best round of each, to share machine noise
            t_ours.append(benchmark(ours.step, repeat=3, number=10))
            t_theirs.append(benchmark(theirs.step, repeat=3, number=10))
        a, b = min(t_ours), min(t_theirs)
        print(f"{name:<30} {format_time(a):>14} {format_time(b):>14} {a / b:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()

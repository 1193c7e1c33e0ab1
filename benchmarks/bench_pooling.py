"""Speed of dlhelpers.pooling relative to torch.nn.functional (forward and forward+backward), CPU float32.

Input ``[16, 32, 56, 56]``; target <= 2x in every case, forward and forward+backward. Ratios (ours / torch)
are measured in the same run with calls interleaved and the best of several rounds kept
(``dlhelpers.utils.best_of``): with one thread the clock is the thread's CPU time, which a busy shared machine
barely disturbs; with the default thread count it is wall time (noisier under load).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlhelpers import pooling as P
from dlhelpers.utils import best_of, format_time

CASES = [
    ("max_pool2d k2 s2", P.max_pool2d, F.max_pool2d, (2,), {}),
    ("max_pool2d k3 s2 p1", P.max_pool2d, F.max_pool2d, (3, 2, 1), {}),
    ("avg_pool2d k2 s2", P.avg_pool2d, F.avg_pool2d, (2,), {}),
    ("avg_pool2d k3 s1 p1", P.avg_pool2d, F.avg_pool2d, (3, 1, 1), {}),
    ("adaptive_avg_pool2d 7x7", P.adaptive_avg_pool2d, F.adaptive_avg_pool2d, ((7, 7),), {}),
    ("adaptive_max_pool2d 7x7", P.adaptive_max_pool2d, F.adaptive_max_pool2d, ((7, 7),), {}),
    ("adaptive_avg_pool2d 1 (GAP)", P.adaptive_avg_pool2d, F.adaptive_avg_pool2d, (1,), {}),
]


def _fwd(fn, x: torch.Tensor, args: tuple, kwargs: dict):
    return lambda: fn(x, *args, **kwargs)


def _fwd_bwd(fn, x: torch.Tensor, args: tuple, kwargs: dict):
    def run() -> None:
        x.grad = None
        fn(x, *args, **kwargs).sum().backward()
    return run


def table(threads: int, x: torch.Tensor) -> None:
    torch.set_num_threads(threads)
    xg = x.clone().requires_grad_(True)
    clock = "thread CPU time" if threads == 1 else "wall time"
    print(f"{threads} thread(s), {clock}")
    print(f"{'case':30s} {'ours fwd':>14s} {'torch fwd':>14s} {'ratio':>7s} {'fwd+bwd ratio':>14s}")
    for name, ours, theirs, args, kwargs in CASES:
        t = best_of({"ours": _fwd(ours, x, args, kwargs), "torch": _fwd(theirs, x, args, kwargs)}, rounds=15)
        tb = best_of({"ours": _fwd_bwd(ours, xg, args, kwargs), "torch": _fwd_bwd(theirs, xg, args, kwargs)},
                     rounds=7)
        print(f"{name:30s} {format_time(t['ours']):>14s} {format_time(t['torch']):>14s} "
              f"{t['ours'] / t['torch']:7.2f} {tb['ours'] / tb['torch']:14.2f}")


def main() -> None:
    default_threads = torch.get_num_threads()
    torch.manual_seed(0)
    x = torch.randn(16, 32, 56, 56)
    print(f"input {tuple(x.shape)} float32, target <= 2x")
    for threads in dict.fromkeys((1, default_threads)):
        table(threads, x)
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()

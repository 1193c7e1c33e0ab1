"""Speed of dlhelpers.pooling relative to torch.nn.functional (forward and forward+backward), CPU float32.

Ratios (ours / torch) are measured in the same run, interleaved, so they are comparable across machines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlhelpers import pooling as P
from dlhelpers.utils import benchmark, format_time

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


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 32, 56, 56)
    xg = x.clone().requires_grad_(True)
    print(f"input {tuple(x.shape)} float32")
    print(f"{'case':30s} {'ours fwd':>14s} {'torch fwd':>14s} {'ratio':>7s} {'fwd+bwd ratio':>14s}")
    for name, ours, theirs, args, kwargs in CASES:
        t_ours = benchmark(_fwd(ours, x, args, kwargs), repeat=5)
        t_torch = benchmark(_fwd(theirs, x, args, kwargs), repeat=5)
        tb_ours = benchmark(_fwd_bwd(ours, xg, args, kwargs), repeat=3)
        tb_torch = benchmark(_fwd_bwd(theirs, xg, args, kwargs), repeat=3)
        print(f"{name:30s} {format_time(t_ours):>14s} {format_time(t_torch):>14s} {t_ours / t_torch:7.2f} "
              f"{tb_ours / tb_torch:14.2f}")


if __name__ == "__main__":
    main()

"""Speed of dlhelpers.conv against F.conv2d, measured in the same run (ratios, never asserted).

1. ResNet-like layer: batch 16, 32 -> 64 channels, 32x32, 3x3, padding 1 — vectorized (im2col + bmm) / F.conv2d,
   forward and forward+backward, with one thread and with the default thread count.
2. Small input: naive loops / vectorized, so the cost of Python loops is visible.
Timings are interleaved and the best of several rounds is kept. With one thread the clock is the calling
thread's CPU time (``time.thread_time``: all of PyTorch's CPU kernels run on that thread), which a busy,
shared machine barely disturbs; with the default thread count it is wall time (noisier under load).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlhelpers import conv
from dlhelpers.utils import best_of, format_time


def resnet_layer(threads: int) -> None:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, 32, 32, generator=g)
    w = torch.randn(64, 32, 3, 3, generator=g) * 0.06
    b = torch.randn(64, generator=g)
    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))

    def fwd_bwd(fn):
        def run():
            fn(xg, wg, bg, padding=1).sum().backward()
        return run

    t = best_of({"ours": lambda: conv.conv2d(x, w, b, padding=1), "torch": lambda: F.conv2d(x, w, b, padding=1)},
                rounds=30)
    t |= best_of({"ours_fb": fwd_bwd(conv.conv2d), "torch_fb": fwd_bwd(F.conv2d)}, rounds=10)
    clock = "thread CPU time" if threads == 1 else "wall time"
    print(f"  {threads} thread(s), {clock}:")
    print(f"    forward:          ours {format_time(t['ours'])}, F.conv2d "
          f"{format_time(t['torch'])}  ratio {t['ours'] / t['torch']:.2f}x  (target <= 2x)")
    print(f"    forward+backward: ours {format_time(t['ours_fb'])}, F.conv2d "
          f"{format_time(t['torch_fb'])}  ratio {t['ours_fb'] / t['torch_fb']:.2f}x")


def small_naive() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 8, 16, 16, generator=g)
    w = torch.randn(16, 8, 3, 3, generator=g)
    t = best_of({"naive": lambda: conv.conv2d_naive(x, w, padding=1), "ours": lambda: conv.conv2d(x, w, padding=1),
                 "torch": lambda: F.conv2d(x, w, padding=1)}, rounds=3, warmup=1)
    print(f"  naive {format_time(t['naive'])}, vectorized {format_time(t['ours'])}, F.conv2d {format_time(t['torch'])}"
          f"  naive/vectorized {t['naive'] / t['ours']:.0f}x, vectorized/F.conv2d {t['ours'] / t['torch']:.2f}x")


def main() -> None:
    default_threads = torch.get_num_threads()
    print("conv2d, ResNet-like layer [16, 32, 32, 32] * [64, 32, 3, 3], padding 1")
    print("  best of 30 forward / 10 forward+backward rounds, interleaved")
    print("  ours = dlhelpers.conv.conv2d (im2col + bmm)")
    resnet_layer(1)
    if default_threads > 1:
        resnet_layer(default_threads)
    print("conv2d, small input [4, 8, 16, 16] * [16, 8, 3, 3], padding 1, 1 thread:")
    small_naive()
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()

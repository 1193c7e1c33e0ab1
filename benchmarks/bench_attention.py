"""Speed of dlhelpers.attention relative to PyTorch (forward and forward+backward), CPU float32, one thread.

Size of the issue: batch 32, sequence 128, model dim 256, 8 heads (head dim 32). Ratios (ours / torch) are
measured interleaved (ours, torch, ours, torch, ...) and the median of the per-round ratios is printed, so a
shared machine whose load changes during the run still gives comparable ratios.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from dlhelpers import attention as AT
from dlhelpers.blocks import copy_weights
from dlhelpers.utils import format_time

N, L, E, H = 32, 128, 256, 8


def _fwd_bwd(fn, inputs: list[torch.Tensor]):
    def run() -> None:
        for t in inputs:
            t.grad = None
        fn().sum().backward()
    return run


def _interleaved(ours, theirs, rounds: int) -> tuple[float, float, float]:
    """Median time of ``ours``, of ``theirs`` and median of the per-round ratios, the two run alternately."""
    ours(), theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(rounds):
        for fn, times in ((ours, t_ours), (theirs, t_theirs)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratio = statistics.median(a / b for a, b in zip(t_ours, t_theirs))
    return statistics.median(t_ours), statistics.median(t_theirs), ratio


def _row(name: str, ours, theirs, inputs: list[torch.Tensor]) -> None:
    with torch.no_grad():
        t_ours, t_torch, ratio = _interleaved(ours, theirs, rounds=9)
    _, _, ratio_bwd = _interleaved(_fwd_bwd(ours, inputs), _fwd_bwd(theirs, inputs), rounds=5)
    print(f"{name:34s} {format_time(t_ours):>14s} {format_time(t_torch):>14s} {ratio:7.2f} {ratio_bwd:14.2f}")


def main() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    q, k, v = (torch.randn(N, H, L, E // H, requires_grad=True) for _ in range(3))
    causal = AT.causal_mask(L)
    x = torch.randn(N, L, E, requires_grad=True)
    ours_mha, torch_mha = AT.MultiheadAttention(E, H, batch_first=True), nn.MultiheadAttention(E, H, batch_first=True)
    copy_weights(torch_mha, ours_mha)
    kpm = torch.zeros(N, L, dtype=torch.bool)
    kpm[:, L - 16:] = True
    print(f"batch {N}, seq {L}, dim {E}, {H} heads, float32, 1 thread")
    print(f"{'case':34s} {'ours fwd':>14s} {'torch fwd':>14s} {'ratio':>7s} {'fwd+bwd ratio':>14s}")
    for name, kw in (("sdpa", {}), ("sdpa causal", {"is_causal": True}), ("sdpa bool mask", {"attn_mask": causal})):
        _row(name, lambda kw=kw: AT.scaled_dot_product_attention(q, k, v, **kw),
             lambda kw=kw: F.scaled_dot_product_attention(q, k, v, **kw), [q, k, v])
    for name, kw in (("MHA self-attention, need_weights", {}),
                     ("MHA need_weights=False", {"need_weights": False}),
                     ("MHA key_padding_mask", {"key_padding_mask": kpm, "need_weights": False})):
        _row(name, lambda kw=kw: ours_mha(x, x, x, **kw)[0], lambda kw=kw: torch_mha(x, x, x, **kw)[0], [x])
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()

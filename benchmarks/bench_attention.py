"""Speed of dlhelpers.attention relative to PyTorch (forward and forward+backward), CPU float32, one thread.

Size of the issue: batch 32, sequence 128, model dim 256, 8 heads (head dim 32). Ratios (ours / torch) are
measured in the same run, interleaved, so they are comparable across machines.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlhelpers import attention as AT
from dlhelpers.blocks import copy_weights
from dlhelpers.utils import benchmark, format_time

N, L, E, H = 32, 128, 256, 8


def _fwd_bwd(fn, inputs: list[torch.Tensor]):
    def run() -> None:
        for t in inputs:
            t.grad = None
        fn().sum().backward()
    return run


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
        ours = lambda kw=kw: AT.scaled_dot_product_attention(q, k, v, **kw)
        theirs = lambda kw=kw: F.scaled_dot_product_attention(q, k, v, **kw)
        with torch.no_grad():
            t_ours, t_torch = benchmark(ours, repeat=5), benchmark(theirs, repeat=5)
        tb_ours, tb_torch = benchmark(_fwd_bwd(ours, [q, k, v]), repeat=3), benchmark(_fwd_bwd(theirs, [q, k, v]),
                                                                                      repeat=3)
        print(f"{name:34s} {format_time(t_ours):>14s} {format_time(t_torch):>14s} {t_ours / t_torch:7.2f} "
              f"{tb_ours / tb_torch:14.2f}")
    for name, kw in (("MHA self-attention, need_weights", {}),
                     ("MHA need_weights=False", {"need_weights": False}),
                     ("MHA key_padding_mask", {"key_padding_mask": kpm, "need_weights": False})):
        ours = lambda kw=kw: ours_mha(x, x, x, **kw)[0]
        theirs = lambda kw=kw: torch_mha(x, x, x, **kw)[0]
        with torch.no_grad():
            t_ours, t_torch = benchmark(ours, repeat=5), benchmark(theirs, repeat=5)
        tb_ours, tb_torch = benchmark(_fwd_bwd(ours, [x]), repeat=3), benchmark(_fwd_bwd(theirs, [x]), repeat=3)
        print(f"{name:34s} {format_time(t_ours):>14s} {format_time(t_torch):>14s} {t_ours / t_torch:7.2f} "
              f"{tb_ours / tb_torch:14.2f}")
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()

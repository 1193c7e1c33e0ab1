"""Max, average and adaptive pooling (1-D/2-D/3-D) from scratch, vectorized and differentiable.

Every function mirrors its ``torch.nn.functional`` namesake (same name, signature, output, returned
indices and gradient). The regular poolings cut the (padded) input into windows with
``Tensor.unfold`` -- one strided *view*, no copy -- and reduce the last axis::

    [N, C, H, W] --pad--> [N, C, H+2p, W+2p] --unfold x2--> [N, C, H_out, W_out, kH, kW] --max/mean-->

Output size per spatial axis (PyTorch's ``pooling_output_shape``)::

    L_out = floor((L + 2p - d(k-1) - 1) / s) + 1            (ceil instead of floor with ceil_mode=True,
                                                              minus one if the last window would start
                                                              in the right padding: (L_out-1)s >= L + p)

Rules PyTorch enforces and so do we: ``padding <= kernel_size // 2`` per axis, every output size >= 1.

Adaptive pooling picks the windows from the output size instead: output cell ``i`` of ``L_out`` covers
``[floor(i L / L_out), ceil((i+1) L / L_out))`` -- windows of varying size that may overlap.

Gradients: max pooling's backward is that of PyTorch's kernel, written as one ``scatter_add`` (a custom
``torch.autograd.Function``: route each upstream gradient to its window's argmax, add where windows
overlap; :func:`max_pool2d_backward` is the same rule as a stand-alone, checked function). Everything else
is differentiated by autograd. :func:`max_pool2d_naive` is the loop version of the forward pass, written
like PyTorch's CPU kernel.

Speed (``benchmarks/bench_pooling.py``): average pooling sums ``k`` strided slices per axis (separable)
instead of reducing unfolded windows, and adaptive pooling whose output size divides the input size (global
pooling included) is a reshape + mean / max; the general adaptive average keeps the averaging-matrix form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dlhelpers._checks import IntOrTuple, check_rank, check_tensor, ntuple

__all__ = [
    "pool_output_size",
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_pool2d_naive", "max_pool2d_backward",
]

PoolResult = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
_LAYOUT = {1: "[N, C, L] or unbatched [C, L]", 2: "[N, C, H, W] or unbatched [C, H, W]",
           3: "[N, C, D, H, W] or unbatched [C, D, H, W]"}
_NEG_INF = float("-inf")


# --------------------------------------------------------------------------- argument checks
def _prepare_input(x: torch.Tensor, n: int, fn: str) -> tuple[torch.Tensor, bool]:
    """Check rank/dtype/emptiness; return the input with a batch axis and whether it had one."""
    check_tensor(x, "input", fn)
    check_rank(x, (n + 1, n + 2), "input", fn, _LAYOUT[n])
    if not x.is_floating_point():
        raise TypeError(f"{fn}: input must be a floating-point tensor, got dtype {x.dtype}")
    batched = x.dim() == n + 2
    if any(size == 0 for size in x.shape[-(n + 1):]):
        raise ValueError(f"{fn}: channel and spatial sizes must be non-zero, got shape {tuple(x.shape)}")
    return (x if batched else x.unsqueeze(0)), batched


def _pool_params(n: int, kernel_size: IntOrTuple, stride: IntOrTuple | None, padding: IntOrTuple,
                 dilation: IntOrTuple, fn: str) -> tuple[tuple[int, ...], ...]:
    """Expand ``kernel_size, stride, padding, dilation`` to ``n``-tuples and apply PyTorch's rules."""
    k = ntuple(kernel_size, n, "kernel_size", fn, minimum=1)
    no_stride = stride is None or (isinstance(stride, Sequence) and not isinstance(stride, str)
                                   and len(stride) == 0)
    s = k if no_stride else ntuple(stride, n, "stride", fn, minimum=1)
    p = ntuple(padding, n, "padding", fn, minimum=0)
    d = ntuple(dilation, n, "dilation", fn, minimum=1)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{fn}: padding must be at most half of kernel_size (PyTorch's rule: "
                         f"padding <= kernel_size // 2 on every axis), got padding={p} and kernel_size={k}")
    return k, s, p, d


def _out_len(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """One axis of PyTorch's ``pooling_output_shape`` (``//`` floors, like its ``div_rtn``)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window may not start in the right padding
        out -= 1
    return out


def _output_size(spatial: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int],
                 d: Sequence[int], ceil_mode: bool, fn: str) -> tuple[int, ...]:
    out = tuple(_out_len(*args, ceil_mode) for args in zip(spatial, k, s, p, d))
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{fn}: output size would be {out} for input size {tuple(spatial)} with kernel_size={tuple(k)}, "
            f"stride={tuple(s)}, padding={tuple(p)}, dilation={tuple(d)}, ceil_mode={ceil_mode}; "
            f"every output size must be >= 1 (input too small for the kernel)")
    return out


def pool_output_size(input_size: int | Sequence[int], kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                     padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False
                     ) -> int | tuple[int, ...]:
    """Spatial output size of max/avg pooling (an int for an int ``input_size``, else a tuple).

    ``L_out = floor((L + 2p - d(k-1) - 1) / s) + 1`` per axis (``ceil`` with ``ceil_mode``, then minus
    one if the last window would start in the right padding). ``stride`` defaults to ``kernel_size``.
    Raises like the pooling functions do (``padding <= kernel_size // 2``, output >= 1).
    PyTorch: the shape of ``F.max_pool{n}d(...)`` / ``F.avg_pool{n}d(...)`` (``dilation=1`` for avg).
    """
    fn = "pool_output_size"
    scalar = isinstance(input_size, int) and not isinstance(input_size, bool)
    sizes = (input_size,) if scalar else input_size
    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not 1 <= len(sizes) <= 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
        raise ValueError(f"{fn}: input_size must be a positive int or a tuple of 1 to 3 positive ints, "
                         f"got {input_size!r}")
    n = len(sizes)
    k, s, p, d = _pool_params(n, kernel_size, stride, padding, dilation, fn)
    out = _output_size(sizes, k, s, p, d, ceil_mode, fn)
    return out[0] if scalar else out


# --------------------------------------------------------------------------- windows
def _windows(x: torch.Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int],
             out: Sequence[int], pad_value: float) -> torch.Tensor:
    """``[N, C, *L] -> [N, C, *out, prod(k)]``: every pooling window, flattened in row-major order.

    The input is padded with ``pad_value`` (``p`` on the left; ``p`` plus whatever a ``ceil_mode``
    window needs on the right), then each spatial axis is unfolded into windows of the *effective*
    size ``d(k-1)+1``; keeping every ``d``-th element of a window implements dilation.
    """
    n = len(k)
    spatial = x.shape[2:]
    eff = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
    extra = [max(0, (o - 1) * si + e - (size + 2 * pi)) for o, si, e, size, pi in zip(out, s, eff, spatial, p)]
    pads = [v for i in reversed(range(n)) for v in (p[i], p[i] + extra[i])]  # F.pad: last axis first
    if any(pads):
        x = F.pad(x, pads, value=pad_value)
    for i in range(n):  # each unfold appends one window axis at the end
        x = x.unfold(2 + i, eff[i], s[i]).narrow(2 + i, 0, out[i])
    x = x[(...,) + tuple(slice(None, None, di) for di in d)]
    return x.flatten(-n)


def _grid(out: Sequence[int], axis: int, device: torch.device) -> torch.Tensor:
    """``arange(out[axis])`` shaped to broadcast over ``[N, C, *out]``."""
    shape = [1, 1] + [1] * len(out)
    shape[2 + axis] = out[axis]
    return torch.arange(out[axis], device=device).view(shape)


def _unravel(flat: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Row-major ``flat -> (i_0, ..., i_{n-1})`` for an array of shape ``sizes``."""
    idx = []
    for i in range(len(sizes)):
        idx.append(flat // math.prod(sizes[i + 1:]) % sizes[i])
    return idx


def _ravel(idx: Sequence[torch.Tensor], sizes: Sequence[int]) -> torch.Tensor:
    """Row-major ``(i_0, ..., i_{n-1}) -> flat`` for an array of shape ``sizes``."""
    flat = idx[0]
    for i in range(1, len(sizes)):
        flat = flat * sizes[i] + idx[i]
    return flat


def _finish(y: torch.Tensor, idx: torch.Tensor | None, batched: bool) -> PoolResult:
    if not batched:
        y = y.squeeze(0)
        idx = None if idx is None else idx.squeeze(0)
    return y if idx is None else (y, idx)


# --------------------------------------------------------------------------- max pooling
def _max_and_indices(xb: torch.Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int],
                     out: Sequence[int], with_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Values ``[N, C, *out]`` and (if asked) each maximum's flat position in the unpadded input plane."""
    win = _windows(xb, k, s, p, d, out, _NEG_INF)  # padding can never win a max
    y, arg = win.max(dim=-1)  # the first maximum in row-major window order (a NaN propagates)
    if not with_indices:
        return y, None
    if (y == _NEG_INF).any():
        # PyTorch's loop starts from (value -inf, index = first in-bounds element) and only moves on a
        # strictly larger value, so a window whose maximum is -inf reports its first in-bounds element.
        first = [(-(_grid(out, i, xb.device) * s[i] - p[i])).clamp(min=0).add(d[i] - 1)
                 .div(d[i], rounding_mode="floor") for i in range(len(k))]
        arg = torch.where(y == _NEG_INF, _ravel(first, k).expand_as(arg), arg)
    # flat position = sum over axes of (o*s - p + offset*d) * row-major stride: a per-output-cell base plus
    # a per-window-element offset, so one small lookup table replaces unravelling every argmax
    n, dev = len(k), xb.device
    strides = [math.prod(xb.shape[3 + i:]) for i in range(n)]
    base = sum((_grid(out, i, dev) * s[i] - p[i]) * strides[i] for i in range(n))
    steps = torch.meshgrid(*[torch.arange(k[i], device=dev) * (d[i] * strides[i]) for i in range(n)], indexing="ij")
    return y, base + sum(steps).flatten().take(arg)


def _scatter_to_argmax(grad_output: torch.Tensor, indices: torch.Tensor, input_shape: Sequence[int]
                       ) -> torch.Tensor:
    """``grad_input[n, c, indices[n, c, ...]] += grad_output[n, c, ...]`` (indices outside the plane: dropped)."""
    planes, area = input_shape[0] * input_shape[1], math.prod(input_shape[2:])
    idx, grad = indices.reshape(planes, -1), grad_output.reshape(planes, -1)
    inside = (idx >= 0) & (idx < area)
    grad_input = grad.new_zeros(planes, area)
    grad_input.scatter_add_(1, torch.where(inside, idx, 0), torch.where(inside, grad, 0))
    return grad_input.view(input_shape)


class _MaxPoolFunction(torch.autograd.Function):
    """Forward: max and argmax over the windows. Backward: one ``scatter_add`` to the argmax positions,
    PyTorch's rule, instead of autograd's way back through the unfolded (overlapping) window view."""

    @staticmethod
    def forward(ctx, xb, k, s, p, d, out):  # noqa: ANN001, ANN205 (autograd signature)
        y, idx = _max_and_indices(xb, k, s, p, d, out, with_indices=True)
        ctx.save_for_backward(idx)
        ctx.input_shape = tuple(xb.shape)
        ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, grad_y, _grad_idx):  # noqa: ANN001, ANN205
        (idx,) = ctx.saved_tensors
        return _scatter_to_argmax(grad_y, idx, ctx.input_shape), None, None, None, None, None


def _max_pool_core(xb: torch.Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int],
                   out: Sequence[int], return_indices: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    if xb.requires_grad and torch.is_grad_enabled():
        y, idx = _MaxPoolFunction.apply(xb, tuple(k), tuple(s), tuple(p), tuple(d), tuple(out))
        return y, (idx if return_indices else None)
    return _max_and_indices(xb, k, s, p, d, out, return_indices)


def _max_pool(x: torch.Tensor, n: int, kernel_size: IntOrTuple, stride: IntOrTuple | None,
              padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: bool, return_indices: bool,
              fn: str) -> PoolResult:
    xb, batched = _prepare_input(x, n, fn)
    k, s, p, d = _pool_params(n, kernel_size, stride, padding, dilation, fn)
    out = _output_size(tuple(xb.shape[2:]), k, s, p, d, ceil_mode, fn)
    y, idx = _max_pool_core(xb, k, s, p, d, out, return_indices)
    return _finish(y, idx, batched)


def max_pool1d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolResult:
    """1-D max pooling of ``[N, C, L]`` (or ``[C, L]``): ``y[n,c,i] = max_j x_pad[n,c, i*s + j*d]``.

    Padding counts as ``-inf``. ``return_indices`` also returns the flat position of each maximum in
    the unpadded input (``l``). A NaN in a window propagates (its index may name another NaN of the
    window than torch's). PyTorch: ``F.max_pool1d`` / ``nn.MaxPool1d``.
    """
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d")


def max_pool2d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolResult:
    """2-D max pooling of ``[N, C, H, W]`` (or ``[C, H, W]``).

    ``y[n,c,i,j] = max_{a<kH, b<kW} x_pad[n,c, i*sH + a*dH, j*sW + b*dW]`` with ``-inf`` padding.
    ``return_indices`` also returns each maximum's flat position ``h*W + w`` in the unpadded input plane.
    PyTorch: ``F.max_pool2d`` / ``nn.MaxPool2d``.
    """
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d")


def max_pool3d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> PoolResult:
    """3-D max pooling of ``[N, C, D, H, W]`` (or ``[C, D, H, W]``); indices are ``(z*H + h)*W + w``.

    PyTorch: ``F.max_pool3d`` / ``nn.MaxPool3d``.
    """
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool3d")


# --------------------------------------------------------------------------- average pooling
def _window_counts(spatial: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int],
                   out: Sequence[int], count_include_pad: bool, like: torch.Tensor) -> torch.Tensor:
    """Divisor of every output cell, ``[*out]``: how many window positions fall inside
    ``[-p, L+p)`` (``count_include_pad``) or inside ``[0, L)``; a product over axes."""
    counts = torch.ones((), dtype=like.dtype, device=like.device)
    for size, ki, si, pi, o in zip(spatial, k, s, p, out):
        lo, hi = (-pi, size + pi) if count_include_pad else (0, size)
        start = torch.arange(o, device=like.device) * si - pi
        c = ((start + ki).clamp(max=hi) - start.clamp(min=lo)).clamp(min=0)
        counts = counts.unsqueeze(-1) * c.to(like.dtype)
    return counts


def _window_sums(x: torch.Tensor, k: Sequence[int], s: Sequence[int], p: Sequence[int], out: Sequence[int]
                 ) -> torch.Tensor:
    """``[N, C, *L] -> [N, C, *out]``: every window's sum, one axis at a time (the box filter is separable).

    Zero-pad (``p`` left, ``p`` plus what a ``ceil_mode`` window needs right), then along each axis add the
    ``k`` strided slices ``x[j], x[j+s], ..., x[j+(out-1)s]`` for ``j < k``: the same numbers as
    ``_windows(...).sum(-1)``, without reducing over a non-contiguous window axis.
    """
    pads = []
    for i in reversed(range(len(k))):  # F.pad: last axis first
        extra = max(0, (out[i] - 1) * s[i] + k[i] - (x.shape[2 + i] + 2 * p[i]))
        pads += [p[i], p[i] + extra]
    if any(pads):
        x = F.pad(x, pads)
    for i in range(len(k)):
        axis, span = 2 + i, (out[i] - 1) * s[i] + 1
        total = x.narrow(axis, 0, span)[(slice(None),) * axis + (slice(None, None, s[i]),)]
        for j in range(1, k[i]):
            total = total + x.narrow(axis, j, span)[(slice(None),) * axis + (slice(None, None, s[i]),)]
        x = total
    return x


def _avg_pool(x: torch.Tensor, n: int, kernel_size: IntOrTuple, stride: IntOrTuple | None,
              padding: IntOrTuple, ceil_mode: bool, count_include_pad: bool, divisor_override: int | None,
              fn: str) -> torch.Tensor:
    xb, batched = _prepare_input(x, n, fn)
    k, s, p, d = _pool_params(n, kernel_size, stride, padding, 1, fn)
    if divisor_override is not None:
        if not isinstance(divisor_override, int) or isinstance(divisor_override, bool):
            raise TypeError(f"{fn}: divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{fn}: divisor_override must be non-zero, got 0")
    spatial = tuple(xb.shape[2:])
    if n == 3 and any(size < ki for size, ki in zip(spatial, k)):  # torch checks this for avg_pool3d only
        raise ValueError(f"{fn}: input size {spatial} is smaller than kernel_size {k} on some axis "
                         f"(PyTorch's avg_pool3d requires input >= kernel_size before padding)")
    out = _output_size(spatial, k, s, p, d, ceil_mode, fn)
    total = _window_sums(xb, k, s, p, out)
    if divisor_override is not None:
        divisor: torch.Tensor | int = divisor_override
    else:
        divisor = _window_counts(spatial, k, s, p, out, count_include_pad, xb)
    return _finish(total / divisor, None, batched)


def avg_pool1d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True
               ) -> torch.Tensor:
    """1-D average pooling: ``y[n,c,i] = sum_{j<k} x_pad[n,c,i*s+j] / count``.

    ``count`` is the number of window positions inside the zero-padded input ``[-p, L+p)``
    (``count_include_pad=True``) or inside the real input ``[0, L)``; ``ceil_mode`` windows that reach past
    the padding are always clipped. PyTorch: ``F.avg_pool1d`` (no ``divisor_override``, as in torch).
    """
    return _avg_pool(x, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d")


def avg_pool2d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> torch.Tensor:
    """2-D average pooling: window sum divided by the window count (see :func:`avg_pool1d`; the count
    is a product over the axes) or by ``divisor_override``. PyTorch: ``F.avg_pool2d`` / ``nn.AvgPool2d``.
    """
    return _avg_pool(x, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     "avg_pool2d")


def avg_pool3d(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> torch.Tensor:
    """3-D average pooling of ``[N, C, D, H, W]`` (or unbatched). PyTorch: ``F.avg_pool3d``.

    Like torch (and unlike the 1-D/2-D versions) it requires every input size >= ``kernel_size``.
    """
    return _avg_pool(x, 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                     "avg_pool3d")


# --------------------------------------------------------------------------- adaptive pooling
def _adaptive_size(output_size: object, spatial: Sequence[int], n: int, fn: str) -> tuple[int, ...]:
    """``output_size`` as an ``n``-tuple; ``None`` entries (2-D/3-D only, as in torch) keep the input size."""
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        sizes: tuple[object, ...] = (output_size,) * n
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str):
        sizes = tuple(output_size)
        if len(sizes) != n:
            raise ValueError(f"{fn}: output_size must have {n} entries, got {output_size!r}")
    else:
        raise TypeError(f"{fn}: output_size must be an int or a tuple of {n} ints, got {output_size!r}")
    none_ok = n > 1
    for v in sizes:
        if not ((isinstance(v, int) and not isinstance(v, bool)) or (v is None and none_ok)):
            allowed = "ints or None" if none_ok else "ints (None is not allowed in 1-D, as in torch)"
            raise TypeError(f"{fn}: output_size entries must be {allowed}, got {output_size!r}")
    out = tuple(size if v is None else v for v, size in zip(sizes, spatial))
    if any(o < 0 for o in out):
        raise ValueError(f"{fn}: output_size entries must be >= 0, got {output_size!r}")
    return out


def _adaptive_bounds(size: int, out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Window ``i`` covers ``[floor(i*L/out), ceil((i+1)*L/out))``."""
    i = torch.arange(out, device=device)
    return (i * size) // out, ((i + 1) * size + out - 1) // out


def _adaptive_avg_matrix(size: int, out: int, like: torch.Tensor) -> torch.Tensor:
    """The ``[out, L]`` averaging matrix of one axis: ``1/len`` inside window ``i``, 0 elsewhere."""
    if out == 0:
        return like.new_zeros(0, size)
    start, end = _adaptive_bounds(size, out, like.device)
    j = torch.arange(size, device=like.device)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def _adaptive_avg(x: torch.Tensor, n: int, output_size: object, fn: str) -> torch.Tensor:
    xb, batched = _prepare_input(x, n, fn)
    out = _adaptive_size(output_size, xb.shape[2:], n, fn)
    spatial = tuple(xb.shape[2:])
    if all(o > 0 and size % o == 0 for size, o in zip(spatial, out)):
        # equal, non-overlapping windows of size L/out: split each axis into (out, L/out) and average the
        # second part, one axis at a time (faster than one mean over several strided axes); out = 1 is GAP
        y = xb
        for i in range(n):
            y = y.unflatten(2 + i, (out[i], spatial[i] // out[i])).mean(dim=3 + i)
        return _finish(y, None, batched)
    y = xb
    for i in range(n):  # adaptive averaging is linear and separable: one matrix per axis
        m = _adaptive_avg_matrix(xb.shape[2 + i], out[i], xb)
        y = torch.movedim(torch.movedim(y, 2 + i, -1) @ m.T, -1, 2 + i)
    return _finish(y, None, batched)


def adaptive_avg_pool1d(x: torch.Tensor, output_size: IntOrTuple) -> torch.Tensor:
    """Average over ``[floor(iL/L_out), ceil((i+1)L/L_out))`` for each output ``i``, whatever ``L`` is.

    Computed as ``x @ A.T`` with the ``[L_out, L]`` averaging matrix ``A`` (or, when ``L_out`` divides ``L``, as a
    reshape to ``[..., L_out, L / L_out]`` and a mean). PyTorch: ``F.adaptive_avg_pool1d``.
    """
    return _adaptive_avg(x, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(x: torch.Tensor, output_size: int | Sequence[int | None]) -> torch.Tensor:
    """2-D adaptive average pooling (one averaging matrix per axis); ``None`` keeps that input size.

    ``output_size=1`` is global average pooling. PyTorch: ``F.adaptive_avg_pool2d`` / ``nn.AdaptiveAvgPool2d``.
    """
    return _adaptive_avg(x, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(x: torch.Tensor, output_size: int | Sequence[int | None]) -> torch.Tensor:
    """3-D adaptive average pooling. PyTorch: ``F.adaptive_avg_pool3d``."""
    return _adaptive_avg(x, 3, output_size, "adaptive_avg_pool3d")


def _adaptive_max(x: torch.Tensor, n: int, output_size: object, return_indices: bool, fn: str) -> PoolResult:
    xb, batched = _prepare_input(x, n, fn)
    spatial = tuple(xb.shape[2:])
    out = _adaptive_size(output_size, spatial, n, fn)
    if all(o > 0 and size % o == 0 for size, o in zip(spatial, out)):
        # equal, non-overlapping windows [i L/out, (i+1) L/out): max pooling with kernel = stride = L/out
        k = tuple(size // o for size, o in zip(spatial, out))
        y, idx = _max_pool_core(xb, k, k, (0,) * n, (1,) * n, out, return_indices)
        return _finish(y, idx, batched)
    if 0 in out:  # empty output (allowed, as in torch); slicing keeps it in the autograd graph
        y = xb.flatten(2)[:, :, :0].reshape(*xb.shape[:2], *out)
        return _finish(y, torch.zeros(y.shape, dtype=torch.long, device=xb.device) if return_indices else None,
                       batched)
    win, positions, longest = xb, [], []
    for i in range(n):  # gather windows axis by axis; short windows repeat their last element
        start, end = _adaptive_bounds(spatial[i], out[i], xb.device)
        kmax = int((end - start).max())
        pos = torch.minimum(start[:, None] + torch.arange(kmax, device=xb.device), end[:, None] - 1)
        axis = 2 + 2 * i  # layout so far: [N, C, o_0, k_0, ..., o_{i-1}, k_{i-1}, L_i, ...]
        win = win.index_select(axis, pos.flatten()).unflatten(axis, (out[i], kmax))
        positions.append(pos)
        longest.append(kmax)
    win = win.permute([0, 1] + [2 + 2 * i for i in range(n)] + [3 + 2 * i for i in range(n)]).flatten(-n)
    y, arg = win.max(dim=-1)
    if not return_indices:
        return _finish(y, None, batched)
    offsets = _unravel(arg, longest)
    pos = [positions[i][_grid(out, i, xb.device), offsets[i]] for i in range(n)]
    return _finish(y, _ravel(pos, spatial), batched)


def adaptive_max_pool1d(x: torch.Tensor, output_size: IntOrTuple, return_indices: bool = False) -> PoolResult:
    """Max over ``[floor(iL/L_out), ceil((i+1)L/L_out))`` for each output ``i``.

    PyTorch: ``F.adaptive_max_pool1d`` / ``nn.AdaptiveMaxPool1d``.
    """
    return _adaptive_max(x, 1, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(x: torch.Tensor, output_size: int | Sequence[int | None],
                        return_indices: bool = False) -> PoolResult:
    """2-D adaptive max pooling (``None`` keeps that input size). PyTorch: ``F.adaptive_max_pool2d``."""
    return _adaptive_max(x, 2, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool3d(x: torch.Tensor, output_size: int | Sequence[int | None],
                        return_indices: bool = False) -> PoolResult:
    """3-D adaptive max pooling. PyTorch: ``F.adaptive_max_pool3d``."""
    return _adaptive_max(x, 3, output_size, return_indices, "adaptive_max_pool3d")


# --------------------------------------------------------------------------- teaching versions
def max_pool2d_naive(x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                     padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
                     return_indices: bool = False) -> PoolResult:
    """Loop version of :func:`max_pool2d`, written like PyTorch's CPU kernel (slow; for teaching).

    Padding is never read: each window visits only its in-bounds positions, starting from
    ``(-inf, first in-bounds position)`` and moving on a strictly larger value (so ties keep the first).
    """
    fn = "max_pool2d_naive"
    xb, batched = _prepare_input(x, 2, fn)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pool_params(2, kernel_size, stride, padding, dilation, fn)
    N, C, H, W = xb.shape
    oh, ow = _output_size((H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode, fn)
    values, indices = [], []
    for n in range(N):
        for c in range(C):
            for i in range(oh):
                for j in range(ow):
                    h0, w0 = i * sh - ph, j * sw - pw
                    while h0 < 0:
                        h0 += dh
                    while w0 < 0:
                        w0 += dw
                    best, best_val, best_idx = None, _NEG_INF, h0 * W + w0
                    for h in range(h0, min(i * sh - ph + dh * (kh - 1) + 1, H), dh):
                        for w in range(w0, min(j * sw - pw + dw * (kw - 1) + 1, W), dw):
                            v = float(xb[n, c, h, w].detach())
                            if v > best_val or math.isnan(v):
                                best, best_val, best_idx = xb[n, c, h, w], v, h * W + w
                    values.append(xb.new_tensor(_NEG_INF) if best is None else best)
                    indices.append(best_idx)
    y = torch.stack(values).view(N, C, oh, ow)
    idx = torch.tensor(indices, dtype=torch.long, device=xb.device).view(N, C, oh, ow)
    return _finish(y, idx if return_indices else None, batched)


def max_pool2d_backward(grad_output: torch.Tensor, indices: torch.Tensor,
                        input_shape: Sequence[int]) -> torch.Tensor:
    """The max-pool gradient by hand: ``grad_input[n, c, indices[n,c,i,j]] += grad_output[n,c,i,j]``.

    Each upstream gradient goes to its window's argmax; positions that were the max of several
    (overlapping) windows add up, all others get 0. ``indices`` are those returned by
    ``max_pool2d(..., return_indices=True)`` (flat ``h*W + w``); indices outside the plane (PyTorch's
    answer for a window that lies entirely in the padding) receive nothing.
    PyTorch: the gradient autograd computes through ``F.max_pool2d`` (``max_pool2d_with_indices_backward``).
    """
    fn = "max_pool2d_backward"
    check_tensor(grad_output, "grad_output", fn)
    check_tensor(indices, "indices", fn)
    shape = tuple(input_shape)
    if len(shape) not in (3, 4) or not all(isinstance(v, int) and v >= 0 for v in shape):
        raise ValueError(f"{fn}: input_shape must be (N, C, H, W) or (C, H, W), got {input_shape!r}")
    if indices.dtype != torch.long:
        raise TypeError(f"{fn}: indices must be an int64 tensor, got dtype {indices.dtype}")
    if grad_output.shape != indices.shape or grad_output.dim() != len(shape) or grad_output.shape[:-2] != shape[:-2]:
        raise ValueError(f"{fn}: grad_output and indices must have the same shape [*lead, H_out, W_out] with "
                         f"lead = input_shape[:-2] = {shape[:-2]}, got grad_output {tuple(grad_output.shape)} "
                         f"and indices {tuple(indices.shape)}")
    planes, area = math.prod(shape[:-2]), shape[-2] * shape[-1]
    idx = indices.reshape(planes, -1)
    grad = grad_output.reshape(planes, -1)
    inside = (idx >= 0) & (idx < area)
    grad_input = grad.new_zeros(planes, area)
    grad_input.scatter_add_(1, torch.where(inside, idx, 0), torch.where(inside, grad, 0))
    return grad_input.view(shape)

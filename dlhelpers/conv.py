"""1-D, 2-D and 3-D convolution from scratch, mirroring ``torch.nn.functional.conv{1,2,3}d``.

Two implementations of the same operation (deep learning's "convolution" is a cross-correlation):

    out[n, o, p] = bias[o] + sum_{c in group(o)} sum_{k} weight[o, c, k] * x_pad[n, g(o)*C_g + c, p*s + k*d]

where ``p`` runs over output positions, ``k`` over kernel offsets (both multi-indices in N-d),
``s`` is the stride, ``d`` the dilation, ``x_pad`` the zero-padded input and ``C_g = C_in / groups``.

* ``conv1d_naive`` / ``conv2d_naive`` / ``conv3d_naive``: explicit Python loops over output positions and
  kernel offsets. Slow, readable, differentiable.
* ``conv1d`` / ``conv2d`` / ``conv3d``: vectorized. ``im2col`` copies every receptive field into a column
  (by stacking one strided slice of the input per kernel offset), then one batched matrix multiply does all
  the dot products at once. Differentiable through autograd.

Output size per spatial dim: ``floor((n + 2p - d*(k-1) - 1) / s) + 1`` (``conv_output_size``).

Padding modes (``padding_mode=`` as in ``nn.Conv2d``; :func:`pad` mirrors ``F.pad``): ``"zeros"`` pads with 0,
``"reflect"`` mirrors without repeating the edge (``x[1], x[0] | x[0] .. x[n-1] | x[n-2]``), ``"replicate"``
repeats the edge value, ``"circular"`` wraps around (``x[n-1] | x[0] .. x[n-1] | x[0]``: the image is a torus,
which makes a stride-1 convolution exactly equivariant to circular shifts).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from dlhelpers._checks import check_tensor, ntuple

IntOrTuple = int | Sequence[int]
Padding = int | Sequence[int] | str

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv1d_naive", "conv2d_naive", "conv3d_naive",
    "conv_output_size", "im2col", "pad", "pad_zeros", "conv_nd", "conv_nd_naive", "PADDING_MODES",
]

#: ``padding_mode`` values of ``nn.Conv{1,2,3}d``
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# --------------------------------------------------------------------------- output size
def conv_output_size(in_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                     padding: IntOrTuple = 0, dilation: IntOrTuple = 1) -> int | tuple[int, ...]:
    """Length of a convolution's output along each spatial dim.

        out = floor((n + 2p - d*(k - 1) - 1) / s) + 1

    ``d*(k-1)+1`` is the *effective* (dilated) kernel size. Ints give an int; any tuple argument gives a
    tuple (ints are broadcast). Raises ``ValueError`` if the effective kernel does not fit in the padded input.
    PyTorch counterpart: the shape rule documented in ``torch.nn.Conv2d``.
    """
    fn = "conv_output_size"
    args = {"in_size": in_size, "kernel_size": kernel_size, "stride": stride, "padding": padding,
            "dilation": dilation}
    lengths = {len(v) for v in args.values() if isinstance(v, Sequence) and not isinstance(v, str)}
    if len(lengths) > 1:
        raise ValueError(f"{fn}: tuple arguments must have the same length, got {args}")
    n = next(iter(lengths)) if lengths else 1
    mins = {"in_size": 0, "kernel_size": 1, "stride": 1, "padding": 0, "dilation": 1}
    t = {name: ntuple(v, n, name, fn, minimum=mins[name]) for name, v in args.items()}
    out = []
    for i in range(n):
        size, k, s, p, d = (t[name][i] for name in ("in_size", "kernel_size", "stride", "padding", "dilation"))
        _check_fits(size + 2 * p, k, d, i, fn)
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    return out[0] if not lengths else tuple(out)


def _check_fits(padded: int, k: int, d: int, dim: int, fn: str) -> None:
    effective = d * (k - 1) + 1
    if effective > padded:
        raise ValueError(f"{fn}: effective kernel size dilation*(kernel_size-1)+1 = {d}*({k}-1)+1 = {effective} "
                         f"is larger than the padded input size {padded} in spatial dim {dim}")


# --------------------------------------------------------------------------- argument handling
def _parse_args(x: object, weight: object, bias: object, stride: IntOrTuple, padding: Padding,
                dilation: IntOrTuple, groups: int, n: int, fn: str):
    """Validate everything once; return batched x, weight, bias, stride, per-dim (left, right) pads,
    dilation, groups and whether the input was unbatched."""
    x = check_tensor(x, "input", fn)
    weight = check_tensor(weight, "weight", fn)
    layout = {1: "[N, C, L] or [C, L]", 2: "[N, C, H, W] or [C, H, W]", 3: "[N, C, D, H, W] or [C, D, H, W]"}[n]
    if x.dim() not in (n + 1, n + 2):
        raise ValueError(f"{fn}: expected input to be {n + 1}-D or {n + 2}-D ({layout}), "
                         f"got {x.dim()}-D with shape {tuple(x.shape)}")
    if weight.dim() != n + 2:
        raise ValueError(f"{fn}: expected weight to be {n + 2}-D [out_channels, in_channels/groups, *kernel], "
                         f"got {weight.dim()}-D with shape {tuple(weight.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"{fn}: input and weight must have the same dtype, got {x.dtype} and {weight.dtype}")
    unbatched = x.dim() == n + 1
    if unbatched:
        x = x.unsqueeze(0)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"{fn}: groups must be an int, got {type(groups).__name__}")
    if groups < 1:
        raise ValueError(f"{fn}: groups must be positive, got {groups}")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_out % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the output channels "
                         f"(weight.shape[0] = {c_out})")
    if c_in != weight.shape[1] * groups:
        note = f"; groups={groups} does not divide the {c_in} input channels" if c_in % groups else ""
        raise ValueError(f"{fn}: expected input with {weight.shape[1] * groups} channels "
                         f"(weight.shape[1] * groups = {weight.shape[1]} * {groups}), got {c_in}{note}")
    if bias is not None:
        bias = check_tensor(bias, "bias", fn)
        if tuple(bias.shape) != (c_out,):
            raise ValueError(f"{fn}: expected bias of shape ({c_out},) (one per output channel), "
                             f"got {tuple(bias.shape)}")
    stride = ntuple(stride, n, "stride", fn, minimum=1)
    dilation = ntuple(dilation, n, "dilation", fn, minimum=1)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions, "
                                 f"got stride={stride}")
            # total padding d*(k-1); the odd extra zero goes on the right, exactly as PyTorch does
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
        else:
            raise ValueError(f"{fn}: padding must be an int, a tuple of {n} ints, 'valid' or 'same', "
                             f"got {padding!r}")
    else:
        pads = [(p, p) for p in ntuple(padding, n, "padding", fn, minimum=0)]
    for i, (size, k, d, (left, right)) in enumerate(zip(x.shape[2:], kernel, dilation, pads)):
        _check_fits(size + left + right, k, d, i, fn)
    return x, weight, bias, stride, pads, dilation, groups, unbatched


def pad_zeros(x: torch.Tensor, pads: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Zero-pad the trailing ``len(pads)`` dims of ``x``; ``pads[i] = (left, right)`` for spatial dim ``i``.

    Differentiable (a copy into a zero tensor). PyTorch counterpart: ``F.pad(x, ..., mode="constant")``
    (whose pad list runs from the *last* dim backwards).
    """
    if all(p == (0, 0) for p in pads):
        return x
    lead = x.dim() - len(pads)
    shape = list(x.shape[:lead]) + [s + a + b for s, (a, b) in zip(x.shape[lead:], pads)]
    out = x.new_zeros(shape)
    out[(..., *(slice(a, a + s) for s, (a, _) in zip(x.shape[lead:], pads)))] = x
    return out


def _pad_index(n: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Source index of every padded position ``j = -left .. n + right - 1`` along one axis of length ``n``.

    reflect: ``|j|``, then ``2(n-1) - j`` past the right edge; replicate: ``clamp(j, 0, n-1)``;
    circular: ``j mod n``.
    """
    j = torch.arange(-left, n + right)
    if mode == "reflect":
        j = j.abs()
        return torch.where(j > n - 1, 2 * (n - 1) - j, j)
    if mode == "replicate":
        return j.clamp(0, n - 1)
    return j.remainder(n)                                                    # circular


def _pad_mode(x: torch.Tensor, pads: Sequence[tuple[int, int]], mode: str, fn: str) -> torch.Tensor:
    """Pad the trailing ``len(pads)`` dims by gathering rows: ``x.index_select(dim, source index)`` per dim.

    Differentiable: the backward of ``index_select`` adds each padded copy's gradient back onto its source.
    """
    lead = x.dim() - len(pads)
    for i, (left, right) in enumerate(pads):
        n = x.shape[lead + i]
        if mode == "reflect" and max(left, right) >= n:
            raise ValueError(f"{fn}: reflect padding must be smaller than the input size, got padding "
                             f"({left}, {right}) for size {n} in spatial dim {i}")
        if mode == "circular" and max(left, right) > n:
            raise ValueError(f"{fn}: circular padding must be at most the input size (it wraps around once), "
                             f"got padding ({left}, {right}) for size {n} in spatial dim {i}")
        if left or right:
            x = x.index_select(lead + i, _pad_index(n, left, right, mode).to(x.device))
    return x


def pad(x: torch.Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> torch.Tensor:
    """Pad ``x`` like ``F.pad(x, pad, mode, value)`` (non-negative pads).

    ``pad = (left_last, right_last, left_second_last, right_second_last, ...)`` runs from the *last* dim
    backwards, as in torch. ``mode``: ``"constant"`` (fill with ``value``, default 0), ``"reflect"``,
    ``"replicate"`` or ``"circular"`` (see the module docstring). As in torch, the non-constant modes pad the
    last 1, 2 or 3 dims of an input with one or two more dims (``[C, L]`` / ``[N, C, L]`` for 1-D ...).
    """
    fn = "pad"
    x = check_tensor(x, "input", fn)
    modes = ("constant", "reflect", "replicate", "circular")
    if mode not in modes:
        raise ValueError(f"{fn}: mode must be one of {modes}, got {mode!r}")
    if not isinstance(pad, Sequence) or isinstance(pad, str) or len(pad) % 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in pad):
        raise TypeError(f"{fn}: pad must be a tuple of an even number of ints (left, right per dim, last dim "
                        f"first), got {pad!r}")
    if any(v < 0 for v in pad):
        raise ValueError(f"{fn}: pad must be non-negative (cropping is not supported), got {tuple(pad)}")
    k = len(pad) // 2
    if k > x.dim():
        raise ValueError(f"{fn}: pad {tuple(pad)} pads {k} dims but the input has only {x.dim()}")
    if mode != "constant" and (k not in (1, 2, 3) or x.dim() not in (k + 1, k + 2)):
        raise ValueError(f"{fn}: {mode} padding pads the last 1, 2 or 3 dims of a tensor with 1 or 2 more "
                         f"dims, got pad of length {len(pad)} for a {x.dim()}-D input")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"{fn}: value is only used with mode='constant', got value={value} with mode={mode!r}")
    pads = [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]       # first padded dim first
    if mode == "constant":
        out = pad_zeros(x, pads)
        if value:                                                           # fill the border, keep x inside
            inside = pad_zeros(torch.ones_like(x, dtype=torch.bool), pads)
            out = torch.where(inside, out, torch.as_tensor(value, dtype=x.dtype, device=x.device))
        return out
    return _pad_mode(x, pads, mode, fn)


def _pad_input(x: torch.Tensor, pads: Sequence[tuple[int, int]], padding_mode: str, fn: str) -> torch.Tensor:
    """Pad a conv input: zeros (``pad_zeros``) or one of the other ``nn.Conv*d`` padding modes."""
    return pad_zeros(x, pads) if padding_mode == "zeros" else _pad_mode(x, pads, padding_mode, fn)


# --------------------------------------------------------------------------- vectorized
def _im2col(xp: torch.Tensor, kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int]) -> torch.Tensor:
    """``[N, C, *S]`` (already padded) -> ``[N, C * prod(kernel), *out]``, no argument checks.

    For kernel offset ``k`` the inputs seen by all output positions form one strided slice of ``xp``:
    ``xp[..., k*d : k*d + s*(out-1) + 1 : s]`` (per spatial dim). Stacking the ``prod(kernel)`` slices after
    the channel dim *is* im2col: one copy, channel-major then kernel offsets in row-major order. Autograd
    turns each slice's backward into a strided add, i.e. col2im.
    """
    out_shape = [(size - d * (k - 1) - 1) // s + 1 for size, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)]
    shifted = []
    for off in itertools.product(*map(range, kernel)):                      # every kernel offset
        idx = tuple(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(off, dilation, stride, out_shape))
        shifted.append(xp[(slice(None), slice(None), *idx)])                 # [N, C, *out], a view
    cols = torch.stack(shifted, dim=2)                                       # [N, C, prod(k), *out]
    return cols.reshape(xp.shape[0], xp.shape[1] * math.prod(kernel), *out_shape)


def im2col(x: torch.Tensor, kernel_size: IntOrTuple, dilation: IntOrTuple = 1, padding: IntOrTuple = 0,
           stride: IntOrTuple = 1) -> torch.Tensor:
    """Extract sliding blocks: ``[N, C, *S]`` -> ``[N, C * prod(kernel), L]`` (L = number of output positions).

    Column ``l`` holds the receptive field of output position ``l`` (channel-major, then kernel offsets in
    row-major order). For 2-D inputs this equals ``F.unfold`` (``nn.Unfold``), which has the same argument
    order; here 1-D and 3-D work too (the number of spatial dims is ``x.dim() - 2``).
    """
    fn = "im2col"
    check_tensor(x, "input", fn)
    if x.dim() not in (3, 4, 5):
        raise ValueError(f"{fn}: expected input to be 3-D, 4-D or 5-D [N, C, *spatial], "
                         f"got {x.dim()}-D with shape {tuple(x.shape)}")
    n = x.dim() - 2
    kernel = ntuple(kernel_size, n, "kernel_size", fn, minimum=1)
    dilation = ntuple(dilation, n, "dilation", fn, minimum=1)
    padding = ntuple(padding, n, "padding", fn, minimum=0)
    stride = ntuple(stride, n, "stride", fn, minimum=1)
    for i, (size, k, p, d) in enumerate(zip(x.shape[2:], kernel, padding, dilation)):
        _check_fits(size + 2 * p, k, d, i, fn)
    cols = _im2col(pad_zeros(x, [(p, p) for p in padding]), kernel, stride, dilation)
    return cols.flatten(2)


def conv_nd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: IntOrTuple,
            padding: Padding, dilation: IntOrTuple, groups: int, n: int, fn: str = "conv_nd",
            padding_mode: str = "zeros") -> torch.Tensor:
    """Vectorized N-d convolution (n = 1, 2, 3): im2col + one batched matrix multiply.

    cols[n, g] : [C_g * prod(k), L]        (column l = receptive field of output position l)
    w[g]       : [O_g, C_g * prod(k)]
    out[n, g]  = w[g] @ cols[n, g] (+ bias) -> [O_g, L]; stacked over (n, g) this is [N, C_out, *out].

    One GEMM per (sample, group) inside a single ``bmm`` call: L = H_out*W_out columns per GEMM keeps the
    working set cache-sized (measured faster on CPU than one huge [C_out, C*k*k] @ [C*k*k, N*L] product) and
    the result comes out in [N, C_out, ...] layout with no transpose copy.

    ``padding_mode`` (``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``) says what the padding
    holds, as ``nn.Conv{n}d(padding_mode=...)``: the input is padded first, then convolved with no padding.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{fn}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    x, weight, bias, stride, pads, dilation, groups, unbatched = _parse_args(
        x, weight, bias, stride, padding, dilation, groups, n, fn)
    N = x.shape[0]
    C_out = weight.shape[0]
    og = C_out // groups
    cols = _im2col(_pad_input(x, pads, padding_mode, fn), weight.shape[2:], stride, dilation)   # [N, C*prod(k), *out]
    out_shape = cols.shape[2:]
    cols = cols.reshape(N * groups, cols.shape[1] // groups, math.prod(out_shape))   # a view: groups split channels
    fan_in = cols.shape[1]                                                   # C_g * prod(k)
    w = weight.reshape(1, groups, og, fan_in).expand(N, -1, -1, -1).reshape(N * groups, og, fan_in)
    if bias is None:
        out = torch.bmm(w, cols)
    else:
        b = bias.reshape(1, groups, og, 1).expand(N, -1, -1, -1).reshape(N * groups, og, 1)
        out = torch.baddbmm(b, w, cols)
    out = out.reshape(N, C_out, *out_shape)
    return out[0] if unbatched else out


def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros"
           ) -> torch.Tensor:
    """1-D convolution (cross-correlation), vectorized. Same signature and result as ``F.conv1d``; with
    ``padding_mode`` (not an ``F`` argument) the same as ``nn.Conv1d(..., padding_mode=...)``.

    x [N, C_in, L] or [C_in, L]; weight [C_out, C_in/groups, k]; bias [C_out] or None.
    out[n, o, i] = b[o] + sum_{c, j} w[o, c, j] * x_pad[n, g*C_g + c, i*s + j*d],  L_out = conv_output_size(...)
    """
    return conv_nd(x, weight, bias, stride, padding, dilation, groups, 1, "conv1d", padding_mode)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros"
           ) -> torch.Tensor:
    """2-D convolution (cross-correlation), vectorized. Same signature and result as ``F.conv2d``; with
    ``padding_mode`` (not an ``F`` argument) the same as ``nn.Conv2d(..., padding_mode=...)``.

    x [N, C_in, H, W] or [C_in, H, W]; weight [C_out, C_in/groups, kH, kW]; bias [C_out] or None.
    out[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, g*C_g + c, i*s_h + u*d_h, j*s_w + v*d_w]
    """
    return conv_nd(x, weight, bias, stride, padding, dilation, groups, 2, "conv2d", padding_mode)


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros"
           ) -> torch.Tensor:
    """3-D convolution (cross-correlation), vectorized. Same signature and result as ``F.conv3d``; with
    ``padding_mode`` the same as ``nn.Conv3d(..., padding_mode=...)``.

    x [N, C_in, D, H, W] or [C_in, D, H, W]; weight [C_out, C_in/groups, kD, kH, kW]; bias [C_out] or None.
    The 2-D formula with one more spatial index.
    """
    return conv_nd(x, weight, bias, stride, padding, dilation, groups, 3, "conv3d", padding_mode)


# --------------------------------------------------------------------------- naive (teaching) versions
def _grouped_matvec(pixels: torch.Tensor, w: torch.Tensor, groups: int) -> torch.Tensor:
    """pixels [N, C] (one input position, all channels) times w [C_out, C/groups] per group -> [N, C_out]."""
    N, C = pixels.shape
    C_out = w.shape[0]
    p = pixels.reshape(N, groups, C // groups)
    wg = w.reshape(groups, C_out // groups, C // groups)
    return torch.einsum("ngc,goc->ngo", p, wg).reshape(N, C_out)


def conv_nd_naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: IntOrTuple,
                  padding: Padding, dilation: IntOrTuple, groups: int, n: int,
                  fn: str = "conv_nd_naive") -> torch.Tensor:
    """N-d convolution by loops over every output position and every kernel offset (any n)."""
    x, weight, bias, stride, pads, dilation, groups, unbatched = _parse_args(
        x, weight, bias, stride, padding, dilation, groups, n, fn)
    xp = pad_zeros(x, pads)
    kernel = tuple(weight.shape[2:])
    out_shape = [(size - d * (k - 1) - 1) // s + 1 for size, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)]
    columns = []
    for pos in itertools.product(*map(range, out_shape)):              # every output position
        acc = x.new_zeros(x.shape[0], weight.shape[0]) if bias is None else bias.expand(x.shape[0], -1)
        for off in itertools.product(*map(range, kernel)):             # every kernel offset
            idx = tuple(p * s + k * d for p, k, s, d in zip(pos, off, stride, dilation))
            acc = acc + _grouped_matvec(xp[(slice(None), slice(None), *idx)], weight[(..., *off)], groups)
        columns.append(acc)
    out = torch.stack(columns, dim=-1).reshape(x.shape[0], weight.shape[0], *out_shape)
    return out[0] if unbatched else out


def conv1d_naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> torch.Tensor:
    """1-D convolution with explicit loops (teaching version of ``conv1d`` / ``F.conv1d``).

    for every output position i:  out[:, :, i] = b + sum_j  W[:, :, j] @ x_pad[:, :, i*s + j*d]
    """
    x, weight, bias, (s,), ((pl, pr),), (d,), groups, unbatched = _parse_args(
        x, weight, bias, stride, padding, dilation, groups, 1, "conv1d_naive")
    xp = pad_zeros(x, [(pl, pr)])
    N, C_out, k = x.shape[0], weight.shape[0], weight.shape[2]
    L_out = (xp.shape[2] - d * (k - 1) - 1) // s + 1
    columns = []
    for i in range(L_out):                                   # output position
        acc = x.new_zeros(N, C_out) if bias is None else bias.expand(N, C_out)
        for j in range(k):                                   # kernel offset
            acc = acc + _grouped_matvec(xp[:, :, i * s + j * d], weight[:, :, j], groups)
        columns.append(acc)
    out = torch.stack(columns, dim=-1)                       # [N, C_out, L_out]
    return out[0] if unbatched else out


def conv2d_naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> torch.Tensor:
    """2-D convolution with explicit loops (teaching version of ``conv2d`` / ``F.conv2d``).

    for every output pixel (i, j):
        out[:, :, i, j] = b + sum_{u, v} W[:, :, u, v] @ x_pad[:, :, i*s_h + u*d_h, j*s_w + v*d_w]
    """
    x, weight, bias, (sh, sw), pads, (dh, dw), groups, unbatched = _parse_args(
        x, weight, bias, stride, padding, dilation, groups, 2, "conv2d_naive")
    xp = pad_zeros(x, pads)
    N, C_out, kh, kw = x.shape[0], weight.shape[0], weight.shape[2], weight.shape[3]
    H_out = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    W_out = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    columns = []
    for i in range(H_out):                                   # output row
        for j in range(W_out):                               # output column
            acc = x.new_zeros(N, C_out) if bias is None else bias.expand(N, C_out)
            for u in range(kh):                              # kernel row
                for v in range(kw):                          # kernel column
                    pixel = xp[:, :, i * sh + u * dh, j * sw + v * dw]     # [N, C_in]
                    acc = acc + _grouped_matvec(pixel, weight[:, :, u, v], groups)
            columns.append(acc)
    out = torch.stack(columns, dim=-1).reshape(N, C_out, H_out, W_out)
    return out[0] if unbatched else out


def conv3d_naive(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1) -> torch.Tensor:
    """3-D convolution with explicit loops (teaching version of ``conv3d`` / ``F.conv3d``).

    for every output voxel (a, i, j):
        out[:, :, a, i, j] = b + sum_{t, u, v} W[:, :, t, u, v] @ x_pad[:, :, a*s_d + t*d_d,
                                                                         i*s_h + u*d_h, j*s_w + v*d_w]
    """
    return conv_nd_naive(x, weight, bias, stride, padding, dilation, groups, 3, "conv3d_naive")

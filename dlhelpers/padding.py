"""Padding that gives a wanted output size, transposed-convolution and upsampling sizes.

Along one dimension a convolution or pooling layer with kernel ``k``, stride ``s`` and dilation ``d``
(effective kernel ``k_eff = d (k - 1) + 1``) and total padding ``P = left + right`` outputs

    n_out = floor((n + P - k_eff) / s) + 1,

so the paddings that give ``n_out`` are exactly the integers ``P`` in

    [(n_out - 1) s + k_eff - n,  (n_out - 1) s + k_eff - n + s - 1]

(intersected with ``P >= 0``). :func:`solve_padding` returns the smallest; with ``symmetric=True``
(what ``nn.Conv2d(padding=p)`` can express) the smallest *even* one. When the interval holds no valid
``P`` it raises ``ValueError`` and names the nearest options.

"Same" padding (``n_out = ceil(n / s)``, :func:`same_padding`) is the smallest such ``P``, split
``left = P // 2``, ``right = P - left``: the odd pixel goes to the right/bottom. That is TensorFlow's
``padding="SAME"`` and timm's ``pad_same``, and PyTorch's ``padding="same"`` for stride 1 (the only
stride it accepts); Caffe and ``nn.Conv2d(padding=p)`` can only pad symmetrically, so an even kernel
cannot be "same" there. Apply an asymmetric result with ``F.pad(x, to_pad(...))``.

A transposed convolution (the gradient of a convolution) maps ``n`` to

    n_out = (n - 1) s - 2 p + d (k - 1) + output_padding + 1,    0 <= output_padding < max(s, d),

so ``output_padding`` picks which of the ``s`` input sizes that a strided convolution maps to the same
output it recovers (:func:`solve_output_padding`). Nearest/linear upsampling by ``scale_factor``
outputs ``floor(n * scale_factor)`` (:func:`interpolate_output_size`).

PyTorch counterparts: the output sizes of ``F.conv1d/2d``, ``F.conv_transpose1d/2d`` and
``F.interpolate``, and ``F.conv2d(padding="same")``; checked on random configurations in
``tests/test_padding.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dlhelpers._checks import check_number, ntuple
from dlhelpers.receptive import output_length

__all__ = ["Padding", "conv_transpose_output_size", "interpolate_output_size", "same_padding", "solve_output_padding",
           "solve_padding", "to_pad"]

IntOrTuple = int | Sequence[int]


@dataclass(frozen=True)
class Padding:
    """Padding of one dimension: ``left`` (top) and ``right`` (bottom) pixels, and the output it gives."""

    left: int
    right: int
    output: int

    @property
    def total(self) -> int:
        return self.left + self.right

    @property
    def symmetric(self) -> bool:
        """Expressible as ``nn.Conv*d(padding=left)``."""
        return self.left == self.right


def _dims(fn: str, **args: IntOrTuple) -> tuple[int, dict[str, tuple[int, ...]]]:
    """Broadcast int / tuple arguments to one length (an int everywhere means one dimension)."""
    lengths = {len(v) for v in args.values() if isinstance(v, Sequence) and not isinstance(v, str)}
    if len(lengths) > 1:
        raise ValueError(f"{fn}: tuple arguments must have the same length, got {args}")
    nd = next(iter(lengths)) if lengths else 1
    mins = {"input_size": 1, "output_size": 1, "kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0,
            "output_padding": 0}
    return nd, {name: ntuple(v, nd, name, fn, minimum=mins[name]) for name, v in args.items()}


def _solve_1d(n: int, out: int, k: int, s: int, d: int, symmetric: bool, fn: str, dim: str) -> Padding:
    k_eff = d * (k - 1) + 1
    lo = (out - 1) * s + k_eff - n          # the smallest total padding that reaches `out`
    hi = lo + s - 1                          # the largest
    where = f"{dim}input {n}, kernel {k}, stride {s}, dilation {d}"
    if hi < 0:
        smallest = output_length(n, k, s, 0, d)
        raise ValueError(f"{fn}: no padding >= 0 gives output {out} ({where}): padding 0 already gives "
                         f"{smallest}; nearest options: output {smallest} with padding 0, or crop "
                         f"{-hi}..{-lo} pixels first (or use a larger stride)")
    first = max(lo, 0)
    if not symmetric:
        return Padding(first // 2, first - first // 2, out)
    even = first + first % 2
    if even <= hi:
        return Padding(even // 2, even // 2, out)
    below, above = (first - 1) // 2, (first + 1) // 2
    options = [f"asymmetric ({first // 2}, {first - first // 2}) with F.pad gives {out}"]
    if below >= 0:
        options.append(f"padding={below} gives {output_length(n, k, s, below, d)}")
    options.append(f"padding={above} gives {output_length(n, k, s, above, d)}")
    raise ValueError(f"{fn}: no symmetric padding gives output {out} ({where}): the total padding must be "
                     f"{first} (odd); nearest options: " + "; ".join(options))


def solve_padding(input_size: IntOrTuple, output_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                  dilation: IntOrTuple = 1, *, symmetric: bool = False) -> Padding | tuple[Padding, ...]:
    """Smallest padding with ``floor((n + left + right - k_eff) / s) + 1 == output_size``.

    Ints give one :class:`Padding`, tuples one per dimension. ``symmetric=True`` insists on
    ``left == right`` (``nn.Conv2d(padding=p)``). Raises ``ValueError`` when no padding ``>= 0`` (or no
    symmetric one) reaches ``output_size``, naming the nearest options.
    PyTorch counterpart: the output size of ``F.conv2d(F.pad(x, to_pad(result)), w, stride=s, dilation=d)``.
    """
    fn = "solve_padding"
    nd, t = _dims(fn, input_size=input_size, output_size=output_size, kernel_size=kernel_size, stride=stride,
                  dilation=dilation)
    many = nd > 1 or any(isinstance(v, Sequence) for v in (input_size, output_size, kernel_size, stride, dilation))
    out = tuple(_solve_1d(t["input_size"][i], t["output_size"][i], t["kernel_size"][i], t["stride"][i],
                          t["dilation"][i], symmetric, fn, f"dim {i}: " if many else "") for i in range(nd))
    return out if many else out[0]


def same_padding(input_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 dilation: IntOrTuple = 1) -> Padding | tuple[Padding, ...]:
    """TensorFlow-style "SAME": output ``ceil(n / s)``, the odd pixel on the right.

    ``P = max((ceil(n / s) - 1) s + k_eff - n, 0)``, ``left = P // 2``. Counterparts: timm's
    ``pad_same``/``get_same_padding``, and ``F.conv2d(padding="same")`` for stride 1.
    """
    fn = "same_padding"
    nd, t = _dims(fn, input_size=input_size, kernel_size=kernel_size, stride=stride, dilation=dilation)
    out = tuple(-(-n // s) for n, s in zip(t["input_size"], t["stride"]))
    shape = out if nd > 1 or not isinstance(input_size, int) else out[0]
    return solve_padding(input_size, shape, kernel_size, stride, dilation)


def to_pad(padding: Padding | Sequence[Padding]) -> tuple[int, ...]:
    """The ``pad`` argument of ``F.pad`` for paddings given first-dim-first: ``(W_l, W_r, H_l, H_r)``."""
    items = [padding] if isinstance(padding, Padding) else list(padding)
    if not items or not all(isinstance(p, Padding) for p in items):
        raise TypeError(f"to_pad: expected a Padding or a sequence of Padding, got {type(padding).__name__}")
    return tuple(v for p in reversed(items) for v in (p.left, p.right))


def conv_transpose_output_size(input_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                               padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                               dilation: IntOrTuple = 1) -> int | tuple[int, ...]:
    """``(n - 1) s - 2 p + d (k - 1) + output_padding + 1`` per dimension.

    Raises ``ValueError`` unless ``output_padding < max(stride, dilation)`` (PyTorch's rule) and the result is
    positive. Counterpart: the spatial size of ``F.conv_transpose2d`` / ``nn.ConvTranspose2d``'s output.
    """
    fn = "conv_transpose_output_size"
    nd, t = _dims(fn, input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding,
                  output_padding=output_padding, dilation=dilation)
    out = []
    for i in range(nd):
        n, k, s, p, op, d = (t[key][i] for key in ("input_size", "kernel_size", "stride", "padding",
                                                   "output_padding", "dilation"))
        if op >= max(s, d):
            raise ValueError(f"{fn}: output_padding must be smaller than max(stride, dilation) = {max(s, d)}, "
                             f"got {op}")
        size = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if size < 1:
            raise ValueError(f"{fn}: padding {p} is too large: the output would be {size} (input {n}, kernel {k}, "
                             f"stride {s}, dilation {d})")
        out.append(size)
    return out[0] if nd == 1 and isinstance(input_size, int) else tuple(out)


def solve_output_padding(input_size: int, output_size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                         dilation: int = 1) -> int:
    """The ``output_padding`` that makes a transposed convolution output ``output_size`` (one dimension).

    Typical use: undo a strided convolution that mapped ``output_size`` to ``input_size`` (U-Net
    decoders, autoencoders). Raises ``ValueError`` with the reachable range when none works.
    """
    fn = "solve_output_padding"
    _, t = _dims(fn, input_size=input_size, output_size=output_size, kernel_size=kernel_size, stride=stride,
                 padding=padding, dilation=dilation)
    n, out, k, s, p, d = (t[key][0] for key in ("input_size", "output_size", "kernel_size", "stride", "padding",
                                               "dilation"))
    base = (n - 1) * s - 2 * p + d * (k - 1) + 1
    limit = max(s, d)
    if not 0 <= out - base < limit:
        raise ValueError(f"{fn}: no output_padding gives output {out} (input {n}, kernel {k}, stride {s}, padding "
                         f"{p}, dilation {d}): output_padding 0..{limit - 1} gives {base}..{base + limit - 1}; "
                         f"nearest option: {min(max(out, base), base + limit - 1)}, or change padding by "
                         f"{(base - out) / 2:g} to shift the range")
    return out - base


def interpolate_output_size(input_size: IntOrTuple, size: IntOrTuple | None = None,
                            scale_factor: float | Sequence[float] | None = None) -> int | tuple[int, ...]:
    """Output size of ``F.interpolate`` / ``nn.Upsample``: ``size``, or ``floor(n * scale_factor)``.

    Exactly one of ``size`` and ``scale_factor`` must be given (as in PyTorch).
    """
    fn = "interpolate_output_size"
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}: give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    single = isinstance(input_size, int)
    sizes = ntuple(input_size, 1 if single else len(input_size), "input_size", fn, minimum=1)
    if size is not None:
        out = ntuple(size, len(sizes), "size", fn, minimum=1)
    else:
        scales = [scale_factor] * len(sizes) if not isinstance(scale_factor, Sequence) else list(scale_factor)
        if len(scales) != len(sizes):
            raise ValueError(f"{fn}: expected {len(sizes)} scale factors, got {scale_factor!r}")
        scales = [check_number(v, "scale_factor", fn) for v in scales]
        if any(v <= 0 for v in scales):
            raise ValueError(f"{fn}: scale_factor must be positive, got {scale_factor!r}")
        out = tuple(math.floor(float(n) * v) for n, v in zip(sizes, scales))
    return out[0] if single else tuple(out)

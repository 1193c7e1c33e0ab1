"""Layer-by-layer output shapes and receptive-field arithmetic for sequential CNNs.

For every layer of an ``nn.Sequential`` (possibly nested) made of ``nn.Conv{1,2,3}d``,
``nn.MaxPool{1,2,3}d``, ``nn.AvgPool{1,2,3}d``, adaptive pools (when the windows are uniform)
and shape-preserving layers (activations, batch/instance/group norm, dropout, identity),
:func:`receptive_field` computes, per spatial dimension,

* the output length      ``n_out = floor((n_in + p_l + p_r - k_eff) / s) + 1``   (``ceil`` for ``ceil_mode``)
* the receptive field    ``r_out = r_in + (k_eff - 1) * j_in``
* the jump (eff. stride) ``j_out = j_in * s``
* the start              ``start_out = start_in + ((k_eff - 1) / 2 - p_l) * j_in``

with the effective kernel ``k_eff = d * (k - 1) + 1`` and the input row ``r = 1, j = 1, start = 0``
(Dumoulin & Visin, "A guide to convolution arithmetic", 2016; Araujo, Norris & Sim, "Computing
receptive fields of convolutional neural networks", Distill 2019). ``start`` is the centre of the
first output unit in input coordinates (input pixel ``i`` has centre ``i``); unit ``u`` of a layer
sees the input interval ``start + u * j -+ (r - 1) / 2`` (see :meth:`LayerInfo.box`).

The walk stops at the first ``nn.Flatten``: after it every unit sees the whole input, so the
classifier head has no spatial receptive field to report. Any other layer type raises a
``TypeError`` naming it (e.g. ``nn.Linear`` applied before ``Flatten``).

PyTorch counterparts: shapes and parameter counts are what a forward pass (or
``torchinfo.summary``) reports; the receptive field is what autograd reports as the non-zero
region of ``|d out[unit] / d input|`` -- :func:`empirical_receptive_field` computes exactly that, and
:func:`effective_receptive_field` gives the gradient map of a real, trained model (Luo et al.,
"Understanding the effective receptive field in deep CNNs", NeurIPS 2016).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "EmpiricalRF",
    "LayerInfo",
    "effective_receptive_field",
    "empirical_receptive_field",
    "format_table",
    "output_length",
    "receptive_field",
    "receptive_field_size",
    "rf_step",
    "shape_table",
    "supported_layers",
    "theoretical_box_fraction",
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
#: Layers that change neither the shape nor the receptive field (element-wise or per-channel).
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Softplus,
                nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                nn.InstanceNorm3d, nn.GroupNorm)
#: Layers whose class name fixes the number of spatial dimensions they accept.
_FIXED_RANK = {nn.BatchNorm1d: 1, nn.BatchNorm2d: 2, nn.BatchNorm3d: 3,
               nn.Dropout1d: 1, nn.Dropout2d: 2, nn.Dropout3d: 3,
               nn.InstanceNorm1d: 1, nn.InstanceNorm2d: 2, nn.InstanceNorm3d: 3}


def supported_layers() -> list[str]:
    """Names of the layer types :func:`receptive_field` understands (sorted)."""
    types = _CONV + _MAXPOOL + _AVGPOOL + _ADAPTIVE + _ELEMENTWISE + (nn.Sequential, nn.Flatten)
    return sorted({t.__name__ for t in types})


# --------------------------------------------------------------------------- scalar arithmetic
def output_length(n: int, kernel_size: int, stride: int = 1, padding: int | tuple[int, int] = 0,
                  dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a conv/pool along one dimension (may be <= 0 when the input is too small).

    ``floor((n + p_l + p_r - d (k - 1) - 1) / s) + 1``; with ``ceil_mode`` the division rounds up
    but the last window must start inside the input or the left padding (PyTorch's rule).
    ``padding`` is an int (both sides) or ``(left, right)``. PyTorch counterpart: the spatial
    sizes of ``F.conv1d`` / ``F.max_pool1d(..., ceil_mode=...)`` outputs.
    """
    p_l, p_r = (padding, padding) if isinstance(padding, int) else padding
    span = n + p_l + p_r - dilation * (kernel_size - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + p_l:
        out -= 1
    return out


def rf_step(r: int, j: int, start: float, kernel_size: int, stride: int = 1, padding: int = 0,
            dilation: int = 1) -> tuple[int, int, float]:
    """One layer of receptive-field arithmetic along one dimension.

    ``k_eff = d (k - 1) + 1``; ``r_out = r + (k_eff - 1) j``; ``j_out = j s``;
    ``start_out = start + ((k_eff - 1) / 2 - p_left) j``. Returns ``(r_out, j_out, start_out)``.
    """
    k_eff = dilation * (kernel_size - 1) + 1
    return r + (k_eff - 1) * j, j * stride, start + ((k_eff - 1) / 2 - padding) * j


def receptive_field_size(kernel_sizes: Sequence[int], strides: Sequence[int] | int = 1,
                         dilations: Sequence[int] | int = 1) -> int:
    """Closed form ``r_L = 1 + sum_l (k_eff,l - 1) * prod_{i<l} s_i`` for a stack of layers."""
    n = len(kernel_sizes)
    strides = [strides] * n if isinstance(strides, int) else list(strides)
    dilations = [dilations] * n if isinstance(dilations, int) else list(dilations)
    if len(strides) != n or len(dilations) != n:
        raise ValueError(f"receptive_field_size: expected {n} strides and dilations, got "
                         f"{len(strides)} and {len(dilations)}")
    r, jump = 1, 1
    for k, s, d in zip(kernel_sizes, strides, dilations):
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"receptive_field_size: kernel, stride and dilation must be positive, "
                             f"got k={k}, s={s}, d={d}")
        r += d * (k - 1) * jump
        jump *= s
    return r


# --------------------------------------------------------------------------- per-layer records
@dataclass(frozen=True)
class LayerInfo:
    """Shape and receptive field after one layer; per-spatial-dimension tuples.

    ``kernel`` is the effective kernel ``d (k - 1) + 1``, ``stride`` the layer's stride and
    ``padding`` its left padding (all 1/1/0 for shape-preserving layers). ``size``, ``jump`` and
    ``start`` are the receptive field, the distance between neighbouring units and the centre of
    unit 0, all in input-pixel coordinates.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    size: tuple[int, ...]
    jump: tuple[int, ...]
    start: tuple[float, ...]

    def centre(self, position: Sequence[int]) -> tuple[float, ...]:
        """Centre of output unit ``position`` in input coordinates: ``start + position * jump``."""
        pos = _check_position(position, self.output_shape[2:], "LayerInfo.centre")
        return tuple(st + u * j for st, u, j in zip(self.start, pos, self.jump))

    def box(self, position: Sequence[int], clip_to: Sequence[int] | None = None
            ) -> tuple[tuple[int, int], ...]:
        """Input interval ``(lo, hi)`` (inclusive) seen by unit ``position``, per spatial dimension.

        ``lo = start + u j - (r - 1) / 2`` and ``hi = lo + r - 1`` (always integers). With ``clip_to``
        (the input's spatial shape) the interval is intersected with ``[0, n - 1]``.
        """
        out = []
        for c, r in zip(self.centre(position), self.size):
            lo = round(c - (r - 1) / 2)
            out.append((lo, lo + r - 1))
        if clip_to is not None:
            if len(clip_to) != len(out):
                raise ValueError(f"LayerInfo.box: clip_to must have {len(out)} sizes, got {tuple(clip_to)}")
            out = [(max(lo, 0), min(hi, n - 1)) for (lo, hi), n in zip(out, clip_to)]
        return tuple(out)


def _check_position(position: Sequence[int] | None, spatial: Sequence[int], fn: str) -> tuple[int, ...]:
    if position is None:
        return tuple((n - 1) // 2 for n in spatial)
    if isinstance(position, int):
        position = (position,)
    pos = tuple(position)
    if len(pos) != len(spatial) or not all(isinstance(u, int) and 0 <= u < n for u, n in zip(pos, spatial)):
        raise ValueError(f"{fn}: position must be {len(spatial)} ints inside the output grid "
                         f"{tuple(spatial)}, got {tuple(position)}")
    return pos


# --------------------------------------------------------------------------- walking the model
def _iter_layers(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Leaves of a (nested) ``nn.Sequential`` with dotted names; a single layer is its own leaf."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _iter_layers(child, f"{prefix}.{child_name}" if prefix else child_name)
    else:
        yield prefix or type(module).__name__, module


def _layer_dim(layer: nn.Module) -> int | None:
    """Number of spatial dimensions a layer requires (``None`` = any)."""
    for family in (_CONV, _MAXPOOL, _AVGPOOL, _ADAPTIVE[:3], _ADAPTIVE[3:]):
        for dim, cls in enumerate(family, start=1):
            if isinstance(layer, cls):
                return dim
    return _FIXED_RANK.get(type(layer))  # BatchNorm1d sees [N, C, L] here: one spatial dim


def _geometry(name: str, layer: nn.Module, spatial: tuple[int, ...], fn: str
              ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(k_eff, stride, pad_left, pad_right, out_len)`` per spatial dim for one layer."""
    nd = len(spatial)
    label = f"layer '{name}' ({type(layer).__name__})"
    if isinstance(layer, _ELEMENTWISE):
        return (1,) * nd, (1,) * nd, (0,) * nd, (0,) * nd, spatial
    if isinstance(layer, _ADAPTIVE):
        size = layer.output_size
        size = (size,) * nd if isinstance(size, int) or size is None else tuple(size)
        size = tuple(n if o is None else o for o, n in zip(size, spatial))
        if any(n % o for n, o in zip(spatial, size)):
            raise ValueError(f"{fn}: {label} maps spatial size {spatial} to {size}; the pooling windows "
                             f"are only uniform (one receptive field for all units) when each output size "
                             f"divides the input size")
        ks = tuple(n // o for n, o in zip(spatial, size))
        return ks, ks, (0,) * nd, (0,) * nd, size
    k = _as_tuple(layer.kernel_size, nd)
    s = _as_tuple(layer.stride if layer.stride is not None else layer.kernel_size, nd)
    d = _as_tuple(getattr(layer, "dilation", 1), nd)
    ceil_mode = bool(getattr(layer, "ceil_mode", False))
    if isinstance(layer.padding, str):  # Conv*d padding="same" / "valid"
        total = [di * (ki - 1) if layer.padding == "same" else 0 for ki, di in zip(k, d)]
        p_l = tuple(t // 2 for t in total)
        p_r = tuple(t - t // 2 for t in total)
    else:
        p_l = p_r = _as_tuple(layer.padding, nd)
    k_eff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    if isinstance(layer, _MAXPOOL + _AVGPOOL):
        limit = tuple(ki // 2 for ki in k)
        if any(p > lim for p, lim in zip(p_l, limit)):
            raise ValueError(f"{fn}: {label} has padding {p_l}; PyTorch allows at most half the "
                             f"kernel size, {limit}")
    if isinstance(layer, nn.AvgPool3d) and any(n < ki for n, ki in zip(spatial, k)):
        # torch's avg_pool3d (only it: the 1-D/2-D and max pools accept this) checks the unpadded size
        raise ValueError(f"{fn}: input too small: {label} with kernel {k} gets spatial size {spatial}; "
                         f"PyTorch's AvgPool3d requires every input size >= kernel_size before padding")
    out = tuple(output_length(n, ki, si, (pl, pr), di, ceil_mode)
                for n, ki, si, pl, pr, di in zip(spatial, k, s, p_l, p_r, d))
    if any(o < 1 for o in out):
        padded = tuple(n + pl + pr for n, pl, pr in zip(spatial, p_l, p_r))
        raise ValueError(f"{fn}: input too small: {label} with effective kernel {k_eff} gets spatial size "
                         f"{spatial} (padded {padded}) and would output {out}")
    return k_eff, s, p_l, p_r, out


def _as_tuple(value: Any, nd: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (int(value),) * nd


def _channels_in(layer: nn.Module) -> int | None:
    if isinstance(layer, _CONV):
        return layer.in_channels
    if isinstance(layer, nn.modules.batchnorm._BatchNorm | nn.modules.instancenorm._InstanceNorm):
        return layer.num_features if (layer.affine or layer.track_running_stats) else None
    if isinstance(layer, nn.GroupNorm):
        return layer.num_channels
    return None


def _check_input_shape(input_shape: Sequence[int], fn: str) -> tuple[int, ...]:
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str):
        raise TypeError(f"{fn}: input_shape must be a tuple (N, C, *spatial), got {type(input_shape).__name__}")
    shape = tuple(input_shape)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise TypeError(f"{fn}: input_shape must hold ints, got {shape}")
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"{fn}: input_shape must be (N, C, L), (N, C, H, W) or (N, C, D, H, W), i.e. 3-D to "
                         f"5-D, got {len(shape)}-D {shape}")
    if any(v < 1 for v in shape):
        raise ValueError(f"{fn}: input_shape must be positive, got {shape}")
    return shape


def receptive_field(model: nn.Module, input_shape: Sequence[int]) -> list[LayerInfo]:
    """Shapes, parameter counts and receptive fields of every layer of a sequential CNN.

    ``input_shape`` is ``(N, C, *spatial)`` with 1-3 spatial dims (like ``torchinfo.summary``'s
    ``input_size``). Returns one :class:`LayerInfo` per layer, preceded by an ``"input"`` row
    (``r = 1, j = 1, start = 0``); nested ``nn.Sequential`` layers get dotted names (``"features.3"``).
    The walk stops at the first ``nn.Flatten`` (documented: the head sees the whole input).
    Nothing is run: the shapes come from the output-length formula (see :func:`output_length`),
    the receptive field from :func:`rf_step` applied per spatial dimension.

    Raises ``TypeError`` for a layer type it does not know, ``ValueError`` for an input whose rank or
    channel count does not fit a layer, or one too small for a layer.
    """
    fn = "receptive_field"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be an nn.Module (an nn.Sequential of layers), got {type(model).__name__}")
    shape = _check_input_shape(input_shape, fn)
    n, c, spatial = shape[0], shape[1], shape[2:]
    nd = len(spatial)
    size, jump, start = (1,) * nd, (1,) * nd, (0.0,) * nd
    rows = [LayerInfo("input", "Input", shape, 0, (1,) * nd, (1,) * nd, (0,) * nd, size, jump, start)]
    for name, layer in _iter_layers(model):
        if isinstance(layer, nn.Flatten):
            break
        if not isinstance(layer, _CONV + _MAXPOOL + _AVGPOOL + _ADAPTIVE + _ELEMENTWISE):
            raise TypeError(f"{fn}: unsupported layer '{name}' of type {type(layer).__name__}; expected one of "
                            f"Conv1d/2d/3d, MaxPool*d, AvgPool*d, AdaptiveAvg/MaxPool*d, shape-preserving "
                            f"layers (activations, norms, dropout) or Flatten (where the walk stops)")
        want = _layer_dim(layer)
        if want is not None and want != nd:
            raise ValueError(f"{fn}: layer '{name}' ({type(layer).__name__}) expects {want} spatial dims, but the "
                             f"input has {nd} (input_shape {shape})")
        cin = _channels_in(layer)
        if cin is not None and cin != c:
            raise ValueError(f"{fn}: layer '{name}' ({type(layer).__name__}) expects {cin} input channels, "
                             f"got {c}")
        k_eff, s, p_l, _, spatial = _geometry(name, layer, spatial, fn)
        steps = [rf_step(r, j, st, k, si, p) for r, j, st, k, si, p in zip(size, jump, start, k_eff, s, p_l)]
        size, jump, start = (tuple(x) for x in zip(*steps))
        if isinstance(layer, _CONV):
            c = layer.out_channels
        params = sum(p.numel() for p in layer.parameters(recurse=False) if p.requires_grad)
        rows.append(LayerInfo(name, type(layer).__name__, (n, c, *spatial), params, k_eff, s, p_l,
                              size, jump, start))
    return rows


# --------------------------------------------------------------------------- tables
def _fmt(values: tuple, *, shape: bool = False) -> str:
    if shape:
        return "[" + ", ".join(str(v) for v in values) + "]"
    vals = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)


def shape_table(model: nn.Module | Sequence[LayerInfo], input_shape: Sequence[int] | None = None):
    """A ``pandas.DataFrame`` with one row per layer (``receptive_field(model, input_shape)``).

    Columns: layer, type, output shape, params, k_eff, stride, pad, RF, jump, start. A per-dim value
    is shown once when all spatial dims agree, else as ``"3x5"``. Also accepts a list of
    :class:`LayerInfo` (then ``input_shape`` is not needed).
    """
    import pandas as pd

    infos = _infos(model, input_shape, "shape_table")
    return pd.DataFrame([{"layer": i.name, "type": i.type, "output shape": _fmt(i.output_shape, shape=True),
                          "params": i.params, "k_eff": _fmt(i.kernel), "stride": _fmt(i.stride),
                          "pad": _fmt(i.padding), "RF": _fmt(i.size), "jump": _fmt(i.jump),
                          "start": _fmt(i.start)} for i in infos])


def format_table(model: nn.Module | Sequence[LayerInfo], input_shape: Sequence[int] | None = None) -> str:
    """The :func:`shape_table` as a fixed-width text table plus a total-parameters line."""
    table = shape_table(model, input_shape)
    cols = list(table.columns)
    cells = [cols] + [[str(v) for v in row] for row in table.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    left = {"layer", "type"}
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(v.ljust(w) if cols[i] in left else v.rjust(w)
                               for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    lines.append(f"total params: {int(table['params'].sum()):,}")
    return "\n".join(lines)


def _infos(model: Any, input_shape: Sequence[int] | None, fn: str) -> list[LayerInfo]:
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise ValueError(f"{fn}: input_shape is required when a model is given")
        return receptive_field(model, input_shape)
    infos = list(model)
    if not infos or not all(isinstance(i, LayerInfo) for i in infos):
        raise TypeError(f"{fn}: expected an nn.Module or a non-empty list of LayerInfo, got {type(model).__name__}")
    return infos


# --------------------------------------------------------------------------- gradients (the PyTorch way)
@dataclass(frozen=True)
class EmpiricalRF:
    """Receptive field of one output unit measured by autograd.

    ``grad`` is ``|d out[unit] / d input|`` summed over input channels (spatial map, float64);
    ``lo``/``hi`` the bounding box of its non-zero entries per spatial dim; ``size = hi - lo + 1``.
    A unit that sees only padding has ``lo = hi = None`` and ``size`` all zeros.
    """

    position: tuple[int, ...]
    lo: tuple[int, ...] | None
    hi: tuple[int, ...] | None
    size: tuple[int, ...]
    grad: torch.Tensor


class _SumPool(nn.Module):
    """Max pooling's window with every position weighted 1 (a depthwise all-ones convolution).

    Max pooling sends the gradient to one arg-max only, so the probe replaces it by this module with the
    same kernel, stride, padding and dilation; for ``ceil_mode`` the right side is zero-padded until the
    output length equals that of the original pooling layer (taken from running it).
    """

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = x.dim() - 2
        pool = self.pool
        k, s = _as_tuple(pool.kernel_size, nd), _as_tuple(pool.stride or pool.kernel_size, nd)
        p, d = _as_tuple(pool.padding, nd), _as_tuple(pool.dilation, nd)
        with torch.no_grad():
            target = pool(x.detach()).shape[2:]
        extra = []
        for n, t, ki, si, pi, di in zip(x.shape[2:], target, k, s, p, d):
            extra.append(max(0, (t - 1) * si + di * (ki - 1) + 1 - (n + 2 * pi)))
        pad = [v for e in reversed(extra) for v in (0, e)]
        x = nn.functional.pad(x, pad)
        weight = torch.ones(x.shape[1], 1, *k, dtype=x.dtype)
        conv = (nn.functional.conv1d, nn.functional.conv2d, nn.functional.conv3d)[nd - 1]
        return conv(x, weight, stride=s, padding=p, dilation=d, groups=x.shape[1])


def _probe(model: nn.Module, fn: str) -> nn.Sequential:
    """A float64 copy with positive weights and no dead zones, for exact receptive-field probing."""
    layers: list[nn.Module] = []
    for name, layer in _iter_layers(model):
        if isinstance(layer, nn.Flatten):
            break
        if isinstance(layer, _CONV):
            conv = copy.deepcopy(layer).double()
            with torch.no_grad():
                conv.weight.fill_(1.0)
                if conv.bias is not None:
                    conv.bias.zero_()
            conv.padding_mode = "zeros"  # the geometric receptive field; reflect/circular would wrap it
            layers.append(conv)
        elif isinstance(layer, _MAXPOOL):
            layers.append(_SumPool(copy.deepcopy(layer)))
        elif isinstance(layer, _AVGPOOL):
            layers.append(copy.deepcopy(layer))
        elif isinstance(layer, _ADAPTIVE):
            avg = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)[_ADAPTIVE.index(type(layer)) % 3]
            layers.append(avg(layer.output_size))
        elif isinstance(layer, _ELEMENTWISE):
            layers.append(nn.Identity())
        else:
            raise TypeError(f"{fn}: unsupported layer '{name}' of type {type(layer).__name__}")
    return nn.Sequential(*layers).eval()


def _bounding_box(grad: torch.Tensor) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    nz = torch.nonzero(grad)
    if len(nz) == 0:  # a unit that sees only padding
        return None, None
    lo = tuple(int(v) for v in nz.min(0).values)
    hi = tuple(int(v) for v in nz.max(0).values)
    return lo, hi


def _unit_gradient(model: nn.Module, x: torch.Tensor, position: Sequence[int] | None, fn: str
                   ) -> tuple[tuple[int, ...], torch.Tensor]:
    """``d sum(out[:, :, position]) / d x`` for a batch ``x``; returns the position used and the grad."""
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    pos = _check_position(position, out.shape[2:], fn)
    grad_out = torch.zeros_like(out)
    grad_out[(slice(None), slice(None), *pos)] = 1.0
    (grad,) = torch.autograd.grad(out, x, grad_out)  # w.r.t. the input only: parameters' .grad untouched
    return pos, grad


def empirical_receptive_field(model: nn.Module, input_shape: Sequence[int],
                              position: Sequence[int] | None = None) -> EmpiricalRF:
    """Receptive field of output unit ``position`` (default: the centre unit) measured by autograd.

    Runs a float64 *probe* of ``model`` on an all-ones input of ``input_shape`` (batch 1): convolutions
    get all-ones weights and zero bias, max pools become all-ones window sums (max sends the gradient to
    one arg-max only), shape-preserving layers become identities (no ReLU dead zones), so no gradient can
    vanish by accident. Backpropagates a one-hot at ``position`` (all channels) and reports the bounding
    box of the non-zero entries of ``|d out / d input|``. With dilation or ``stride > kernel`` the region
    has holes; the box is what :meth:`LayerInfo.box` predicts (clipped to the input).
    """
    fn = "empirical_receptive_field"
    shape = _check_input_shape(input_shape, fn)
    receptive_field(model, shape)  # same validation (types, ranks, channels, sizes)
    probe = _probe(model, fn)
    x = torch.ones((1, *shape[1:]), dtype=torch.float64)
    pos, grad = _unit_gradient(probe, x, position, fn)
    g = grad[0].abs().sum(0)
    lo, hi = _bounding_box(g)
    size = (0,) * g.dim() if lo is None else tuple(h - lo_ + 1 for lo_, h in zip(lo, hi))
    return EmpiricalRF(pos, lo, hi, size, g)


def effective_receptive_field(model: nn.Module, inputs: torch.Tensor,
                              position: Sequence[int] | None = None) -> torch.Tensor:
    """Effective receptive field (Luo et al. 2016): the mean of ``|d out[:, :, position] / d input|``.

    Uses the model as it is (its trained weights, ReLUs, max pools; call ``model.eval()`` first if it
    has dropout/batch norm), backpropagates ``sum_c out[n, c, position]`` for each of the ``inputs``
    ``[N, C, *spatial]`` and returns the gradient magnitude averaged over the batch and summed over input
    channels, a ``[*spatial]`` map. Its support lies inside the theoretical receptive field; its mass is
    concentrated in a roughly Gaussian blob that is usually much smaller.
    """
    fn = "effective_receptive_field"
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{fn}: inputs must be a torch.Tensor [N, C, *spatial], got {type(inputs).__name__}")
    if inputs.dim() not in (3, 4, 5):
        raise ValueError(f"{fn}: inputs must be 3-D to 5-D [N, C, *spatial], got shape {tuple(inputs.shape)}")
    _, grad = _unit_gradient(model, inputs, position, fn)
    return grad.abs().sum(1).mean(0)


def theoretical_box_fraction(grad_map: torch.Tensor, box: Sequence[tuple[int, int]]) -> float:
    """Fraction of ``grad_map``'s total mass inside the inclusive ``box`` (one ``(lo, hi)`` per dim)."""
    idx = tuple(slice(max(lo, 0), hi + 1) for lo, hi in box)
    total = float(grad_map.sum())
    return float(grad_map[idx].sum()) / total if total > 0 else math.nan

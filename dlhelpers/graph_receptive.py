"""Receptive field, effective stride and centre offset of every node of a branching network (any DAG).

A sequential CNN has one path from the input to a unit, and ``dlhelpers.receptive.receptive_field`` walks
it with the recurrence (receptive field ``r``, jump ``j``, start). A ResNet, an Inception block or a
U-Net has many paths. Along one spatial dimension, describe a *path* ending at a node by the input
interval that unit ``u`` of the node sees through it, ``[lo + u j, hi + u j]``: ``j`` is the path's jump
(effective stride), ``hi - lo + 1`` its receptive field and ``(lo + hi) / 2`` the centre of unit 0 (its
*offset*). A window layer (convolution, pooling) with effective kernel ``k_eff = d (k - 1) + 1``, stride
``s`` and left padding ``p`` maps every path of its input to

    j' = j s,    lo' = lo - p j,    hi' = hi + (k_eff - 1 - p) j

(the sequential recurrence, written on the interval), and a merge (``x + shortcut``, ``torch.cat`` on
channels, ``x * gate``) takes the **union** of its inputs' paths. Unit ``u`` of a node therefore sees

    [min over paths (lo + u j),  max over paths (hi + u j)]

* When every path has the same jump and the same centre (they are *aligned*, the usual case with
  "same" padding), this is the **maximum over paths** of the path receptive fields.
* When the centres differ (e.g. a 2x2 stride-2 conv beside a 1x1 stride-2 shortcut: offsets 0.5 and 0),
  the union is larger than every single path's field and the node's units are not centred where any one
  path says: :attr:`NodeRF.offsets` lists the centres, :attr:`NodeRF.aligned` is ``False``.
* A tensor broadcast over space (the squeeze-excitation gate, a global pool) is a path with ``j = 0``:
  every unit sees the same interval. Then the field depends on the unit (:attr:`NodeRF.uniform` is
  ``False``) and ``size`` is reported for the centre unit.

Only the *bounds* matter, so per jump the propagation keeps the smallest ``lo``, the largest ``hi`` and
the set of centres: linear in the size of the graph, however many paths there are (a DenseNet has
exponentially many). Nodes after ``flatten`` see the whole input and get no row. Normalisation layers
count as per-position (their statistics are ignored), as in ``dlhelpers.receptive``.

PyTorch counterpart: autograd. :func:`graph_empirical_receptive_field` measures the bounding box of the
non-zero input gradient of one unit on a probe copy (all-ones weights, identity activations, average in
place of max pooling), which the tests show equals :meth:`NodeRF.box` on random branching networks; on
chains :func:`graph_receptive_field` equals ``dlhelpers.receptive.receptive_field``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from dlhelpers.receptive import EmpiricalRF
from dlhelpers.shapes import fx_trace, serialized, trace_shapes

__all__ = ["NodeRF", "graph_empirical_receptive_field", "graph_receptive_field", "path_receptive_fields"]

#: per spatial dim: jump -> (min lo, max hi, set of lo + hi of the paths)
_Dim = dict[int, tuple[int, int, frozenset[int]]]
_Geom = tuple[_Dim, ...]
_FLAT = "flat"  # the node has no spatial dims left (after flatten): it sees the whole input

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_NOT_POINTWISE = (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d, nn.MultiheadAttention)
_POINTWISE_MODULE_FILES = ("torch.nn.modules.activation", "torch.nn.modules.dropout", "torch.nn.modules.batchnorm",
                           "torch.nn.modules.instancenorm", "torch.nn.modules.normalization")
#: functions / methods that act per position (or merge tensors of the same spatial grid)
_POINTWISE = {"add", "sub", "mul", "truediv", "div", "iadd", "imul", "add_", "mul_", "relu", "relu_", "relu6",
              "sigmoid", "sigmoid_", "tanh", "gelu", "silu", "hardswish", "hardsigmoid", "hardtanh", "leaky_relu",
              "elu", "selu", "mish", "dropout", "dropout1d", "dropout2d", "dropout3d", "contiguous", "clone", "neg",
              "abs", "exp", "batch_norm", "cat", "concat", "stochastic_depth"}
_ACTIVATIONS = {"relu", "relu_", "relu6", "sigmoid", "sigmoid_", "tanh", "gelu", "silu", "hardswish",
                "hardsigmoid", "hardtanh", "leaky_relu", "elu", "selu", "mish", "dropout", "dropout1d",
                "dropout2d", "dropout3d", "stochastic_depth"}


@dataclass(frozen=True)
class NodeRF:
    """Receptive field of one node of a DAG, per spatial dimension.

    ``paths[d]`` holds one ``(jump, lo, hi, centres)`` per distinct jump: unit ``u`` sees
    ``[lo + u jump, hi + u jump]`` through the paths with that jump, whose unit-0 centres are ``centres``.
    """

    name: str
    target: str
    output_shape: tuple[int, ...]
    paths: tuple[tuple[tuple[int, int, int, tuple[float, ...]], ...], ...]

    @property
    def uniform(self) -> bool:
        """One jump per dimension: every unit has the same receptive field (shifted by the jump)."""
        return all(len(groups) == 1 for groups in self.paths)

    @property
    def jump(self) -> tuple[int, ...]:
        """Effective stride: the largest path jump per dimension (the only one when :attr:`uniform`)."""
        return tuple(max(g[0] for g in groups) for groups in self.paths)

    @property
    def offsets(self) -> tuple[tuple[float, ...], ...]:
        """Centres of unit 0, one per distinct path alignment (broadcast paths left out), sorted, per dim."""
        return tuple(tuple(sorted({c for g in groups if g[0] > 0 for c in g[3]})) for groups in self.paths)

    @property
    def broadcast(self) -> bool:
        """Some path reaches the node through a tensor broadcast over space (a global gate): jump 0."""
        return any(g[0] == 0 for groups in self.paths for g in groups)

    @property
    def aligned(self) -> bool:
        """The non-broadcast paths share one jump and one centre in every dimension."""
        return all(len({g[0] for g in groups if g[0] > 0}) <= 1 for groups in self.paths) and \
            all(len(o) <= 1 for o in self.offsets)

    def box(self, position: Sequence[int] | None = None) -> tuple[tuple[int, int], ...]:
        """Inclusive input interval ``(lo, hi)`` seen by unit ``position`` (default: the centre unit)."""
        spatial = self.output_shape[2:]
        if position is None:
            position = tuple((n - 1) // 2 for n in spatial)
        pos = tuple(position) if not isinstance(position, int) else (position,)
        if len(pos) != len(spatial) or not all(isinstance(u, int) and 0 <= u < n for u, n in zip(pos, spatial)):
            raise ValueError(f"NodeRF.box: position must be {len(spatial)} ints inside the output grid "
                             f"{tuple(spatial)}, got {tuple(position)}")
        return tuple((min(lo + u * j for j, lo, _, _ in groups), max(hi + u * j for j, _, hi, _ in groups))
                     for u, groups in zip(pos, self.paths))

    @property
    def size(self) -> tuple[int, ...]:
        """Receptive field per dimension (of the centre unit when the node is not :attr:`uniform`)."""
        return tuple(hi - lo + 1 for lo, hi in self.box())

    @property
    def start(self) -> tuple[float, ...]:
        """Centre of unit 0's union interval (equals ``dlhelpers.receptive``'s ``start`` on chains)."""
        return tuple((lo + hi) / 2 for lo, hi in self.box(tuple(0 for _ in self.output_shape[2:])))


# --------------------------------------------------------------------------- geometry of one layer
def _window(geom: _Geom, k_eff: Sequence[int], stride: Sequence[int], pad_left: Sequence[int]) -> _Geom:
    """Apply a window layer to every path: ``j' = j s, lo' = lo - p j, hi' = hi + (k_eff - 1 - p) j``."""
    out = []
    for groups, k, s, p in zip(geom, k_eff, stride, pad_left):
        new: _Dim = {}
        for j, (lo, hi, cs) in groups.items():
            entry = (lo - p * j, hi + (k - 1 - p) * j, frozenset(c + (k - 1 - 2 * p) * j for c in cs))
            new[j * s] = _merge_entry(new.get(j * s), entry)
        out.append(new)
    return tuple(out)


def _merge_entry(a: tuple | None, b: tuple) -> tuple:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]), a[2] | b[2])


def _union(geoms: Sequence[_Geom]) -> _Geom:
    out: list[_Dim] = [{} for _ in geoms[0]]
    for geom in geoms:
        for d, groups in enumerate(geom):
            for j, entry in groups.items():
                out[d][j] = _merge_entry(out[d].get(j), entry)
    return tuple(out)


def _broadcast(geom: _Geom, in_spatial: Sequence[int], out_spatial: Sequence[int]) -> _Geom:
    """A size-1 dim broadcast to a larger output: every unit sees unit 0's interval (jump 0)."""
    out = []
    for groups, n_in, n_out in zip(geom, in_spatial, out_spatial):
        if n_in == 1 and n_out > 1:
            merged: _Dim = {}
            for _, entry in groups.items():
                merged[0] = _merge_entry(merged.get(0), entry)
            groups = merged
        out.append(groups)
    return tuple(out)


def _as_tuple(value: Any, nd: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),) * nd


def _window_params(kernel: Any, stride: Any, padding: Any, dilation: Any, nd: int
                   ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    k = _as_tuple(kernel, nd)
    s = _as_tuple(stride if stride is not None and stride != [] else kernel, nd)
    d = _as_tuple(dilation, nd)
    if isinstance(padding, str):  # Conv padding="same" / "valid": PyTorch puts the odd pixel on the right
        p = tuple((di * (ki - 1)) // 2 if padding == "same" else 0 for ki, di in zip(k, d))
    else:
        p = _as_tuple(padding, nd)
    return tuple(di * (ki - 1) + 1 for ki, di in zip(k, d)), s, p


def _adaptive(name: str, in_spatial: Sequence[int], out_spatial: Sequence[int], fn: str
              ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    if any(n % o for n, o in zip(in_spatial, out_spatial)):
        raise ValueError(f"{fn}: node '{name}' pools spatial size {tuple(in_spatial)} to {tuple(out_spatial)}; "
                         f"the windows are only uniform when each output size divides the input size")
    ks = tuple(n // o for n, o in zip(in_spatial, out_spatial))
    return ks, ks, (0,) * len(ks)


def _arg(node: fx.Node, i: int, key: str, default: Any) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _op_name(node: fx.Node) -> str:
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return str(node.target)


# --------------------------------------------------------------------------- propagation
def _propagate(gm: fx.GraphModule, input_shape: Sequence[int], fn: str) -> list[NodeRF]:
    rank = len(input_shape)
    nd = rank - 2
    geoms: dict[fx.Node, Any] = {}
    rows: list[NodeRF] = []
    first = True
    for node in gm.graph.nodes:
        out_shape = _shape(node)
        if node.op == "placeholder":
            if not first:
                raise TypeError(f"{fn}: node '{node.name}' is a second input; only one input is supported")
            first = False
            geoms[node] = tuple({1: (0, 0, frozenset({0}))} for _ in range(nd))
        elif node.op in ("get_attr", "output") or out_shape is None:
            continue  # parameters, constants, non-tensor values (x.size()) and the output carry no geometry
        else:
            geoms[node] = _node_geometry(gm, node, geoms, input_shape, out_shape, fn)
        geom = geoms[node]
        if geom is not _FLAT and out_shape is not None:
            paths = tuple(tuple((j, lo, hi, tuple(sorted(c / 2 for c in cs)))
                                for j, (lo, hi, cs) in sorted(groups.items())) for groups in geom)
            rows.append(NodeRF(node.name, _target(gm, node), out_shape, paths))
    return rows


def _target(gm: fx.GraphModule, node: fx.Node) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__
    return "input" if node.op == "placeholder" else _op_name(node)


def _parents(node: fx.Node) -> list[fx.Node]:
    return [a for a in node.all_input_nodes if a.op != "get_attr"]


def _node_geometry(gm: fx.GraphModule, node: fx.Node, geoms: dict, input_shape: Sequence[int],
                   out_shape: tuple[int, ...], fn: str) -> Any:
    rank = len(input_shape)
    parents = [p for p in _parents(node) if p in geoms]
    label = f"node '{node.name}' ({_target(gm, node)})"
    if not parents:
        raise TypeError(f"{fn}: {label} has no input that depends on the model input")
    if all(geoms[p] is _FLAT for p in parents):
        return _FLAT
    if len(out_shape) != rank:  # flatten and friends: from here on every unit sees the whole input
        if _is_flatten(gm, node):
            return _FLAT
        raise TypeError(f"{fn}: {label} changes the rank from {rank} to {len(out_shape)}; only flatten(x, 1) "
                        f"(the classifier head) is supported")
    spatial = [(p, _shape(p)) for p in parents if geoms[p] is not _FLAT]
    (x, x_shape) = spatial[0]
    in_geom = geoms[x]
    nd = rank - 2
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, _CONV + _MAXPOOL + _AVGPOOL):
            if getattr(m, "padding_mode", "zeros") == "circular":
                raise TypeError(f"{fn}: {label} uses circular padding, whose field wraps around the border")
            k, s, p = _window_params(m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1), nd)
            return _window(in_geom, k, s, p)
        if isinstance(m, _ADAPTIVE):
            return _window(in_geom, *_adaptive(node.name, x_shape[2:], out_shape[2:], fn))
        pointwise = (isinstance(m, nn.Identity) or type(m).__module__ in _POINTWISE_MODULE_FILES) \
            and not isinstance(m, _NOT_POINTWISE)
        if not pointwise:
            raise TypeError(f"{fn}: {label} is not supported for receptive fields; expected convolutions, "
                            f"max/avg/adaptive pooling, per-position layers (activations, norms, dropout), "
                            f"element-wise merges, torch.cat on channels, or flatten")
        return _merge(node, spatial, geoms, out_shape, input_shape, fn)
    name = _op_name(node)
    if name in ("conv1d", "conv2d", "conv3d"):
        w = _shape(_arg(node, 1, "weight", None))
        k, s, p = _window_params(w[2:], _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0),
                                 _arg(node, 5, "dilation", 1), nd)
        return _window(in_geom, k, s, p)
    if name.startswith(("max_pool", "avg_pool")) and name[-2:] in ("1d", "2d", "3d"):
        kernel = _arg(node, 1, "kernel_size", 1)
        dil = _arg(node, 4, "dilation", 1) if name.startswith("max") else 1
        k, s, p = _window_params(kernel, _arg(node, 2, "stride", None), _arg(node, 3, "padding", 0), dil, nd)
        return _window(in_geom, k, s, p)
    if name == "pad":  # F.pad(x, (left, right, top, bottom, ...)): last dim first; negative = crop
        mode = _arg(node, 2, "mode", "constant")
        if mode != "constant":
            raise TypeError(f"{fn}: {label} pads with mode {mode!r}; only 'constant' (zero) padding is supported")
        pad = list(_arg(node, 1, "pad", ()))
        lefts = tuple(pad[2 * (nd - 1 - i)] if 2 * (nd - 1 - i) < len(pad) else 0 for i in range(nd))
        return _window(in_geom, (1,) * nd, (1,) * nd, lefts)
    if name.startswith("adaptive_"):
        return _window(in_geom, *_adaptive(node.name, x_shape[2:], out_shape[2:], fn))
    if name in ("mean", "sum", "amax", "amin") and out_shape[2:] == (1,) * nd:
        return _window(in_geom, x_shape[2:], x_shape[2:], (0,) * nd)  # a global pool written as a reduction
    if name in ("cat", "concat"):
        dim = _arg(node, 1, "dim", 0)
        if dim % rank >= 2 or dim % rank == 0:
            raise TypeError(f"{fn}: {label} concatenates along dim {dim}; only the channel dim 1 is supported")
    elif name not in _POINTWISE:
        raise TypeError(f"{fn}: {label} is not supported for receptive fields; expected convolutions, "
                        f"max/avg/adaptive pooling, element-wise ops ({', '.join(sorted(_POINTWISE)[:6])}, ...), "
                        f"torch.cat on channels, or flatten")
    return _merge(node, spatial, geoms, out_shape, input_shape, fn)


def _merge(node: fx.Node, spatial: list, geoms: dict, out_shape: tuple[int, ...], input_shape: Sequence[int],
           fn: str) -> _Geom:
    """Union of the parents' paths (broadcast ones get jump 0; a flat parent sees the whole input)."""
    parts = []
    for p, shape in spatial:
        parts.append(_broadcast(geoms[p], shape[2:], out_shape[2:]))
    if any(geoms[p] is _FLAT for p in _parents(node) if p in geoms):
        whole = tuple({0: (0, n - 1, frozenset({n - 1}))} for n in input_shape[2:])
        parts.append(whole)
    for _, shape in spatial:
        if any(a != b and a != 1 for a, b in zip(shape[2:], out_shape[2:])):
            raise TypeError(f"{fn}: node '{node.name}' merges spatial sizes {shape[2:]} into {out_shape[2:]}")
    return _union(parts)


def _is_flatten(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        return isinstance(m, nn.Flatten) and m.start_dim == 1
    name = _op_name(node)
    if name == "flatten":
        return _arg(node, 1, "start_dim", 0) in (0, 1)
    return name in ("view", "reshape", "linear") and len(_shape(node) or ()) == 2


# --------------------------------------------------------------------------- public entry points
@serialized
def graph_receptive_field(model: nn.Module, input_shape: Sequence[int]) -> list[NodeRF]:
    """Receptive field, jump (effective stride) and centre offsets of every spatial node of ``model``.

    ``input_shape`` is ``(N, C, *spatial)`` with 1-3 spatial dims. Shapes come from
    :func:`dlhelpers.shapes.trace_shapes` (torch.fx), so the model must be fx-traceable. Returns one
    :class:`NodeRF` per node with spatial dims, in graph order, starting with the input; nodes after
    ``flatten`` are left out (they see the whole input).

    Raises ``TypeError`` for an operation whose receptive field is not a window or a union (transposed
    convolution, interpolation, attention over space, slicing), naming the node.
    """
    fn = "graph_receptive_field"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be an nn.Module, got {type(model).__name__}")
    shape = tuple(input_shape) if not isinstance(input_shape, torch.Tensor) else tuple(input_shape.shape)
    if len(shape) not in (3, 4, 5) or not all(isinstance(v, int) for v in shape):
        raise ValueError(f"{fn}: input_shape must be (N, C, L), (N, C, H, W) or (N, C, D, H, W) ints, got {shape}")
    trace = trace_shapes(model, shape, method="fx")
    return _propagate(trace.graph_module, shape, fn)


@serialized
def path_receptive_fields(model: nn.Module, input_shape: Sequence[int], node: str | None = None
                          ) -> list[tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...], tuple[float, ...]]]:
    """Brute force: every input-to-``node`` path of the graph with its own ``(size, jump, start)``.

    Exponential in the depth of a branching network -- a teaching and testing aid for small graphs;
    :func:`graph_receptive_field` gets the union without enumerating. Each entry is
    ``(names of the window layers on the path, size, jump, start)``, per spatial dimension.
    """
    fn = "path_receptive_fields"
    rows = {r.name: r for r in graph_receptive_field(model, input_shape)}
    gm = trace_shapes(model, tuple(input_shape), method="fx").graph_module
    nodes = {n.name: n for n in gm.graph.nodes}
    target = node or list(rows)[-1]
    if target not in rows:
        raise ValueError(f"{fn}: node must be one of the spatial nodes {list(rows)[:8]}..., got {node!r}")
    nd = len(input_shape) - 2
    out: list = []

    def walk(n: fx.Node, tail: list[fx.Node]) -> None:
        if n.op != "placeholder":
            for p in _parents(n):
                if p.name in rows:
                    walk(p, [*tail, n])
            return
        size, jump, start = [1] * nd, [1] * nd, [0.0] * nd
        layers = []
        for m in reversed(tail):
            window = _single_window(gm, m, rows, input_shape)
            if window is None:
                continue
            layers.append(m.name)
            for d, (k, s, p) in enumerate(zip(*window)):
                size[d], jump[d], start[d] = (size[d] + (k - 1) * jump[d], jump[d] * s,
                                              start[d] + ((k - 1) / 2 - p) * jump[d])
        out.append((tuple(layers), tuple(size), tuple(jump), tuple(start)))

    walk(nodes[target], [])
    return out


def _single_window(gm: fx.GraphModule, node: fx.Node, rows: dict, input_shape: Sequence[int]
                   ) -> tuple[tuple[int, ...], ...] | None:
    """``(k_eff, stride, pad_left)`` of a window node, or ``None`` for a merge / per-position node.

    Found by applying the node to the one-pixel path ``j = 1, lo = hi = 0``: a window gives
    ``j = s, lo = -p, hi = k_eff - 1 - p``.
    """
    nd = len(input_shape) - 2
    unit = tuple({1: (0, 0, frozenset({0}))} for _ in range(nd))
    geoms = {p: unit for p in _parents(node) if p.name in rows}
    geom = _node_geometry(gm, node, geoms, input_shape, rows[node.name].output_shape, "path_receptive_fields")
    if any(len(g) != 1 for g in geom):
        raise TypeError(f"path_receptive_fields: node '{node.name}' broadcasts; paths through it have no "
                        f"single jump")
    ks, ss, ps = [], [], []
    for g in geom:
        ((j, (lo, hi, _)),) = g.items()
        ks.append(hi - lo + 1)
        ss.append(j)
        ps.append(-lo)
    if all(k == 1 and s == 1 and p == 0 for k, s, p in zip(ks, ss, ps)):
        return None
    return tuple(ks), tuple(ss), tuple(ps)


# --------------------------------------------------------------------------- the autograd measurement
def _probe_modules(module: nn.Module) -> None:
    """In place: all-ones (transposed) convolutions, average pooling for max pooling, identity per position."""
    for name, child in module.named_children():
        if isinstance(child, _CONV + _CONV_T):
            with torch.no_grad():
                child.weight.fill_(1.0)
                if child.bias is not None:
                    child.bias.zero_()
            child.padding_mode = "zeros"
        elif isinstance(child, _MAXPOOL):
            if _as_tuple(child.dilation, 1) != (1,) * len(_as_tuple(child.dilation, 1)):
                raise TypeError(f"graph_empirical_receptive_field: max pooling '{name}' with dilation is not "
                                f"supported by the probe")
            avg = _AVGPOOL[_MAXPOOL.index(type(child))]
            setattr(module, name, avg(child.kernel_size, child.stride, child.padding, child.ceil_mode))
        elif isinstance(child, _ADAPTIVE[3:]):
            setattr(module, name, _ADAPTIVE[_ADAPTIVE.index(type(child)) - 3](child.output_size))
        elif (isinstance(child, nn.Identity) or type(child).__module__ in _POINTWISE_MODULE_FILES) \
                and not isinstance(child, _NOT_POINTWISE):
            setattr(module, name, nn.Identity())
        else:
            _probe_modules(child)


@serialized
def graph_empirical_receptive_field(model: nn.Module, input_shape: Sequence[int], node: str | None = None,
                                    position: Sequence[int] | None = None) -> EmpiricalRF:
    """Receptive field of one unit of ``node`` (default: the last spatial node) measured by autograd.

    Runs a float64 probe of ``model`` on ones of ``input_shape`` (batch 1): convolutions with all-ones
    weights and no bias, max pooling replaced by average pooling (max routes the gradient to one arg-max),
    activations, norms and dropout by identities (modules and functions), so every path carries a positive
    gradient. Backpropagates a one-hot at ``position`` (default: the centre unit, all channels) of ``node``'s
    output and returns the bounding box of the non-zero ``|d out / d input|`` as a
    ``dlhelpers.receptive.EmpiricalRF``. Merges must be monotone (add, multiply, concatenate), as in real nets.
    Transposed convolutions (all-ones too) and nearest/linear upsampling are measured as well, so a U-Net's
    output pixels can be probed, although :func:`graph_receptive_field` has no interval rule for them.
    """
    fn = "graph_empirical_receptive_field"
    try:
        names = [r.name for r in graph_receptive_field(model, input_shape)]
    except TypeError:  # an operation without an interval rule (transposed conv, upsampling): autograd still works
        rank = len(tuple(input_shape))
        names = [n.name for n in trace_shapes(model, tuple(input_shape), method="fx")
                 if n.output_shape is not None and len(n.output_shape) == rank]
    target = node or names[-1]
    if target not in names:
        raise ValueError(f"{fn}: node must be one of the spatial nodes {names[:8]}..., got {node!r}")
    probe = copy.deepcopy(model).double().eval()
    _probe_modules(probe)
    gm = fx_trace(probe)
    graph = gm.graph
    for n in list(graph.nodes):
        if n.op in ("call_function", "call_method") and _op_name(n) in _ACTIVATIONS:
            n.replace_all_uses_with(n.args[0])
            graph.erase_node(n)
    out_node = next(n for n in graph.nodes if n.op == "output")
    chosen = next(n for n in graph.nodes if n.name == target)
    out_node.args = (chosen,)
    graph.eliminate_dead_code()
    gm.recompile()
    x = torch.ones((1, *tuple(input_shape)[1:]), dtype=torch.float64, requires_grad=True)
    out = gm(x)
    spatial = out.shape[2:]
    pos = tuple((n - 1) // 2 for n in spatial) if position is None else tuple(position)
    if len(pos) != len(spatial) or not all(0 <= u < n for u, n in zip(pos, spatial)):
        raise ValueError(f"{fn}: position must be {len(spatial)} ints inside the output grid {tuple(spatial)}, "
                         f"got {pos}")
    grad_out = torch.zeros_like(out)
    grad_out[(slice(None), slice(None), *pos)] = 1.0
    (grad,) = torch.autograd.grad(out, x, grad_out)
    g = grad[0].abs().sum(0)
    nz = torch.nonzero(g)
    if len(nz) == 0:
        return EmpiricalRF(pos, None, None, (0,) * g.dim(), g)
    lo = tuple(int(v) for v in nz.min(0).values)
    hi = tuple(int(v) for v in nz.max(0).values)
    return EmpiricalRF(pos, lo, hi, tuple(h - lo_ + 1 for lo_, h in zip(lo, hi)), g)


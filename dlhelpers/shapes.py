"""Layer-by-layer shapes, parameters and FLOPs of any ``nn.Module``: one entry point, :func:`trace_shapes`.

``trace_shapes(model, input_size)`` runs the model once on zeros of ``input_size`` and returns a
:class:`ShapeTrace`: one :class:`NodeInfo` per node of the computation, with its operation, the shapes of
its tensor inputs and outputs, the parameters it owns and the FLOPs it costs.

How the graph is found:

1. **torch.fx** (``method="fx"``): ``symbolic_trace`` with a tracer that keeps the parameterised
   ``torch.nn`` layers (``Conv2d``, ``Linear``, ``BatchNorm2d``, ``MultiheadAttention``, activations, ...)
   as leaves and traces *through* everything else (containers, torchvision blocks, your own modules), so
   functional operations (``x + identity``, ``torch.cat``, ``torch.flatten``, ``q @ k.T``) become nodes too.
   Shapes are then propagated by a ``torch.fx.Interpreter`` (the same walk as
   ``torch.fx.passes.shape_prop.ShapeProp``, which it equals; see the tests) that records every node's input
   and output shapes and turns a failing node into a :class:`ShapeError` naming the node, its module and
   the shapes involved.
2. **Forward hooks** (``method="hooks"``): when fx cannot trace the model (data-dependent control flow such
   as ``if x.dim() == 3``, which ``nn.TransformerEncoderLayer`` has, or an ``isinstance(x, torch.Tensor)``
   check, which the from-scratch blocks of ``dlhelpers.blocks`` have), ``method="auto"`` falls back to
   forward hooks on the leaf modules (modules without children, and attention modules) and *says so*:
   ``ShapeTrace.method == "hooks"`` and ``ShapeTrace.fallback_reason`` holds the fx error; the printed
   table starts with that line. Hooks see modules only: functional operations between them are not rows
   (and not counted).

FLOPs follow ``torch.utils.flop_counter.FlopCounterMode``'s convention: only matrix multiplies and
convolutions count, a multiply-add is **2 FLOPs**, biases, norms, activations and pooling are free;
``MACs = FLOPs / 2`` (what ``torchinfo`` calls mult-adds, up to its bias terms). Per operation:

* convolution ``Conv{1,2,3}d``: ``2 * numel(out) * (C_in / groups) * prod(kernel)``
* transposed convolution: ``2 * N * C_in * (C_out / groups) * prod(kernel) * prod(in_spatial)``
* ``Linear``: ``2 * prod(x.shape[:-1]) * in_features * out_features``
* ``matmul`` / ``mm`` / ``bmm`` / ``@``: ``2 * prod(batch) * m * k * n``
* ``scaled_dot_product_attention``: ``2 * prod(batch) * L * S * (E + E_v)``
* ``MultiheadAttention``: its four projections plus ``QK^T`` and ``AV``.

From-scratch modules that *look like* these (a 4-D ``weight`` with ``stride`` and ``groups``; ``in_features``
and ``out_features`` with a 2-D ``weight``; ``embed_dim``, ``num_heads``, ``in_proj_weight``) are counted the
same way, so ``dlhelpers.blocks`` and ``dlhelpers.attention`` get FLOPs too.

Threads: ``torch.fx`` tracing patches ``torch.nn.Module.__call__`` for the whole process, so a model run in
another thread while a trace is in progress is recorded into (or breaks) that trace. Every entry point here
(and in ``dlhelpers.graph_receptive``) holds :data:`trace_lock`, so calls from two threads -- a cell and an
ipywidgets callback, which JupyterLab >= 4.4 runs in a kernel *subshell* thread -- take turns.

:func:`valid_input_sizes` lists the input sizes a model accepts (a U-Net whose skip connections must match),
found by tracing on the ``meta`` device; :func:`plot_spatial_profile` draws :meth:`ShapeTrace.spatial_profile`.

PyTorch counterparts: output shapes and parameter counts equal ``torchinfo.summary``'s (per module call),
the total FLOPs equal ``FlopCounterMode().get_total_flops()`` -- checked on torchvision architectures in
``tests/test_shapes.py``.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

__all__ = ["NodeInfo", "ShapeError", "ShapeTrace", "count_flops", "fx_trace", "plot_spatial_profile", "trace_lock",
           "trace_shapes", "valid_input_sizes"]

Shape = tuple[int, ...]

#: held while tracing or propagating: fx patches ``nn.Module.__call__`` process-wide during a trace
trace_lock = threading.RLock()


def serialized(fn: Callable) -> Callable:
    """Run ``fn`` holding :data:`trace_lock` (one trace at a time per process; re-entrant)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with trace_lock:
            return fn(*args, **kwargs)

    return wrapper


class ShapeError(ValueError):
    """A node of the traced model failed; the message names the node, its module and the shapes."""


@dataclass(frozen=True)
class NodeInfo:
    """One node of a traced model.

    ``op`` is the fx opcode (``placeholder``, ``call_module``, ``call_function``, ``call_method``,
    ``get_attr``; ``hook`` for the forward-hook fallback), ``target`` a readable name of the operation
    (``"Conv2d"``, ``"add"``, ``"cat"``), ``module`` the qualified name of the module it calls (or ``""``).
    ``params`` counts the parameters the node owns (a module called twice counts them on its first call),
    ``flops`` its FLOPs (2 per multiply-add, see the module docstring).
    """

    name: str
    op: str
    target: str
    module: str
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    params: int
    flops: int

    @property
    def output_shape(self) -> Shape | None:
        """The first output tensor's shape (``None`` when the node returns no tensor)."""
        return self.output_shapes[0] if self.output_shapes else None

    @property
    def macs(self) -> int:
        """Multiply-accumulates: ``flops // 2``."""
        return self.flops // 2


@dataclass
class ShapeTrace:
    """The result of :func:`trace_shapes`: rows in execution order plus how they were obtained."""

    nodes: list[NodeInfo]
    method: str
    input_shape: Shape
    fallback_reason: str | None = None
    graph_module: fx.GraphModule | None = field(default=None, repr=False)
    outputs: tuple[Shape, ...] = ()

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, key: int | str) -> NodeInfo:
        if isinstance(key, str):
            for node in self.nodes:
                if node.name == key:
                    return node
            raise KeyError(f"ShapeTrace: no node named {key!r}; names are e.g. {[n.name for n in self.nodes[:5]]}")
        return self.nodes[key]

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def total_flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def total_macs(self) -> int:
        return self.total_flops // 2

    @property
    def output_shape(self) -> Shape | None:
        """Shape of the model's (first) output tensor."""
        if self.outputs:
            return self.outputs[0]
        return next((n.output_shape for n in reversed(self.nodes) if n.output_shapes), None)

    def spatial_profile(self) -> list[tuple[str, int, tuple[int, ...]]]:
        """``(node, channels, spatial size)`` after every module call whose output keeps the input's rank.

        The data behind a "resolution and channels through the network" plot: conv/pool/norm layers of a
        CNN, in execution order, with ``[N, C, *spatial]`` outputs.
        """
        rank = len(self.input_shape)
        return [(n.name, n.output_shape[1], tuple(n.output_shape[2:])) for n in self.nodes
                if n.op in ("call_module", "hook") and n.output_shape is not None and len(n.output_shape) == rank]

    def header(self) -> str:
        how = "torch.fx symbolic_trace + shape propagation" if self.method == "fx" else \
            f"forward hooks on leaf modules (torch.fx could not trace the model: {self.fallback_reason})"
        return f"traced with {how}"

    def to_frame(self, *, modules_only: bool = False):
        """A ``pandas.DataFrame``: node, op, module, input shapes, output shape, params, FLOPs (one row each)."""
        import pandas as pd

        rows = [n for n in self.nodes if not modules_only or n.op in ("call_module", "hook")]
        return pd.DataFrame([{"node": n.name, "op": n.target, "module": n.module,
                              "input shapes": _fmt_shapes(n.input_shapes),
                              "output shape": _fmt_shapes(n.output_shapes), "params": n.params,
                              "FLOPs": n.flops} for n in rows])

    def format(self, *, modules_only: bool = False, max_rows: int | None = None) -> str:
        """Fixed-width text table (first ``max_rows`` rows) with totals and the tracing method."""
        table = self.to_frame(modules_only=modules_only)
        shown = table if max_rows is None else table.head(max_rows)
        cols = list(table.columns)
        cells = [cols] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row]
                          for row in shown.itertuples(index=False)]
        widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
        right = {"params", "FLOPs"}
        lines = [self.header()]
        for k, row in enumerate(cells):
            lines.append("  ".join(v.rjust(w) if cols[i] in right else v.ljust(w)
                                   for i, (v, w) in enumerate(zip(row, widths))).rstrip())
            if k == 0:
                lines.append("-" * len(lines[-1]))
        if len(shown) < len(table):
            lines.append(f"... {len(table) - len(shown)} more rows")
        out = _fmt_shapes((self.output_shape,)) if self.output_shape else "-"
        lines.append(f"{len(self.nodes)} nodes | output {out}"
                     f" | total params {self.total_params:,} | FLOPs {self.total_flops:,} "
                     f"(MACs {self.total_macs:,})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _fmt_shapes(shapes: Sequence[Shape]) -> str:
    return " ".join("[" + ", ".join(str(v) for v in s) + "]" for s in shapes) if shapes else "-"


# --------------------------------------------------------------------------- FLOPs
def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


def _matmul_flops(a: Shape, b: Shape) -> int:
    """``2 m k n`` times the broadcast batch of ``a @ b`` (1-D operands as in ``torch.matmul``)."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = torch.broadcast_shapes(tuple(a2[:-2]), tuple(b2[:-2]))
    return 2 * _prod(batch) * a2[-2] * a2[-1] * b2[-1]


def _conv_flops(out: Shape, weight: Shape) -> int:
    """``2 numel(out) (C_in / groups) prod(k)``; ``weight`` is ``[C_out, C_in / groups, *k]``."""
    return 2 * _prod(out) * _prod(weight[1:])


def _conv_transpose_flops(x: Shape, weight: Shape) -> int:
    """``2 N C_in (C_out / groups) prod(k) prod(in_spatial)``; ``weight`` is ``[C_in, C_out / groups, *k]``."""
    return 2 * x[0] * _prod(weight) * _prod(x[2:])


def _mha_flops(m: nn.MultiheadAttention, q: Shape, k: Shape, v: Shape) -> int:
    """Projections ``2 (L E^2 + S k_dim E + S v_dim E + L E^2) N`` plus ``QK^T`` and ``AV``: ``4 N L S E``."""
    if len(q) == 2:  # unbatched (L, E)
        q, k, v = (1, *q), (1, *k), (1, *v)
    if not m.batch_first:
        q, k, v = (q[1], q[0], q[2]), (k[1], k[0], k[2]), (v[1], v[0], v[2])
    n, L, e = q
    s = k[1]
    proj = 2 * n * (L * e * e + s * k[2] * e + s * v[2] * e + L * e * e)
    return proj + 4 * n * L * s * e


_MATMUL_NAMES = {"matmul", "mm", "bmm", "__matmul__"}


def _weight_dim(m: nn.Module) -> int:
    w = getattr(m, "weight", None)
    return w.dim() if isinstance(w, torch.Tensor) else -1


def _is_conv_like(m: nn.Module) -> bool:
    """``nn.Conv*d``, or a from-scratch module that looks like one (weight ``[C_out, C_in/g, *k]``, stride, groups)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return not isinstance(m, nn.modules.conv._ConvTransposeNd)
    return _weight_dim(m) >= 3 and hasattr(m, "stride") and hasattr(m, "groups")


def _is_linear_like(m: nn.Module) -> bool:
    """``nn.Linear``, or a module with ``in_features``, ``out_features`` and a 2-D weight."""
    return isinstance(m, nn.Linear) or (_weight_dim(m) == 2 and hasattr(m, "in_features")
                                        and hasattr(m, "out_features"))


def _is_mha_like(m: nn.Module) -> bool:
    """``nn.MultiheadAttention``, or a module with its attributes (embed_dim, num_heads, in_proj_weight)."""
    return isinstance(m, nn.MultiheadAttention) or all(hasattr(m, a) for a in ("embed_dim", "num_heads",
                                                                                "in_proj_weight", "batch_first"))


def count_flops(kind: str, target: Any, module: nn.Module | None, in_shapes: Sequence[Shape | None],
                out_shapes: Sequence[Shape]) -> int:
    """FLOPs of one operation (2 per multiply-add; 0 for operations FlopCounterMode does not count).

    ``kind`` is ``"module"``, ``"function"`` or ``"method"``; ``target`` the module class, function or
    method name; ``in_shapes`` the shapes of the positional arguments (``None`` for non-tensors), in order.
    """
    out = out_shapes[0] if out_shapes else None
    if kind == "module" and module is not None:
        x = in_shapes[0] if in_shapes else None
        if isinstance(module, nn.modules.conv._ConvTransposeNd) and x is not None:
            return _conv_transpose_flops(x, tuple(module.weight.shape))
        if _is_conv_like(module) and out is not None:
            return _conv_flops(out, tuple(module.weight.shape))
        if _is_linear_like(module) and x is not None:
            return 2 * _prod(x[:-1]) * module.in_features * module.out_features
        if _is_mha_like(module) and len(in_shapes) >= 3 and None not in in_shapes[:3]:
            return _mha_flops(module, *in_shapes[:3])
        return 0
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    shapes = list(in_shapes)
    if name in _MATMUL_NAMES and len(shapes) >= 2 and None not in shapes[:2]:
        return _matmul_flops(shapes[0], shapes[1])
    if name in ("addmm", "baddbmm") and len(shapes) >= 3 and None not in shapes[1:3]:
        return _matmul_flops(shapes[1], shapes[2])
    if name == "linear" and len(shapes) >= 2 and None not in shapes[:2]:
        w = shapes[1]
        return 2 * _prod(shapes[0][:-1]) * w[-1] * (w[0] if len(w) == 2 else 1)
    if name in ("conv1d", "conv2d", "conv3d") and out is not None and len(shapes) >= 2 and shapes[1]:
        return _conv_flops(out, shapes[1])
    if name.startswith("conv_transpose") and len(shapes) >= 2 and shapes[0] and shapes[1]:
        return _conv_transpose_flops(shapes[0], shapes[1])
    if name == "scaled_dot_product_attention" and len(shapes) >= 3 and None not in shapes[:3]:
        q, k, v = shapes[:3]
        return 2 * _prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])
    return 0


# --------------------------------------------------------------------------- fx tracing
class _LeafTracer(fx.Tracer):
    """Leaves: ``torch.nn`` modules without children, and ``nn.MultiheadAttention``; trace through the rest."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, nn.MultiheadAttention):
            return True
        from_torch = type(m).__module__.startswith(("torch.nn", "torch.ao.nn"))
        return from_torch and next(m.children(), None) is None


@serialized
def fx_trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` graph of ``model`` with the leaf policy of :func:`trace_shapes` (raises on failure)."""
    tracer = _LeafTracer()
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _tensor_shapes(value: Any) -> tuple[Shape, ...]:
    leaves = torch.utils._pytree.tree_leaves(value)
    return tuple(tuple(t.shape) for t in leaves if isinstance(t, torch.Tensor))


def _arg_shapes(args: Sequence[Any]) -> list[Shape | None]:
    return [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]


def _target_name(node: fx.Node, module: nn.Module | None) -> str:
    if node.op == "call_module" and module is not None:
        return type(module).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "placeholder":
        return "input"
    return str(node.target)


def _expectation(module: nn.Module | None, name: str, shapes: Sequence[Shape]) -> str:
    """What the failing operation expects, in words, when the shapes it got violate it (else empty)."""
    x = shapes[0] if shapes else ()
    if isinstance(module, nn.Linear) and x and x[-1] != module.in_features:
        return f"Linear expects the last dim to be in_features={module.in_features}"
    if isinstance(module, nn.modules.conv._ConvNd) and len(x) > 1 and x[1] != module.in_channels:
        return f"{type(module).__name__} expects {module.in_channels} input channels (dim 1)"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and len(x) > 1 and x[1] != module.num_features:
        return f"{type(module).__name__} expects {module.num_features} channels (dim 1)"
    if name in ("cat", "concat", "stack"):
        return f"torch.{name} needs equal sizes in every dim but the one it joins"
    if name in ("add", "sub", "mul", "truediv", "iadd", "imul"):
        return "an element-wise op needs shapes that broadcast (equal sizes, or 1)"
    return ""


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph node by node, recording shapes and FLOPs; a failing node raises :class:`ShapeError`."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # our ShapeError already names the node
        self.rows: list[NodeInfo] = []
        self._seen_params: set[int] = set()

    def _own_params(self, tensors: Sequence[torch.Tensor]) -> int:
        total = 0
        for p in tensors:
            if isinstance(p, nn.Parameter) and id(p) not in self._seen_params:
                self._seen_params.add(id(p))
                total += p.numel()
        return total

    def run_node(self, n: fx.Node) -> Any:
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        flat_in = _tensor_shapes((args, kwargs))
        name = _target_name(n, module)
        try:
            out = getattr(self, n.op)(n.target, args, kwargs)
        except Exception as err:  # noqa: BLE001 -- re-raised with the node named
            where = f"module '{n.target}' ({name})" if module is not None else f"{n.op} {name}"
            hint = _expectation(module, name, flat_in)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ShapeError(f"trace_shapes: node '{n.name}', {where}, failed on input shapes "
                             f"{_fmt_shapes(flat_in)}{'; ' + hint if hint else ''}; torch says: {first}") from err
        if n.op == "output":
            return out
        out_shapes = _tensor_shapes(out)
        params, flops = 0, 0
        if module is not None:
            params = self._own_params(list(module.parameters()))
            flops = count_flops("module", type(module), module, _arg_shapes(args), out_shapes)
        elif n.op == "get_attr":
            params = self._own_params([out]) if isinstance(out, torch.Tensor) else 0
        elif n.op in ("call_function", "call_method"):
            flops = count_flops("function" if n.op == "call_function" else "method", n.target, None,
                                _arg_shapes(args), out_shapes)
        self.rows.append(NodeInfo(n.name, n.op, name, str(n.target) if module is not None else "",
                                  flat_in if n.op != "placeholder" else (), out_shapes, params, flops))
        if isinstance(out, torch.Tensor):  # what ShapeProp stores; lets fx passes read the shapes
            n.meta["tensor_meta"] = fx.passes.shape_prop._extract_tensor_metadata(out)
        return out


# --------------------------------------------------------------------------- hooks fallback
def _hook_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    tracer = _LeafTracer()
    leaves = []
    for name, m in model.named_modules():
        if tracer.is_leaf_module(m, name) or next(m.children(), None) is None or _is_mha_like(m):
            if not any(name.startswith(leaf + ".") for leaf, _ in leaves):
                leaves.append((name or type(m).__name__, m))
    return leaves


def _trace_hooks(model: nn.Module, x: torch.Tensor, reason: str) -> ShapeTrace:
    rows: list[NodeInfo] = [NodeInfo("x", "placeholder", "input", "", (), (tuple(x.shape),), 0, 0)]
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module, tuple[Shape, ...]]] = []
    leaves = dict((id(m), name) for name, m in _hook_leaves(model))
    names = {id(m): name or type(model).__name__ for name, m in model.named_modules()}

    def pre(m: nn.Module, args: tuple) -> None:
        stack.append((names[id(m)], m, _tensor_shapes(args)))

    def post(m: nn.Module, args: tuple, out: Any) -> None:
        stack.pop()
        if id(m) not in leaves:
            return
        params = 0
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
        out_shapes = _tensor_shapes(out)
        flops = count_flops("module", type(m), m, _arg_shapes(args), out_shapes)
        rows.append(NodeInfo(leaves[id(m)], "hook", type(m).__name__, leaves[id(m)], _tensor_shapes(args),
                             out_shapes, params, flops))

    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        result = model(x)
    except Exception as err:  # noqa: BLE001 -- re-raised with the module named
        name, m, shapes = stack[-1] if stack else (type(model).__name__, model, (tuple(x.shape),))
        hint = _expectation(m, "", shapes)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(f"trace_shapes: module '{name}' ({type(m).__name__}) failed on input shapes "
                         f"{_fmt_shapes(shapes)}{'; ' + hint if hint else ''}; torch says: {first}") from err
    finally:
        for h in handles:
            h.remove()
    return ShapeTrace(rows, "hooks", tuple(x.shape), reason, None, _tensor_shapes(result))


# --------------------------------------------------------------------------- entry point
def _example_input(model: nn.Module, input_size: Sequence[int] | torch.Tensor, dtype: torch.dtype | None,
                   fn: str) -> torch.Tensor:
    if isinstance(input_size, torch.Tensor):
        return input_size
    if isinstance(input_size, torch.Size):
        input_size = tuple(input_size)
    if isinstance(input_size, str) or not isinstance(input_size, Sequence):
        raise TypeError(f"{fn}: input_size must be a tuple of ints (N, C, ...) or a tensor, "
                        f"got {type(input_size).__name__}")
    shape = tuple(input_size)
    if not shape or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise TypeError(f"{fn}: input_size must be a non-empty tuple of ints, got {shape}")
    if any(v < 1 for v in shape):
        raise ValueError(f"{fn}: input_size must be positive, got {shape}")
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    if dtype is None:  # the model's floating-point dtype (float64 models get float64 inputs)
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    return torch.zeros(shape, dtype=dtype, device=device)


def _with_eval(model: nn.Module, run: Callable[[], Any]) -> Any:
    """Run in eval mode without autograd, then restore every submodule's training flag."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return run()
    finally:
        for m, flag in flags.items():
            m.training = flag


@serialized
def trace_shapes(model: nn.Module, input_size: Sequence[int] | torch.Tensor, *, method: str = "auto",
                 dtype: torch.dtype | None = None) -> ShapeTrace:
    """Per-node op, input/output shapes, parameters and FLOPs of ``model`` on one input.

    ``input_size`` is the full input shape ``(N, C, *spatial)`` -- zeros of ``dtype`` (default: the model's
    floating dtype) on the model's device are used; build a large model on the ``meta`` device to get its
    shapes without computing -- or an example tensor (e.g. integer token ids). ``method``: ``"fx"``,
    ``"hooks"`` or ``"auto"`` (fx, falling back to hooks when fx cannot trace the model;
    ``ShapeTrace.method`` / ``fallback_reason`` say so).
    The model runs in eval mode under ``torch.no_grad()``; its training flags are restored afterwards.

    Raises :class:`ShapeError` (a ``ValueError``) naming the failing node and the shapes it got, ``TypeError``
    for a non-module or a bad ``input_size``, ``ValueError`` for an unknown ``method``.
    PyTorch counterparts: ``torchinfo.summary`` (shapes, params), ``FlopCounterMode`` (FLOPs).
    """
    fn = "trace_shapes"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be an nn.Module, got {type(model).__name__}")
    if method not in ("auto", "fx", "hooks"):
        raise ValueError(f"{fn}: method must be one of ['auto', 'fx', 'hooks'], got {method!r}")
    x = _example_input(model, input_size, dtype, fn)
    if method == "hooks":
        return _with_eval(model, lambda: _trace_hooks(model, x, "method='hooks' was requested"))
    try:
        gm = fx_trace(model)
    except Exception as err:  # noqa: BLE001 -- any tracing failure means: fall back (or say why not)
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if method == "fx":
            raise TypeError(f"{fn}: torch.fx cannot trace {type(model).__name__} ({reason}); "
                            f"use method='hooks' or 'auto'") from err
        return _with_eval(model, lambda: _trace_hooks(model, x, reason))
    recorder = _ShapeRecorder(gm)
    result = _with_eval(gm, lambda: recorder.run(x))
    return ShapeTrace(recorder.rows, "fx", tuple(x.shape), None, gm, _tensor_shapes(result))



# --------------------------------------------------------------------------- input sizes and the profile plot
@serialized
def valid_input_sizes(model: nn.Module, in_channels: int, sizes: Iterable[int], *, spatial_dims: int = 2,
                      same_size: bool = False) -> list[int]:
    """The sizes ``n`` in ``sizes`` for which ``model`` runs on a ``(1, in_channels, n, ..., n)`` input.

    A U-Net concatenates each decoder map with the encoder map of the same level, so an input that a
    stride-2 layer halves with rounding (``floor(25 / 2) = 12``, upsampled to 24) breaks the ``torch.cat``.
    Each size is traced with :func:`trace_shapes` on a ``meta`` copy of the model (shapes only, no memory,
    no arithmetic); a :class:`ShapeError` marks it invalid. ``same_size=True`` also requires the output's
    spatial size to equal the input's (a segmentation network). Square inputs (every spatial dim ``n``).
    Counterpart: running the real model and catching the ``RuntimeError`` (``tests/test_shapes.py``).
    """
    fn = "valid_input_sizes"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be an nn.Module, got {type(model).__name__}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"{fn}: in_channels must be a positive int, got {in_channels!r}")
    if isinstance(spatial_dims, bool) or spatial_dims not in (1, 2, 3):
        raise ValueError(f"{fn}: spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    candidates = list(sizes)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in candidates):
        raise ValueError(f"{fn}: sizes must be positive ints, got {candidates[:8]}")
    tensors = [*model.parameters(), *model.buffers()]
    meta = model if tensors and all(t.is_meta for t in tensors) else copy.deepcopy(model).to("meta")
    try:  # trace the graph once (it does not depend on the size), propagate each size through it
        gm = fx_trace(meta)
    except Exception:  # noqa: BLE001 -- not fx-traceable: trace_shapes falls back to hooks per size
        gm = None
    valid = []
    for n in candidates:
        shape = (1, in_channels) + (n,) * spatial_dims
        try:
            if gm is None:
                out = trace_shapes(meta, shape).output_shape
            else:
                x = _example_input(meta, shape, None, fn)
                outs = _tensor_shapes(_with_eval(gm, lambda x=x: _ShapeRecorder(gm).run(x)))
                out = outs[0] if outs else None
        except ShapeError:
            continue
        if same_size and (out is None or tuple(out[2:]) != (n,) * spatial_dims):
            continue
        valid.append(n)
    return valid


def plot_spatial_profile(trace: ShapeTrace, ax: Any = None, title: str | None = None) -> Any:
    """Plot resolution (H, and W where it differs) and channels C after every module call of ``trace``.

    The x axis is the index into :meth:`ShapeTrace.spatial_profile`; both y axes are log2. Returns the
    resolution axis (the channel axis is its ``twinx``).
    """
    import matplotlib.pyplot as plt

    profile = trace.spatial_profile()
    if not profile:
        raise ValueError("plot_spatial_profile: the trace has no module call with an [N, C, *spatial] output")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    heights = [p[2][0] for p in profile]
    ax.plot(heights, color="C0", label="H")
    if any(len(p[2]) > 1 and p[2][-1] != p[2][0] for p in profile):
        ax.plot([p[2][-1] for p in profile], color="C0", ls="--", label="W")
    ax.set_yscale("log", base=2)
    ax.set_ylabel("resolution")
    ax.set_xlabel("module call (conv / norm / pool ...)")
    twin = ax.twinx()
    twin.plot([p[1] for p in profile], color="C1", label="channels C")
    twin.set_yscale("log", base=2)
    twin.set_ylabel("channels C")
    twin.grid(False)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center", fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax

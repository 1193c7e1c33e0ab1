"""dlhelpers.graph_receptive vs autograd on random branching nets, vs dlhelpers.receptive on chains."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from dlhelpers import receptive as R
from dlhelpers.graph_receptive import graph_empirical_receptive_field, graph_receptive_field, path_receptive_fields

_CONV = (nn.Conv1d, nn.Conv2d)
_MAX = (nn.MaxPool1d, nn.MaxPool2d)
_AVG = (nn.AvgPool1d, nn.AvgPool2d)
_ADAPT = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


class RandomDAG(nn.Module):
    """A network given as a list of nodes: ``(op, parents, module)``; node 0 is the input."""

    def __init__(self, spec: list[tuple[str, tuple[int, ...], nn.Module | None]], nd: int) -> None:
        super().__init__()
        self.nd = nd
        self.ops = [(op, parents) for op, parents, _ in spec]
        self.layers = nn.ModuleList([m if m is not None else nn.Identity() for _, _, m in spec])

    def forward(self, x):
        values = [x]
        for (op, parents), layer in zip(self.ops, self.layers):
            inputs = [values[p] for p in (parents[:1] if op == "pad" else parents)]
            if op == "layer":
                values.append(layer(inputs[0]))
            elif op == "add":
                values.append(inputs[0] + inputs[1])
            elif op == "cat":
                values.append(torch.cat(inputs, 1))
            elif op == "gate":  # squeeze-excitation: x * sigmoid(global average)
                values.append(inputs[0] * torch.sigmoid(layer(inputs[0])))
            else:  # "pad": causal / anti-causal zero padding, then a crop back to the size
                left = parents[1] if len(parents) > 1 else 0
                values.append(F.pad(inputs[0], (left, -left) * self.nd))
        return values[-1]


@st.composite
def branching_net(draw, nd: int, gates: bool = False, max_nodes: int = 7):
    """Random DAG: stride-1 'same' layers, stride-2 layers that keep even sizes equal, add/cat merges."""
    conv, maxp, avgp, adapt = _CONV[nd - 1], _MAX[nd - 1], _AVG[nd - 1], _ADAPT[nd - 1]
    c0 = draw(st.integers(1, 2))
    nodes = [(c0, 0)]  # (channels, level = number of halvings)
    spec = []
    for _ in range(draw(st.integers(2, max_nodes))):
        i = draw(st.integers(0, len(nodes) - 1))
        c, level = nodes[i]
        kinds = ["conv", "conv", "pool", "down", "merge", "pad"] + (["gate"] if gates else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "merge":
            partners = [j for j, (cj, lj) in enumerate(nodes) if lj == level and j != i]
            if not partners:
                kind = "conv"
            else:
                j = draw(st.sampled_from(partners))
                op = "add" if nodes[j][0] == c and draw(st.booleans()) else "cat"
                spec.append((op, (i, j), None))
                nodes.append((c if op == "add" else c + nodes[j][0], level))
                continue
        if kind == "conv":
            k, d = draw(st.sampled_from([1, 3, 5])), draw(st.integers(1, 2))
            c_out = draw(st.integers(1, 3))
            spec.append(("layer", (i,), conv(c, c_out, k, padding=d * (k - 1) // 2, dilation=d)))
            nodes.append((c_out, level))
        elif kind == "pool":
            spec.append(("layer", (i,), draw(st.sampled_from([maxp, avgp]))(3, 1, 1)))
            nodes.append((c, level))
        elif kind == "down":  # on even sizes all of these halve exactly; centres 0, 0.5, 0
            k, p = draw(st.sampled_from([(1, 0), (2, 0), (3, 1)]))
            if draw(st.booleans()):
                c_out = draw(st.integers(1, 3))
                spec.append(("layer", (i,), conv(c, c_out, k, stride=2, padding=p)))
            else:
                c_out = c
                pool = maxp if k > 1 and draw(st.booleans()) else avgp
                spec.append(("layer", (i,), pool(k, 2, p)))
            nodes.append((c_out, level + 1))
        elif kind == "pad":
            spec.append(("pad", (i, draw(st.integers(-2, 2))), None))
            nodes.append((c, level))
        else:
            spec.append(("gate", (i,), adapt(1)))
            nodes.append((c, level))
    return RandomDAG(spec, nd).double(), c0, max(level for _, level in nodes)


def _fitting_shape(model: nn.Module, c0: int, nd: int, levels: int) -> tuple[int, ...]:
    """Smallest input (a multiple of 2^levels) whose centre output unit's field lies inside it."""
    n = 2 ** max(levels, 1) * 4
    while True:
        shape = (1, c0, *(n,) * nd)
        box = graph_receptive_field(model, shape)[-1].box()
        if all(lo >= 0 and hi < n for lo, hi in box):
            return shape
        n *= 2


@pytest.mark.parametrize("nd", [1, 2])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_dag_receptive_field_equals_gradient_box(nd, data):
    model, c0, levels = data.draw(branching_net(nd, max_nodes=7 if nd == 1 else 5))
    shape = _fitting_shape(model, c0, nd, levels)
    assume(shape[2] <= (4096 if nd == 1 else 128))
    last = graph_receptive_field(model, shape)[-1]
    emp = graph_empirical_receptive_field(model, shape)
    assert (emp.lo, emp.hi) == tuple(zip(*last.box(emp.position)))
    assert emp.size == last.size
    # the union is at least as large as any single path's field, and equal to the max when aligned
    paths = path_receptive_fields(model, shape)
    widest = tuple(max(p[1][d] for p in paths) for d in range(nd))
    assert all(u >= w for u, w in zip(last.size, widest))
    if last.aligned:
        assert last.size == widest
        assert {p[3] for p in paths} == {last.start}


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_gated_nets_gradient_stays_inside_the_box(data):
    model, c0, levels = data.draw(branching_net(1, gates=True))
    n = 2 ** max(levels, 1) * 8
    shape = (1, c0, n)
    last = graph_receptive_field(model, shape)[-1]
    pos = (data.draw(st.integers(0, last.output_shape[2] - 1)),)
    emp = graph_empirical_receptive_field(model, shape, position=pos)
    (lo, hi), = last.box(pos)
    if emp.lo is not None:
        assert max(lo, 0) <= emp.lo[0] <= emp.hi[0] <= min(hi, n - 1)
    if last.broadcast:
        assert not last.uniform


@settings(max_examples=20, deadline=None)
@given(data=st.data(), nd=st.integers(1, 2))
def test_equals_sequential_result_on_chains(data, nd):
    conv, maxp, avgp = _CONV[nd - 1], _MAX[nd - 1], _AVG[nd - 1]
    c = c0 = data.draw(st.integers(1, 3))
    layers = []
    for _ in range(data.draw(st.integers(1, 5))):
        kind = data.draw(st.sampled_from(["conv", "max", "avg", "relu", "bn"]))
        k = data.draw(st.integers(1, 4))
        if kind == "conv":
            c_out, s, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
            layers.append(conv(c, c_out, k, stride=s, padding=data.draw(st.integers(0, 3)), dilation=d))
            c = c_out
        elif kind in ("max", "avg"):
            pool = maxp if kind == "max" else avgp
            layers.append(pool(k, data.draw(st.integers(1, 3)), data.draw(st.integers(0, k // 2)),
                               ceil_mode=data.draw(st.booleans())))
        else:
            layers.append(nn.ReLU() if kind == "relu" else (nn.BatchNorm1d, nn.BatchNorm2d)[nd - 1](c))
    chain = nn.Sequential(*layers)
    shape = (1, c0, *(data.draw(st.integers(40, 80)),) * nd)
    try:
        seq = R.receptive_field(chain, shape)
    except ValueError:
        assume(False)
    dag = graph_receptive_field(chain, shape)
    assert len(dag) == len(seq)
    for a, b in zip(dag, seq):
        assert (a.output_shape, a.size, a.jump, a.start) == (b.output_shape, b.size, b.jump, b.start)
        assert a.aligned and a.uniform and a.box() == b.box(tuple((n - 1) // 2 for n in b.output_shape[2:]))


def test_misaligned_paths_and_published_fields():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.main, self.short = nn.Conv2d(1, 1, 2, stride=2), nn.Conv2d(1, 1, 1, stride=2)

        def forward(self, x):
            return self.main(x) + self.short(x)

    add = graph_receptive_field(Block(), (1, 1, 16, 16))[-1]
    assert add.offsets == ((0.0, 0.5), (0.0, 0.5)) and not add.aligned and add.size == (2, 2)

    class Causal(nn.Module):  # one path looks left, the other right: the union is wider than both
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3)

        def forward(self, x):
            return self.conv(F.pad(x, (2, 0))) + self.conv(F.pad(x, (0, 2)))

    union = graph_receptive_field(Causal(), (1, 1, 20))[-1]
    assert union.size == (5,) and union.offsets == ((-1.0, 1.0),)
    assert sorted(p[1] for p in path_receptive_fields(Causal(), (1, 1, 20))) == [(3,), (3,)]
    assert graph_empirical_receptive_field(Causal(), (1, 1, 20)).size == (5,)
    # Araujo et al. (Distill 2019): AlexNet 195, VGG-16 212, Inception-v3 1311
    with torch.device("meta"):
        alex = torchvision.models.alexnet(weights=None).features
        vgg = torchvision.models.vgg16(weights=None).features
        inc = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert graph_receptive_field(alex, (1, 3, 224, 224))[-1].size == (195, 195)
    assert graph_receptive_field(vgg, (1, 3, 224, 224))[-1].size == (212, 212)
    rows = {r.name: r for r in graph_receptive_field(inc, (1, 3, 299, 299))}
    assert rows["cat_14"].size == (1311, 1311) and rows["cat_14"].jump == (32, 32)


# --------------------------------------------------------------------------- errors
def test_errors_name_the_node():
    with pytest.raises(TypeError, match=r"node '_0' \(ConvTranspose2d\) is not supported for receptive fields"):
        graph_receptive_field(nn.Sequential(nn.ConvTranspose2d(1, 1, 2, 2)), (1, 1, 8, 8))

    class Interp(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2)

    with pytest.raises(TypeError, match=r"node 'interpolate' \(interpolate\) is not supported"):
        graph_receptive_field(Interp(), (1, 1, 8, 8))

    class SpatialCat(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], 2)

    with pytest.raises(TypeError, match="concatenates along dim 2; only the channel dim 1"):
        graph_receptive_field(SpatialCat(), (1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"pools spatial size \(8,\) to \(3,\); the windows are only uniform"):
        graph_receptive_field(nn.AdaptiveAvgPool1d(3), (1, 1, 8))
    circular = nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular")
    with pytest.raises(TypeError, match=r"node '_0' \(Conv1d\) uses circular padding"):
        graph_receptive_field(nn.Sequential(circular), (1, 1, 8))
    with pytest.raises(TypeError, match="pads with mode 'circular'; only 'constant'"):  # traced into as the root
        graph_receptive_field(circular, (1, 1, 8))
    with pytest.raises(TypeError, match="changes the rank from 4 to 3"):
        graph_receptive_field(nn.Flatten(2), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        graph_receptive_field(None, (1, 1, 8))
    with pytest.raises(ValueError, match=r"input_shape must be \(N, C, L\).* got \(1, 8\)"):
        graph_receptive_field(nn.Conv1d(1, 1, 3), (1, 8))
    with pytest.raises(ValueError, match="node must be one of the spatial nodes"):
        graph_empirical_receptive_field(nn.Conv1d(1, 1, 3), (1, 1, 8), node="fc")
    with pytest.raises(ValueError, match=r"position must be 1 ints inside the output grid \(6,\)"):
        graph_empirical_receptive_field(nn.Conv1d(1, 1, 3), (1, 1, 8), position=(6,))
    with pytest.raises(ValueError, match=r"NodeRF.box: position must be 1 ints"):
        graph_receptive_field(nn.Conv1d(1, 1, 3), (1, 1, 8))[-1].box((9,))
    with pytest.raises(ValueError, match="node must be one of the spatial nodes"):
        path_receptive_fields(nn.Conv1d(1, 1, 3), (1, 1, 8), node="nope")


# --------------------------------------------------------------------------- transposed convolutions, upsampling
@settings(max_examples=15, deadline=None)
@given(nd=st.sampled_from([1, 2]), data=st.data())
def test_empirical_field_through_transposed_convs_equals_the_jacobian(nd, data):
    """U-Net-like nets (transposed convs, upsampling, a skip cat): the probe's gradient box equals the non-zero
    set of d out / d in of the real net with random positive weights (no cancellation possible)."""
    conv, convt = [(nn.Conv1d, nn.ConvTranspose1d), (nn.Conv2d, nn.ConvTranspose2d)][nd - 1]
    k, s = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    kt, st_, pt, dt = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)), data.draw(st.integers(0, 1)),
                       data.draw(st.integers(1, 2)))
    upsample = data.draw(st.sampled_from(["none", "nearest", "linear"]))
    mode = {"nearest": "nearest", "linear": "linear" if nd == 1 else "bilinear"}.get(upsample)
    n = data.draw(st.integers(max(k, 4), 12))
    c = (n - k) // s + 1
    assume((c - 1) * st_ - 2 * pt + dt * (kt - 1) + 1 >= 1)  # the transposed conv's output is not empty

    class EncDec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = conv(1, 2, k, stride=s)
            self.up = convt(2, 2, kt, stride=st_, padding=pt, dilation=dt)
            self.mix = conv(3, 1, 3, padding=1)

        def forward(self, x):
            y = torch.relu(self.up(self.down(x)))
            if upsample != "none":
                y = F.interpolate(y, scale_factor=2, mode=mode)
            y = F.interpolate(y, size=x.shape[2:])  # back to the input grid (identity when equal)
            return self.mix(torch.cat([y, x], 1))

    model = EncDec().double()
    shape = (1, 1) + (n,) * nd
    emp = graph_empirical_receptive_field(model, shape, position=data.draw(st.tuples(*[st.integers(0, n - 1)] * nd)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand_like(p) + 0.1)  # positive: no cancellation, relu stays on
    x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    out = model(x)
    grad_out = torch.zeros_like(out)
    grad_out[(0, 0, *emp.position)] = 1.0
    (g,) = torch.autograd.grad(out, x, grad_out)
    nz = torch.nonzero(g[0, 0])
    assert emp.lo == tuple(int(v) for v in nz.min(0).values) and emp.hi == tuple(int(v) for v in nz.max(0).values)

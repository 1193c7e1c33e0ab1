"""dlhelpers.receptive: analytic shapes vs the real forward pass, analytic receptive fields vs autograd."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlhelpers.receptive import (
    LayerInfo,
    effective_receptive_field,
    empirical_receptive_field,
    format_table,
    output_length,
    receptive_field,
    receptive_field_size,
    rf_step,
    shape_table,
    theoretical_box_fraction,
)

# padding="same" with an even kernel makes PyTorch warn about an extra padded copy: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


def _per_dim(draw, nd: int, values: st.SearchStrategy) -> int | tuple[int, ...]:
    """An int, or (in 2-D, sometimes) a tuple with a different value per spatial dim."""
    if nd > 1 and draw(st.booleans()):
        return tuple(draw(values) for _ in range(nd))
    return draw(values)


def _tup(v: int | tuple[int, ...], nd: int) -> tuple[int, ...]:
    return v if isinstance(v, tuple) else (v,) * nd


@st.composite
def layer(draw, nd: int, channels: int, max_k: int = 4, max_s: int = 3, max_d: int = 3):
    """One random layer and its number of output channels."""
    kind = draw(st.sampled_from(["conv", "conv", "conv", "max", "avg", "act", "bn", "drop"]))
    if kind == "conv":
        out = draw(st.integers(1, 3))
        k = _per_dim(draw, nd, st.integers(1, max_k))
        d = _per_dim(draw, nd, st.integers(1, max_d))
        s = _per_dim(draw, nd, st.integers(1, max_s))
        if all(v == 1 for v in _tup(s, nd)) and draw(st.integers(0, 4)) == 0:
            p = draw(st.sampled_from(["same", "valid"]))
        else:
            p = _per_dim(draw, nd, st.integers(0, 3))
        return CONV[nd](channels, out, k, stride=s, padding=p, dilation=d, bias=draw(st.booleans())), out
    if kind == "max":
        k = _per_dim(draw, nd, st.integers(1, max_k))
        d = _per_dim(draw, nd, st.integers(1, min(2, max_d)))
        s = draw(st.none() | st.just(_per_dim(draw, nd, st.integers(1, max_s))))
        p = tuple(draw(st.integers(0, ki // 2)) for ki in _tup(k, nd))  # PyTorch: at most k // 2
        return MAXPOOL[nd](k, stride=s, padding=p, dilation=d, ceil_mode=draw(st.booleans())), channels
    if kind == "avg":
        k = _per_dim(draw, nd, st.integers(1, max_k))
        s = draw(st.none() | st.just(_per_dim(draw, nd, st.integers(1, max_s))))
        p = tuple(draw(st.integers(0, ki // 2)) for ki in _tup(k, nd))
        return AVGPOOL[nd](k, stride=s, padding=p, ceil_mode=draw(st.booleans()),
                           count_include_pad=draw(st.booleans())), channels
    if kind == "act":
        return draw(st.sampled_from([nn.ReLU(), nn.GELU(), nn.Tanh(), nn.Identity()])), channels
    if kind == "bn":
        return BATCHNORM[nd](channels), channels
    return nn.Dropout(0.3), channels


@st.composite
def cnn(draw, nd: int, max_layers: int = 4, **limits):
    """A random (sometimes nested) nn.Sequential CNN and its input channel count."""
    c_in = draw(st.integers(1, 3))
    layers, c = [], c_in
    for _ in range(draw(st.integers(1, max_layers))):
        m, c = draw(layer(nd, c, **limits))
        layers.append(m)
    if len(layers) > 2 and draw(st.booleans()):  # nest a block
        i = draw(st.integers(0, len(layers) - 2))
        layers[i:i + 2] = [nn.Sequential(*layers[i:i + 2])]
    return nn.Sequential(*layers).double(), c_in


def _forward_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Output shape of every leaf layer, recorded by forward hooks on the real model."""
    shapes, hooks = [], []
    for m in model.modules():
        if not isinstance(m, nn.Sequential):
            hooks.append(m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape))))
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


# --------------------------------------------------------------------------- shapes vs the forward pass
@pytest.mark.parametrize("nd", [1, 2])
@given(data=st.data())
def test_output_shapes_match_forward_pass(nd, data):
    model, c_in = data.draw(cnn(nd))
    spatial = tuple(data.draw(st.integers(1, 24)) for _ in range(nd))
    shape = (data.draw(st.integers(1, 2)), c_in, *spatial)
    x = torch.randn(shape, dtype=torch.float64)
    try:
        expected = _forward_shapes(model, x)
    except RuntimeError:  # PyTorch refuses: the input is too small for some layer
        with pytest.raises(ValueError, match="receptive_field: input too small"):
            receptive_field(model, shape)
        return
    infos = receptive_field(model, shape)
    assert infos[0].output_shape == shape and infos[0].size == (1,) * nd
    assert [i.output_shape for i in infos[1:]] == expected
    assert [i.params for i in infos[1:]] == [sum(p.numel() for p in m.parameters()) for m in model.modules()
                                             if not isinstance(m, nn.Sequential)]


@given(n=st.integers(1, 30), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
       ceil_mode=st.booleans(), data=st.data())
def test_output_length_matches_pytorch(n, k, s, d, ceil_mode, data):
    p = data.draw(st.integers(0, k // 2))
    x = torch.zeros(1, 1, n, dtype=torch.float64)
    ours = output_length(n, k, s, p, d, ceil_mode)
    try:
        theirs = nn.functional.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode).shape[-1]
    except RuntimeError:
        assert ours < 1
        return
    assert ours == theirs
    if not ceil_mode:
        assert ours == nn.functional.conv1d(x, torch.ones(1, 1, k, dtype=torch.float64), stride=s,
                                            padding=p, dilation=d).shape[-1]


# --------------------------------------------------------------------------- receptive field vs autograd
def _large_enough(model: nn.Module, c_in: int, nd: int, extra: tuple[int, ...]) -> tuple[int, ...]:
    """An input shape whose centre output unit sees a receptive field lying entirely inside the input."""
    probe = receptive_field(model, (1, c_in, *(4096,) * nd))
    reach = [0] * nd  # how far unit 0 reaches into the left padding: sum_l p_l * j_{l-1}
    for prev, cur in zip(probe, probe[1:]):
        for i in range(nd):
            reach[i] += cur.padding[i] * prev.jump[i]
    last = probe[-1]
    return (1, c_in, *(2 * (last.size[i] + reach[i] + last.jump[i]) + extra[i] for i in range(nd)))


@pytest.mark.parametrize("nd", [1, 2])
@settings(max_examples=30)
@given(data=st.data())
def test_analytic_receptive_field_equals_gradient_support(nd, data):
    limits = {"max_k": 4, "max_s": 2, "max_d": 2} if nd == 2 else {}
    model, c_in = data.draw(cnn(nd, **limits))
    extra = tuple(data.draw(st.integers(0, 5)) for _ in range(nd))
    shape = _large_enough(model, c_in, nd, extra)
    last = receptive_field(model, shape)[-1]
    spatial, out_spatial = shape[2:], last.output_shape[2:]

    # the centre unit: its receptive field lies inside the input, so the gradient's box is the whole RF
    emp = empirical_receptive_field(model, shape)
    box = last.box(emp.position)
    assert all(0 <= lo and hi < n for (lo, hi), n in zip(box, spatial)), "test set-up: RF not inside"
    torch.testing.assert_close(torch.tensor(emp.size), torch.tensor(last.size), rtol=0, atol=0)
    torch.testing.assert_close(torch.tensor(emp.lo), torch.tensor([lo for lo, _ in box]), rtol=0, atol=0)
    torch.testing.assert_close(torch.tensor(emp.hi), torch.tensor([hi for _, hi in box]), rtol=0, atol=0)
    centre = torch.tensor(last.centre(emp.position), dtype=torch.float64)
    torch.testing.assert_close((torch.tensor(emp.lo) + torch.tensor(emp.hi)).double() / 2, centre)

    # any unit: the gradient never leaves the analytic box clipped to the input (equal when inside)
    pos = tuple(data.draw(st.integers(0, n - 1)) for n in out_spatial)
    emp = empirical_receptive_field(model, shape, pos)
    box = last.box(pos)
    clipped = last.box(pos, clip_to=spatial)
    fully_inside = all(0 <= lo and hi < n for (lo, hi), n in zip(box, spatial))
    if emp.lo is None:  # every path from this unit ends in padding: only possible at a border
        assert emp.size == (0,) * nd and emp.grad.sum().item() == 0 and not fully_inside
        return
    for (clo, chi), elo, ehi in zip(clipped, emp.lo, emp.hi):
        assert clo <= elo <= ehi <= chi
    if fully_inside:  # both extreme paths stay on real units: the box is reached exactly
        assert (emp.lo, emp.hi) == tuple(zip(*box))
    inside = emp.grad[tuple(slice(lo, hi + 1) for lo, hi in clipped)]
    torch.testing.assert_close(inside.sum(), emp.grad.sum())


@settings(max_examples=20)
@given(data=st.data())
def test_effective_rf_of_real_model_lies_inside_theoretical_box(data):
    model, c_in = data.draw(cnn(2, max_layers=3, max_s=2, max_d=2))
    shape = _large_enough(model, c_in, 2, (3, 3))
    x = torch.randn(3, *shape[1:], dtype=torch.float64)
    last = receptive_field(model, shape)[-1]
    model.eval()
    erf = effective_receptive_field(model, x)
    pos = tuple((n - 1) // 2 for n in last.output_shape[2:])
    assert erf.shape == shape[2:]
    assert theoretical_box_fraction(erf, last.box(pos)) == pytest.approx(1.0) or erf.sum() == 0


@given(data=st.data())
def test_effective_rf_of_all_ones_linear_model_equals_probe_gradient(data):
    """Backward check: with all-ones weights the real model IS the probe, so both gradients agree."""
    model, c_in = data.draw(cnn(1, max_layers=4))
    model = nn.Sequential(*[m for m in model.modules() if isinstance(m, nn.Conv1d | nn.AvgPool1d)]).double()
    if len(model) == 0:
        model = nn.Sequential(nn.Conv1d(c_in, 2, 3)).double()
    c_in = model[0].in_channels if isinstance(model[0], nn.Conv1d) else c_in
    for m in model:
        if isinstance(m, nn.Conv1d):
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    channels = [c_in]
    for m in model:
        channels.append(m.out_channels if isinstance(m, nn.Conv1d) else channels[-1])
    for m, c in zip(model, channels):
        if isinstance(m, nn.Conv1d):
            assert m.in_channels == c
    shape = _large_enough(model, c_in, 1, (data.draw(st.integers(0, 4)),))
    emp = empirical_receptive_field(model, shape)
    erf = effective_receptive_field(model, torch.ones(shape, dtype=torch.float64))
    torch.testing.assert_close(erf, emp.grad)


# --------------------------------------------------------------------------- arithmetic helpers
@given(ks=st.lists(st.integers(1, 7), min_size=1, max_size=6), data=st.data())
def test_closed_form_and_rf_step_match_receptive_field(ks, data):
    n = len(ks)
    ss = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    ds = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    ps = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    model = nn.Sequential(*[nn.Conv1d(1, 1, k, s, p, d) for k, s, p, d in zip(ks, ss, ps, ds)])
    last = receptive_field(model, (1, 1, 10_000))[-1]
    assert receptive_field_size(ks, ss, ds) == last.size[0]
    r, j, start = 1, 1, 0.0
    for k, s, p, d in zip(ks, ss, ps, ds):
        r, j, start = rf_step(r, j, start, k, s, p, d)
    assert (r, j, start) == (last.size[0], last.jump[0], last.start[0])


def test_hand_worked_example_and_tables():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, dilation=2), nn.Flatten(), nn.Linear(800, 10))
    infos = receptive_field(model, (1, 1, 28, 28))
    assert [i.name for i in infos] == ["input", "0", "1", "2", "3"]  # stops at Flatten
    assert [(i.size[0], i.jump[0], i.start[0]) for i in infos] == [(1, 1, 0), (3, 1, 0), (3, 1, 0),
                                                                   (4, 2, 0.5), (12, 2, 4.5)]
    assert infos[-1].box((0, 0)) == ((-1, 10), (-1, 10))
    table = shape_table(model, (1, 1, 28, 28))
    assert list(table["RF"]) == ["1", "3", "3", "4", "12"]
    assert table["params"].sum() == 40 + 296
    text = format_table(infos)
    assert "total params: 336" in text and "[1, 8, 10, 10]" in text
    rect = receptive_field(nn.Conv2d(1, 1, (3, 5), stride=(1, 2)), (1, 1, 9, 9))
    assert shape_table(rect)["RF"].iloc[-1] == "3x5" and rect[-1].name == "Conv2d"


def test_adaptive_pool_and_3d():
    model = nn.Sequential(nn.Conv3d(2, 3, 3, padding=1), nn.MaxPool3d(2), nn.AdaptiveAvgPool3d(1))
    infos = receptive_field(model, (1, 2, 8, 8, 8))
    assert infos[-1].output_shape == (1, 3, 1, 1, 1) and infos[-1].size == (3 + 1 + 3 * 2,) * 3
    emp = empirical_receptive_field(model, (1, 2, 8, 8, 8))
    assert emp.lo == (0, 0, 0) and emp.hi == (7, 7, 7)
    assert model(torch.zeros(1, 2, 8, 8, 8)).shape == infos[-1].output_shape


# --------------------------------------------------------------------------- errors
def test_error_unsupported_layer():
    with pytest.raises(TypeError, match=r"unsupported layer '1' of type Linear"):
        receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3), nn.Linear(8, 2)), (1, 1, 10))
    with pytest.raises(TypeError, match="unsupported layer 'TinyNet' of type TinyNet"):
        class TinyNet(nn.Module):
            def forward(self, x):
                return x
        receptive_field(TinyNet(), (1, 1, 10))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        receptive_field("conv", (1, 1, 10))


def test_error_wrong_rank():
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d\) expects 2 spatial dims, but the input has 1"):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 1, 28))
    with pytest.raises(ValueError, match="input_shape must be .* 3-D to 5-D, got 2-D"):
        receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3)), (1, 28))
    with pytest.raises(ValueError, match=r"\(BatchNorm2d\) expects 2 spatial dims"):
        receptive_field(nn.Sequential(nn.BatchNorm2d(1)), (1, 1, 5))
    with pytest.raises(TypeError, match="input_shape must hold ints"):
        receptive_field(nn.Conv1d(1, 1, 3), (1, 1, 5.0))
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        receptive_field(nn.Conv1d(1, 1, 3), 5)
    with pytest.raises(ValueError, match="input_shape must be positive"):
        receptive_field(nn.Conv1d(1, 1, 3), (1, 1, 0))


def test_error_input_too_small():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 5))
    with pytest.raises(ValueError, match=r"input too small: layer '2' \(Conv2d\) .* would output \(0, 0\)"):
        receptive_field(model, (1, 1, 10, 10))
    with pytest.raises(RuntimeError):  # PyTorch agrees
        model(torch.zeros(1, 1, 10, 10))
    with pytest.raises(ValueError, match="input too small"):
        empirical_receptive_field(model, (1, 1, 10, 10))


POOLS = [nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d]


@settings(max_examples=120, deadline=None)
@given(cls=st.sampled_from(POOLS), k=st.integers(1, 4), s=st.integers(1, 3), n=st.integers(1, 5),
       ceil_mode=st.booleans(), d=st.integers(1, 2), data=st.data())
def test_single_pool_accepts_exactly_what_torch_accepts(cls, k, s, n, ceil_mode, d, data):
    """Small inputs, every pool type: we raise exactly when torch raises, else we give torch's shape.

    Torch's AvgPool3d (only it) also rejects an *unpadded* input smaller than the kernel."""
    p = data.draw(st.integers(0, k // 2), label="padding")
    nd = int(cls.__name__[-2])
    kwargs = {"dilation": d} if cls in POOLS[:3] else {}
    layer = cls(k, stride=s, padding=p, ceil_mode=ceil_mode, **kwargs)
    shape = (1, 1) + (n,) * nd
    try:
        expected = tuple(layer(torch.zeros(shape)).shape)
    except RuntimeError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="input too small"):
            receptive_field(nn.Sequential(layer), shape)
    else:
        assert receptive_field(nn.Sequential(layer), shape)[-1].output_shape == expected


def test_avgpool3d_unpadded_input_smaller_than_kernel_raises_like_torch():
    model = nn.Sequential(nn.AvgPool3d(2, 3, 1))
    with pytest.raises(RuntimeError):
        model(torch.zeros(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"AvgPool3d requires every input size >= kernel_size before padding"):
        receptive_field(model, (1, 1, 1, 1, 1))
    assert receptive_field(model, (1, 1, 2, 2, 2))[-1].output_shape == tuple(model(torch.zeros(1, 1, 2, 2, 2)).shape)
    # the same configuration in 2-D is accepted by torch, and by us
    assert receptive_field(nn.Sequential(nn.AvgPool2d(2, 3, 1)), (1, 1, 1, 1))[-1].output_shape == (1, 1, 1, 1)


def test_error_channels_padding_adaptive():
    with pytest.raises(ValueError, match=r"expects 3 input channels, got 1"):
        receptive_field(nn.Conv2d(3, 8, 3), (1, 1, 8, 8))
    with pytest.raises(ValueError, match="PyTorch allows at most half"):
        receptive_field(nn.MaxPool1d(2, padding=2), (1, 1, 8))
    with pytest.raises(ValueError, match="only uniform .* when each output size divides"):
        receptive_field(nn.AdaptiveAvgPool1d(3), (1, 1, 8))


def test_error_position_and_helpers():
    model = nn.Sequential(nn.Conv1d(1, 1, 3))
    with pytest.raises(ValueError, match=r"position must be 1 ints inside the output grid \(6,\), got \(6,\)"):
        empirical_receptive_field(model, (1, 1, 8), (6,))
    with pytest.raises(ValueError, match="position must be 1 ints"):
        receptive_field(model, (1, 1, 8))[-1].box((0, 0))
    with pytest.raises(ValueError, match="clip_to must have 1 sizes"):
        receptive_field(model, (1, 1, 8))[-1].box((0,), clip_to=(8, 8))
    with pytest.raises(ValueError, match="expected 2 strides and dilations, got 1 and 2"):
        receptive_field_size([3, 3], [1], 1)
    with pytest.raises(ValueError, match="must be positive, got k=0"):
        receptive_field_size([0], 1, 1)
    with pytest.raises(ValueError, match="input_shape is required"):
        shape_table(model)
    with pytest.raises(TypeError, match="expected an nn.Module or a non-empty list of LayerInfo"):
        format_table([1, 2])
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        effective_receptive_field(model, [1.0])
    with pytest.raises(ValueError, match="inputs must be 3-D to 5-D"):
        effective_receptive_field(model, torch.zeros(8))
    assert isinstance(receptive_field(model, (1, 1, 8))[0], LayerInfo)

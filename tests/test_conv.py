"""dlhelpers.conv equals F.conv1d/2d/3d (forward and gradients), float64, on hypothesis-drawn settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlhelpers import conv

DT = torch.float64
# PyTorch warns that even kernels with padding='same' make a padded copy; harmless here
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
TORCH = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
FAST = {1: conv.conv1d, 2: conv.conv2d, 3: conv.conv3d}
NAIVE = {1: conv.conv1d_naive, 2: conv.conv2d_naive, 3: conv.conv3d_naive}


@st.composite
def conv_case(draw, n: int, max_size: int, max_k: int, max_ch: int, max_batch: int = 3):
    """Draw a valid convolution: tensors (seeded) plus stride/padding/dilation/groups (ints, tuples, strings)."""
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, max_ch))
    og = draw(st.integers(1, max_ch))
    kernel = tuple(draw(st.integers(1, max_k)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(n))
    mode = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n)) if mode != "same" else (1,) * n
    if mode == "int":
        padding = draw(st.integers(0, 2))
        pads = (padding,) * n
    elif mode == "tuple":
        pads = padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    else:
        padding, pads = mode, (0,) * n
    # spatial size: at least the effective kernel minus the padding, so the output is non-empty
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        eff = d * (k - 1) + 1
        lo = max(1, eff - 2 * p)
        sizes.append(draw(st.integers(lo, max(lo, max_size))))
    batch = draw(st.integers(1, max_batch))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cg * groups, *sizes, generator=g, dtype=DT)
    w = torch.randn(og * groups, cg, *kernel, generator=g, dtype=DT)
    b = torch.randn(og * groups, generator=g, dtype=DT) if draw(st.booleans()) else None
    kwargs = {"stride": stride if draw(st.booleans()) or len(set(stride)) > 1 else stride[0],
              "padding": padding, "dilation": dilation if len(set(dilation)) > 1 else dilation[0],
              "groups": groups}
    return x, w, b, kwargs


def assert_same_as_torch(ours, n: int, x, w, b, kwargs) -> None:
    """Forward output and gradients wrt input, weight and bias equal PyTorch's (float64)."""
    leaves = [t.clone().requires_grad_(True) if t is not None else None for t in (x, w, b)]
    ref_leaves = [t.clone().requires_grad_(True) if t is not None else None for t in (x, w, b)]
    out = ours(*leaves, **kwargs)
    ref = TORCH[n](*ref_leaves, **kwargs)
    torch.testing.assert_close(out, ref)
    grad_out = torch.randn_like(ref)
    out.backward(grad_out)
    ref.backward(grad_out)
    for mine, theirs in zip(leaves, ref_leaves):
        if mine is not None:
            torch.testing.assert_close(mine.grad, theirs.grad)


# --------------------------------------------------------------------------- parity: vectorized
@settings(max_examples=80)
@given(conv_case(1, max_size=12, max_k=4, max_ch=3))
def test_conv1d_matches_torch(case):
    assert_same_as_torch(conv.conv1d, 1, *case)


@settings(max_examples=80)
@given(conv_case(2, max_size=9, max_k=3, max_ch=3))
def test_conv2d_matches_torch(case):
    assert_same_as_torch(conv.conv2d, 2, *case)


@settings(max_examples=50)
@given(conv_case(3, max_size=6, max_k=3, max_ch=2, max_batch=2))
def test_conv3d_matches_torch(case):
    assert_same_as_torch(conv.conv3d, 3, *case)


# --------------------------------------------------------------------------- parity: naive (tiny shapes)
@settings(max_examples=40)
@given(conv_case(1, max_size=7, max_k=3, max_ch=2, max_batch=2))
def test_conv1d_naive_matches_torch(case):
    assert_same_as_torch(conv.conv1d_naive, 1, *case)


@settings(max_examples=30)
@given(conv_case(2, max_size=5, max_k=3, max_ch=2, max_batch=2))
def test_conv2d_naive_matches_torch(case):
    assert_same_as_torch(conv.conv2d_naive, 2, *case)


@settings(max_examples=15)
@given(conv_case(3, max_size=4, max_k=2, max_ch=2, max_batch=1))
def test_conv3d_naive_matches_torch(case):
    assert_same_as_torch(conv.conv3d_naive, 3, *case)


# --------------------------------------------------------------------------- unbatched, shapes, helpers
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_unbatched_input_like_torch(n, impl):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(4, *(5,) * n, generator=g, dtype=DT)            # [C, *spatial]
    w = torch.randn(6, 2, *(3,) * n, generator=g, dtype=DT)
    b = torch.randn(6, generator=g, dtype=DT)
    fn = (FAST if impl == "fast" else NAIVE)[n]
    kwargs = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
    out = fn(x, w, b, **kwargs)
    assert out.shape == TORCH[n](x, w, b, **kwargs).shape == (6, *(3,) * n)
    assert_same_as_torch(fn, n, x, w, b, kwargs)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_same_padding_even_kernel_is_asymmetric_like_torch(n):
    # d*(k-1) odd -> PyTorch puts the extra zero on the right; the output keeps the input size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *(6,) * n, generator=g, dtype=DT)
    w = torch.randn(4, 3, *(4,) * n, generator=g, dtype=DT)
    kwargs = {"padding": "same", "dilation": 1, "stride": 1, "groups": 1}
    assert FAST[n](x, w, **kwargs).shape == x.shape[:1] + (4,) + x.shape[2:]
    assert_same_as_torch(FAST[n], n, x, w, None, kwargs)


@settings(max_examples=60)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_conv_output_size_matches_torch_shapes(size, k, s, p, d):
    if d * (k - 1) + 1 > size + 2 * p:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv.conv_output_size(size, k, s, p, d)
        return
    x = torch.zeros(1, 1, size, dtype=DT)
    w = torch.zeros(1, 1, k, dtype=DT)
    expected = F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1]
    assert conv.conv_output_size(size, k, s, p, d) == expected
    assert conv.conv_output_size((size, size + 1), k, s, (p, p), d)[0] == expected


def test_conv_output_size_tuples():
    assert conv.conv_output_size((32, 28), 3, stride=2, padding=1) == (16, 14)
    assert conv.conv_output_size(224, 7, 2, 3) == 112
    with pytest.raises(ValueError, match="same length"):
        conv.conv_output_size((32, 28), (3, 3, 3))


@settings(max_examples=40)
@given(conv_case(2, max_size=9, max_k=3, max_ch=3))
def test_im2col_matches_f_unfold(case):
    x, w, _, kwargs = case
    if isinstance(kwargs["padding"], str):
        kwargs["padding"] = 0
    kernel = tuple(w.shape[2:])
    args = {"dilation": kwargs["dilation"], "padding": kwargs["padding"], "stride": kwargs["stride"]}
    x = x.requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    ours, ref = conv.im2col(x, kernel, **args), F.unfold(xr, kernel, **args)
    torch.testing.assert_close(ours, ref)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, xr.grad)


def test_im2col_1d_and_3d_give_conv_by_matmul():
    g = torch.Generator().manual_seed(1)
    for n in (1, 3):
        x = torch.randn(2, 3, *(5,) * n, generator=g, dtype=DT)
        w = torch.randn(4, 3, *(2,) * n, generator=g, dtype=DT)
        cols = conv.im2col(x, 2, stride=2, padding=1)
        out = (w.reshape(4, -1) @ cols).reshape(2, 4, *(3,) * n)
        torch.testing.assert_close(out, TORCH[n](x, w, stride=2, padding=1))


def test_pad_zeros_matches_f_pad():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=DT)
    torch.testing.assert_close(conv.pad_zeros(x, [(1, 2), (0, 3)]), F.pad(x, (0, 3, 1, 2)))
    assert conv.pad_zeros(x, [(0, 0), (0, 0)]) is x


@pytest.mark.parametrize("n", [1, 2, 3])
def test_empty_batch_like_torch(n):
    x = torch.zeros(0, 4, *(5,) * n, dtype=DT)
    w = torch.zeros(6, 2, *(3,) * n, dtype=DT)
    expected = TORCH[n](x, w, groups=2, padding=1).shape
    assert FAST[n](x, w, groups=2, padding=1).shape == NAIVE[n](x, w, groups=2, padding=1).shape == expected


def test_non_contiguous_inputs():
    g = torch.Generator().manual_seed(4)
    w = torch.randn(6, 4, 3, 3, generator=g, dtype=DT)
    b = torch.randn(6, generator=g, dtype=DT)
    channels_last = torch.randn(2, 4, 9, 8, generator=g, dtype=DT).to(memory_format=torch.channels_last)
    permuted = torch.randn(2, 8, 9, 4, generator=g, dtype=DT).permute(0, 3, 2, 1)       # [2, 4, 9, 8] view
    for x in (channels_last, permuted):
        assert_same_as_torch(conv.conv2d, 2, x, w, b, {"stride": 2, "padding": (1, 0)})
        assert_same_as_torch(conv.conv2d, 2, x, w.transpose(2, 3), b, {"dilation": 2})


def test_float32_close_to_torch():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 4, 10, 10, generator=g), torch.randn(8, 4, 3, 3, generator=g)
    torch.testing.assert_close(conv.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- errors
X2 = torch.zeros(1, 4, 6, 6, dtype=DT)
ALL = [conv.conv1d, conv.conv2d, conv.conv3d, conv.conv1d_naive, conv.conv2d_naive, conv.conv3d_naive]
DIMS = {f: n for n, f in [*FAST.items(), *NAIVE.items()]}


def _xw(fn, c_in=4, c_out=6, c_w=4, size=6, k=3):
    n = DIMS[fn]
    return torch.zeros(1, c_in, *(size,) * n, dtype=DT), torch.zeros(c_out, c_w, *(k,) * n, dtype=DT)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_channel_mismatch_names_both_numbers(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: expected input with 6 channels "
                                         r"\(weight.shape\[1\] \* groups = 3 \* 2\), got 4"):
        fn(_xw(fn)[0], _xw(fn, c_w=3)[1], groups=2)
    with pytest.raises(ValueError, match=r"expected input with 2 channels \(weight.shape\[1\] \* groups = 2 \* 1\)"
                                         r", got 5"):
        fn(_xw(fn, c_in=5)[0], _xw(fn, c_w=2)[1])


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_groups_must_divide_channels(fn):
    x, w = _xw(fn, c_in=5, c_w=3)
    with pytest.raises(ValueError, match=r"expected input with 6 channels \(weight.shape\[1\] \* groups = 3 \* 2\), "
                                         r"got 5; groups=2 does not divide the 5 input channels"):
        fn(x, w, groups=2)
    x, w = _xw(fn, c_in=4, c_out=5, c_w=2)
    with pytest.raises(ValueError, match=r"groups=2 must divide the output channels \(weight.shape\[0\] = 5\)"):
        fn(x, w, groups=2)
    with pytest.raises(ValueError, match="groups must be positive, got 0"):
        fn(*_xw(fn), groups=0)
    with pytest.raises(TypeError, match="groups must be an int"):
        fn(*_xw(fn), groups=2.0)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_kernel_larger_than_padded_input(fn):
    x, w = _xw(fn, c_in=2, c_w=2, size=4, k=3)
    fn(x, w, dilation=1)  # fits: effective size 3 <= 4
    with pytest.raises(ValueError, match=r"effective kernel size .* = 5 is larger than the padded input size 4"):
        fn(x, w, dilation=2)
    fn(x, w, dilation=2, padding=1)  # fits again: 5 <= 4 + 2
    x, w = _xw(fn, c_in=2, c_w=2, size=2, k=4)
    with pytest.raises(ValueError, match="= 4 is larger than the padded input size 2"):
        fn(x, w)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_non_positive_stride_dilation_and_negative_padding(fn):
    x, w = _xw(fn)
    with pytest.raises(ValueError, match=f"{fn.__name__}: stride must be positive, got 0"):
        fn(x, w, stride=0)
    with pytest.raises(ValueError, match="dilation must be positive, got -1"):
        fn(x, w, dilation=-1)
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        fn(x, w, padding=-1)
    with pytest.raises(ValueError, match="padding must be an int, a tuple of .* ints, 'valid' or 'same'"):
        fn(x, w, padding="full")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        fn(x, w, padding="same", stride=2)
    with pytest.raises(TypeError, match="stride must be an int or a tuple of"):
        fn(x, w, stride=(1, 1, 1, 1))


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_wrong_rank(fn):
    x, w = _xw(fn)
    n = DIMS[fn]
    with pytest.raises(ValueError, match=rf"expected input to be {n + 1}-D or {n + 2}-D .*got {n + 3}-D"):
        fn(x[None], w)
    with pytest.raises(ValueError, match=rf"expected weight to be {n + 2}-D .*got {n + 1}-D"):
        fn(x, w[0])


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_bias_of_wrong_shape(fn):
    x, w = _xw(fn, c_w=4)
    with pytest.raises(ValueError, match=r"expected bias of shape \(6,\) \(one per output channel\), got \(5,\)"):
        fn(x, w, torch.zeros(5, dtype=DT))
    with pytest.raises(ValueError, match=r"got \(1, 6\)"):
        fn(x, w, torch.zeros(1, 6, dtype=DT))
    with pytest.raises(TypeError, match="bias must be a torch.Tensor, got list"):
        fn(x, w, [0.0] * 6)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_non_tensor_input_and_dtype_mismatch(fn):
    x, w = _xw(fn, c_w=4)
    with pytest.raises(TypeError, match=f"{fn.__name__}: input must be a torch.Tensor, got ndarray"):
        fn(x.numpy(), w)
    with pytest.raises(TypeError, match="weight must be a torch.Tensor, got list"):
        fn(x, w.tolist())
    with pytest.raises(TypeError, match="same dtype, got torch.float32 and torch.float64"):
        fn(x.float(), w)


def test_im2col_and_output_size_errors():
    with pytest.raises(ValueError, match=r"im2col: expected input to be 3-D, 4-D or 5-D .*got 2-D"):
        conv.im2col(torch.zeros(3, 4), 2)
    with pytest.raises(TypeError, match="im2col: input must be a torch.Tensor"):
        conv.im2col([1, 2, 3], 2)
    with pytest.raises(ValueError, match="im2col: effective kernel size"):
        conv.im2col(X2, 7)
    with pytest.raises(ValueError, match="conv_output_size: stride must be positive, got 0"):
        conv.conv_output_size(10, 3, stride=0)
    with pytest.raises(ValueError, match="conv_output_size: padding must be >= 0, got -1"):
        conv.conv_output_size(10, 3, padding=-1)


# --------------------------------------------------------------------------- padding modes
MODULE = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


@st.composite
def pad_case(draw):
    """A tensor and an F.pad argument that torch accepts for the drawn mode (sizes and pads drawn)."""
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    k = draw(st.integers(1, 3))                                   # number of padded dims
    extra = draw(st.integers(1, 2))                               # [C, *S] or [N, C, *S]
    sizes = [draw(st.integers(1, 5)) for _ in range(k)]
    limit = {"constant": lambda n: 3, "reflect": lambda n: n - 1, "replicate": lambda n: 3,
             "circular": lambda n: n}[mode]
    pads = []
    for n in reversed(sizes):                                     # F.pad: last dim first
        pads += [draw(st.integers(0, limit(n))), draw(st.integers(0, limit(n)))]
    lead = [draw(st.integers(1, 3)) for _ in range(extra)]
    x = torch.randn(*lead, *sizes, generator=torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1))),
                    dtype=DT)
    value = draw(st.sampled_from([None, 0.0, -1.5])) if mode == "constant" else None
    return x, tuple(pads), mode, value


@settings(max_examples=120, deadline=None)
@given(pad_case())
def test_pad_matches_f_pad_forward_and_backward(case):
    x, pads, mode, value = case
    mine, ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    kwargs = {} if value is None else {"value": value}
    out, expected = conv.pad(mine, pads, mode, **kwargs), F.pad(ref, pads, mode=mode, **kwargs)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    g = torch.randn_like(expected)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(mine.grad, ref.grad)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3), mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]), data=st.data())
def test_padding_mode_matches_nn_conv(n, mode, data):
    """conv{n}d(..., padding_mode=m) == nn.Conv{n}d(..., padding_mode=m) with the same weights, fwd + bwd."""
    c_in, c_out, groups = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(n))
    d = tuple(data.draw(st.integers(1, 2)) for _ in range(n))
    same = data.draw(st.booleans())
    padding = "same" if same else tuple(data.draw(st.integers(0, 2)) for _ in range(n))
    stride = 1 if same else tuple(data.draw(st.integers(1, 2)) for _ in range(n))
    total = [di * (ki - 1) for ki, di in zip(k, d)]
    pads = [t - t // 2 for t in total] if same else list(padding)      # the larger side
    # sizes torch accepts: reflect needs pad < size, circular pad <= size; the kernel must fit
    lo = [max(2, p + 1, di * (ki - 1) + 1) for p, ki, di in zip(pads, k, d)]
    sizes = [data.draw(st.integers(m, m + 3)) for m in lo]
    layer = MODULE[n](c_in * groups, c_out * groups, k, stride=stride, padding=padding, dilation=d, groups=groups,
                      bias=data.draw(st.booleans()), padding_mode=mode).double()
    x = torch.randn(data.draw(st.integers(1, 2)), c_in * groups, *sizes, dtype=DT,
                    generator=torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1))))
    mine, ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    w = layer.weight.detach().clone().requires_grad_(True)
    b = None if layer.bias is None else layer.bias.detach().clone().requires_grad_(True)
    out = FAST[n](mine, w, b, stride=stride, padding=padding, dilation=d, groups=groups, padding_mode=mode)
    expected = layer(ref)
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(expected)
    out.backward(g)
    expected.backward(g)
    torch.testing.assert_close(mine.grad, ref.grad)
    torch.testing.assert_close(w.grad, layer.weight.grad)
    if b is not None:
        torch.testing.assert_close(b.grad, layer.bias.grad)


def test_circular_padding_makes_stride1_conv_equivariant_to_circular_shifts():
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(1, 2, 9, 11, generator=g, dtype=DT), torch.randn(3, 2, 3, 3, generator=g, dtype=DT)
    shift = lambda t: torch.roll(t, shifts=(2, -3), dims=(-2, -1))   # noqa: E731
    for mode, exact in [("circular", True), ("zeros", False)]:
        y_of_shifted = conv.conv2d(shift(x), w, padding=1, padding_mode=mode)
        shifted_y = shift(conv.conv2d(x, w, padding=1, padding_mode=mode))
        assert torch.allclose(y_of_shifted, shifted_y) == exact, mode


def test_pad_and_padding_mode_errors():
    x = torch.zeros(1, 1, 3, 4, dtype=DT)
    with pytest.raises(ValueError, match=r"conv2d: padding_mode must be one of \('zeros', 'reflect', "
                                         r"'replicate', 'circular'\), got 'mirror'"):
        conv.conv2d(x, torch.zeros(1, 1, 3, 3, dtype=DT), padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"conv2d: reflect padding must be smaller than the input size, got "
                                         r"padding \(3, 3\) for size 3 in spatial dim 0"):
        conv.conv2d(x, torch.zeros(1, 1, 1, 1, dtype=DT), padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"pad: circular padding must be at most the input size .* got padding "
                                         r"\(5, 0\) for size 4"):
        conv.pad(x, (5, 0, 0, 0), "circular")
    with pytest.raises(ValueError, match=r"pad: mode must be one of .* got 'wrap'"):
        conv.pad(x, (1, 1), "wrap")
    with pytest.raises(TypeError, match=r"pad: pad must be a tuple of an even number of ints .* got \(1, 1, 1\)"):
        conv.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match=r"pad: pad must be non-negative .* got \(-1, 1\)"):
        conv.pad(x, (-1, 1))
    with pytest.raises(ValueError, match=r"pad: pad \(1, 1, 1, 1, 1, 1, 1, 1, 1, 1\) pads 5 dims but the input "
                                         r"has only 4"):
        conv.pad(x, (1,) * 10)
    with pytest.raises(ValueError, match=r"pad: reflect padding pads the last 1, 2 or 3 dims of a tensor with 1 "
                                         r"or 2 more dims, got pad of length 2 for a 4-D input"):
        conv.pad(x, (1, 1), "reflect")
    with pytest.raises(ValueError, match=r"pad: value is only used with mode='constant', got value=2.0"):
        conv.pad(x, (1, 1, 1, 1), "replicate", value=2.0)
    with pytest.raises(TypeError, match="pad: input must be a torch.Tensor"):
        conv.pad([1.0], (1, 1))

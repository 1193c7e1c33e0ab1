"""dlhelpers.pooling == torch.nn.functional pooling: values, returned indices and gradients, in float64.

Max-pool inputs are random permutations of distinct values, so every window has a unique argmax and
the returned indices and the gradient routing are well defined (and must equal PyTorch's).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from dlhelpers import pooling as P

MAX = {1: (P.max_pool1d, F.max_pool1d), 2: (P.max_pool2d, F.max_pool2d), 3: (P.max_pool3d, F.max_pool3d)}
AVG = {1: (P.avg_pool1d, F.avg_pool1d), 2: (P.avg_pool2d, F.avg_pool2d), 3: (P.avg_pool3d, F.avg_pool3d)}
AAVG = {1: (P.adaptive_avg_pool1d, F.adaptive_avg_pool1d), 2: (P.adaptive_avg_pool2d, F.adaptive_avg_pool2d),
        3: (P.adaptive_avg_pool3d, F.adaptive_avg_pool3d)}
AMAX = {1: (P.adaptive_max_pool1d, F.adaptive_max_pool1d), 2: (P.adaptive_max_pool2d, F.adaptive_max_pool2d),
        3: (P.adaptive_max_pool3d, F.adaptive_max_pool3d)}
EXTRA = {1: 7, 2: 4, 3: 2}  # how much larger than the smallest valid input a spatial size may be


# --------------------------------------------------------------------------- strategies
def _tie_free(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Distinct float64 values (a random permutation, centred): every max is unique."""
    g = torch.Generator().manual_seed(seed)
    n = max(1, int(torch.Size(shape).numel()))
    return ((torch.randperm(n, generator=g).double() - n / 2) / n)[: torch.Size(shape).numel()].view(shape)


def _randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@st.composite
def pool_cases(draw, n: int, dilation: bool):
    """(input shape, kwargs, seed) with a valid configuration: padding <= kernel // 2 and output >= 1."""
    scalar = draw(st.booleans())  # pass ints (broadcast to every axis) or per-axis tuples
    reps = 1 if scalar else n
    k = [draw(st.integers(1, 4)) for _ in range(reps)]
    s = [draw(st.integers(1, 3)) for _ in range(reps)]
    p = [draw(st.integers(0, ki // 2)) for ki in k]
    d = [draw(st.integers(1, 3)) for _ in range(reps)] if dilation else [1] * reps
    default_stride = draw(st.booleans())
    full = lambda v: v * n if scalar else v
    sizes = []
    for ki, pi, di in zip(full(k), full(p), full(d)):
        smallest = max(1, di * (ki - 1) + 1 - 2 * pi)
        sizes.append(draw(st.integers(smallest, smallest + EXTRA[n])))
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) if draw(st.booleans()) else (draw(st.integers(1, 3)),)
    as_arg = lambda v: v[0] if scalar else tuple(v)
    kwargs = dict(kernel_size=as_arg(k), stride=None if default_stride else as_arg(s), padding=as_arg(p),
                  ceil_mode=draw(st.booleans()))
    if dilation:
        kwargs["dilation"] = as_arg(d)
    return lead + tuple(sizes), kwargs, draw(st.integers(0, 2**31 - 1))


@st.composite
def adaptive_cases(draw, n: int):
    sizes = tuple(draw(st.integers(1, 9 - 2 * n)) for _ in range(n))
    if draw(st.booleans()):
        output_size = draw(st.integers(0, min(sizes) + 2))
    else:
        none_ok = n > 1
        output_size = tuple(None if none_ok and draw(st.booleans()) else draw(st.integers(0, L + 2))
                            for L in sizes)
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) if draw(st.booleans()) else (draw(st.integers(1, 3)),)
    return lead + sizes, output_size, draw(st.integers(0, 2**31 - 1))


def _grads(fn, x: torch.Tensor, upstream_seed: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and d(sum(out * g))/dx for a random upstream gradient g."""
    x = x.clone().requires_grad_(True)
    out = fn(x, **kwargs)
    out = out[0] if isinstance(out, tuple) else out
    g = _randn(tuple(out.shape), upstream_seed)
    (out * g).sum().backward()
    return out.detach(), x.grad


# --------------------------------------------------------------------------- max pooling
@pytest.mark.parametrize("n", [1, 2, 3])
@given(data=st.data())
def test_max_pool_matches_torch_forward_indices_backward(n: int, data) -> None:
    shape, kwargs, seed = data.draw(pool_cases(n, dilation=True))
    ours_fn, torch_fn = MAX[n]
    x = _tie_free(shape, seed)
    y, idx = ours_fn(x, **kwargs, return_indices=True)
    y_ref, idx_ref = torch_fn(x, **kwargs, return_indices=True)
    assert_close(y, y_ref, rtol=0, atol=0)
    assert idx.dtype == torch.long and torch.equal(idx, idx_ref)
    assert_close(ours_fn(x, **kwargs), y_ref, rtol=0, atol=0)
    expected = P.pool_output_size(shape[-n:], **kwargs)
    assert tuple(y.shape[-n:]) == expected
    if torch.isinf(y_ref).any():
        return  # a window entirely in the padding: torch's backward writes outside the plane (see below)
    out, grad = _grads(ours_fn, x, seed + 1, **kwargs)
    out_ref, grad_ref = _grads(torch_fn, x, seed + 1, **kwargs)
    assert_close(grad, grad_ref)


@settings(max_examples=15)
@given(case=pool_cases(2, dilation=True))
def test_max_pool2d_naive_matches_torch(case) -> None:
    shape, kwargs, seed = case
    x = _tie_free(shape, seed)
    y, idx = P.max_pool2d_naive(x, **kwargs, return_indices=True)
    y_ref, idx_ref = F.max_pool2d(x, **kwargs, return_indices=True)
    assert_close(y, y_ref, rtol=0, atol=0)
    assert torch.equal(idx, idx_ref)
    if not torch.isinf(y_ref).any():
        assert_close(_grads(P.max_pool2d_naive, x, seed, **kwargs)[1], _grads(F.max_pool2d, x, seed, **kwargs)[1])


@given(case=pool_cases(2, dilation=True))
def test_max_pool2d_backward_routes_gradient_to_argmax(case) -> None:
    shape, kwargs, seed = case
    x = _tie_free(shape, seed)
    y, idx = P.max_pool2d(x, **kwargs, return_indices=True)
    if torch.isinf(y).any():
        return
    g = _randn(tuple(y.shape), seed + 1)
    grad = P.max_pool2d_backward(g, idx, tuple(x.shape))
    _, grad_ref = _grads(F.max_pool2d, x, seed + 1, **kwargs)
    assert_close(grad, grad_ref)
    # every upstream gradient lands somewhere: the total is preserved
    assert_close(grad.sum(), g.sum())


def test_all_padding_window_follows_torch_forward() -> None:
    # kernel 2, dilation 3, padding 1 on a 2-long axis: the only window is {-1, 2}, both padding.
    # PyTorch returns -inf (pytorch/pytorch#114216) and reports the window's first position past the
    # padding (here even past the plane).
    x = torch.arange(8.0, dtype=torch.float64).view(1, 2, 2, 2)
    for kw in (dict(kernel_size=2, padding=1, dilation=3), dict(kernel_size=(1, 2), padding=(0, 1), dilation=(1, 3))):
        y, idx = P.max_pool2d(x, **kw, return_indices=True)
        y_ref, idx_ref = F.max_pool2d(x, **kw, return_indices=True)
        assert_close(y, y_ref)
        assert torch.equal(idx, idx_ref)
        assert torch.isinf(y).all()
    # index 6 in a 4-element plane: our analytic backward drops it (torch's kernel writes it into the next plane)
    y, idx = P.max_pool2d(x, 2, padding=1, dilation=3, return_indices=True)
    assert idx.flatten().tolist() == [6, 6]
    assert_close(P.max_pool2d_backward(torch.ones_like(y), idx, tuple(x.shape)), torch.zeros_like(x))


def test_minus_inf_inputs_tie_break_like_torch() -> None:
    inf = float("inf")
    x = torch.tensor([[[-inf, -inf, 1.0, -inf]]], dtype=torch.float64)
    for kw in (dict(kernel_size=2, stride=1, padding=1), dict(kernel_size=3, stride=1, padding=1, dilation=2)):
        y, idx = P.max_pool1d(x, **kw, return_indices=True)
        y_ref, idx_ref = F.max_pool1d(x, **kw, return_indices=True)
        assert_close(y, y_ref)
        assert torch.equal(idx, idx_ref)


def test_max_pool2d_backward_adds_up_in_overlapping_windows() -> None:
    # 3x3 windows with stride 1 on a 3x4 input: the global max (value 11 at the corner) wins both windows.
    x = torch.arange(12.0, dtype=torch.float64).view(1, 1, 3, 4)
    y, idx = P.max_pool2d(x, 3, stride=1, return_indices=True)
    assert idx.flatten().tolist() == [10, 11]
    grad = P.max_pool2d_backward(torch.tensor([[[[2.0, 5.0]]]], dtype=torch.float64), idx, (1, 1, 3, 4))
    expected = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    expected[0, 0, 2, 2], expected[0, 0, 2, 3] = 2.0, 5.0
    assert_close(grad, expected)
    # max_unpool2d *writes* instead of adding: it differs from the gradient when a position wins twice
    x2 = torch.zeros(1, 1, 1, 3, dtype=torch.float64)
    x2[0, 0, 0, 1] = 1.0
    y2, idx2 = P.max_pool2d(x2, (1, 2), stride=1, return_indices=True)
    assert idx2.flatten().tolist() == [1, 1]
    grad2 = P.max_pool2d_backward(torch.ones_like(y2), idx2, (1, 1, 1, 3))
    assert grad2.flatten().tolist() == [0.0, 2.0, 0.0]
    assert F.max_unpool2d(torch.ones_like(y2), idx2, (1, 2), stride=1, output_size=(1, 3)).flatten().tolist() \
        == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------- average pooling
@pytest.mark.parametrize("n", [1, 2, 3])
@given(data=st.data())
def test_avg_pool_matches_torch_forward_backward(n: int, data) -> None:
    shape, kwargs, seed = data.draw(pool_cases(n, dilation=False))
    if n == 3:  # torch's avg_pool3d also wants input >= kernel_size (tested separately)
        k = kwargs["kernel_size"]
        k = (k,) * 3 if isinstance(k, int) else k
        shape = shape[:-3] + tuple(max(L, ki) for L, ki in zip(shape[-3:], k))
    kwargs["count_include_pad"] = data.draw(st.booleans())
    if n > 1:
        kwargs["divisor_override"] = data.draw(st.none() | st.integers(-3, 6).filter(lambda v: v != 0))
    ours_fn, torch_fn = AVG[n]
    x = _randn(shape, seed)
    out, grad = _grads(ours_fn, x, seed + 1, **kwargs)
    out_ref, grad_ref = _grads(torch_fn, x, seed + 1, **kwargs)
    assert_close(out, out_ref)
    assert_close(grad, grad_ref)
    assert tuple(out.shape[-n:]) == P.pool_output_size(shape[-n:], kwargs["kernel_size"], kwargs["stride"],
                                                       kwargs["padding"], ceil_mode=kwargs["ceil_mode"])


def test_avg_pool_count_include_pad_by_hand() -> None:
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=torch.float64)
    # windows of 3, stride 2, padding 1: [0,1,2], [2,3,4], [4,5,0]
    assert_close(P.avg_pool1d(x, 3, 2, 1), torch.tensor([[[1.0, 3.0, 3.0]]], dtype=torch.float64))
    assert_close(P.avg_pool1d(x, 3, 2, 1, count_include_pad=False),
                 torch.tensor([[[1.5, 3.0, 4.5]]], dtype=torch.float64))


# --------------------------------------------------------------------------- adaptive pooling
@pytest.mark.parametrize("n", [1, 2, 3])
@given(data=st.data())
def test_adaptive_avg_pool_matches_torch(n: int, data) -> None:
    shape, output_size, seed = data.draw(adaptive_cases(n))
    ours_fn, torch_fn = AAVG[n]
    x = _randn(shape, seed)
    out, grad = _grads(ours_fn, x, seed + 1, output_size=output_size)
    if out.numel() == 0:  # torch allows an empty output but its backward refuses it
        assert out.shape == torch_fn(x, output_size).shape
        assert_close(grad, torch.zeros_like(x))
        return
    out_ref, grad_ref = _grads(torch_fn, x, seed + 1, output_size=output_size)
    assert out.shape == out_ref.shape
    assert_close(out, out_ref)
    assert_close(grad, grad_ref)


@pytest.mark.parametrize("n", [1, 2, 3])
@given(data=st.data())
def test_adaptive_max_pool_matches_torch(n: int, data) -> None:
    shape, output_size, seed = data.draw(adaptive_cases(n))
    ours_fn, torch_fn = AMAX[n]
    x = _tie_free(shape, seed)
    y, idx = ours_fn(x, output_size, return_indices=True)
    y_ref, idx_ref = torch_fn(x, output_size, return_indices=True)
    assert y.shape == y_ref.shape
    assert_close(y, y_ref, rtol=0, atol=0)
    assert torch.equal(idx, idx_ref)
    out, grad = _grads(ours_fn, x, seed + 1, output_size=output_size)
    if out.numel() == 0:  # torch allows an empty output but its backward refuses it
        assert_close(grad, torch.zeros_like(x))
        return
    out_ref, grad_ref = _grads(torch_fn, x, seed + 1, output_size=output_size)
    assert_close(grad, grad_ref)


def test_adaptive_windows_by_hand() -> None:
    # L = 5 -> 3 outputs: windows [0, 2), [1, 4), [3, 5) (they overlap)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=torch.float64)
    assert_close(P.adaptive_avg_pool1d(x, 3), torch.tensor([[[1.5, 3.0, 4.5]]], dtype=torch.float64))
    assert P.adaptive_max_pool1d(x, 3).flatten().tolist() == [2.0, 4.0, 5.0]


# --------------------------------------------------------------------------- pool_output_size
@given(size=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3),
       ceil_mode=st.booleans(), data=st.data())
def test_pool_output_size_matches_torch_shape(size, k, s, d, ceil_mode, data) -> None:
    p = data.draw(st.integers(0, k // 2))
    x = torch.zeros(1, 1, size)
    try:
        expected = F.max_pool1d(x, k, s, p, d, ceil_mode).shape[-1]
    except RuntimeError:
        with pytest.raises(ValueError, match="output size would be"):
            P.pool_output_size(size, k, s, p, d, ceil_mode)
        return
    assert P.pool_output_size(size, k, s, p, d, ceil_mode) == expected


def test_pool_output_size_by_hand() -> None:
    assert P.pool_output_size(28, 2) == 14
    assert P.pool_output_size((7, 8), 3, 2, 1) == (4, 4)
    assert P.pool_output_size(6, 3, 2, 0, ceil_mode=False) == 2
    assert P.pool_output_size(6, 3, 2, 0, ceil_mode=True) == 3  # last window hangs over the edge
    assert P.pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3  # a 4th window would start in the padding


# --------------------------------------------------------------------------- errors
ALL_REGULAR = [(P.max_pool1d, 1), (P.max_pool2d, 2), (P.max_pool3d, 3), (P.avg_pool1d, 1), (P.avg_pool2d, 2),
               (P.avg_pool3d, 3), (P.max_pool2d_naive, 2)]
ALL_ADAPTIVE = [(P.adaptive_avg_pool1d, 1), (P.adaptive_avg_pool2d, 2), (P.adaptive_avg_pool3d, 3),
                (P.adaptive_max_pool1d, 1), (P.adaptive_max_pool2d, 2), (P.adaptive_max_pool3d, 3)]
ids = lambda case: case[0].__name__


@pytest.mark.parametrize("case", ALL_REGULAR + ALL_ADAPTIVE, ids=ids)
def test_wrong_rank_raises(case) -> None:
    fn, n = case
    arg = 1
    for rank in (n, n + 3):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: expected input to be {n + 1}-D or {n + 2}-D"):
            fn(torch.zeros((3,) * rank), arg)


@pytest.mark.parametrize("case", ALL_REGULAR + ALL_ADAPTIVE, ids=ids)
def test_non_float_and_non_tensor_and_empty_raise(case) -> None:
    fn, n = case
    with pytest.raises(TypeError, match="must be a floating-point tensor"):
        fn(torch.zeros((1, 1) + (4,) * n, dtype=torch.long), 1)
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        fn([[0.0] * 4], 1)
    with pytest.raises(ValueError, match="channel and spatial sizes must be non-zero"):
        fn(torch.zeros((1, 0) + (4,) * n), 1)


@pytest.mark.parametrize("case", ALL_REGULAR, ids=ids)
def test_non_positive_kernel_or_stride_raises(case) -> None:
    fn, n = case
    x = torch.zeros((1, 1) + (6,) * n)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        fn(x, 0)
    with pytest.raises(ValueError, match="stride must be positive"):
        fn(x, 2, 0)
    with pytest.raises(ValueError, match="stride must be positive"):
        fn(x, 2, -1)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        fn(x, 2, 1, -1)
    with pytest.raises(TypeError, match=f"kernel_size must be an int or a tuple of {n} ints"):
        fn(x, (2,) * (n + 1))
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple"):
        fn(x, 2.0)


@pytest.mark.parametrize("case", [c for c in ALL_REGULAR if "max" in c[0].__name__], ids=ids)
def test_non_positive_dilation_raises(case) -> None:
    fn, n = case
    with pytest.raises(ValueError, match="dilation must be positive"):
        fn(torch.zeros((1, 1) + (6,) * n), 2, dilation=0)


@pytest.mark.parametrize("case", ALL_REGULAR, ids=ids)
def test_padding_larger_than_half_kernel_raises_like_torch(case) -> None:
    fn, n = case
    x = torch.zeros((1, 1) + (8,) * n)
    with pytest.raises(ValueError, match=r"padding must be at most half of kernel_size .*padding <= kernel_size // 2"):
        fn(x, 3, 1, 2)
    torch_fn = getattr(F, fn.__name__.replace("_naive", ""))
    with pytest.raises(RuntimeError, match="half"):
        torch_fn(x, 3, 1, 2)
    fn(x, 3, 1, 1)  # exactly half (rounded down) is fine


@pytest.mark.parametrize("case", ALL_REGULAR, ids=ids)
def test_output_size_not_positive_raises(case) -> None:
    fn, n = case
    x = torch.zeros((1, 1) + (2,) * n)
    # (avg_pool3d, like torch's, checks input >= kernel_size first, which implies output >= 1)
    with pytest.raises(ValueError, match=r"output size would be \(0|avg_pool3d: input size .* smaller than"):
        fn(x, 3)
    with pytest.raises(RuntimeError, match="too small|output size|smaller than kernel"):
        getattr(F, fn.__name__.replace("_naive", ""))(x, 3)


def test_avg_pool3d_input_smaller_than_kernel_raises_like_torch() -> None:
    x = torch.zeros(1, 1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"avg_pool3d: input size \(1, 3, 3\) is smaller than kernel_size"):
        P.avg_pool3d(x, 2, padding=1)
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        F.avg_pool3d(x, 2, padding=1)
    assert P.avg_pool2d(x[0], 2, padding=1).shape == F.avg_pool2d(x[0], 2, padding=1).shape  # 2-D allows it


@pytest.mark.parametrize("fn", [P.avg_pool2d, P.avg_pool3d])
def test_bad_divisor_override_raises(fn) -> None:
    x = torch.zeros((1, 1) + (4,) * (3 if fn is P.avg_pool3d else 2))
    with pytest.raises(ValueError, match="divisor_override must be non-zero"):
        fn(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override must be an int or None"):
        fn(x, 2, divisor_override=2.5)


@pytest.mark.parametrize("case", ALL_ADAPTIVE, ids=ids)
def test_bad_adaptive_output_size_raises(case) -> None:
    fn, n = case
    x = torch.zeros((1, 1) + (5,) * n)
    with pytest.raises(ValueError, match="output_size entries must be >= 0"):
        fn(x, -1)
    with pytest.raises(ValueError, match=f"output_size must have {n} entries"):
        fn(x, (2,) * (n + 1))
    with pytest.raises(TypeError, match="output_size must be an int or a tuple"):
        fn(x, 2.5)
    with pytest.raises(TypeError, match="output_size entries must be"):
        fn(x, ("2",) * n)
    if n == 1:
        with pytest.raises(TypeError, match="None is not allowed in 1-D"):
            fn(x, (None,))
        with pytest.raises(TypeError):
            getattr(F, fn.__name__)(x, (None,))  # torch rejects it too


def test_pool_output_size_bad_input_size_raises() -> None:
    for bad in (0, -3, (4, 0), (), (1, 2, 3, 4), "28", 2.0):
        with pytest.raises(ValueError, match="pool_output_size: input_size must be a positive int"):
            P.pool_output_size(bad, 2)


def test_max_pool2d_backward_bad_arguments_raise() -> None:
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    y, idx = P.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="grad_output and indices must have the same shape"):
        P.max_pool2d_backward(y[:, :2], idx, x.shape)
    with pytest.raises(ValueError, match="grad_output and indices must have the same shape"):
        P.max_pool2d_backward(y, idx, (2, 4, 6, 6))
    with pytest.raises(ValueError, match=r"input_shape must be \(N, C, H, W\) or \(C, H, W\)"):
        P.max_pool2d_backward(y, idx, (6, 6))
    with pytest.raises(TypeError, match="indices must be an int64 tensor"):
        P.max_pool2d_backward(y, idx.int(), x.shape)
    with pytest.raises(TypeError, match="grad_output must be a torch.Tensor"):
        P.max_pool2d_backward(y.tolist(), idx, x.shape)


def test_unbatched_max_pool2d_backward() -> None:
    x = _tie_free((3, 5, 5), 7)
    y, idx = P.max_pool2d(x, 2, 1, return_indices=True)
    _, grad_ref = _grads(F.max_pool2d, x, 8, kernel_size=2, stride=1)
    assert_close(P.max_pool2d_backward(_randn(tuple(y.shape), 8), idx, tuple(x.shape)), grad_ref)


# --------------------------------------------------------------------------- fast paths
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("out", [1, 2, 3, 6])
def test_adaptive_short_cut_when_output_divides_input(n: int, out: int) -> None:
    # 6 % out == 0: equal disjoint windows take the reshape/mean and max-pool paths; 7 does not divide
    for size in (6, 7):
        x = _tie_free((2, 3) + (size,) * n, seed=size * 10 + out)
        for name in ("avg", "max"):
            ours, theirs = getattr(P, f"adaptive_{name}_pool{n}d"), getattr(F, f"adaptive_{name}_pool{n}d")
            y, grad = _grads(ours, x, out, output_size=out)
            y_ref, grad_ref = _grads(theirs, x, out, output_size=out)
            assert_close(y, y_ref)
            assert_close(grad, grad_ref)
            if name == "max":
                assert torch.equal(ours(x, out, return_indices=True)[1], theirs(x, out, return_indices=True)[1])


def test_max_pool_custom_backward_is_used_and_double_differentiable_in_the_upstream_gradient() -> None:
    x = _tie_free((2, 3, 7, 6), seed=5).requires_grad_(True)
    y = P.max_pool2d(x, 3, 2, 1)
    assert type(y.grad_fn).__name__ == "_MaxPoolFunctionBackward"
    g = _randn(tuple(y.shape), 6).requires_grad_(True)
    (grad,) = torch.autograd.grad(y, x, g, create_graph=True)
    (grad_ref,) = torch.autograd.grad(F.max_pool2d(x, 3, 2, 1), x, g, create_graph=True)
    assert_close(grad, grad_ref)
    # d(grad . w)/dg routes w back through the same argmax positions: compare with torch's double backward
    w = _randn(tuple(x.shape), 7)
    assert_close(torch.autograd.grad((grad * w).sum(), g)[0], torch.autograd.grad((grad_ref * w).sum(), g)[0])

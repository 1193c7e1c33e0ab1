"""dlhelpers.padding vs real F.conv1d/2d, F.conv_transpose1d/2d, F.interpolate sizes, timm's pad_same."""

import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from timm.layers.padding import get_same_padding, pad_same

from dlhelpers.padding import (
    Padding,
    conv_transpose_output_size,
    interpolate_output_size,
    same_padding,
    solve_output_padding,
    solve_padding,
    to_pad,
)


def conv_len(n: int, k: int, s: int, d: int, left: int, right: int) -> int | None:
    """The real output length of F.conv1d on a padded input (None when PyTorch refuses)."""
    x = F.pad(torch.zeros(1, 1, n, dtype=torch.float64), (left, right))
    try:
        return F.conv1d(x, torch.zeros(1, 1, k, dtype=torch.float64), stride=s, dilation=d).shape[-1]
    except RuntimeError:
        return None


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), out=st.integers(1, 45), k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3),
       symmetric=st.booleans())
def test_solve_padding_matches_real_convolution(n, out, k, s, d, symmetric):
    reachable = [P for P in range(0, 2 * (out * s + d * k) + 2) if conv_len(n, k, s, d, P // 2, P - P // 2) == out]
    if symmetric:
        reachable = [P for P in reachable if P % 2 == 0]
    try:
        pad = solve_padding(n, out, k, s, d, symmetric=symmetric)
    except ValueError as err:
        assert not reachable, f"solver said impossible but totals {reachable} work"
        assert "nearest options" in str(err)
        for claimed, gives in re.findall(r"padding=(\d+) gives (\d+)", str(err)):  # the options it names hold
            p = int(claimed)
            assert conv_len(n, k, s, d, p, p) == int(gives)
        return
    assert conv_len(n, k, s, d, pad.left, pad.right) == out == pad.output
    assert pad.total == min(reachable)          # the smallest padding that works
    assert pad.right - pad.left in ((0,) if symmetric else (0, 1))
    if symmetric:
        x = torch.zeros(1, 1, n, dtype=torch.float64)
        real = F.conv1d(x, torch.zeros(1, 1, k, dtype=torch.float64), stride=s, padding=pad.left, dilation=d)
        assert real.shape[-1] == out and pad.symmetric


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), k=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)))
def test_same_padding_equals_timm_and_torch_forward_and_backward(h, w, k, s, d):
    pads = same_padding((h, w), k, s, d)
    assert [p.total for p in pads] == [get_same_padding(h, k[0], s[0], d[0]), get_same_padding(w, k[1], s[1], d[1])]
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, *k, dtype=torch.float64)
    ours = F.conv2d(F.pad(x, to_pad(pads)), weight, stride=s, dilation=d)
    theirs = F.conv2d(pad_same(x, list(k), list(s), list(d)), weight, stride=s, dilation=d)
    torch.testing.assert_close(ours, theirs)
    assert ours.shape[2:] == (-(-h // s[0]), -(-w // s[1]))
    g = torch.randn_like(ours)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(theirs, x, g)[0])
    if s == (1, 1):  # PyTorch's own padding="same" (stride 1 only) puts the odd pixel on the right too
        torch.testing.assert_close(ours, F.conv2d(x, weight, padding="same", dilation=d))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 20), k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3),
       data=st.data())
def test_conv_transpose_sizes_match_pytorch_and_invert_the_convolution(n, k, s, p, d, data):
    op = data.draw(st.integers(0, max(s, d) + 1))
    x = torch.zeros(1, 2, n, n, dtype=torch.float64)
    weight = torch.zeros(2, 3, k, k, dtype=torch.float64)
    try:
        real = F.conv_transpose2d(x, weight, stride=s, padding=p, output_padding=op, dilation=d).shape[-1]
    except RuntimeError:
        real = None
    try:
        ours = conv_transpose_output_size((n, n), k, s, p, op, d)
    except ValueError:
        assert real is None
    else:
        assert ours == (real, real)
        assert conv_transpose_output_size(n, k, s, p, op, d) == real
    # output_padding recovers the exact input size of the strided convolution it undoes
    m = n + 2 * p - d * (k - 1) - 1
    if m >= 0:
        small = m // s + 1
        need = solve_output_padding(small, n, k, s, p, d)
        y = torch.zeros(1, 3, small, dtype=torch.float64)
        back = F.conv_transpose1d(y, torch.zeros(3, 1, k, dtype=torch.float64), stride=s, padding=p,
                                  output_padding=need, dilation=d)
        assert back.shape[-1] == n


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), scale=st.floats(0.1, 4.0, allow_nan=False), mode=st.sampled_from(["nearest", "linear"]))
def test_interpolate_size_matches_pytorch(n, scale, mode):
    x = torch.zeros(1, 1, n, dtype=torch.float64)
    try:
        real = F.interpolate(x, scale_factor=scale, mode=mode).shape[-1]
    except RuntimeError:
        real = 0
    assert interpolate_output_size(n, scale_factor=scale) == real
    assert interpolate_output_size((n, n), size=(3, 4)) == (3, 4)
    assert interpolate_output_size((n, 2 * n), scale_factor=(scale, 2.0)) == (real, 4 * n)


def test_hand_examples_and_helpers():
    assert solve_padding(7, 7, 2) == Padding(0, 1, 7)           # even kernel: the extra pixel on the right
    assert solve_padding((224, 224), (112, 112), 7, 2) == (Padding(2, 3, 112), Padding(2, 3, 112))
    assert solve_padding(224, 112, 7, 2, symmetric=True) == Padding(3, 3, 112)  # ResNet's stem: padding=3
    assert same_padding(5, 3, 2) == Padding(1, 1, 3) and same_padding(6, 3, 2) == Padding(0, 1, 3)
    assert to_pad((Padding(0, 1, 5), Padding(2, 3, 9))) == (2, 3, 0, 1)
    assert to_pad(Padding(1, 2, 3)) == (1, 2)
    assert conv_transpose_output_size(4, 3, 2, 1, 1) == 8 and solve_output_padding(4, 7, 3, 2, 1) == 0


def test_errors():
    with pytest.raises(ValueError, match=r"no padding >= 0 gives output 2 \(input 10, kernel 3, stride 1, dilation "
                                         r"1\): padding 0 already gives 8; nearest options: output 8 with padding 0"):
        solve_padding(10, 2, 3)
    with pytest.raises(ValueError, match=r"no symmetric padding gives output 7 .* the total padding must be 1 \(odd\); "
                                         r"nearest options: asymmetric \(0, 1\) with F.pad gives 7; padding=0 gives 6; "
                                         r"padding=1 gives 8"):
        solve_padding(7, 7, 2, symmetric=True)
    with pytest.raises(ValueError, match="dim 1: input 5"):
        solve_padding((5, 5), (5, 1), 3)
    with pytest.raises(ValueError, match="output_size must be positive, got 0"):
        solve_padding(5, 0, 3)
    with pytest.raises(ValueError, match="tuple arguments must have the same length"):
        solve_padding((5, 5), (5, 5, 5), 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a tuple of 1 ints"):
        solve_padding(5, 5, 3.0)
    with pytest.raises(ValueError, match=r"output_padding must be smaller than max\(stride, dilation\) = 2, got 2"):
        conv_transpose_output_size(4, 3, 2, output_padding=2)
    with pytest.raises(ValueError, match="padding 5 is too large: the output would be -6"):
        conv_transpose_output_size(2, 3, 1, 5)
    with pytest.raises(ValueError, match=r"no output_padding gives output 10 .* output_padding 0..1 gives 7..8; "
                                         r"nearest option: 8"):
        solve_output_padding(4, 10, 3, 2, 1)
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor"):
        interpolate_output_size(4)
    with pytest.raises(ValueError, match="scale_factor must be positive"):
        interpolate_output_size(4, scale_factor=-1.0)
    with pytest.raises(ValueError, match="expected 2 scale factors"):
        interpolate_output_size((4, 4), scale_factor=(1.0,))
    with pytest.raises(TypeError, match="expected a Padding or a sequence of Padding, got list"):
        to_pad([1, 2])

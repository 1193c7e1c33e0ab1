"""dlhelpers.blocks == PyTorch / torchvision: normalization, dense/conv, DenseNet, ResNet and Inception blocks.

Each scratch block gets the reference block's weights through ``copy_weights`` and must give the same output,
input gradient, parameter gradients and (for batch norm) running statistics, in float64, in train and eval
mode, on shapes and hyperparameters drawn by hypothesis.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.models.densenet as tv_densenet
import torchvision.models.inception as tv_inception
import torchvision.models.resnet as tv_resnet
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from dlhelpers import blocks as B


def _randn(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """float64, random affine parameters and running statistics (so eval mode tests something)."""
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
            elif name.endswith(("running_mean", "bias")) or name.endswith("weight") and t.dim() == 1:
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.5 + (name.endswith("weight")))
    return module


def _assert_same(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, seed: int, modes=("train", "eval")) -> None:
    """Copy weights theirs -> ours, then compare forward, backward and state after each mode."""
    _randomize(theirs, seed)
    ours.double()
    B.copy_weights(theirs, ours)
    for mode in modes:
        ours.train(mode == "train")
        theirs.train(mode == "train")
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_a, out_b = ours(xa), theirs(xb)
        assert_close(out_a, out_b)
        upstream = _randn(tuple(out_a.shape), seed + 1)
        out_a.backward(upstream)
        out_b.backward(upstream)
        assert_close(xa.grad, xb.grad)
        pa, pb = dict(ours.named_parameters()), dict(theirs.named_parameters())
        assert pa.keys() == pb.keys()
        for k in pa:
            assert_close(pa[k].grad, pb[k].grad, msg=f"grad of {k} ({mode})")
            pa[k].grad = pb[k].grad = None
        sa, sb = ours.state_dict(), theirs.state_dict()
        for k in sb:
            assert_close(sa[k], sb[k], msg=f"state {k} after {mode}")


# --------------------------------------------------------------------------- normalization
@settings(max_examples=25)
@given(n=st.integers(2, 4), c=st.integers(1, 4), h=st.integers(1, 4), w=st.integers(1, 4),
       momentum=st.sampled_from([0.1, 0.3, 1.0, None]), eps=st.sampled_from([1e-5, 1e-3]),
       affine=st.booleans(), track=st.booleans(), steps=st.integers(1, 3), seed=st.integers(0, 2**20))
def test_batchnorm2d_matches_torch(n, c, h, w, momentum, eps, affine, track, steps, seed):
    ours = B.BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    theirs = nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    for step in range(steps):  # several training steps: running statistics and num_batches_tracked accumulate
        _assert_same(ours, theirs, _randn((n, c, h, w), seed + step), seed, modes=("train",))
    _assert_same(ours, theirs, _randn((n, c, h, w), seed + 7), seed, modes=("eval",))


@settings(max_examples=15)
@given(shape=st.sampled_from([(5, 3), (4, 2, 6), (2, 1, 3)]), momentum=st.sampled_from([0.1, None]),
       seed=st.integers(0, 2**20))
def test_batchnorm1d_matches_torch(shape, momentum, seed):
    _assert_same(B.BatchNorm1d(shape[1], momentum=momentum), nn.BatchNorm1d(shape[1], momentum=momentum),
                 _randn(shape, seed), seed)


@settings(max_examples=20)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), norm=st.lists(st.integers(1, 4), min_size=1,
       max_size=2), affine=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**20))
def test_layernorm_matches_torch(lead, norm, affine, bias, seed):
    ours = B.LayerNorm(norm, elementwise_affine=affine, bias=bias)
    theirs = nn.LayerNorm(norm, elementwise_affine=affine, bias=bias)
    _assert_same(ours, theirs, _randn(tuple(lead + norm), seed), seed)


@settings(max_examples=15)
@given(shape=st.sampled_from([(3, 2), (2, 3, 4), (2, 2, 3, 3)]), training=st.booleans(),
       momentum=st.floats(0.0, 1.0), seed=st.integers(0, 2**20))
def test_batch_norm_functional_matches_F(shape, training, momentum, seed):
    x = _randn(shape, seed)
    c = shape[1]
    rm, rv = _randn((c,), seed + 1), _randn((c,), seed + 2).abs() + 0.1
    w, b = _randn((c,), seed + 3), _randn((c,), seed + 4)
    rm2, rv2 = rm.clone(), rv.clone()
    args = [t.clone().requires_grad_(True) for t in (x, w, b)]
    args2 = [t.clone().requires_grad_(True) for t in (x, w, b)]
    out = B.batch_norm(args[0], rm, rv, args[1], args[2], training, momentum)
    ref = F.batch_norm(args2[0], rm2, rv2, args2[1], args2[2], training, momentum)
    assert_close(out, ref)
    assert_close((rm, rv), (rm2, rv2))
    g = _randn(shape, seed + 5)
    assert_close(torch.autograd.grad(out, args, g), torch.autograd.grad(ref, args2, g))


@settings(max_examples=15)
@given(shape=st.sampled_from([(3, 4), (2, 3, 5), (2, 2, 3, 3)]), k=st.integers(1, 2), seed=st.integers(0, 2**20))
def test_layer_norm_functional_matches_F(shape, k, seed):
    ns = shape[-k:]
    x, w, b = _randn(shape, seed), _randn(ns, seed + 1), _randn(ns, seed + 2)
    args = [t.clone().requires_grad_(True) for t in (x, w, b)]
    args2 = [t.clone().requires_grad_(True) for t in (x, w, b)]
    out, ref = B.layer_norm(args[0], ns, args[1], args[2]), F.layer_norm(args2[0], ns, args2[1], args2[2])
    assert_close(out, ref)
    g = _randn(shape, seed + 3)
    assert_close(torch.autograd.grad(out, args, g), torch.autograd.grad(ref, args2, g))


# --------------------------------------------------------------------------- layers and simple blocks
@settings(max_examples=15)
@given(i=st.integers(1, 6), o=st.integers(1, 6), bias=st.booleans(), seed=st.integers(0, 2**20))
def test_linear_matches_torch_and_same_init(i, o, bias, seed):
    torch.manual_seed(seed)
    ours = B.Linear(i, o, bias)
    torch.manual_seed(seed)
    theirs = nn.Linear(i, o, bias)
    for k, v in theirs.state_dict().items():  # same init from the same RNG state
        assert_close(ours.state_dict()[k], v)
    _assert_same(ours, theirs, _randn((3, i), seed), seed)


@settings(max_examples=15)
@given(c=st.integers(1, 4), o=st.integers(1, 4), k=st.integers(1, 3), s=st.integers(1, 2), p=st.integers(0, 1),
       bias=st.booleans(), size=st.integers(3, 6), seed=st.integers(0, 2**20))
def test_conv2d_module_matches_torch_and_same_init(c, o, k, s, p, bias, size, seed):
    torch.manual_seed(seed)
    ours = B.Conv2d(c, o, k, s, p, bias=bias)
    torch.manual_seed(seed)
    theirs = nn.Conv2d(c, o, k, s, p, bias=bias)
    for key, v in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], v)
    _assert_same(ours, theirs, _randn((2, c, size, size), seed), seed)


@settings(max_examples=15)
@given(i=st.integers(1, 5), o=st.integers(1, 5), norm=st.sampled_from(["batch", "layer", None]),
       act=st.sampled_from(["relu", "gelu", "tanh"]), n=st.integers(2, 5), seed=st.integers(0, 2**20))
def test_linear_block_matches_sequential(i, o, norm, act, n, seed):
    torch_norm = {"batch": nn.BatchNorm1d(o), "layer": nn.LayerNorm(o), None: nn.Identity()}[norm]
    torch_act = {"relu": nn.ReLU(), "gelu": nn.GELU(), "tanh": nn.Tanh()}[act]
    theirs = nn.Sequential(nn.Linear(i, o, bias=norm is None), torch_norm, torch_act, nn.Dropout(0.0))
    ours = B.LinearBlock(i, o, norm=norm, activation=act)
    _randomize(theirs, seed)
    B.copy_weights(theirs, ours.double(), by="order")
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        x = _randn((n, i), seed)
        assert_close(ours(x), theirs(x))


@settings(max_examples=10)
@given(c=st.integers(1, 4), o=st.integers(1, 4), k=st.sampled_from([1, 3]), s=st.integers(1, 2),
       seed=st.integers(0, 2**20))
def test_conv_block_matches_sequential(c, o, k, s, seed):
    theirs = nn.Sequential(nn.Conv2d(c, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU())
    ours = B.ConvBlock(c, o, k, s)
    _randomize(theirs, seed)
    B.copy_weights(theirs, ours.double(), by="order")
    x = _randn((3, c, 5, 5), seed)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        assert_close(ours(x), theirs(x))


# --------------------------------------------------------------------------- DenseNet
@settings(max_examples=10)
@given(layers=st.integers(1, 3), c=st.integers(1, 4), k=st.integers(1, 4), bn_size=st.integers(1, 3),
       size=st.integers(2, 5), seed=st.integers(0, 2**20))
def test_dense_block_matches_torchvision(layers, c, k, bn_size, size, seed):
    ours = B.DenseBlock(layers, c, bn_size, k)
    theirs = tv_densenet._DenseBlock(layers, c, bn_size, k, 0.0)
    x = _randn((2, c, size, size), seed)
    _assert_same(ours, theirs, x, seed)
    assert ours(x).shape[1] == B.dense_block_channels(c, layers, k) == ours.out_channels


@settings(max_examples=8)
@given(c=st.integers(1, 6), o=st.integers(1, 6), size=st.integers(2, 6), seed=st.integers(0, 2**20))
def test_transition_matches_torchvision(c, o, size, seed):
    _assert_same(B.Transition(c, o), tv_densenet._Transition(c, o), _randn((2, c, size, size), seed), seed)


# --------------------------------------------------------------------------- ResNet and Inception
def _tv_downsample(inplanes: int, out: int, stride: int) -> nn.Module:
    return nn.Sequential(tv_resnet.conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))


@settings(max_examples=12)
@given(inplanes=st.integers(1, 6), planes=st.integers(1, 6), stride=st.integers(1, 2),
       force=st.booleans(), size=st.integers(2, 6), seed=st.integers(0, 2**20))
def test_basic_block_matches_torchvision(inplanes, planes, stride, force, size, seed):
    project = force or stride != 1 or inplanes != planes
    ours = B.BasicBlock(inplanes, planes, stride, shortcut="projection" if force else "auto")
    assert (ours.downsample is not None) == project
    theirs = tv_resnet.BasicBlock(inplanes, planes, stride, _tv_downsample(inplanes, planes, stride)
                                  if project else None)
    _assert_same(ours, theirs, _randn((2, inplanes, size, size), seed), seed)


@settings(max_examples=10)
@given(inplanes=st.integers(1, 8), planes=st.integers(1, 3), stride=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), base_width=st.sampled_from([64, 128]), size=st.integers(2, 5),
       seed=st.integers(0, 2**20))
def test_bottleneck_matches_torchvision(inplanes, planes, stride, groups, base_width, size, seed):
    project = stride != 1 or inplanes != 4 * planes
    ours = B.Bottleneck(inplanes, planes, stride, groups=groups, base_width=base_width)
    theirs = tv_resnet.Bottleneck(inplanes, planes, stride, _tv_downsample(inplanes, 4 * planes, stride)
                                  if project else None, groups=groups, base_width=base_width)
    _assert_same(ours, theirs, _randn((2, inplanes, size, size), seed), seed)


@settings(max_examples=4)
@given(c=st.integers(1, 4), pool=st.integers(1, 8), size=st.integers(1, 5), seed=st.integers(0, 2**20))
def test_inception_a_matches_torchvision(c, pool, size, seed):
    ours = B.InceptionA(c, pool)
    x = _randn((2, c, size, size), seed)
    _assert_same(ours, tv_inception.InceptionA(c, pool), x, seed)
    assert ours(x).shape == (2, ours.out_channels, size, size)


def test_plain_block_has_no_skip_and_identity_when_branch_is_zero():
    torch.manual_seed(0)
    plain, res = B.BasicBlock(3, 3, shortcut="none"), B.BasicBlock(3, 3, shortcut="identity")
    for blk in (plain, res):
        torch.nn.init.zeros_(blk.bn2.weight)  # F(x) = 0: a residual block is then relu(x), a plain one relu(0)
    x = torch.randn(2, 3, 4, 4)
    assert_close(res(x), torch.relu(x))
    assert_close(plain(x), torch.zeros_like(x))


# --------------------------------------------------------------------------- errors
def test_identity_shortcut_that_cannot_match_raises():
    with pytest.raises(ValueError, match=r"identity shortcut needs .* inplanes=4 -> 8 output channels with stride=1"):
        B.BasicBlock(4, 8, shortcut="identity")
    with pytest.raises(ValueError, match=r"stride=2"):
        B.Bottleneck(16, 4, stride=2, shortcut="identity")
    with pytest.raises(ValueError, match=r"unknown shortcut 'skip'"):
        B.BasicBlock(4, 4, shortcut="skip")


@pytest.mark.parametrize("make, x, match", [
    (lambda: B.BasicBlock(3, 3), torch.zeros(3, 4, 4), r"BasicBlock: expected input to be 4-D .* got 3-D"),
    (lambda: B.BasicBlock(3, 3), torch.zeros(1, 2, 4, 4), r"BasicBlock: expected input with 3 channels, got 2"),
    (lambda: B.InceptionA(3, 4), torch.zeros(1, 5, 4, 4), r"InceptionA: expected input with 3 channels, got 5"),
    (lambda: B.DenseBlock(2, 3, 2, 2), torch.zeros(3, 4), r"DenseBlock: expected input to be 4-D"),
    (lambda: B.ConvBlock(3, 3), torch.zeros(1, 4, 4, 4), r"ConvBlock: expected input with 3 channels, got 4"),
    (lambda: B.BatchNorm2d(3), torch.zeros(2, 3, 4), r"BatchNorm2d: expected input to be 4-D .* got 3-D"),
    (lambda: B.BatchNorm1d(3), torch.zeros(2, 4), r"BatchNorm1d: expected input with 3 channels .* got 4"),
    (lambda: B.LayerNorm(4), torch.zeros(2, 3), r"last 1 axes of input must equal normalized_shape \[4\], "
                                                 r"got input shape \(2, 3\)"),
    (lambda: B.Linear(4, 2), torch.zeros(2, 3), r"Linear: expected input whose last axis has 4 features"),
    (lambda: B.LinearBlock(4, 2), torch.zeros(2, 3, 4), r"LinearBlock: expected input to be 2-D"),
])
def test_wrong_input_raises(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input shape \(1, 3\)"):
        B.batch_norm(torch.zeros(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\) .* got \(2,\)"):
        B.batch_norm(torch.zeros(2, 3), None, None, torch.ones(2), training=True)
    with pytest.raises(ValueError, match=r"running_mean and running_var must be given when training=False"):
        B.batch_norm(torch.zeros(2, 3), None, None)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] or None .* got 1.5"):
        B.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(TypeError, match=r"num_features must be an int, got float 3.0"):
        B.BatchNorm2d(3.0)
    with pytest.raises(ValueError, match=r"expected weight of shape \(4,\) .* got \(3,\)"):
        B.layer_norm(torch.zeros(2, 4), 4, torch.ones(3))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"unknown norm 'group'"):
        B.LinearBlock(3, 3, norm="group")
    with pytest.raises(ValueError, match=r"unknown activation 'swish'"):
        B.LinearBlock(3, 3, activation="swish")
    with pytest.raises(ValueError, match=r"groups=2 must divide in_channels=3 and out_channels=4"):
        B.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"growth_rate must be a positive int, got 0"):
        B.dense_block_channels(3, 2, 0)
    with pytest.raises(ValueError, match=r"planes must be a positive int, got 0"):
        B.BasicBlock(3, 0)


def test_copy_weights_errors_and_count():
    assert B.copy_weights(nn.BatchNorm2d(3), B.BatchNorm2d(3)) == 5
    with pytest.raises(ValueError, match=r"state_dict keys differ: only in source \['0.bias', '0.weight'\]"):
        B.copy_weights(nn.Sequential(nn.Linear(3, 2)), B.Linear(3, 2))
    with pytest.raises(ValueError, match=r"shape mismatch: source 'weight' \(2, 3\) vs target 'weight' \(2, 4\)"):
        B.copy_weights(nn.Linear(3, 2), B.Linear(4, 2))
    with pytest.raises(ValueError, match=r"source has 2 tensors, target has 1"):
        B.copy_weights(nn.Linear(3, 2), B.Linear(3, 2, bias=False), by="order")
    with pytest.raises(TypeError, match=r"target must be an nn.Module, got Tensor"):
        B.copy_weights(nn.Linear(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"unknown by 'shape'"):
        B.copy_weights(nn.Linear(3, 2), B.Linear(3, 2), by="shape")

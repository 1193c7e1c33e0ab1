"""dlhelpers.clip vs torch.nn.utils: clip_grad_norm_ (norm types incl. inf, error_if_nonfinite), clip_grad_value_,
total_norm forward and backward; argument errors. Float64, shapes and hyper-parameters drawn by hypothesis."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlhelpers import clip as C

DT = torch.float64
shapes = st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4)
norm_types = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, math.inf, "inf"])


def _params(shapes, seed, with_grad, scale=1.0):
    """Two identical lists of parameters; those flagged by ``with_grad`` get the same random gradient."""
    g = torch.Generator().manual_seed(seed)
    a, b = [], []
    for shape, has in zip(shapes, with_grad):
        p = torch.randn(shape, dtype=DT, generator=g)
        pa, pb = p.clone().requires_grad_(), p.clone().requires_grad_()
        if has:
            grad = scale * torch.randn(shape, dtype=DT, generator=g)
            pa.grad, pb.grad = grad.clone(), grad.clone()
        a.append(pa)
        b.append(pb)
    return a, b


@settings(max_examples=60)
@given(shapes=shapes, norm_type=norm_types, rel=st.floats(0.05, 3.0), seed=st.integers(0, 2**16),
       data=st.data())
def test_clip_grad_norm_matches_torch(shapes, norm_type, rel, seed, data):
    with_grad = data.draw(st.lists(st.booleans(), min_size=len(shapes), max_size=len(shapes)))
    ours, theirs = _params(shapes, seed, with_grad, scale=data.draw(st.sampled_from([1e-3, 1.0, 1e3])))
    grads = [p.grad for p in theirs if p.grad is not None]
    unclipped = torch.nn.utils.get_total_norm(grads, norm_type) if grads else torch.tensor(0.0)
    max_norm = rel * float(unclipped)  # below and above the norm: clipped and untouched cases
    n_ours = C.clip_grad_norm_(ours, max_norm, norm_type)
    n_theirs = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    torch.testing.assert_close(n_ours, n_theirs.to(n_ours.dtype), rtol=1e-12, atol=1e-15)
    for a, b in zip(ours, theirs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    clipped = [p.grad for p in ours if p.grad is not None]
    if clipped and rel < 1:  # the new norm is max_norm * n / (n + 1e-6): max_norm, but for the 1e-6
        n = float(unclipped)
        assert math.isclose(float(C.total_norm(clipped, norm_type)), max_norm * n / (n + 1e-6), rel_tol=1e-9)


@given(shapes=shapes, clip=st.floats(1e-3, 2.0), seed=st.integers(0, 2**16), data=st.data())
def test_clip_grad_value_matches_torch(shapes, clip, seed, data):
    with_grad = data.draw(st.lists(st.booleans(), min_size=len(shapes), max_size=len(shapes)))
    with_grad[0] = True  # torch 2.14's foreach path raises when no parameter has a gradient (ours: no-op)
    ours, theirs = _params(shapes, seed, with_grad)
    assert C.clip_grad_value_(ours, clip) is None
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for a, b in zip(ours, theirs):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
            assert a.grad.abs().max() <= clip


@given(shapes=shapes, norm_type=st.sampled_from([1.0, 1.5, 2.0, 3.0, math.inf]), seed=st.integers(0, 2**16))
def test_total_norm_forward_and_backward_match_torch(shapes, norm_type, seed):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(s, dtype=DT, generator=g).requires_grad_() for s in shapes if math.prod(s) > 0]
    if not xs:
        return
    ours = C.total_norm(xs, norm_type)
    torch.testing.assert_close(ours, torch.nn.utils.get_total_norm(xs, norm_type), rtol=1e-12, atol=1e-15)
    # torch's get_total_norm runs under no_grad: the backward reference is the norm of the concatenation
    theirs = torch.linalg.vector_norm(torch.cat([x.flatten() for x in xs]), norm_type)
    ga = torch.autograd.grad(ours, xs)
    gb = torch.autograd.grad(theirs, xs)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_total_norm_is_the_norm_of_the_concatenation():
    xs = [torch.randn(3, 4, dtype=DT), torch.randn(5, dtype=DT)]
    flat = torch.cat([x.flatten() for x in xs])
    for p in (1.0, 2.0, 3.0):
        torch.testing.assert_close(C.total_norm(xs, p), flat.abs().pow(p).sum().pow(1 / p))
    torch.testing.assert_close(C.total_norm(xs, "inf"), flat.abs().max())


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_non_finite_norm(bad):
    def params():
        p, q = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
        p.grad, q.grad = torch.tensor([1.0, bad, 2.0]), torch.tensor([1.0, 1.0])
        return [p, q]

    for fn in (C.clip_grad_norm_, torch.nn.utils.clip_grad_norm_):
        with pytest.raises(RuntimeError, match="non-finite|cannot be clipped"):
            fn(params(), 1.0, error_if_nonfinite=True)
    ours, theirs = params(), params()
    n1, n2 = C.clip_grad_norm_(ours, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    torch.testing.assert_close(n1, n2, equal_nan=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


def test_no_gradients_and_single_tensor():
    p = torch.zeros(3, requires_grad=True)
    assert C.clip_grad_norm_([p], 1.0).item() == 0.0 == torch.nn.utils.clip_grad_norm_([p], 1.0).item()
    p.grad = torch.tensor([3.0, 4.0, 0.0])
    assert math.isclose(C.clip_grad_norm_(p, 1.0).item(), 5.0)  # a bare tensor is accepted, as in torch
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8, 0.0]) * 5 / (5 + 1e-6))


@pytest.mark.parametrize("call,exc,match", [
    (lambda p: C.clip_grad_norm_([p, "w"], 1.0), TypeError,
     r"clip_grad_norm_: parameters must be a tensor or an iterable of tensors, got str at position 1"),
    (lambda p: C.clip_grad_norm_([p], "1"), TypeError, r"clip_grad_norm_: max_norm must be a real number"),
    (lambda p: C.clip_grad_norm_([p], 1.0, norm_type=0), ValueError,
     r"clip_grad_norm_: norm_type must be > 0 \(or inf\), got 0"),
    (lambda p: C.clip_grad_norm_([p], 1.0, norm_type="two"), TypeError, r"norm_type must be a real number"),
    (lambda p: C.clip_grad_value_([p], None), TypeError, r"clip_grad_value_: clip_value must be a real number"),
    (lambda p: C.total_norm([p.grad], -1.0), ValueError, r"total_norm: norm_type must be > 0"),
])
def test_errors(call, exc, match):
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.ones(2)
    with pytest.raises(exc, match=match):
        call(p)

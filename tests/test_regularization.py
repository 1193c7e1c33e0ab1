"""dlhelpers.regularization against PyTorch: dropout and channel dropout, penalties, (decoupled) weight decay and
no-decay parameter groups, early stopping, label-smoothing cross-entropy, the expected calibration error and
temperature scaling (against scipy). Float64, forward and backward."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from dlhelpers.data import make_loader
from dlhelpers.regularization import (
    CrossEntropyLoss,
    Dropout,
    Dropout2d,
    EarlyStopping,
    adam_step,
    adamw_step,
    calibration_bins,
    cross_entropy,
    dropout,
    dropout2d,
    dropout_with_mask,
    expected_calibration_error,
    fit_temperature,
    l1_penalty,
    l2_penalty,
    param_groups_no_decay,
    temperature_nll,
)
from dlhelpers.train import Callback, fit

D = torch.float64
shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
probs_p = st.floats(0.05, 0.95)


def nonzero(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=D) + 0.5
    return x * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(D)


# --------------------------------------------------------------------------- dropout
@given(shape=shapes, p=probs_p, seed=st.integers(0, 2**16))
def test_dropout_with_torch_mask_forward_backward(shape, p, seed):
    x = nonzero(shape, seed).requires_grad_()
    torch.manual_seed(seed)
    theirs = F.dropout(x, p)
    mask = (theirs != 0).detach()            # x has no zeros, so the zeros are exactly torch's mask
    xo = x.detach().clone().requires_grad_()
    ours = dropout_with_mask(xo, mask, p)
    assert_close(ours, theirs)
    g = torch.randn(shape, dtype=D, generator=torch.Generator().manual_seed(seed + 1))
    theirs.backward(g)
    ours.backward(g)
    assert_close(xo.grad, x.grad)


@given(shape=shapes, p=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_dropout_same_seed_is_bit_identical(shape, p, seed):
    x = torch.randn(shape, dtype=D)
    torch.manual_seed(seed)
    theirs = F.dropout(x, p)
    torch.manual_seed(seed)
    ours = dropout(x, p)
    assert torch.equal(ours, theirs)
    gen = torch.Generator().manual_seed(seed)      # the generator argument gives the same stream
    assert torch.equal(dropout(x, p, generator=gen), theirs)


@given(p=probs_p, seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_dropout_statistics_keep_rate_and_mean(p, seed):
    n = 200_000
    y = dropout(torch.ones(n, dtype=D), p, generator=torch.Generator().manual_seed(seed))
    keep = (y != 0).to(D).mean().item()
    assert abs(keep - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)           # 5 sigma, binomial
    assert abs(y.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)    # inverted: E[y] = x
    assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))


def test_dropout_train_eval_edge_cases_and_inplace():
    x = torch.randn(4, 5, dtype=D)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert_close(dropout(x, 1.0), F.dropout(x, 1.0))
    m = Dropout(0.3)
    assert repr(m) == repr(nn.Dropout(0.3))
    assert m.extra_repr() == nn.Dropout(0.3).extra_repr()
    m.eval()
    assert torch.equal(m(x), x)
    m.train()
    torch.manual_seed(7)
    theirs = nn.Dropout(0.3)(x)
    torch.manual_seed(7)
    assert torch.equal(m(x), theirs)
    a, b = x.clone(), x.clone()
    torch.manual_seed(3)
    out_a = dropout(a, 0.4, inplace=True)
    torch.manual_seed(3)
    F.dropout(b, 0.4, inplace=True)
    assert out_a is a and torch.equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_p(p):
    x = torch.ones(3)
    with pytest.raises(ValueError, match=r"dropout: dropout probability p must be in \[0, 1\]"):
        dropout(x, p)
    with pytest.raises(ValueError, match=r"Dropout: dropout probability"):
        Dropout(p)
    with pytest.raises(ValueError, match=r"dropout_with_mask: dropout probability"):
        dropout_with_mask(x, torch.ones(3), p)
    with pytest.raises(TypeError, match=r"dropout: p must be a float"):
        dropout(x, "0.5")
    with pytest.raises(TypeError, match=r"dropout: input must be a torch.Tensor"):
        dropout([1.0], 0.5)


# --------------------------------------------------------------------------- penalties
@given(shapes_=st.lists(shapes, min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_l1_l2_penalties_and_gradients(shapes_, seed):
    g = torch.Generator().manual_seed(seed)
    ps = [torch.randn(s, dtype=D, generator=g).requires_grad_() for s in shapes_]
    l1, l2 = l1_penalty(ps), l2_penalty(iter(ps))
    assert_close(l1, sum(torch.linalg.vector_norm(p, 1) for p in ps))
    assert_close(l2, sum(torch.linalg.vector_norm(p, 2) ** 2 for p in ps))
    g1 = torch.autograd.grad(l1, ps)
    g2 = torch.autograd.grad(l2, ps)
    for p, a, b in zip(ps, g1, g2):
        assert_close(a, torch.sign(p.detach()))
        assert_close(b, 2 * p.detach())
    assert_close(l2_penalty(ps[0]), (ps[0] ** 2).sum())


def test_penalty_errors():
    with pytest.raises(TypeError, match=r"l1_penalty: params must be tensors"):
        l1_penalty(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"l2_penalty: params must contain at least one tensor"):
        l2_penalty([])
    with pytest.raises(TypeError, match=r"l2_penalty: params\[1\] must be a torch.Tensor"):
        l2_penalty([torch.ones(2), 3.0])


def _problem(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(D)
    X = torch.randn(32, 5, dtype=D, generator=g)
    y = torch.randint(0, 3, (32,), generator=g)
    return model, X, y


def _clone(model):
    import copy

    return copy.deepcopy(model)


def _run(model, opt, X, y, steps, l2=0.0):
    for i in range(steps):
        xb, yb = X[(i * 8) % 32:(i * 8) % 32 + 8], y[(i * 8) % 32:(i * 8) % 32 + 8]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        if l2:
            loss = loss + l2 / 2 * l2_penalty(model.parameters())
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@given(lr=st.floats(0.01, 0.5), wd=st.floats(1e-3, 0.5), momentum=st.sampled_from([0.0, 0.9]),
       seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_l2_in_loss_equals_sgd_weight_decay(lr, wd, momentum, seed):
    model, X, y = _problem(seed)
    m2 = _clone(model)
    a = _run(model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd), X, y, 60)
    b = _run(m2, torch.optim.SGD(m2.parameters(), lr=lr, momentum=momentum), X, y, 60, l2=wd)
    for pa, pb in zip(a, b):
        assert_close(pb, pa)


class _Fn(torch.optim.Optimizer):
    """Wrap a functional step (adam_step / adamw_step) as an optimizer for the trajectory tests."""

    def __init__(self, params, step_fn, **hp):
        super().__init__(params, {})
        self.step_fn, self.hp = step_fn, hp

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.step_fn(p, p.grad, self.state[p], **self.hp)


@given(lr=st.floats(1e-3, 5e-2), wd=st.floats(1e-2, 0.5), seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_adam_l2_vs_adamw_decoupled(lr, wd, seed):
    model, X, y = _problem(seed)
    ms = [_clone(model) for _ in range(5)]
    adam_wd = _run(ms[0], torch.optim.Adam(ms[0].parameters(), lr=lr, weight_decay=wd), X, y, 60)
    adam_l2 = _run(ms[1], torch.optim.Adam(ms[1].parameters(), lr=lr), X, y, 60, l2=wd)
    adamw = _run(ms[2], torch.optim.AdamW(ms[2].parameters(), lr=lr, weight_decay=wd), X, y, 60)
    ours_w = _run(ms[3], _Fn(ms[3].parameters(), adamw_step, lr=lr, weight_decay=wd), X, y, 60)
    ours_c = _run(ms[4], _Fn(ms[4].parameters(), adam_step, lr=lr, weight_decay=wd), X, y, 60)
    for a, b, c, d, e in zip(adam_wd, adam_l2, adamw, ours_w, ours_c):
        assert_close(b, a)          # L2 in the loss == Adam(weight_decay): the same coupled update
        assert_close(e, a)          # our coupled step == torch Adam
        assert_close(d, c)          # our decoupled step == torch AdamW
    diff = max((a - c).abs().max().item() for a, c in zip(adam_wd, adamw))
    assert diff > 1e-4              # ...but Adam(weight_decay) != AdamW(weight_decay)


def test_adam_step_errors():
    with pytest.raises(ValueError, match=r"adam_step: need lr, eps, weight_decay >= 0"):
        adam_step(torch.ones(2), torch.ones(2), {}, lr=-1.0)
    with pytest.raises(TypeError, match=r"adam_step: grad must be a torch.Tensor"):
        adam_step(torch.ones(2), None, {})


# --------------------------------------------------------------------------- early stopping
class _Script(Callback):
    """Overwrite the monitored value with a scripted sequence and record the weights of every epoch."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key, self.weights = values, key, []

    def on_epoch_end(self, state):
        state.logs[self.key] = self.values[state.epoch]
        self.weights.append({k: v.clone() for k, v in state.model.state_dict().items()})


def _fit_scripted(values, es, key="val_loss"):
    torch.manual_seed(0)
    model = nn.Linear(3, 2).to(D)
    X, y = torch.randn(16, 3, dtype=D), torch.randint(0, 2, (16,))
    script = _Script(values, key)
    hist = fit(model, make_loader(X, y, 8), make_loader(X, y, 8, shuffle=False), epochs=len(values),
               optimizer=torch.optim.SGD(model.parameters(), lr=0.5), callbacks=[script, es],
               device=torch.device("cpu"), show_progress=False)
    return model, script, hist


def _reference(values, mode, patience, min_delta):
    """Independent statement of the rule: returns (best_epoch, number of epochs run)."""
    best, best_epoch, wait = (math.inf if mode == "min" else -math.inf), None, 0
    for epoch, v in enumerate(values):
        better = v < best - min_delta if mode == "min" else v > best + min_delta
        if better:
            best, best_epoch, wait = v, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return best_epoch, epoch + 1
    return best_epoch, len(values)


def test_early_stopping_scripted_restores_and_checkpoints(tmp_path):
    values = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6]
    path = tmp_path / "ckpt" / "best.pt"
    es = EarlyStopping(patience=3, checkpoint_path=path)
    model, script, hist = _fit_scripted(values, es)
    assert len(hist["val_loss"]) == 5 and es.stopped_epoch == 4        # epochs 2, 3, 4 did not improve
    assert es.best_epoch == 1 and es.best == 0.8
    for k, v in model.state_dict().items():
        assert_close(v, script.weights[1][k])                          # best weights restored
        assert not torch.equal(v, script.weights[4][k])
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["monitor"] == "val_loss" and ckpt["best"] == 0.8
    for k, v in ckpt["model_state_dict"].items():
        assert_close(v, script.weights[1][k])


@given(values=st.lists(st.floats(0, 1), min_size=1, max_size=12), mode=st.sampled_from(["min", "max"]),
       patience=st.integers(0, 4), min_delta=st.sampled_from([0.0, 0.05]), restore=st.booleans())
@settings(max_examples=25)
def test_early_stopping_matches_reference_rule(values, mode, patience, min_delta, restore):
    es = EarlyStopping(monitor="val_acc", mode=mode, patience=patience, min_delta=min_delta,
                       restore_best_weights=restore)
    model, script, hist = _fit_scripted(values, es, key="val_acc")
    best_epoch, n_run = _reference(values, mode, patience, min_delta)
    assert len(hist["val_acc"]) == n_run and es.best_epoch == best_epoch
    want = script.weights[best_epoch] if restore else script.weights[-1]
    for k, v in model.state_dict().items():
        assert_close(v, want[k])


def test_early_stopping_errors():
    with pytest.raises(ValueError, match=r"EarlyStopping: unknown mode 'minimum'"):
        EarlyStopping(mode="minimum")
    with pytest.raises(TypeError, match=r"EarlyStopping: monitor must be a non-empty str"):
        EarlyStopping(monitor=None)
    with pytest.raises(ValueError, match=r"EarlyStopping: patience must be a non-negative int, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"EarlyStopping: min_delta must be a non-negative"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_los' is not logged; available"):
        _fit_scripted([1.0, 0.5], EarlyStopping(monitor="val_los"))


# --------------------------------------------------------------------------- label-smoothing cross-entropy
@st.composite
def ce_case(draw, probs_target=False):
    c = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["unbatched", "batched", "k1", "k2"]))
    n = draw(st.integers(1, 4))
    extra = {"unbatched": (), "batched": (), "k1": (draw(st.integers(1, 3)),),
             "k2": (draw(st.integers(1, 3)), draw(st.integers(1, 2)))}[kind]
    shape = (c,) if kind == "unbatched" else (n, c, *extra)
    tshape = () if kind == "unbatched" else (n, *extra)
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(shape, dtype=D, generator=g)
    if probs_target:
        target = torch.rand(shape, dtype=D, generator=g)
        target = target / target.sum(dim=0 if kind == "unbatched" else 1, keepdim=True)
        ignore_index = -100
    else:
        target = torch.randint(0, c, tshape, generator=g)
        ignore_index = draw(st.sampled_from([-100, 0, c - 1]))
        drop = torch.rand(tshape, generator=g) < draw(st.sampled_from([0.0, 0.3]))
        target = torch.where(drop, torch.full_like(target, ignore_index), target)
    weight = torch.rand(c, dtype=D, generator=g) + 0.1 if draw(st.booleans()) else None
    return x, target, weight, ignore_index


@given(case=ce_case(), reduction=st.sampled_from(["none", "mean", "sum"]),
       eps=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)))
def test_cross_entropy_index_targets_forward_backward(case, reduction, eps):
    x, target, weight, ignore_index = case
    if reduction == "mean":
        assume(bool((target != ignore_index).any()))       # else 0/0 = nan in both
    kw = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = cross_entropy(xa, target, **kw), F.cross_entropy(xb, target, **kw)
    assert_close(ours, theirs)
    g = torch.randn(ours.shape, dtype=D)
    ours.backward(g)
    theirs.backward(g)
    assert_close(xa.grad, xb.grad)


@given(case=ce_case(probs_target=True), reduction=st.sampled_from(["none", "mean", "sum"]),
       eps=st.floats(0.0, 1.0))
@settings(max_examples=25)
def test_cross_entropy_probability_targets(case, reduction, eps):
    x, target, weight, _ = case
    kw = dict(weight=weight, reduction=reduction, label_smoothing=eps)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = cross_entropy(xa, target, **kw), F.cross_entropy(xb, target, **kw)
    assert_close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(xa.grad, xb.grad)


def test_cross_entropy_module_and_all_ignored():
    x, t = torch.randn(4, 3, dtype=D), torch.tensor([0, 2, 1, 1])
    w = torch.tensor([0.2, 1.0, 3.0], dtype=D)
    kw = dict(weight=w, reduction="sum", label_smoothing=0.2)
    assert_close(CrossEntropyLoss(**kw)(x, t), nn.CrossEntropyLoss(**kw)(x, t))
    t_ign = torch.full((4,), -100)
    assert torch.isnan(cross_entropy(x, t_ign)) and torch.isnan(F.cross_entropy(x, t_ign))


def test_cross_entropy_errors():
    x, t = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    for eps in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
            cross_entropy(x, t, label_smoothing=eps)
        with pytest.raises(ValueError, match=r"CrossEntropyLoss: label_smoothing must be in \[0, 1\]"):
            CrossEntropyLoss(label_smoothing=eps)
    with pytest.raises(ValueError, match=r"class-index target must have shape \(4,\).*got \(4, 1\)"):
        cross_entropy(x, t[:, None])
    with pytest.raises(ValueError, match=r"probability targets must have the input's shape \(4, 3\)"):
        cross_entropy(x, torch.rand(4, 2))
    with pytest.raises(ValueError, match=r"cross_entropy: unknown reduction 'avg'"):
        cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\), got \(2,\)"):
        cross_entropy(x, t, weight=torch.ones(2))
    with pytest.raises(ValueError, match=r"cross_entropy: target class indices must be in \[0, 2\]"):
        cross_entropy(x, torch.tensor([0, 3, 1, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: input must be"):
        cross_entropy(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(TypeError, match=r"cross_entropy: label_smoothing must be a float"):
        cross_entropy(x, t, label_smoothing="0.1")


# --------------------------------------------------------------------------- calibration
def _ece_loop(probs, target, n_bins):
    """Direct definition: loop over bins (lo, hi], average accuracy and confidence in each."""
    conf, pred = probs.max(dim=1)
    total, n = 0.0, len(conf)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if lo < conf[i].item() <= hi]
        if members:
            acc = sum(float(pred[i] == target[i]) for i in members) / len(members)
            avg_conf = sum(conf[i].item() for i in members) / len(members)
            total += len(members) / n * abs(acc - avg_conf)
    return total


@given(n=st.integers(1, 60), c=st.integers(2, 6), n_bins=st.integers(1, 20), temp=st.floats(0.1, 5.0),
       seed=st.integers(0, 2**16))
def test_ece_matches_direct_loop(n, c, n_bins, temp, seed):
    g = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, c, dtype=D, generator=g) / temp).softmax(dim=1)
    target = torch.randint(0, c, (n,), generator=g)
    ece = expected_calibration_error(probs, target, n_bins)
    assert_close(ece, torch.tensor(_ece_loop(probs, target, n_bins), dtype=D))
    bins = calibration_bins(probs, target, n_bins)
    assert bins["count"].sum().item() == n


def test_ece_special_cases():
    target = torch.tensor([0, 1, 2, 1])
    one_hot = F.one_hot(target, 3).to(D)
    assert expected_calibration_error(one_hot, target).item() == 0.0          # confident and right
    wrong = F.one_hot((target + 1) % 3, 3).to(D)
    assert expected_calibration_error(wrong, target).item() == 1.0            # confident and wrong


def test_ece_errors():
    p, t = torch.full((4, 2), 0.5), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"expected_calibration_error: probs must be 2-D"):
        expected_calibration_error(p[0], t)
    with pytest.raises(ValueError, match=r"target must have shape \(4,\), got \(3,\)"):
        expected_calibration_error(p, t[:3])
    with pytest.raises(ValueError, match=r"n_bins must be a positive int, got 0"):
        expected_calibration_error(p, t, n_bins=0)
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        expected_calibration_error(p * 3, t)
    with pytest.raises(ValueError, match=r"expected_calibration_error: probs must contain at least one row"):
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


# --------------------------------------------------------------------------- channel dropout
shapes4 = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.integers(1, 5))


@given(shape=shapes4, p=st.floats(0.0, 1.0), seed=st.integers(0, 2**16), inplace=st.booleans())
def test_dropout2d_same_seed_is_bit_identical_forward_backward(shape, p, seed, inplace):
    x = nonzero(shape, seed)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(seed)
    ya = dropout2d(xa * 1.0, p, inplace=inplace)  # * 1.0: in-place needs a non-leaf
    torch.manual_seed(seed)
    yb = F.dropout2d(xb * 1.0, p, inplace=inplace)
    assert torch.equal(ya, yb)
    w = torch.randn(shape, dtype=D)
    (ga,), (gb,) = torch.autograd.grad((ya * w).sum(), xa), torch.autograd.grad((yb * w).sum(), xb)
    assert torch.equal(ga, gb)
    # whole channels: each (n, c) map is either all zero or x / (1 - p)
    for n in range(shape[0]):
        for c in range(shape[1]):
            kept = ya[n, c].detach()
            assert torch.equal(kept, torch.zeros_like(kept)) or (p < 1 and torch.allclose(kept, x[n, c] / (1 - p)))


def test_dropout2d_generator_module_and_eval():
    x = torch.randn(8, 16, 3, 3, dtype=D)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(dropout2d(x, 0.3, generator=g1), dropout2d(x, 0.3, generator=g2))
    m, ref = Dropout2d(0.4), nn.Dropout2d(0.4)
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(1)
    assert torch.equal(a, ref(x))
    assert repr(m) == "Dropout2d(p=0.4, inplace=False)"
    m.eval()
    assert m(x) is x
    assert dropout2d(x, 1.0).abs().sum() == 0
    zeros = (dropout2d(torch.ones(200, 50, 2, 2, dtype=D), 0.3) == 0).all(-1).all(-1).double().mean()
    assert abs(zeros.item() - 0.3) < 0.02  # 10,000 channels: the drop rate is p


@pytest.mark.parametrize("call,exc,match", [
    (lambda: dropout2d(torch.ones(2, 3, 4)), ValueError, r"dropout2d: expected a 4-D input \(N, C, H, W\), got 3-D"),
    (lambda: dropout2d(torch.ones(1, 1, 2, 2), 1.5), ValueError, r"dropout2d: dropout probability p must be in"),
    (lambda: dropout2d([1.0]), TypeError, r"dropout2d: input must be a torch.Tensor, got list"),
    (lambda: Dropout2d("0.5"), TypeError, r"Dropout2d: p must be a float in \[0, 1\], got str"),
])
def test_dropout2d_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- no decay on biases and norms
def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 8),
                         nn.LayerNorm(8), nn.Linear(8, 3, bias=False)).to(D)


def test_param_groups_no_decay_splits_weights_from_biases_and_norms():
    net = _net()
    decay, no_decay = param_groups_no_decay(net, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == ids([net[0].weight, net[4].weight, net[6].weight])
    assert ids(no_decay["params"]) == ids([net[0].bias, net[1].weight, net[1].bias, net[4].bias, net[5].weight,
                                           net[5].bias])
    net[0].bias.requires_grad_(False)
    assert id(net[0].bias) not in ids(param_groups_no_decay(net, 0.1)[1]["params"])


@given(wd=st.floats(1e-3, 0.5), lr=st.floats(1e-3, 0.1), seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_param_groups_no_decay_with_adamw_equals_torch_and_spares_biases(wd, lr, seed):
    """Zero gradients: AdamW only decays, so the decayed group shrinks by (1 - lr wd)^t and the rest is unchanged;
    the same groups given to torch.optim.AdamW give the same parameters."""
    nets = [_net(), _net()]
    opts = [torch.optim.AdamW(param_groups_no_decay(nets[0], wd), lr=lr),
            torch.optim.AdamW([{"params": [p for n, p in nets[1].named_parameters() if n in
                                           ("0.weight", "4.weight", "6.weight")], "weight_decay": wd},
                               {"params": [p for n, p in nets[1].named_parameters() if n not in
                                           ("0.weight", "4.weight", "6.weight")], "weight_decay": 0.0}], lr=lr)]
    before = {n: p.detach().clone() for n, p in nets[0].named_parameters()}
    for _ in range(5):
        for net, opt in zip(nets, opts):
            for p in net.parameters():
                p.grad = torch.zeros_like(p)
            opt.step()
    for (n, a), b in zip(nets[0].named_parameters(), nets[1].parameters()):
        assert_close(a, b, rtol=0, atol=0)
        want = before[n] * (1 - lr * wd) ** 5 if n in ("0.weight", "4.weight", "6.weight") else before[n]
        assert_close(a.detach(), want, rtol=1e-12, atol=1e-15)


def test_param_groups_no_decay_errors():
    with pytest.raises(ValueError, match=r"param_groups_no_decay: weight_decay must be >= 0, got -1"):
        param_groups_no_decay(_net(), -1)
    with pytest.raises(TypeError, match=r"param_groups_no_decay: model must be an nn.Module, got list"):
        param_groups_no_decay([torch.zeros(1)], 0.1)


# --------------------------------------------------------------------------- temperature scaling
@given(n=st.integers(5, 100), c=st.integers(2, 10), scale=st.floats(0.2, 8.0), noise=st.floats(0.3, 3.0),
       seed=st.integers(0, 2**16))
@settings(max_examples=15)
def test_fit_temperature_matches_scipy(n, c, scale, noise, seed):
    """The NLL minimiser found by Newton in 1/T equals scipy's bounded scalar minimiser in log T."""
    from scipy.optimize import minimize_scalar

    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (n,), generator=g)
    logits = scale * (F.one_hot(target, c).to(D) + noise * torch.randn(n, c, dtype=D, generator=g))
    # one mistake makes the NLL blow up as T -> 0, so the optimum is finite (all right: it is at T -> 0)
    assume(bool((logits.argmax(1) != target).any()))
    T = fit_temperature(logits, target)
    ref = minimize_scalar(lambda u: float(temperature_nll(logits, target, math.exp(u))), bounds=(-9.2, 9.2),
                          method="bounded", options={"xatol": 1e-10})
    T_ref = math.exp(ref.x)
    nll, nll_ref = float(temperature_nll(logits, target, T)), float(temperature_nll(logits, target, T_ref))
    assert nll <= nll_ref + 1e-10
    assert math.isclose(T, T_ref, rel_tol=1e-4)
    # at the optimum the derivative of the NLL in T vanishes (autograd as an independent check)
    t = torch.tensor(T, dtype=D, requires_grad=True)
    (dt,) = torch.autograd.grad(F.cross_entropy(logits / t, target), t)
    assert abs(dt.item()) * T < 1e-6


def test_temperature_nll_is_cross_entropy_of_scaled_logits_forward_backward():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 4, dtype=D, generator=g, requires_grad=True)
    target = torch.randint(0, 4, (20,), generator=g)
    t = torch.tensor(1.7, dtype=D, requires_grad=True)
    ours, theirs = temperature_nll(logits, target, t), F.cross_entropy(logits / t, target)
    assert_close(ours, theirs)
    for a, b in zip(torch.autograd.grad(ours, (logits, t)), torch.autograd.grad(theirs, (logits, t))):
        assert_close(a, b)


def test_fit_temperature_cools_an_overconfident_model_and_keeps_accuracy():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (500,), generator=g)
    logits = 10 * (F.one_hot(target, 5).to(D) + 1.2 * torch.randn(500, 5, dtype=D, generator=g))
    T = fit_temperature(logits, target)
    assert T > 1  # over-confident: soften
    before = expected_calibration_error(logits.softmax(1), target)
    after = expected_calibration_error((logits / T).softmax(1), target)
    assert after < before
    assert torch.equal((logits / T).argmax(1), logits.argmax(1))


@pytest.mark.parametrize("call,match", [
    (lambda: fit_temperature(torch.zeros(4), torch.zeros(4, dtype=torch.long)),
     r"fit_temperature: logits must be 2-D \(N, C\) with N >= 1, got shape \(4,\)"),
    (lambda: fit_temperature(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long)),
     r"fit_temperature: target must be class indices of shape \(4,\)"),
    (lambda: fit_temperature(torch.zeros(4, 3), torch.zeros(4)), r"target must be class indices"),
    (lambda: temperature_nll(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 1.0),
     r"temperature_nll: logits must be 2-D"),
])
def test_temperature_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()

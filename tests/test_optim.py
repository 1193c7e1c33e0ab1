"""dlhelpers.optim vs torch.optim: pure update rules, Optimizer subclasses (200-step trajectories, float64),
argument validation, state_dict round trips, lr_finder and compare_optimizers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlhelpers import optim as O
from dlhelpers.data import make_loader

DT = torch.float64
TOL = dict(atol=1e-6, rtol=1e-6)

# ---------------------------------------------------------------------------------------------------------
# option strategies (one per optimizer) -> (ours class, torch class, pure fn, kwargs)
# ---------------------------------------------------------------------------------------------------------

lrs = st.floats(1e-4, 0.05)
wds = st.sampled_from([0.0, 0.0, 1e-3, 0.1])


@st.composite
def sgd_options(draw):
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5]))
    return O.SGD, torch.optim.SGD, O.sgd_step, dict(
        lr=draw(lrs), momentum=momentum, dampening=dampening, weight_decay=draw(wds), nesterov=nesterov,
        maximize=draw(st.booleans()))


@st.composite
def adagrad_options(draw):
    return O.Adagrad, torch.optim.Adagrad, O.adagrad_step, dict(
        lr=draw(st.floats(1e-3, 0.1)), lr_decay=draw(st.sampled_from([0.0, 0.0, 1e-3, 0.1])),
        weight_decay=draw(wds), initial_accumulator_value=draw(st.sampled_from([0.0, 0.1, 1.0])),
        eps=draw(st.sampled_from([1e-10, 1e-6, 1e-2])), maximize=draw(st.booleans()))


@st.composite
def rmsprop_options(draw):
    return O.RMSprop, torch.optim.RMSprop, O.rmsprop_step, dict(
        lr=draw(st.floats(1e-4, 0.01)), alpha=draw(st.sampled_from([0.9, 0.99])),
        eps=draw(st.sampled_from([1e-8, 1e-3])), weight_decay=draw(wds),
        momentum=draw(st.sampled_from([0.0, 0.5, 0.9])), centered=draw(st.booleans()),
        maximize=draw(st.booleans()))


@st.composite
def adam_options(draw, decoupled=False):
    ours, theirs, fn = (O.AdamW, torch.optim.AdamW, O.adamw_step) if decoupled else \
        (O.Adam, torch.optim.Adam, O.adam_step)
    return ours, theirs, fn, dict(
        lr=draw(st.floats(1e-4, 0.02)), betas=(draw(st.sampled_from([0.0, 0.5, 0.9])),
                                               draw(st.sampled_from([0.9, 0.99, 0.999]))),
        eps=draw(st.sampled_from([1e-8, 1e-4])), weight_decay=draw(wds), amsgrad=draw(st.booleans()),
        maximize=draw(st.booleans()))


ALL_OPTIONS = st.one_of(sgd_options(), adagrad_options(), rmsprop_options(), adam_options(),
                        adam_options(decoupled=True))
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


# ---------------------------------------------------------------------------------------------------------
# pure update rules
# ---------------------------------------------------------------------------------------------------------

def _torch_state(opt: torch.optim.Optimizer, p: torch.Tensor) -> dict:
    return {k: (v.item() if k == "step" else v) for k, v in opt.state[p].items()}


@given(options=ALL_OPTIONS, shape=shapes, seed=st.integers(0, 2**16))
def test_pure_update_rule_matches_torch_step_by_step(options, shape, seed):
    _, torch_cls, pure, kw = options
    g = torch.Generator().manual_seed(seed)
    p0 = torch.randn(shape, dtype=DT, generator=g)
    theirs = p0.clone().requires_grad_()
    opt = torch_cls([theirs], **kw)
    ours, state = p0.clone(), {}
    for _ in range(6):
        grad = torch.randn(shape, dtype=DT, generator=g)
        old, grad_in = state, grad.clone()
        old_copy = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in old.items()}
        ours, state = pure(ours, grad, old, **kw)
        theirs.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(ours, theirs.detach(), **TOL)
        for key, value in _torch_state(opt, theirs).items():  # same state, same names
            if key == "step":
                assert state[key] == value
            else:
                torch.testing.assert_close(state[key], value, **TOL)
        torch.testing.assert_close(grad, grad_in, rtol=0, atol=0)  # inputs untouched
        for k, v in old_copy.items():
            assert (old[k] == v).all() if torch.is_tensor(v) else old[k] == v


@settings(max_examples=30)
@given(options=ALL_OPTIONS, shape=shapes, step=st.integers(1, 50), seed=st.integers(0, 2**16))
def test_pure_update_rule_backward_matches_torch_differentiable(options, shape, step, seed):
    """Backward: d(new param)/d(param, grad, state) of our pure rule == torch.optim(differentiable=True),
    one step from a random state (torch detaches a *fresh* momentum buffer, so we start from a given one)."""
    _, torch_cls, pure, kw = options
    g = torch.Generator().manual_seed(seed)
    p0 = torch.randn(shape, dtype=DT, generator=g).requires_grad_()
    grad = torch.randn(shape, dtype=DT, generator=g).requires_grad_()
    keys = sorted(k for k in pure(p0.detach(), grad.detach(), {}, **kw)[1] if k != "step")
    state = {}
    for k in keys:  # positive second moments, small first moments (so v - m^2 > 0 for centered RMSprop)
        scale = 0.1 if k in ("grad_avg", "exp_avg", "momentum_buffer") else 1.0
        state[k] = (scale * (torch.rand(shape, dtype=DT, generator=g) + 0.5)).requires_grad_()
    p = p0.clone()
    opt = torch_cls([p], differentiable=True, **kw)
    p.grad = grad
    opt.state[p].update({k: v.clone() for k, v in state.items()})
    ours_state = dict(state)
    if torch_cls is not torch.optim.SGD:
        opt.state[p]["step"] = torch.tensor(float(step), dtype=DT)
        ours_state["step"] = step
    opt.step()
    ours, _ = pure(p0, grad, ours_state, **kw)
    torch.testing.assert_close(ours, p, **TOL)
    w = torch.randn(shape, dtype=DT, generator=g)
    inputs = [p0, grad, *state.values()]
    for a, b in zip(torch.autograd.grad((ours * w).sum(), inputs), torch.autograd.grad((p * w).sum(), inputs)):
        torch.testing.assert_close(a, b, **TOL)


def test_pure_functions_do_not_mutate_their_state():
    p, gr = torch.randn(3, dtype=DT), torch.randn(3, dtype=DT)
    _, s1 = O.adam_step(p, gr, {}, lr=0.1, amsgrad=True)
    before = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s1.items()}
    O.adam_step(p, gr, s1, lr=0.1, amsgrad=True)
    for k, v in before.items():
        assert (s1[k] == v).all() if torch.is_tensor(v) else s1[k] == v


def test_sgd_step_hand_example():
    # param 1, grad 2, lr 0.1, momentum 0.9: step 1 buf=2 -> 0.8; step 2 buf=0.9*2+2=3.8 -> 0.8-0.38=0.42
    p, st_ = torch.tensor(1.0, dtype=DT), {}
    p, st_ = O.sgd_step(p, torch.tensor(2.0, dtype=DT), st_, lr=0.1, momentum=0.9)
    p, st_ = O.sgd_step(p, torch.tensor(2.0, dtype=DT), st_, lr=0.1, momentum=0.9)
    assert math.isclose(p.item(), 0.42, abs_tol=1e-12)


def test_adagrad_hand_example():
    # g = 2 twice, lr 1: s = 4 -> step 2/2 = 1; s = 8 -> step 2/sqrt(8); with lr_decay 1 the second rate is 1/2
    p, st_ = O.adagrad_step(torch.tensor(0.0, dtype=DT), torch.tensor(2.0, dtype=DT), {}, lr=1.0, eps=0.0,
                            lr_decay=1.0)
    assert math.isclose(p.item(), -1.0)
    p, st_ = O.adagrad_step(p, torch.tensor(2.0, dtype=DT), st_, lr=1.0, eps=0.0, lr_decay=1.0)
    assert math.isclose(p.item(), -1.0 - 0.5 * 2 / math.sqrt(8)) and st_["step"] == 2


def test_adam_first_step_is_lr_times_sign():
    # with bias correction, m_hat = g and v_hat = g^2, so the first step is lr * g / (|g| + eps)
    g = torch.tensor([3.0, -0.5, 1e-3], dtype=DT)
    p, _ = O.adam_step(torch.zeros(3, dtype=DT), g, {}, lr=0.01, eps=0.0)
    torch.testing.assert_close(p, -0.01 * g.sign())


# ---------------------------------------------------------------------------------------------------------
# Optimizer subclasses: 200-step trajectories on a small model
# ---------------------------------------------------------------------------------------------------------

def _model(d_in: int, hidden: int, d_out: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out)).to(DT)


def _trajectories(model_a, opt_a, model_b, opt_b, X, Y, steps, maximize):
    for _ in range(steps):
        for model, opt in ((model_a, opt_a), (model_b, opt_b)):
            opt.zero_grad()
            loss = F.mse_loss(model(X), Y)
            (-loss if maximize else loss).backward()  # maximize -loss == minimize loss: stays bounded
            opt.step()
        for pa, pb in zip(model_a.parameters(), model_b.parameters()):
            torch.testing.assert_close(pa, pb, **TOL)


@settings(max_examples=20)
@given(options=ALL_OPTIONS, d_in=st.integers(1, 5), hidden=st.integers(1, 6), d_out=st.integers(1, 3),
       foreach=st.booleans(), seed=st.integers(0, 2**16))
def test_optimizer_trajectory_matches_torch_200_steps(options, d_in, hidden, d_out, foreach, seed):
    ours_cls, torch_cls, _, kw = options
    ma, mb = _model(d_in, hidden, d_out, seed), _model(d_in, hidden, d_out, seed)
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.randn(12, d_in, dtype=DT, generator=g), torch.randn(12, d_out, dtype=DT, generator=g)
    _trajectories(ma, ours_cls(ma.parameters(), foreach=foreach, **kw), mb, torch_cls(mb.parameters(), **kw),
                  X, Y, 200, kw["maximize"])


@settings(max_examples=10)
@given(options=adagrad_options(), d_in=st.integers(1, 5), hidden=st.integers(1, 6), foreach=st.booleans(),
       seed=st.integers(0, 2**16))
def test_adagrad_trajectory_matches_torch(options, d_in, hidden, foreach, seed):
    """Adagrad on its own (lr_decay, weight_decay, initial_accumulator_value, eps drawn), 200 steps."""
    ours_cls, torch_cls, _, kw = options
    ma, mb = _model(d_in, hidden, 2, seed), _model(d_in, hidden, 2, seed)
    g = torch.Generator().manual_seed(seed)
    X, Y = torch.randn(12, d_in, dtype=DT, generator=g), torch.randn(12, 2, dtype=DT, generator=g)
    _trajectories(ma, ours_cls(ma.parameters(), foreach=foreach, **kw), mb, torch_cls(mb.parameters(), **kw),
                  X, Y, 200, kw["maximize"])


@pytest.mark.parametrize("ours_cls,torch_cls,kw", [
    (O.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (O.RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (O.Adagrad, torch.optim.Adagrad, dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
    (O.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (O.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
])
@pytest.mark.parametrize("foreach", [True, False])
def test_param_groups_and_frozen_params(ours_cls, torch_cls, kw, foreach):
    """Two groups with their own lr, and a parameter without gradient (skipped, as torch does)."""
    ma, mb = _model(3, 4, 2, 0), _model(3, 4, 2, 0)
    for m in (ma, mb):
        m[2].bias.requires_grad_(False)
    groups = lambda m: [{"params": m[0].parameters()}, {"params": [m[2].weight], "lr": kw["lr"] / 3}]
    X, Y = torch.randn(8, 3, dtype=DT), torch.randn(8, 2, dtype=DT)
    _trajectories(ma, ours_cls(groups(ma), foreach=foreach, **kw), mb, torch_cls(groups(mb), **kw), X, Y, 50,
                  False)


@pytest.mark.parametrize("cls,kw", [(O.SGD, dict(lr=0.05, momentum=0.9)), (O.RMSprop, dict(centered=True)),
                                    (O.Adagrad, dict(lr_decay=0.1, weight_decay=0.01)),
                                    (O.Adam, dict(lr=0.01, amsgrad=True)), (O.AdamW, dict(lr=0.01))])
def test_state_dict_round_trip_resumes_exactly(cls, kw):
    X, Y = torch.randn(8, 3, dtype=DT), torch.randn(8, 2, dtype=DT)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(X), Y).backward()
            opt.step()

    ref = _model(3, 4, 2, 0)
    train(ref, cls(ref.parameters(), **kw), 20)
    first = _model(3, 4, 2, 0)
    opt = cls(first.parameters(), **kw)
    train(first, opt, 10)
    resumed = _model(3, 4, 2, 1)
    resumed.load_state_dict(first.state_dict())
    opt2 = cls(resumed.parameters(), **kw)
    opt2.load_state_dict(opt.state_dict())
    train(resumed, opt2, 10)
    for a, b in zip(ref.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_closure_is_evaluated_and_returned():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    opt = O.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = ((p - 1) ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    torch.testing.assert_close(p.detach(), torch.full((2,), 0.2, dtype=DT))


def test_defaults_match_torch():
    p = [torch.zeros(1, requires_grad=True)]
    for ours, theirs in [(O.SGD, torch.optim.SGD), (O.Adagrad, torch.optim.Adagrad), (O.RMSprop, torch.optim.RMSprop),
                         (O.Adam, torch.optim.Adam), (O.AdamW, torch.optim.AdamW)]:
        d_ours, d_theirs = ours(p).defaults, theirs(p).defaults
        for key, value in d_ours.items():
            if key != "foreach":
                assert d_theirs[key] == value, (ours.__name__, key)


# ---------------------------------------------------------------------------------------------------------
# argument validation (torch raises ValueError for the same cases)
# ---------------------------------------------------------------------------------------------------------

P = [torch.zeros(1, requires_grad=True)]


@pytest.mark.parametrize("make,match", [
    (lambda: O.SGD(P, lr=-0.1), r"SGD: lr must be >= 0, got -0.1"),
    (lambda: O.SGD(P, lr=0.1, momentum=-0.5), r"SGD: momentum must be >= 0"),
    (lambda: O.SGD(P, lr=0.1, weight_decay=-1.0), r"SGD: weight_decay must be >= 0"),
    (lambda: O.SGD(P, lr=0.1, nesterov=True), r"SGD: nesterov=True requires momentum > 0 and dampening == 0"),
    (lambda: O.SGD(P, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0.1"),
    (lambda: O.Adam(P, lr=-1.0), r"Adam: lr must be >= 0"),
    (lambda: O.Adam(P, betas=(1.0, 0.999)), r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda: O.Adam(P, betas=(0.9, -0.1)), r"Adam: betas\[1\] must be in \[0, 1\)"),
    (lambda: O.Adam(P, eps=-1e-8), r"Adam: eps must be >= 0"),
    (lambda: O.Adam(P, weight_decay=-0.1), r"Adam: weight_decay must be >= 0"),
    (lambda: O.AdamW(P, betas=(0.9, 1.5)), r"AdamW: betas\[1\] must be in \[0, 1\)"),
    (lambda: O.AdamW(P, weight_decay=-0.1), r"AdamW: weight_decay must be >= 0"),
    (lambda: O.RMSprop(P, lr=-0.1), r"RMSprop: lr must be >= 0"),
    (lambda: O.RMSprop(P, alpha=-0.1), r"RMSprop: alpha must be >= 0"),
    (lambda: O.RMSprop(P, eps=-1.0), r"RMSprop: eps must be >= 0"),
    (lambda: O.RMSprop(P, momentum=-0.1), r"RMSprop: momentum must be >= 0"),
    (lambda: O.RMSprop(P, weight_decay=-0.1), r"RMSprop: weight_decay must be >= 0"),
    (lambda: O.sgd_step(P[0], P[0], {}, lr=-1.0), r"sgd_step: lr must be >= 0"),
    (lambda: O.adam_step(P[0], P[0], {}, betas=(0.9, 1.0)), r"adam_step: betas\[1\]"),
    (lambda: O.adamw_step(P[0], P[0], {}, eps=-1.0), r"adamw_step: eps must be >= 0"),
    (lambda: O.rmsprop_step(P[0], P[0], {}, alpha=-1.0), r"rmsprop_step: alpha must be >= 0"),
    (lambda: O.SGD(P, lr=float("nan")), r"SGD: lr must not be NaN"),
    (lambda: O.Adagrad(P, lr=-0.1), r"Adagrad: lr must be >= 0, got -0.1"),
    (lambda: O.Adagrad(P, lr_decay=-0.1), r"Adagrad: lr_decay must be >= 0"),
    (lambda: O.Adagrad(P, weight_decay=-0.1), r"Adagrad: weight_decay must be >= 0"),
    (lambda: O.Adagrad(P, initial_accumulator_value=-1.0), r"Adagrad: initial_accumulator_value must be >= 0"),
    (lambda: O.Adagrad(P, eps=-1.0), r"Adagrad: eps must be >= 0"),
    (lambda: O.adagrad_step(P[0], P[0], {}, lr_decay=-1.0), r"adagrad_step: lr_decay must be >= 0"),
])
def test_invalid_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make,match", [
    (lambda: O.Adam(P, betas=0.9), r"Adam: betas must be a pair"),
    (lambda: O.SGD(P, lr="0.1"), r"SGD: lr must be a real number \(int or float\), got str"),
])
def test_wrong_types_raise_type_error(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_torch_rejects_the_same_cases():
    """Our ValueErrors cover torch's: each case torch rejects, we reject too."""
    cases = [(torch.optim.SGD, O.SGD, dict(lr=-0.1)), (torch.optim.SGD, O.SGD, dict(lr=0.1, nesterov=True)),
             (torch.optim.Adam, O.Adam, dict(betas=(1.0, 0.9))), (torch.optim.Adam, O.Adam, dict(eps=-1.0)),
             (torch.optim.RMSprop, O.RMSprop, dict(alpha=-1.0)), (torch.optim.Adagrad, O.Adagrad, dict(lr_decay=-1.0)),
             (torch.optim.Adagrad, O.Adagrad, dict(initial_accumulator_value=-1.0))]
    for theirs, ours, kw in cases:
        for cls in (theirs, ours):
            with pytest.raises(ValueError):
                cls(P, **kw)


def test_sparse_gradients_are_rejected():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(TypeError, match="SGD: sparse gradients are not supported"):
        O.SGD([p], lr=0.1).step()


# ---------------------------------------------------------------------------------------------------------
# lr_finder, suggest_lr, compare_optimizers
# ---------------------------------------------------------------------------------------------------------

def _toy_loaders(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return make_loader(X, y, batch_size=16, shuffle=True), make_loader(X, y, batch_size=32, shuffle=False)


def _clf():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_lr_finder_restores_weights_and_sweeps_geometrically():
    torch.manual_seed(0)
    model = _clf()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, _ = _toy_loaders()
    lrs, losses = O.lr_finder(model, train, F.cross_entropy, lambda p: O.SGD(p, lr=1.0), 1e-4, 1.0, 20,
                              diverge=1e9)
    assert len(lrs) == len(losses) == 20
    assert math.isclose(lrs[0], 1e-4) and math.isclose(lrs[-1], 1.0)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) - min(ratios) < 1e-9
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert 1e-4 <= O.suggest_lr(lrs, losses) <= 1.0


def test_lr_finder_smoothing_is_bias_corrected_mean():
    """With smooth=0.5 the first smoothed loss is the first raw loss (bias correction)."""
    torch.manual_seed(0)
    model, (train, _) = _clf(), _toy_loaders()
    xb, yb = next(iter(make_loader(*train.dataset.tensors, batch_size=16, shuffle=False)))
    loader = [(xb, yb)]
    first = F.cross_entropy(model(xb), yb).item()
    _, losses = O.lr_finder(model, loader, F.cross_entropy, lambda p: O.SGD(p, lr=1.0), 1e-3, 1e-2, 3,
                            smooth=0.5)
    assert math.isclose(losses[0], first, rel_tol=1e-6)


def test_lr_finder_stops_when_loss_diverges():
    torch.manual_seed(0)
    model, (train, _) = _clf(), _toy_loaders()
    lrs, _ = O.lr_finder(model, train, F.cross_entropy, lambda p: O.SGD(p, lr=1.0), 1e-2, 1e6, 100,
                         smooth=0.0)
    assert len(lrs) < 100


@pytest.mark.parametrize("kwargs,match", [
    (dict(start_lr=1.0, end_lr=0.1), r"lr_finder: need 0 < start_lr < end_lr"),
    (dict(num_steps=1), r"lr_finder: num_steps must be an int >= 2"),
    (dict(smooth=1.0), r"lr_finder: smooth must be in \[0, 1\)"),
])
def test_lr_finder_errors(kwargs, match):
    train, _ = _toy_loaders()
    args = dict(start_lr=1e-3, end_lr=1.0, num_steps=5) | kwargs
    with pytest.raises(ValueError, match=match):
        O.lr_finder(_clf(), train, F.cross_entropy, lambda p: O.SGD(p, lr=1.0), **args)


def test_suggest_lr_errors():
    with pytest.raises(ValueError, match="suggest_lr: need >= 3 matching"):
        O.suggest_lr([1.0, 2.0], [1.0])


def test_compare_optimizers_tidy_and_matches_torch():
    from dlhelpers.schedulers import StepLR

    train, val = _toy_loaders()
    settings_ = {
        "ours": (lambda p: O.SGD(p, lr=0.1, momentum=0.9), lambda o: StepLR(o, 1, 0.5)),
        "torch": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                  lambda o: torch.optim.lr_scheduler.StepLR(o, 1, 0.5)),
        "adam": (lambda p: O.Adam(p, lr=1e-2), None),
    }
    df = O.compare_optimizers(_clf, train, val, settings_, epochs=3, seeds=[0, 1], show_progress=False,
                              device=torch.device("cpu"))
    assert list(df.columns) == ["setting", "seed", "epoch", "train_loss", "val_loss", "val_acc", "lr"]
    assert len(df) == 3 * 2 * 3
    ours = df[df.setting == "ours"].reset_index(drop=True)
    theirs = df[df.setting == "torch"].reset_index(drop=True)
    for col in ["train_loss", "val_loss", "val_acc", "lr"]:
        torch.testing.assert_close(torch.tensor(ours[col].values), torch.tensor(theirs[col].values),
                                   rtol=1e-5, atol=1e-6)
    assert ours.lr.tolist() == [0.1, 0.05, 0.025] * 2
    s0 = df[(df.setting == "adam") & (df.seed == 0)].train_loss.values
    s1 = df[(df.setting == "adam") & (df.seed == 1)].train_loss.values
    assert (s0 != s1).any()  # seeds differ


def test_compare_optimizers_errors():
    train, val = _toy_loaders()
    with pytest.raises(ValueError, match="compare_optimizers: settings is empty"):
        O.compare_optimizers(_clf, train, val, {}, epochs=1)
    with pytest.raises(ValueError, match="compare_optimizers: epochs must be a positive int"):
        O.compare_optimizers(_clf, train, val, {"a": (lambda p: O.SGD(p, lr=0.1), None)}, epochs=0)

"""dlhelpers.schedulers vs torch.optim.lr_scheduler: value for value over many steps (hypothesis over
parameters, two param groups), ReduceLROnPlateau over random metric sequences, state_dict round trips,
use with dlhelpers.train.fit, argument errors, schedule_values / plot_schedule."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.optim import lr_scheduler as T

from dlhelpers import schedulers as S

STEPS = 200
base_lrs = st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0))


def _opt(lrs: tuple[float, float]) -> torch.optim.Optimizer:
    """SGD with two param groups of different base rates."""
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[0]},
                            {"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[1]}])


def _lrs(opt: torch.optim.Optimizer) -> list[float]:
    return [g["lr"] for g in opt.param_groups]


def _compare(make_ours, make_theirs, lrs, steps=STEPS, atol=1e-12):
    """Step both schedulers (after an optimizer step, as in training) and compare every rate."""
    o1, o2 = _opt(lrs), _opt(lrs)
    s1, s2 = make_ours(o1), make_theirs(o2)
    assert s1.last_epoch == s2.last_epoch == 0
    ours, theirs, last_ok = [], [], True
    for _ in range(steps):
        ours.append(_lrs(o1))
        theirs.append(_lrs(o2))
        last_ok &= s1.get_last_lr() == ours[-1]
        o1.step()
        o2.step()
        s1.step()
        s2.step()
    a, b = torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64)
    bad = ~torch.isclose(a, b, rtol=1e-9, atol=atol)
    assert not bad.any(), f"first mismatch at epoch {int(bad.any(1).nonzero()[0])}"
    torch.testing.assert_close(a, b, rtol=1e-9, atol=atol)
    assert last_ok
    assert s1.last_epoch == s2.last_epoch == steps


@given(lrs=base_lrs, step_size=st.integers(1, 40), gamma=st.floats(0.1, 0.99))
def test_step_lr(lrs, step_size, gamma):
    _compare(lambda o: S.StepLR(o, step_size, gamma), lambda o: T.StepLR(o, step_size, gamma), lrs)


@given(lrs=base_lrs, milestones=st.lists(st.integers(1, STEPS), min_size=1, max_size=5),
       gamma=st.floats(0.1, 0.99))
def test_multistep_lr(lrs, milestones, gamma):
    _compare(lambda o: S.MultiStepLR(o, milestones, gamma), lambda o: T.MultiStepLR(o, milestones, gamma), lrs)


@given(lrs=base_lrs, gamma=st.floats(0.9, 1.0))
def test_exponential_lr(lrs, gamma):
    _compare(lambda o: S.ExponentialLR(o, gamma), lambda o: T.ExponentialLR(o, gamma), lrs, atol=1e-15)


@given(lrs=base_lrs, T_max=st.integers(1, 120), eta_min=st.sampled_from([0.0, 1e-5, 1e-3]))
def test_cosine_annealing_lr(lrs, T_max, eta_min):
    # torch's recursive form drifts by ~1e-16 * base per step; over 300 steps past T_max that is << 1e-10
    _compare(lambda o: S.CosineAnnealingLR(o, T_max, eta_min), lambda o: T.CosineAnnealingLR(o, T_max, eta_min),
             lrs, atol=1e-10)


@given(lrs=base_lrs, T_0=st.integers(1, 30), T_mult=st.integers(1, 3), eta_min=st.sampled_from([0.0, 1e-4]))
def test_cosine_annealing_warm_restarts(lrs, T_0, T_mult, eta_min):
    _compare(lambda o: S.CosineAnnealingWarmRestarts(o, T_0, T_mult, eta_min),
             lambda o: T.CosineAnnealingWarmRestarts(o, T_0, T_mult, eta_min), lrs)


@given(lrs=base_lrs, start=st.floats(0.01, 1.0), end=st.floats(0.0, 1.0), total=st.integers(1, 50))
def test_linear_lr(lrs, start, end, total):
    _compare(lambda o: S.LinearLR(o, start, end, total), lambda o: T.LinearLR(o, start, end, total), lrs,
             steps=120)


@given(lrs=base_lrs, start=st.floats(0.01, 1.0), warmup=st.integers(1, 50))
def test_linear_warmup_is_torch_linear_lr(lrs, start, warmup):
    _compare(lambda o: S.LinearWarmup(o, warmup, start), lambda o: T.LinearLR(o, start, 1.0, warmup), lrs,
             steps=120)


@given(lrs=base_lrs, start=st.floats(0.01, 1.0), warmup=st.integers(1, 30), decay=st.integers(1, 100),
       eta_min=st.sampled_from([0.0, 1e-4]))
def test_warmup_cosine_is_torch_sequential_linear_cosine(lrs, start, warmup, decay, eta_min):
    total = warmup + decay

    def theirs(o):
        return T.SequentialLR(o, [T.LinearLR(o, start, 1.0, warmup), T.CosineAnnealingLR(o, decay, eta_min)],
                              milestones=[warmup])

    _compare(lambda o: S.WarmupCosineLR(o, warmup, total, start, eta_min), theirs, lrs, steps=total + 20,
             atol=1e-10)


def test_warmup_cosine_hand_values():
    # base 1, warm-up 2 epochs from 1/2, cosine over 2 epochs: 0.5, 0.75, 1.0, 0.5, 0.0
    vals = S.schedule_values(lambda o: S.WarmupCosineLR(o, 2, 4, start_factor=0.5), 5, base_lr=1.0)
    torch.testing.assert_close(torch.tensor(vals), torch.tensor([0.5, 0.75, 1.0, 0.5, 0.0]))


# ---------------------------------------------------------------------------------------------------------
# ReduceLROnPlateau
# ---------------------------------------------------------------------------------------------------------

@settings(max_examples=60)
@given(lrs=base_lrs, mode=st.sampled_from(["min", "max"]), threshold_mode=st.sampled_from(["rel", "abs"]),
       threshold=st.sampled_from([0.0, 1e-4, 0.01, 0.1]), patience=st.integers(0, 5), cooldown=st.integers(0, 4),
       factor=st.sampled_from([0.1, 0.5, 0.9]), min_lr=st.sampled_from([0.0, 1e-3, (1e-3, 1e-2)]),
       metrics=st.lists(st.one_of(st.floats(-2, 2), st.sampled_from([0.5, 1.0])), min_size=1, max_size=80))
def test_reduce_lr_on_plateau(lrs, mode, threshold_mode, threshold, patience, cooldown, factor, min_lr, metrics):
    kw = dict(mode=mode, factor=factor, patience=patience, threshold=threshold, threshold_mode=threshold_mode,
              cooldown=cooldown, min_lr=list(min_lr) if isinstance(min_lr, tuple) else min_lr)
    o1, o2 = _opt(lrs), _opt(lrs)
    s1, s2 = S.ReduceLROnPlateau(o1, **kw), T.ReduceLROnPlateau(o2, **kw)
    for m in metrics:
        s1.step(m)
        s2.step(m)
        assert _lrs(o1) == _lrs(o2)
        assert s1.get_last_lr() == s2.get_last_lr()
        assert (s1.best, s1.num_bad_epochs, s1.cooldown_counter, s1.last_epoch) == \
            (s2.best, s2.num_bad_epochs, s2.cooldown_counter, s2.last_epoch)


def test_reduce_lr_on_plateau_hand_example():
    # patience 1: two epochs without improvement -> lr * 0.5
    o = _opt((1.0, 1.0))
    s = S.ReduceLROnPlateau(o, factor=0.5, patience=1)
    for m, want in [(1.0, 1.0), (1.0, 1.0), (1.0, 0.5), (0.9, 0.5), (0.95, 0.5), (0.95, 0.25)]:
        s.step(torch.tensor(m))
        assert s.get_last_lr()[0] == want


# ---------------------------------------------------------------------------------------------------------
# protocol: state_dict, last_epoch resume, fit
# ---------------------------------------------------------------------------------------------------------

FACTORIES = {
    "step": lambda o: S.StepLR(o, 7, 0.5),
    "multistep": lambda o: S.MultiStepLR(o, [5, 9, 9], 0.3),
    "exp": lambda o: S.ExponentialLR(o, 0.9),
    "cosine": lambda o: S.CosineAnnealingLR(o, 12, 1e-4),
    "restarts": lambda o: S.CosineAnnealingWarmRestarts(o, 4, 2),
    "linear": lambda o: S.LinearLR(o, 0.1, 1.0, 6),
    "warmup_cosine": lambda o: S.WarmupCosineLR(o, 3, 20, 0.2),
}


def _resume_run(make, lrs=(0.1, 0.3), split=10, total=25, opt_factory=None):
    """Rates of an uninterrupted run and of a run saved after ``split`` steps and resumed in a fresh optimizer
    and scheduler, in torch's documented order: build the scheduler, then load the optimizer's state, then
    the scheduler's."""
    opt_factory = opt_factory or _opt
    o_ref = opt_factory(lrs)
    ref = make(o_ref)
    want = [_lrs(o_ref)]
    for _ in range(total):
        o_ref.step()
        ref.step()
        want.append(_lrs(o_ref))
    o1 = opt_factory(lrs)
    s1 = make(o1)
    got = [_lrs(o1)]
    for _ in range(split):
        o1.step()
        s1.step()
        got.append(_lrs(o1))
    sd, opt_sd = s1.state_dict(), o1.state_dict()
    assert "optimizer" not in sd
    o2 = opt_factory((0.5, 0.5))
    s2 = make(o2)
    o2.load_state_dict(opt_sd)
    s2.load_state_dict(sd)
    for _ in range(total - split):
        o2.step()
        s2.step()
        got.append(_lrs(o2))
    return want, got


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip(name):
    want, got = _resume_run(FACTORIES[name])
    assert got == want


@pytest.mark.parametrize("lib", [S, T])
def test_resume_with_last_epoch_continues_the_schedule(lib):
    """Constructing with last_epoch=k after loading the optimizer's state (which holds the epoch-k rate and
    initial_lr) continues at k + 1: the same rates as an uninterrupted run, for ours and for torch's."""
    o_ref = _opt((0.1, 0.2))
    ref = lib.StepLR(o_ref, 3, 0.5)
    want = []
    for _ in range(15):
        o_ref.step()
        ref.step()
        want.append(_lrs(o_ref))
    o4 = _opt((0.1, 0.2))
    s4 = lib.StepLR(o4, 3, 0.5)
    for _ in range(4):
        o4.step()
        s4.step()
    o = _opt((0.7, 0.7))
    o.load_state_dict(o4.state_dict())
    s = lib.StepLR(o, 3, 0.5, last_epoch=4)
    assert s.last_epoch == 5 and _lrs(o) == want[4]
    for t in range(5, 15):
        o.step()
        s.step()
        torch.testing.assert_close(_lrs(o), want[t])


def test_reduce_lr_on_plateau_state_dict_round_trip():
    o1 = _opt((0.1, 0.1))
    s1 = S.ReduceLROnPlateau(o1, patience=1, cooldown=1)
    for m in [1.0, 1.0, 1.0]:
        s1.step(m)
    o2 = _opt((0.1, 0.1))
    o2.load_state_dict(o1.state_dict())
    s2 = S.ReduceLROnPlateau(o2)
    s2.load_state_dict(s1.state_dict())
    for m in [1.0, 1.0, 1.0, 0.5, 0.6]:
        s1.step(m)
        s2.step(m)
        assert _lrs(o1) == _lrs(o2)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_mixes_with_torch_schedulers_in_sequential_lr():
    """Our schedulers store initial_lr like torch's, so torch's SequentialLR can drive them."""
    o1, o2 = _opt((0.1, 0.2)), _opt((0.1, 0.2))
    ours = T.SequentialLR(o1, [T.LinearLR(o1, 0.5, 1.0, 3), S.ExponentialLR(o1, 0.9)], milestones=[3])
    theirs = T.SequentialLR(o2, [T.LinearLR(o2, 0.5, 1.0, 3), T.ExponentialLR(o2, 0.9)], milestones=[3])
    for _ in range(10):
        ours.step()
        theirs.step()
        torch.testing.assert_close(_lrs(o1), _lrs(o2))


@pytest.mark.parametrize("kind", ["plateau", "step"])
def test_usable_with_fit(kind):
    from dlhelpers.data import make_loader
    from dlhelpers.train import fit

    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 3, generator=g)
    y = (X[:, 0] > 0).long()
    hist = {}
    for who in ("ours", "torch"):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        if kind == "plateau":
            sched = (S if who == "ours" else T).ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.5)
        else:
            sched = (S if who == "ours" else T).StepLR(opt, 2, 0.5)
        hist[who] = fit(model, make_loader(X, y, 16), make_loader(X, y, 64, shuffle=False), epochs=6,
                        optimizer=opt, scheduler=sched, show_progress=False, device=torch.device("cpu"))
    assert hist["ours"]["lr"] == hist["torch"]["lr"]
    assert hist["ours"]["lr"][-1] < 0.5  # the schedule did act


# ---------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,exc,match", [
    (lambda o: S.StepLR(o, 0), ValueError, r"StepLR: step_size must be >= 1, got 0"),
    (lambda o: S.StepLR(o, 2.5), TypeError, r"StepLR: step_size must be an int, got float"),
    (lambda o: S.MultiStepLR(o, [3, -1]), ValueError, r"MultiStepLR: milestones must be >= 0"),
    (lambda o: S.CosineAnnealingLR(o, 0), ValueError, r"CosineAnnealingLR: T_max must be >= 1"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, 0), ValueError, r"CosineAnnealingWarmRestarts: T_0 must be >= 1"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, 5, 0), ValueError, r"T_mult must be >= 1"),
    (lambda o: S.LinearLR(o, 0.0), ValueError, r"LinearLR: start_factor must be in \(0, 1\], got 0.0"),
    (lambda o: S.LinearLR(o, 0.5, 1.5), ValueError, r"LinearLR: end_factor must be in \[0, 1\]"),
    (lambda o: S.LinearWarmup(o, 0), ValueError, r"LinearWarmup: total_iters must be >= 1"),
    (lambda o: S.WarmupCosineLR(o, 5, 5), ValueError, r"WarmupCosineLR: total_steps must be >= 6, got 5"),
    (lambda o: S.WarmupCosineLR(o, 2, 10, start_factor=2.0), ValueError, r"WarmupCosineLR: start_factor"),
    (lambda o: S.StepLR(o, 2, last_epoch=3), KeyError, r"StepLR: param_groups\[0\] has no 'initial_lr'"),
    (lambda o: S.StepLR("sgd", 2), TypeError, r"StepLR: optimizer must be a torch.optim.Optimizer, got str"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), ValueError, r"ReduceLROnPlateau: mode must be 'min' or 'max'"),
    (lambda o: S.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, r"threshold_mode must be 'rel' or 'abs'"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, r"ReduceLROnPlateau: factor must be in \[0, 1\)"),
    (lambda o: S.ReduceLROnPlateau(o, patience=-1), ValueError, r"ReduceLROnPlateau: patience must be >= 0"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.0]), ValueError, r"expected 2 min_lr values"),
    (lambda o: S.ReduceLROnPlateau(None), TypeError, r"ReduceLROnPlateau: optimizer must be a torch.optim"),
    (lambda o: S.schedule_values(S.ReduceLROnPlateau(o), 5), ValueError, r"schedule_values: a ReduceLROnPlateau "
                                                                         r"needs metrics"),
    (lambda o: S.schedule_values(S.StepLR(o, 2), 0), ValueError, r"schedule_values: steps must be >= 1"),
])
def test_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_opt((0.1, 0.1)))


# ---------------------------------------------------------------------------------------------------------
# utilities
# ---------------------------------------------------------------------------------------------------------

def test_schedule_values_accepts_scheduler_or_factory_and_matches_torch():
    from_factory = S.schedule_values(lambda o: S.CosineAnnealingLR(o, 10), 15, base_lr=0.2)
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    from_torch = S.schedule_values(T.CosineAnnealingLR(o, 10), 15)
    torch.testing.assert_close(from_factory, from_torch)
    assert math.isclose(from_factory[0], 0.2) and math.isclose(from_factory[10], 0.0, abs_tol=1e-15)
    metrics = [1.0] * 10
    plateau = S.schedule_values(lambda o: S.ReduceLROnPlateau(o, patience=2, factor=0.5), 8, base_lr=1.0,
                                metrics=metrics)
    assert plateau == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_plot_schedule_draws_the_values():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = S.plot_schedule(lambda o: S.StepLR(o, 3, 0.5), 10, base_lr=1.0, label="step", log=True)
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == S.schedule_values(lambda o: S.StepLR(o, 3, 0.5), 10, base_lr=1.0)
    plt.close(fig)


def test_closed_forms_by_hand():
    assert S.step_lr(1.0, 7, 3, 0.5) == 0.25
    assert S.multistep_lr(1.0, 5, [2, 5, 5], 0.5) == 0.125
    assert math.isclose(S.cosine_annealing_lr(1.0, 5, 10), 0.5)
    assert math.isclose(S.linear_lr(1.0, 2, 0.2, 1.0, 4), 0.6)


# ---------------------------------------------------------------------------------------------------------
# LambdaLR, MultiplicativeLR, ConstantLR, PolynomialLR, CyclicLR, OneCycleLR, SequentialLR, ChainedScheduler
# ---------------------------------------------------------------------------------------------------------

def _compare_groups(make_ours, make_theirs, opt_factory, steps, keys=("lr",), rtol=1e-9, atol=1e-12):
    """Like _compare, for any optimizer factory and any group keys (momentum / betas for the cycling ones)."""
    o1, o2 = opt_factory(), opt_factory()
    s1, s2 = make_ours(o1), make_theirs(o2)

    def values(o):
        return [g[k][0] if k == "betas" else g[k] for k in keys for g in o.param_groups]

    ours, theirs, last_ok = [], [], True
    for _ in range(steps):
        ours.append(values(o1))
        theirs.append(values(o2))
        last_ok &= s1.get_last_lr() == _lrs(o1)
        o1.step()
        o2.step()
        s1.step()
        s2.step()
    torch.testing.assert_close(torch.tensor(ours, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64),
                               rtol=rtol, atol=atol)
    assert last_ok


def _decay(a: float, b: float):
    def fn(t: int) -> float:  # a smooth decay with a wiggle: any function of the epoch will do
        return a**t * (1 + b * math.sin(t))
    return fn


lambda_params = st.tuples(st.floats(0.9, 1.0), st.floats(0.0, 0.5))


@given(lrs=base_lrs, p1=lambda_params, p2=lambda_params, per_group=st.booleans())
def test_lambda_lr(lrs, p1, p2, per_group):
    fn = [_decay(*p1), _decay(*p2)] if per_group else _decay(*p1)
    _compare(lambda o: S.LambdaLR(o, fn), lambda o: T.LambdaLR(o, fn), lrs)


@given(lrs=base_lrs, p1=lambda_params, p2=lambda_params, per_group=st.booleans())
def test_multiplicative_lr(lrs, p1, p2, per_group):
    fn = [_decay(*p1), _decay(*p2)] if per_group else _decay(*p1)
    _compare(lambda o: S.MultiplicativeLR(o, fn), lambda o: T.MultiplicativeLR(o, fn), lrs, atol=1e-14)
    # closed form: base * prod_{k=1..t} lambda(k)
    o = _opt(lrs)
    s = S.MultiplicativeLR(o, fn)
    for _ in range(30):
        o.step()
        s.step()
    torch.testing.assert_close(s.closed_form_lr(), _lrs(o), rtol=1e-12, atol=0)


@given(lrs=base_lrs, factor=st.floats(0.01, 1.0), total=st.integers(1, 60))
def test_constant_lr(lrs, factor, total):
    _compare(lambda o: S.ConstantLR(o, factor, total), lambda o: T.ConstantLR(o, factor, total), lrs, steps=100)


@given(lrs=base_lrs, total=st.integers(1, 80), power=st.floats(0.0, 3.0))
def test_polynomial_lr(lrs, total, power):
    _compare(lambda o: S.PolynomialLR(o, total, power), lambda o: T.PolynomialLR(o, total, power), lrs, steps=100)


@settings(max_examples=30)
@given(lrs=base_lrs, kind=st.sampled_from(["step", "multistep", "constant", "linear", "exp", "poly", "cosine"]),
       data=st.data())
def test_one_step_ratio_is_the_closed_form(lrs, kind, data):
    """Recursive schedules: stepping lr_t = lr_{t-1} * ratio(t) gives the closed form lr_at(base, t)."""
    o = _opt(lrs)
    s = {"step": lambda: S.StepLR(o, data.draw(st.integers(1, 10)), 0.5),
         "multistep": lambda: S.MultiStepLR(o, data.draw(st.lists(st.integers(1, 50), max_size=4)), 0.7),
         "constant": lambda: S.ConstantLR(o, data.draw(st.floats(0.05, 1.0)), data.draw(st.integers(1, 20))),
         "linear": lambda: S.LinearLR(o, data.draw(st.floats(0.05, 1.0)), data.draw(st.floats(0.0, 1.0)),
                                      data.draw(st.integers(1, 30))),
         "exp": lambda: S.ExponentialLR(o, data.draw(st.floats(0.8, 1.0))),
         "poly": lambda: S.PolynomialLR(o, data.draw(st.integers(1, 30)), data.draw(st.floats(0.5, 3.0))),
         "cosine": lambda: S.CosineAnnealingLR(o, data.draw(st.integers(1, 20)), 1e-3)}[kind]()
    for _ in range(60):
        torch.testing.assert_close(_lrs(o), s.closed_form_lr(), rtol=1e-9, atol=1e-12)
        s.step()


def _momentum_opt(kind: str):
    def make(lrs=(0.1, 0.05)):
        groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[0]},
                  {"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[1]}]
        return torch.optim.SGD(groups, momentum=0.9) if kind == "sgd" else torch.optim.Adam(groups)
    return make


@settings(max_examples=30)
@given(base=st.floats(1e-4, 1e-2), peak=st.floats(0.02, 1.0), up=st.integers(1, 30),
       down=st.one_of(st.none(), st.integers(1, 30)), mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
       gamma=st.floats(0.9, 1.0), scale_mode=st.sampled_from(["cycle", "iterations"]),
       optim=st.sampled_from(["sgd", "adam", "none"]), per_group=st.booleans())
def test_cyclic_lr(base, peak, up, down, mode, gamma, scale_mode, optim, per_group):
    kw = dict(base_lr=[base, base / 2] if per_group else base, max_lr=[peak, peak / 3] if per_group else peak,
              step_size_up=up, step_size_down=down, mode=mode, gamma=gamma, cycle_momentum=optim != "none",
              base_momentum=0.8, max_momentum=0.95)
    if scale_mode == "iterations":  # a custom scale function, as a callable object
        kw.update(scale_fn=_decay(gamma, 0.1), scale_mode="iterations")
    keys = ("lr",) + (("momentum",) if optim == "sgd" else ("betas",) if optim == "adam" else ())
    _compare_groups(lambda o: S.CyclicLR(o, **kw), lambda o: T.CyclicLR(o, **kw),
                    _momentum_opt("adam" if optim == "adam" else "sgd"), steps=120, keys=keys)


@settings(max_examples=30)
@given(peak=st.floats(0.01, 1.0), total=st.integers(4, 150), pct=st.floats(0.1, 0.9),
       anneal=st.sampled_from(["cos", "linear"]), three=st.booleans(), div=st.floats(2.0, 100.0),
       final_div=st.floats(10.0, 1e5), optim=st.sampled_from(["sgd", "adam", "none"]), per_group=st.booleans())
def test_one_cycle_lr(peak, total, pct, anneal, three, div, final_div, optim, per_group):
    kw = dict(max_lr=[peak, peak / 4] if per_group else peak, total_steps=total, pct_start=pct,
              anneal_strategy=anneal, three_phase=three, div_factor=div, final_div_factor=final_div,
              cycle_momentum=optim != "none")
    keys = ("lr",) + (("momentum",) if optim == "sgd" else ("betas",) if optim == "adam" else ())
    _compare_groups(lambda o: S.OneCycleLR(o, **kw), lambda o: T.OneCycleLR(o, **kw),
                    _momentum_opt("adam" if optim == "adam" else "sgd"), steps=total, keys=keys)


def test_one_cycle_closed_form_and_end_points():
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    s = S.OneCycleLR(o, max_lr=0.4, total_steps=100, pct_start=0.25)
    vals = [o.param_groups[0]["lr"]]
    for _ in range(99):
        s.step()
        vals.append(o.param_groups[0]["lr"])
    assert math.isclose(vals[0], 0.4 / 25) and math.isclose(max(vals), 0.4) and vals.index(max(vals)) == 24
    assert math.isclose(vals[-1], 0.4 / 25 / 1e4)
    torch.testing.assert_close(vals, [S.one_cycle_lr(0.4, t, 100, 0.25) for t in range(100)], rtol=1e-12, atol=0)
    s.step()  # step 100 == total_steps is allowed (torch too), 101 is not
    with pytest.raises(ValueError, match="OneCycleLR: stepped 101 times, more than total_steps=100"):
        s.step()


def test_cyclic_closed_form():
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = S.CyclicLR(o, 0.1, 1.0, step_size_up=4, step_size_down=2, mode="triangular2", cycle_momentum=False)
    vals = S.schedule_values(s, 13)
    torch.testing.assert_close(vals, [S.cyclic_lr(0.1, 1.0, t, 4, 2, "triangular2") for t in range(13)])
    # by hand: up 0.1 -> 1.0 in 4 steps, down in 2, then the second cycle at half amplitude
    torch.testing.assert_close(vals[:7], [0.1, 0.325, 0.55, 0.775, 1.0, 0.55, 0.1])
    torch.testing.assert_close(vals[10], 0.55)


@st.composite
def child(draw):
    """One (ours, torch) pair of scheduler factories with drawn hyper-parameters."""
    kind = draw(st.sampled_from(["step", "multistep", "constant", "linear", "exp", "poly", "cosine", "lambda",
                                 "mult"]))
    if kind == "step":
        a = (draw(st.integers(1, 10)), draw(st.floats(0.2, 0.9)))
        return kind, lambda o: S.StepLR(o, *a), lambda o: T.StepLR(o, *a)
    if kind == "multistep":
        a = (draw(st.lists(st.integers(1, 40), min_size=1, max_size=3)), draw(st.floats(0.2, 0.9)))
        return kind, lambda o: S.MultiStepLR(o, *a), lambda o: T.MultiStepLR(o, *a)
    if kind == "constant":
        a = (draw(st.floats(0.05, 1.0)), draw(st.integers(1, 15)))
        return kind, lambda o: S.ConstantLR(o, *a), lambda o: T.ConstantLR(o, *a)
    if kind == "linear":
        a = (draw(st.floats(0.05, 1.0)), draw(st.floats(0.05, 1.0)), draw(st.integers(1, 20)))
        return kind, lambda o: S.LinearLR(o, *a), lambda o: T.LinearLR(o, *a)
    if kind == "exp":
        a = (draw(st.floats(0.85, 1.0)),)
        return kind, lambda o: S.ExponentialLR(o, *a), lambda o: T.ExponentialLR(o, *a)
    if kind == "poly":
        a = (draw(st.integers(1, 40)), draw(st.floats(0.5, 2.0)))
        return kind, lambda o: S.PolynomialLR(o, *a), lambda o: T.PolynomialLR(o, *a)
    if kind == "cosine":
        a = (draw(st.integers(1, 30)), draw(st.sampled_from([0.0, 1e-4])))
        return kind, lambda o: S.CosineAnnealingLR(o, *a), lambda o: T.CosineAnnealingLR(o, *a)
    fn = _decay(draw(st.floats(0.9, 1.0)), draw(st.floats(0.0, 0.3)))
    if kind == "lambda":
        return kind, lambda o: S.LambdaLR(o, fn), lambda o: T.LambdaLR(o, fn)
    return kind, lambda o: S.MultiplicativeLR(o, fn), lambda o: T.MultiplicativeLR(o, fn)


def _sequential(lib, children, milestones):
    return lambda o: lib.SequentialLR(o, [c(o) for c in children], milestones)


def _chained(lib, children):
    return lambda o: lib.ChainedScheduler([c(o) for c in children])


@pytest.mark.filterwarnings("ignore:The epoch parameter")
@settings(max_examples=40)
@given(lrs=base_lrs, children=st.lists(child(), min_size=1, max_size=3), data=st.data())
def test_sequential_lr_composes_like_torch(lrs, children, data):
    milestones = sorted(data.draw(st.lists(st.integers(1, 60), min_size=len(children) - 1,
                                           max_size=len(children) - 1, unique=True)))
    ours = _sequential(S, [c[1] for c in children], milestones)
    theirs = _sequential(T, [c[2] for c in children], milestones)
    _compare(ours, theirs, lrs, steps=100, atol=1e-10)


@settings(max_examples=40)
@given(lrs=base_lrs, children=st.lists(child(), min_size=1, max_size=3))
def test_chained_scheduler_composes_like_torch(lrs, children):
    ours, theirs = _chained(S, [c[1] for c in children]), _chained(T, [c[2] for c in children])
    o1, o2 = _opt(lrs), _opt(lrs)
    s1, s2 = ours(o1), theirs(o2)
    for t in range(100):
        torch.testing.assert_close(_lrs(o1), _lrs(o2), rtol=1e-9, atol=1e-10, msg=lambda m, t=t: f"epoch {t}: {m}")
        assert s1.get_last_lr() == _lrs(o1)
        o1.step()
        o2.step()
        s1.step()
        s2.step()


def test_chained_constant_and_exponential_by_hand():
    """torch's doc example: ConstantLR(0.1, 2) chained with ExponentialLR(0.9): 0.1*1, 0.1*0.9, 0.81, ..."""
    vals = S.schedule_values(lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.1, 2), S.ExponentialLR(o, 0.9)]),
                             5, base_lr=1.0)
    torch.testing.assert_close(vals, [0.1, 0.09, 0.81, 0.729, 0.6561])


def test_warmup_by_composition_equals_warmup_cosine():
    seq = S.schedule_values(lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 5), S.CosineAnnealingLR(o, 45)],
                                                     [5]), 60, base_lr=0.3)
    one = S.schedule_values(lambda o: S.WarmupCosineLR(o, 5, 50, 0.1), 60, base_lr=0.3)
    torch.testing.assert_close(seq, one, rtol=1e-9, atol=1e-12)


NEW_FACTORIES = {
    "lambda": lambda o: S.LambdaLR(o, _decay(0.95, 0.2)),
    "multiplicative": lambda o: S.MultiplicativeLR(o, lambda t: 0.97),
    "constant": lambda o: S.ConstantLR(o, 0.25, 7),
    "polynomial": lambda o: S.PolynomialLR(o, 18, 2.0),
    "cyclic": lambda o: S.CyclicLR(o, 0.01, 0.2, 4, mode="triangular2"),
    "one_cycle": lambda o: S.OneCycleLR(o, 0.5, total_steps=30, three_phase=True),
    "sequential": lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 4), S.ExponentialLR(o, 0.9),
                                               S.CosineAnnealingLR(o, 9)], [4, 12]),
    "chained": lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.5, 6), S.StepLR(o, 4, 0.5),
                                             S.CosineAnnealingLR(o, 20, 1e-4)]),
}
TORCH_NEW = {
    "lambda": lambda o: T.LambdaLR(o, _decay(0.95, 0.2)),
    "multiplicative": lambda o: T.MultiplicativeLR(o, lambda t: 0.97),
    "constant": lambda o: T.ConstantLR(o, 0.25, 7),
    "polynomial": lambda o: T.PolynomialLR(o, 18, 2.0),
    "cyclic": lambda o: T.CyclicLR(o, 0.01, 0.2, 4, mode="triangular2"),
    "one_cycle": lambda o: T.OneCycleLR(o, 0.5, total_steps=30, three_phase=True),
    "sequential": lambda o: T.SequentialLR(o, [T.LinearLR(o, 0.1, 1.0, 4), T.ExponentialLR(o, 0.9),
                                               T.CosineAnnealingLR(o, 9)], [4, 12]),
    "chained": lambda o: T.ChainedScheduler([T.ConstantLR(o, 0.5, 6), T.StepLR(o, 4, 0.5),
                                             T.CosineAnnealingLR(o, 20, 1e-4)]),
}


@pytest.mark.filterwarnings("ignore:The epoch parameter")
@pytest.mark.parametrize("name", sorted(NEW_FACTORIES))
@pytest.mark.parametrize("split", [1, 5, 13])
def test_state_dict_resume_new_schedulers_equals_torch(name, split):
    """Saved after ``split`` steps and resumed: the same rates as an uninterrupted run, ours and torch's."""
    sgd_m = lambda lrs: torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[0]},  # noqa: E731
                                         {"params": [torch.zeros(1, requires_grad=True)], "lr": lrs[1]}],
                                        momentum=0.9)
    want, got = _resume_run(NEW_FACTORIES[name], split=split, total=30, opt_factory=sgd_m)
    assert got == want
    want_t, got_t = _resume_run(TORCH_NEW[name], split=split, total=30, opt_factory=sgd_m)
    assert got_t == want_t
    torch.testing.assert_close(want, want_t, rtol=1e-9, atol=1e-12)


def test_lambda_state_dict_keeps_callable_objects_only():
    class Warm:
        def __init__(self):
            self.n = 3

        def __call__(self, t):
            return min(1.0, (t + 1) / self.n)

    o = _opt((0.1, 0.2))
    fn = Warm()
    s = S.LambdaLR(o, [fn, lambda t: 1.0])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"n": 3}, None]
    fn2 = Warm()
    fn2.n = 10
    s2 = S.LambdaLR(_opt((0.1, 0.2)), [fn2, lambda t: 1.0])
    s2.load_state_dict(sd)
    assert fn2.n == 3


@pytest.mark.parametrize("make,exc,match", [
    (lambda o: S.LambdaLR(o, [lambda t: 1.0]), ValueError, r"LambdaLR: expected 2 lr_lambdas .*got 1"),
    (lambda o: S.MultiplicativeLR(o, 0.9), TypeError, r"MultiplicativeLR: lr_lambda must be a function of the "
                                                       r"epoch, got float"),
    (lambda o: S.ConstantLR(o, 0.0), ValueError, r"ConstantLR: factor must be in \(0, 1\], got 0.0"),
    (lambda o: S.ConstantLR(o, 0.5, 0), ValueError, r"ConstantLR: total_iters must be >= 1, got 0"),
    (lambda o: S.ConstantLR(o, "x"), TypeError, r"ConstantLR: factor must be a real number"),
    (lambda o: S.PolynomialLR(o, 0), ValueError, r"PolynomialLR: total_iters must be >= 1"),
    (lambda o: S.PolynomialLR(o, 5, -1.0), ValueError, r"PolynomialLR: power must be >= 0, got -1.0"),
    (lambda o: S.CyclicLR(o, 0.1, 1.0, 0), ValueError, r"CyclicLR: step_size_up must be >= 1"),
    (lambda o: S.CyclicLR(o, 0.1, 1.0, mode="sine"), ValueError, r"CyclicLR: mode must be 'triangular'"),
    (lambda o: S.CyclicLR(o, 0.1, 1.0, scale_mode="x"), ValueError, r"CyclicLR: scale_mode must be 'cycle'"),
    (lambda o: S.CyclicLR(o, [0.1], 1.0), ValueError, r"CyclicLR: expected 2 values of base_lr"),
    (lambda o: S.CyclicLR(o, 0.1, 1.0), ValueError, r"CyclicLR: cycle_momentum=True needs an optimizer with "
                                                     r"momentum or betas, got Adagrad"),
    (lambda o: S.CyclicLR(3, 0.1, 1.0), TypeError, r"CyclicLR: optimizer must be a torch.optim.Optimizer, got int"),
    (lambda o: S.OneCycleLR(o, 0.1), ValueError, r"OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    (lambda o: S.OneCycleLR(o, 0.1, 0), ValueError, r"OneCycleLR: total_steps must be >= 1, got 0"),
    (lambda o: S.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=0), ValueError, r"steps_per_epoch must be >= 1"),
    (lambda o: S.OneCycleLR(o, 0.1, 10, pct_start=1), ValueError, r"OneCycleLR: pct_start must be a float in "
                                                                   r"\[0, 1\], got 1"),
    (lambda o: S.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), ValueError, r"anneal_strategy must be 'cos'"),
    (lambda o: S.OneCycleLR(o, [0.1, 0.2, 0.3], 10), ValueError, r"OneCycleLR: expected 2 values of max_lr"),
    (lambda o: S.OneCycleLR(o, 0.1, 10), ValueError, r"OneCycleLR: cycle_momentum=True needs an optimizer"),
    (lambda o: S.SequentialLR(o, [], []), ValueError, r"SequentialLR: expected at least one scheduler, got none"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], []), ValueError,
     r"SequentialLR: expected 1 milestones for 2 schedulers, got 0"),
    (lambda o: S.SequentialLR(o, [S.ReduceLROnPlateau(o)], []), ValueError,
     r"SequentialLR: schedulers\[0\] is a ReduceLROnPlateau, which needs a metric"),
    (lambda o: S.SequentialLR(o, [S.StepLR(_adagrad(), 2)], []), ValueError,
     r"SequentialLR: schedulers\[0\] \(StepLR\) drives a different optimizer"),
    (lambda o: S.SequentialLR(o, ["step"], []), TypeError, r"SequentialLR: schedulers\[0\] must be a scheduler"),
    (lambda o: S.ChainedScheduler([]), ValueError, r"ChainedScheduler: expected at least one scheduler"),
    (lambda o: S.ChainedScheduler([S.StepLR(o, 2), T.ReduceLROnPlateau(o)]), ValueError,
     r"ChainedScheduler: schedulers\[1\] is a ReduceLROnPlateau"),
])
def test_errors_new_schedulers(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_adagrad())


def _adagrad():
    """Two groups, an optimizer with neither momentum nor betas."""
    return torch.optim.Adagrad([{"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1},
                                {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1}])

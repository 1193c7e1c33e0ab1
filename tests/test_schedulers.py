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
    for t in range(steps):
        torch.testing.assert_close(torch.tensor(_lrs(o1), dtype=torch.float64),
                                   torch.tensor(_lrs(o2), dtype=torch.float64), rtol=1e-9, atol=atol,
                                   msg=lambda m, t=t: f"epoch {t}: {m}")
        assert s1.get_last_lr() == _lrs(o1)
        o1.step()
        o2.step()
        s1.step()
        s2.step()
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


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip(name):
    make = FACTORIES[name]
    o_ref = _opt((0.1, 0.3))
    ref = make(o_ref)
    want = []
    for _ in range(25):
        ref.step()
        want.append(_lrs(o_ref))
    o1 = _opt((0.1, 0.3))
    s1 = make(o1)
    for _ in range(10):
        s1.step()
    sd, opt_sd = s1.state_dict(), o1.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 10
    o2 = _opt((0.5, 0.5))
    o2.load_state_dict(opt_sd)
    s2 = make(o2)
    s2.load_state_dict(sd)
    got = want[:10]
    for _ in range(15):
        s2.step()
        got.append(_lrs(o2))
    assert got == want


def test_resume_with_last_epoch_continues_the_schedule():
    """Constructing with last_epoch=k (initial_lr present, as after loading a checkpoint) continues at k + 1:
    the same rates as an uninterrupted torch run (torch's recursive form needs the group lr restored too)."""
    o_ref = _opt((0.1, 0.2))
    ref = T.StepLR(o_ref, 3, 0.5)
    want = []
    for _ in range(15):
        o_ref.step()
        ref.step()
        want.append(_lrs(o_ref))
    o = _opt((0.1, 0.2))
    for g in o.param_groups:
        g["initial_lr"] = g["lr"]
    s = S.StepLR(o, 3, 0.5, last_epoch=4)
    assert s.last_epoch == 5 and _lrs(o) == want[4]
    for t in range(5, 15):
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

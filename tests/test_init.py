"""dlhelpers.init vs torch.nn.init: fans, gains, scales, sampled values and distributions, errors.

Initializers have no gradient of their own; the "backward" checks are (a) they fill an
``nn.Parameter`` in place without recording autograd history and (b) the variance they choose
keeps the gradient scale of a layer's backward pass (``mode="fan_out"``) as He et al. derive.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from dlhelpers import init

DT = torch.float64
NONLINS = list(init.NONLINEARITIES)
SLOPES = st.floats(min_value=-0.99, max_value=3.0, allow_nan=False).filter(lambda s: abs(s) > 1e-6) | st.just(0)


def weight_shapes(min_dim: int = 2, max_dim: int = 5, max_side: int = 7) -> st.SearchStrategy[tuple[int, ...]]:
    """[out, in, *kernel] with 2 to 5 dims."""
    return st.lists(st.integers(1, max_side), min_size=min_dim, max_size=max_dim).map(tuple)


def fans_by_hand(shape: tuple[int, ...]) -> tuple[int, int]:
    rf = 1
    for k in shape[2:]:
        rf *= k
    return shape[1] * rf, shape[0] * rf


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- fans and gains
@given(shape=weight_shapes())
def test_fans_match_torch_and_hand_formula(shape):
    w = torch.empty(shape, dtype=DT)
    ours = init.calculate_fan_in_and_fan_out(w)
    assert ours == nn.init._calculate_fan_in_and_fan_out(w)
    assert ours == fans_by_hand(shape)
    assert init._calculate_fan_in_and_fan_out(w) == ours  # torch's private name, for drop-in use
    for mode, idx in (("fan_in", 0), ("fan_out", 1), ("FAN_OUT", 1)):
        assert init.calculate_correct_fan(w, mode) == ours[idx] == nn.init._calculate_correct_fan(w, mode)


@given(cin=st.integers(1, 4), cout_per_group=st.integers(1, 4), groups=st.integers(1, 3),
       k=st.integers(1, 4), dim=st.sampled_from([1, 2, 3]))
def test_fans_of_real_layers(cin, cout_per_group, groups, k, dim):
    lin = nn.Linear(cin * groups, cout_per_group)
    assert init.calculate_fan_in_and_fan_out(lin.weight) == (cin * groups, cout_per_group)
    conv = getattr(nn, f"Conv{dim}d")(cin * groups, cout_per_group * groups, k, groups=groups)
    # fan_in counts only the input channels one group sees
    assert init.calculate_fan_in_and_fan_out(conv.weight) == (cin * k**dim, cout_per_group * groups * k**dim)


@given(name=st.sampled_from(NONLINS), slope=st.none() | SLOPES)
def test_calculate_gain_matches_torch(name, slope):
    assert init.calculate_gain(name, slope) == pytest.approx(nn.init.calculate_gain(name, slope), rel=1e-15)


def test_calculate_gain_values_by_hand():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    for name in init.LINEAR_FNS + ("sigmoid",):
        assert init.calculate_gain(name) == 1.0


def test_relu_gain_is_what_relu_does_to_the_second_moment():
    """Var-preservation derivation: E[relu(x)^2] = Var[x] / 2, so the gain is sqrt(2)."""
    x = torch.randn(400_000, generator=gen(0), dtype=DT)
    for name, f in (("relu", torch.relu), ("leaky_relu", lambda t: torch.nn.functional.leaky_relu(t, 0.3))):
        second_moment = f(x).pow(2).mean().item()
        gain = init.calculate_gain(name, 0.3 if name == "leaky_relu" else None)
        assert second_moment * gain**2 == pytest.approx(1.0, abs=0.01)


# --------------------------------------------------------------------------- scales by formula
@given(shape=weight_shapes(), gain=st.floats(0.01, 10.0))
def test_xavier_std_is_the_glorot_formula(shape, gain):
    fan_in, fan_out = fans_by_hand(shape)
    w = torch.empty(shape)
    assert init.xavier_std(w, gain) == pytest.approx(gain * math.sqrt(2.0 / (fan_in + fan_out)), rel=1e-14)


@given(shape=weight_shapes(), a=SLOPES, mode=st.sampled_from(["fan_in", "fan_out"]),
       nonlinearity=st.sampled_from(NONLINS))
def test_kaiming_std_is_the_he_formula(shape, a, mode, nonlinearity):
    fan = fans_by_hand(shape)[0 if mode == "fan_in" else 1]
    gain = {"relu": math.sqrt(2), "leaky_relu": math.sqrt(2 / (1 + a * a)), "tanh": 5 / 3, "selu": 0.75}
    expected = gain.get(nonlinearity, 1.0) / math.sqrt(fan)
    assert init.kaiming_std(torch.empty(shape), a, mode, nonlinearity) == pytest.approx(expected, rel=1e-14)


# --------------------------------------------------------------------------- identical values to torch
def _pairs():
    """(name, ours(t, g), torch's(t, g), hypothesis strategy for kwargs)."""
    gains = st.floats(0.05, 5.0)
    kaiming_kw = st.fixed_dictionaries({"a": SLOPES, "mode": st.sampled_from(["fan_in", "fan_out"]),
                                        "nonlinearity": st.sampled_from(NONLINS)})
    return [
        ("uniform_", init.uniform_, nn.init.uniform_,
         st.tuples(st.floats(-3, 0), st.floats(0, 3)).map(lambda ab: {"a": ab[0], "b": ab[1]})),
        ("normal_", init.normal_, nn.init.normal_,
         st.fixed_dictionaries({"mean": st.floats(-3, 3), "std": st.floats(0, 3)})),
        ("xavier_uniform_", init.xavier_uniform_, nn.init.xavier_uniform_, st.fixed_dictionaries({"gain": gains})),
        ("xavier_normal_", init.xavier_normal_, nn.init.xavier_normal_, st.fixed_dictionaries({"gain": gains})),
        ("kaiming_uniform_", init.kaiming_uniform_, nn.init.kaiming_uniform_, kaiming_kw),
        ("kaiming_normal_", init.kaiming_normal_, nn.init.kaiming_normal_, kaiming_kw),
        ("orthogonal_", init.orthogonal_, nn.init.orthogonal_, st.fixed_dictionaries({"gain": gains})),
        ("lecun_uniform_", init.lecun_uniform_,
         lambda t, generator=None: nn.init.kaiming_uniform_(t, 0, "fan_in", "linear", generator=generator),
         st.just({})),
        ("lecun_normal_", init.lecun_normal_,
         lambda t, generator=None: nn.init.kaiming_normal_(t, 0, "fan_in", "linear", generator=generator),
         st.just({})),
    ]


PAIRS = _pairs()


@pytest.mark.parametrize("name,ours,theirs,kwargs", PAIRS, ids=[p[0] for p in PAIRS])
@given(data=st.data(), shape=weight_shapes(), seed=st.integers(0, 2**31 - 1))
def test_same_values_as_torch_with_generator(name, ours, theirs, kwargs, data, shape, seed):
    kw = data.draw(kwargs)
    a, b = torch.empty(shape, dtype=DT), torch.empty(shape, dtype=DT)
    out = ours(a, **kw, generator=gen(seed))
    theirs(b, **kw, generator=gen(seed))
    assert out is a
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # bit for bit


@pytest.mark.parametrize("name,ours,theirs,kwargs", PAIRS, ids=[p[0] for p in PAIRS])
@settings(max_examples=10)
@given(data=st.data(), shape=weight_shapes(), seed=st.integers(0, 2**31 - 1))
def test_same_values_as_torch_with_global_rng(name, ours, theirs, kwargs, data, shape, seed):
    kw = data.draw(kwargs)
    a, b = torch.empty(shape, dtype=DT), torch.empty(shape, dtype=DT)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        ours(a, **kw)
        torch.manual_seed(seed)
        theirs(b, **kw)
    finally:
        torch.random.set_rng_state(state)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@given(shape=weight_shapes(1, 4), val=st.floats(-1e3, 1e3))
def test_constant_zeros_ones_match_torch(shape, val):
    for ours, theirs, args in ((init.constant_, nn.init.constant_, (val,)), (init.zeros_, nn.init.zeros_, ()),
                               (init.ones_, nn.init.ones_, ())):
        a, b = torch.randn(shape, dtype=DT), torch.randn(shape, dtype=DT)
        assert ours(a, *args) is a
        torch.testing.assert_close(a, theirs(b, *args), rtol=0, atol=0)


@pytest.mark.parametrize("fn,kw", [(init.xavier_uniform_, {}), (init.kaiming_normal_, {"nonlinearity": "relu"}),
                                   (init.normal_, {"std": 0.1}), (init.trunc_normal_, {"std": 0.02}),
                                   (init.constant_, {"val": 0.5}), (init.orthogonal_, {})])
def test_fills_a_parameter_in_place_without_autograd_history(fn, kw):
    """Works on a leaf that requires grad (no_grad inside), keeps requires_grad, records no graph."""
    p = nn.Parameter(torch.zeros(6, 5, dtype=DT))
    out = fn(p, **kw)
    assert out is p and p.requires_grad and p.grad_fn is None and p.is_leaf
    (p.sum() * 2).backward()  # still a normal trainable leaf afterwards
    torch.testing.assert_close(p.grad, torch.full_like(p, 2.0))


# --------------------------------------------------------------------------- sampled distributions
N_MIN = 6000  # samples per KS test; critical D at p=1e-6 is ~0.035
P_MIN = 1e-6  # fixed seeds -> deterministic; a wrong scale of even 10% gives p << 1e-6 (see power test)


def _samples(fn, shape, kw, seed: int) -> torch.Tensor:
    g, t = gen(seed), torch.empty(shape, dtype=DT)
    reps = math.ceil(N_MIN / t.numel())
    return torch.cat([fn(t, **kw, generator=g).flatten().clone() for _ in range(reps)])


def _uniform_cdf(bound: float):
    return stats.uniform(loc=-bound, scale=2 * bound).cdf


def _normal_cdf(std: float):
    return stats.norm(scale=std).cdf


def _std_within_5_standard_errors(x: torch.Tensor, std: float, kurtosis: float) -> bool:
    """Sample std vs target: SE(s)/sigma ~= sqrt((kurtosis - 1) / n) / 2 (3 for normal, 1.8 for uniform)."""
    se = math.sqrt((kurtosis - 1) / x.numel()) / 2
    return abs(x.std().item() / std - 1) < 5 * se


DISTS = [
    ("xavier_uniform_", init.xavier_uniform_, lambda w, kw: _uniform_cdf(math.sqrt(3) * init.xavier_std(w, **kw))),
    ("xavier_normal_", init.xavier_normal_, lambda w, kw: _normal_cdf(init.xavier_std(w, **kw))),
    ("kaiming_uniform_", init.kaiming_uniform_,
     lambda w, kw: _uniform_cdf(math.sqrt(3) * init.kaiming_std(w, **kw))),
    ("kaiming_normal_", init.kaiming_normal_, lambda w, kw: _normal_cdf(init.kaiming_std(w, **kw))),
    ("lecun_uniform_", lambda t, generator: init.lecun_uniform_(t, generator=generator),
     lambda w, kw: _uniform_cdf(math.sqrt(3 / init.calculate_fan_in_and_fan_out(w)[0]))),
    ("lecun_normal_", lambda t, generator: init.lecun_normal_(t, generator=generator),
     lambda w, kw: _normal_cdf(1 / math.sqrt(init.calculate_fan_in_and_fan_out(w)[0]))),
]


@pytest.mark.parametrize("name,fn,cdf", DISTS, ids=[d[0] for d in DISTS])
@settings(max_examples=12)
@given(shape=weight_shapes(), seed=st.integers(0, 10_000), a=SLOPES, mode=st.sampled_from(["fan_in", "fan_out"]),
       nonlinearity=st.sampled_from(["relu", "leaky_relu", "tanh", "linear"]), gain=st.floats(0.1, 3.0))
def test_samples_follow_the_stated_distribution(name, fn, cdf, shape, seed, a, mode, nonlinearity, gain):
    if name.startswith("xavier"):
        kw = {"gain": gain}
    elif name.startswith("kaiming"):
        kw = {"a": a, "mode": mode, "nonlinearity": nonlinearity}
    else:
        kw = {}
    x = _samples(fn, shape, kw, seed)
    dist_cdf = cdf(torch.empty(shape), kw)
    assert stats.kstest(x.numpy(), dist_cdf).pvalue > P_MIN
    std = dist_cdf.__self__.std()  # the frozen scipy distribution's std
    assert abs(x.mean().item()) < 5 * std / math.sqrt(x.numel())
    assert _std_within_5_standard_errors(x, std, 1.8 if "uniform" in name else 3.0)


def test_distribution_checks_have_power():
    """The checks can fail: a 10% too large std fails the std check, Xavier-vs-He (sqrt 2) and
    uniform-vs-normal fail the KS test."""
    shape = (64, 32)
    std = init.kaiming_std(torch.empty(shape), nonlinearity="relu")
    x = _samples(init.kaiming_normal_, shape, {"nonlinearity": "relu"}, 0)
    assert stats.kstest(x.numpy(), _normal_cdf(std)).pvalue > P_MIN and _std_within_5_standard_errors(x, std, 3)
    assert not _std_within_5_standard_errors(1.1 * x, std, 3)
    assert stats.kstest(x.numpy() / math.sqrt(2), _normal_cdf(std)).pvalue < P_MIN
    assert stats.kstest(x.numpy(), _uniform_cdf(math.sqrt(3) * std)).pvalue < P_MIN


@settings(max_examples=15)
@given(mean=st.floats(-2, 2), std=st.floats(0.05, 3.0), lo=st.floats(-2, 1), width=st.floats(0.5, 4.0),
       seed=st.integers(0, 10_000))
def test_trunc_normal_distribution_and_torch_agree(mean, std, lo, width, seed):
    """Ours (inverse CDF) and torch's (rejection) both follow scipy's truncnorm; values differ."""
    a, b = mean + lo * std, mean + (lo + width) * std  # bounds within a few std of the mean
    ref = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    ours = init.trunc_normal_(torch.empty(N_MIN, dtype=DT), mean, std, a, b, generator=gen(seed))
    theirs = nn.init.trunc_normal_(torch.empty(N_MIN, dtype=DT), mean, std, a, b, generator=gen(seed + 1))
    assert ours.min() >= a and ours.max() <= b
    assert stats.kstest(ours.numpy(), ref.cdf).pvalue > P_MIN
    assert stats.kstest(theirs.numpy(), ref.cdf).pvalue > P_MIN
    # mean within 5 standard errors of the exact truncated-normal mean
    assert abs(ours.mean().item() - ref.mean()) < 5 * ref.std() / math.sqrt(N_MIN)


def test_trunc_normal_float32_and_default_bounds():
    t = init.trunc_normal_(torch.empty(200, 50), std=0.02, generator=gen(1))  # timm/ViT use: bounds +-2 absolute
    assert t.dtype == torch.float32 and abs(t.std().item() - 0.02) < 0.001
    t = init.trunc_normal_(torch.empty(20_000), generator=gen(2))
    ref = stats.truncnorm(-2, 2)
    assert t.min() >= -2 and t.max() <= 2 and abs(t.std().item() - ref.std()) < 0.02


@given(rows=st.integers(1, 12), cols=st.integers(1, 12), gain=st.floats(0.1, 3.0))
def test_orthogonal_rows_or_columns_are_orthonormal(rows, cols, gain):
    w = init.orthogonal_(torch.empty(rows, cols, dtype=DT), gain, generator=gen(rows * 13 + cols))
    small = min(rows, cols)
    gram = w @ w.T if rows <= cols else w.T @ w
    torch.testing.assert_close(gram, gain**2 * torch.eye(small, dtype=DT))


# --------------------------------------------------------------------------- the variance argument itself
def _deep_relu_second_moments(init_fn, width=256, depth=12, batch=512, seed=0):
    g = gen(seed)
    h = torch.randn(batch, width, generator=g, dtype=DT)
    moments = []
    for _ in range(depth):
        w = init_fn(torch.empty(width, width, dtype=DT), g)
        h = torch.relu(h @ w.T)
        moments.append(h.pow(2).mean().item())
    return moments


def test_kaiming_fan_in_keeps_relu_forward_scale_and_xavier_halves_it():
    he = _deep_relu_second_moments(lambda t, g: init.kaiming_normal_(t, nonlinearity="relu", generator=g))
    xav = _deep_relu_second_moments(lambda t, g: init.xavier_normal_(t, generator=g))
    # He: E[h^2] stays ~ E[x^2]/2 * 2 = 1 at every layer; Xavier (square): halves per layer
    # (a finite-width layer fluctuates by ~10-20%, so compare the geometric-mean ratio per layer)
    assert all(0.6 < m < 1.6 for m in he)
    per_layer = (xav[-1] / xav[0]) ** (1 / (len(xav) - 1))
    assert 0.45 < per_layer < 0.55 and 0.4 < xav[0] < 0.6


@pytest.mark.parametrize("mode,keeps", [("fan_out", "backward"), ("fan_in", "forward")])
def test_kaiming_mode_preserves_forward_or_backward_variance(mode, keeps):
    """Rectangular ReLU layer y = relu(x W^T): fan_in keeps E[y^2] = E[x^2], fan_out keeps
    E[(dL/dx)^2] = E[(dL/dy)^2] for upstream gradients ~ N(0, 1)."""
    fan_in, fan_out, batch = 512, 128, 2048
    g = gen(3)
    w = init.kaiming_normal_(torch.empty(fan_out, fan_in, dtype=DT), mode=mode, nonlinearity="relu", generator=g)
    x = torch.randn(batch, fan_in, dtype=DT, generator=g).requires_grad_()
    y = torch.relu(x @ w.T)
    y.backward(torch.randn(batch, fan_out, dtype=DT, generator=g))
    fwd = y.pow(2).mean().item()  # target 1 (= E[x^2])
    bwd = x.grad.pow(2).mean().item()  # target 1 (= E[(dL/dy)^2]); relu' zeroes half of the terms
    kept, changed = (fwd, bwd) if keeps == "forward" else (bwd, fwd)
    assert kept == pytest.approx(1.0, abs=0.1)
    assert changed == pytest.approx(fan_out / fan_in if keeps == "forward" else fan_in / fan_out, rel=0.1)


# --------------------------------------------------------------------------- errors
def test_error_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"calculate_gain: unknown nonlinearity 'gelu'; expected one of"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.kaiming_normal_(torch.empty(3, 4), nonlinearity="swish")
    with pytest.raises(TypeError, match="calculate_gain: nonlinearity must be a str, got builtin_function"):
        init.calculate_gain(torch.relu)


def test_error_bad_leaky_relu_slope():
    with pytest.raises(ValueError, match=r"negative_slope \(param\) must be an int or float, got True"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="got '0.1'"):
        init.kaiming_uniform_(torch.empty(3, 4), a="0.1")


@pytest.mark.parametrize("fn", [init.calculate_fan_in_and_fan_out, init.xavier_uniform_, init.xavier_normal_,
                                init.kaiming_uniform_, init.kaiming_normal_, init.lecun_normal_])
def test_error_fan_of_tensor_with_fewer_than_two_dims(fn):
    with pytest.raises(ValueError, match=r"need a tensor with >= 2 dimensions .*got 1-D with shape \(5,\)"):
        fn(torch.empty(5))


def test_error_orthogonal_needs_two_dims():
    with pytest.raises(ValueError, match=r"orthogonal_: needs a tensor with >= 2 dimensions, got 0-D"):
        init.orthogonal_(torch.tensor(1.0))


def test_error_invalid_mode():
    with pytest.raises(ValueError, match=r"calculate_correct_fan: unknown mode 'fan_avg'; expected one of"):
        init.kaiming_normal_(torch.empty(3, 4), mode="fan_avg")
    with pytest.raises(TypeError, match="mode must be a str"):
        init.kaiming_uniform_(torch.empty(3, 4), mode=0)


@pytest.mark.parametrize("fn", [init.normal_, init.trunc_normal_])
def test_error_negative_std(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: std must be >= 0, got -0.5"):
        fn(torch.empty(3), std=-0.5)


def test_error_trunc_normal_bounds_and_zero_std():
    with pytest.raises(ValueError, match=r"trunc_normal_: expected a < b, got a=2.0, b=-2.0"):
        init.trunc_normal_(torch.empty(3), a=2.0, b=-2.0)
    with pytest.raises(ValueError, match="std must be > 0 for a truncated normal"):
        init.trunc_normal_(torch.empty(3), std=0.0)
    with pytest.warns(UserWarning, match="mean is more than 2 std"):
        init.trunc_normal_(torch.empty(3), mean=10.0, std=1.0, a=-1.0, b=1.0)


def test_error_uniform_bounds_reversed():
    with pytest.raises(ValueError, match=r"uniform_: expected a <= b, got a=1.0 > b=0.0"):
        init.uniform_(torch.empty(3), 1.0, 0.0)


def test_error_not_a_tensor_or_not_a_number():
    with pytest.raises(TypeError, match="xavier_uniform_: tensor must be a torch.Tensor, got list"):
        init.xavier_uniform_([[1.0, 2.0]])
    with pytest.raises(TypeError, match="xavier_std: gain must be a real number"):
        init.xavier_normal_(torch.empty(3, 4), gain="relu")
    with pytest.raises(TypeError, match=r"constant_: val must be a real number \(int or float\), got NoneType"):
        init.constant_(torch.empty(3), None)
    with pytest.raises(ValueError, match="normal_: mean must not be NaN"):
        init.normal_(torch.empty(3), mean=float("nan"))


def test_error_generator_type():
    with pytest.raises(TypeError, match="kaiming_normal_: generator must be a torch.Generator or None, got int"):
        init.kaiming_normal_(torch.empty(3, 4), generator=0)


@pytest.mark.parametrize("fn", [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                                init.kaiming_normal_])
def test_zero_element_tensor_warns_and_is_a_noop(fn):
    t = torch.empty(0, 4)
    with pytest.warns(UserWarning, match="zero-element tensor is a no-op"):
        assert fn(t) is t
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.orthogonal_(torch.empty(0, 3))  # torch: silent no-op too

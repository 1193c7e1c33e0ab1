"""dlhelpers.experiments against independent references: torch.nn.utils, scipy.stats, TensorBoard's own
reader, torch.func, torch.autograd.functional.hessian and the CAM identity."""

import math

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, jacrev

from dlhelpers import experiments as E
from dlhelpers.data import make_loader
from dlhelpers.train import Callback, fit

torch.set_default_dtype(torch.float32)


# ----------------------------------------------------------------------------------------------- grad norms
@settings(max_examples=25, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3), min_size=1, max_size=4),
       norm_type=st.sampled_from([1.0, 2.0, 3.5, math.inf]), seed=st.integers(0, 2**16))
def test_grad_norm_matches_torch(shapes, norm_type, seed):
    g = torch.Generator().manual_seed(seed)
    params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64)
    ours = E.grad_norm(params, norm_type)
    theirs = torch.nn.utils.get_total_norm([p.grad for p in params], norm_type)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    clipped = torch.nn.utils.clip_grad_norm_(params, max_norm=1e9, norm_type=norm_type)
    torch.testing.assert_close(ours, clipped, rtol=1e-12, atol=1e-12)


def test_grad_norm_skips_missing_and_errors():
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    assert E.grad_norm([a, b]).item() == 0.0
    a.grad = torch.tensor([3.0, 0.0, 4.0])
    assert E.grad_norm([a, b]).item() == pytest.approx(5.0)
    assert E.grad_norm(a).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        E.grad_norm([a], 0)
    with pytest.raises(TypeError, match="norm_type must be a real number"):
        E.grad_norm([a], "2")


def test_layer_grad_norms_and_update_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    F.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 2, (8,))).backward()
    norms = E.layer_grad_norms(model)
    assert list(norms) == [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        assert norms[name] == pytest.approx(torch.linalg.vector_norm(p.grad).item(), rel=1e-6)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    ratios = E.update_ratios(before, model)
    for name in norms:  # SGD: ||dw|| = lr ||g||
        assert ratios[name] == pytest.approx(0.1 * norms[name] / before[name].norm().item(), rel=1e-5)


# ---------------------------------------------------------------------------------------- activation stats
def test_activation_stats_and_dead_units():
    lin = nn.Linear(5, 6)
    with torch.no_grad():
        lin.bias[:2] = -100.0  # units 0 and 1 can never fire on these inputs
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(6, 3), nn.Tanh())
    stats = E.ActivationStats(model)
    assert stats.names == ["1", "3"]
    x = torch.rand(16, 5)
    model(x)
    relu_out = F.relu(lin(x))
    assert stats.latest["act_mean/1"] == pytest.approx(relu_out.mean().item(), rel=1e-6)
    assert stats.latest["act_std/1"] == pytest.approx(relu_out.std().item(), rel=1e-6)
    assert stats.latest["act_zero/1"] == pytest.approx((relu_out == 0).float().mean().item())
    dead = (relu_out == 0).all(0).float().mean().item()
    assert dead >= 2 / 6 and stats.latest["act_dead/1"] == pytest.approx(dead)
    stats.enabled = False
    stats.latest.clear()
    model(x)
    assert stats.latest == {}
    stats.remove()
    stats.enabled = True
    model(x)
    assert stats.latest == {}


def test_activation_stats_on_conv_channels():
    conv = nn.Conv1d(1, 4, 3)
    with torch.no_grad():
        conv.bias[0] = -100.0
    model = nn.Sequential(conv, nn.ReLU())
    stats = E.ActivationStats(model)
    model(torch.rand(3, 1, 10))
    assert stats.latest["act_dead/1"] >= 0.25


# ---------------------------------------------------------------------------------------------- tracker
class _TorchGradNorm(Callback):
    def __init__(self):
        self.values = []

    def on_after_backward(self, state):
        self.values.append(torch.nn.utils.get_total_norm([p.grad for p in state.model.parameters()]).item())


def _tiny_run(tmp_path, every=1, **kw):
    torch.manual_seed(0)
    X, y = torch.randn(40, 1, 6), torch.randint(0, 3, (40,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    ref = _TorchGradNorm()
    tracker = E.Tracker(tmp_path, every=every, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, make_loader(X, y, 16), make_loader(X, y, 40, shuffle=False), epochs=2, optimizer=opt,
               callbacks=[ref, tracker], show_progress=False, device=torch.device("cpu"))
    return tracker, ref, hist


def test_tracker_logs_match_torch_jsonl_and_tensorboard(tmp_path):
    tracker, ref, hist = _tiny_run(tmp_path)
    assert [r["step"] for r in tracker.steps] == list(range(6))  # 3 batches x 2 epochs
    assert [r["grad_norm"] for r in tracker.steps] == pytest.approx(ref.values, rel=1e-6)
    assert [r["val_acc"] for r in tracker.epochs] == pytest.approx(hist["val_acc"])
    rec = tracker.steps[0]
    assert {"loss", "acc", "lr", "grad_norm/1.weight", "update_ratio/3.bias", "act_dead/2"} <= set(rec)
    assert E.read_jsonl(tmp_path / "steps.jsonl") == tracker.steps
    assert E.read_jsonl(tmp_path / "epochs.jsonl") == tracker.epochs
    tb = E.read_tensorboard_scalars(tmp_path)
    steps, values = tb["step/grad_norm"]
    assert steps == list(range(6))
    torch.testing.assert_close(torch.tensor(values, dtype=torch.float64),
                               torch.tensor(ref.values, dtype=torch.float64), rtol=1e-6, atol=1e-7)
    assert tb["epoch/val_loss"][1] == pytest.approx(hist["val_loss"], rel=1e-6)
    assert tracker.frame().shape[0] == 6 and tracker.frame("epochs").shape[0] == 2


def test_tracker_every_and_without_files(tmp_path):
    tracker, ref, _ = _tiny_run(None, every=4, activations=False, per_layer=False)
    assert [r["step"] for r in tracker.steps] == [0, 4]
    assert tracker.steps[1]["grad_norm"] == pytest.approx(ref.values[4], rel=1e-6)
    assert not any(k.startswith(("act_", "update_ratio")) for k in tracker.steps[0])
    assert tracker.writer is None
    with pytest.raises(ValueError, match="every must be a positive int"):
        E.Tracker(every=0)
    with pytest.raises(ValueError, match="unknown kind"):
        tracker.frame("batches")
    with pytest.raises(FileNotFoundError, match="no such log file"):
        E.read_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="no such log directory"):
        E.read_tensorboard_scalars(tmp_path / "missing")


class _TorchReference(Callback):
    """Everything the tracker logs per step, computed directly with torch at the same moments."""

    def __init__(self):
        self.norms, self.clipped, self.layer, self.weights, self.ratios = [], [], [], [], []

    def on_after_backward(self, state):
        named = list(state.model.named_parameters())
        self.norms.append(torch.nn.utils.get_total_norm([p.grad for _, p in named]).item())
        # max_norm = inf clips nothing (coefficient clamped to 1) and returns the total norm
        self.clipped.append(torch.nn.utils.clip_grad_norm_([p for _, p in named], math.inf).item())
        self.layer.append({n: torch.linalg.vector_norm(p.grad).item() for n, p in named})
        self.weights.append({n: p.detach().clone() for n, p in named})  # the weights this step's forward used

    def on_batch_end(self, state):
        w0 = self.weights[-1]
        self.ratios.append({n: (torch.linalg.vector_norm(p.detach() - w0[n]) / torch.linalg.vector_norm(w0[n])).item()
                            for n, p in state.model.named_parameters()})


@settings(max_examples=12, deadline=None)
@given(d_in=st.integers(1, 6), hidden=st.integers(2, 9), n=st.integers(4, 30), batch=st.integers(1, 8),
       every=st.integers(1, 3), opt=st.sampled_from(["sgd", "adam"]), lr=st.floats(1e-3, 1.0),
       bias_shift=st.floats(-3.0, 0.0), seed=st.integers(0, 2**16))
def test_tracker_records_equal_direct_torch_computation(d_in, hidden, n, batch, every, opt, lr, bias_shift, seed):
    """Every recorded step: global norm == get_total_norm == clip_grad_norm_'s return; per-layer norms, update
    ratios and activation statistics == a direct computation from the weights and the batch of that step."""
    torch.manual_seed(seed)
    X, y = torch.randn(n, d_in, dtype=torch.float64), torch.randint(0, 3, (n,))
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.Tanh(),
                          nn.Linear(hidden, 3)).double()
    with torch.no_grad():
        model[0].bias += bias_shift  # negative shifts make some ReLU units dead
    optimizer = (torch.optim.SGD(model.parameters(), lr=lr) if opt == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=lr))
    loader = make_loader(X, y, batch, seed=seed)
    ref, tracker = _TorchReference(), E.Tracker(every=every)
    fit(model, loader, epochs=2, optimizer=optimizer, callbacks=[ref, tracker], show_progress=False,
        device=torch.device("cpu"))
    loader.generator.manual_seed(seed)  # replay the same batches
    batches, targets = zip(*[(xb, yb) for _ in range(2) for xb, yb in loader])
    assert [r["step"] for r in tracker.steps] == list(range(0, len(batches), every))
    close = dict(rel=1e-9, abs=1e-12)
    for rec in tracker.steps:
        s = rec["step"]
        assert rec["grad_norm"] == pytest.approx(ref.norms[s], **close) == pytest.approx(ref.clipped[s], **close)
        for name in ref.layer[s]:
            assert rec[f"grad_norm/{name}"] == pytest.approx(ref.layer[s][name], **close)
            assert rec[f"update_ratio/{name}"] == pytest.approx(ref.ratios[s][name], **close)
        with torch.no_grad():
            w = ref.weights[s]
            h1 = torch.relu(batches[s] @ w["0.weight"].T + w["0.bias"])
            h2 = torch.tanh(h1 @ w["2.weight"].T + w["2.bias"])
            logits = h2 @ w["4.weight"].T + w["4.bias"]
        assert rec["loss"] == pytest.approx(F.cross_entropy(logits, targets[s]).item(), **close)
        assert rec["acc"] == pytest.approx((logits.argmax(1) == targets[s]).double().mean().item(), rel=1e-6)
        for key, h in (("1", h1), ("3", h2)):
            assert rec[f"act_mean/{key}"] == pytest.approx(h.mean().item(), **close)
            assert rec[f"act_std/{key}"] == pytest.approx(h.std().item() if h.numel() > 1 else 0.0, **close)
            # fractions are counted in float32 by the hooks
            assert rec[f"act_zero/{key}"] == pytest.approx((h == 0).double().mean().item(), rel=1e-6)
            assert rec[f"act_dead/{key}"] == pytest.approx((h == 0).all(dim=0).double().mean().item(), rel=1e-6)
        assert rec["lr"] == lr


# ------------------------------------------------------------------------------------------- statistics
@settings(max_examples=40, deadline=None)
@given(t=st.floats(-60, 60), df=st.floats(0.5, 300))
def test_t_cdf_matches_scipy(t, df):
    # scipy loses ~1e-11 near t = 0 (0.5 + tiny); the closed forms below check ours more tightly there
    assert E.t_cdf(t, df) == pytest.approx(scipy.stats.t.cdf(t, df), abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(-1e3, 1e3))
def test_t_cdf_closed_forms_for_one_and_two_dof(t):
    assert E.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-14)  # Cauchy
    assert E.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(t * t + 2)), abs=1e-14)


@settings(max_examples=40, deadline=None)
@given(q=st.floats(0.001, 0.999), df=st.floats(1.0, 300))
def test_t_ppf_matches_scipy(q, df):
    assert E.t_ppf(q, df) == pytest.approx(scipy.stats.t.ppf(q, df), rel=1e-9, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(data=st.lists(st.floats(-10, 10), min_size=2, max_size=30), conf=st.floats(0.5, 0.999))
def test_mean_ci_matches_scipy(data, conf):
    mean, lo, hi = E.mean_ci(data, conf)
    sem = scipy.stats.sem(data)
    if sem == 0:
        assert lo == hi == pytest.approx(mean)
        return
    want = scipy.stats.t.interval(conf, len(data) - 1, loc=sum(data) / len(data), scale=sem)
    assert (lo, hi) == pytest.approx(want, rel=1e-8, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 25), shift=st.floats(-1, 1), seed=st.integers(0, 2**16),
       alternative=st.sampled_from(["two-sided", "less", "greater"]))
def test_paired_ttest_matches_scipy(n, shift, seed, alternative):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    b = a + shift + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    t, p = E.paired_ttest(a, b, alternative)
    res = scipy.stats.ttest_rel(a.numpy(), b.numpy(), alternative=alternative)
    assert t == pytest.approx(res.statistic, rel=1e-9)
    assert p == pytest.approx(res.pvalue, rel=1e-7, abs=1e-12)


def test_statistics_edge_cases_and_errors():
    assert E.paired_ttest([1, 2, 3], [0, 1, 2]) == (math.inf, 0.0)
    t, p = E.paired_ttest([1, 2], [1, 2])
    assert math.isnan(t) and math.isnan(p)
    assert E.t_cdf(math.inf, 3) == 1.0 and E.t_cdf(-math.inf, 3) == 0.0
    with pytest.raises(ValueError, match="same length"):
        E.paired_ttest([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        E.paired_ttest([1], [2])
    with pytest.raises(ValueError, match="unknown alternative"):
        E.paired_ttest([1, 2], [2, 4], "bigger")
    with pytest.raises(TypeError, match="sequence of numbers"):
        E.mean_ci(3.0)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        E.mean_ci([1, 2], 1.5)
    with pytest.raises(ValueError, match=r"q must be in \(0, 1\)"):
        E.t_ppf(1.0, 3)
    with pytest.raises(ValueError, match="df .* must be > 0"):
        E.t_cdf(0.0, 0)


def test_summarize_and_plot_runs():
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame({"setting": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "epoch": 1,
                       "acc": [0.5, 0.6, 0.7, 0.8, 0.8, 0.9]})
    table = E.summarize_runs(df, "acc")
    want = scipy.stats.t.interval(0.95, 2, loc=0.6, scale=scipy.stats.sem([0.5, 0.6, 0.7]))
    assert (table.loc["a", "ci_low"], table.loc["a", "ci_high"]) == pytest.approx(want)
    assert table.loc["b", "sd"] == pytest.approx(pd.Series([0.8, 0.8, 0.9]).std())
    fig = E.plot_runs(df, "acc", band="minmax")
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="column 'loss' not in the table"):
        E.summarize_runs(df, "loss")
    with pytest.raises(ValueError, match="column 'step' not in the table"):
        E.plot_runs(df, "acc", x="step")
    with pytest.raises(ValueError, match="unknown band"):
        E.plot_runs(df, "acc", band="ci")


# ----------------------------------------------------------------------------------------- loss landscape
def _mlp(d_in, hidden, k, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, k)).double()


def _ref_loss(model, tensors, X, y):
    names = [n for n, _ in model.named_parameters()]
    with torch.no_grad():
        return F.cross_entropy(functional_call(model, dict(zip(names, tensors)), (X,)), y).item()


@settings(max_examples=10, deadline=None)
@given(d_in=st.integers(1, 5), hidden=st.integers(1, 6), k=st.integers(2, 4), seed=st.integers(0, 999))
def test_interpolate_loss_and_surface_match_functional_call(d_in, hidden, k, seed):
    model = _mlp(d_in, hidden, k, seed)
    X = torch.randn(12, d_in, dtype=torch.float64)
    y = torch.randint(0, k, (12,))
    theta = [p.detach().clone() for p in model.parameters()]
    start = [torch.randn_like(p) for p in theta]
    alphas = [-0.5, 0.0, 0.3, 1.0, 1.5]
    ours = E.interpolate_loss(model, start, theta, F.cross_entropy, X, y, alphas)
    want = [_ref_loss(model, [(1 - a) * s + a * e for s, e in zip(start, theta)], X, y) for a in alphas]
    assert ours == pytest.approx(want, rel=1e-12)
    assert all(torch.equal(p, t) for p, t in zip(model.parameters(), theta))  # restored
    live = E.interpolate_loss(model, start, list(model.parameters()), F.cross_entropy, X, y, alphas)
    assert live == ours  # ``end`` given as the model's own (aliased) parameters
    d1, d2 = E.filter_normalized_direction(model), E.filter_normalized_direction(model)
    Z = E.loss_surface(model, d1, d2, F.cross_entropy, X, y, [-1.0, 0.0, 0.5], [0.0, 2.0])
    for i, a in enumerate([-1.0, 0.0, 0.5]):
        for j, b in enumerate([0.0, 2.0]):
            point = [t + a * u + b * v for t, u, v in zip(theta, d1, d2)]
            assert Z[i, j].item() == pytest.approx(_ref_loss(model, point, X, y), rel=1e-12)
    assert all(torch.equal(p, t) for p, t in zip(model.parameters(), theta))
    with pytest.raises(ValueError, match="same number of tensors"):
        E.interpolate_loss(model, start[:1], theta, F.cross_entropy, X, y, alphas)
    with pytest.raises(ValueError, match="same number of tensors"):
        E.loss_surface(model, d1, d2[:1], F.cross_entropy, X, y, [0.0], [0.0])


@settings(max_examples=20, deadline=None)
@given(c_out=st.integers(1, 6), c_in=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 2**16),
       ignore_1d=st.booleans())
def test_filter_normalized_direction_per_filter(c_out, c_in, k, seed, ignore_1d):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(c_in, c_out, k), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3)).double()
    model(torch.zeros(1, c_in, k + 2, k + 2, dtype=torch.float64))
    d = E.filter_normalized_direction(model, generator=torch.Generator().manual_seed(seed), ignore_1d=ignore_1d)
    raw_gen = torch.Generator().manual_seed(seed)
    for p, u in zip(model.parameters(), d):
        raw = torch.randn(p.shape, generator=raw_gen, dtype=p.dtype)  # the same draws, independently
        if p.dim() == 1:
            if ignore_1d:
                assert torch.count_nonzero(u) == 0
            else:
                torch.testing.assert_close(u.norm(), p.detach().norm())
            continue
        for i in range(p.shape[0]):  # every filter: the raw direction rescaled to the filter's norm
            torch.testing.assert_close(u[i], raw[i] / raw[i].norm() * p.detach()[i].norm())


@settings(max_examples=8, deadline=None)
@given(d_in=st.integers(1, 4), hidden=st.integers(1, 4), k=st.integers(2, 3), seed=st.integers(0, 999))
def test_hessian_top_eigenvalue_matches_dense_hessian(d_in, hidden, k, seed):
    model = _mlp(d_in, hidden, k, seed)
    X = torch.randn(10, d_in, dtype=torch.float64)
    y = torch.randint(0, k, (10,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss_of(vec):
        parts, i = [], 0
        for s in shapes:
            parts.append(vec[i:i + s.numel()].reshape(s))
            i += s.numel()
        return F.cross_entropy(functional_call(model, dict(zip(names, parts)), (X,)), y)

    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))
    top = eig[eig.abs().argmax()].item()
    ours = E.hessian_top_eigenvalue(model, F.cross_entropy, X, y, iters=3000, tol=1e-13,
                                    generator=torch.Generator().manual_seed(0))
    assert ours == pytest.approx(top, rel=1e-5, abs=1e-9)


def test_hessian_quadratic_and_errors():
    lin = nn.Linear(3, 1, bias=False).double()
    A = torch.diag(torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64))
    X = torch.linalg.cholesky(A).T * math.sqrt(3)  # X^T X = 3 A, loss = mean (Xw - 0)^2 -> H = 2 A

    def loss(pred, target):
        return ((pred - target) ** 2).mean()

    val = E.hessian_top_eigenvalue(lin, loss, X, torch.zeros(3, 1, dtype=torch.float64), iters=500, tol=1e-14)
    assert val == pytest.approx(8.0, rel=1e-8)
    with pytest.raises(ValueError, match="iters must be a positive int"):
        E.hessian_top_eigenvalue(lin, loss, X, X, iters=0)


# ------------------------------------------------------------------------------------- saliency, Grad-CAM
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 3), length=st.integers(3, 9), seed=st.integers(0, 999),
       use_target=st.booleans())
def test_saliency_matches_jacrev(n, c, length, seed, use_target):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv1d(c, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * length, 5)).double()
    x = torch.randn(n, c, length, dtype=torch.float64)
    target = torch.randint(0, 5, (n,)) if use_target else None
    ours = E.saliency(model, x, target)
    with torch.no_grad():
        t = target if use_target else model(x).argmax(1)
    for i in range(n):
        jac = jacrev(lambda xi: model(xi[None])[0])(x[i])  # [5, C, L]
        torch.testing.assert_close(ours[i], jac[t[i]].abs().amax(0))


def _gap_net(dims, c, k, seed):
    torch.manual_seed(seed)
    Conv = nn.Conv1d if dims == 1 else nn.Conv2d
    Pool = nn.AdaptiveAvgPool1d if dims == 1 else nn.AdaptiveAvgPool2d
    features = nn.Sequential(Conv(c, 6, 3, padding=1), nn.ReLU(), Conv(6, 5, 3, padding=1), nn.ReLU())
    return nn.Sequential(features, Pool(1), nn.Flatten(), nn.Linear(5, k)).double(), features


@settings(max_examples=10, deadline=None)
@given(dims=st.sampled_from([1, 2]), n=st.integers(1, 3), c=st.integers(1, 3), size=st.integers(3, 8),
       k=st.integers(2, 5), seed=st.integers(0, 999))
def test_grad_cam_equals_cam_for_gap_linear_heads(dims, n, c, size, k, seed):
    model, features = _gap_net(dims, c, k, seed)
    x = torch.randn(n, c, *([size] * dims), dtype=torch.float64)
    cam = E.grad_cam(model, features, x)
    with torch.no_grad():
        A = features(x)
        cls = model(x).argmax(1)
        w = model[-1].weight[cls]  # [N, K]
        want = F.relu((w.view(n, -1, *([1] * dims)) * A).sum(1)) / size ** dims
    torch.testing.assert_close(cam, want)


def test_grad_cam_general_head_resize_and_errors():
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    model = nn.Sequential(features, head).double()
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    A = features(x).detach().requires_grad_(True)
    (dA,) = torch.autograd.grad(head(A)[:, 2].sum(), A)
    want = F.relu((dA.mean((2, 3), keepdim=True) * A).sum(1)).detach()
    torch.testing.assert_close(E.grad_cam(model, features, x, target=2), want)
    toy = nn.Sequential(nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    A0 = torch.rand(2, 2, 3, 3)  # the hooked layer's output needs no grad upstream
    want0 = F.relu(torch.einsum("nk,nkhw->nhw", toy[3].weight[[1, 1]], A0) / 9).detach()
    torch.testing.assert_close(E.grad_cam(toy, toy[0], A0, target=1), want0)
    big = E.grad_cam(model, features, x, target=2, size=(6, 6))
    assert big.shape == (2, 6, 6)
    with pytest.raises(TypeError, match="layer must be an nn.Module"):
        E.grad_cam(model, "features", x)
    with pytest.raises(ValueError, match="was not called in the forward pass"):
        E.grad_cam(model, nn.ReLU(), x)
    with pytest.raises(ValueError, match=r"target must be a class in \[0, 4\)"):
        E.grad_cam(model, features, x, target=7)
    with pytest.raises(ValueError, match=r"must be \[N, K, \*spatial\]"):
        E.grad_cam(model, head, x)
    with pytest.raises(ValueError, match=r"expected x of shape \[N, C, ...\]"):
        E.saliency(model, torch.randn(3))

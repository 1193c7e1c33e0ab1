"""dlhelpers.gp == scikit-learn's Gaussian process (same fixed kernel, optimizer=None) in float64: kernel matrices
and their gradients in the log-hyperparameters, posterior mean/std/covariance, log marginal likelihood and its
gradient; expected improvement against Monte Carlo and its closed-form derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, Matern, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from torch.testing import assert_close

from dlhelpers import gp

SK = {"rbf": lambda ls: RBF(ls), "matern52": lambda ls: Matern(ls, nu=2.5)}


@st.composite
def gp_cases(draw):
    n, m, d = draw(st.integers(1, 12)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    ls = [draw(st.floats(0.2, 3.0)) for _ in range(d)]
    return dict(n=n, m=m, d=d, ls=ls, s2=draw(st.floats(0.1, 5.0)), noise=draw(st.floats(1e-4, 0.5)),
                kernel=draw(st.sampled_from(["rbf", "matern52"])), seed=draw(st.integers(0, 2**31 - 1)))


def _data(c):
    g = torch.Generator().manual_seed(c["seed"])
    X = torch.rand(c["n"], c["d"], generator=g, dtype=torch.float64) * 2
    Xs = torch.rand(c["m"], c["d"], generator=g, dtype=torch.float64) * 2
    y = torch.randn(c["n"], generator=g, dtype=torch.float64)
    return X, y, Xs


@settings(max_examples=15, deadline=None)
@given(gp_cases())
def test_kernel_and_its_gradient_match_sklearn(c):
    X, _, Xs = _data(c)
    ls = torch.tensor(c["ls"], dtype=torch.float64)
    sk = C(c["s2"]) * SK[c["kernel"]](np.array(c["ls"]))
    assert_close(gp.KERNELS[c["kernel"]](X, Xs, ls, c["s2"]), torch.from_numpy(sk(X.numpy(), Xs.numpy())),
                 rtol=1e-10, atol=1e-12)
    # gradient in theta = (log s2, log l_1..l_d), sklearn's eval_gradient (square K only)
    theta = torch.tensor([math.log(c["s2"]), *np.log(c["ls"])], dtype=torch.float64, requires_grad=True)
    K = gp.KERNELS[c["kernel"]](X, X, theta[1:].exp(), theta[0].exp())
    G = torch.randn(K.shape, generator=torch.Generator().manual_seed(c["seed"] + 1), dtype=torch.float64)
    (ours,) = torch.autograd.grad((K * G).sum(), theta)
    _, dK = sk(X.numpy(), eval_gradient=True)
    theirs = torch.from_numpy(np.einsum("ijk,ij->k", dK, G.numpy()))
    assert_close(ours, theirs, rtol=1e-8, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(gp_cases())
def test_posterior_and_marginal_likelihood_match_sklearn(c):
    X, y, Xs = _data(c)
    ls = torch.tensor(c["ls"], dtype=torch.float64)
    sk = GaussianProcessRegressor(C(c["s2"]) * SK[c["kernel"]](np.array(c["ls"])), alpha=c["noise"],
                                  optimizer=None).fit(X.numpy(), y.numpy())
    mean, std = sk.predict(Xs.numpy(), return_std=True)
    _, cov = sk.predict(Xs.numpy(), return_cov=True)
    mu, var = gp.gp_posterior(X, y, Xs, c["kernel"], ls, c["s2"], c["noise"])
    _, full = gp.gp_posterior(X, y, Xs, c["kernel"], ls, c["s2"], c["noise"], full_cov=True)
    assert_close(mu, torch.from_numpy(mean), rtol=1e-8, atol=1e-8)
    assert_close(var.sqrt(), torch.from_numpy(std), rtol=1e-8, atol=1e-8)
    assert_close(full, torch.from_numpy(cov), rtol=1e-8, atol=1e-8)
    lml = gp.log_marginal_likelihood(X, y, c["kernel"], ls, c["s2"], c["noise"])
    ref = sk.log_marginal_likelihood_value_
    assert abs(float(lml) - ref) <= 1e-8 * max(1.0, abs(ref))  # |lml| reaches 1e4 when noise is tiny


@settings(max_examples=15, deadline=None)
@given(gp_cases())
def test_marginal_likelihood_gradient_matches_sklearn(c):
    """d lml / d (log s2, log l, log noise) by autograd vs sklearn's analytic gradient (noise as a WhiteKernel)."""
    X, y, _ = _data(c)
    kernel = C(c["s2"]) * SK[c["kernel"]](np.array(c["ls"])) + WhiteKernel(c["noise"])
    sk = GaussianProcessRegressor(kernel, alpha=0.0, optimizer=None).fit(X.numpy(), y.numpy())
    value, grad = sk.log_marginal_likelihood(sk.kernel_.theta, eval_gradient=True)
    theta = torch.tensor([math.log(c["s2"]), *np.log(c["ls"]), math.log(c["noise"])], dtype=torch.float64,
                         requires_grad=True)
    lml = gp.log_marginal_likelihood(X, y, c["kernel"], theta[1:-1].exp(), theta[0].exp(), theta[-1].exp())
    (ours,) = torch.autograd.grad(lml, theta)
    assert abs(float(lml.detach()) - value) <= 1e-8 * max(1.0, abs(value))
    assert_close(ours, torch.from_numpy(grad), rtol=1e-7, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.floats(-3, 3), st.integers(0, 2**31 - 1))
def test_expected_improvement_matches_monte_carlo(m, best, seed):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(m, generator=g, dtype=torch.float64)
    std = torch.rand(m, generator=g, dtype=torch.float64) * 2 + 0.05
    n = 200_000
    eps = torch.randn((n, m), generator=g, dtype=torch.float64)
    samples = (best - (mean + std * eps)).clamp_min(0)
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    ei = gp.expected_improvement(mean, std, best)
    assert torch.all((ei - mc).abs() <= 5 * se + 1e-12), (ei, mc, se)
    mc2 = gp.expected_improvement_mc(mean, std, best, n_samples=n, generator=torch.Generator().manual_seed(seed))
    assert torch.all((ei - mc2).abs() <= 6 * se + 1e-12)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.floats(-2, 2), st.floats(0.0, 0.5), st.integers(0, 2**31 - 1))
def test_expected_improvement_gradient_is_closed_form(m, best, xi, seed):
    """dEI/dmean = -Phi(z), dEI/dstd = phi(z): the textbook derivatives, against autograd."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(m, generator=g, dtype=torch.float64).requires_grad_(True)
    std = (torch.rand(m, generator=g, dtype=torch.float64) + 0.1).requires_grad_(True)
    dm, ds = torch.autograd.grad(gp.expected_improvement(mean, std, best, xi).sum(), (mean, std))
    z = (best - xi - mean.detach()) / std.detach()
    normal = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    assert_close(dm, -normal.cdf(z))
    assert_close(ds, normal.log_prob(z).exp())


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-8, 8), min_size=1, max_size=8), st.floats(0.05, 3))
def test_log_expected_improvement_equals_log_of_ei_and_stays_finite(z, s):
    z = torch.tensor(z, dtype=torch.float64)
    std = torch.full_like(z, s)
    mean = -z * std  # best = 0
    assert_close(gp.log_expected_improvement(mean, std, 0.0), gp.expected_improvement(mean, std, 0.0).log())
    far = gp.log_expected_improvement(torch.tensor([50.0, 1e3], dtype=torch.float64),
                                      torch.ones(2, dtype=torch.float64), 0.0)
    assert torch.isfinite(far).all() and far[1] < far[0]
    # asymptotics: log EI ~ -z^2/2 - log(sqrt(2 pi)) - 2 log|z| for z -> -inf
    assert abs(float(far[1]) - (-0.5 * 1e6 - 0.5 * math.log(2 * math.pi) - 2 * math.log(1e3))) < 1e-3


def test_zero_std_gives_plain_improvement():
    ei = gp.expected_improvement(torch.tensor([0.0, 2.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
                                 1.0)
    assert_close(ei, torch.tensor([1.0, 0.0], dtype=torch.float64))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_reaches_sklearns_maximum_likelihood():
    """Without our prior the fitted log marginal likelihood is at least sklearn's own L-BFGS optimum."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(20, 2, generator=g, dtype=torch.float64)
    y = torch.sin(6 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * torch.randn(20, generator=g, dtype=torch.float64)
    model = gp.GaussianProcess(kernel="matern52", prior=False, restarts=3).fit(X, y)
    ys = (y - y.mean()) / y.std()
    ours = float(gp.log_marginal_likelihood(X, ys, "matern52", model.lengthscale, model.outputscale, model.noise))
    kernel = C(1.0, (1e-2, 1e2)) * Matern([0.5, 0.5], (1e-2, 1e2), nu=2.5) + WhiteKernel(1e-3, (1e-6, 1e-1))
    sk = GaussianProcessRegressor(kernel, alpha=0.0, n_restarts_optimizer=5, random_state=0).fit(X.numpy(),
                                                                                               ys.numpy())
    assert ours >= sk.log_marginal_likelihood_value_ - 1e-5
    mu, sd = model.predict(X)
    assert_close(mu, y, atol=0.05, rtol=0)  # interpolates its data
    assert torch.all(sd > 0)


def test_errors_name_what_was_expected():
    X = torch.rand(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown kernel 'cubic'"):
        gp.gp_posterior(X, torch.zeros(3, dtype=torch.float64), X, kernel="cubic")
    with pytest.raises(ValueError, match=r"y must have shape \[3\]"):
        gp.gp_posterior(X, torch.zeros(4, dtype=torch.float64), X)
    with pytest.raises(ValueError, match="same number of columns"):
        gp.rbf_kernel(X, torch.rand(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected x1 to be 2-D"):
        gp.matern52_kernel(torch.rand(3, dtype=torch.float64), X)
    with pytest.raises(ValueError, match="not positive definite"):
        gp.log_marginal_likelihood(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                                   noise=-1.0)
    with pytest.raises(ValueError, match="call fit"):
        gp.GaussianProcess().predict(X)
    with pytest.raises(ValueError, match="restarts must be >= 1"):
        gp.GaussianProcess(restarts=0)
    with pytest.raises(ValueError, match=r"y must have shape \[3\]"):
        gp.GaussianProcess().fit(X, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="mean must be a torch.Tensor"):
        gp.expected_improvement([0.0], torch.ones(1), 0.0)

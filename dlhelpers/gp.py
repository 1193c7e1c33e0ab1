"""A Gaussian process from scratch: kernels, Cholesky posterior, log marginal likelihood, hyperparameters
fitted with torch autograd, and expected improvement (closed form, log form, Monte Carlo).

======================================  ==================================================================
here                                    independent counterpart (checked in ``tests/test_gp.py``)
======================================  ==================================================================
``rbf_kernel``                          ``sklearn.gaussian_process.kernels.ConstantKernel * RBF``
``matern52_kernel``                     ``ConstantKernel * Matern(nu=2.5)``
``gp_posterior``                        ``GaussianProcessRegressor(kernel, alpha=noise, optimizer=None)``
                                        ``.predict(X, return_std=True)`` / ``return_cov=True``
``log_marginal_likelihood``             ``GaussianProcessRegressor.log_marginal_likelihood_value_``
``expected_improvement``                a Monte-Carlo estimate ``E[max(best - f, 0)]`` (``expected_improvement_mc``)
``log_expected_improvement``            ``log(expected_improvement)`` where that does not underflow
``GaussianProcess.fit``                 (maximizes the log marginal likelihood; gradients by autograd,
                                        steps by SciPy's L-BFGS-B)
======================================  ==================================================================

Everything minimizes: EI is the expected amount by which a new observation falls *below* the best one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dlhelpers._checks import check_choice, check_rank, check_tensor

__all__ = [
    "rbf_kernel", "matern52_kernel", "KERNELS", "gp_posterior", "log_marginal_likelihood",
    "expected_improvement", "log_expected_improvement", "expected_improvement_mc", "GaussianProcess",
]

SQRT5 = math.sqrt(5.0)


def _scaled_sqdist(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor | float) -> torch.Tensor:
    """Pairwise ``r^2 = sum_d ((x1_d - x2_d) / l_d)^2`` as an ``[n1, n2]`` matrix (exact differences, no
    ``a^2 + b^2 - 2ab`` cancellation, so the diagonal of ``k(X, X)`` is exactly the output scale)."""
    diff = (x1[:, None, :] - x2[None, :, :]) / lengthscale
    return (diff * diff).sum(-1)


def _check_inputs(x1: torch.Tensor, x2: torch.Tensor, fn: str) -> None:
    check_rank(x1, (2,), "x1", fn, "[n1, d]")
    check_rank(x2, (2,), "x2", fn, "[n2, d]")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"{fn}: x1 and x2 must have the same number of columns, got {x1.shape[1]} and {x2.shape[1]}")


def rbf_kernel(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor | float = 1.0,
               outputscale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Squared-exponential (RBF) kernel ``k(x, x') = s^2 exp(-r^2 / 2)``, ``r^2 = sum_d ((x_d - x'_d)/l_d)^2``.

    ``x1`` ``[n1, d]``, ``x2`` ``[n2, d]``; ``lengthscale`` a scalar or ``[d]`` (ARD); ``outputscale`` is
    the variance ``s^2``. Counterpart: ``ConstantKernel(s2) * RBF(length_scale=l)`` in scikit-learn.
    """
    _check_inputs(x1, x2, "rbf_kernel")
    return outputscale * torch.exp(-0.5 * _scaled_sqdist(x1, x2, lengthscale))


def matern52_kernel(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor | float = 1.0,
                    outputscale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Matérn-5/2 kernel ``k = s^2 (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)``.

    Twice differentiable sample paths (RBF's are infinitely smooth, which is often too optimistic for
    real objectives). Counterpart: ``ConstantKernel(s2) * Matern(length_scale=l, nu=2.5)``.
    ``r`` is computed as ``sqrt(max(r^2, 1e-36))`` so its gradient stays finite on the diagonal.
    """
    _check_inputs(x1, x2, "matern52_kernel")
    r2 = _scaled_sqdist(x1, x2, lengthscale)
    r = r2.clamp_min(1e-36).sqrt()
    return outputscale * (1.0 + SQRT5 * r + (5.0 / 3.0) * r2) * torch.exp(-SQRT5 * r)


KERNELS = {"rbf": rbf_kernel, "matern52": matern52_kernel}


def _cholesky(K: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        raise ValueError(f"gp: the kernel matrix is not positive definite (leading minor {int(info)} fails); "
                         f"increase noise, got matrix of size {K.shape[0]}")
    return L


def gp_posterior(X: torch.Tensor, y: torch.Tensor, Xs: torch.Tensor, kernel: str = "matern52",
                 lengthscale: torch.Tensor | float = 1.0, outputscale: torch.Tensor | float = 1.0,
                 noise: torch.Tensor | float = 1e-6, mean: float = 0.0, *, full_cov: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior of a zero-mean (or constant-``mean``) GP at ``Xs`` given ``y = f(X) + eps``, ``eps ~ N(0, noise)``.

    With ``K = k(X, X) + noise I = L L^T``, ``alpha = K^{-1} (y - m)``, ``K_s = k(X, Xs)``, ``V = L^{-1} K_s``::

        mean(Xs) = m + K_s^T alpha
        cov(Xs)  = k(Xs, Xs) - V^T V           (noise-free f; the diagonal is the variance)

    Returns ``(mean [m], var [m])`` or ``(mean, cov [m, m])`` with ``full_cov=True``. Counterpart:
    ``GaussianProcessRegressor(kernel, alpha=noise, optimizer=None).fit(X, y).predict(Xs, return_std=True)``
    (``std**2`` is our variance).
    """
    fn = "gp_posterior"
    check_choice(kernel, KERNELS, "kernel", fn)
    check_rank(X, (2,), "X", fn, "[n, d]")
    check_rank(Xs, (2,), "Xs", fn, "[m, d]")
    check_tensor(y, "y", fn)
    if y.shape != (X.shape[0],):
        raise ValueError(f"{fn}: y must have shape [{X.shape[0]}] to match X, got {tuple(y.shape)}")
    k = KERNELS[kernel]
    L = _cholesky(k(X, X, lengthscale, outputscale) + noise * torch.eye(len(X), dtype=X.dtype))
    alpha = torch.cholesky_solve((y - mean)[:, None], L)[:, 0]
    Ks = k(X, Xs, lengthscale, outputscale)
    mu = mean + Ks.T @ alpha
    V = torch.linalg.solve_triangular(L, Ks, upper=False)
    if full_cov:
        return mu, k(Xs, Xs, lengthscale, outputscale) - V.T @ V
    prior_var = torch.as_tensor(outputscale, dtype=X.dtype).expand(len(Xs))  # k(x, x) = s^2 for both kernels
    return mu, (prior_var - (V * V).sum(0)).clamp_min(0.0)


def log_marginal_likelihood(X: torch.Tensor, y: torch.Tensor, kernel: str = "matern52",
                            lengthscale: torch.Tensor | float = 1.0, outputscale: torch.Tensor | float = 1.0,
                            noise: torch.Tensor | float = 1e-6, mean: float = 0.0) -> torch.Tensor:
    """``log p(y | X, theta) = -1/2 (y-m)^T K^{-1} (y-m) - sum_i log L_ii - n/2 log(2 pi)``, ``K = L L^T``.

    Differentiable in every hyperparameter (autograd through the Cholesky factor). Counterpart:
    ``GaussianProcessRegressor(...).log_marginal_likelihood_value_``.
    """
    fn = "log_marginal_likelihood"
    check_choice(kernel, KERNELS, "kernel", fn)
    check_rank(X, (2,), "X", fn, "[n, d]")
    if y.shape != (X.shape[0],):
        raise ValueError(f"{fn}: y must have shape [{X.shape[0]}] to match X, got {tuple(y.shape)}")
    K = KERNELS[kernel](X, X, lengthscale, outputscale) + noise * torch.eye(len(X), dtype=X.dtype)
    L = _cholesky(K)
    r = y - mean
    alpha = torch.cholesky_solve(r[:, None], L)[:, 0]
    return -0.5 * (r * alpha).sum() - torch.log(torch.diagonal(L)).sum() - 0.5 * len(X) * math.log(2 * math.pi)


# --------------------------------------------------------------------------- expected improvement
def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))


def expected_improvement(mean: torch.Tensor, std: torch.Tensor, best: float, xi: float = 0.0) -> torch.Tensor:
    """Closed-form EI for minimization: ``E[max(best - xi - f, 0)]``, ``f ~ N(mean, std^2)``.

    ``z = (best - xi - mean) / std``;  ``EI = std * (z Phi(z) + phi(z))`` (Jones et al. 1998). Where
    ``std == 0`` EI is ``max(best - xi - mean, 0)``. Checked against :func:`expected_improvement_mc`.
    """
    check_tensor(mean, "mean", "expected_improvement")
    check_tensor(std, "std", "expected_improvement")
    safe = std.clamp_min(1e-300)
    z = (best - xi - mean) / safe
    ei = safe * (z * _normal_cdf(z) + _normal_pdf(z))
    return torch.where(std > 0, ei, (best - xi - mean).clamp_min(0.0))


def log_expected_improvement(mean: torch.Tensor, std: torch.Tensor, best: float, xi: float = 0.0) -> torch.Tensor:
    """``log EI``, finite even where EI underflows to 0 (far from the incumbent), so that a gradient-based
    acquisition optimizer still sees a slope.

    ``log EI = log std + log h(z)``, ``h(z) = z Phi(z) + phi(z)``. For ``z < 0`` we use
    ``h(z) = phi(z) (1 + z * sqrt(pi/2) * erfcx(-z / sqrt 2))`` (``erfcx(x) = exp(x^2) erfc(x)``), so
    ``log h = -z^2/2 - log sqrt(2 pi) + log1p(z sqrt(pi/2) erfcx(-z/sqrt 2))`` with no underflow.
    Requires ``std > 0``.
    """
    check_tensor(mean, "mean", "log_expected_improvement")
    check_tensor(std, "std", "log_expected_improvement")
    z = (best - xi - mean) / std
    zpos = z.clamp_min(0.0)
    log_h_pos = torch.log(zpos * _normal_cdf(zpos) + _normal_pdf(zpos))
    zneg = z.clamp_max(0.0)
    inner = (1.0 + zneg * math.sqrt(math.pi / 2) * torch.special.erfcx(-zneg / math.sqrt(2.0))).clamp_min(1e-300)
    log_h_neg = -0.5 * zneg * zneg - 0.5 * math.log(2 * math.pi) + torch.log(inner)
    return torch.log(std) + torch.where(z > 0, log_h_pos, log_h_neg)


def expected_improvement_mc(mean: torch.Tensor, std: torch.Tensor, best: float, xi: float = 0.0, *,
                            n_samples: int = 100_000, generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte-Carlo EI: the average of ``max(best - xi - f, 0)`` over ``n_samples`` draws ``f = mean + std * eps``.

    Unbiased; its standard error shrinks as ``1 / sqrt(n_samples)``. The reference for the closed form.
    """
    eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype)
    return (best - xi - (mean + std * eps)).clamp_min(0.0).mean(0)


# --------------------------------------------------------------------------- the model used by GP-EI
@dataclass
class GaussianProcess:
    """A GP regressor with a constant mean, ARD kernel and homoscedastic noise, fitted by maximizing the log
    marginal likelihood (type-II maximum likelihood) of *standardized* targets.

    ``fit(X, y)`` standardizes ``y`` (``(y - mean) / std``), then maximizes
    ``log_marginal_likelihood + log prior`` over ``theta = (log l_1..l_d, log s^2, log noise)`` with SciPy's
    L-BFGS-B, the gradient coming from torch autograd, from ``restarts`` starting points; the best is kept.
    The weak log-normal prior on the lengthscales and noise (``prior=True``) stops the fit from collapsing
    to a tiny lengthscale on a handful of points. ``predict`` returns mean and std in the original units.
    Counterpart for a *fixed* theta: ``sklearn.gaussian_process.GaussianProcessRegressor(optimizer=None)``.
    """

    kernel: str = "matern52"
    noise_bounds: tuple[float, float] = (1e-6, 1e-1)
    lengthscale_bounds: tuple[float, float] = (1e-2, 1e2)
    outputscale_bounds: tuple[float, float] = (1e-2, 1e2)
    restarts: int = 2
    prior: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice(self.kernel, KERNELS, "kernel", "GaussianProcess")
        if self.restarts < 1:
            raise ValueError(f"GaussianProcess: restarts must be >= 1, got {self.restarts}")

    # theta <-> named hyperparameters
    def _unpack(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return theta[:-2].exp(), theta[-2].exp(), theta[-1].exp()

    def _neg_objective(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ls, s2, noise = self._unpack(theta)
        lml = log_marginal_likelihood(X, y, self.kernel, ls, s2, noise)
        if self.prior:  # log-normal priors: lengthscale around 0.5 of the unit box, noise around 1e-4
            lml = lml - 0.5 * (((theta[:-2] - math.log(0.5)) / 1.5) ** 2).sum() \
                - 0.5 * ((theta[-1] - math.log(1e-4)) / 3.0) ** 2
        return -lml

    def fit(self, X: torch.Tensor, y: torch.Tensor, theta0: torch.Tensor | None = None) -> GaussianProcess:
        """Standardize ``y``, fit the hyperparameters, and cache the Cholesky factor for :meth:`predict`.

        ``theta0`` (e.g. the previous fit's ``self.theta``) is an extra starting point: a BO loop that adds one
        observation at a time converges in a few L-BFGS steps from there (a warm start).
        """
        from scipy.optimize import minimize

        check_rank(X, (2,), "X", "GaussianProcess.fit", "[n, d]")
        if y.shape != (X.shape[0],):
            raise ValueError(f"GaussianProcess.fit: y must have shape [{X.shape[0]}], got {tuple(y.shape)}")
        X, y = X.double(), y.double()
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) if len(y) > 1 and float(y.std()) > 0 else 1.0
        ys = (y - self.y_mean) / self.y_std
        d = X.shape[1]
        lo = [math.log(self.lengthscale_bounds[0])] * d + [math.log(self.outputscale_bounds[0]),
                                                           math.log(self.noise_bounds[0])]
        hi = [math.log(self.lengthscale_bounds[1])] * d + [math.log(self.outputscale_bounds[1]),
                                                           math.log(self.noise_bounds[1])]

        def f_and_grad(theta_np: np.ndarray) -> tuple[float, np.ndarray]:
            theta = torch.tensor(theta_np, dtype=torch.float64, requires_grad=True)
            try:
                loss = self._neg_objective(theta, X, ys)
            except ValueError:  # not positive definite at this theta: a large loss pushes L-BFGS back
                return 1e10, np.zeros_like(theta_np)
            (grad,) = torch.autograd.grad(loss, theta)
            return float(loss.detach()), grad.numpy()

        rng = np.random.default_rng(self.seed + len(X))
        starts = [np.array([math.log(0.5)] * d + [0.0, math.log(1e-3)])]
        starts += [rng.uniform(lo, hi) * 0.5 + starts[0] * 0.5 for _ in range(self.restarts - 1)]
        if theta0 is not None:
            starts = [np.clip(np.asarray(theta0, dtype=float), lo, hi)] + starts[: max(self.restarts - 1, 1)]
        best = None
        for theta0 in starts:
            res = minimize(f_and_grad, theta0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)),
                           options={"maxiter": 200})
            if best is None or res.fun < best.fun:
                best = res
        self.theta = torch.tensor(best.x, dtype=torch.float64)
        self.lengthscale, self.outputscale, self.noise = (t.detach() for t in self._unpack(self.theta))
        self.X, self.ys = X, ys
        K = KERNELS[self.kernel](X, X, self.lengthscale, self.outputscale) + self.noise * torch.eye(len(X),
                                                                                                   dtype=X.dtype)
        self.L = _cholesky(K)
        self.alpha = torch.cholesky_solve(ys[:, None], self.L)[:, 0]
        return self

    def predict(self, Xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std of ``f`` at ``Xs`` in the original units of ``y`` (differentiable in ``Xs``)."""
        if not hasattr(self, "L"):
            raise ValueError("GaussianProcess.predict: call fit(X, y) first")
        k = KERNELS[self.kernel]
        Ks = k(self.X, Xs, self.lengthscale, self.outputscale)
        mu = Ks.T @ self.alpha
        V = torch.linalg.solve_triangular(self.L, Ks, upper=False)
        var = (self.outputscale - (V * V).sum(0)).clamp_min(1e-12)
        return self.y_mean + self.y_std * mu, self.y_std * var.sqrt()

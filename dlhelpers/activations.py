"""Activation functions from scratch, each with its analytic derivative, mirroring ``torch.nn.functional``.

Every forward pass is built from elementwise primitives (``exp``, ``expm1``, ``erfc``, ``log``,
``where``) and is numerically stable for large magnitudes (±1e4) and ±inf. Every function
``f`` has a separate analytic derivative ``f_grad(input, ...)`` (= df/dx elementwise, listed
in :data:`DERIVATIVES`); softmax and log-softmax have the vector-Jacobian products
:func:`softmax_backward` and :func:`log_softmax_backward`. :func:`analytic` runs a function
with its analytic derivative as the backward pass (a ``torch.autograd.Function``), so
``torch.autograd.gradcheck`` can check the derivative against finite differences.

=================  ===========================================  ================================
ours               formula                                      PyTorch
=================  ===========================================  ================================
``sigmoid``        1 / (1 + exp(-x))                            ``torch.sigmoid``
``tanh``           (exp(x) - exp(-x)) / (exp(x) + exp(-x))      ``torch.tanh``
``relu``           max(x, 0)                                    ``F.relu``
``leaky_relu``     x if x > 0 else negative_slope * x           ``F.leaky_relu``
``gelu``           x * Phi(x)  (or its tanh approximation)      ``F.gelu``
``silu``           x * sigmoid(x)                               ``F.silu``
``elu``            x if x > 0 else alpha * (exp(x) - 1)         ``F.elu``
``softmax``        exp(x_i) / sum_j exp(x_j)                    ``F.softmax``
``log_softmax``    x_i - log sum_j exp(x_j)                     ``F.log_softmax``
``logsumexp``      log sum_j exp(x_j)                           ``torch.logsumexp``
=================  ===========================================  ================================

Limits at ±inf: where PyTorch's GELU/SiLU return ``nan`` (``-inf * 0``) at ``x = -inf`` (forward)
or ``x = ±inf`` (backward), ours return the mathematical limits (0 at -inf, +inf at +inf;
derivatives 0 and 1). Softmax/log-softmax follow PyTorch exactly (a row holding +inf, or only
-inf, is ``nan``). ``elu`` rejects a negative ``alpha`` (PyTorch accepts it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
from torch import Tensor, nn

from dlhelpers._checks import check_choice, check_tensor

__all__ = [
    "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "silu", "elu", "softmax", "log_softmax", "logsumexp",
    "softmax_naive", "sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu_grad", "gelu_grad", "silu_grad",
    "elu_grad", "softmax_backward", "log_softmax_backward", "softmax_jacobian", "DERIVATIVES", "analytic",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Softmax", "LogSoftmax",
]

GELU_APPROXIMATIONS = ("none", "tanh")
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_COEF = 0.044715


# --------------------------------------------------------------------------- argument checks
def _check_float(input: object, fn: str) -> Tensor:
    x = check_tensor(input, "input", fn)
    if not x.is_floating_point():
        raise TypeError(f"{fn}: input must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _check_real(value: object, name: str, fn: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return value


def _check_dim(dim: object, ndim: int, fn: str) -> int:
    """Normalise ``dim`` into ``[0, max(ndim, 1))`` like PyTorch (a 0-d tensor accepts 0 and -1)."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{fn}: dim must be an int, got {type(dim).__name__} (PyTorch's implicit dim "
                        "choice is deprecated; pass dim explicitly)")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{fn}: dim must be in [{-n}, {n - 1}] for a {ndim}-D input, got {dim}")
    return dim % n


def _finite_or_limit(x: Tensor, finite_fn: Callable[[Tensor], Tensor], pos_inf: float | None,
                     neg_inf: float) -> Tensor:
    """``finite_fn(x)`` on finite entries; the limit at ±inf (``pos_inf=None`` means "x itself").

    ``finite_fn`` only ever sees finite numbers, so neither its value nor its autograd
    gradient can hit ``inf * 0 = nan``.
    """
    inf = torch.isinf(x)
    safe = torch.where(inf, torch.zeros_like(x), x)
    out = finite_fn(safe)
    at_pos = x if pos_inf is None else torch.full_like(x, pos_inf)
    limit = torch.where(x > 0, at_pos, torch.full_like(x, neg_inf))
    return torch.where(inf, limit, out)


def _maybe_inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    return input.copy_(out) if inplace else out


# --------------------------------------------------------------------------- elementwise forwards
def sigmoid(input: Tensor) -> Tensor:
    """Logistic sigmoid ``sigma(x) = 1 / (1 + exp(-x))``, range (0, 1).

    Stable form: for x > 0 use ``1 / (1 + exp(-x))``, else ``exp(x) / (1 + exp(x))``, so
    ``exp`` never sees a large positive argument (no overflow at x = -1e4). Derivative:
    ``sigma(x) * (1 - sigma(x))`` (:func:`sigmoid_grad`), at most 1/4.
    PyTorch: ``torch.sigmoid`` / ``F.sigmoid``. Reference: Rumelhart, Hinton & Williams (1986).
    """
    x = _check_float(input, "sigmoid")
    pos = x > 0
    zero = torch.zeros_like(x)
    xp, xn = torch.where(pos, x, zero), torch.where(pos, zero, x)  # each branch sees a safe argument
    en = torch.exp(xn)
    return torch.where(pos, 1.0 / (1.0 + torch.exp(-xp)), en / (1.0 + en))


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent ``tanh(x) = (e^x - e^-x) / (e^x + e^-x) = 2 sigma(2x) - 1``, range (-1, 1).

    Stable form: for x > 0, ``-expm1(-2x) / (1 + exp(-2x))`` (``expm1`` keeps full relative
    precision near 0, where ``1 - exp(-2x)`` would cancel); odd symmetry for x <= 0.
    Derivative: ``1 - tanh(x)^2`` (:func:`tanh_grad`), at most 1.
    PyTorch: ``torch.tanh`` / ``F.tanh``. Reference: LeCun et al., "Efficient BackProp" (1998).
    """
    x = _check_float(input, "tanh")
    pos = x > 0
    zero = torch.zeros_like(x)
    xp, xn = torch.where(pos, x, zero), torch.where(pos, zero, x)
    ep, en = torch.exp(-2.0 * xp), torch.exp(2.0 * xn)
    return torch.where(pos, -torch.expm1(-2.0 * xp) / (1.0 + ep), torch.expm1(2.0 * xn) / (1.0 + en))


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Rectified linear unit ``relu(x) = max(x, 0)``.

    Derivative: 1 for x > 0, else 0 (PyTorch's convention at the kink x = 0) (:func:`relu_grad`).
    NaN propagates. PyTorch: ``F.relu`` / ``torch.relu``. Reference: Nair & Hinton (2010);
    Glorot, Bordes & Bengio, "Deep sparse rectifier neural networks" (2011).
    """
    x = check_tensor(input, "input", "relu")
    return _maybe_inplace(x, torch.where(x <= 0, torch.zeros_like(x), x), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """Leaky ReLU ``x if x > 0 else negative_slope * x``.

    Derivative: 1 for x > 0, else ``negative_slope`` (also at x = 0, as in PyTorch)
    (:func:`leaky_relu_grad`). Any finite slope is accepted, as in PyTorch.
    PyTorch: ``F.leaky_relu``. Reference: Maas, Hannun & Ng, "Rectifier nonlinearities improve
    neural network acoustic models" (2013).
    """
    x = _check_float(input, "leaky_relu")
    slope = _check_real(negative_slope, "negative_slope", "leaky_relu")
    return _maybe_inplace(x, torch.where(x > 0, x, x * slope), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``gelu(x) = x * Phi(x)``, Phi the standard normal CDF.

    ``approximate="none"``: ``Phi(x) = 0.5 * erfc(-x / sqrt(2))`` (``erfc`` rather than
    ``1 + erf`` keeps relative precision in the left tail).
    ``approximate="tanh"``: ``0.5 * x * (1 + tanh(u))`` with
    ``u = sqrt(2/pi) * (x + 0.044715 x^3)``, computed as ``x * sigma(2u)`` (same value, since
    ``(1 + tanh(u)) / 2 = sigma(2u)``). Derivative: :func:`gelu_grad`.
    PyTorch: ``F.gelu(input, approximate=...)`` (which returns nan at -inf; we return 0).
    Reference: Hendrycks & Gimpel, "Gaussian Error Linear Units (GELUs)" (2016).
    """
    x = _check_float(input, "gelu")
    check_choice(approximate, GELU_APPROXIMATIONS, "approximate", "gelu")
    if approximate == "tanh":
        f = lambda z: z * sigmoid(2.0 * _SQRT_2_OVER_PI * (z + _GELU_TANH_COEF * z**3))
    else:
        f = lambda z: 0.5 * z * torch.erfc(-z * _INV_SQRT_2)
    return _finite_or_limit(x, f, None, 0.0)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """Sigmoid linear unit (a.k.a. swish) ``silu(x) = x * sigma(x)``.

    Derivative: ``sigma(x) * (1 + x * (1 - sigma(x)))`` (:func:`silu_grad`).
    PyTorch: ``F.silu`` (nan at -inf; we return 0). Reference: Elfwing, Uchibe & Doya (2017);
    Ramachandran, Zoph & Le, "Searching for activation functions" (2017).
    """
    x = _check_float(input, "silu")
    return _maybe_inplace(x, _finite_or_limit(x, lambda z: z * sigmoid(z), None, 0.0), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """Exponential linear unit ``x if x > 0 else alpha * (exp(x) - 1)``, saturating at ``-alpha``.

    Computed with ``expm1`` on ``min(x, 0)`` (exact near 0, no overflow for large x).
    Derivative: 1 for x > 0, else ``alpha * exp(x)`` (:func:`elu_grad`). ``alpha`` must be >= 0
    (the paper's alpha > 0; PyTorch also accepts negative values).
    PyTorch: ``F.elu``. Reference: Clevert, Unterthiner & Hochreiter, "Fast and accurate deep
    network learning by exponential linear units (ELUs)" (2015).
    """
    x = _check_float(input, "elu")
    a = _check_real(alpha, "alpha", "elu", minimum=0.0)
    pos = x > 0
    xn = torch.where(pos, torch.zeros_like(x), x)
    return _maybe_inplace(x, torch.where(pos, x, a * torch.expm1(xn)), inplace)


# --------------------------------------------------------------------------- softmax family
def _prepare(input: object, dim: object, dtype: torch.dtype | None, fn: str) -> tuple[Tensor, int]:
    x = _check_float(input, fn) if dtype is None else check_tensor(input, "input", fn).to(dtype)
    if not x.is_floating_point():
        raise TypeError(f"{fn}: dtype must be a floating-point dtype, got {x.dtype}")
    return x, _check_dim(dim, x.dim(), fn)


def softmax(input: Tensor, dim: int, dtype: torch.dtype | None = None) -> Tensor:
    """Softmax along ``dim``: ``y_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``.

    Subtracting the (detached) max changes nothing mathematically (softmax is shift-invariant)
    but keeps every exponent <= 0, so nothing overflows. Like PyTorch, a slice holding +inf
    or only -inf gives nan. Backward: :func:`softmax_backward`.
    PyTorch: ``F.softmax(input, dim, dtype=dtype)``. Reference: Bridle (1990); Goodfellow,
    Bengio & Courville, "Deep Learning", sec. 6.2.2.3 and 4.1.
    """
    x, d = _prepare(input, dim, dtype, "softmax")
    if x.numel() == 0:
        return x.clone()
    e = torch.exp(x - x.detach().amax(dim=d, keepdim=True))
    return e / e.sum(dim=d, keepdim=True)


def log_softmax(input: Tensor, dim: int, dtype: torch.dtype | None = None) -> Tensor:
    """Log-softmax along ``dim``: ``y_i = (x_i - m) - log sum_j exp(x_j - m)``, ``m = max_j x_j``.

    The log-sum-exp trick: never forms ``exp(x)`` of a large number nor ``log`` of an
    underflowed 0, so ``y`` is exact even for logits of 1e4. Backward: :func:`log_softmax_backward`.
    PyTorch: ``F.log_softmax(input, dim, dtype=dtype)``.
    """
    x, d = _prepare(input, dim, dtype, "log_softmax")
    if x.numel() == 0:
        return x.clone()
    shifted = x - x.detach().amax(dim=d, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=d, keepdim=True))


def logsumexp(input: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """``log sum_j exp(x_j) = m + log sum_j exp(x_j - m)``, ``m = max_j x_j`` (the log-sum-exp trick).

    As in PyTorch, an infinite max is not subtracted (so a +inf entry gives +inf and an
    all -inf slice gives -inf instead of nan). Gradient (autograd): ``softmax(x)``.
    PyTorch: ``torch.logsumexp(input, dim, keepdim)``.
    """
    x = _check_float(input, "logsumexp")
    d = _check_dim(dim, x.dim(), "logsumexp")
    m = x.detach().amax(dim=d, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    out = torch.log(torch.exp(x - m).sum(dim=d, keepdim=True)) + m
    return out if keepdim else out.squeeze(d)


def softmax_naive(input: Tensor, dim: int) -> Tensor:
    """Teaching variant: ``exp(x) / sum exp(x)`` with no max shift. Overflows (inf/inf = nan)
    once a logit exceeds ~88.7 in float32 (~709.8 in float64); do not use."""
    x = _check_float(input, "softmax_naive")
    d = _check_dim(dim, x.dim(), "softmax_naive")
    e = torch.exp(x)
    return e / e.sum(dim=d, keepdim=True)


# --------------------------------------------------------------------------- analytic derivatives
def sigmoid_grad(input: Tensor) -> Tensor:
    """``d sigma / dx = sigma(x) (1 - sigma(x))`` (max 0.25 at x = 0)."""
    s = sigmoid(input)
    return s * (1.0 - s)


def tanh_grad(input: Tensor) -> Tensor:
    """``d tanh / dx = 1 - tanh(x)^2`` (max 1 at x = 0)."""
    t = tanh(input)
    return 1.0 - t * t


def relu_grad(input: Tensor) -> Tensor:
    """``d relu / dx = 1 if x > 0 else 0`` (0 at the kink, as in PyTorch)."""
    x = check_tensor(input, "input", "relu_grad")
    return torch.where(x <= 0, torch.zeros_like(x), torch.ones_like(x))


def leaky_relu_grad(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``d leaky_relu / dx = 1 if x > 0 else negative_slope``."""
    x = _check_float(input, "leaky_relu_grad")
    slope = _check_real(negative_slope, "negative_slope", "leaky_relu_grad")
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))


def gelu_grad(input: Tensor, approximate: str = "none") -> Tensor:
    """Derivative of :func:`gelu`.

    ``"none"``: ``Phi(x) + x * phi(x)``, ``phi(x) = exp(-x^2/2) / sqrt(2 pi)``.
    ``"tanh"``: ``s + 2 x s (1 - s) u'`` with ``s = sigma(2u)``, ``u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)``.
    Limits: 0 at -inf, 1 at +inf (non-monotone: slightly negative around x = -1.5...-0.75 for "none").
    """
    x = _check_float(input, "gelu_grad")
    check_choice(approximate, GELU_APPROXIMATIONS, "approximate", "gelu_grad")
    if approximate == "tanh":
        def f(z: Tensor) -> Tensor:
            s = sigmoid(2.0 * _SQRT_2_OVER_PI * (z + _GELU_TANH_COEF * z**3))
            du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_COEF * z * z)
            return s + 2.0 * z * s * (1.0 - s) * du
    else:
        def f(z: Tensor) -> Tensor:
            return 0.5 * torch.erfc(-z * _INV_SQRT_2) + z * torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return _finite_or_limit(x, f, 1.0, 0.0)


def silu_grad(input: Tensor) -> Tensor:
    """``d silu / dx = sigma(x) (1 + x (1 - sigma(x)))``; limits 0 at -inf and 1 at +inf."""
    x = _check_float(input, "silu_grad")

    def f(z: Tensor) -> Tensor:
        s = sigmoid(z)
        return s * (1.0 + z * (1.0 - s))

    return _finite_or_limit(x, f, 1.0, 0.0)


def elu_grad(input: Tensor, alpha: float = 1.0) -> Tensor:
    """``d elu / dx = 1 if x > 0 else alpha * exp(x)`` (= elu(x) + alpha for x <= 0)."""
    x = _check_float(input, "elu_grad")
    a = _check_real(alpha, "alpha", "elu_grad", minimum=0.0)
    pos = x > 0
    return torch.where(pos, torch.ones_like(x), a * torch.exp(torch.where(pos, torch.zeros_like(x), x)))


def softmax_backward(grad_output: Tensor, output: Tensor, dim: int) -> Tensor:
    """Vector-Jacobian product of softmax: ``grad_input = y * (g - sum_j g_j y_j)``.

    The Jacobian ``dy_i/dx_k = y_i (delta_ik - y_k)`` (:func:`softmax_jacobian`) is never formed.
    PyTorch: ``torch._softmax_backward_data(grad_output, output, dim, output.dtype)``.
    """
    g = _check_float(grad_output, "softmax_backward")
    y = check_tensor(output, "output", "softmax_backward")
    if g.shape != y.shape:
        raise ValueError(f"softmax_backward: grad_output and output must have the same shape, got "
                         f"{tuple(g.shape)} and {tuple(y.shape)}")
    d = _check_dim(dim, y.dim(), "softmax_backward")
    return y * (g - (g * y).sum(dim=d, keepdim=True))


def log_softmax_backward(grad_output: Tensor, output: Tensor, dim: int) -> Tensor:
    """Vector-Jacobian product of log-softmax: ``grad_input = g - exp(y) * sum_j g_j``.

    With ``g = -onehot(target)`` (the NLL loss) this is ``softmax(x) - onehot``: the famous
    ``p - y`` gradient of cross-entropy. PyTorch: ``torch._log_softmax_backward_data``.
    """
    g = _check_float(grad_output, "log_softmax_backward")
    y = check_tensor(output, "output", "log_softmax_backward")
    if g.shape != y.shape:
        raise ValueError(f"log_softmax_backward: grad_output and output must have the same shape, got "
                         f"{tuple(g.shape)} and {tuple(y.shape)}")
    d = _check_dim(dim, y.dim(), "log_softmax_backward")
    return g - torch.exp(y) * g.sum(dim=d, keepdim=True)


def softmax_jacobian(output: Tensor) -> Tensor:
    """Full Jacobian ``J = diag(y) - y y^T`` of softmax for a 1-D probability vector ``y``."""
    y = check_tensor(output, "output", "softmax_jacobian")
    if y.dim() != 1:
        raise ValueError(f"softmax_jacobian: expected a 1-D output, got {y.dim()}-D with shape {tuple(y.shape)}")
    return torch.diag(y) - torch.outer(y, y)


#: Elementwise activation name -> (forward, analytic derivative). Keyword arguments are shared.
DERIVATIVES: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "gelu": (gelu, gelu_grad),
    "silu": (silu, silu_grad),
    "elu": (elu, elu_grad),
}
_SOFTMAXES = {"softmax": (softmax, softmax_backward), "log_softmax": (log_softmax, log_softmax_backward)}


class _AnalyticElementwise(torch.autograd.Function):
    """Forward with our function, backward with its analytic derivative: ``grad * f'(x)``."""

    @staticmethod
    def forward(ctx, input: Tensor, name: str, kwargs: dict) -> Tensor:
        ctx.save_for_backward(input)
        ctx.name, ctx.kwargs = name, kwargs
        return DERIVATIVES[name][0](input, **kwargs)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (input,) = ctx.saved_tensors
        return grad_output * DERIVATIVES[ctx.name][1](input, **ctx.kwargs), None, None


class _AnalyticSoftmax(torch.autograd.Function):
    """Softmax / log-softmax whose backward is the analytic vector-Jacobian product."""

    @staticmethod
    def forward(ctx, input: Tensor, name: str, dim: int) -> Tensor:
        out = _SOFTMAXES[name][0](input, dim)
        ctx.save_for_backward(out)
        ctx.name, ctx.dim = name, dim
        return out

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (out,) = ctx.saved_tensors
        return _SOFTMAXES[ctx.name][1](grad_output, out, ctx.dim), None, None


def analytic(name: str, input: Tensor, **kwargs: object) -> Tensor:
    """Apply activation ``name`` with its *analytic* derivative as the autograd backward.

    ``analytic("gelu", x, approximate="tanh")``; ``analytic("softmax", x, dim=-1)``. Use it with
    ``torch.autograd.gradcheck`` to check a derivative against finite differences.
    """
    check_choice(name, [*DERIVATIVES, *_SOFTMAXES], "activation name", "analytic")
    if name in _SOFTMAXES:
        if set(kwargs) != {"dim"}:
            raise TypeError(f"analytic: {name} takes exactly one keyword argument dim, got {sorted(kwargs)}")
        x = _check_float(input, "analytic")
        return _AnalyticSoftmax.apply(x, name, _check_dim(kwargs["dim"], x.dim(), name))
    DERIVATIVES[name][0](check_tensor(input, "input", "analytic").new_empty(0), **kwargs)  # validates kwargs early
    return _AnalyticElementwise.apply(input, name, dict(kwargs))


# --------------------------------------------------------------------------- nn.Module wrappers
class _Activation(nn.Module):
    fn: Callable[..., Tensor]

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, input: Tensor) -> Tensor:
        return type(self).fn(input, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class Sigmoid(_Activation):
    """Module form of :func:`sigmoid` (``nn.Sigmoid``)."""

    fn = staticmethod(sigmoid)


class Tanh(_Activation):
    """Module form of :func:`tanh` (``nn.Tanh``)."""

    fn = staticmethod(tanh)


class ReLU(_Activation):
    """Module form of :func:`relu` (``nn.ReLU(inplace=False)``)."""

    fn = staticmethod(relu)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


class LeakyReLU(_Activation):
    """Module form of :func:`leaky_relu` (``nn.LeakyReLU(negative_slope=0.01, inplace=False)``)."""

    fn = staticmethod(leaky_relu)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(negative_slope=_check_real(negative_slope, "negative_slope", "LeakyReLU"),
                         inplace=inplace)


class GELU(_Activation):
    """Module form of :func:`gelu` (``nn.GELU(approximate="none")``)."""

    fn = staticmethod(gelu)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__(approximate=check_choice(approximate, GELU_APPROXIMATIONS, "approximate", "GELU"))


class SiLU(_Activation):
    """Module form of :func:`silu` (``nn.SiLU(inplace=False)``)."""

    fn = staticmethod(silu)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


class ELU(_Activation):
    """Module form of :func:`elu` (``nn.ELU(alpha=1.0, inplace=False)``)."""

    fn = staticmethod(elu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(alpha=_check_real(alpha, "alpha", "ELU", minimum=0.0), inplace=inplace)


class Softmax(_Activation):
    """Module form of :func:`softmax` (``nn.Softmax(dim)``; ``dim`` is required)."""

    fn = staticmethod(softmax)

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Softmax: dim must be an int, got {type(dim).__name__}")
        super().__init__(dim=dim)


class LogSoftmax(_Activation):
    """Module form of :func:`log_softmax` (``nn.LogSoftmax(dim)``; ``dim`` is required)."""

    fn = staticmethod(log_softmax)

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"LogSoftmax: dim must be an int, got {type(dim).__name__}")
        super().__init__(dim=dim)

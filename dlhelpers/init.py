"""Weight initialization from scratch, mirroring ``torch.nn.init``.

Every initializer fills a tensor **in place** (trailing underscore), under ``torch.no_grad()``
so it works on an ``nn.Parameter``, and returns the tensor. Randomness comes only from the
tensor's own sampling primitives (``Tensor.uniform_`` / ``Tensor.normal_``) with an optional
``generator=``, so with the same generator state our values equal PyTorch's bit for bit.

What is "from scratch" here is the part that carries the ideas: fans, gains and the scale of
the distribution.

==========================  ===========================================  ===============================
function                    distribution                                 PyTorch counterpart
==========================  ===========================================  ===============================
``constant_/zeros_/ones_``  every entry = val / 0 / 1                    ``nn.init.constant_`` etc.
``uniform_(a, b)``          U(a, b)                                      ``nn.init.uniform_``
``normal_(mean, std)``      N(mean, std^2)                               ``nn.init.normal_``
``trunc_normal_``           N(mean, std^2) restricted to [a, b]          ``nn.init.trunc_normal_``
``xavier_uniform_``         U(-b, b), b = gain*sqrt(6/(fan_in+fan_out))  ``nn.init.xavier_uniform_``
``xavier_normal_``          N(0, gain^2 * 2/(fan_in+fan_out))            ``nn.init.xavier_normal_``
``kaiming_uniform_``        U(-b, b), b = gain*sqrt(3/fan)               ``nn.init.kaiming_uniform_``
``kaiming_normal_``         N(0, gain^2/fan)                             ``nn.init.kaiming_normal_``
``lecun_uniform_``          U(-b, b), b = sqrt(3/fan_in)                 kaiming_uniform_, "linear"
``lecun_normal_``           N(0, 1/fan_in)                               kaiming_normal_, "linear"
``orthogonal_``             (semi-)orthogonal matrix times gain          ``nn.init.orthogonal_``
==========================  ===========================================  ===============================

Fans follow PyTorch's convention for a weight of shape ``[out, in, *kernel]`` (``nn.Linear``
stores ``[out_features, in_features]`` and computes ``x @ W.T``):
``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch

from dlhelpers._checks import check_choice, check_number, check_tensor

__all__ = [
    "LINEAR_FNS", "NONLINEARITIES", "calculate_gain", "calculate_fan_in_and_fan_out", "calculate_correct_fan",
    "constant_", "zeros_", "ones_", "uniform_", "normal_", "trunc_normal_",
    "xavier_std", "xavier_uniform_", "xavier_normal_", "kaiming_std", "kaiming_uniform_", "kaiming_normal_",
    "lecun_uniform_", "lecun_normal_", "orthogonal_",
]

FanMode = Literal["fan_in", "fan_out"]

#: Layers without a nonlinearity: gain 1 (same list as ``torch.nn.init.calculate_gain``).
LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
#: Every name ``calculate_gain`` accepts.
NONLINEARITIES = (*LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")


# --------------------------------------------------------------------------- argument checks
def _check_std(std: object, fn: str) -> float:
    std = check_number(std, "std", fn)
    if std < 0:
        raise ValueError(f"{fn}: std must be >= 0, got {std!r}")
    return std


def _check_generator(generator: object, fn: str) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: generator must be a torch.Generator or None, got {type(generator).__name__}")


def _empty(tensor: torch.Tensor, fn: str) -> bool:
    """PyTorch's convention: initializing a zero-element tensor warns and is a no-op."""
    if tensor.numel() == 0:
        warnings.warn(f"{fn}: initializing a zero-element tensor is a no-op", stacklevel=3)
        return True
    return False


# --------------------------------------------------------------------------- gains and fans
def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain: the factor that keeps the activation variance fixed through the nonlinearity.

    For ``y = f(x)`` with ``x ~ N(0, s^2)`` the gain ``g`` makes ``Var[f(x)] ~= s^2 / g^2`` undone:

    ==================== =====================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    sqrt(2)                 (ReLU keeps half of E[x^2])
    leaky_relu              sqrt(2 / (1 + slope^2)) (``param`` = slope, default 0.01)
    selu                    3/4                     (empirical; use "linear" for SNNs)
    ==================== =====================================

    PyTorch: ``torch.nn.init.calculate_gain``.
    """
    fn = "calculate_gain"
    if not isinstance(nonlinearity, str):
        raise TypeError(f"{fn}: nonlinearity must be a str, got {type(nonlinearity).__name__}")
    check_choice(nonlinearity, NONLINEARITIES, "nonlinearity", fn)
    if nonlinearity in LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"{fn}: negative_slope (param) must be an int or float, got {param!r}")
        else:
            slope = param
        return math.sqrt(2.0 / (1 + slope**2))
    return 3.0 / 4  # selu


def calculate_fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shaped ``[out, in, *kernel]``.

    ``fan_in = in * prod(kernel)`` (inputs summed into one output unit),
    ``fan_out = out * prod(kernel)`` (outputs one input unit feeds). Linear ``[out, in]``:
    ``(in, out)``; Conv2d ``[C_out, C_in/groups, kH, kW]``: ``(C_in/groups*kH*kW, C_out*kH*kW)``.

    PyTorch: ``torch.nn.init._calculate_fan_in_and_fan_out``.
    """
    fn = "calculate_fan_in_and_fan_out"
    check_tensor(tensor, "tensor", fn)
    if tensor.dim() < 2:
        raise ValueError(f"{fn}: fan in and fan out need a tensor with >= 2 dimensions [out, in, *kernel], "
                         f"got {tensor.dim()}-D with shape {tuple(tensor.shape)}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def calculate_correct_fan(tensor: torch.Tensor, mode: FanMode) -> int:
    """``fan_in`` or ``fan_out`` (case-insensitive ``mode``). PyTorch: ``nn.init._calculate_correct_fan``."""
    fn = "calculate_correct_fan"
    if not isinstance(mode, str):
        raise TypeError(f"{fn}: mode must be a str ('fan_in' or 'fan_out'), got {type(mode).__name__}")
    mode = check_choice(mode.lower(), ("fan_in", "fan_out"), "mode", fn)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_std(tensor: torch.Tensor, gain: float = 1.0) -> float:
    """Glorot & Bengio (2010): ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    The compromise between ``Var[W] = 1/fan_in`` (forward variance kept) and ``1/fan_out``
    (backward variance kept). Same arithmetic as PyTorch so the bounds agree bit for bit.
    """
    gain = check_number(gain, "gain", "xavier_std")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def kaiming_std(tensor: torch.Tensor, a: float = 0, mode: FanMode = "fan_in",
                nonlinearity: str = "leaky_relu") -> float:
    """He et al. (2015): ``std = gain / sqrt(fan)``; ``relu``: ``sqrt(2 / fan_in)``.

    ``a`` is the negative slope used when ``nonlinearity="leaky_relu"`` (PyTorch's default
    nonlinearity; with ``a=0`` it equals ``"relu"``).
    """
    fan = calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


# --------------------------------------------------------------------------- basic fills
def constant_(tensor: torch.Tensor, val: float) -> torch.Tensor:
    """Fill with ``val`` in place. PyTorch: ``torch.nn.init.constant_``."""
    check_tensor(tensor, "tensor", "constant_")
    val = check_number(val, "val", "constant_")
    with torch.no_grad():
        return tensor.fill_(val)


def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with 0 in place. PyTorch: ``torch.nn.init.zeros_``."""
    check_tensor(tensor, "tensor", "zeros_")
    with torch.no_grad():
        return tensor.zero_()


def ones_(tensor: torch.Tensor) -> torch.Tensor:
    """Fill with 1 in place. PyTorch: ``torch.nn.init.ones_``."""
    check_tensor(tensor, "tensor", "ones_")
    with torch.no_grad():
        return tensor.fill_(1.0)


def uniform_(tensor: torch.Tensor, a: float = 0.0, b: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with samples of ``U(a, b)`` (mean ``(a+b)/2``, variance ``(b-a)^2/12``).

    PyTorch: ``torch.nn.init.uniform_`` (same values for the same generator state).
    """
    fn = "uniform_"
    check_tensor(tensor, "tensor", fn)
    a, b = check_number(a, "a", fn), check_number(b, "b", fn)
    if a > b:
        raise ValueError(f"{fn}: expected a <= b, got a={a!r} > b={b!r}")
    _check_generator(generator, fn)
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with samples of ``N(mean, std^2)``. PyTorch: ``torch.nn.init.normal_`` (same values)."""
    fn = "normal_"
    check_tensor(tensor, "tensor", fn)
    mean, std = check_number(mean, "mean", fn), _check_std(std, fn)
    _check_generator(generator, fn)
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with ``N(mean, std^2)`` truncated to ``[a, b]`` (absolute bounds, not in units of std).

    Inverse-CDF sampling: ``u ~ U(Phi(alpha), Phi(beta))`` with ``alpha = (a-mean)/std``,
    ``beta = (b-mean)/std``, then ``x = mean + std * sqrt(2) * erfinv(2u - 1)``, clamped to
    ``[a, b]`` against round-off. Computed in float64, then copied into ``tensor``.

    PyTorch: ``torch.nn.init.trunc_normal_`` -- same distribution, but PyTorch uses rejection
    sampling, so the individual values differ (tested statistically, not bitwise).
    """
    fn = "trunc_normal_"
    check_tensor(tensor, "tensor", fn)
    mean, std = check_number(mean, "mean", fn), _check_std(std, fn)
    a, b = check_number(a, "a", fn), check_number(b, "b", fn)
    if a >= b:
        raise ValueError(f"{fn}: expected a < b, got a={a!r}, b={b!r}")
    if std == 0:
        raise ValueError(f"{fn}: std must be > 0 for a truncated normal, got {std!r}")
    _check_generator(generator, fn)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(f"{fn}: mean is more than 2 std from [a, b]; the distribution may be inaccurate",
                      stacklevel=2)
    lo, hi = _norm_cdf((a - mean) / std), _norm_cdf((b - mean) / std)
    with torch.no_grad():
        u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
        u.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)  # 2u - 1 directly
        x = u.erfinv_().mul_(std * math.sqrt(2.0)).add_(mean).clamp_(a, b)
        return tensor.copy_(x)


# --------------------------------------------------------------------------- Xavier / Glorot
def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot uniform: ``U(-bound, bound)``, ``bound = sqrt(3) * gain * sqrt(2/(fan_in+fan_out))``
    ``= gain * sqrt(6/(fan_in+fan_out))``.

    PyTorch: ``torch.nn.init.xavier_uniform_`` (same values for the same generator state).
    """
    check_tensor(tensor, "tensor", "xavier_uniform_")
    _check_generator(generator, "xavier_uniform_")
    if _empty(tensor, "xavier_uniform_"):
        return tensor
    bound = math.sqrt(3.0) * xavier_std(tensor, gain)  # U(-b, b) has std b / sqrt(3)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot normal: ``N(0, std^2)``, ``std = gain * sqrt(2/(fan_in+fan_out))``.

    PyTorch: ``torch.nn.init.xavier_normal_`` (same values for the same generator state).
    """
    check_tensor(tensor, "tensor", "xavier_normal_")
    _check_generator(generator, "xavier_normal_")
    if _empty(tensor, "xavier_normal_"):
        return tensor
    std = xavier_std(tensor, gain)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


# --------------------------------------------------------------------------- He / Kaiming
def kaiming_uniform_(tensor: torch.Tensor, a: float = 0, mode: FanMode = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: torch.Generator | None = None) -> torch.Tensor:
    """He uniform: ``U(-bound, bound)``, ``bound = sqrt(3) * gain / sqrt(fan)``; relu: ``sqrt(6/fan_in)``.

    ``mode="fan_in"`` keeps the forward activation variance, ``"fan_out"`` the backward
    gradient variance. PyTorch: ``torch.nn.init.kaiming_uniform_`` (same values).
    """
    check_tensor(tensor, "tensor", "kaiming_uniform_")
    _check_generator(generator, "kaiming_uniform_")
    if _empty(tensor, "kaiming_uniform_"):
        return tensor
    bound = math.sqrt(3.0) * kaiming_std(tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(tensor: torch.Tensor, a: float = 0, mode: FanMode = "fan_in",
                    nonlinearity: str = "leaky_relu", generator: torch.Generator | None = None) -> torch.Tensor:
    """He normal: ``N(0, std^2)``, ``std = gain / sqrt(fan)``; relu: ``sqrt(2/fan_in)``.

    PyTorch: ``torch.nn.init.kaiming_normal_`` (same values for the same generator state).
    """
    check_tensor(tensor, "tensor", "kaiming_normal_")
    _check_generator(generator, "kaiming_normal_")
    if _empty(tensor, "kaiming_normal_"):
        return tensor
    std = kaiming_std(tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)


# --------------------------------------------------------------------------- LeCun
def lecun_uniform_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """LeCun et al. (1998) uniform: ``U(-sqrt(3/fan_in), sqrt(3/fan_in))`` (variance ``1/fan_in``).

    No PyTorch function; equals ``kaiming_uniform_(t, mode="fan_in", nonlinearity="linear")``.
    (Keras/JAX ``lecun_uniform`` use the same bound.)
    """
    return kaiming_uniform_(tensor, 0, "fan_in", "linear", generator)


def lecun_normal_(tensor: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """LeCun normal: ``N(0, 1/fan_in)`` -- the init that SELU networks (SNNs) assume.

    No PyTorch function; equals ``kaiming_normal_(t, mode="fan_in", nonlinearity="linear")``.
    (Keras/JAX ``lecun_normal`` use a truncated normal with the same variance instead.)
    """
    return kaiming_normal_(tensor, 0, "fan_in", "linear", generator)


# --------------------------------------------------------------------------- orthogonal
def orthogonal_(tensor: torch.Tensor, gain: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Saxe et al. (2014): fill with a (semi-)orthogonal matrix times ``gain``.

    Flatten to ``[rows, cols] = [shape[0], prod(shape[1:])]``, draw ``A ~ N(0, 1)``, take
    ``A = QR`` (on ``A^T`` if ``rows < cols``), fix signs ``Q <- Q * sign(diag(R))`` so that Q is
    Haar-distributed. Singular values of the result are all ``gain``.

    PyTorch: ``torch.nn.init.orthogonal_`` (same values for the same generator state).
    """
    fn = "orthogonal_"
    check_tensor(tensor, "tensor", fn)
    gain = check_number(gain, "gain", fn)
    _check_generator(generator, fn)
    if tensor.dim() < 2:
        raise ValueError(f"{fn}: needs a tensor with >= 2 dimensions, got {tensor.dim()}-D "
                         f"with shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    rows, cols = tensor.shape[0], tensor.numel() // tensor.shape[0]
    flat = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    if rows < cols:
        flat.t_()
    q, r = torch.linalg.qr(flat)
    q *= torch.diag(r, 0).sign()
    if rows < cols:
        q.t_()
    with torch.no_grad():
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain)
    return tensor


# PyTorch's private names, so code written against torch.nn.init's internals works unchanged.
_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out
_calculate_correct_fan = calculate_correct_fan

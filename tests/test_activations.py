"""dlhelpers.activations vs torch / torch.nn.functional: forward, autograd through ours, analytic derivatives.

Inputs are drawn by hypothesis and include large magnitudes (±1e4), ±inf and signed zeros, in float64
and float32 (PyTorch's default float32 tolerances). Where PyTorch's GELU/SiLU return nan at ±inf
(``-inf * 0``), the documented limits are expected instead (see the module docstring).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlhelpers import activations as A

INF = math.inf
DTYPES = [torch.float64, torch.float32]
ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "gelu", "gelu_tanh", "silu", "elu"]
#: Functions whose PyTorch forward is nan at -inf / backward nan at ±inf, where ours give the limits.
LIMIT_FIXED = {"gelu", "gelu_tanh", "silu"}


def _case(name: str, kw: dict) -> tuple:
    """(ours forward, ours analytic derivative, torch forward, kwargs) for a test-case name."""
    if name == "gelu_tanh":
        name, kw = "gelu", {**kw, "approximate": "tanh"}
    ours, grad = A.DERIVATIVES[name]
    theirs = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu,
              "gelu": F.gelu, "silu": F.silu, "elu": F.elu}[name]
    return ours, grad, theirs, kw


def _kwargs(name: str) -> st.SearchStrategy[dict]:
    if name == "leaky_relu":
        return st.builds(lambda s: {"negative_slope": s}, st.floats(-0.5, 0.5))
    if name == "elu":
        return st.builds(lambda a: {"alpha": a}, st.floats(0.0, 3.0))
    return st.just({})


def _values(dtype: torch.dtype, allow_inf: bool = True) -> st.SearchStrategy[float]:
    width = 32 if dtype == torch.float32 else 64
    special = [0.0, -0.0, 1e4, -1e4] + ([INF, -INF] if allow_inf else [])
    return st.one_of(st.floats(-10, 10, width=width), st.floats(-1e4, 1e4, width=width), st.sampled_from(special))


@st.composite
def tensors(draw, dtype: torch.dtype, min_dims: int = 0, max_dims: int = 3, allow_inf: bool = True) -> torch.Tensor:
    shape = draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims))
    n = math.prod(shape)
    vals = draw(st.lists(_values(dtype, allow_inf), min_size=n, max_size=n))
    return torch.tensor(vals, dtype=dtype).reshape(shape)


def _upstream(x: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)


def _patched_forward(name: str, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if name in LIMIT_FIXED:  # limit x*Phi(x) -> 0 and x*sigma(x) -> 0 as x -> -inf, -> x as x -> +inf
        ref = torch.where(torch.isneginf(x), torch.zeros_like(ref), ref)
        # torch's AVX512 float32 GELU kernel returns nan at +inf (its AVX2 kernel returns inf): measured on an
        # AMD EPYC with ATEN_CPU_CAPABILITY=avx512, tensor([0., inf]) -> tensor([0., nan])
        ref = torch.where(torch.isposinf(x), x, ref)
    return ref


def _patched_grad(name: str, x: torch.Tensor, ref: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    if name in LIMIT_FIXED:  # derivative -> 0 at -inf, -> 1 at +inf
        ref = torch.where(torch.isneginf(x), torch.zeros_like(ref), ref)
        ref = torch.where(torch.isposinf(x), g, ref)
    return ref


# --------------------------------------------------------------------------- elementwise parity
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
@given(data=st.data())
def test_forward_matches_torch(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
    x = data.draw(tensors(dtype))
    ours, _, theirs, kw = _case(name, data.draw(_kwargs(name)))
    y = ours(x, **kw)
    assert y.dtype == x.dtype and y.shape == x.shape
    torch.testing.assert_close(y, _patched_forward(name, x, theirs(x, **kw)), equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_autograd_through_ours_matches_torch(name: str, dtype: torch.dtype, data: st.DataObject,
                                             seed: int) -> None:
    x = data.draw(tensors(dtype))
    ours, _, theirs, kw = _case(name, data.draw(_kwargs(name)))
    g = _upstream(x, seed)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ga,) = torch.autograd.grad((ours(xa, **kw) * g).sum(), xa)
    (gb,) = torch.autograd.grad((theirs(xb, **kw) * g).sum(), xb)
    torch.testing.assert_close(ga, _patched_grad(name, x, gb, g), equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
@given(data=st.data())
def test_analytic_derivative_matches_torch_autograd(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
    x = data.draw(tensors(dtype))
    _, grad, theirs, kw = _case(name, data.draw(_kwargs(name)))
    xt = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(theirs(xt, **kw).sum(), xt)
    d = grad(x, **kw)
    assert d.dtype == x.dtype and d.shape == x.shape
    torch.testing.assert_close(d, _patched_grad(name, x, ref, torch.ones_like(x)), equal_nan=True)


@pytest.mark.parametrize("name", ELEMENTWISE)
@settings(max_examples=15)
@given(data=st.data())
def test_analytic_function_passes_gradcheck(name: str, data: st.DataObject) -> None:
    vals = st.floats(-6, 6).filter(lambda v: abs(v) > 1e-3)  # finite differences need distance from kinks
    shape = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    x = torch.tensor(data.draw(st.lists(vals, min_size=math.prod(shape), max_size=math.prod(shape))),
                     dtype=torch.float64).reshape(shape).requires_grad_()
    fn_name = "gelu" if name == "gelu_tanh" else name
    _, _, _, kw = _case(name, data.draw(_kwargs(name)))
    assert torch.autograd.gradcheck(lambda t: A.analytic(fn_name, t, **kw), (x,))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "silu", "elu"])
@given(x=tensors(torch.float64, min_dims=1))
def test_inplace_modifies_and_returns_input(name: str, x: torch.Tensor) -> None:
    ours, _, theirs, _ = _case(name, {})
    expected = _patched_forward(name, x, theirs(x.clone()))
    buf = x.clone()
    out = ours(buf, inplace=True)
    assert out is buf
    torch.testing.assert_close(buf, expected, equal_nan=True)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_propagates(name: str) -> None:
    ours, _, _, kw = _case(name, {})
    assert torch.isnan(ours(torch.tensor([math.nan, 1.0], dtype=torch.float64), **kw))[0]


def test_sigmoid_tanh_do_not_overflow_and_keep_small_values_exact() -> None:
    x = torch.tensor([-1e4, -745.0, -1e-12, 1e-12, 1e4], dtype=torch.float64)
    assert torch.isfinite(A.sigmoid(x)).all() and torch.isfinite(A.tanh(x)).all()
    torch.testing.assert_close(A.tanh(x[2:4]), x[2:4], rtol=1e-15, atol=0)  # expm1: no cancellation
    assert A.sigmoid(x)[1] > 0  # exp(-745) is subnormal, not flushed to 0 by 1/(1+inf)


@given(x=tensors(torch.float64, min_dims=1, allow_inf=False))
def test_tanh_identity_with_sigmoid(x: torch.Tensor) -> None:
    torch.testing.assert_close(A.tanh(x), 2 * A.sigmoid(2 * x) - 1, atol=1e-12, rtol=1e-12)


# --------------------------------------------------------------------------- softmax family
@st.composite
def tensor_and_dim(draw, dtype: torch.dtype, allow_inf: bool = True) -> tuple[torch.Tensor, int]:
    x = draw(tensors(dtype, min_dims=0, max_dims=4, allow_inf=allow_inf))
    n = max(x.dim(), 1)
    return x, draw(st.integers(-n, n - 1))


SOFTMAXES = {"softmax": (A.softmax, F.softmax, A.softmax_backward),
             "log_softmax": (A.log_softmax, F.log_softmax, A.log_softmax_backward)}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", SOFTMAXES)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_softmax_forward_and_autograd_match_torch(name: str, dtype: torch.dtype, data: st.DataObject,
                                                  seed: int) -> None:
    ours, theirs, _ = SOFTMAXES[name]
    x, dim = data.draw(tensor_and_dim(dtype))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa, dim), theirs(xb, dim)
    torch.testing.assert_close(ya, yb, equal_nan=True)
    g = _upstream(x, seed)
    (ga,) = torch.autograd.grad((ya * g).sum(), xa)
    (gb,) = torch.autograd.grad((yb * g).sum(), xb)
    torch.testing.assert_close(ga, gb, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", SOFTMAXES)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_softmax_backward_matches_torch(name: str, dtype: torch.dtype, data: st.DataObject, seed: int) -> None:
    _, theirs, backward = SOFTMAXES[name]
    x, dim = data.draw(tensor_and_dim(dtype, allow_inf=False))
    g = _upstream(x, seed)
    xt = x.clone().requires_grad_()
    y = theirs(xt, dim)
    (ref,) = torch.autograd.grad(y, xt, g)
    ours = backward(g, y.detach(), dim)
    torch.testing.assert_close(ours, ref)
    private = torch._softmax_backward_data if name == "softmax" else torch._log_softmax_backward_data
    torch.testing.assert_close(ours, private(g, y.detach(), dim % max(x.dim(), 1), dtype))


@pytest.mark.parametrize("name", SOFTMAXES)
@settings(max_examples=15)
@given(data=st.data())
def test_analytic_softmax_passes_gradcheck(name: str, data: st.DataObject) -> None:
    x, dim = data.draw(tensor_and_dim(torch.float64, allow_inf=False))
    x = (x.clamp(-30, 30) / 10).requires_grad_()  # finite differences want moderate logits
    assert torch.autograd.gradcheck(lambda t: A.analytic(name, t, dim=dim), (x,))


@given(x=tensors(torch.float64, min_dims=1, max_dims=1, allow_inf=False))
def test_softmax_jacobian_matches_autograd(x: torch.Tensor) -> None:
    ref = torch.autograd.functional.jacobian(lambda t: F.softmax(t, 0), x)
    torch.testing.assert_close(A.softmax_jacobian(F.softmax(x, 0)), ref)


@given(logits=tensors(torch.float64, min_dims=2, max_dims=2, allow_inf=False), seed=st.integers(0, 2**31 - 1))
def test_cross_entropy_gradient_is_p_minus_y(logits: torch.Tensor, seed: int) -> None:
    n, c = logits.shape
    target = torch.randint(c, (n,), generator=torch.Generator().manual_seed(seed))
    onehot = F.one_hot(target, c).to(logits.dtype)
    ours = A.log_softmax_backward(-onehot / n, A.log_softmax(logits, 1), 1)
    xt = logits.clone().requires_grad_()
    (ref,) = torch.autograd.grad(F.cross_entropy(xt, target), xt)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours, (F.softmax(logits, 1) - onehot) / n)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@given(data=st.data(), keepdim=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_logsumexp_matches_torch(dtype: torch.dtype, data: st.DataObject, keepdim: bool, seed: int) -> None:
    x, dim = data.draw(tensor_and_dim(dtype))
    if x.dim() == 0:
        x = x.reshape(1)
        dim = dim % 1
    torch.testing.assert_close(A.logsumexp(x, dim, keepdim), torch.logsumexp(x, dim, keepdim), equal_nan=True)
    # Gradients on finite inputs; the reference runs in float64 because torch's float32 backward,
    # exp(x - lse), loses ~1e-4 relative precision at |x| = 1e4 (lse is rounded to the float32 grid).
    xf = x.nan_to_num(posinf=50.0, neginf=-50.0)
    xa, xb = xf.clone().requires_grad_(), xf.double().requires_grad_()
    ya, yb = A.logsumexp(xa, dim, keepdim), torch.logsumexp(xb, dim, keepdim)
    g = _upstream(ya, seed)
    ref = torch.autograd.grad(yb, xb, g.double())[0].to(dtype)
    torch.testing.assert_close(torch.autograd.grad(ya, xa, g)[0], ref)


def test_naive_softmax_overflows_where_stable_does_not() -> None:
    small = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(A.softmax_naive(small, 1), F.softmax(small, 1))
    big = torch.tensor([[1000.0, 999.0, 0.0]], dtype=torch.float64)
    assert torch.isnan(A.softmax_naive(big, 1)).any()
    torch.testing.assert_close(A.softmax(big, 1), F.softmax(big, 1))
    assert torch.isfinite(A.log_softmax(big, 1)).all()


def test_softmax_dtype_argument_and_empty_inputs() -> None:
    x = torch.randn(3, 4, dtype=torch.float32)
    torch.testing.assert_close(A.softmax(x, 1, dtype=torch.float64), F.softmax(x, 1, dtype=torch.float64))
    torch.testing.assert_close(A.log_softmax(x, 0, dtype=torch.float64), F.log_softmax(x, 0, dtype=torch.float64))
    for shape in [(3, 0), (0, 3)]:
        e = torch.empty(shape)
        assert A.softmax(e, 1).shape == F.softmax(e, 1).shape
        assert A.log_softmax(e, 0).shape == F.log_softmax(e, 0).shape


# --------------------------------------------------------------------------- modules
MODULES = [(A.Sigmoid(), nn.Sigmoid()), (A.Tanh(), nn.Tanh()), (A.ReLU(), nn.ReLU()),
           (A.LeakyReLU(0.2), nn.LeakyReLU(0.2)), (A.GELU(), nn.GELU()), (A.GELU("tanh"), nn.GELU("tanh")),
           (A.SiLU(), nn.SiLU()), (A.ELU(0.7), nn.ELU(0.7)), (A.Softmax(-1), nn.Softmax(-1)),
           (A.LogSoftmax(0), nn.LogSoftmax(0))]


@pytest.mark.parametrize("ours,theirs", MODULES, ids=[type(m[0]).__name__ for m in MODULES])
@given(x=tensors(torch.float64, min_dims=1, allow_inf=False))
def test_modules_match_torch(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    torch.testing.assert_close(ya, yb)
    torch.testing.assert_close(torch.autograd.grad(ya.sum(), xa)[0], torch.autograd.grad(yb.sum(), xb)[0])


def test_module_repr_shows_arguments() -> None:
    assert repr(A.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(A.ELU(0.5)) == "ELU(alpha=0.5, inplace=False)"
    assert repr(A.Softmax(1)) == "Softmax(dim=1)"


# --------------------------------------------------------------------------- errors
ALL_FUNCS = [A.sigmoid, A.tanh, A.relu, A.leaky_relu, A.gelu, A.silu, A.elu, A.sigmoid_grad, A.tanh_grad,
             A.relu_grad, A.leaky_relu_grad, A.gelu_grad, A.silu_grad, A.elu_grad]


@pytest.mark.parametrize("fn", ALL_FUNCS + [lambda x: A.softmax(x, 0), lambda x: A.log_softmax(x, 0),
                                            lambda x: A.logsumexp(x, 0)])
def test_non_tensor_input_raises(fn) -> None:
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        fn([1.0, 2.0])


@pytest.mark.parametrize("fn", [f for f in ALL_FUNCS if f not in (A.relu, A.relu_grad)])
def test_integer_input_raises(fn) -> None:
    with pytest.raises(TypeError, match="floating-point tensor, got dtype torch.int64"):
        fn(torch.tensor([1, 2]))


@pytest.mark.parametrize("fn", [A.gelu, A.gelu_grad, lambda x, approximate: A.GELU(approximate)(x)])
def test_unknown_gelu_approximation_raises(fn) -> None:
    with pytest.raises(ValueError, match=r"unknown approximate 'fast'; expected one of \['none', 'tanh'\]"):
        fn(torch.zeros(2), approximate="fast")


@pytest.mark.parametrize("fn", [A.softmax, A.log_softmax, A.logsumexp, A.softmax_naive])
@pytest.mark.parametrize("shape,dim", [((2, 3), 2), ((2, 3), -3), ((), 1)])
def test_dim_out_of_range_raises(fn, shape: tuple, dim: int) -> None:
    with pytest.raises(ValueError, match=r"dim must be in \[-\d, \d\] for a \d-D input, got -?\d"):
        fn(torch.zeros(shape), dim)


@pytest.mark.parametrize("dim", [None, 1.0, True])
def test_dim_not_int_raises(dim: object) -> None:
    with pytest.raises(TypeError, match="softmax: dim must be an int"):
        A.softmax(torch.zeros(2, 2), dim)
    with pytest.raises(TypeError, match="Softmax: dim must be an int"):
        A.Softmax(dim)


def test_backward_dim_out_of_range_and_shape_mismatch_raise() -> None:
    y = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"softmax_backward: dim must be in \[-2, 1\]"):
        A.softmax_backward(y, y, 2)
    with pytest.raises(ValueError, match=r"log_softmax_backward: grad_output and output must have the same shape"):
        A.log_softmax_backward(torch.zeros(3, 2), y, 0)


@pytest.mark.parametrize("fn", [A.elu, A.elu_grad, lambda x, alpha: A.ELU(alpha)(x)])
def test_negative_alpha_raises(fn) -> None:
    with pytest.raises(ValueError, match=r"alpha must be >= 0.0, got -1.0"):
        fn(torch.zeros(2), alpha=-1.0)


@pytest.mark.parametrize("bad,err,msg", [("1", TypeError, "alpha must be a real number, got str"),
                                         (math.nan, ValueError, "alpha must be finite, got nan"),
                                         (True, TypeError, "got bool")])
def test_bad_alpha_type_or_value_raises(bad: object, err: type, msg: str) -> None:
    with pytest.raises(err, match=msg):
        A.elu(torch.zeros(2), alpha=bad)


def test_bad_negative_slope_raises() -> None:
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a real number, got NoneType"):
        A.leaky_relu(torch.zeros(2), None)
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be finite, got inf"):
        A.LeakyReLU(math.inf)


def test_softmax_non_float_dtype_raises() -> None:
    with pytest.raises(TypeError, match="softmax: dtype must be a floating-point dtype, got torch.int64"):
        A.softmax(torch.zeros(2), 0, dtype=torch.int64)


def test_softmax_jacobian_needs_1d() -> None:
    with pytest.raises(ValueError, match="softmax_jacobian: expected a 1-D output, got 2-D"):
        A.softmax_jacobian(torch.zeros(2, 2))


def test_analytic_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="analytic: unknown activation name 'swish'"):
        A.analytic("swish", torch.zeros(2))
    with pytest.raises(TypeError, match="softmax takes exactly one keyword argument dim"):
        A.analytic("softmax", torch.zeros(2))
    with pytest.raises(ValueError, match="gelu: unknown approximate"):
        A.analytic("gelu", torch.zeros(2), approximate="fast")

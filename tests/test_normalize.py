"""dlhelpers.normalize vs full-tensor statistics, torchvision's normalize and scikit-learn's MinMaxScaler.

float64 throughout. Measured: streaming mean/std vs full-tensor <= 1e-15 relative; normalize exact;
denormalize round trip <= 1e-15; minmax vs sklearn <= 1e-15.
"""

import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import MinMaxScaler
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

from dlhelpers import normalize as N

DT = torch.float64


@st.composite
def datasets(draw, max_n=40):
    """[N, C, H, W] float64 data with a random offset/scale per channel, plus a batch size."""
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    scale = torch.rand(c, generator=g, dtype=DT) * 10
    offset = torch.randn(c, generator=g, dtype=DT) * 100  # a large offset breaks E[x^2]-E[x]^2
    x = torch.randn(n, c, h, w, generator=g, dtype=DT) * scale.view(1, c, 1, 1) + offset.view(1, c, 1, 1)
    return x, draw(st.integers(1, max_n))


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50))
def test_welford_matches_var_mean(values):
    n, mean, m2 = N.welford(values)
    var_t, mean_t = torch.var_mean(torch.tensor(values, dtype=DT), unbiased=False)
    assert n == len(values)
    assert_close(torch.tensor(mean, dtype=DT), mean_t, atol=1e-9, rtol=1e-12)
    assert_close(torch.tensor(m2 / n, dtype=DT), var_t, atol=1e-9, rtol=1e-9)


@given(datasets(), st.booleans())
def test_channel_stats_streaming_matches_full_tensor(data, unbiased):
    x, batch_size = data
    if unbiased and x[:, 0].numel() < 2:
        return
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=batch_size)
    mean, std = N.channel_stats(loader, unbiased=unbiased)
    assert_close(mean, x.mean(dim=(0, 2, 3)), atol=1e-12, rtol=1e-12)
    assert_close(std, x.std(dim=(0, 2, 3), unbiased=unbiased), atol=1e-12, rtol=1e-10)


@given(datasets(), st.integers(1, 4))
def test_running_stats_merge_of_parts_equals_whole(data, parts):
    x, _ = data
    chunks = x.tensor_split(parts)
    merged = N.RunningStats()
    for chunk in chunks:  # e.g. one accumulator per worker, merged at the end
        merged.merge(N.RunningStats().update(chunk))
    whole = N.RunningStats().update(x)
    assert merged.count == whole.count == x[:, 0].numel()
    assert_close(merged.mean, whole.mean, atol=1e-12, rtol=1e-12)
    assert_close(merged.var(), x.var(dim=(0, 2, 3), unbiased=False), atol=1e-12, rtol=1e-10)


def test_running_stats_channel_dim_last_and_float32_input():
    x = torch.rand(7, 5, 3)  # [N, L, C], float32 data, statistics in float64
    s = N.RunningStats(channel_dim=2).update(x[:3]).update(x[3:])
    assert s.mean.dtype == DT
    assert_close(s.mean, x.double().mean(dim=(0, 1)))
    assert_close(s.std(unbiased=True), x.double().std(dim=(0, 1)))


@given(datasets(max_n=4), st.booleans(), st.data())
def test_normalize_matches_torchvision_forward_backward(data, per_channel, draw):
    x, _ = data
    c = x.shape[1]
    k = c if per_channel else 1
    mean = draw.draw(st.lists(st.floats(-5, 5), min_size=k, max_size=k))
    std = draw.draw(st.lists(st.floats(0.1, 5), min_size=k, max_size=k))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = N.normalize(xa, mean, std)
    yb = TF.normalize(xb, mean * (c // k), std * (c // k))  # torchvision wants one value per channel
    assert_close(ya, yb, atol=0, rtol=0)
    assert_close(N.Normalize(mean, std)(x), T.Normalize(mean * (c // k), std * (c // k))(x), atol=0, rtol=0)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert_close(xa.grad, xb.grad, atol=0, rtol=0)


@given(datasets(max_n=4), st.data())
def test_denormalize_inverts_normalize(data, draw):
    x, _ = data
    c = x.shape[1]
    mean = draw.draw(st.lists(st.floats(-5, 5), min_size=c, max_size=c))
    std = draw.draw(st.lists(st.floats(0.1, 5), min_size=c, max_size=c))
    out = N.normalize(x, mean, std)
    assert_close(N.denormalize(out, mean, std), x, atol=1e-12, rtol=1e-12)
    inv = TF.normalize(out, [-m / s for m, s in zip(mean, std)], [1 / s for s in std])
    assert_close(N.denormalize(out, mean, std), inv, atol=1e-10, rtol=1e-10)
    t = N.Normalize(mean, std)
    assert_close(t.inverse(t(x)), x, atol=1e-12, rtol=1e-12)


def test_normalize_inplace_and_from_loader():
    x = torch.rand(20, 3, 4, 4, dtype=DT) * 3 + 1
    t = N.Normalize.from_loader(DataLoader(TensorDataset(x), batch_size=6))
    z = t(x)
    assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=DT), atol=1e-12, rtol=0)
    assert_close(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=DT))
    y = x.clone()
    out = N.normalize(y, t.mean, t.std, inplace=True)
    assert out is y and torch.equal(out, z)
    assert repr(t).startswith("Normalize(mean=[")


@given(st.integers(1, 30), st.integers(1, 5), st.floats(-3, 3), st.floats(0.1, 4), st.integers(0, 2**31))
def test_minmax_matches_sklearn(n, d, a, width, seed):
    g = torch.Generator().manual_seed(seed)
    x_train = torch.randn(n, d, generator=g, dtype=DT) * 5
    x_train[:, 0] = 2.0  # one constant feature
    x_test = torch.randn(7, d, generator=g, dtype=DT) * 5
    sk = MinMaxScaler(feature_range=(a, a + width)).fit(x_train.numpy())
    lo, hi = N.fit_minmax(x_train)
    assert_close(N.minmax_scale(x_train, feature_range=(a, a + width)),
                 torch.from_numpy(sk.transform(x_train.numpy())), atol=1e-12, rtol=1e-12)
    assert_close(N.minmax_scale(x_test, lo, hi, (a, a + width)),
                 torch.from_numpy(sk.transform(x_test.numpy())), atol=1e-12, rtol=1e-12)


def test_minmax_global_and_gradient():
    x = torch.rand(4, 3, dtype=DT, requires_grad=True)
    y = N.minmax_scale(x, dim=None)
    assert_close(y.min(), torch.tensor(0.0, dtype=DT))
    assert_close(y.max(), torch.tensor(1.0, dtype=DT))
    lo, hi = [t.detach() for t in N.fit_minmax(x, None)]
    y2 = N.minmax_scale(x, lo, hi)  # fixed statistics: gradient is 1 / (max - min)
    y2.sum().backward()
    assert_close(x.grad, torch.full_like(x, 1 / float(hi - lo)))


def test_errors():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"normalize: std must be non-zero"):
        N.normalize(x, [0.5] * 3, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"normalize: mean must have 1 or 3 \(channels\) values, got 2"):
        N.normalize(x, [0.5, 0.5], [1.0] * 3)
    with pytest.raises(ValueError, match=r"normalize: expected a tensor \[..., C, H, W\]"):
        N.normalize(torch.rand(4, 4), 0.5, 0.5)
    with pytest.raises(TypeError, match=r"normalize: expected a floating-point tensor"):
        N.normalize(torch.zeros(3, 2, 2, dtype=torch.uint8), 0.5, 0.5)
    with pytest.raises(TypeError, match=r"normalize: tensor must be a torch.Tensor"):
        N.normalize([1.0], 0.5, 0.5)
    with pytest.raises(ValueError, match=r"denormalize: std must have 1 or 3 \(channels\) values, got 4"):
        N.denormalize(x, 0.5, [1.0] * 4)
    with pytest.raises(ValueError, match=r"Normalize: mean and std must have the same length"):
        N.Normalize([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match=r"channel_stats: the loader yielded no data"):
        N.channel_stats([])
    with pytest.raises(ValueError, match=r"RunningStats.update: batch needs a channel axis 1"):
        N.RunningStats().update(torch.rand(5))
    with pytest.raises(ValueError, match=r"RunningStats: expected 3 channels, got 2"):
        N.RunningStats().update(x).update(torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"RunningStats: no data seen yet"):
        N.RunningStats().std()
    with pytest.raises(ValueError, match=r"RunningStats: unbiased variance needs >= 2 values"):
        N.RunningStats().update(torch.rand(1, 2)).var(unbiased=True)
    with pytest.raises(ValueError, match=r"minmax_scale: feature_range must be increasing"):
        N.minmax_scale(x, feature_range=(1, 0))
    with pytest.raises(ValueError, match=r"minmax_scale: pass both data_min and data_max"):
        N.minmax_scale(x, data_min=torch.zeros(1))
    with pytest.raises(TypeError, match=r"fit_minmax: x must be a torch.Tensor"):
        N.fit_minmax([1, 2])


@settings(max_examples=10)
@given(datasets())
def test_naive_one_pass_formula_is_worse_than_welford(data):
    # E[x^2] - E[x]^2 in float32 loses digits when |mean| >> std; Welford/Chan in float32 does not
    x, batch_size = data
    x32 = x.float()
    truth = x.var(dim=(0, 2, 3), unbiased=False)
    naive = (x32**2).mean(dim=(0, 2, 3)) - x32.mean(dim=(0, 2, 3)) ** 2
    stats = N.RunningStats(dtype=torch.float32)
    for chunk in x32.split(batch_size):
        stats.update(chunk)
    err_naive = (naive.double() - truth).abs().max()
    err_chan = (stats.var().double() - truth).abs().max()
    assert err_chan <= err_naive + 1e-3 * truth.max() + 1e-6

"""Normalization and standardization from scratch: streaming statistics, min-max scaling, ``Normalize``.

=============================  =================================================  ======================
ours                           reference                                          agreement (float64)
=============================  =================================================  ======================
``welford``                    ``torch.var_mean`` (one value at a time)           1e-12
``RunningStats`` (Chan merge)  ``x.mean(dims)``, ``x.var(dims)`` on the full data  1e-12
``channel_stats(loader)``      same, over the concatenated loader                 1e-12
``normalize`` / ``Normalize``  ``torchvision.transforms.v2.functional.normalize``  exact
``denormalize``                ``normalize(x, -mean/std, 1/std)`` / the identity  1e-12
``minmax_scale``               ``sklearn.preprocessing.MinMaxScaler``             1e-12
=============================  =================================================  ======================

Statistics are always estimated on the *training* split and then applied unchanged to validation and
test data (see notebook 01.2 for what goes wrong otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from dlhelpers._checks import check_tensor

__all__ = ["welford", "RunningStats", "channel_stats", "normalize", "denormalize", "Normalize",
           "minmax_scale", "fit_minmax"]

Stat = float | Sequence[float] | torch.Tensor


def welford(values: Iterable[float]) -> tuple[int, float, float]:
    """Welford's one-pass algorithm over scalars: returns ``(n, mean, M2)``; variance = ``M2 / n``.

    For each new value ``x``: ``n += 1``, ``delta = x - mean``, ``mean += delta / n``,
    ``M2 += delta * (x - mean)`` (old and new mean). Numerically stable, unlike ``E[x^2] - E[x]^2``.
    Reference: ``torch.var_mean(x, unbiased=False)``.
    """
    n, mean, m2 = 0, 0.0, 0.0
    for x in values:
        n += 1
        delta = float(x) - mean
        mean += delta / n
        m2 += delta * (float(x) - mean)
    return n, mean, m2


class RunningStats:
    """Per-channel count, mean and M2 (sum of squared deviations), updated one batch at a time.

    A batch ``B`` (``n_b`` values per channel, mean ``m_b``, ``M2_b``) is merged into the running state
    ``(n_a, m_a, M2_a)`` with Chan et al.'s parallel formula:

        n = n_a + n_b,   d = m_b - m_a,   m = m_a + d n_b / n,   M2 = M2_a + M2_b + d^2 n_a n_b / n

    Every value of the batch is used once and the result equals the statistics of all data seen (up to
    rounding), whatever the batch sizes. ``channel_dim`` is the channel axis of each batch (1 for
    ``[N, C, H, W]``); all other axes are reduced. Computations run in ``dtype`` (float64 by default).
    """

    def __init__(self, channel_dim: int = 1, dtype: torch.dtype = torch.float64) -> None:
        self.channel_dim, self.dtype = channel_dim, dtype
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def _batch_stats(self, x: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        check_tensor(x, "batch", "RunningStats.update")
        if x.dim() <= self.channel_dim:
            raise ValueError(f"RunningStats.update: batch needs a channel axis {self.channel_dim}, got shape "
                             f"{tuple(x.shape)}")
        x = x.to(self.dtype).movedim(self.channel_dim, 0).reshape(x.shape[self.channel_dim], -1)
        mean = x.mean(dim=1)
        return x.shape[1], mean, ((x - mean[:, None]) ** 2).sum(dim=1)

    def update(self, x: torch.Tensor) -> RunningStats:
        """Merge one batch; returns ``self`` so calls chain."""
        n_b, mean_b, m2_b = self._batch_stats(x)
        return self._merge(n_b, mean_b, m2_b)

    def merge(self, other: RunningStats) -> RunningStats:
        """Merge another accumulator (e.g. from another worker) into this one."""
        if other.count == 0:
            return self
        return self._merge(other.count, other.mean, other.m2)  # type: ignore[arg-type]

    def _merge(self, n_b: int, mean_b: torch.Tensor, m2_b: torch.Tensor) -> RunningStats:
        if n_b == 0:
            return self
        if self.mean is None:
            self.count, self.mean, self.m2 = n_b, mean_b.clone(), m2_b.clone()
            return self
        if mean_b.shape != self.mean.shape:
            raise ValueError(f"RunningStats: expected {self.mean.numel()} channels, got {mean_b.numel()}")
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / n)
        self.count = n
        return self

    def var(self, unbiased: bool = False) -> torch.Tensor:
        """``M2 / n`` (population) or ``M2 / (n - 1)`` (``unbiased=True``, Bessel's correction)."""
        if self.mean is None:
            raise ValueError("RunningStats: no data seen yet")
        if unbiased and self.count < 2:
            raise ValueError(f"RunningStats: unbiased variance needs >= 2 values per channel, got {self.count}")
        return self.m2 / (self.count - 1 if unbiased else self.count)

    def std(self, unbiased: bool = False) -> torch.Tensor:
        """Square root of :meth:`var`."""
        return self.var(unbiased).sqrt()


def channel_stats(loader: Iterable, channel_dim: int = 1, unbiased: bool = False,
                  dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(mean, std)`` of all images a loader yields, in ONE pass, never holding the dataset.

    Batches may be tensors or ``(x, y, ...)`` tuples (the first element is used). Equivalent to
    ``X.mean(dims)`` and ``X.std(dims, unbiased=...)`` of the concatenated data (dims = all but channels).
    """
    stats = RunningStats(channel_dim, dtype)
    for batch in loader:
        stats.update(batch[0] if isinstance(batch, list | tuple) else batch)
    if stats.count == 0:
        raise ValueError("channel_stats: the loader yielded no data")
    return stats.mean, stats.std(unbiased)  # type: ignore[return-value]


def _as_channel_tensor(v: Stat, img: torch.Tensor, name: str, fn: str) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=img.dtype, device=img.device).reshape(-1)
    c = img.shape[-3]
    if t.numel() not in (1, c):
        raise ValueError(f"{fn}: {name} must have 1 or {c} (channels) values, got {t.numel()}")
    return t.reshape(-1, 1, 1)


def _check_image(img: object, fn: str) -> torch.Tensor:
    check_tensor(img, "tensor", fn)
    if img.dim() < 3:
        raise ValueError(f"{fn}: expected a tensor [..., C, H, W] (>= 3-D), got shape {tuple(img.shape)}")
    if not img.is_floating_point():
        raise TypeError(f"{fn}: expected a floating-point tensor, got {img.dtype}")
    return img


def normalize(tensor: torch.Tensor, mean: Stat, std: Stat, inplace: bool = False) -> torch.Tensor:
    """Per-channel standardization ``out[c] = (x[c] - mean[c]) / std[c]`` on ``[..., C, H, W]``.

    Counterpart: ``torchvision.transforms.v2.functional.normalize`` (same signature).
    """
    _check_image(tensor, "normalize")
    m = _as_channel_tensor(mean, tensor, "mean", "normalize")
    s = _as_channel_tensor(std, tensor, "std", "normalize")
    if (s == 0).any():
        raise ValueError(f"normalize: std must be non-zero, got {s.flatten().tolist()}")
    if inplace:
        return tensor.sub_(m).div_(s)
    return (tensor - m) / s


def denormalize(tensor: torch.Tensor, mean: Stat, std: Stat) -> torch.Tensor:
    """Inverse of :func:`normalize`, for display: ``x[c] = out[c] * std[c] + mean[c]``.

    The same as ``normalize(out, -mean/std, 1/std)``.
    """
    _check_image(tensor, "denormalize")
    m = _as_channel_tensor(mean, tensor, "mean", "denormalize")
    s = _as_channel_tensor(std, tensor, "std", "denormalize")
    return tensor * s + m


class Normalize:
    """Callable form: ``Normalize(mean, std)(img)``; ``.inverse(out)`` undoes it.

    ``Normalize.from_loader(loader)`` estimates the statistics in one pass (use the TRAINING loader).
    Counterpart: ``torchvision.transforms.v2.Normalize``.
    """

    def __init__(self, mean: Stat, std: Stat) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean and std must have the same length, got {self.mean.numel()} "
                             f"and {self.std.numel()}")

    @classmethod
    def from_loader(cls, loader: Iterable, channel_dim: int = 1) -> Normalize:
        return cls(*channel_stats(loader, channel_dim))

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return normalize(img, self.mean, self.std)

    def inverse(self, img: torch.Tensor) -> torch.Tensor:
        return denormalize(img, self.mean, self.std)

    def __repr__(self) -> str:
        fmt = lambda t: "[" + ", ".join(f"{v:.4f}" for v in t.tolist()) + "]"
        return f"Normalize(mean={fmt(self.mean)}, std={fmt(self.std)})"


def fit_minmax(x: torch.Tensor, dim: int | Sequence[int] | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature minimum and maximum along ``dim`` (``None`` = over everything), kept for broadcasting."""
    check_tensor(x, "x", "fit_minmax")
    if dim is None:
        return x.amin(), x.amax()
    return x.amin(dim=dim, keepdim=True), x.amax(dim=dim, keepdim=True)


def minmax_scale(x: torch.Tensor, data_min: torch.Tensor | None = None, data_max: torch.Tensor | None = None,
                 feature_range: tuple[float, float] = (0.0, 1.0), dim: int | Sequence[int] | None = 0
                 ) -> torch.Tensor:
    """``a + (x - min) (b - a) / (max - min)`` with ``(a, b) = feature_range``.

    ``data_min``/``data_max`` default to :func:`fit_minmax` of ``x`` itself; pass the TRAINING split's values
    to transform validation/test data (which may then fall outside ``[a, b]``). A constant feature
    (``max == min``) is mapped to ``a`` (range treated as 1, as scikit-learn does).
    Reference: ``sklearn.preprocessing.MinMaxScaler(feature_range)`` with features along ``dim=0``.
    """
    check_tensor(x, "x", "minmax_scale")
    a, b = feature_range
    if not a < b:
        raise ValueError(f"minmax_scale: feature_range must be increasing (a < b), got {feature_range!r}")
    if (data_min is None) != (data_max is None):
        raise ValueError("minmax_scale: pass both data_min and data_max, or neither")
    if data_min is None:
        data_min, data_max = fit_minmax(x, dim)
    rng = data_max - data_min
    rng = torch.where(rng == 0, torch.ones_like(rng), rng)
    return a + (x - data_min) * ((b - a) / rng)

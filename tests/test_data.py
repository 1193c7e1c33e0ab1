import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from dlhelpers import data


def test_mnist_5k_shapes_ranges_and_balance() -> None:
    X, y = data.load_mnist_5k()
    assert X.shape == (5000, 1, 28, 28) and X.dtype == torch.float32
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert torch.bincount(y).tolist() == [500] * 10


def test_digits_shapes() -> None:
    X, y = data.load_digits()
    assert X.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert 0.0 <= float(X.min()) and float(X.max()) == 1.0 and set(y.tolist()) == set(range(10))


def test_mnist1d_paper_defaults_and_determinism() -> None:
    d = data.load_mnist1d()
    assert d["x"].shape == (4000, 1, 40) and d["x_test"].shape == (1000, 1, 40)
    assert set(d["y"].tolist()) == set(range(10))
    again = data.load_mnist1d()
    assert torch.equal(d["x"], again["x"])
    with pytest.raises(ValueError, match="num_samples must be >= 10"):
        data.load_mnist1d(num_samples=5)


def test_mnist1d_generation_does_not_disturb_global_rng(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLHELPERS_CACHE", str(tmp_path))
    data._mnist1d_arrays.cache_clear()
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    d = data.load_mnist1d(num_samples=100, seed=3)
    assert np.random.rand() == expected
    assert (tmp_path / "mnist1d_n100_s3.npz").exists()  # cached for the next call
    assert torch.equal(data.load_mnist1d(num_samples=100, seed=3)["x"], d["x"])
    data._mnist1d_arrays.cache_clear()


@pytest.mark.parametrize("name", sorted(data.PHOTOS))
def test_photos_load_offline(name: str) -> None:
    img = data.load_photo(name, size=32)
    assert img.dim() == 3 and img.shape[0] in (1, 3) and min(img.shape[1:]) == 32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert data.load_photo(name, size=32, gray=True).shape[0] == 1


def test_unknown_photo_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown photo name 'lena'"):
        data.load_photo("lena")


def test_make_volume_is_seeded() -> None:
    v = data.make_volume(16, seed=1)
    assert v.shape == (1, 16, 16, 16)
    assert torch.equal(v, data.make_volume(16, seed=1)) and not torch.equal(v, data.make_volume(16, seed=2))
    with pytest.raises(ValueError, match="size must be >= 4"):
        data.make_volume(2)


def test_train_val_split_partitions_and_repeats() -> None:
    X = torch.arange(100).float().unsqueeze(1)
    y = torch.arange(100)
    Xtr, ytr, Xva, yva = data.train_val_split(X, y, 0.25, seed=3)
    assert len(Xva) == 25 and len(Xtr) == 75
    assert sorted(torch.cat([ytr, yva]).tolist()) == list(range(100))
    assert torch.equal(Xtr[:, 0].long(), ytr)
    assert torch.equal(data.train_val_split(X, y, 0.25, seed=3)[3], yva)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        data.train_val_split(X, y, 1.5)
    with pytest.raises(ValueError, match="X has 100 rows but y has 3"):
        data.train_val_split(X, y[:3])


def test_loaders_are_seeded() -> None:
    X, y = torch.randn(50, 2), torch.arange(50)
    order = lambda: torch.cat([yb for _, yb in data.make_loaders(X, y, batch_size=8, seed=5)[0]]).tolist()
    assert order() == order()


# ---------------------------------------------------------------- real loaders on tiny files we write
def _write_idx(path, array: np.ndarray, code: int) -> None:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def test_read_idx_roundtrip_and_errors(tmp_path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a-idx3-ubyte", arr, 0x08)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a-idx3-ubyte"), arr)
    floats = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    _write_idx(tmp_path / "f", floats, 0x0D)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), floats)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="bad magic number"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="declares shape"):
        data.read_idx(tmp_path / "short")


def test_fashion_mnist_loader_reads_idx_layout(tmp_path) -> None:
    import gzip

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_idx(raw / "t10k-images-idx3-ubyte", images, 0x08)
    _write_idx(tmp_path / "labels", labels, 0x08)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress((tmp_path / "labels").read_bytes()))
    X, y = data.load_fashion_mnist(tmp_path, train=False)
    assert X.shape == (5, 1, 28, 28) and y.tolist() == [3, 1, 4, 1, 5]
    torch.testing.assert_close(X[2, 0], torch.from_numpy(images[2]).float() / 255)


def test_fashion_mnist_offline_error_is_clear(tmp_path) -> None:
    with pytest.raises(data.OfflineDatasetError, match="download=True"):
        data.load_fashion_mnist(tmp_path)


def test_cifar10_loader_reads_python_batches(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(4, 3 * 32 * 32), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": pixels, "labels": [0, 9, 2, 2]}, f)
    X, y = data.load_cifar10(tmp_path, train=False)
    assert X.shape == (4, 3, 32, 32) and y.tolist() == [0, 9, 2, 2]
    # the official layout is channel-major: the first 1024 bytes are the red plane
    torch.testing.assert_close(X[1, 0].flatten(), torch.from_numpy(pixels[1, :1024]).float() / 255)
    with pytest.raises(data.OfflineDatasetError, match="CIFAR-10 not found"):
        data.load_cifar10(tmp_path, train=True)


@settings(max_examples=30)
@given(n=st.integers(1, 70), batch_size=st.integers(1, 20), shuffle=st.booleans(), seed=st.integers(0, 2**31),
       epochs=st.integers(1, 3), stop_after=st.one_of(st.none(), st.integers(1, 5)))
def test_tensor_loader_matches_dataloader_batches_and_rng_use(n, batch_size, shuffle, seed, epochs,
                                                              stop_after) -> None:
    X, y = torch.randn(n, 3, dtype=torch.float64), torch.arange(n)

    def run(loader) -> tuple[list, torch.Tensor]:
        torch.manual_seed(1234)
        batches = []
        for _ in range(epochs):
            for i, (xb, yb) in enumerate(loader):
                batches.append((xb, yb))
                if stop_after is not None and i + 1 >= stop_after:
                    break
        return batches, torch.rand(4)  # the global RNG must be left untouched

    ours, ours_after = run(data.make_loader(X, y, batch_size, shuffle=shuffle, seed=seed))
    ref_loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle,
                            generator=torch.Generator().manual_seed(seed))
    ref, ref_after = run(ref_loader)
    assert len(ours) == len(ref)
    for (xa, ya), (xb, yb) in zip(ours, ref):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(ours_after, ref_after)
    torch.manual_seed(1234)
    assert torch.equal(ours_after, torch.rand(4))
    assert len(data.make_loader(X, y, batch_size)) == len(ref_loader)


def test_tensor_loader_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        data.TensorLoader(torch.zeros(3, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        data.TensorLoader(torch.zeros(3, 1), torch.zeros(3), batch_size=0)

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dlhelpers import _checks, plot  # noqa: E402


def test_show_images_grid_and_errors() -> None:
    fig = plot.show_images(torch.rand(10, 1, 8, 8), [str(i) for i in range(10)], ncols=4)
    assert len(fig.axes) == 12 and fig.axes[0].get_title() == "0"
    plt.close(fig)
    fig = plot.show_images([torch.rand(3, 5, 5)])
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)
    plt.close(fig)
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        plot.show_images(torch.rand(3, 1, 4, 4), ["a", "b"])
    with pytest.raises(ValueError, match="got no images"):
        plot.show_images([])


def test_kernels_feature_maps_and_curves() -> None:
    plt.close(plot.show_kernels(torch.randn(6, 3, 3, 3)))
    with pytest.raises(ValueError, match="4-D conv weight"):
        plot.show_kernels(torch.randn(3, 3))
    fig = plot.show_feature_maps(torch.rand(1, 20, 6, 6), n=16)
    assert sum(bool(ax.images) for ax in fig.axes) == 16
    plt.close(fig)
    fig = plot.plot_curves({"a": [3, 2, 1], "b": [1, 2, 3]}, logy=True, title="t")
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)
    hist = {"train_loss": [1, 0.5], "val_loss": [1.2, 0.8], "train_acc": [0.5, 0.7], "val_acc": [0.4, 0.6]}
    fig = plot.plot_history(hist)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    plt.close(fig)
    fig = plot.plot_history({"sgd": hist, "adam": hist}, metrics=("loss",))
    assert len(fig.axes[0].lines) == 4
    plt.close(fig)


def test_ntuple_and_checks() -> None:
    assert _checks.ntuple(3, 2, "stride", "f") == (3, 3)
    assert _checks.ntuple((1, 2), 2, "stride", "f", minimum=1) == (1, 2)
    with pytest.raises(ValueError, match=r"f: stride must be positive, got \(0, 1\)"):
        _checks.ntuple((0, 1), 2, "stride", "f", minimum=1)
    with pytest.raises(TypeError, match="tuple of 2 ints"):
        _checks.ntuple((1, 2, 3), 2, "stride", "f")
    with pytest.raises(TypeError, match="got bool"):
        _checks.ntuple(True, 2, "stride", "f")
    with pytest.raises(TypeError, match="got float"):
        _checks.ntuple(1.5, 2, "stride", "f")
    with pytest.raises(ValueError, match=r"expected x to be 4-D \(N, C, H, W\), got 3-D"):
        _checks.check_rank(torch.zeros(1, 2, 3), [4], "x", "f", "N, C, H, W")
    with pytest.raises(TypeError, match="must be a torch.Tensor, got list"):
        _checks.check_tensor([1], "x", "f")
    assert _checks.check_number(3, "lr", "f") == 3.0
    with pytest.raises(TypeError, match=r"f: lr must be a real number \(int or float\), got str '1'"):
        _checks.check_number("1", "lr", "f")
    with pytest.raises(TypeError, match="got bool"):
        _checks.check_number(True, "lr", "f")
    with pytest.raises(ValueError, match="lr must not be NaN"):
        _checks.check_number(float("nan"), "lr", "f")
    with pytest.raises(ValueError, match="unknown mode 'x'"):
        _checks.check_choice("x", ["a", "b"], "mode", "f")

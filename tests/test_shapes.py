"""dlhelpers.shapes vs torchinfo.summary (shapes, params), FlopCounterMode (FLOPs) and fx's ShapeProp."""

import sys
import threading
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
import torchinfo
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from dlhelpers.shapes import ShapeError, count_flops, fx_trace, plot_spatial_profile, trace_shapes, valid_input_sizes


def _uninitialised(make) -> nn.Module:
    """Built on the meta device, then given uninitialised CPU memory: no 100M-weight init (VGG's 4 s)."""
    with torch.device("meta"):
        model = make(weights=None)
    return model.to_empty(device="cpu")


ARCHS = {  # small inputs where the architecture allows: the test must stay fast
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), (2, 3, 64, 64)),
    "vgg11": (lambda: _uninitialised(torchvision.models.vgg11), (1, 3, 32, 32)),
    "inception_v3": (lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False),
                     (1, 3, 75, 75)),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), (1, 3, 32, 32)),
    "densenet121": (lambda: torchvision.models.densenet121(weights=None), (1, 3, 32, 32)),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(weights=None), (1, 3, 32, 32)),
    "vit_tiny": (lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                              hidden_dim=32, mlp_dim=64), (2, 3, 32, 32)),
}


def reference_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode with the math attention kernel (the CPU flash kernel is not in its registry)."""
    model.eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("arch", list(ARCHS))
def test_torchvision_matches_torchinfo_and_flop_counter(arch):
    torch.manual_seed(0)
    make, shape = ARCHS[arch]
    model = make()
    trace = trace_shapes(model, shape)
    assert trace.method == "fx" and trace.fallback_reason is None
    assert trace.total_flops == reference_flops(model, torch.zeros(shape))
    stats = torchinfo.summary(model, input_size=shape, verbose=0, device="cpu", mode="eval")
    assert trace.total_params == stats.total_params == sum(p.numel() for p in model.parameters())
    # per module call, in call order: output shape and parameter count equal torchinfo's rows
    theirs = defaultdict(list)
    for info in stats.summary_list:
        if info.is_leaf_layer or isinstance(info.module, nn.MultiheadAttention):
            theirs[info.layer_id].append(tuple(info.output_size))
    ours = defaultdict(list)
    modules = dict(model.named_modules())
    for node in trace:
        if node.op == "call_module":
            ours[id(modules[node.module])].append(node.output_shape)
    compared = 0
    for key, shapes in ours.items():
        if key in theirs:
            assert shapes == theirs[key]
            compared += 1
    assert compared >= 5
    leaf_params = {info.layer_id: info.num_params for info in stats.summary_list if info.is_leaf_layer}
    for name, m in model.named_modules():
        if id(m) in leaf_params and id(m) in ours:
            assert sum(n.params for n in trace if n.module == name) == leaf_params[id(m)]
    assert trace.output_shape == tuple(model.eval()(torch.zeros(shape)).shape)


def test_shapes_equal_fx_shape_prop():
    model = torchvision.models.resnet18(weights=None).eval()
    gm = fx_trace(model)
    ShapeProp(gm).propagate(torch.zeros(1, 3, 48, 48))
    ref = {n.name: tuple(n.meta["tensor_meta"].shape) for n in gm.graph.nodes if "tensor_meta" in n.meta}
    trace = trace_shapes(model, (1, 3, 48, 48))
    assert {n.name: n.output_shape for n in trace} == {k: v for k, v in ref.items() if k != "output"}


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), c2=st.integers(1, 5), size=st.integers(6, 12), k=st.integers(1, 3),
       stride=st.integers(1, 2), groups=st.sampled_from([1, 2]), heads=st.sampled_from([1, 2]))
def test_random_nets_flops_and_shapes_equal_references(n, c, c2, size, k, stride, groups, heads):
    """Conv, transposed conv, linear, matmul, SDPA and MHA on drawn shapes: FLOPs == FlopCounterMode."""
    c, c2 = c * groups, c2 * groups

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c, c2, k, stride=stride, padding=k // 2, groups=groups)
            self.up = nn.ConvTranspose2d(c2, c, k, stride=stride, groups=groups)
            self.mha = nn.MultiheadAttention(2 * heads, heads, batch_first=True)
            self.proj = nn.Linear(c, 2 * heads)

        def forward(self, x):
            y = self.up(torch.relu(self.conv(x)))
            t = self.proj(y.flatten(2).transpose(1, 2))          # [n, L, E]
            a, _ = self.mha(t, t, t, need_weights=False)
            s = F.scaled_dot_product_attention(a, t, t)
            w = torch.ones(1, 2 * heads, 2)
            return torch.matmul(s, s.transpose(1, 2)).sum() + F.conv1d(t.transpose(1, 2), w).sum()

    torch.manual_seed(0)
    model = Net()
    x = torch.randn(n, c, size, size)
    trace = trace_shapes(model, x)
    assert trace.total_flops == reference_flops(model, x)
    assert trace.total_params == sum(p.numel() for p in model.parameters())
    assert trace["conv"].output_shape == tuple(model.conv(x).shape)


def test_hook_fallback_is_announced_and_counts_like_the_references():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    trace = trace_shapes(layer, (2, 10, 32))
    assert trace.method == "hooks" and trace.fallback_reason
    assert str(trace).startswith("traced with forward hooks on leaf modules (torch.fx could not trace the model:")
    assert trace.total_flops == reference_flops(layer, torch.zeros(2, 10, 32))
    assert trace.total_params == sum(p.numel() for p in layer.parameters())
    assert [n.target for n in trace][:3] == ["input", "MultiheadAttention", "Dropout"]
    forced = trace_shapes(torchvision.models.resnet18(weights=None), (1, 3, 32, 32), method="hooks")
    assert forced.method == "hooks" and forced.fallback_reason == "method='hooks' was requested"
    assert forced.total_params == 11689512


@pytest.mark.parametrize("block", ["BasicBlock", "Bottleneck", "InceptionA", "DenseBlock", "TransformerEncoderLayer"])
def test_chapter07_scratch_blocks_fall_back_to_hooks_and_still_count(block):
    """dlhelpers.blocks / attention check isinstance(x, Tensor), which fx's Proxy fails: hooks, said so."""
    from dlhelpers import attention, blocks

    torch.manual_seed(0)
    model, shape = {"BasicBlock": (lambda: blocks.BasicBlock(16, 32, stride=2), (2, 16, 16, 16)),
                    "Bottleneck": (lambda: blocks.Bottleneck(16, 8), (2, 16, 8, 8)),
                    "InceptionA": (lambda: blocks.InceptionA(16, 8), (1, 16, 12, 12)),
                    "DenseBlock": (lambda: blocks.DenseBlock(3, 8, 4, 4), (1, 8, 8, 8)),
                    "TransformerEncoderLayer": (lambda: attention.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                                (2, 6, 16))}[block]
    model = model()
    trace = trace_shapes(model, shape)
    assert trace.method == "hooks" and "got Proxy" in trace.fallback_reason
    assert trace.total_flops == reference_flops(model, torch.zeros(shape)) > 0
    assert trace.total_params == sum(p.numel() for p in model.parameters())
    assert trace.output_shape == tuple(model(torch.zeros(shape)).shape)


def test_training_flags_restored_and_meta_device():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout())
    model.train()
    before = model[1].running_mean.clone()
    trace_shapes(model, (2, 3, 8, 8))
    assert all(m.training for m in model.modules())
    torch.testing.assert_close(model[1].running_mean, before)
    with torch.device("meta"):
        big = torchvision.models.resnet18(weights=None)
    assert trace_shapes(big, (1, 3, 224, 224)).total_flops == 3_628_146_688  # FlopCounterMode's resnet18 value


def test_table_and_frame():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    trace = trace_shapes(model, (1, 1, 8, 8))
    text = trace.format()
    assert "[1, 2, 6, 6]" in text and "total params 239" in text and f"FLOPs {trace.total_flops:,}" in text
    assert trace.total_flops == 2 * 2 * 36 * 9 + 2 * 72 * 3 and trace.total_macs == trace.total_flops // 2
    assert list(trace.to_frame(modules_only=True)["op"]) == ["Conv2d", "Flatten", "Linear"]
    assert "more rows" in trace.format(max_rows=2)
    assert trace.spatial_profile() == [("_0", 2, (6, 6))]
    assert trace[1].macs == trace[1].flops // 2 and trace["_2"].params == 219
    assert count_flops("function", "matmul", None, [(3,), (3,)], [()]) == 6
    assert count_flops("function", "relu", None, [(3, 4)], [(3, 4)]) == 0


# --------------------------------------------------------------------------- U-Nets and input sizes
class RandomUNet(nn.Module):
    """Encoder (conv, then a downsampling layer per level) / decoder (upsample, cat the skip, conv)."""

    def __init__(self, nd: int, depth: int, down: list[tuple[str, int, int]], up: str, pad_skip: bool) -> None:
        super().__init__()
        conv, convt, pool = [(nn.Conv1d, nn.ConvTranspose1d, nn.MaxPool1d),
                             (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d)][nd - 1]
        self.enc = nn.ModuleList([conv(1 if i == 0 else 2, 2, 3, padding=1) for i in range(depth)])
        self.down = nn.ModuleList([pool(k, 2, p) if kind == "pool" else conv(2, 2, k, stride=2, padding=p)
                                   for kind, k, p in down])
        self.up = nn.ModuleList([convt(2, 2, 2, stride=2) if up == "convt" else nn.Upsample(scale_factor=2)
                                 for _ in range(depth)])
        self.dec = nn.ModuleList([conv(4, 2, 3, padding=1) for _ in range(depth)])
        self.pad_skip = pad_skip

    def forward(self, x):
        skips = []
        for enc, down in zip(self.enc, self.down):
            x = enc(x)
            skips.append(x)
            x = down(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = up(x)
            if self.pad_skip:  # pad the upsampled map to the skip's size (the odd-size fix)
                diff = [s - v for s, v in zip(skip.shape[2:], x.shape[2:])]
                x = F.pad(x, [v for d in reversed(diff) for v in (d // 2, d - d // 2)])
            x = dec(torch.cat([x, skip], 1))
        return x


def _runs(model: nn.Module, shape: tuple[int, ...], same_size: bool) -> bool:
    try:
        out = model(torch.zeros(shape))
    except RuntimeError:
        return False
    return not same_size or out.shape[2:] == shape[2:]


@settings(max_examples=12, deadline=None)
@given(nd=st.sampled_from([1, 2]), depth=st.integers(1, 3), data=st.data(), up=st.sampled_from(["convt", "upsample"]),
       pad_skip=st.booleans(), same_size=st.booleans())
def test_valid_input_sizes_equal_running_the_model(nd, depth, data, up, pad_skip, same_size):
    down = [data.draw(st.sampled_from([("pool", 2, 0), ("pool", 3, 1), ("conv", 2, 0), ("conv", 3, 1),
                                       ("conv", 3, 0)])) for _ in range(depth)]
    model = RandomUNet(nd, depth, down, up, pad_skip).eval()
    sizes = range(2 ** depth, 2 ** depth + (14 if nd == 2 else 30))
    with torch.no_grad():
        expected = [n for n in sizes if _runs(model, (1, 1) + (n,) * nd, same_size)]
    assert valid_input_sizes(model, 1, sizes, spatial_dims=nd, same_size=same_size) == expected
    if all(d == ("pool", 2, 0) for d in down) and not pad_skip:  # the classic U-Net: multiples of 2**depth
        assert expected == [n for n in sizes if n % 2 ** depth == 0]


def test_concurrent_traces_take_turns():
    """fx patches nn.Module.__call__ process-wide: a trace in another thread must not leak into this one."""
    with torch.device("meta"):
        models = [torchvision.models.resnet18(weights=None), torchvision.models.mobilenet_v2(weights=None)]
    serial = [[(n.name, n.output_shape) for n in trace_shapes(m, (1, 3, 64, 64))] for m in models]
    results: list[list] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(i: int) -> None:
        start.wait()
        try:
            for _ in range(4):
                results[i].append([(n.name, n.output_shape) for n in trace_shapes(models[i], (1, 3, 64, 64))])
        except Exception as err:  # noqa: BLE001 -- reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so unserialized traces would surely interleave
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors and all(r == [serial[i]] * 4 for i, r in enumerate(results))


def test_plot_spatial_profile_draws_the_profile():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = trace_shapes(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 8, (1, 3))),
                         (1, 1, 9, 12))
    ax = plot_spatial_profile(trace, title="t")
    profile = trace.spatial_profile()
    h, w, c = ax.get_lines()[0], ax.get_lines()[1], ax.figure.axes[1].get_lines()[0]
    assert list(h.get_ydata()) == [p[2][0] for p in profile] and list(w.get_ydata()) == [p[2][1] for p in profile]
    assert list(c.get_ydata()) == [p[1] for p in profile] == [4, 4, 8] and ax.get_title() == "t"
    plt.close("all")
    with pytest.raises(ValueError, match="no module call with an"):
        plot_spatial_profile(trace_shapes(nn.Linear(3, 2), (1, 3)))


# --------------------------------------------------------------------------- errors
def test_shape_errors_name_the_node_and_the_shapes():
    with pytest.raises(ShapeError, match=r"node '_2', module '2' \(Linear\), failed on input shapes \[1, 1568\]; "
                                         r"Linear expects the last dim to be in_features=2048"):
        trace_shapes(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(2048, 10)), (1, 3, 16, 16))

    class Concat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    with pytest.raises(ShapeError, match=r"node 'cat', call_function cat, failed on input shapes "
                                         r"\[1, 8, 16, 16\] \[1, 8, 14, 14\]; torch.cat needs equal sizes"):
        trace_shapes(Concat(), (1, 3, 16, 16))
    with pytest.raises(ShapeError, match=r"expects 4 input channels \(dim 1\)"):
        trace_shapes(nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(4, 2, 1)), (1, 3, 4, 4))
    with pytest.raises(ShapeError, match=r"module 'self_attn' \(MultiheadAttention\) failed on input shapes "
                                         r"\[2, 10, 16\] \[2, 10, 16\] \[2, 10, 16\]; torch says: passed-in embed_dim"):
        trace_shapes(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), (2, 10, 16))
    with pytest.raises(ShapeError, match="BatchNorm2d expects 5 channels"):
        trace_shapes(nn.BatchNorm2d(5), (1, 3, 4, 4))


def test_argument_errors():
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        trace_shapes("resnet", (1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"method must be one of \['auto', 'fx', 'hooks'\], got 'jit'"):
        trace_shapes(nn.ReLU(), (1, 3), method="jit")
    with pytest.raises(TypeError, match="input_size must be a tuple of ints .* got int"):
        trace_shapes(nn.ReLU(), 3)
    with pytest.raises(TypeError, match=r"input_size must be a non-empty tuple of ints, got \(1, 2.0\)"):
        trace_shapes(nn.ReLU(), (1, 2.0))
    with pytest.raises(ValueError, match=r"input_size must be positive, got \(1, 0\)"):
        trace_shapes(nn.ReLU(), (1, 0))
    with pytest.raises(TypeError, match="torch.fx cannot trace TransformerEncoderLayer .* use method='hooks'"):
        trace_shapes(nn.TransformerEncoderLayer(8, 2, 16), (3, 1, 8), method="fx")
    with pytest.raises(KeyError, match="no node named 'nope'"):
        trace_shapes(nn.ReLU(), (1, 3))["nope"]
    with pytest.raises(TypeError, match="valid_input_sizes: model must be an nn.Module, got int"):
        valid_input_sizes(3, 1, [8])
    with pytest.raises(ValueError, match="in_channels must be a positive int, got 0"):
        valid_input_sizes(nn.ReLU(), 0, [8])
    with pytest.raises(ValueError, match="spatial_dims must be 1, 2 or 3, got 4"):
        valid_input_sizes(nn.ReLU(), 1, [8], spatial_dims=4)
    with pytest.raises(ValueError, match=r"sizes must be positive ints, got \[8, 0\]"):
        valid_input_sizes(nn.ReLU(), 1, [8, 0])

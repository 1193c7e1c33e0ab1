"""Pretrain torchvision's ``resnet18`` and ``vgg11_bn`` on an offline source task; write small weight files.

No registry package ships ImageNet weights for ResNet or VGG, so chapter 08 makes them genuinely pretrained
itself. Source task: the MNIST digits 0-4 of ``dlhelpers.data.load_mnist_5k`` (2,500 real images; 2,250
train, 250 validation), resized to 32x32, replicated to 3 channels, MNIST-standardized, random shifts of up
to +-3 px. The chapter's target tasks use the *other* digits (5-9), scikit-learn's 8x8 digits and faces,
which the backbones never saw. SGD (momentum 0.9, Nesterov, weight decay 5e-4), batch 128, one-cycle
cosine learning rate, one CPU thread so the run is bit-for-bit repeatable. Weights are stored as float16
(the BatchNorm counters stay int64), and ``dlhelpers.transfer`` checks their SHA-256 before every load::

    nice .venv/bin/python tools/pretrain_backbones.py resnet18 vgg11_bn     # writes data/<name>.pt
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dlhelpers.data import load_mnist_5k
from dlhelpers.transfer import SOURCE_CLASSES, resnet18_small, to_backbone_input, vgg11_bn_small
from dlhelpers.utils import seed_everything

ROOT = Path(__file__).resolve().parents[1]
#: name -> (builder, epochs, peak learning rate): epochs chosen so each run takes <= ~5-8 min of one core.
RECIPES = {"resnet18": (resnet18_small, 6, 0.05), "vgg11_bn": (vgg11_bn_small, 3, 0.03)}
FILES = {"resnet18": "resnet18_mnist04_32px.pt", "vgg11_bn": "vgg11_bn_mnist04_32px.pt"}


def source_task(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """MNIST-5k digits 0-4 at 32x32 (unnormalized [0, 1]), split 2,250 / 250 with a seeded permutation."""
    X, y = load_mnist_5k()
    keep = torch.isin(y, torch.tensor(SOURCE_CLASSES))
    X = F.pad(X[keep], (2, 2, 2, 2))                       # 28 -> 32, as LeNet did
    y = y[keep]
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    X, y = X[perm], y[perm]
    return X[250:], y[250:], X[:250], y[:250]


def random_shift(x: torch.Tensor, g: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` px in x and y (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=g)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def pretrain(name: str, seed: int = 0, batch_size: int = 128) -> tuple[dict, float]:
    """Train one backbone on the source task; return its float16 state dict and validation accuracy."""
    builder, epochs, lr = RECIPES[name]
    seed_everything(seed)
    Xtr, ytr, Xva, yva = source_task(seed)
    model = builder()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * ((len(ytr) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        total = 0.0
        for i in range(0, len(ytr), batch_size):
            idx = perm[i:i + batch_size]
            xb = to_backbone_input(random_shift(Xtr[idx], g))
            loss = F.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = evaluate(model, Xva, yva)
        print(f"{name} epoch {epoch + 1}/{epochs}: train loss {total / len(ytr):.4f}  val acc {acc:.4f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    return state, acc


@torch.no_grad()
def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(to_backbone_input(X)).argmax(1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, default=ROOT / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for name in args.names:
        state, acc = pretrain(name, args.seed)
        path = args.out / FILES[name]
        torch.save(state, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, val acc {acc:.4f}, sha256 {digest}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

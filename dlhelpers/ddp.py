"""Data-parallel training with ``torch.distributed``: the same run on 2 CPU processes and on 1.

Run it with torchrun (2 processes on this machine, gloo backend over loopback)::

    torchrun --standalone --nproc_per_node=2 -m dlhelpers.ddp --out /tmp/ddp.pt

Each process (rank) builds the same model from the same seed, wraps it in
``DistributedDataParallel`` and reads its own shard of the data through ``DistributedSampler``; after
every ``backward()`` DDP all-reduces (averages) the gradients, so every rank takes the same step. Rank 0
saves the final ``state_dict``. :func:`train_single` is the single-process run on the *combined* batch
(the union of the ranks' batches at each step): because the mean loss over ``W`` equal shards of ``B``
samples is the mean of the shards' mean losses, it gives the same weights to rounding.

The same script scales to GPUs and nodes unchanged except for the backend (``nccl``) and device
(``cuda:<local_rank>``): ``torchrun --nnodes=2 --nproc_per_node=8 --rdzv_endpoint=host:29500 ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["make_model", "sampler_indices", "combined_batches", "train_single", "train_ddp", "train_rank", "main"]


def make_model(seed: int = 0) -> nn.Module:
    """The small MNIST-1D MLP both runs train (same seed, same initial weights)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 10))


def sampler_indices(n: int, world_size: int, rank: int, *, epoch: int = 0, seed: int = 0,
                    shuffle: bool = True) -> list[int]:
    """The indices ``DistributedSampler(dataset_of_n, world_size, rank, shuffle, seed)`` yields in ``epoch``:
    a permutation from ``torch.Generator().manual_seed(seed + epoch)``, padded by wrapping to a multiple of
    ``world_size``, then every ``world_size``-th index starting at ``rank``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"sampler_indices: need world_size >= 1 and 0 <= rank < world_size, "
                         f"got world_size={world_size}, rank={rank}")
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    total = -(-n // world_size) * world_size
    order += (order * (1 + total // max(n, 1)))[: total - n]
    return order[rank:total:world_size]


def combined_batches(n: int, world_size: int, batch_size: int, *, epoch: int = 0, seed: int = 0) -> list[list[int]]:
    """The global batch of each step: the concatenation over ranks of their ``batch_size``-sample batches."""
    per_rank = [sampler_indices(n, world_size, r, epoch=epoch, seed=seed) for r in range(world_size)]
    steps = -(-len(per_rank[0]) // batch_size)
    return [sum((idx[s * batch_size:(s + 1) * batch_size] for idx in per_rank), []) for s in range(steps)]


def _data(num_samples: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    from dlhelpers.data import load_mnist1d

    d = load_mnist1d()
    return d["x"][:num_samples].to(dtype), d["y"][:num_samples]


def train_single(*, world_size: int = 2, batch_size: int = 32, epochs: int = 2, lr: float = 0.05,
                 momentum: float = 0.9, seed: int = 0, num_samples: int = 1000,
                 dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One process, one model, the combined batch of ``world_size`` ranks at every step (SGD + momentum)."""
    X, y = _data(num_samples, dtype)
    model = make_model(seed).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for epoch in range(epochs):
        for idx in combined_batches(len(X), world_size, batch_size, epoch=epoch, seed=seed):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_ddp(*, batch_size: int = 32, epochs: int = 2, lr: float = 0.05, momentum: float = 0.9, seed: int = 0,
              num_samples: int = 1000, dtype: torch.dtype = torch.float32, backend: str = "gloo"
              ) -> dict[str, torch.Tensor]:
    """One rank of the data-parallel run (call under torchrun, which sets RANK / WORLD_SIZE / MASTER_ADDR).

    Shutdown has two traps, both handled here. ``torch.distributed.nn.functional`` (which DDP imports on
    first use) binds ``group=group.WORLD`` as default arguments, so importing it *after*
    ``init_process_group`` pins the process group forever; and a DDP model still alive (a local of the frame
    that calls ``destroy_process_group``) holds it too. Then ``destroy_process_group`` cannot free the group,
    its gloo worker threads outlive ``main()``, and one still freeing the last all-reduce while the
    interpreter shuts down aborts the process ("terminate called without an active exception": 12 of 80
    runs on 2 busy cores).
    """
    import torch.distributed as dist
    import torch.distributed.nn.functional  # noqa: F401  (before init: its defaults capture group.WORLD)

    dist.init_process_group(backend)
    try:
        return train_rank(batch_size=batch_size, epochs=epochs, lr=lr, momentum=momentum, seed=seed,
                           num_samples=num_samples, dtype=dtype)
    finally:
        dist.destroy_process_group()


def train_rank(*, batch_size: int, epochs: int, lr: float, momentum: float, seed: int, num_samples: int,
                dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The training loop of one rank; every object that references the process group dies with this frame."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    rank, world = dist.get_rank(), dist.get_world_size()
    X, y = _data(num_samples, dtype)
    dataset = TensorDataset(X, y)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    model = DDP(make_model(seed).to(dtype))  # DDP also broadcasts rank 0's weights at construction
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()  # gradients all-reduced (averaged) here
            opt.step()
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI for torchrun: train one rank; rank 0 saves ``{"state_dict", "world_size", "args"}`` to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="where rank 0 saves the final weights (torch.save)")
    p.add_argument("--batch-size", type=int, default=32, help="per-rank batch size")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--float64", action="store_true", help="train in float64")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    dtype = torch.float64 if a.float64 else torch.float32
    state = train_ddp(batch_size=a.batch_size, epochs=a.epochs, lr=a.lr, momentum=a.momentum, seed=a.seed,
                      num_samples=a.num_samples, dtype=dtype)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"state_dict": state, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                    "args": vars(a)}, a.out)
        print(f"rank 0 saved {len(state)} tensors to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

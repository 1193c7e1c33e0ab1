"""Overhead of dlhelpers.experiments.Tracker on a training step (MNIST-1D-sized MLP and CNN, CPU float32).

Each row times one epoch of ``dlhelpers.train.fit`` with a tracker configuration and prints its ratio to the
same epoch without callbacks, measured in the same run (interleaved), so ratios compare across machines. Times are
the process's CPU time (``time.process_time``, one thread), the fastest of the rounds: on a shared machine other
processes inflate wall time but hardly this. The last
line per model is the cost of the activation hooks alone: the all-on tracker over the same tracker with
``activations=False`` (hooks on vs off).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from dlhelpers.data import make_loader
from dlhelpers.experiments import Tracker
from dlhelpers.train import fit
from dlhelpers.utils import format_time

CONFIGS = {
    "no callbacks (reference)": None,
    "Tracker grad norm only": dict(activations=False, per_layer=False),
    "Tracker + per-layer norms/ratios": dict(activations=False, per_layer=True),
    "Tracker + activation hooks (all on)": dict(activations=True, per_layer=True),
    "Tracker all on, every 10 steps": dict(activations=True, per_layer=True, every=10),
}


def _models() -> dict[str, nn.Module]:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                        nn.Linear(128, 10))
    cnn = nn.Sequential(nn.Conv1d(1, 25, 5, 2, 1), nn.ReLU(), nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(),
                        nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(125, 10))
    return {"MLP 40-128-128-10": mlp, "CNN 3x conv1d(25)": cnn}


def _epoch(model: nn.Module, loader, config: dict | None) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    callbacks = [] if config is None else [Tracker(**config)]
    start = time.process_time()
    fit(model, loader, epochs=1, optimizer=opt, callbacks=callbacks, show_progress=False,
        device=torch.device("cpu"))
    return time.process_time() - start


def main(rounds: int = 9) -> None:
    torch.manual_seed(0)
    X, y = torch.randn(2048, 1, 40), torch.randint(0, 10, (2048,))
    loader = make_loader(X, y, batch_size=64)
    print(f"one epoch = {len(loader)} steps of batch 64; ratio = time / time without callbacks "
          f"(CPU time, fastest of {rounds} interleaved rounds)")
    for mname, model in _models().items():
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        _epoch(model, loader, None)  # warm-up
        for _ in range(rounds):  # interleaved rounds
            for name, config in CONFIGS.items():
                times[name].append(_epoch(model, loader, config))
        best = {name: min(ts) for name, ts in times.items()}
        ref = best["no callbacks (reference)"]
        print(f"\n{mname}")
        for name, t in best.items():
            print(f"  {name:38s} {format_time(t / len(loader)):>16s}/step  ratio {t / ref:5.2f}")
        hooks = best["Tracker + activation hooks (all on)"] / best["Tracker + per-layer norms/ratios"]
        print(f"  {'activation hooks on vs off':38s} {'':>16s}       ratio {hooks:5.2f}")


if __name__ == "__main__":
    main()

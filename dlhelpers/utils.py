"""Reproducibility, device selection, timing and progress helpers used by every notebook."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")

#: Environment variable that forces a device ("cpu", "cuda", "mps"). ``make test`` sets it to ``cpu``.
DEVICE_ENV = "DLHELPERS_DEVICE"
#: Environment variable that turns progress bars off when set to ``0`` (``make test`` and ``make execute`` do).
PROGRESS_ENV = "DLHELPERS_PROGRESS"


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> int:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated exactly.

    With ``deterministic=True`` cuDNN is put in deterministic mode as well (CPU kernels
    already are, for a fixed thread count). Returns ``seed`` for convenience.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed_everything: seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def get_device() -> torch.device:
    """Best available device: ``$DLHELPERS_DEVICE`` if set, else CUDA, else Apple MPS, else CPU."""
    forced = os.environ.get(DEVICE_ENV, "").strip().lower()
    if forced:
        if forced not in {"cpu", "cuda", "mps"} and not forced.startswith("cuda:"):
            raise ValueError(f"get_device: ${DEVICE_ENV} must be cpu, cuda, cuda:N or mps, got {forced!r}")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress_enabled() -> bool:
    """Progress bars are on unless ``$DLHELPERS_PROGRESS`` is ``0`` (as under test)."""
    return os.environ.get(PROGRESS_ENV, "1") != "0"


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """Wrap ``iterable`` in a ``tqdm.auto`` bar (a widget in JupyterLab), silent under test."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


def format_time(seconds: float) -> str:
    """Human-readable duration tagged ``[time]`` so notebook tests can sanitize it.

    >>> format_time(0.0123)
    '[time] 12.3 ms'
    """
    units = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
    unit, scale = next(((u, s) for u, s in units if seconds >= s), units[-1])
    value = f"{seconds / scale:.3g}"
    if "e" in value:  # e.g. 999.96 ms rounds to "1e+03": print the integer instead
        value = f"{seconds / scale:.0f}"
    return f"[time] {value} {unit}"


def benchmark(fn: Callable[[], Any], *, repeat: int = 5, number: int = 1, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` rounds of ``number`` calls each."""
    if repeat < 1 or number < 1:
        raise ValueError(f"benchmark: repeat and number must be >= 1, got repeat={repeat}, number={number}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def best_of(fns: dict[str, Callable[[], Any]], *, rounds: int = 15, warmup: int = 2,
            clock: Callable[[], float] | None = None) -> dict[str, float]:
    """Minimum time of each function over ``rounds``, the calls interleaved round by round (``a, b, a, b, ...``)
    so that machine noise hits every contender alike; for speed *ratios* measured in one run (``make bench``).

    The default clock is the calling thread's CPU time (``time.thread_time``) when torch runs one thread (all
    of its CPU kernels then run on the caller, and a busy shared machine barely disturbs it), else wall time.
    """
    if rounds < 1 or warmup < 0:
        raise ValueError(f"best_of: need rounds >= 1 and warmup >= 0, got rounds={rounds}, warmup={warmup}")
    if not fns:
        raise ValueError("best_of: expected at least one function to time, got an empty dict")
    if clock is None:
        clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    for f in fns.values():
        for _ in range(warmup):
            f()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, f in fns.items():
            start = clock()
            f()
            best[name] = min(best[name], clock() - start)
    return best


class Timer:
    """Context manager that measures wall time: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start

    def __str__(self) -> str:
        return format_time(self.seconds)


def setup_notebook(seed: int = 0, *, style: bool = True) -> torch.device:
    """First cell of every notebook: seed everything, set the plot style and print options.

    Returns the device to use (CPU under test, see :func:`get_device`).
    """
    seed_everything(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
    np.set_printoptions(precision=4, suppress=True)
    if style:
        from dlhelpers.plot import set_style

        set_style()
    return get_device()

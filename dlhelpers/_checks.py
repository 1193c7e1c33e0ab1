"""Argument validation shared by every scratch module.

Errors name what was expected and what was given, e.g.
``ValueError: conv2d: stride must be positive integers, got (0, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

IntOrTuple = int | Sequence[int]


def ntuple(value: IntOrTuple, n: int, name: str, fn: str, *, minimum: int = 0) -> tuple[int, ...]:
    """Expand an int (or check a sequence) into an ``n``-tuple of ints >= ``minimum``.

    Mirrors ``torch.nn.modules.utils._ntuple`` with clear errors.
    """
    if isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got bool {value!r}")
    if isinstance(value, int):
        out = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        out = tuple(value)
        if len(out) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in out):
            raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    else:
        raise TypeError(f"{fn}: {name} must be an int or a tuple of {n} ints, got {type(value).__name__}")
    if any(v < minimum for v in out):
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{fn}: {name} must be {rule}, got {value!r}")
    return out


def check_tensor(x: object, name: str, fn: str) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_number(value: object, name: str, fn: str) -> float:
    """A real number (int or float, not bool) as ``float``, else ``TypeError``; NaN is a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{fn}: {name} must be a real number (int or float), got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ValueError(f"{fn}: {name} must not be NaN, got {value!r}")
    return float(value)


def check_rank(x: torch.Tensor, ranks: Sequence[int], name: str, fn: str, layout: str = "") -> None:
    """Raise ``ValueError`` unless ``x.dim()`` is one of ``ranks``."""
    check_tensor(x, name, fn)
    if x.dim() not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        hint = f" ({layout})" if layout else ""
        raise ValueError(f"{fn}: expected {name} to be {want}{hint}, got {x.dim()}-D with shape {tuple(x.shape)}")


def check_choice(value: str, choices: Sequence[str], name: str, fn: str) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{fn}: unknown {name} {value!r}; expected one of {sorted(choices)}")
    return value

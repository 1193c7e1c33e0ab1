"""Run every ``benchmarks/bench_*.py`` (each exposes ``main()``) and print its ratio table.

Speed targets are ratios against the PyTorch reference measured in the same run, so they are
comparable across machines. Nothing here is asserted in the test suite.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch


def main() -> int:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        if len(sys.argv) > 1 and not any(a in path.stem for a in sys.argv[1:]):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n== {path.stem} ==", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())

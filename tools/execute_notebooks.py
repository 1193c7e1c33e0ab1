"""Re-execute notebooks in place, top to bottom, the one way stored outputs are produced.

    python tools/execute_notebooks.py notebooks/00_Core_Building_Blocks/01_convolution.ipynb
    python tools/execute_notebooks.py notebooks            # every notebook, in order

Run it through ``make execute NB=...`` / ``make execute-all`` so the environment matches ``make test``
(CPU, one thread, progress bars off). Execution metadata (timestamps), widget state and widget views
(random model ids; their text fallback stays) are stripped and stream chunks merged, so re-running
gives byte-identical files (except explicitly volatile timings);
the kernel spec is normalised, and the wall time per notebook is printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def coalesce_streams(outputs: list) -> list:
    """Merge consecutive stdout/stderr chunks: how a print is split into messages depends on timing."""
    merged: list = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1].get("name") == out.get("name"):
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
        else:
            if out.get("output_type") == "stream":
                out["text"] = "".join(out["text"])
            merged.append(out)
    return merged


def execute(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
        for out in cell.get("outputs", []):
            # widget views carry random model ids and need live widget state: keep their text fallback only
            out.get("data", {}).pop(WIDGET_VIEW, None)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("jupytext", None)
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    nbformat.write(nb, path)
    return seconds


def main(args: list[str]) -> int:
    if not args:
        print(__doc__)
        return 2
    paths: list[Path] = []
    for a in map(Path, args):
        paths += sorted(a.rglob("*.ipynb")) if a.is_dir() else [a]
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    total = 0.0
    for p in paths:
        seconds = execute(p)
        total += seconds
        print(f"{seconds:6.1f} s  {p}", flush=True)
    print(f"{total:6.1f} s  total ({len(paths)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Every notebook follows the skeleton in CONTRIBUTING.md and is stored executed.

nbval (in ``make test``) checks that stored outputs reproduce; this checks that there is
something worth comparing and that the teaching layer (interview questions, exercises) exists.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
SECTIONS = ["Learning objectives", "1. Intuition and math", "2. From scratch", "3. PyTorch",
            "4. Proof they agree", "5. Experiment", "7. Key takeaways", "8. Interview questions",
            "9. Exercises"]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _markdown(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_skeleton_sections_in_order(path: Path) -> None:
    md = _markdown(_load(path))
    headings = [h.strip() for h in re.findall(r"^#{1,3}\s+(.+)$", md, flags=re.M)]
    positions = []
    for section in SECTIONS:
        hits = [i for i, h in enumerate(headings) if h.startswith(section)]
        assert hits, f"missing section heading '## {section}'"
        positions.append(hits[0])
    assert positions == sorted(positions), f"sections out of order: {headings}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_interview_questions_and_exercises(path: Path) -> None:
    md = _markdown(_load(path))
    interview = md.split("8. Interview questions", 1)[1].split("9. Exercises", 1)[0]
    exercises = md.split("9. Exercises", 1)[1]
    assert interview.count("<details>") >= 5, "needs at least five interview questions with answers"
    n_ex = len(re.findall(r"^\*\*Exercise \d+", exercises, flags=re.M))
    assert n_ex >= 3, f"needs at least three '**Exercise N' entries, found {n_ex}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_stored_executed_in_order_without_errors(path: Path) -> None:
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "no code cells"
    counts = [c["execution_count"] for c in code]
    assert None not in counts, "some code cells were never executed: run `make execute NB=...`"
    assert counts == list(range(1, len(code) + 1)), "cells were not executed once, top to bottom"
    for c in code:
        tags = c.get("metadata", {}).get("tags", [])
        if "raises-exception" not in tags:
            assert not any(o["output_type"] == "error" for o in c["outputs"]), \
                f"stored error in a cell not tagged raises-exception: {''.join(c['source'])[:80]}"
    assert "setup_notebook" in "".join(code[0]["source"]), "first code cell must call setup_notebook()"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


FUNCTION_REPR = re.compile(r"^<function __main__\.")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_no_bare_function_repr_output(path: Path) -> None:
    """``widgets.interact(f, ...)`` returns ``f``: as a cell's last expression it stores ``<function ...>``."""
    for c in _load(path)["cells"]:
        for out in c.get("outputs", []):
            text = "".join(out.get("data", {}).get("text/plain", ""))
            assert not FUNCTION_REPR.match(text.strip()), (
                f"stored output is a bare function repr {text.strip()[:60]!r} "
                f"(assign it: `_ = widgets.interact(...)`) in cell: {''.join(c['source'])[:80]}")


def test_function_repr_check_can_fail() -> None:
    assert FUNCTION_REPR.match("<function __main__.explore(kernel='box', size=3)>")
    assert not FUNCTION_REPR.match("<Figure size 640x480 with 2 Axes>")


def test_every_chapter_folder_exists_with_readme() -> None:
    chapters = sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir() and p.name[:2].isdigit())
    assert [c[:2] for c in chapters] == [f"{i:02d}" for i in range(11)], chapters
    for c in chapters:
        assert (ROOT / "notebooks" / c / "README.md").exists(), f"{c} has no README.md"

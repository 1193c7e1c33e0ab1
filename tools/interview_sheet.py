"""Collect every notebook's interview questions into one revision sheet (Markdown).

    python tools/interview_sheet.py > build/INTERVIEW.md      # or: make interview

The sheet opens with a table of contents (chapter → notebook, with its number of questions). Each notebook's
part starts with a "key formulas" box: the display equations (``$$ … $$``) of its "1. Intuition and math"
section, taken from the notebook itself (a section without display equations contributes its tables that
contain math), so authors change nothing. Questions keep their worked answers in collapsible <details>
blocks, so the sheet doubles as a flash-card deck in any Markdown viewer (`make cards` builds a real one).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QA = re.compile(r"<details>\s*<summary>.*?</summary>(.*?)</details>", re.S)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)


def markdown_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def notebook_title(notebook: Path) -> str:
    """The text of the notebook's ``# `` heading (its file stem when it has none)."""
    md = markdown_cells(notebook)
    return next((m.splitlines()[0].lstrip("# ").strip() for m in md if m.startswith("# ")), notebook.stem)


def section(notebook: Path, start: str, end: str) -> str:
    """The markdown between the heading containing ``start`` and the next heading starting with ``end``."""
    text = "\n\n".join(markdown_cells(notebook))
    if start not in text:
        return ""
    body = text.split(start, 1)[1].split(end, 1)[0]
    return body.split("\n", 1)[1].strip() if "\n" in body else ""


def interview_section(notebook: Path) -> tuple[str, str]:
    """Return ``(title, markdown of the '8. Interview questions' section)`` of one notebook."""
    return notebook_title(notebook), section(notebook, "8. Interview questions", "## 9. Exercises")


def questions(body: str) -> list[tuple[str, str]]:
    """Split an interview section into ``(question, answer)`` markdown pairs.

    The question is the last paragraph before a ``<details>`` block, without its list marker, bold markers and
    number (``1.``, ``Q1.``); the answer is the block's content after ``</summary>``, dedented.
    """
    pairs, pos = [], 0
    for m in QA.finditer(body):
        before = [p for p in re.split(r"\n\s*\n", body[pos:m.start()]) if p.strip()]
        pos = m.end()
        if not before:
            continue
        q = " ".join(line.strip() for line in before[-1].strip().splitlines())
        q = re.sub(r"^(\d+\.|[-*])\s+", "", q)
        if q.startswith("**") and q.endswith("**") and q.count("**") == 2:
            q = q[2:-2].strip()
        q = re.sub(r"^(Q\s*\d+|\d+)[.:)]\s*", "", q)
        first, _, rest = m.group(1).partition("\n")
        answer = (first.strip() + "\n" + textwrap.dedent(rest)).strip()
        pairs.append((q, answer))
    return pairs


def is_worked_example(tex: str) -> bool:
    """A display equation that is a numeric worked example (mostly digits, e.g. a matrix of numbers)."""
    words = re.sub(r"\\[A-Za-z]+(\{[A-Za-z*]+\})?", " ", tex)   # commands and \begin{pmatrix}-like names
    return sum(ch.isdigit() for ch in words) > 2 * sum(ch.isalpha() for ch in words)


def key_formulas(notebook: Path) -> list[str]:
    """The display equations of the "1. Intuition and math" section (worked numeric examples left out).

    When the section has none, its markdown tables that contain math are returned instead (one string each).
    """
    intuition = section(notebook, "## 1. Intuition and math", "\n## 2.")
    eqs = [" ".join(e.split()) for e in DISPLAY_MATH.findall(intuition)]
    eqs = [e for e in eqs if e and not is_worked_example(e)]
    if eqs:
        return [f"$${e}$$" for e in eqs]
    tables = re.findall(r"(?:^\|.*\|[ \t]*\n?)+", intuition, re.M)
    return [t.strip() for t in tables if "$" in t]


def formula_box(formulas: list[str]) -> list[str]:
    """A Markdown blockquote titled "Key formulas" holding ``formulas`` (empty list when there are none)."""
    if not formulas:
        return []
    lines = ["> **Key formulas**", ">"]
    for f in formulas:
        lines += [f"> {line}".rstrip() for line in f.splitlines()] + [">"]
    return lines[:-1] + [""]


def anchor(notebook: Path) -> str:
    """A stable HTML anchor for a notebook: ``nb-<chapter>-<stem>``."""
    return "nb-" + re.sub(r"[^a-z0-9]+", "-", f"{notebook.parent.name}-{notebook.stem}".lower()).strip("-")


def chapter_name(folder: str) -> str:
    """``00_Core_Building_Blocks`` -> ``00 · Core Building Blocks``."""
    num, _, rest = folder.partition("_")
    return f"{num} · {rest.replace('_', ' ')}" if rest else folder


def notebooks(root: Path) -> list[Path]:
    return [p for p in sorted((root / "notebooks").rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


def sheet(root: Path = ROOT) -> str:
    """The whole revision sheet as Markdown."""
    toc: list[str] = []
    parts: list[str] = []
    count = chapters = 0
    current = None
    for nb in notebooks(root):
        title, body = interview_section(nb)
        if not body:
            continue
        n = len(questions(body))
        count += n
        if nb.parent.name != current:
            current, chapters = nb.parent.name, chapters + 1
            toc.append(f"- **{chapter_name(current)}**")
            parts += [f"## {chapter_name(current)}", ""]
        toc.append(f"  - [{title}](#{anchor(nb)}) — {n} questions")
        parts += [f'<a id="{anchor(nb)}"></a>', "", f"### {title}", f"*{nb.relative_to(root).as_posix()}*", ""]
        parts += formula_box(key_formulas(nb))
        parts += [body, ""]
    head = ["# Interview revision sheet", "",
            "Generated by `make interview` from the notebooks' *Interview questions* sections.", "",
            f"{count} questions in {chapters} chapters.", "", "## Contents", "", *toc, ""]
    return "\n".join(head + parts) + "\n"


def main() -> int:
    sys.stdout.write(sheet())
    return 0


if __name__ == "__main__":
    sys.exit(main())

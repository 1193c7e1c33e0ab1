"""Every measured number that a notebook's prose quotes appears in that notebook's stored outputs.

The convention (CONTRIBUTING.md, "Prose-number convention"): a measured number in markdown is written in
backticks exactly as a cell prints it ("the net reaches `0.9412` test accuracy", "`2.70x`"); constants the
author chose are written without backticks. This test finds every backticked markdown span that is a number
(optionally with a suffix x, ×, % or s) and checks that it occurs in the notebook's stored text outputs as a
whole token: `0.94` does not match `0.9412`, `2` does not match `2.70`, `0.5` does not match `-0.5`. So a
re-execution that changes a quoted number fails here until the prose is updated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

#: a backticked span that is a number token: sign, digits with thousands commas, decimals, exponent, suffix
NUMBER_SPAN = re.compile(r"^[-+−]?\d[\d,]*(\.\d+)?([eE][-+−]?\d+)?\s?(x|×|%|s)?$")
#: any number in output text, for the "nearest numbers that do appear" hint
ANY_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1", flags=re.M | re.S)
DOUBLE = re.compile(r"``.+?``")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
TEXT_MIMES = ("text/plain", "text/html", "text/markdown")


def _normalise(text: str) -> str:
    """Unicode minus to ASCII, so `−0.5` in prose and `-0.5` in an output are the same token."""
    return text.replace("−", "-")


def prose_numbers(markdown: str) -> list[str]:
    """The backticked number spans of one markdown text, in order (fenced code blocks skipped)."""
    markdown = DOUBLE.sub("", FENCE.sub("", markdown))
    return [span.strip() for span in INLINE.findall(markdown) if NUMBER_SPAN.match(span.strip())]


def token_pattern(number: str) -> re.Pattern:
    """A regex that finds ``number`` as a whole token, not as part of a longer number.

    Before it: no digit or letter (``conv2d`` holds no ``2``), no decimal point, no ``d,`` group, no
    ``e-``, and (for an unsigned number) no minus used as a sign. After it: no digit, no ``.d`` decimals,
    no ``,ddd`` group, no exponent. Letters may follow (``2.70`` is in ``2.70x``).
    """
    number = _normalise(number)
    before = r"(?<![\w.])(?<!\d,)(?<![eE][-+])"
    if number[0] not in "+-":
        before += r"(?<![\s(\[{=:,/<>]-)(?<!^-)"
    after = r"(?![\d])(?!\.\d)(?!,\d{3})(?![eE][-+]?\d)"
    body = re.escape(number).replace(r"\ ", r"\s?")
    return re.compile(before + body + after, flags=re.M)


def appears(number: str, outputs: str) -> bool:
    """Whether ``number`` (a prose span) occurs as a token in the stored output text."""
    return token_pattern(number).search(_normalise(outputs)) is not None


def nearest(number: str, outputs: str, k: int = 5) -> list[str]:
    """The ``k`` numbers in ``outputs`` closest in value to ``number`` (for the failure message)."""
    def value(s: str) -> float | None:
        try:
            return float(_normalise(s).rstrip("x×%s ").replace(",", ""))
        except ValueError:
            return None
    target = value(number)
    found = {m.group(0) for m in ANY_NUMBER.finditer(_normalise(outputs))}
    scored = [(abs(v - target), s) for s in found if (v := value(s)) is not None] if target is not None else []
    return [s for _, s in sorted(scored)[:k]]


def stored_text(nb: dict) -> str:
    """All stored text outputs of a notebook: streams, text/plain|html|markdown, error values."""
    parts: list[str] = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                parts.append("".join(out["text"]))
            elif out["output_type"] == "error":
                parts.append(out.get("evalue", ""))
            for mime in TEXT_MIMES:
                if mime in out.get("data", {}):
                    parts.append("".join(out["data"][mime]))
    return "\n".join(parts)


def markdown_text(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_prose_numbers_appear_in_stored_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    outputs = stored_text(nb)
    missing = [n for n in dict.fromkeys(prose_numbers(markdown_text(nb))) if not appears(n, outputs)]
    assert not missing, f"{path.relative_to(ROOT)}: prose quotes numbers no stored output prints:\n" + "\n".join(
        f"  `{n}`: nearest printed {nearest(n, outputs)}" for n in missing)


# ---------------------------------------------------------------------------------------------- the matcher
OUT = "test acc 0.9412\nim2col/F.conv2d 2.70x\nloss -0.0312  n=5,000  lr 1e-3\ngelu f'(-5) = -0.0000\n12.\n"


@pytest.mark.parametrize("number", ["0.9412", "2.70x", "2.70", "-0.0312", "−0.0312", "5,000", "1e-3",
                                    "-0.0000", "-5", "12"])
def test_matcher_finds_numbers_that_are_printed(number: str) -> None:
    assert appears(number, OUT)


@pytest.mark.parametrize("number", ["0.94", "0.941", "9412", "2.7", "2", "0.0312", "0.0000", "5", "000",
                                    "1", "3", "2.71x", "0.9413", "1.2"])
def test_matcher_rejects_missing_numbers_and_prefixes(number: str) -> None:
    assert not appears(number, OUT)


def test_prose_numbers_span_detection() -> None:
    md = ("reaches `0.9412` (`2.70x`, `55 %`, `1.5 s`); `padding=1`, `x`, `conv2d`, `(3, 3)` are not numbers\n"
          "```python\nprint(`0.5`)\n```\n``not `7` either``")
    assert prose_numbers(md) == ["0.9412", "2.70x", "55 %", "1.5 s"]


def test_nearest_names_closest_printed_numbers() -> None:
    assert nearest("0.94", OUT, k=1) == ["0.9412"]
    assert nearest("2.6x", OUT, k=2) == ["2.70", "0.9412"]


def test_stored_text_reads_streams_results_and_errors() -> None:
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["a 1.25\n"]},
        {"output_type": "execute_result", "data": {"text/plain": ["tensor(3.5)"], "image/png": "0.777"}},
        {"output_type": "error", "ename": "ValueError", "evalue": "got 42", "traceback": []}]}]}
    text = stored_text(nb)
    assert appears("1.25", text) and appears("3.5", text) and appears("42", text)
    assert not appears("0.777", text), "image data is not text output"

"""The two tools behind `make execute` and `make interview`."""

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 9.9 · Demo\n## 8. Interview questions\n**Q1.** Why?\n"
                                              "<details><summary>Answer</summary>Because.</details>"),
                nbformat.v4.new_markdown_cell("## 9. Exercises\n**Exercise 1.** Do it."),
                nbformat.v4.new_code_cell("import sys\nprint(sum(range(4)))\nsys.stdout.flush()\nprint('b')"),
                nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(3)")]
    nb.metadata["jupytext"] = {"x": 1}
    nbformat.write(nb, path)


def test_interview_section_extracts_questions(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    _notebook(path)
    title, body = _load("interview_sheet").interview_section(path)
    assert title == "9.9 · Demo"
    assert "**Q1.** Why?" in body and "<details>" in body and "Exercise" not in body


def test_execute_stores_outputs_in_order_without_volatile_metadata(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    _notebook(path)
    tool = _load("execute_notebooks")
    assert tool.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    code, widget = nb.cells[-2:]
    assert widget.outputs[0]["data"] == {"text/plain": "IntSlider(value=3)"}  # no random model id stored
    assert code.execution_count == 1 and code.outputs[0]["text"] == "6\nb\n" and len(code.outputs) == 1
    assert "execution" not in code.metadata and "jupytext" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert tool.main([]) == 2



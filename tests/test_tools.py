"""The tools behind `make execute`, `make interview`, `make cards` and `make test-browser`."""

import importlib.util
import json
import socket
import sqlite3
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

INTERVIEW_BOLD = ("## 8. Interview questions\nAnswers are collapsed.\n\n**Q1. Why $a_b$?**\n"
                  "<details><summary>Answer</summary>\n\nBecause $x < y$ and\n$$z^2 = 1$$\n</details>\n\n"
                  "**2. And `f($x$)`?**\n\n<details><summary>Answer</summary>Code.</details>")
INTERVIEW_LIST = ("## 8. Interview questions\n\n1. **Why a list?**\n   <details><summary>Answer</summary>A list\n"
                  "   wraps *lines*.</details>\n2. **Two\n   lines?**\n   <details><summary>Answer</summary>Yes."
                  "</details>")
INTUITION = ("## 1. Intuition and math\nThe rule:\n$$y = w\\,x\n + b$$\nA worked example:\n"
             "$$\\begin{pmatrix} 1 & 2\\\\ 3 & 4 \\end{pmatrix} \\cdot 2 = 20$$\n")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def _notebook(path: Path, interview: str = INTERVIEW_BOLD, intuition: str = INTUITION,
              explorer: str = "import ipywidgets\nipywidgets.IntSlider(3)") -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 9.9 · Demo\nWhy."),
                nbformat.v4.new_markdown_cell(intuition),
                nbformat.v4.new_markdown_cell("## 2. From scratch\n$$\\text{not a key formula}$$"),
                nbformat.v4.new_markdown_cell(interview),
                nbformat.v4.new_markdown_cell("## 9. Exercises\n**Exercise 1.** Do it."),
                nbformat.v4.new_code_cell("import sys\nprint(sum(range(4)))\nsys.stdout.flush()\nprint('b')"),
                nbformat.v4.new_code_cell(explorer)]
    nb.metadata["jupytext"] = {"x": 1}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _course(tmp_path: Path) -> Path:
    """A two-chapter course: 00_Alpha_Beta/01_one (bold questions), 01_Gamma/01_two (list questions)."""
    _notebook(tmp_path / "notebooks" / "00_Alpha_Beta" / "01_one.ipynb")
    _notebook(tmp_path / "notebooks" / "01_Gamma" / "01_two.ipynb", INTERVIEW_LIST,
              "## 1. Intuition and math\n| rule | $f$ |\n| --- | --- |\n| a | $x^2$ |\n\n| no | math |\n|--|--|\n")
    return tmp_path


# ------------------------------------------------------------------------------------------ interview sheet

def test_interview_section_extracts_questions(tmp_path: Path) -> None:
    path = tmp_path / "demo.ipynb"
    _notebook(path)
    title, body = _load("interview_sheet").interview_section(path)
    assert title == "9.9 · Demo"
    assert "**Q1. Why $a_b$?**" in body and "<details>" in body and "Exercise" not in body


def test_questions_reads_both_layouts_without_numbers_or_bold() -> None:
    tool = _load("interview_sheet")
    body = INTERVIEW_BOLD.split("\n", 1)[1]
    assert tool.questions(body) == [("Why $a_b$?", "Because $x < y$ and\n$$z^2 = 1$$"), ("And `f($x$)`?", "Code.")]
    assert tool.questions(INTERVIEW_LIST.split("\n", 1)[1]) == [("Why a list?", "A list\nwraps *lines*."),
                                                                 ("Two lines?", "Yes.")]


def test_key_formulas_are_the_intuition_display_equations(tmp_path: Path) -> None:
    tool = _load("interview_sheet")
    path = tmp_path / "demo.ipynb"
    _notebook(path)
    # the formula (whitespace joined), not the numeric worked example, not section 2's equation
    assert tool.key_formulas(path) == ["$$y = w\\,x + b$$"]
    assert tool.is_worked_example("\\begin{pmatrix} 1 & 2\\\\ 3 & 4 \\end{pmatrix} \\cdot 2 = 20")
    assert not tool.is_worked_example("n_\\text{out} = \\lfloor (n + 2p - k)/s \\rfloor + 1")
    assert tool.formula_box(["$$a$$", "| x |\n| y |"]) == ["> **Key formulas**", ">", "> $$a$$", ">", "> | x |",
                                                           "> | y |", ""]
    assert tool.formula_box([]) == []


def test_key_formulas_fall_back_to_tables_with_math(tmp_path: Path) -> None:
    root = _course(tmp_path)
    formulas = _load("interview_sheet").key_formulas(root / "notebooks" / "01_Gamma" / "01_two.ipynb")
    assert formulas == ["| rule | $f$ |\n| --- | --- |\n| a | $x^2$ |"]


def test_sheet_has_contents_chapters_anchors_and_formula_boxes(tmp_path: Path) -> None:
    tool = _load("interview_sheet")
    text = tool.sheet(_course(tmp_path))
    assert "4 questions in 2 chapters." in text
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert "- **00 · Alpha Beta**" in contents and "- **01 · Gamma**" in contents
    assert "  - [9.9 · Demo](#nb-00-alpha-beta-01-one) — 2 questions" in contents
    assert '<a id="nb-00-alpha-beta-01-one"></a>' in text and '<a id="nb-01-gamma-01-two"></a>' in text
    assert text.index("## 00 · Alpha Beta") < text.index("> **Key formulas**\n>\n> $$y = w\\,x + b$$") \
        < text.index("**Q1. Why") < text.index("## 01 · Gamma") < text.index("> | a | $x^2$ |")


# --------------------------------------------------------------------------------------------------- cards

def _read_package(path: Path, tmp_path: Path) -> tuple[list[list[str]], list[str], dict]:
    with zipfile.ZipFile(path) as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    notes = [(guid, flds.split("\x1f")) for guid, flds in con.execute("select guid, flds from notes order by id")]
    decks = [d["name"] for d in json.loads(con.execute("select decks from col").fetchone()[0]).values()]
    models = json.loads(con.execute("select models from col").fetchone()[0])
    n_cards = con.execute("select count(*) from cards").fetchone()[0]
    con.close()
    assert n_cards == len(notes)
    return notes, decks, models


def test_cards_round_trip_through_the_package(tmp_path: Path) -> None:
    tool = _load("anki_cards")
    root = _course(tmp_path / "course")
    path = tmp_path / "out" / "interview.apkg"
    assert tool.write(path, root) == 4
    notes, decks, models = _read_package(path, tmp_path)
    assert len(notes) == 4
    assert {f"{tool.DECK}::00 · Alpha Beta", f"{tool.DECK}::01 · Gamma"} <= set(decks)
    assert str(tool.MODEL_ID) in models
    fields = [f for _, f in notes]
    assert fields[0][:2] == ["Why \\(a_b\\)?", "Because \\(x &lt; y\\) and\n\\[z^2 = 1\\]"]
    assert fields[1][0] == "And <code>f($x$)</code>?"                 # code is not math
    assert fields[2][:2] == ["Why a list?", "A list\nwraps <em>lines</em>."]
    assert fields[0][2] == "9.9 · Demo — notebooks/00_Alpha_Beta/01_one.ipynb"
    # ids are stable: a second build gives the same guids (Anki updates instead of duplicating)
    tool.write(tmp_path / "again.apkg", root)
    assert [g for g, _ in _read_package(tmp_path / "again.apkg", tmp_path / "again")[0]] == [g for g, _ in notes]
    assert tool.stable_id("x") == tool.stable_id("x") != tool.stable_id("y")
    assert 1 << 30 <= tool.stable_id("x") < 1 << 31


def test_to_html_keeps_math_and_escapes_it() -> None:
    to_html = _load("anki_cards").to_html
    assert to_html("a $x_1 * y_2$ b") == "a \\(x_1 * y_2\\) b"        # no <em> inside math
    assert to_html("$$\n a <\n b\n$$") == "\\[a &lt; b\\]"
    assert to_html("costs \\$5 and $k$") == "costs $5 and \\(k\\)"
    assert to_html("`$HOME`") == "<code>$HOME</code>"


def test_cards_cli_needs_one_path() -> None:
    assert _load("anki_cards").main([]) == 2


# ---------------------------------------------------------------------------------------------- execute

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


# ---------------------------------------------------------------------------------------------- browser

def test_browser_test_discovers_notebooks_with_an_explorer(tmp_path: Path) -> None:
    tool = _load("browser_test")
    _notebook(tmp_path / "a" / "01_call.ipynb", explorer="_ = widgets.interact(f, x=(0, 3))")
    _notebook(tmp_path / "a" / "02_decorator.ipynb", explorer="@W.interact(x=1)\ndef f(x):\n    pass")
    _notebook(tmp_path / "b" / "01_none.ipynb", explorer="interactive_thing = 1  # not an interact call")
    _notebook(tmp_path / "a" / ".ipynb_checkpoints" / "01_call-checkpoint.ipynb", explorer="interact(f)")
    found = tool.discover([tmp_path])
    assert [p.name for p in found] == ["01_call.ipynb", "02_decorator.ipynb"]
    assert tool.discover([tmp_path / "b" / "01_none.ipynb"]) == []


def test_browser_test_discovers_every_course_explorer() -> None:
    tool = _load("browser_test")
    found = tool.discover([ROOT / "notebooks"])
    assert ROOT / "notebooks" / "00_Core_Building_Blocks" / "01_convolution.ipynb" in found
    assert all("interact" in p.read_text() for p in found)


def _snap(text: str = "out", images=((1, 120.0, 30.0),), errors=()) -> dict:
    return {"text": text, "errors": list(errors),
            "images": [{"src": str(src), "w": 640, "h": 480 if w else 0, "std": std} for src, w, std in images]}


def test_browser_problems_catch_unchanged_blank_and_error_outputs() -> None:
    problems = _load("browser_test").problems
    base = _snap()
    assert problems(base, _snap(images=((2, 1, 25.0),)), base, "k=3") == []
    assert problems(base, _snap(), base, "k=3") == ["k=3: the output area did not change"]
    blank = problems(base, _snap(text="new", images=((3, 1, 0.0),)), base, "kind='Sobel'")   # uniform image
    assert blank == ["kind='Sobel': blank output area (0 drawn image(s), the default view had 1)"]
    gone = problems(base, _snap(text="new", images=()), base, "k")
    assert gone == ["k: blank output area (0 drawn image(s), the default view had 1)"]
    assert problems(base, _snap(text="", images=()), _snap(images=()), "k") == ["k: the output area is empty"]
    err = problems(base, _snap(text="Traceback", errors=["Traceback (most recent call last)"]), base, "p")
    assert err == ["p: the output shows 'Traceback (most recent call last)'"]


def test_browser_function_reprs_and_lab_command(tmp_path: Path) -> None:
    tool = _load("browser_test")
    outputs = [{"output_type": "display_data", "data": {"text/plain": "interactive(children=...)"}},
               {"output_type": "execute_result", "data": {"text/plain": "<function __main__.f(x=1)>"}}]
    assert tool.function_reprs(outputs) == ["<function __main__.f(x=1)>"]
    assert tool.function_reprs(outputs[:1]) == []
    cmd = tool.lab_command(8123, "tok", tmp_path, tmp_path / "state")
    assert "--ServerApp.port=8123" in cmd and "--IdentityProvider.token=tok" in cmd
    assert f"--LabApp.app_settings_dir={tool.SETTINGS}" in cmd and "--ServerApp.ip=127.0.0.1" in cmd
    assert f"--LabApp.user_settings_dir={tmp_path / 'state' / 'user-settings'}" in cmd
    with socket.socket() as s:
        s.bind(("127.0.0.1", tool.free_port()))


def test_browser_test_reports_a_missing_browser(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    tool = _load("browser_test")
    monkeypatch.setattr(tool, "CHROMIUM", "/nonexistent/chromium")
    assert tool.main([]) == 2
    assert "apt-get install chromium chromium-driver" in capsys.readouterr().err


def test_project_lab_settings_turn_off_news_and_update_checks() -> None:
    overrides = json.loads((ROOT / "jupyter-config" / "lab" / "settings" / "overrides.json").read_text())
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    schema = ROOT / ".venv" / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension" \
        / "notification.json"
    if schema.exists():   # the names and values are the ones JupyterLab's schema defines
        props = json.loads(schema.read_text())["properties"]
        assert {"const": "false", "title": "Never"} in props["fetchNews"]["oneOf"]
        assert props["checkForUpdates"]["type"] == "boolean"


def test_project_lab_settings_keep_widget_callbacks_on_the_main_thread() -> None:
    """JupyterLab >= 4.4 sends widget comm messages to a kernel subshell (a second thread) by default.

    Measured with ``make test-browser`` (a logging ``print_figure`` in the kernel): the first explorer updates after
    "run all" were then handled in the main shell *and* the subshell at once, pyplot raced between the two threads
    and the figure that arrived last was a blank white PNG (00/01, 07/02, 09/01). With the setting off every render
    ran on the main thread and none was blank.
    """
    overrides = json.loads((ROOT / "jupyter-config" / "lab" / "settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:kernels-settings"] == {"commsOverSubshells": "disabled"}
    schema = ROOT / ".venv" / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension" \
        / "kernels-settings.json"
    if schema.exists():   # the name and value are the ones JupyterLab's schema defines
        prop = json.loads(schema.read_text())["properties"]["commsOverSubshells"]
        assert {"const": "disabled", "title": "Disabled"} in prop["oneOf"]


def test_browser_test_retries_a_failed_notebook_once_and_reports_both_attempts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    tool = _load("browser_test")
    flaky, broken = tmp_path / "flaky.ipynb", tmp_path / "broken.ipynb"
    for nb in (flaky, broken):
        nb.write_text("{}")
    attempts: dict[str, int] = {}

    class FakeRun:
        def __init__(self, driver, lab, notebook, root_dir, timeout) -> None:
            self.nb = notebook

        def run(self):
            attempts[self.nb.name] = attempts.get(self.nb.name, 0) + 1
            res = tool.Result(self.nb, checks=1)
            if self.nb == broken or attempts[self.nb.name] == 1:
                res.failures.append(f"attempt {attempts[self.nb.name]} failed")
            return res

    class FakeLab:
        def __init__(self, *args) -> None: ...
        def stop(self) -> None: ...

    class FakeDriver:
        def quit(self) -> None: ...

    monkeypatch.setattr(tool, "CHROMIUM", sys.executable)
    monkeypatch.setattr(tool, "CHROMEDRIVER", sys.executable)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "OUT", tmp_path / "out")
    monkeypatch.setattr(tool, "discover", lambda paths: [flaky, broken])
    monkeypatch.setattr(tool, "Lab", FakeLab)
    monkeypatch.setattr(tool, "start_chromium", lambda profile: FakeDriver())
    monkeypatch.setattr(tool, "NotebookRun", FakeRun)
    assert tool.main(["-j", "2"]) == 1                   # broken fails twice: red
    out = capsys.readouterr().out
    assert attempts == {"flaky.ipynb": 2, "broken.ipynb": 2}
    assert out.count("RETRY") == 2 and out.count("FAIL ") == 1 and "attempt 1 failed" in out
    assert "1/2 notebooks passed" in out
    attempts.clear()
    assert tool.main(["--retries", "0"]) == 1           # no retry: flaky fails too
    assert attempts == {"flaky.ipynb": 1, "broken.ipynb": 1}


def test_browser_test_runs_kernels_in_the_makefile_environment() -> None:
    """The explorers in the browser run with the same variables as `make test` (threads, device, CPU ISA)."""
    import re

    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    assigns = dict(re.findall(r"^(\w+) := (.*)$", makefile, flags=re.M))
    words = " ".join(assigns["RUN_ENV"].split()).replace("$(CPU_ISA)", assigns["CPU_ISA"]).split()
    make_env = dict(w.split("=", 1) for w in words)
    assert make_env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert _load("browser_test").RUN_ENV == make_env

"""Prove the interactive explorers work in a real browser: JupyterLab + Debian's Chromium, driven by selenium.

    python tools/browser_test.py                     # every notebook with an `interact` explorer (make test-browser)
    python tools/browser_test.py notebooks/00_Core_Building_Blocks/01_convolution.ipynb

For each notebook that calls ``interact`` (found automatically, so new chapters are included) it

1. opens the notebook in a headless JupyterLab (free localhost port, random token, the project's settings from
   ``jupyter-config/lab/settings``, autosave off so the files on disk are never rewritten),
2. runs all cells and waits for the kernel to go idle (cells tagged ``raises-exception`` may fail, no other),
3. moves the explorer's first slider one step, then picks every option of every dropdown in turn, and after each
   change asserts that the explorer's output area changed, is not blank (it still shows as many non-uniform
   images as the default view did) and shows no traceback, "Error displaying widget" or "Error rendering output
   item"; the interact cell must not show a ``<function ...>`` repr either,
4. saves a screenshot under ``build/browser/`` (also when a check fails).

A notebook that fails is opened again in a fresh kernel (``--retries``, default 1) and every failed attempt
is printed, so an intermittent failure stays visible. Exit status 0 when every notebook passes. JupyterLab
(with its kernels) and Chromium are stopped on the way out, whatever happened. Needs ``/usr/bin/chromium``
and ``/usr/bin/chromedriver`` (Debian: ``apt-get install chromium chromium-driver``); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SETTINGS = ROOT / "jupyter-config" / "lab" / "settings"
OUT = ROOT / "build" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1300,1500")
# the same environment as `make test`, so the kernels behave as under nbval
RUN_ENV = {"DLHELPERS_DEVICE": "cpu", "DLHELPERS_PROGRESS": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONHASHSEED": "0", "TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
ERROR_TEXTS = ("Error displaying widget", "Error rendering output item", "Traceback (most recent call last)")
INTERACT = re.compile(r"\binteract(_manual)?\s*\(")
NEWS_PROMPT = "official Jupyter news"
VERBOSE = False


# ----------------------------------------------------------------------------------------- pure helpers (tested)

def has_explorer(notebook: Path) -> bool:
    """True when a code cell of ``notebook`` calls ``interact(...)`` (``widgets.interact``, ``@W.interact(...)``)."""
    cells = json.loads(notebook.read_text())["cells"]
    return any(c["cell_type"] == "code" and INTERACT.search("".join(c["source"])) for c in cells)


def discover(paths: list[Path]) -> list[Path]:
    """The notebooks with an explorer among ``paths`` (files or folders searched recursively), sorted."""
    found: list[Path] = []
    for p in paths:
        found += sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
    return [p.resolve() for p in found if ".ipynb_checkpoints" not in p.parts and has_explorer(p)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, root_dir: Path, state: Path) -> list[str]:
    """The JupyterLab command line: headless, localhost only, project settings, throw-away user state."""
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root_dir}", f"--LabApp.app_settings_dir={SETTINGS}",
           f"--LabApp.user_settings_dir={state / 'user-settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def problems(before: dict[str, Any], after: dict[str, Any], baseline: dict[str, Any], what: str) -> list[str]:
    """What is wrong with the explorer's output area ``after`` a change (``before``: just before it).

    A snapshot (see ``SNAPSHOT_JS``) has ``text`` (rendered text), ``images`` (list of ``{"src", "w", "h",
    "std"}``: data-URI hash, natural size, pixel standard deviation) and ``errors`` (error texts found).
    ``baseline`` is the view right after "run all"; the output must keep at least as many visible, non-uniform
    images as it had (a blank figure area is the failure this catches).
    """
    out = []
    if signature(after) == signature(before):
        out.append(f"{what}: the output area did not change")
    for err in after["errors"]:
        out.append(f"{what}: the output shows {err!r}")
    n_drawn, expected = len(drawn(after)), len(drawn(baseline))
    if n_drawn < expected:
        out.append(f"{what}: blank output area ({n_drawn} drawn image(s), the default view had {expected})")
    if not after["images"] and not after["text"].strip():
        out.append(f"{what}: the output area is empty")
    return out


def drawn(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The images of a snapshot that are loaded and not uniform (a blank canvas has pixel spread ~0)."""
    return [im for im in snapshot["images"] if im["w"] > 0 and im["h"] > 0 and im["std"] > 1.0]


def signature(snapshot: dict[str, Any]) -> str:
    """What the reader sees in an output area, as one comparable string."""
    return snapshot["text"] + "|" + "|".join(im["src"] for im in snapshot["images"])


def function_reprs(outputs: list[dict[str, Any]]) -> list[str]:
    """``<function __main__.f(...)>`` reprs among a cell's outputs (what a bare ``interact(f)`` leaves behind)."""
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in outputs]
    return [t for t in texts if t.startswith("<function ")]


# ------------------------------------------------------------------------------------------------ browser side

# The explorer's output area: rendered text, images (hash of the data URI, size, pixel spread), error texts.
SNAPSHOT_JS = """
const box = arguments[0].querySelector('.widget-output');
if (!box) { return null; }
const hash = s => { let h = 0; for (let i = 0; i < s.length; i++) { h = (h * 31 + s.charCodeAt(i)) | 0; }
                    return s.length + ':' + h; };
const images = Array.from(box.querySelectorAll('img')).map(img => {
  let std = 0;
  if (img.complete && img.naturalWidth > 0) {
    const c = document.createElement('canvas'); c.width = 64; c.height = 64;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 64);
    const d = g.getImageData(0, 0, 64, 64).data; let s = 0, s2 = 0, n = 0;
    for (let i = 0; i < d.length; i += 4) { const v = (d[i] + d[i + 1] + d[i + 2]) / 3; s += v; s2 += v * v; n++; }
    std = Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
  }
  return {src: hash(img.src), w: img.naturalWidth, h: img.naturalHeight, std: std};
});
const text = box.innerText;
const errors = arguments[1].filter(e => text.includes(e));
if (box.querySelector('[data-mime-type="application/vnd.jupyter.error"]')) { errors.push('an error output'); }
return {text: text, images: images, errors: errors};
"""

NOTEBOOK_STATE_JS = """
const app = window.jupyterapp; if (!app) { return null; }
const w = app.shell.currentWidget;
if (!w || !w.content || !w.sessionContext || !w.context || !w.context.isReady) { return null; }
const k = w.sessionContext.session && w.sessionContext.session.kernel;
const cells = w.content.widgets.map(c => ({type: c.model.type,
  count: c.model.type === 'code' ? c.model.executionCount : 0,
  tags: c.model.getMetadata('tags') || [],
  outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : []}));
return {kernel: k ? k.status : 'none', pending: w.sessionContext.pendingInput || false, cells: cells};
"""


@dataclass
class Result:
    notebook: Path
    failures: list[str] = field(default_factory=list)
    checks: int = 0
    seconds: float = 0.0
    screenshot: Path | None = None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Lab:
    """A headless JupyterLab server in its own process group (so its kernels die with it)."""

    def __init__(self, root_dir: Path, state: Path, log: Path) -> None:
        self.port, self.token, self.state = free_port(), secrets.token_hex(16), state
        for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                               "notebook-extension/tracker": {"kernelShutdown": False}}.items():
            f = state / "user-settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = {**os.environ, **RUN_ENV, "JUPYTER_CONFIG_DIR": str(state / "config"),
               "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(state / "user-settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces")}
        self.log = log.open("w")
        self.proc = subprocess.Popen(lab_command(self.port, self.token, root_dir, state), cwd=root_dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(self._up, 90, "JupyterLab to answer")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with status {self.proc.returncode}; see {self.log.name}")
        try:
            return self.api("GET", "/api/status") is not None
        except OSError:
            return False

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else {}

    def shutdown_kernels(self, path: str) -> None:
        """Shut down the kernel sessions of the notebook at ``path`` (relative to the server root)."""
        for s in self.api("GET", "/api/sessions"):
            if s.get("path") == path:
                self.api("DELETE", f"/api/sessions/{s['id']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=15)
        self.log.close()


def start_chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


class NotebookRun:
    """One notebook in the browser: open, run all, exercise the explorer, screenshot."""

    def __init__(self, driver, lab: Lab, notebook: Path, root_dir: Path, timeout: float) -> None:
        self.driver, self.lab, self.nb, self.timeout = driver, lab, notebook, timeout
        self.rel = notebook.resolve().relative_to(root_dir.resolve()).as_posix()
        self.result = Result(notebook)
        self.t0 = time.monotonic()

    def log(self, message: str) -> None:
        if VERBOSE:
            print(f"  {time.monotonic() - self.t0:6.1f} s  {self.nb.stem}: {message}", flush=True)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def state(self) -> dict[str, Any] | None:
        return self.js(NOTEBOOK_STATE_JS)

    def run_all(self) -> None:
        """Activate the notebook's tab (commands act on the current one) and run all its cells."""
        self.accept_dialogs()
        self.js("const app = window.jupyterapp; const w = app.shell.currentWidget;"
                "if (w) { app.shell.activateById(w.id); }"
                "app.commands.execute('notebook:run-all-cells');")

    def accept_dialogs(self) -> bool:
        """Accept a dialog in the way (e.g. "Select Kernel": the notebook's own kernel is the default)."""
        buttons = self.driver.find_elements("css selector", ".jp-Dialog .jp-mod-accept")
        for b in buttons:
            try:
                b.click()
            except Exception:  # noqa: BLE001 - the dialog may close by itself
                pass
        return False

    def idle(self) -> bool:
        s = self.state()
        return bool(s) and s["kernel"] == "idle"

    def run(self) -> Result:
        start = time.monotonic()
        try:
            self.open_and_run_all()
            self.exercise_explorers()
        except Exception as err:  # noqa: BLE001 - any failure is reported with the notebook's name
            self.result.failures.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        finally:
            self.result.screenshot = self.screenshot()
            self.result.seconds = time.monotonic() - start
            self.leave()
        return self.result

    def open_and_run_all(self) -> None:
        # a workspace of its own, reset: JupyterLab must not restore (and start kernels for) earlier notebooks
        workspace = re.sub(r"[^A-Za-z0-9]+", "-", self.rel)
        self.driver.get(f"{self.lab.url}/lab/workspaces/{workspace}/tree/{self.rel}?reset&token={self.lab.token}")
        wait_for(lambda: self.accept_dialogs() or self.idle(), 90, "the notebook to open with an idle kernel")
        self.log("opened, kernel idle")
        self.run_all()
        n_code = sum(c["type"] == "code" for c in self.state()["cells"])

        def finished() -> dict[str, Any] | None:
            s = self.state()
            done = [c for c in s["cells"] if c["type"] == "code" and c["count"] is not None]
            return s if s["kernel"] == "idle" and len(done) == n_code else None

        deadline = time.monotonic() + self.timeout
        progress, since, retries = -1, time.monotonic(), 0
        while True:
            s = finished()
            if s:
                break
            s = self.state()
            done = sum(c["type"] == "code" and c["count"] is not None for c in s["cells"])
            if done != progress or s["kernel"] != "idle":
                progress, since = done, time.monotonic()
            elif time.monotonic() - since > 10 and done == 0 and retries < 2:  # the command found no notebook
                self.log("nothing ran: run all again")
                retries += 1
                self.run_all()
                since = time.monotonic()
            elif time.monotonic() - since > 10:  # idle without progress: JupyterLab stopped at an error
                first = next(i for i, c in enumerate(s["cells"]) if c["type"] == "code" and c["count"] is None)
                raise RuntimeError(f"run all stopped before cell {first}: {self.errors_in(s)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"run all did not finish within {self.timeout:.0f} s")
            time.sleep(0.5)
        self.result.checks += 1
        self.log("run all finished")
        for i, cell in enumerate(s["cells"]):
            errs = [o for o in cell["outputs"] if o.get("output_type") == "error"]
            if errs and "raises-exception" not in cell["tags"]:
                self.result.failures.append(f"cell {i} raised {errs[0].get('ename')}: {errs[0].get('evalue')}")
            if function_reprs(cell["outputs"]):
                self.result.failures.append(f"cell {i} shows {function_reprs(cell['outputs'])[0][:60]!r}")
        body = self.js("return document.body.textContent;")
        for text in ERROR_TEXTS[:2]:
            if text in body:
                self.result.failures.append(f"the notebook shows {text!r}")
        if NEWS_PROMPT in body:
            self.result.failures.append("JupyterLab asks about Jupyter news (project settings not applied)")

    @staticmethod
    def errors_in(state: dict[str, Any]) -> str:
        errs = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(state["cells"])
                for o in c["outputs"] if o.get("output_type") == "error"]
        return "; ".join(errs) or "no error output"

    def snapshot(self, box) -> dict[str, Any]:
        snap = self.js(SNAPSHOT_JS, box, list(ERROR_TEXTS))
        if snap is None:
            raise RuntimeError("the explorer has no output area")
        return snap

    def settled(self, box, before: dict[str, Any], expect_images: int = 0, timeout: float = 60,
                grace: float = 15) -> dict[str, Any]:
        """Wait until the kernel is idle and the output area stopped changing, then snapshot it.

        An area that does not change gets ``grace`` seconds to change; rendering lags the kernel (an image is
        decoded after its message arrived), so the area must then be unchanged for a second, and an area with
        fewer than ``expect_images`` drawn images gets ``grace`` more seconds.
        """
        t0 = time.monotonic()
        while time.monotonic() - t0 < grace:  # the change reaches the kernel and comes back: allow for a busy CPU
            if signature(self.snapshot(box)) != signature(before):
                break
            time.sleep(0.2)
        wait_for(self.idle, timeout, "the kernel to finish the explorer update")
        t_idle = time.monotonic()
        last, stable_since = self.snapshot(box), time.monotonic()
        while True:
            time.sleep(0.25)
            now = self.snapshot(box)
            if signature(now) != signature(last) or any(im["w"] == 0 for im in now["images"]):
                last, stable_since = now, time.monotonic()
                continue
            complete = len(drawn(now)) >= expect_images
            if time.monotonic() - stable_since >= 1.0 and (complete or time.monotonic() - t_idle > grace):
                return now
            if time.monotonic() - t0 > timeout:
                return now

    def exercise_explorers(self) -> None:
        from selenium.webdriver.common.by import By

        boxes = wait_for(lambda: self.driver.find_elements(By.CSS_SELECTOR, ".widget-interact"), 60,
                         "the explorer widget to render")
        for n, box in enumerate(boxes):
            self.js("arguments[0].scrollIntoView({block: 'start'});", box)
            self.log(f"explorer {n} found")
            baseline = self.settled(box, {"text": "", "images": [], "errors": []})
            self.log(f"explorer {n} default view settled: {len(drawn(baseline))} image(s)")
            if baseline["errors"]:
                self.result.failures.append(f"explorer {n} default view shows {baseline['errors']}")
            self.check_slider(box, baseline, n)
            self.check_dropdowns(box, baseline, n)
            self.js("arguments[0].scrollIntoView({block: 'start'});", box)

    def record(self, before: dict[str, Any], after: dict[str, Any], baseline: dict[str, Any], what: str,
               box) -> None:
        self.result.checks += 1
        self.log(f"checked {what}: text {after['text'][:70]!r}, images "
                 f"{[(im['w'], im['h'], round(im['std'], 1)) for im in after['images']]}")
        found = problems(before, after, baseline, what)
        if found:
            shot = self.screenshot(suffix=f"check{self.result.checks}")
            if shot is not None:
                self.save_images(box, shot.with_suffix(""))
        self.result.failures += found

    def check_slider(self, box, baseline: dict[str, Any], n: int) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        sliders = box.find_elements(By.CSS_SELECTOR, ".widget-slider")
        if not sliders:
            return
        slider = sliders[0]
        name = slider.find_element(By.CSS_SELECTOR, ".widget-label").text or "slider"
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
        value = readout.text
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        before = self.snapshot(box)
        self.js("arguments[0].scrollIntoView({block: 'center'});", handle)
        handle.click()
        handle.send_keys(Keys.ARROW_LEFT if at_max else Keys.ARROW_RIGHT)
        self.log(f"slider {name!r} key sent")
        try:
            wait_for(lambda: readout.text != value, 5, f"slider {name!r} to move")
        except TimeoutError:  # some sliders ignore the arrow keys: drag the handle instead
            from selenium.webdriver.common.action_chains import ActionChains

            ActionChains(self.driver).drag_and_drop_by_offset(handle, -20 if at_max else 20, 0).perform()
            try:
                wait_for(lambda: readout.text != value, 15, f"slider {name!r} to move (keys, then a drag)")
            except TimeoutError as err:
                self.result.failures.append(f"explorer {n}: {err}")
                return
        after = self.settled(box, before, len(drawn(baseline)))
        self.record(before, after, baseline, box=box, what=f"explorer {n}, slider {name!r} {value} -> {readout.text}")

    def check_dropdowns(self, box, baseline: dict[str, Any], n: int) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        for dd in box.find_elements(By.CSS_SELECTOR, ".widget-dropdown"):
            name = dd.find_element(By.CSS_SELECTOR, ".widget-label").text or "dropdown"
            select = Select(dd.find_element(By.TAG_NAME, "select"))
            start = select.first_selected_option.text
            options = [o.text for o in select.options]
            for option in options[options.index(start) + 1:] + options[:options.index(start) + 1]:
                before = self.snapshot(box)
                self.js("arguments[0].scrollIntoView({block: 'center'});", dd)
                select.select_by_visible_text(option)
                after = self.settled(box, before, len(drawn(baseline)))
                self.record(before, after, baseline, f"explorer {n}, {name} = {option!r}", box)

    def screenshot(self, suffix: str = "") -> Path | None:
        stem = self.rel.replace("/", "__").removesuffix(".ipynb")
        path = OUT / f"{stem}{'__' + re.sub(r'[^A-Za-z0-9_-]', '', suffix) if suffix else ''}.png"
        try:
            self.driver.save_screenshot(str(path))
            return path
        except Exception:  # noqa: BLE001 - a screenshot is best effort
            return None

    def save_images(self, box, stem: Path) -> None:
        """Save the PNGs the explorer's output area holds (to tell a blank figure from one not painted)."""
        srcs = self.js("return Array.from(arguments[0].querySelectorAll('.widget-output img')).map(i => i.src);", box)
        for i, src in enumerate(srcs or []):
            if src.startswith("data:image/png;base64,"):
                stem.with_name(f"{stem.name}-img{i}.png").write_bytes(base64.b64decode(src.split(",", 1)[1]))

    def leave(self) -> None:
        """Mark the document clean (no "leave page?" dialog, nothing saved) and shut its kernel down."""
        try:
            self.js("const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                    "if (w && w.context) { w.context.model.dirty = false; }")
        except Exception:  # noqa: BLE001
            pass
        try:
            self.lab.shutdown_kernels(self.rel)
        except OSError:
            pass


def digest(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[NOTEBOOKS], help="notebooks or folders")
    parser.add_argument("--timeout", type=float, default=240, help="seconds for one notebook's 'run all'")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="notebooks run at the same time (browsers)")
    parser.add_argument("--retries", type=int, default=1,
                        help="run a failed notebook again, in a fresh kernel, up to this many times; every failed "
                             "attempt is still printed (default 1: a check on an overloaded machine may time out)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the time of each step")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists():
            print(f"{exe} not found: install Debian's chromium and chromium-driver (apt-get install chromium "
                  "chromium-driver)", file=sys.stderr)
            return 2
    notebooks = discover(args.paths)
    if not notebooks:
        print("no notebook with an interact explorer found", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    hashes = digest(notebooks)
    state = Path(tempfile.mkdtemp(prefix="browser-test-"))
    results: list[Result] = []
    lab, drivers, lock = None, [], threading.Lock()
    queue = [(nb, 1) for nb in notebooks]
    t0 = time.monotonic()

    def worker(driver) -> None:
        while True:
            with lock:
                if not queue:
                    return
                nb, attempt = queue.pop(0)
            res = NotebookRun(driver, lab, nb, ROOT, args.timeout).run()
            with lock:
                again = bool(res.failures) and attempt <= args.retries
                if again:
                    queue.append((nb, attempt + 1))
                else:
                    results.append(res)
                status = "ok  " if not res.failures else ("RETRY" if again else "FAIL")
                tried = f" (attempt {attempt})" if attempt > 1 or again else ""
                print(f"{status:5s} {res.seconds:5.1f} s  {res.checks:2d} checks  {nb.relative_to(ROOT)}{tried}",
                      flush=True)
                for f in res.failures:
                    print(f"       - {f}", flush=True)

    try:
        lab = Lab(ROOT, state, OUT / "jupyterlab.log")
        for i in range(max(1, min(args.jobs, len(notebooks)))):
            drivers.append(start_chromium(state / f"chromium-profile-{i}"))
        threads = [threading.Thread(target=worker, args=(d,), daemon=True) for d in drivers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001 - Chromium may already be gone
                pass
        if lab is not None:
            lab.stop()
        shutil.rmtree(state, ignore_errors=True)
    changed = [p for p, h in digest(notebooks).items() if h != hashes[p]]
    for p in changed:
        print(f"FAIL {p.relative_to(ROOT)} changed on disk during the run (autosave is off here: someone else?)")
    failed = [r for r in results if r.failures]
    print(f"{len(results) - len(failed)}/{len(results)} notebooks passed in {time.monotonic() - t0:.0f} s; "
          f"screenshots in {OUT.relative_to(ROOT)}/")
    return 1 if failed or changed or len(results) < len(notebooks) else 0


if __name__ == "__main__":
    sys.exit(main())

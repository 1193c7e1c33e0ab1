"""requirements.txt and environment.yml must pin the same packages at the same versions."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_and_environment_yml_agree() -> None:
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env_lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_section = env_lines[next(i for i, line in enumerate(env_lines) if line.strip() == "- pip:") + 1:]
    env = _pins(pip_section)
    assert req, "requirements.txt pins nothing"
    assert req == env, {"only in requirements.txt": req.keys() - env.keys(),
                        "only in environment.yml": env.keys() - req.keys(),
                        "different": {k for k in req.keys() & env.keys() if req[k] != env[k]}}


def test_every_requirement_is_pinned_exactly() -> None:
    lines = [ln.split("#", 1)[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    loose = [ln for ln in lines if ln and "==" not in ln]
    assert not loose, f"unpinned requirements: {loose}"


def test_torch_pair_is_the_one_that_installs_here() -> None:
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    assert req["torch"] == "2.14.1" and req["torchvision"] == "0.29.1"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()

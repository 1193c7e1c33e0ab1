import random

import numpy as np
import pytest
import torch

from dlhelpers import utils


def test_seed_everything_repeats_all_generators() -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    utils.seed_everything(123)
    first = draw()
    utils.seed_everything(123)
    assert draw() == first
    utils.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seed(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        utils.seed_everything(bad)  # type: ignore[arg-type]


def test_get_device_respects_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(utils.DEVICE_ENV, "cpu")
    assert utils.get_device() == torch.device("cpu")
    monkeypatch.setenv(utils.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="got 'tpu'"):
        utils.get_device()
    monkeypatch.delenv(utils.DEVICE_ENV)
    assert utils.get_device().type in {"cpu", "cuda", "mps"}


def test_progress_is_silent_when_disabled(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv(utils.PROGRESS_ENV, "0")
    assert list(utils.progress(range(5), desc="x")) == [0, 1, 2, 3, 4]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    monkeypatch.setenv(utils.PROGRESS_ENV, "1")
    assert utils.progress_enabled()


@pytest.mark.parametrize("seconds, expected", [(2.5, "[time] 2.5 s"), (0.0123, "[time] 12.3 ms"),
                                               (4.2e-6, "[time] 4.2 µs"), (3e-9, "[time] 3 ns"),
                                               (0.99996, "[time] 1000 ms"), (4321.0, "[time] 4321 s")])
def test_format_time(seconds: float, expected: str) -> None:
    assert utils.format_time(seconds) == expected


def test_benchmark_and_timer() -> None:
    calls = []
    t = utils.benchmark(lambda: calls.append(1), repeat=3, number=2, warmup=1)
    assert t >= 0 and len(calls) == 1 + 3 * 2
    with pytest.raises(ValueError, match="repeat and number"):
        utils.benchmark(lambda: None, repeat=0)
    with utils.Timer() as timer:
        sum(range(1000))
    assert timer.seconds >= 0 and str(timer).startswith("[time]")


def test_setup_notebook_returns_cpu_under_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(utils.DEVICE_ENV, "cpu")
    assert utils.setup_notebook(seed=1) == torch.device("cpu")
    a = torch.rand(2)
    utils.setup_notebook(seed=1)
    assert torch.equal(a, torch.rand(2))


def test_best_of_interleaves_and_keeps_each_minimum() -> None:
    calls: list[str] = []
    now = [0.0]
    durations = {"a": iter([9.0, 9.0, 3.0, 5.0, 4.0]), "b": iter([9.0, 9.0, 2.0, 1.0, 7.0])}  # 2 warmups, 3 rounds

    def make(name: str):
        def f() -> None:
            calls.append(name)
            now[0] += next(durations[name])
        return f

    best = utils.best_of({"a": make("a"), "b": make("b")}, rounds=3, warmup=2, clock=lambda: now[0])
    assert best == {"a": 3.0, "b": 1.0}
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3  # warm-ups first, then interleaved rounds
    with pytest.raises(ValueError, match="rounds >= 1 and warmup >= 0, got rounds=0"):
        utils.best_of({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="at least one function"):
        utils.best_of({})

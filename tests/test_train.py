import pytest
import torch
from torch import nn

from dlhelpers import data, train


def _tiny_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(120, 4, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return data.make_loaders(X, y, batch_size=16, seed=seed)


def _run(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    tl, vl = _tiny_problem(seed)
    return train.fit(model, tl, vl, epochs=kwargs.pop("epochs", 8), optimizer=opt, device=torch.device("cpu"),
                     show_progress=False, **kwargs), model


def test_fit_learns_and_records_history() -> None:
    hist, _ = _run()
    assert set(hist) >= {"train_loss", "train_acc", "val_loss", "val_acc", "lr"}
    assert all(len(v) == 8 for v in hist.values())
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_acc"][-1] > 0.8


def test_fit_is_reproducible() -> None:
    assert _run(3)[0] == _run(3)[0]


def test_evaluate_matches_manual_computation() -> None:
    hist, model = _run(epochs=2)
    _, vl = _tiny_problem()
    X = torch.cat([xb for xb, _ in vl])
    y = torch.cat([yb for _, yb in vl])
    with torch.no_grad():
        logits = model(X)
    res = train.evaluate(model, vl)
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert res["acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert res["acc"] == pytest.approx(hist["val_acc"][-1])


def test_accuracy_accepts_soft_labels() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert train.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    soft = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    assert train.accuracy(logits, soft) == pytest.approx(2 / 3)


def test_callbacks_see_every_hook_and_can_stop() -> None:
    class Recorder(train.Callback):
        def __init__(self) -> None:
            self.events: list[str] = []

        def on_train_begin(self, state): self.events.append("begin")
        def on_after_backward(self, state):
            assert all(p.grad is not None for p in state.model.parameters())
            self.events.append("backward")
        def on_epoch_end(self, state):
            self.events.append("epoch")
            state.stop = state.epoch == 2
        def on_train_end(self, state): self.events.append("end")

    rec = Recorder()
    hist, _ = _run(callbacks=[rec])
    assert len(hist["train_loss"]) == 3  # stopped after the third epoch
    assert rec.events[0] == "begin" and rec.events[-1] == "end" and rec.events.count("epoch") == 3
    assert rec.events.count("backward") == 3 * 6  # 96 training rows / batch 16


def test_grad_norm_tracker_matches_manual_norm() -> None:
    tracker = train.GradNormTracker()
    hist, _ = _run(callbacks=[tracker], epochs=2)
    assert len(tracker.steps) == 12 and len(hist["grad_norm"]) == 2
    assert hist["grad_norm"][0] == pytest.approx(sum(tracker.steps[:6]) / 6)


def test_schedulers_are_stepped_per_epoch_or_per_step() -> None:
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    tl, vl = _tiny_problem()
    hist = train.fit(model, tl, vl, epochs=3, optimizer=opt, scheduler=sched, show_progress=False)
    assert hist["lr"] == [1.0, 0.5, 0.25]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    train.fit(model, tl, None, epochs=1, optimizer=opt, scheduler=sched, scheduler_interval="step",
              show_progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5**6)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.1)
    train.fit(model, tl, vl, epochs=2, optimizer=opt, scheduler=plateau, show_progress=False)


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs must be a positive int"),
                                           ({"scheduler_interval": "batch"}, "scheduler_interval")])
def test_fit_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    model = nn.Linear(4, 2)
    tl, _ = _tiny_problem()
    kwargs = {"epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        train.fit(model, tl, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_evaluate_on_empty_loader_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        train.evaluate(nn.Linear(2, 2), [])

"""dlhelpers.ddp: the sampler arithmetic against torch's DistributedSampler, and a real 2-process torchrun
(gloo over loopback) that must give the single-process weights on the combined batch to 1e-6."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DistributedSampler

from dlhelpers import ddp

ROOT = Path(__file__).resolve().parents[1]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), world=st.integers(1, 4), epoch=st.integers(0, 3), seed=st.integers(0, 99),
       shuffle=st.booleans(), data=st.data())
def test_sampler_indices_match_distributed_sampler(n, world, epoch, seed, shuffle, data):
    rank = data.draw(st.integers(0, world - 1))
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    assert ddp.sampler_indices(n, world, rank, epoch=epoch, seed=seed, shuffle=shuffle) == list(sampler)


def test_combined_batches_cover_every_sample_once_per_epoch():
    batches = ddp.combined_batches(100, 2, 16, epoch=1, seed=3)
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert sorted(sum(batches, [])) == list(range(100))
    with pytest.raises(ValueError, match="0 <= rank < world_size, got world_size=2, rank=2"):
        ddp.sampler_indices(10, 2, 2)


def _torchrun_two_processes(*args: str, **env: str) -> None:
    """``torchrun --standalone --nproc_per_node=2 <args>`` from the repository root; fails with its stderr."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun) if torchrun.exists() else shutil.which("torchrun"), "--standalone", "--nproc_per_node=2",
           *args]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_two_processes_equal_single_process(tmp_path):
    _torchrun_two_processes("-m", "dlhelpers.ddp", "--out", str(tmp_path / "ddp.pt"), "--epochs", "1",
                            "--num-samples", "512")
    saved = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert saved["world_size"] == 2
    single = ddp.train_single(world_size=2, epochs=1, num_samples=512)
    start = ddp.make_model(0).state_dict()
    for name, w in single.items():
        torch.testing.assert_close(saved["state_dict"][name], w, rtol=0, atol=1e-6)
        assert (w - start[name]).abs().max() > 1e-3  # it really trained


PROBE = """
import os, sys, torch
from dlhelpers import ddp
torch.set_num_threads(1)
ddp.train_ddp(num_samples=64, epochs=1)
names = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
with open(os.path.join(sys.argv[1], "threads_rank" + os.environ["RANK"]), "w") as f:
    f.write(" ".join(names))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from Linux /proc")
def test_train_ddp_frees_the_process_group_before_returning(tmp_path):
    """The gloo worker threads must be joined by ``train_ddp`` itself: left alive to interpreter shutdown, one
    still freeing the last all-reduce aborts the rank (CI saw SIGABRT; 12 of 80 runs on 2 busy cores)."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    _torchrun_two_processes(str(script), str(tmp_path), PYTHONPATH=str(ROOT))
    for rank in (0, 1):
        threads = (tmp_path / f"threads_rank{rank}").read_text().split()
        assert not [t for t in threads if "gloo" in t], f"rank {rank} still runs {threads}"

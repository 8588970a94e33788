"""DDP semantics: `torchrun --nproc_per_node=2 -m memorygan train` (gloo) equals one process with the same global
batch split into 2 accumulation rounds."""
import os
import subprocess
import sys

import pytest

from safetensors.torch import load_file

from memorygan.training.loop import train


AUGMENTED = {"augment": "ada", "augment_p": 0.3, "ada_interval": 1, "ada_kimg": 0.1, "r1_gamma": 0.0,
             "discriminator_overrides": {"arch": "hybrid", "projected_size": 32, "projected_width": 8}}


@pytest.mark.parametrize("recipe", ["paper", "augmented"])
def test_two_processes_equal_one_process_with_accumulation(opts_for, tmp_path, recipe):
    """Also with ADA (each process's signs summed over processes before p moves) and the hybrid discriminator."""
    steps = 3
    extra = AUGMENTED if recipe == "augmented" else {}
    single = train(opts_for(out="single", steps=steps, accum=2, mixing=0.5, **extra))
    out = tmp_path / "ddp"
    o = opts_for(out="ddp", steps=steps, mixing=0.5)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "memorygan",
           "train", "--data", o.data, "--preset", o.preset, "--out", str(out), "--steps", str(steps),
           "--batch", "4", "--accum", "1", "--mixing", "0.5", "--d-reg-every", "2", "--g-reg-every", "2",
           "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "0", "--threads", "1", "--no-progress"]
    if extra:
        cmd += ["--augment", "ada", "--augment-p", "0.3", "--ada-interval", "1", "--ada-kimg", "0.1", "--r1-gamma", "0",
                "--set-d", "arch=hybrid", "--set-d", "projected_size=32", "--set-d", "projected_width=8"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["chunk"] == 2
    if extra:
        import torch
        a = torch.load(single.checkpoint / "state.pt", weights_only=True)["augment"]
        b = torch.load(out / "checkpoints" / f"step-{steps:08d}" / "state.pt", weights_only=True)["augment"]
        assert a["p"] == pytest.approx(b["p"]) and a["p"] != 0.3          # p moved, the same way in both
    ckpt = out / "checkpoints" / f"step-{steps:08d}"
    for f in ("G.safetensors", "D.safetensors", "generator/generator.safetensors"):
        a, b = load_file(str(single.checkpoint / f)), load_file(str(ckpt / f))
        assert a.keys() == b.keys()
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst < 1e-5, f"{f}: max abs difference {worst}"


def test_processes_agree_on_a_time_limit_at_log_steps(opts_for, tmp_path):
    """A time limit is met at different moments in different processes, so they agree on stopping; they do so at
    log steps only (a collective and a host read), not after every step. With --log-every 2 and a limit that every
    process has passed after one step, both stop at step 2, not 1, and end cleanly with that step's checkpoint."""
    o = opts_for(out="ddp-minutes")
    out = tmp_path / "ddp-minutes"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "memorygan",
           "train", "--data", o.data, "--preset", o.preset, "--out", str(out), "--steps", "10", "--minutes", "1e-6",
           "--batch", "4", "--log-every", "2", "--sample-every", "0", "--checkpoint-every", "0", "--threads", "1",
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]

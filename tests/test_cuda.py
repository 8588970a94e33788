"""Every command with --device on a CUDA GPU, a few steps each (skipped without a GPU; run on one with
`python -m pytest -m cuda tests/test_cuda.py`, as benchmarks/gpu_check.sh does). The CPU-side check that catches
device-placement mistakes without a GPU is tests/test_device_placement.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import TINY_PRESET

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")]

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None) -> str:
    out = subprocess.run([sys.executable, "-m", "memorygan", *map(str, args)], capture_output=True, text=True,
                         env=dict(os.environ, **(env or {})), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from memorygan.data.synth import synthesize

    root = tmp_path_factory.mktemp("cuda")
    synthesize("portraits", root / "data", n=32, size=32, seed=0)
    for arch in ("memorygan", "ssg"):
        (root / f"{arch}.json").write_text(json.dumps(dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"],
                                                                                         arch=arch))))
    cli("probe", "train", "--data", root / "data", "--steps", 5, "--device", "cuda", "--quiet")
    return root


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_train_every_regulariser_then_resume(data, arch, tmp_path):
    run = tmp_path / "run"
    text = cli("train", "--data", data / "data", "--preset", data / f"{arch}.json", "--out", run, "--steps", 3,
               "--batch", 4, "--d-reg-every", 1, "--g-reg-every", 1, "--mixing", 1, "--metrics-every", 2,
               "--metrics-samples", 8, "--sample-every", 2, "--no-progress")          # auto: the GPU, and it says so
    assert "using cuda" in text
    cli("train", "--resume", run, "--steps", 4, "--no-progress")
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 4 and all(torch.isfinite(torch.tensor(s["loss_g"])) for s in stats if "loss_g" in s)


def test_torchrun_nccl(data, tmp_path):
    nproc = min(2, torch.cuda.device_count())
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "-m",
                          "memorygan", "train", "--data", str(data / "data"), "--preset", str(data / "ssg.json"),
                          "--out", str(tmp_path / "run"), "--steps", "2", "--batch", str(4 * nproc),
                          "--d-reg-every", "1", "--g-reg-every", "1", "--device", "cuda", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_generate_metrics_analyze_quickstart_invert(data, tmp_path):
    run = tmp_path / "run"
    cli("train", "--data", data / "data", "--preset", data / "memorygan.json", "--out", run, "--steps", 2,
        "--batch", 4, "--no-progress", "--device", "cuda:0")
    gen = next((run / "checkpoints").glob("step-*")) / "generator"
    cli("generate", gen, "--seeds", "0-3", "--out", tmp_path / "g.png")
    assert (tmp_path / "g.png").is_file()
    cli("metrics", "--generator", gen, "--data", data / "data", "--metrics", "dfid,dkid,consistency,smse,leakage",
        "--n", 16, "--device", "cuda")
    cli("analyze", "compose", "--generator", gen, "--out", tmp_path / "compose", "--seeds", "0")
    cli("analyze", "report", run, "--out", tmp_path / "report", "--num", 8, "--num-smse", 4, "--num-leakage", 2,
        "--num-embed", 8, "--num-correlate", 8, "--no-progress")
    cli("quickstart", "--out", tmp_path / "qs", "--n", 32, "--steps", 2, "--probe-steps", 3, "--no-progress")
    assert (tmp_path / "qs" / "report").is_dir()


@pytest.mark.parametrize("script, args", [
    ("bench_training.py", ["--scales", "small", "--steps", "2", "--precisions", "fp32,bf16", "--device", "cuda"]),
    ("bench_generator.py", ["--scales", "small", "--parts", "13", "--reps", "2", "--bf16", "--device", "cuda"]),
])
def test_benchmarks(script, args):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert '"device": "cuda"' in out.stdout



@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
@pytest.mark.parametrize("bf16", [False, True])
def test_a_training_step_does_not_synchronize(data, arch, bf16, tmp_path):
    """The GPU twin of tests/training/test_host_syncs.py: under CUDA's sync debug mode "error", any call that makes
    the host wait for the device (a read back, a blocking copy, a value-dependent shape) raises. One step with every
    regulariser, a mixed batch and two accumulation chunks raises nothing; the log line's reads come after it."""
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    tr = Trainer(TrainOptions(data=str(data / "data"), preset=str(data / f"{arch}.json"), out=str(tmp_path / "run"),
                              batch=4, accum=2, steps=3, d_reg_every=1, g_reg_every=1, mixing=1.0, bf16=bf16,
                              log_every=100, sample_every=0, checkpoint_every=0, progress=False, device="cuda"))
    tr.train_step()                                                  # warm-up: lazy state, first allocations
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        tr.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    tr._flush_nonfinite()
    assert tr.nonfinite_total == 0 and tr.step == 2
    tr.close()


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_sampling_does_not_synchronize(arch):
    from helpers import tiny_generator

    G = tiny_generator(arch).cuda().eval()
    G.sample(2, seed=0, truncation=0.7)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = G.sample(4, seed=1, truncation=0.7, noise_mode="random")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.image.shape[0] == 4 and out.image.is_cuda

"""benchmarks/gpu_summary.py: the one JSON summary of a gpu_check.sh run, built here from the benchmarks' real
output formats (the CPU runs kept in docs/) and pytest tails, with every value checked against its input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_summary import summarize  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "gpu-check"
    out.mkdir()
    (out / "machine.txt").write_text("NVIDIA H200, 143771 MiB\ntorch 2.11.0 cuda 13.0 NVIDIA H200\n")
    (out / "cuda-sync-tests.txt").write_text("......\n6 passed in 12.31s\n")
    (out / "cuda-tests.txt").write_text("FAILED tests/test_cuda.py::test_torchrun_nccl\n"
                                        "==== 1 failed, 5 passed, 1 skipped in 101.2s ====\n")
    shutil.copy(DOCS / "bench_training.json", out / "training-small-b8.json")
    big = json.loads((DOCS / "bench_training.json").read_text())
    for r in big["runs"]:
        r["batch"] = 128
        r["images_per_sec"] = 1234.5 if (r["preset"], r["precision"]) == ("memorygan-small", "bf16") else 900.0
    (out / "training-small-b128.json").write_text(json.dumps(big))
    small32 = json.loads((DOCS / "bench_training.json").read_text())
    small32["runs"] = [dict(r, batch=32, images_per_sec=300.0) for r in small32["runs"] if r["scale"] == "small"]
    (out / "training-small-b32.json").write_text(json.dumps(small32))
    small32["runs"] = [dict(r, images_per_sec=200.0) for r in small32["runs"]]
    (out / "training-small-cudnn-default-b32.json").write_text(json.dumps(small32))
    shutil.copy(DOCS / "bench_training_paper_cpu.json", out / "training-paper.json")
    gen = json.loads((DOCS / "bench_generator.json").read_text())
    gen["results"].append({"scale": "paper", "parts": 13, "dtype": "bf16", "batch": 2, "memorygan_s_per_image": 0.5,
                           "ssg_s_per_image": 0.8})
    (out / "generator.json").write_text(json.dumps(gen, indent=2))
    shutil.copy(DOCS / "bench_vs_official_cpu_winograd.json", out / "vs-official.json")
    return out


def test_summary_values_come_from_the_files(folder):
    s = summarize(folder)
    assert s["machine"].startswith("NVIDIA H200")
    assert s["cuda_tests"]["sync"] == {"passed": 6, "failed": 0, "skipped": 0, "errors": 0, "line": "6 passed in 12.31s"}
    assert s["cuda_tests"]["commands"]["failed"] == 1 and s["cuda_tests"]["commands"]["passed"] == 5
    small8 = json.loads((DOCS / "bench_training.json").read_text())["runs"]
    mg8 = next(r for r in small8 if (r["preset"], r["precision"]) == ("memorygan-small", "fp32"))
    assert s["training_small"]["batch 8"]["memorygan-small fp32"]["images_per_sec"] == mg8["images_per_sec"]
    assert list(s["training_small"]) == ["batch 8", "batch 32", "batch 128"]
    assert s["cudnn_autotuner_speedup_batch_32"] == {f"{p} {q}": 1.5 for p in ("memorygan-small", "ssg-small")
                                                     for q in ("fp32", "bf16")}
    t = s["targets"]
    best = t["small preset training >= 1000 images/s (memorygan-small, best measured)"]
    assert best == {"value": 1234.5, "goal": 1000.0, "met": True, "batch": 128, "precision": "bf16"}
    # 256 px training: docs/bench_training_paper_cpu.json, 46.61 s fp32 and 26.12 s bf16 per memorygan-256 step
    paper = {(r["preset"], r["precision"]): r["sec_per_step"]
             for r in json.loads((DOCS / "bench_training_paper_cpu.json").read_text())["runs"]}
    speedup = paper["memorygan-256", "fp32"] / paper["memorygan-256", "bf16"]
    assert t["256 px K=13 bf16 training speed-up over fp32 (memorygan-256)"] == {"value": speedup, "goal": 1.5,
                                                                                "met": True}
    mg_over_ssg = paper["ssg-256", "fp32"] / paper["memorygan-256", "fp32"]
    assert t["256 px K=13 training, MemoryGAN speed over SSG's, fp32 (>= 1)"]["value"] == mg_over_ssg
    # inference: 877.3 ms fp32 (docs) against the 500 ms bf16 row added above
    fp32_mg = next(r for r in json.loads((DOCS / "bench_generator.json").read_text())["results"]
                   if (r["scale"], r["parts"], r["dtype"]) == ("paper", 13, "fp32"))["memorygan_s_per_image"]
    assert t["256 px K=13 bf16 inference speed-up over fp32 (memorygan)"]["value"] == pytest.approx(fp32_mg / 0.5)
    assert s["inference"]["paper K=13 bf16"] == {"memorygan ms/image": 500.0, "ssg ms/image": 800.0}
    # against the official code: the "alone" ratios of that run, 2.303 (fp32) and 1.713 (bf16)
    assert t["ahead of the official code, K=13 fp32, alone (official/memorygan time > 1)"]["value"] == 2.303
    assert t["ahead of the official code, K=13 bf16, alone (official/memorygan time > 1)"]["met"] is True
    assert s["missing"] == []


def test_missing_and_broken_files_are_listed_never_guessed(folder):
    (folder / "generator.json").write_text('{"benchmark": "generator_inference", "results": [')   # cut off
    (folder / "training-paper.json").unlink()
    (folder / "cuda-tests.txt").write_text("....\n")                                           # timed out
    (folder / "vs-official.json").unlink()
    (folder / "training-small-b8.json").write_text("")                                         # failed at once
    s = summarize(folder)
    names = " | ".join(s["missing"])
    assert "training-small-b8.json: no JSON in it" in names and list(s["training_small"]) == ["batch 32", "batch 128"]
    assert "generator.json: JSONDecodeError" in names and "training-paper.json: FileNotFoundError" in names
    assert "cuda-tests.txt: no pytest summary line" in names
    assert s["cuda_tests"]["commands"] is None and s["vs_official"] is None
    t = s["targets"]
    assert t["256 px K=13 bf16 training speed-up over fp32 (memorygan-256)"] == {"value": None, "goal": 1.5,
                                                                                "met": None}
    assert t["256 px K=13 bf16 inference speed-up over fp32 (ssg)"]["met"] is None
    assert not any(k.startswith("ahead of the official") for k in t)


def test_cli_prints_the_summary_and_refuses_a_missing_folder(folder, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_summary.py"), str(folder)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["targets"]
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_summary.py"), str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "nope: not a folder (run benchmarks/gpu_check.sh first)" in bad.stderr

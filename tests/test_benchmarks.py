"""The benchmarks that benchmarks/gpu_check.sh runs on a GPU, run here on the CPU at their smallest settings, so
that a change that breaks them (or their JSON) fails CI instead of a GPU session's few minutes. Checks the JSON's
shape and its internal arithmetic (images/s from seconds per step, ratios from the rows), not speed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_bench_training_on_the_cpu(tmp_path):
    stdout = bench("bench_training.py", "--scales", "small", "--steps", "1", "--warmup", "0", "--batch", "2",
                   "--precisions", "fp32,bf16", "--device", "cpu", "--out", str(tmp_path / "t.json"))
    res = json.loads((tmp_path / "t.json").read_text())
    assert res == json.loads(stdout[stdout.index("{\n"):])          # --out holds the final object printed
    assert res["device"] == "cpu" and res["allocator"] == "tuned" and res["cudnn_benchmark"] is None
    runs = {(r["preset"], r["precision"]): r for r in res["runs"]}
    assert set(runs) == {(p, q) for p in ("memorygan-small", "ssg-small") for q in ("fp32", "bf16")}
    for r in runs.values():
        assert r["batch"] == 2 and r["steps"] == 1 and r["scale"] == "small"
        assert r["images_per_sec"] * r["sec_per_step"] == pytest.approx(2.0)
        assert r["aten_ops_per_step"] > 1000
    for q in ("fp32", "bf16"):
        mg, ssg = runs["memorygan-small", q], runs["ssg-small", q]
        assert res["ratios"][f"small_{q}_memorygan_over_ssg"] == pytest.approx(mg["images_per_sec"] /
                                                                               ssg["images_per_sec"])
        ops = res["ratios"][f"small_{q}_ops_memorygan_over_ssg"]
        assert ops == pytest.approx(mg["aten_ops_per_step"] / ssg["aten_ops_per_step"])
        assert ops < 0.8         # one batched local generator dispatches far fewer ops than K of them (~0.57)
    for p in ("memorygan-small", "ssg-small"):
        assert res["ratios"][f"{p}_bf16_over_fp32"] == pytest.approx(runs[p, "bf16"]["images_per_sec"] /
                                                                     runs[p, "fp32"]["images_per_sec"])


def test_bench_generator_on_the_cpu():
    stdout = bench("bench_generator.py", "--scales", "small", "--parts", "13", "--batch", "1", "--reps", "1",
                   "--bf16", "--device", "cpu", "--allocator", "tuned")
    res = json.loads(stdout)
    assert res["benchmark"] == "generator_inference" and res["device"] == "cpu" and res["threads"] == 1
    rows = {r["dtype"]: r for r in res["results"]}
    assert set(rows) == {"fp32", "bf16"}
    for r in rows.values():
        assert (r["scale"], r["parts"], r["batch"]) == ("small", 13, 1)
        assert r["memorygan_s_per_image"] > 0 and r["ssg_s_per_image"] > 0
        assert r["memorygan_over_ssg"] == pytest.approx(r["memorygan_s_per_image"] / r["ssg_s_per_image"])
    assert set(res["modulated_conv"]) >= {"1x1_speedup", "3x3_fixed_speedup"}


def test_bench_recipe_on_the_cpu(tmp_path):
    stdout = bench("bench_recipe.py", "--arms", "hybrid/ada", "--models", "ssg-small", "--steps", "1", "--warmup",
                   "0", "--rounds", "1", "--device", "cpu", "--out", str(tmp_path / "r.json"))
    res = json.loads((tmp_path / "r.json").read_text())
    assert res == json.loads(stdout)
    rows = {(r["model"], r["arm"]): r for r in res["rows"]}
    assert set(rows) == {("ssg-small", "dual/none"), ("ssg-small", "hybrid/ada")}     # the baseline is added
    base = rows["ssg-small", "dual/none"]
    for r in rows.values():
        assert r["images_per_sec"] * r["sec_per_step"] == pytest.approx(8.0)
        assert r["ratio"] == pytest.approx(r["sec_per_step"] / base["sec_per_step"])


def test_bench_encoder_on_the_cpu():
    stdout = bench("bench_encoder.py", "--presets", "ssg-small", "--reps", "1", "--opt-steps", "1", "--perceptual",
                   "none", "--threads", "1")
    res = json.loads(stdout)
    r = res["runs"]["ssg-small"]
    assert res["benchmark"] == "encoder" and res["targets_s"] == {"encoder_forward": 0.01, "demo_first_view": 1.0}
    assert 0 < r["encoder_forward"] < r["encoder_and_render"]             # the render comes on top of the forward
    assert r["optimisation_300_steps"] == pytest.approx(300 * r["optimisation_step"], rel=1e-3)
    assert r["speedup_vs_300_steps"] == pytest.approx(r["optimisation_300_steps"] / r["encoder_and_render"], rel=0.01)
    assert r["meets_targets"]["demo_first_view"] == (r["demo_first_view"] <= 1.0)


def test_bench_region_on_the_cpu():
    """Batch 1 (the baseline) against batch 3 on three images: the rows agree with each other, and the batched
    result is the baseline's up to float rounding (the benchmark reports the difference, which must be small)."""
    stdout = bench("bench_region.py", "--preset", "ssg-small", "--images", "3", "--batches", "1,3", "--popsize", "4",
                   "--cma-iters", "2", "--adam-steps", "2", "--basis-samples", "32", "--threads", "1")
    res = json.loads(stdout)
    assert res["baseline"] == "batch 1" and res["images"] == 3 and set(res["runs"]) == {"1", "3"}
    one, three = res["runs"]["1"], res["runs"]["3"]
    assert one["speedup_vs_baseline"] == 1.0 and one["max_abs_x_diff_vs_baseline"] == 0.0
    assert three["speedup_vs_baseline"] == pytest.approx(one["seconds_per_image"] / three["seconds_per_image"],
                                                         rel=0.02, abs=0.01)
    assert three["max_abs_x_diff_vs_baseline"] < 1e-3 and three["max_abs_image_diff_vs_baseline"] < 1e-2
    assert one["mean_final_loss_vs_baseline"] == 0.0
    assert three["mean_final_loss_vs_baseline"] == pytest.approx(three["mean_final_loss"] - one["mean_final_loss"],
                                                                 abs=2e-5)

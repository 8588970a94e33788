"""One JSON summary of a `benchmarks/gpu_check.sh` run: the cuda tests' outcome, the throughput numbers, and the
speed issue's GPU targets, each with its value and whether it is met. Reads the files gpu_check.sh writes in its
output folder; a file that is missing or unreadable is listed under "missing" (a step that failed or timed out),
never guessed.

    python benchmarks/gpu_summary.py gpu-check            # prints the summary (gpu_check.sh also saves it)

Targets (issue 11): the small preset trains at >= 1,000 images/s (best batch and precision measured); at 256 px,
K = 13, bf16 at least 1.5x fp32 in training and in inference; MemoryGAN's training step at least as fast as SSG's;
MemoryGAN ahead of the official code in both precisions (only with OFFICIAL=PATH).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TARGET_IMAGES_PER_SEC = 1000.0
TARGET_BF16_SPEEDUP = 1.5


def _json(path: Path, missing: list[str]):
    try:
        text = path.read_text()
        start = text.find("{")                      # bench_generator prints only JSON; tolerate a leading line
        if start < 0:
            missing.append(f"{path.name}: no JSON in it (the step failed; see log.txt)")
            return None
        return json.loads(text[start:])
    except (OSError, ValueError) as e:
        missing.append(f"{path.name}: {type(e).__name__}: {e}"[:200])
        return None


def _pytest_outcome(path: Path, missing: list[str]) -> dict | None:
    """{"passed": n, "failed": n, "skipped": n, "errors": n, "line": last summary line} of a pytest tail."""
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as e:
        missing.append(f"{path.name}: {type(e).__name__}: {e}"[:200])
        return None
    summary = next((ln for ln in reversed(lines) if re.search(r"\d+ (passed|failed|skipped|error)", ln)), None)
    if summary is None:
        missing.append(f"{path.name}: no pytest summary line (timed out?)")
        return None
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary):
        counts["errors" if word.startswith("error") else word] += int(n)
    return {**counts, "line": summary.strip("= ").strip()}


def _runs(report) -> dict[tuple[str, str], dict]:
    return {(r["preset"], r["precision"]): r for r in (report or {}).get("runs", [])}


def summarize(folder) -> dict:
    folder = Path(folder)
    missing: list[str] = []
    out: dict = {"folder": str(folder)}
    try:
        out["machine"] = (folder / "machine.txt").read_text().strip()
    except OSError:
        missing.append("machine.txt")
    out["cuda_tests"] = {"sync": _pytest_outcome(folder / "cuda-sync-tests.txt", missing),
                         "commands": _pytest_outcome(folder / "cuda-tests.txt", missing)}

    # --- training throughput, small presets, per batch
    small, best = {}, {}
    for path in sorted(folder.glob("training-small-b*.json"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
        report = _json(path, missing)
        for (preset, precision), r in _runs(report).items():
            if r.get("scale", "small") != "small":
                continue
            small.setdefault(f"batch {r['batch']}", {})[f"{preset} {precision}"] = {
                "images_per_sec": r["images_per_sec"], "sec_per_step": r["sec_per_step"],
                "aten_ops_per_step": r.get("aten_ops_per_step")}
            if r["images_per_sec"] > best.get(preset, {}).get("images_per_sec", -1):
                best[preset] = {"images_per_sec": r["images_per_sec"], "batch": r["batch"], "precision": precision}
    if not small:
        missing.append("training-small-b*.json: none")
    out["training_small"] = small

    # --- what cuDNN's autotuner buys (on by default: memorygan.devices.configure_backends), batch 32
    off_path = folder / "training-small-cudnn-default-b32.json"
    if off_path.exists():
        off = _runs(_json(off_path, missing))
        on = small.get("batch 32", {})
        out["cudnn_autotuner_speedup_batch_32"] = {
            f"{p} {q}": on[f"{p} {q}"]["images_per_sec"] / r["images_per_sec"]
            for (p, q), r in off.items() if f"{p} {q}" in on}

    # --- training at 256 px
    paper = _runs(_json(folder / "training-paper.json", missing))
    train_256 = {f"{p} {q}": r["sec_per_step"] for (p, q), r in paper.items()}
    out["training_256_sec_per_step"] = train_256

    def speed(slow_key, fast_key, table):
        return table[slow_key] / table[fast_key] if slow_key in table and fast_key in table else None

    # --- inference
    gen = _json(folder / "generator.json", missing)
    inference = {}
    for row in (gen or {}).get("results", []):
        key = f"{row['scale']} K={row['parts']} {row['dtype']}"
        inference[key] = {f"{a} ms/image": row[f"{a}_s_per_image"] * 1000 for a in ("memorygan", "ssg")
                          if f"{a}_s_per_image" in row}
    out["inference"] = inference

    def inf_speed(arch, scale="paper", k=13):
        a, b = inference.get(f"{scale} K={k} fp32", {}), inference.get(f"{scale} K={k} bf16", {})
        key = f"{arch} ms/image"
        return a[key] / b[key] if key in a and key in b else None

    # --- against the official code
    official = None
    if (folder / "vs-official.json").exists():
        vs = _json(folder / "vs-official.json", missing)
        if vs is not None:
            official = {mode: vs[mode].get("ratios") for mode in ("alone", "interleaved") if mode in vs}
    out["vs_official"] = official

    # --- targets
    def target(value, goal, at_least=True, **extra):
        met = None if value is None else (value >= goal if at_least else value <= goal)
        return {"value": value, "goal": goal, "met": met, **extra}

    mg_best = best.get("memorygan-small")
    targets = {
        "small preset training >= 1000 images/s (memorygan-small, best measured)": target(
            mg_best["images_per_sec"] if mg_best else None, TARGET_IMAGES_PER_SEC,
            **({"batch": mg_best["batch"], "precision": mg_best["precision"]} if mg_best else {})),
        "256 px K=13 bf16 training speed-up over fp32 (memorygan-256)": target(
            speed("memorygan-256 fp32", "memorygan-256 bf16", train_256), TARGET_BF16_SPEEDUP),
        "256 px K=13 bf16 training speed-up over fp32 (ssg-256)": target(
            speed("ssg-256 fp32", "ssg-256 bf16", train_256), TARGET_BF16_SPEEDUP),
        "256 px K=13 bf16 inference speed-up over fp32 (memorygan)": target(inf_speed("memorygan"),
                                                                             TARGET_BF16_SPEEDUP),
        "256 px K=13 bf16 inference speed-up over fp32 (ssg)": target(inf_speed("ssg"), TARGET_BF16_SPEEDUP),
    }
    for precision in ("fp32", "bf16"):
        targets[f"256 px K=13 training, MemoryGAN speed over SSG's, {precision} (>= 1)"] = target(
            speed(f"ssg-256 {precision}", f"memorygan-256 {precision}", train_256), 1.0)
    if official:
        for precision in ("fp32", "bf16"):
            ratio = ((official.get("alone") or {}).get(f"K13-{precision}") or {}).get("official/memorygan")
            targets[f"ahead of the official code, K=13 {precision}, alone (official/memorygan time > 1)"] = target(
                ratio, 1.0)
    out["targets"] = targets
    out["missing"] = missing
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="gpu_check.sh's output folder (default name gpu-check)")
    args = ap.parse_args(argv)
    if not Path(args.folder).is_dir():
        ap.error(f"{args.folder}: not a folder (run benchmarks/gpu_check.sh first)")
    summary = summarize(args.folder)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return summary


if __name__ == "__main__":
    main()

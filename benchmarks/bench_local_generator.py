"""MemoryGAN's local generator on the CPU: cache-sized chunks against one batched pass (DESIGN 9; docs/performance.md).

Without autograd on the CPU, `LocalGenerator` runs the B*K samples in chunks of `cpu_chunk_bytes` of activation per
torch thread through all its layers (`LocalGenerator._hidden_chunked`). This times, in one process and alternating
so that both see the same machine, the local-generator stage and the whole forward pass with the chunks and with the
batched pass (`cpu_chunk_bytes = None`), for each K, and prints one JSON object with the medians, the speed-ups, the
K_max / K_min cost of the whole forward under both, and the multiply-accumulates of each stage (the arithmetic floor
of that cost ratio).

    python benchmarks/bench_local_generator.py                       # memorygan-256, batch 2, K = 13 and 100, fp32
    python benchmarks/bench_local_generator.py --bf16 --threads 2
    python benchmarks/bench_local_generator.py --budgets 0.5,1,2,4,8   # sweep the per-thread budget (MiB)
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from memorygan.allocator import minor_faults, tune_allocator
from memorygan.config import generator_config
from memorygan.models import build_generator
from memorygan.models.local_generator import LocalGenerator


def stage_macs(G, z) -> dict:
    with torch.no_grad():
        out = G.controller(z)
        expanded = G.expand(G.mlp_latent(out[0]))
        counts = {}
        with FlopCounterMode(display=False) as f:
            hidden, depths = G.generate_parts(expanded)
        counts["local"] = f.get_total_flops() // 2
        with FlopCounterMode(display=False) as f:
            fusion = G.fuse(hidden, depths)
        counts["fusion"] = f.get_total_flops() // 2
        with FlopCounterMode(display=False) as f:
            G.render(fusion.fused, fusion.coarse_seg)
        counts["render"] = f.get_total_flops() // 2
    counts["total"] = sum(counts.values())
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="memorygan-256")
    ap.add_argument("--parts", default="13,100", help="comma-separated K values")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="under bf16 autocast")
    ap.add_argument("--budgets", default=None,
                    help="comma-separated per-thread chunk budgets in MiB (default: the package's setting)")
    a = ap.parse_args(argv)
    tune_allocator()
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.parts.split(",")]
    default = LocalGenerator.cpu_chunk_bytes
    modes = {"batched": None}
    if a.budgets:
        modes.update({f"chunked_{b}MiB": int(float(b) * (1 << 20)) for b in a.budgets.split(",")})
    else:
        modes["chunked"] = default
    models = {}
    for k in ks:
        torch.manual_seed(0)
        G = build_generator(generator_config(a.preset, num_classes=k, class_names=None, transparent_classes=[]))
        models[k] = (G.eval(), G.sample_z(a.batch, seed=0))
    samples: dict = {}
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            expanded = {k: G.expand(G.mlp_latent(G.controller(z)[0])) for k, (G, z) in models.items()}
            for rep in range(a.reps + 1):                     # the first round warms up and is not kept
                for k, (G, z) in models.items():
                    for mode, budget in modes.items():
                        LocalGenerator.cpu_chunk_bytes = budget
                        t0 = time.perf_counter()
                        G.generate_parts(expanded[k])
                        t1 = time.perf_counter()
                        f0 = minor_faults()
                        t2 = time.perf_counter()
                        G(z)
                        t3 = time.perf_counter()
                        if rep:
                            samples.setdefault((k, mode), []).append((t1 - t0, (t3 - t2) / a.batch,
                                                                      minor_faults() - f0))
    finally:
        LocalGenerator.cpu_chunk_bytes = default
    results = []
    for (k, mode), rows in samples.items():
        results.append({"parts": k, "mode": mode,
                        "local_s_per_batch": statistics.median(r[0] for r in rows),
                        "forward_s_per_image": statistics.median(r[1] for r in rows),
                        "faults_per_forward": statistics.median(r[2] for r in rows)})
    by = {(r["parts"], r["mode"]): r for r in results}
    speedups, cost = {}, {}
    for k in ks:
        base = by[(k, "batched")]
        for mode in modes:
            if mode != "batched":
                r = by[(k, mode)]
                speedups[f"K{k}:{mode}"] = {
                    "local": round(base["local_s_per_batch"] / r["local_s_per_batch"], 3),
                    "forward": round(base["forward_s_per_image"] / r["forward_s_per_image"], 3)}
    kmin, kmax = min(ks), max(ks)
    for mode in modes:
        cost[mode] = round(by[(kmax, mode)]["forward_s_per_image"] / by[(kmin, mode)]["forward_s_per_image"], 3)
    macs = {f"K{k}": stage_macs(G, z) for k, (G, z) in models.items()}
    print(json.dumps({
        "benchmark": "local_generator_chunks", "preset": a.preset, "batch": a.batch, "threads": a.threads,
        "dtype": "bf16" if a.bf16 else "fp32", "torch": torch.__version__, "machine": platform.machine(),
        "default_chunk_bytes_per_thread": default, "results": results, "speedup_over_batched": speedups,
        f"forward_cost_K{kmax}_over_K{kmin}": cost,
        f"mac_ratio_K{kmax}_over_K{kmin}": round(macs[f"K{kmax}"]["total"] / macs[f"K{kmin}"]["total"], 3),
        "macs": macs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

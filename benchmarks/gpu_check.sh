#!/usr/bin/env bash
# One prepared run on a GPU machine (no network): the CUDA tests, then the GPU benchmarks, each under a time
# limit, their output under ${OUT:-gpu-check}/ and one JSON summary of it all (benchmarks/gpu_summary.py) in
# ${OUT:-gpu-check}/summary.json. Run from the repository root:
#     PYTHONPATH=src bash benchmarks/gpu_check.sh            # about 8-10 minutes on one H200
#     OFFICIAL=/path/to/SemanticStyleGAN bash benchmarks/gpu_check.sh   # also the speed comparison with it
set -u
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/log.txt"; }

log "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python -c \
  "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  2>&1 | tee "$OUT/machine.txt"

log "cuda tests: no host sync in a training step or in sampling (CUDA sync debug mode), then every command"
timeout 90 python -m pytest -q -m cuda tests/test_cuda.py -k synchronize -p no:cacheprovider 2>&1 | tail -15 \
    | tee "$OUT/cuda-sync-tests.txt"
timeout 240 python -m pytest -q -m cuda tests/test_cuda.py -k "not synchronize" -p no:cacheprovider 2>&1 | tail -25 \
    | tee "$OUT/cuda-tests.txt"

log "training throughput, small preset, batch 128, 32 and 8, fp32 and bf16 (ops per step counted at batch 8)"
for b in 128 32 8; do
  count=--no-count-ops; steps=16; [ "$b" = 8 ] && count=; [ "$b" != 128 ] && steps=32
  timeout 150 python benchmarks/bench_training.py --scales small --steps $steps --batch "$b" --device cuda $count \
      --out "$OUT/training-small-b$b.json" > /dev/null 2>> "$OUT/log.txt" || log "bench_training batch $b failed"
done

log "the same at batch 32 with cuDNN's autotuner off (torch's default), to measure what it buys"
MEMORYGAN_CUDNN_BENCHMARK=0 timeout 120 python benchmarks/bench_training.py --scales small --steps 32 --batch 32 \
    --device cuda --no-count-ops --out "$OUT/training-small-cudnn-default-b32.json" > /dev/null 2>> "$OUT/log.txt" \
    || log "bench_training with the autotuner off failed"

log "training throughput, paper scale (256 px, K=13), fp32 and bf16"
timeout 150 python benchmarks/bench_training.py --scales paper --steps 6 --device cuda \
    --out "$OUT/training-paper.json" > /dev/null 2>> "$OUT/log.txt" || log "bench_training paper failed"

log "generator inference, 256 px and small, K=13 and 100, fp32 and bf16"
timeout 150 python benchmarks/bench_generator.py --scales paper,small --parts 13,100 --batch 8 --reps 5 --bf16 \
    --device cuda > "$OUT/generator.json" 2>> "$OUT/log.txt" || log "bench_generator failed"

if [ -n "${OFFICIAL:-}" ]; then
  log "against the official code at $OFFICIAL"
  timeout 200 python benchmarks/bench_vs_official.py --official "$OFFICIAL" --device cuda \
      > "$OUT/vs-official.json" 2>> "$OUT/log.txt" || log "bench_vs_official failed"
fi
log "summary: the targets, each with its value and whether it is met"
python benchmarks/gpu_summary.py "$OUT" > "$OUT/summary.json" 2>> "$OUT/log.txt" || log "gpu_summary failed"
cat "$OUT/summary.json"
log "done; results in $OUT/, the one summary in $OUT/summary.json"

#!/usr/bin/env bash
# One prepared run on a GPU machine (no network): the CUDA tests, then the GPU benchmarks, most important first,
# each under its own time limit and all within one budget (BUDGET seconds, default 480 = 8 minutes; a step that
# would start with less than 20 s left is skipped and says so). Output under ${OUT:-gpu-check}/, and one JSON
# summary of it all (benchmarks/gpu_summary.py: each GPU target with its value and whether it is met) in
# ${OUT:-gpu-check}/summary.json. Run from the repository root:
#     PYTHONPATH=src bash benchmarks/gpu_check.sh
#     OFFICIAL=/path/to/SemanticStyleGAN BUDGET=600 bash benchmarks/gpu_check.sh   # also against the official code
set -u
OUT=${OUT:-gpu-check}
BUDGET=${BUDGET:-480}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/log.txt"; }

# step NAME MAX_SECONDS STDOUT_FILE CMD...: CMD under min(MAX_SECONDS, what is left of the budget); its stdout to
# STDOUT_FILE ("-": the log), its stderr to the log. Skipped when less than 20 s are left.
step() {
  local name=$1 max=$2 dest=$3 left rc
  shift 3
  left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 20 ]; then log "skipped, the ${BUDGET} s budget is spent: $name"; return 0; fi
  [ "$max" -gt "$left" ] && max=$left
  log "$name (at most $max s)"
  if [ "$dest" = - ]; then timeout "$max" "$@" >> "$OUT/log.txt" 2>&1; else timeout "$max" "$@" > "$dest" 2>> "$OUT/log.txt"; fi
  rc=$?
  [ "$rc" -ne 0 ] && log "$name: exit $rc$([ "$rc" = 124 ] && echo ' (time limit)')"
  return 0
}
TRAIN=(python benchmarks/bench_training.py --device cuda)

log "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python -c \
  "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

step "cuda tests: no host sync in a training step or in sampling (CUDA sync debug mode)" 90 "$OUT/cuda-sync-tests.txt" \
  python -m pytest -q -m cuda tests/test_cuda.py -k synchronize -p no:cacheprovider
step "training throughput, small presets, batch 32, fp32 and bf16" 120 - \
  "${TRAIN[@]}" --scales small --steps 32 --batch 32 --no-count-ops --out "$OUT/training-small-b32.json"
step "cuda tests: every command on CUDA" 200 "$OUT/cuda-tests.txt" \
  python -m pytest -q -m cuda tests/test_cuda.py -k "not synchronize" -p no:cacheprovider
step "training throughput, small presets, batch 128" 100 - \
  "${TRAIN[@]}" --scales small --steps 16 --batch 128 --no-count-ops --out "$OUT/training-small-b128.json"
step "training throughput, paper scale (256 px, K=13), fp32 and bf16" 150 - \
  "${TRAIN[@]}" --scales paper --steps 6 --out "$OUT/training-paper.json"
step "generator inference, 256 px and small, K=13 and 100, fp32 and bf16" 150 "$OUT/generator.json" \
  python benchmarks/bench_generator.py --scales paper,small --parts 13,100 --batch 8 --reps 5 --bf16 --device cuda
step "training throughput, small presets, batch 8, with ATen ops per step" 120 - \
  "${TRAIN[@]}" --scales small --steps 32 --batch 8 --out "$OUT/training-small-b8.json"
step "batch 32 again with cuDNN's autotuner off (torch's default), to measure what it buys" 100 - \
  env MEMORYGAN_CUDNN_BENCHMARK=0 "${TRAIN[@]}" --scales small --steps 32 --batch 32 --no-count-ops \
  --out "$OUT/training-small-cudnn-default-b32.json"
step "region edits (Paint-by-Word), one image at a time vs 16 together" 90 "$OUT/region.json" \
  python benchmarks/bench_region.py --generator portraits-memorygan --device cuda --batches 1,16 --images 16
if [ -n "${OFFICIAL:-}" ]; then
  step "against the official code at $OFFICIAL" 200 "$OUT/vs-official.json" \
    python benchmarks/bench_vs_official.py --official "$OFFICIAL" --device cuda
fi

log "summary: the targets, each with its value and whether it is met"
python benchmarks/gpu_summary.py "$OUT" > "$OUT/summary.json" 2>> "$OUT/log.txt" || log "gpu_summary failed"
cat "$OUT/summary.json"
log "done in $(( $(date +%s) - START )) s; results in $OUT/, the one summary in $OUT/summary.json"

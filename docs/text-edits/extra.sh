#!/usr/bin/env bash
# Supplementary runs of docs/text-edits.md, after the study (`memorygan edit text-report`, see the page):
#   1. region edits ("red hair", "blonde hair", "dark skin") at Paint-by-Word's full budget (CMA-ES population 50,
#      sigma0 0.5, 20 iterations, then Adam lr 0.01 x 100) and Adam alone (100 steps), seeds 0-2, held-out scorer:
#      attribute words in RGB;
#   2. the lambda_seg sweep of "red hair" extended to 1000 and 10000 (seeds 0-3, 40 steps as in the study);
#   3. the colour phrases through the texture codes only (lambda_seg 100, seeds 0-3, 40 steps);
#   4. CMA-ES vs Adam at the full budget measured by pixel-statistics assessors (redness, lightness of the hair).
# One process at a time, one thread. Usage: bash docs/text-edits/extra.sh OUT (default /work/exp/text/study3-extra)
set -euo pipefail
OUT=${1:-/work/exp/text/study3-extra}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONPATH="$(cd "$(dirname "$0")/../.." && pwd)/src${PYTHONPATH:+:$PYTHONPATH}"   # this checkout
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  for lam in 1000 10000; do
    d=$OUT/$arch/text/red-hair-hair-seg$lam
    [ -f "$d/metrics.json" ] || python -m memorygan edit text --generator "$G" --prompt "red hair" --parts hair --seeds 0-3 \
      --steps 40 --seg-loss l2 --seg-norm pixels --lambda-seg "$lam" --held-out rgb --threads 1 --no-progress \
      --out "$d"
  done
  for spec in "red hair:hair" "blonde hair:hair" "dark skin:skin"; do
    prompt=${spec%%:*}; parts=${spec##*:}
    for opt in cma+adam adam; do
      d=$OUT/$arch/region/${prompt// /-}-${opt/+/-}-full
      [ -f "$d/metrics.json" ] || python -m memorygan edit region --generator "$G" --prompt "$prompt" --parts "$parts" \
        --seeds 0-2 --optimizer "$opt" --popsize 50 --cma-iters 20 --adam-steps 100 --held-out rgb --threads 1 \
        --no-progress --out "$d"
    done
  done
done
# 3. colour phrases through the texture codes only (--layers texture), lambda_seg 100 (the default from the sweep)
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  for spec in "red hair:hair" "blonde hair:hair" "black hair:hair" "dark skin:skin" "light skin:skin" \
              "blue eyes:eyes"; do
    prompt=${spec%%:*}; parts=${spec##*:}
    d=$OUT/$arch/texture/${prompt// /-}-$parts-seg100
    [ -f "$d/metrics.json" ] || python -m memorygan edit text --generator "$G" --prompt "$prompt" --parts "$parts" \
      --layers texture --seeds 0-3 --steps 40 --seg-loss l2 --seg-norm pixels --lambda-seg 100 --held-out rgb \
      --threads 1 --no-progress --out "$d"
  done
done
# 4. CMA-ES + Adam vs Adam alone at the full budget, measured by an assessor that is not the attribute scorer:
#    "red hair" by the hair's redness, "blonde hair" by the hair's HLS lightness (`memorygan edit assessors`)
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  for spec in "red hair:redness:hair" "blonde hair:lightness:hair"; do
    IFS=: read -r prompt assessor parts <<< "$spec"
    for opt in cma+adam adam; do
      d=$OUT/$arch/region-assessor/${prompt// /-}-${opt/+/-}-full
      [ -f "$d/metrics.json" ] || python -m memorygan edit region --generator "$G" --prompt "$prompt" --parts "$parts" \
        --seeds 0-2 --optimizer "$opt" --popsize 50 --cma-iters 20 --adam-steps 100 --held-out "$assessor:$parts" \
        --threads 1 --no-progress --out "$d"
    done
  done
done

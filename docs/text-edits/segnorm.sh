#!/usr/bin/env bash
# The per-part seg term (--seg-norm parts) of docs/text-edits.md: "red hair" through the hair codes (both roles or
# the texture codes only) at several lambda_seg, 40 steps (the study's) and 300 (StyleCLIP's default), seeds 0-3,
# held-out scorer: attribute words in RGB. One process, one thread.
# Usage: bash docs/text-edits/segnorm.sh OUT (default /work/exp/text/segnorm); then
#        python docs/text-edits/tables.py STUDY EXTRA OUT   (the seg-norm table)
set -euo pipefail
OUT=${1:-/work/exp/text/segnorm}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONPATH="$(cd "$(dirname "$0")/../.." && pwd)/src${PYTHONPATH:+:$PYTHONPATH}"   # this checkout
run() {   # run ARCH NAME ARGS...
  local arch=$1 name=$2; shift 2
  local d=$OUT/$arch/$name
  mkdir -p "$OUT/$arch"
  [ -f "$d/metrics.json" ] || python -m memorygan edit text --generator "/work/exp/runs/t100-$arch" --prompt "red hair" \
    --parts hair --seeds 0-3 --seg-norm parts --held-out rgb --threads 1 --no-progress --out "$d" "$@" > "$d.log" 2>&1
}
for arch in memorygan ssg; do
  for lam in 100 1000 10000; do run $arch red-hair-parts$lam --steps 40 --lambda-seg $lam; done
  for lam in 1000 10000; do
    run $arch red-hair-texture-parts$lam --steps 40 --layers texture --lambda-seg $lam
    run $arch red-hair-parts$lam-300steps --steps 300 --lambda-seg $lam
  done
  for lam in 1000 3000; do run $arch red-hair-texture-parts$lam-300steps --steps 300 --layers texture --lambda-seg $lam; done
done
# the margin seg term (--seg-loss margin: only a move towards another label costs), per part
for arch in memorygan ssg; do
  for lam in 10 100 1000; do
    run $arch red-hair-margin-parts$lam --steps 40 --seg-loss margin --lambda-seg $lam
    run $arch red-hair-margin-parts$lam-300steps --steps 300 --seg-loss margin --lambda-seg $lam
  done
done
for arch in ssg memorygan; do
  for lam in 3000 10000; do run $arch red-hair-margin-parts$lam-300steps --steps 300 --seg-loss margin --lambda-seg $lam; done
done
# the six phrases of the study with the margin seg term, per part, lambda_seg 1000 (40 steps, as the study)
for arch in memorygan ssg; do
  for spec in "red hair:hair:all" "blonde hair:hair:all" "black hair:hair:all" "dark skin:skin:all" \
              "light skin:skin:all" "a big smile:mouth:outside"; do
    IFS=: read -r prompt parts on <<< "$spec"
    d=$OUT/$arch/six/${prompt// /-}-margin-parts1000
    mkdir -p "$OUT/$arch/six"
    [ -f "$d/metrics.json" ] || python -m memorygan edit text --generator "/work/exp/runs/t100-$arch" --prompt "$prompt" \
      --parts "$parts" --seeds 0-3 --steps 40 --seg-on "$on" --seg-norm parts --seg-loss margin --lambda-seg 1000 \
      --held-out rgb --threads 1 --no-progress --out "$d" > "$d.log" 2>&1
  done
done
# colour through the texture codes only, with the margin term per part
for arch in ssg memorygan; do
  for steps in 40 300; do
    run $arch red-hair-texture-margin-parts1000-${steps}steps --steps $steps --layers texture --seg-loss margin --lambda-seg 1000
  done
done

#!/usr/bin/env bash
# usage: eval-final2.sh   (after eval-final.sh: PTI on all 4 held-out projections, longer PTI, known answers without
# the mask loss; the step-4000 checkpoints; one process at a time)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=src OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=/work/exp/inversion
inv() { python -m memorygan invert --generator "$G" --threads 1 --no-progress "$@"; }
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  # (2b) PTI around all 4 held-out projections (the 1-image folder of eval-final.sh cannot be extended: other source)
  inv --images $E/heldout64 --limit 4 --init-from $E/final-heldout-$arch --out $E/final-heldout-$arch-pti4 --steps 0 \
      --pti-steps 100 --pti-lr 1e-3 --pti-perceptual-weight 0.1
  # (2d) 300 PTI steps on the first image
  inv --images $E/heldout64 --limit 1 --init-from $E/final-heldout-$arch --out $E/final-heldout-$arch-pti-long --steps 0 \
      --pti-steps 300 --pti-lr 1e-3 --pti-perceptual-weight 0.1
done
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  # (1b) known answers without the mask loss
  inv --seeds 0-3 --out $E/final-known-$arch-nomask --steps 300 --batch 4 --seg-weight 0
done
echo done

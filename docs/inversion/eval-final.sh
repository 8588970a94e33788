#!/usr/bin/env bash
# usage: eval-final.sh   (the runs of docs/inversion.md on the final, step-4000 checkpoints; one process at a time)
# data first: memorygan data synth portraits --n 40 --size 64 --seed 7 --out /work/exp/inversion/heldout64
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=src OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=/work/exp/inversion
inv() { python -m memorygan invert --generator "$G" --threads 1 --no-progress "$@"; }
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch                   # the run folder loads its newest checkpoint (step 4000)
  # (1) known answers: 4 samples (seeds 0-3) of the generator, 300 steps, with the mask loss
  inv --seeds 0-3 --out $E/final-known-$arch --steps 300 --batch 4
  # (2) held-out portraits (first 4 of heldout64) with the mask loss
  inv --images $E/heldout64 --limit 4 --out $E/final-heldout-$arch --steps 300 --batch 4
done
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  # (2b) PTI around the first held-out projection, the setting docs/inversion.md recommends
  inv --images $E/heldout64 --limit 1 --init-from $E/final-heldout-$arch --out $E/final-heldout-$arch-pti --steps 0 \
      --pti-steps 100 --pti-lr 1e-3 --pti-perceptual-weight 0.1
done
for arch in memorygan ssg; do
  G=/work/exp/runs/t100-$arch
  # (2c) held-out without the mask loss (4 images, 300 steps, as with the mask loss)
  inv --images $E/heldout64 --limit 4 --out $E/final-heldout-$arch-nomask --steps 300 --batch 4 --seg-weight 0
done
echo done

#!/usr/bin/env bash
# usage: eval.sh ARCH CHECKPOINT_DIR   (runs the inversion evaluation of docs/inversion.md for one generator)
set -euo pipefail
arch=$1; G=$2
cd "$(dirname "$0")/../.."
export PYTHONPATH=src OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=/work/exp/inversion
inv() { python -m memorygan invert --generator "$G" --threads 1 --no-progress "$@"; }
# (1) known answers: 4 samples (seeds 0-3) of the generator, 300 steps
inv --seeds 0-3 --out $E/known-$arch --steps 300 --batch 4
inv --seeds 0-3 --out $E/known-$arch-nomask --steps 300 --batch 4 --seg-weight 0
inv --seeds 0-3 --out $E/known-$arch-latents --steps 300 --batch 4 --level latents
# (2) held-out portraits (first 4 of heldout64), without / with the mask loss, with PTI (100 steps)
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch-nomask --steps 300 --batch 4 --seg-weight 0
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch --steps 300 --batch 4
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch-pti --steps 300 --batch 4 --pti-steps 100
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch-pti-noloc --steps 300 --batch 4 --pti-steps 100 --pti-locality-weight 0
# (3) the real-data path: a CelebAMask-HQ raw-layout replica and a `data import` folder of 256 px portraits
inv --images $E/celeba64 --out $E/celeba-$arch --steps 300 --batch 4
inv --images $E/import64 --out $E/import-$arch --steps 300 --batch 4
echo done

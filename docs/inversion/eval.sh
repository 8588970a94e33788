#!/usr/bin/env bash
# usage: eval.sh ARCH CHECKPOINT_DIR   (the projections of docs/inversion.md for one generator)
# data first: memorygan data synth portraits --n 40 --size 64 --seed 7 --out /work/exp/inversion/heldout64
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
# (2) held-out portraits (first 4 of heldout64), without / with the mask loss
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch-nomask --steps 300 --batch 4 --seg-weight 0
inv --images $E/heldout64 --limit 4 --out $E/heldout-$arch --steps 300 --batch 4
# (2b) PTI and (3) the real-data path: eval2.sh
echo done

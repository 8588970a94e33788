#!/usr/bin/env bash
# usage: eval2.sh ARCH CHECKPOINT_DIR   (PTI around the held-out projections, and the real-data path; run after
# eval.sh; 1 image each, for the CPU time the shared machine left)
set -euo pipefail
arch=$1; G=$2
cd "$(dirname "$0")/../.."
export PYTHONPATH=src OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
E=/work/exp/inversion
inv() { python -m memorygan invert --generator "$G" --threads 1 --no-progress "$@"; }
inv --images $E/heldout64 --limit 1 --init-from $E/heldout-$arch --out $E/heldout-$arch-pti --steps 0 --pti-steps 100
inv --images $E/celeba64 --limit 1 --out $E/celeba-$arch --steps 300
# PTI with a larger learning rate and the projection's perceptual weight
inv --images $E/heldout64 --limit 1 --init-from $E/heldout-$arch --out $E/heldout-$arch-pti-b --steps 0 --pti-steps 100 \
    --pti-lr 1e-3 --pti-perceptual-weight 0.1
# ... and lr 3e-3 (MemoryGAN only)
[ "$arch" = memorygan ] && inv --images $E/heldout64 --limit 1 --init-from $E/heldout-$arch --out $E/heldout-$arch-pti-c \
    --steps 0 --pti-steps 100 --pti-lr 3e-3 --pti-perceptual-weight 0.1
# PTI without its locality regulariser
inv --images $E/heldout64 --limit 1 --init-from $E/heldout-$arch --out $E/heldout-$arch-pti-noloc --steps 0 --pti-steps 100 \
    --pti-locality-weight 0
echo done

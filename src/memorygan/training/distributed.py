"""Process-group helpers for data-parallel training under `torchrun` (gloo on CPU, NCCL on GPU).

Gradients are averaged explicitly after each phase (StyleGAN2-ADA's training loop does the same instead of
wrapping the networks in DistributedDataParallel): the four phases (D main, D reg, G main, G reg) touch different
subsets of the parameters and the regularisers need double backward, both of which DDP's bucketed hooks handle
badly. Semantics are those of DDP: every process computes the gradient of its slice of the global batch and the
average over processes is applied everywhere.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) when not launched by torchrun."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def init(device: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun. Returns (rank, world_size)."""
    rank, local_rank, world = env_world()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return rank, world


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of `params` (one flat buffer) and divide by the world size. Parameters without a
    gradient (not reached by this phase's loss: the same set on every process, since it depends only on the graph)
    keep `grad = None`, so the optimizer skips them exactly as in a single process (a zero gradient would still
    advance Adam's step count and second moment)."""
    world = world_size()
    if world == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of a tensor over processes (identity in a single process)."""
    if world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
    return values


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

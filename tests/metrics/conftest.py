"""Fixtures of the metrics tests: a tiny 4-class scenes dataset at 32 px (the size of helpers.tiny_generator) and a
probe trained on it once per session."""
import contextlib
import shutil

import pytest
import torch

from memorygan.data.synth import synthesize
from memorygan.metrics.probe import train_probe

TINY_PROBE = dict(steps=60, batch_size=8, lr=3e-3, base_channels=8, depth=3, progress=False)


@contextlib.contextmanager
def threads(n: int):
    """Run with `n` intra-op threads, then restore. The probe/generator tests use tiny tensors that gain nothing
    from a second thread, and two-thread OpenMP on a shared two-core machine can be many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    with threads(1):
        yield


@pytest.fixture(scope="session")
def scenes32(tmp_path_factory):
    """48 procedural scenes, 4 classes, 32 px (read-only: copy it before changing it)."""
    return synthesize("scenes", tmp_path_factory.mktemp("ds") / "scenes32", n=48, size=32, seed=0,
                      num_classes=4).path


@pytest.fixture(scope="session")
def trained(scenes32, tmp_path_factory):
    """(dataset folder with a trained probe in probe/, ProbeReport)."""
    root = tmp_path_factory.mktemp("trained") / "data"
    shutil.copytree(scenes32, root)
    with threads(1):
        report = train_probe(root, **TINY_PROBE)
    return root, report

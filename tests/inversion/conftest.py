"""Fixtures of the inversion tests: one torch thread (tiny tensors gain nothing from two, and two-thread OpenMP on a
shared two-core machine can be many times slower) and tiny generator folders."""
import hashlib
from pathlib import Path

import pytest
import torch
from helpers import tiny_generator


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def generator_dir(tmp_path, arch):
    """A tiny generator saved as a generator folder."""
    return tiny_generator(arch).eval().save_pretrained(tmp_path / f"G-{arch}")


def file_states(root: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime_ns) of every file under root."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture
def states():
    return file_states

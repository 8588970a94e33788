from pathlib import Path

import pytest

from memorygan.data.synth import synthesize


@pytest.fixture(scope="session")
def cat64(tmp_path_factory) -> Path:
    """40 procedural scene-category images, 64 px (the smallest BigGAN resolution), 10 categories."""
    out = tmp_path_factory.mktemp("biggan") / "cat64"
    synthesize("categories", out, n=40, size=64, seed=5, num_categories=10, ss=1)
    return out



"""Fixtures for training tests: a tiny preset and a tiny procedural dataset (32 px portraits)."""
import json

import pytest

from helpers import TINY_PRESET


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    from memorygan.data.synth import synthesize
    root = tmp_path_factory.mktemp("data") / "portraits32"
    synthesize("portraits", root, n=16, size=32, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """{arch: path of a tiny preset JSON}."""
    d = tmp_path_factory.mktemp("presets")
    out = {}
    for arch in ("memorygan", "ssg"):
        p = dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"], arch=arch))
        path = d / f"tiny-{arch}.json"
        path.write_text(json.dumps(p))
        out[arch] = str(path)
    return out


@pytest.fixture
def opts_for(tiny_data, tiny_preset, tmp_path):
    """TrainOptions factory for a tiny run (regularisers every 2 steps so short runs exercise them)."""
    from memorygan.training.options import TrainOptions

    def make(arch="memorygan", out="run", **kw):
        base = dict(data=str(tiny_data), preset=tiny_preset[arch], out=str(tmp_path / out), batch=4, steps=2,
                    d_reg_every=2, g_reg_every=2, log_every=1, sample_every=0, checkpoint_every=0, progress=False,
                    threads=1)
        base.update(kw)
        return TrainOptions(**base)
    return make

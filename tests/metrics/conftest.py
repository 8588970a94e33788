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


# ---------------------------------------------------------------------------------------------------- extractors

class TinyExtractor:
    """A cheap stand-in with the `fidelity.FeatureExtractor` interface: per-channel mean and std and two corner
    pixels (8-d features), 5 fixed linear logits; counts its calls."""

    name = "tiny"
    feature_dim = 8
    resolution = None

    def __init__(self, identity: str = "tiny-v1", scale: float = 1.0):
        self.identity = identity
        self.scale = scale
        self.calls = 0
        self.weight = torch.linspace(-1, 1, 40).reshape(5, 8)

    @property
    def device(self):
        return torch.device("cpu")

    def features(self, images):
        self.calls += 1
        assert images.dtype == torch.float32 and images.min() >= -1 and images.max() <= 1
        x = images * self.scale
        feats = torch.cat([x.mean((2, 3)), x.std((2, 3)), x[:, :2, 0, 0]], 1)  # (B, 8)
        return feats, feats @ self.weight.T * 4


@pytest.fixture
def tiny_extractor():
    """The TinyExtractor class (call it to make one)."""
    return TinyExtractor


def make_random_inception(seed: int = 0):
    """The full FID InceptionV3 with random weights whose activations stay O(1) (as in test_inception.py)."""
    from torch import nn

    from memorygan.metrics.inception import FIDInceptionV3

    g = torch.Generator().manual_seed(seed)
    model = FIDInceptionV3()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=g)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=g)
                module.bias.normal_(0.0, 0.1, generator=g)
                module.running_mean.normal_(0.0, 0.1, generator=g)
                module.running_var.uniform_(0.5, 2.0, generator=g)
        model.fc.weight.normal_(0.0, 0.05, generator=g)
        model.fc.bias.normal_(0.0, 0.5, generator=g)
    return model.eval()


@pytest.fixture
def random_inception():
    """The make_random_inception function."""
    return make_random_inception


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    """A weights file with the standard FID Inception layout and random weights (written once per session)."""
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(make_random_inception(1).state_dict(), path)
    return path

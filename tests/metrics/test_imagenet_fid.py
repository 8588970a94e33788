"""The ImageNet-feature FID (`ifid`: EfficientNet-Lite0 features from the perceptual extra) through the registry."""
import shutil

import pytest
import torch
from helpers import tiny_generator

from memorygan.inversion.perceptual import efficientnet_available
from memorygan.metrics.compute import compute_metrics
from memorygan.metrics.fidelity import ImageNetExtractor
from memorygan.metrics.samples import generated_batches
from memorygan.metrics.stats import FeatureStats, fid_from_stats

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not efficientnet_available(), reason="the perceptual extra is not installed")]


def test_extractor_and_registration():
    from memorygan.metrics.registry import get_metric

    assert get_metric("ifid").group == "imagenet" and "not comparable" in get_metric("ifid").summary
    ext = ImageNetExtractor()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats, logits = ext.features(x)
    assert feats.shape == (2, 1280) and logits.shape == (2, 1000) and ext.identity.startswith("efficientnet-lite0:")
    assert torch.allclose(ext.features(x[:1])[0], feats[:1], atol=1e-5)       # per image, batch-independent


@pytest.mark.slow
def test_ifid_equals_the_frechet_distance_of_the_extractor_features(scenes32, tmp_path):
    """(~20 s: two 1280-d matrix square roots on one CPU thread)"""
    from memorygan.data.dataset import SegmentationDataset

    data = tmp_path / "data"
    shutil.copytree(scenes32, data)
    G = tiny_generator("memorygan").eval()
    res = compute_metrics("ifid", generator=G, data=data, n=6, num_real=6, batch_size=6)["ifid"]
    assert res["num_samples"] == 6 and res["num_real"] == 6 and "not comparable" in res["note"]
    ext = ImageNetExtractor()
    ds = SegmentationDataset(data)
    real = torch.stack([ds[i]["image"] for i in range(6)])
    fake = next(iter(generated_batches(G, 6, 0, batch_size=6)))[0]
    rs, fs = FeatureStats(), FeatureStats()
    rs.append(ext.features(real)[0])
    feats, logits = ext.features(fake)
    fs.append(feats)
    assert feats.shape == (6, 1280) and logits.shape == (6, 1000)
    assert res["imagenet_fid"] > 0 and res["imagenet_fid"] == pytest.approx(fid_from_stats(rs, fs), rel=1e-4)

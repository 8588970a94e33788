"""Domain FID/KID and mask consistency through a probe trained on a tiny 4-class dataset."""
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_generator
from memorygan.data.dataset import SegmentationDataset
from memorygan.errors import ConfigError, DatasetError
from memorygan.metrics.domain import DomainMetrics, domain_metrics, quantize_image
from memorygan.metrics.probe import load_probe
from memorygan.metrics.stats import IoUCounts, kernel_inception_distance

pytestmark = pytest.mark.usefixtures("one_thread")


class ReplayGenerator(torch.nn.Module):
    """A generator-like stub whose samples are fixed images (in order) with fixed seg logits."""

    def __init__(self, images, segs, resolution=32):
        super().__init__()
        self.images, self.segs, self.pos = images, segs, 0
        self.config = SimpleNamespace(num_classes=segs.shape[1], resolution=resolution)

    def sample_z(self, n, seed=None, generator=None):
        return torch.randn(n, 1, 4, generator=generator)

    def forward(self, z, truncation=1.0, noise_mode="const"):
        assert noise_mode == "const"
        sl = slice(self.pos, self.pos + z.shape[0])
        self.pos += z.shape[0]
        return SimpleNamespace(image=self.images[sl], seg=self.segs[sl])


def real_items(root):
    ds = SegmentationDataset(root)
    items = [ds.load(i) for i in range(len(ds.names))]
    return torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items]), \
        torch.stack([it["ids"] for it in items])


@pytest.fixture
def data(trained, tmp_path):
    """A private copy of the trained dataset (its probe/ folder included), for tests that write caches."""
    root, _ = trained
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data"


def test_real_images_as_samples(data):
    dm = DomainMetrics(data, data, cache=False)
    images, masks, ids = real_items(data)
    assert dm.real.count == 48 and dm.real.features.shape == (48, dm.probe.feature_dim)
    res = dm.evaluate(ReplayGenerator(images, masks), num_samples=48, batch_size=16)
    # the samples are the real images: same features (up to batching), FID ~ 0, KID = KID of the set with itself
    assert quantize_image(images).equal(images)
    assert res["domain_fid"] == pytest.approx(0.0, abs=1e-3)
    assert res["domain_kid"] == pytest.approx(kernel_inception_distance(dm.real.features, dm.real.features)[0],
                                              abs=1e-5)
    # mask consistency with the true masks is the probe's mIoU on every image
    counts = IoUCounts(4)
    with torch.no_grad():
        counts.update(dm.probe(images).argmax(1), ids)
    assert res["mask_miou"] == pytest.approx(counts.miou, abs=1e-12)
    assert list(res["mask_iou"]) == dm.classes and res["num_samples"] == 48 and res["num_real"] == 48

    # flat grey "samples" are far from the data
    grey = ReplayGenerator(torch.zeros_like(images), masks)
    bad = dm.evaluate(grey, num_samples=48, batch_size=16)
    assert bad["domain_fid"] > 100 * max(res["domain_fid"], 1e-3) and bad["domain_kid"] > res["domain_kid"] + 0.01


def test_part_presence_by_hand():
    from memorygan.metrics.domain import part_presence, presence_summary
    labels = torch.zeros(3, 32, 32, dtype=torch.long)       # 1024 px: a part needs >= 1 px at 1/1024
    labels[0, :2, :2] = 1                                   # image 0: class 1 (4 px) and class 2 (1 px)
    labels[0, 5, 5] = 2
    labels[1, :, :16] = 3                                   # image 1: class 3 only
    flags = part_presence(labels, 4)
    assert flags.tolist() == [[True, True, True, False], [True, False, False, True], [True, False, False, False]]
    assert part_presence(labels, 4, fraction=2 / 1024)[0].tolist() == [True, True, False, False]
    names = ["background", "eyes", "mouth", "hair"]
    summ = presence_summary(flags, names)
    assert summ["presence_eyes"] == pytest.approx(1 / 3) and summ["presence_hair"] == pytest.approx(1 / 3)
    assert summ["presence_eyes_mouth"] == pytest.approx(1 / 3)              # both only in image 0
    assert "presence_face_parts" not in summ                                # no eyebrows/nose classes here


def test_presence_of_real_images_as_samples(data):
    """Fed the real images, the generated presence rates equal the real ones (same probe, same images)."""
    dm = DomainMetrics(data, data, cache=False)
    images, masks, _ = real_items(data)
    res = dm.evaluate(ReplayGenerator(images, masks), num_samples=48, batch_size=16)
    for c in dm.classes:
        assert res[f"presence_{c}"] == pytest.approx(res[f"presence_real_{c}"], abs=1e-9), c
    # another sample set: its own rates (the probe's segmentation of those images), the real rates unchanged
    from memorygan.metrics.domain import part_presence
    sub = images[torch.arange(48) % 6 == 0]
    few = dm.evaluate(ReplayGenerator(sub, masks[:8]), num_samples=8, batch_size=4)
    with torch.no_grad():
        want = part_presence(dm.probe(sub).argmax(1), 4).float().mean(0)
    assert [few[f"presence_{c}"] for c in dm.classes] == pytest.approx(want.tolist(), abs=1e-9)
    assert all(few[f"presence_real_{c}"] == res[f"presence_real_{c}"] for c in dm.classes)


def test_mask_consistency_is_one_for_the_probes_own_prediction(data):
    dm = DomainMetrics(data, data, cache=False)
    g = torch.Generator().manual_seed(0)
    images = quantize_image(torch.rand(10, 3, 32, 32, generator=g) * 2 - 1)
    with torch.no_grad():
        segs = dm.probe(images)
    res = dm.evaluate(ReplayGenerator(images, segs), num_samples=10, batch_size=4)
    assert res["mask_miou"] == 1.0
    assert all(v in (1.0, None) for v in res["mask_iou"].values())
    # a seg that disagrees (class ids shifted by one) scores 0
    res = dm.evaluate(ReplayGenerator(images, segs.roll(1, dims=1)), num_samples=10, batch_size=4)
    assert res["mask_miou"] == 0.0


def test_real_stats_cache(data):
    first = DomainMetrics(data, data)
    assert not first.from_cache and first.cache_path.is_file() and first.cache_path.parent == data / "probe"
    second = DomainMetrics(data / "probe", data)
    assert second.from_cache and second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.real.mean, first.real.mean)
    np.testing.assert_array_equal(second.real.cov, first.real.cov)
    np.testing.assert_array_equal(second.real.features, first.real.features)
    # another num_real is another cache entry
    sub = DomainMetrics(data, data, num_real=20)
    assert not sub.from_cache and sub.real.count == 20 and sub.cache_path != first.cache_path
    assert DomainMetrics(data, data, num_real=20).from_cache

    # changing one image invalidates the cache
    path = SegmentationDataset(data).image_paths[3]
    Image.open(path).transpose(Image.FLIP_TOP_BOTTOM).save(path)
    third = DomainMetrics(data, data)
    assert not third.from_cache
    assert not np.allclose(third.real.mean, first.real.mean)
    assert DomainMetrics(data, data).from_cache
    # cache=False neither reads nor writes
    before = sorted(p.name for p in (data / "probe").iterdir())
    assert not DomainMetrics(data, data, cache=False).from_cache
    assert sorted(p.name for p in (data / "probe").iterdir()) == before


def test_tiny_generator_evaluation_is_deterministic(trained):
    root, _ = trained
    dm = DomainMetrics(root, root)
    G = tiny_generator("memorygan", seed=0)
    G.train()
    a = dm.evaluate(G, num_samples=12, batch_size=6, seed=1)
    b = dm.evaluate(G, num_samples=12, batch_size=6, seed=1)
    assert G.training  # mode restored
    for key in ("domain_fid", "domain_kid", "domain_kid_std", "mask_miou", "mask_iou"):
        assert a[key] == b[key], key
    assert np.isfinite(a["domain_fid"]) and a["domain_fid"] > 0 and 0 <= a["mask_miou"] <= 1
    c = dm.evaluate(G, num_samples=12, batch_size=6, seed=2)
    assert c["domain_fid"] != a["domain_fid"]


def test_domain_metrics_from_saved_generator(trained, tmp_path):
    root, _ = trained
    G = tiny_generator("ssg", seed=3).eval()
    G.save_pretrained(tmp_path / "G")
    got = domain_metrics(tmp_path / "G", root, num_samples=8, seed=4)
    want = DomainMetrics(root, root).evaluate(G, num_samples=8, seed=4)
    for key in ("domain_fid", "domain_kid", "mask_miou"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key


def test_mismatches_raise_clear_errors(trained, tmp_path):
    root, _ = trained
    dm = DomainMetrics(root, root)
    images = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ConfigError, match="generator has 13 classes but the probe and dataset .* have 4"):
        dm.evaluate(ReplayGenerator(images, torch.zeros(2, 13, 32, 32)), num_samples=2)
    with pytest.raises(ConfigError, match="generator makes 64x64 images but dataset .* is 32x32"):
        dm.evaluate(ReplayGenerator(images, torch.zeros(2, 4, 32, 32), resolution=64), num_samples=2)
    with pytest.raises(DatasetError, match="num_real must be between 2 and the 48 images"):
        DomainMetrics(root, root, num_real=49)
    # a probe trained at 32 px cannot measure a 64 px dataset
    from memorygan.data.synth import synthesize
    other = synthesize("scenes", tmp_path / "s64", n=2, size=64, seed=0, num_classes=4).path
    with pytest.raises(DatasetError, match="is 64x64 but the probe .* was trained at 32x32"):
        DomainMetrics(root, other)
    probe, _ = load_probe(root)
    assert probe.num_classes == 4

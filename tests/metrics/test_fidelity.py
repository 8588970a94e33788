"""Feature-based fidelity: extractors, the real-statistics cache, FID/KID/IS of generators and image folders.

Most tests use `TinyExtractor`, a cheap stand-in with the extractor interface; one test runs the whole path with
the real InceptionV3 architecture (random weights saved by the test) on a handful of images."""
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from helpers import tiny_generator
from memorygan.errors import CheckpointError, ConfigError, DatasetError
from memorygan.metrics.domain import DomainMetrics
from memorygan.metrics.fidelity import (CACHE_DIR, InceptionExtractor, ProbeExtractor, compute_fidelity,
                                        fidelity_scores, real_feature_stats, resolve_kid_subset,
                                        state_checksum)
from memorygan.metrics.inception import ENV_VAR, inception_score
from memorygan.metrics.samples import ImageFolder, generated_batches
from memorygan.metrics.stats import FeatureStats, fid_from_stats, kernel_inception_distance

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def TinyExtractor(tiny_extractor):  # noqa: N802 - the class, under its own name
    return tiny_extractor


@pytest.fixture
def data(scenes32, tmp_path):
    """A private copy of the 48-image dataset (tests write caches into it)."""
    shutil.copytree(scenes32, tmp_path / "data")
    return tmp_path / "data"


def save_samples(G, folder, n, seed=0, batch_size=32):
    """Write G's quantised samples as PNGs (what a user would evaluate with --images)."""
    folder.mkdir(parents=True)
    i = 0
    for image, _ in generated_batches(G, n, seed, batch_size=batch_size):
        for img in image:
            pixels = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
            i += 1
    return folder


# ---------------------------------------------------------------------------------------------------- scores

def test_fid_of_the_dataset_with_itself_is_zero(data, TinyExtractor):
    """The dataset's own image files as the 'generated' set: same features, FID 0."""
    res = compute_fidelity(TinyExtractor(), data=data, images=data / "images", metrics=["fid"])
    assert res["num_samples"] == 48 and res["num_real"] == 48
    assert res["fid"] == pytest.approx(0.0, abs=1e-8)


def test_scores_against_direct_computation():
    rng = np.random.default_rng(0)
    real, fake = FeatureStats(8, max_items=100), FeatureStats(8, max_items=60)
    r, f = rng.normal(size=(100, 8)), rng.normal(size=(60, 8)) + 0.2
    real.append(r)
    fake.append(f)
    logits = torch.from_numpy(rng.normal(size=(60, 5)) * 3)
    s = fidelity_scores(fake, real, logits)
    assert s["fid"] == pytest.approx(fid_from_stats(real, fake))
    assert s["kid_subset_size"] == 60 and s["kid_subsets"] == 100  # min(1000, N, real)
    assert (s["kid"], s["kid_std"]) == kernel_inception_distance(real.features, fake.features, 100, 60, seed=0)
    assert (s["is"], s["is_std"]) == inception_score(logits, 10) and s["is_splits"] == 10
    assert set(fidelity_scores(fake, None, logits, ["is"])) == {"is", "is_std", "is_splits"}


def test_kid_subset_and_is_limits_are_clear_errors():
    assert resolve_kid_subset(500, 2000) == 500 and resolve_kid_subset(5000, 2000) == 1000
    assert resolve_kid_subset(50, 40, requested=30) == 30
    with pytest.raises(ConfigError, match=r"KID subset size 41 \(--kid-subset\) is larger than the 40 real"):
        resolve_kid_subset(50, 40, requested=41)
    with pytest.raises(ConfigError, match=r"larger than the 50 generated images \(--n\)"):
        resolve_kid_subset(50, 400, requested=60)
    fake = FeatureStats(2)
    fake.append(np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ConfigError, match=r"IS with 10 splits needs at least 10 images, got 5 \(--n\)"):
        fidelity_scores(fake, None, torch.zeros(5, 3), ["is"])
    with pytest.raises(ConfigError, match="--data"):
        fidelity_scores(fake, None, None, ["fid"])


# ---------------------------------------------------------------------------------------------------- cache

def test_real_statistics_cache_is_keyed_by_dataset_extractor_and_num_real(data, tmp_path, TinyExtractor):
    ext = TinyExtractor()
    first = real_feature_stats(ext, data)
    assert not first.from_cache and first.path.parent == data / CACHE_DIR and first.path.name.startswith("tiny-")
    assert first.stats.count == 48 and first.stats.features.shape == (48, 8) and ext.calls == 2  # batches of 32
    again = real_feature_stats(ext, data)
    assert again.from_cache and again.path == first.path and ext.calls == 2  # nothing recomputed
    np.testing.assert_array_equal(again.stats.features, first.stats.features)
    np.testing.assert_array_equal(again.stats.cov, first.stats.cov)

    # another extractor identity (other weights) is another entry
    other = real_feature_stats(TinyExtractor(identity="tiny-v2", scale=0.5), data)
    assert not other.from_cache and other.path != first.path
    assert not np.allclose(other.stats.mean, first.stats.mean)
    assert real_feature_stats(TinyExtractor(), data).from_cache
    # another num_real too
    sub = real_feature_stats(ext, data, num_real=20)
    assert not sub.from_cache and sub.stats.count == 20 and sub.path != first.path
    # changing one image of the dataset invalidates it
    path = sorted((data / "images").iterdir())[5]
    Image.open(path).transpose(Image.FLIP_TOP_BOTTOM).save(path)
    changed = real_feature_stats(ext, data)
    assert not changed.from_cache and changed.path != first.path
    assert not np.allclose(changed.stats.mean, first.stats.mean)
    assert real_feature_stats(ext, data).from_cache

    # cache=False neither reads nor writes; cache_dir puts the files elsewhere
    before = sorted(p.name for p in (data / CACHE_DIR).iterdir())
    assert not real_feature_stats(ext, data, cache=False).from_cache
    assert sorted(p.name for p in (data / CACHE_DIR).iterdir()) == before
    elsewhere = real_feature_stats(ext, data, cache_dir=tmp_path / "cache")
    assert not elsewhere.from_cache and elsewhere.path.parent == tmp_path / "cache"
    # a damaged cache file is recomputed with a warning
    elsewhere.path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        again = real_feature_stats(ext, data, cache_dir=tmp_path / "cache")
    assert not again.from_cache and FeatureStats.load(again.path).count == 48


def test_num_real_larger_than_the_dataset(data, TinyExtractor):
    with pytest.raises(DatasetError, match="--num-real 49 is larger than the 48 images of dataset"):
        real_feature_stats(TinyExtractor(), data, num_real=49)


# ---------------------------------------------------------------------------------------------------- sources

def test_image_folder_measures_what_the_generator_does(data, tmp_path, TinyExtractor):
    """Generated images are quantised exactly as PNG files keep them: the folder of a generator's samples gives
    the generator's FID, KID and IS."""
    G = tiny_generator("memorygan", seed=1).eval()
    folder = save_samples(G, tmp_path / "samples", 12, seed=5, batch_size=5)
    from_g = compute_fidelity(TinyExtractor(), data=data, generator=G, num_samples=12, seed=5, batch_size=5,
                              metrics=["fid", "kid", "is"], kid_subset_size=None)
    ext = TinyExtractor()
    from_folder = compute_fidelity(ext, data=data, images=folder, metrics=["fid", "kid", "is"])
    assert ext.calls == 1  # real statistics from the cache written by the first call, one folder batch
    for key in ("fid", "kid", "kid_std", "is", "is_std"):
        assert from_folder[key] == pytest.approx(from_g[key], rel=1e-6, abs=1e-9), key
    assert from_folder["num_samples"] == from_g["num_samples"] == 12 and from_g["fid"] > 0
    # the first N images of the folder
    assert compute_fidelity(TinyExtractor(), images=folder, num_samples=10, metrics=["is"])["num_samples"] == 10


def test_image_folder_errors(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    (folder / "notes.txt").write_text("ignored")
    with pytest.raises(DatasetError, match="holds 1 PNG/JPEG image.*at least 2"):
        ImageFolder(folder)
    Image.new("RGB", (16, 12), (255, 0, 0)).save(folder / "b.jpg")
    f = ImageFolder(folder)
    assert [p.name for p in f.paths] == ["a.png", "b.jpg"] and f.sizes == [(8, 8), (16, 12)]
    batches = list(f.batches(batch_size=8))  # sizes differ: one batch each
    assert [b.shape for b, _ in batches] == [(1, 3, 8, 8), (1, 3, 12, 16)]
    assert batches[0][0].min() == -1.0 and batches[1][0][0, 0].min() > 0.95  # black PNG, red JPEG
    with pytest.raises(DatasetError, match=r"3 images were asked for \(--n\) but image folder .* holds 2"):
        ImageFolder(folder, limit=3)
    (folder / "c.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image .*c.png"):
        ImageFolder(folder)
    with pytest.raises(DatasetError, match="does not exist"):
        ImageFolder(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------------- extractors

def test_probe_extractor_gives_the_domain_metrics(trained, tmp_path):
    """FID/KID on the probe's features through the generic path equal DomainMetrics' domain FID/KID."""
    root, _ = trained
    G = tiny_generator("ssg", seed=2).eval()
    ext = ProbeExtractor.from_path(root)
    assert ext.name == "probe" and ext.resolution == (32, 32)
    dm = DomainMetrics(root, root, cache=False)  # the session's dataset stays as it is
    assert ext.identity == dm.probe_meta["checksum"]
    got = compute_fidelity(ext, data=root, generator=G, num_samples=10, seed=3, metrics=["fid", "kid"],
                           cache_dir=tmp_path / "cache")
    want = dm.evaluate(G, num_samples=10, seed=3)
    assert got["fid"] == pytest.approx(want["domain_fid"], rel=1e-6)
    assert got["kid"] == pytest.approx(want["domain_kid"], rel=1e-5, abs=1e-9)
    with pytest.raises(ConfigError, match="no class logits"):
        compute_fidelity(ext, generator=G, num_samples=10, metrics=["is"])
    with pytest.raises(ConfigError, match="measures 32x32 images, got 16x16"):
        ext.features(torch.zeros(1, 3, 16, 16))


def test_inception_identity_is_the_weights_not_the_file(tmp_path, monkeypatch, random_inception):
    model = random_inception(0)
    sd = model.state_dict()
    torch.save(sd, tmp_path / "a.pth")
    save_file({k: v.contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")},
              str(tmp_path / "a.safetensors"))
    a = InceptionExtractor.from_weights(tmp_path / "a.pth")
    b = InceptionExtractor.from_weights(tmp_path / "a.safetensors")
    assert a.identity == b.identity == state_checksum(model) and a.feature_dim == 2048
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "a.pth"))
    env = InceptionExtractor.from_weights()
    assert env.identity == a.identity and env.source == str(tmp_path / "a.pth")
    with torch.no_grad():
        model.fc.bias.add_(1.0)
    torch.save(model.state_dict(), tmp_path / "b.pth")
    assert InceptionExtractor.from_weights(tmp_path / "b.pth").identity != a.identity
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(CheckpointError, match="--inception-weights") as e:
        InceptionExtractor.from_weights(None)
    assert ENV_VAR in str(e.value)


def inception_run(make_inception, data, tmp_path, metrics, seed=1):
    """(result of `fidelity` with a random-weights Inception file on 10 samples vs 4 real images, the model,
    real images, generated images)."""
    model = make_inception(seed)
    torch.save(model.state_dict(), tmp_path / "inception.pth")
    ext = InceptionExtractor.from_weights(tmp_path / "inception.pth")
    G = tiny_generator("memorygan", seed=4).eval()
    res = compute_fidelity(ext, data=data, generator=G, num_samples=10, seed=1, batch_size=5, num_real=4,
                           metrics=metrics)
    from memorygan.data.dataset import SegmentationDataset
    ds = SegmentationDataset(data)
    real = torch.stack([ds.load(i)["image"] for i in range(4)])
    fake = torch.cat([img for img, _ in generated_batches(G, 10, 1, batch_size=5)])
    return res, ext, model, real, fake


def test_inception_end_to_end_on_a_few_images(data, tmp_path, random_inception):
    """The real network (random weights read from a file) on 10 generated images vs 4 real ones: KID and IS equal
    a direct computation with the module, and a second use reads the real statistics from the cache.
    (FID with 2048-d features costs two 2048x2048 matrix square roots, ~25 s on one CPU thread: see the slow test
    below; FID itself is tested on the stand-in extractor.)"""
    res, ext, model, real, fake = inception_run(random_inception, data, tmp_path, ["kid", "is"])
    cached = sorted(p.name for p in (data / CACHE_DIR).iterdir())
    assert len(cached) == 1 and cached[0].startswith("inception-")
    with torch.no_grad():
        rf = model.features(real)
        ff, logits = model.features(fake, return_logits=True)
    assert torch.isfinite(ff).all() and ff.std() > 1e-3
    kid = kernel_inception_distance(rf.numpy(), ff.numpy(), 100, 4, seed=0)
    assert res["kid"] == pytest.approx(kid[0], rel=1e-3, abs=1e-6) and res["kid_subset_size"] == 4
    assert res["is"] == pytest.approx(inception_score(logits, 10)[0], rel=1e-5)
    assert res["num_real"] == 4 and res["extractor"] == "inception" and res["num_samples"] == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert real_feature_stats(ext, data, num_real=4).from_cache


@pytest.mark.slow
def test_inception_fid_end_to_end(data, tmp_path, request, random_inception):
    """FID with the real network equals the Frechet distance of the module's own features (~1 CPU-minute)."""
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("2048-d FID on CPU; run with -m slow")
    res, _, model, real, fake = inception_run(random_inception, data, tmp_path, ["fid"])
    rs, fs = FeatureStats(), FeatureStats()
    with torch.no_grad():
        rs.append(model.features(real))
        fs.append(model.features(fake))
    assert res["fid"] > 0 and res["fid"] == pytest.approx(fid_from_stats(rs, fs), rel=1e-4)

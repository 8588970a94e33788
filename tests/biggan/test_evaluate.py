"""Domain classifier and the conditional metrics: IS, precision/recall, per-class accuracy and FID."""
import json
import math

import pytest
import torch

from memorygan.biggan.classifier import load_classifier, stratified_split, train_classifier
from memorygan.biggan.config import biggan_config
from memorygan.biggan.evaluate import evaluate_generator, inception_score, precision_recall, real_features
from memorygan.biggan.models import BigGANGenerator
from memorygan.errors import CheckpointError, DatasetError


def test_inception_score_by_hand():
    c = 4
    uniform = torch.full((40, c), 1 / c)                  # p(y|x) = p(y): KL 0 -> IS 1
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    onehot = torch.eye(c).repeat(10, 1)                   # confident and balanced: KL = log C -> IS = C
    assert inception_score(onehot, splits=1)[0] == pytest.approx(c, rel=1e-6)
    by_class = torch.eye(c).repeat_interleave(100, 0)      # sorted by class, as evaluate_generator samples them
    assert inception_score(by_class, splits=4)[0] == pytest.approx(c, rel=0.1)
    one_class = torch.eye(c)[[0] * 40]                     # confident, one class: IS 1
    assert inception_score(one_class, splits=1)[0] == pytest.approx(1.0, abs=1e-6)


def test_precision_recall_by_construction():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200, 8, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    # fakes collapsed onto 5 real points: all inside the real manifold (precision 1), covering little (recall low)
    collapsed = real[:5].repeat(40, 1)
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.2


def test_stratified_split_keeps_every_class():
    labels = torch.arange(10).repeat(10)                  # the categories cycle with the index, as synthesised
    train, held = stratified_split(labels, 10)
    assert sorted(labels[held].tolist()) == list(range(10))
    assert len(train) == 90 and set(train).isdisjoint(held)
    with pytest.raises(DatasetError, match="holdout_every must be >= 2"):
        stratified_split(labels, 1)


@pytest.fixture(scope="module")
def trained(cat64, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "clf"
    return train_classifier(cat64, out, steps=150, batch_size=16, progress=False)


def test_classifier_learns_the_categories(cat64, trained):
    r = trained
    assert r.heldout_accuracy >= 0.7                       # 10 held-out images, chance 0.1
    model, meta = load_classifier(r.path)
    assert meta["categories"][:2] == ["beach", "forest"] and meta["heldout_accuracy"] == r.heldout_accuracy
    feats, labels = real_features(model, cat64)
    assert feats.shape == (40, model.feature_dim) and labels.tolist()[:3] == [0, 1, 2]


def test_classifier_files_are_checked(cat64, tmp_path):
    train_classifier(cat64, tmp_path / "clf", steps=2, progress=False)
    with pytest.raises(CheckpointError, match="has no trained classifier"):
        load_classifier(_dataset_without(tmp_path, cat64))
    meta = json.loads((tmp_path / "clf" / "classifier.json").read_text())
    meta["num_classes"] = 11
    (tmp_path / "clf" / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="invalid classifier description"):
        load_classifier(tmp_path / "clf")


def _dataset_without(tmp_path, cat64):
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(cat64, d, ignore=shutil.ignore_patterns("classifier"))
    return d


def test_evaluate_generator_fields_and_accuracy_by_construction(cat64, trained):
    """A 'generator' that returns the real image of the requested class is classified like the real images."""
    clf, _ = load_classifier(trained.path)
    from memorygan.data.labelled import LabelledDataset
    ds = LabelledDataset(cat64)
    first = {int(ds.labels[i]): ds.load(i)["image"] for i in range(len(ds.names))}
    cfg = biggan_config("biggan-small", num_classes=10, g_ch=8, d_ch=8, shared_dim=8)

    class Lookup(BigGANGenerator):
        def generate(self, z, labels):
            return torch.stack([first[int(c)] for c in labels])

    G = Lookup(cfg)
    real = real_features(clf, cat64)
    res = evaluate_generator(G, clf, real, n_per_class=3)
    expected = float(sum((clf(first[c][None]).argmax(1) == c).item() for c in range(10)) / 10)
    assert res["accuracy"] == pytest.approx(expected)
    assert res["num_samples"] == 30 and len(res["per_class"]) == 10
    assert res["precision"] == 1.0                         # every sample is a real image
    assert math.isfinite(res["fid"]) and res["inception_score"] >= 1.0

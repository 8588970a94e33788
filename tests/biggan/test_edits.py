"""GANalyze directions and Paint-by-Word on BigGAN."""
import types

import pytest
import torch

from memorygan.biggan.config import biggan_config
from memorygan.biggan.edits import (
    SplitBigGAN, ZDirection, assessor_scale, brightness, colourfulness, evaluate_direction, learn_direction, load_direction, paint_by_word,
    psnr_outside, region_score, save_direction,
)
from memorygan.biggan.models import BigGANGenerator
from memorygan.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    cfg = biggan_config("biggan-small", num_classes=3, g_ch=8, d_ch=8, dim_z=20, shared_dim=8)
    return BigGANGenerator(cfg).eval().requires_grad_(False)


def test_assessors_by_hand():
    grey = torch.zeros(1, 3, 4, 4)                           # [-1, 1] 0 -> 0.5 grey
    assert brightness(grey).item() == pytest.approx(0.5)
    assert colourfulness(grey).item() == pytest.approx(0.0, abs=1e-3)
    red = torch.tensor([1.0, -1.0, -1.0])[None, :, None, None].expand(1, 3, 4, 4)
    # rg = 1, yb = 0.5: std 0, mean sqrt(1.25) -> 0.3 * 1.118
    assert colourfulness(red).item() == pytest.approx(0.3 * 1.25 ** 0.5, rel=1e-3)


def test_split_generator_reproduces_the_source_and_keeps_the_outside(G):
    z0 = torch.randn(1, 20)
    mask = torch.zeros(64, 64)
    mask[16:48, 16:48] = 1
    split = SplitBigGAN(G, z0, torch.tensor([1]), mask)
    src = G.generate(z0, torch.tensor([1]))
    assert torch.allclose(split(z0), src, atol=1e-6)
    nothing = SplitBigGAN(G, z0, torch.tensor([1]), torch.zeros(64, 64))
    assert torch.allclose(nothing(torch.randn(3, 20)), src.expand(3, -1, -1, -1), atol=1e-6)
    other = split(torch.randn(1, 20) * 2)
    inside = (other - src).abs()[..., 24:40, 24:40].mean()
    corner = (other - src).abs()[..., :4, :4].mean()
    assert inside > 10 * corner                               # the change stays in and around the region


def test_ganalyze_learns_brightness_with_the_class_fixed(G, tmp_path):
    d = learn_direction(G, "brightness", steps=60, batch=8, lr=0.05, seed=0)
    assert d.info["curve"][-1]["loss"] < 0.5 * 0.5 ** 2 / 3      # theta = 0 costs E[alpha^2], alpha ~ U[-0.5, 0.5]
    assert d.info["scale"] == "within-class"
    ev = evaluate_direction(G, d, seeds=range(1000, 1040), alphas=(-0.5, 0.5), batch=20)
    assert ev["slope"] > 0.5 and ev["spearman"] > 0.5
    save_direction(d, tmp_path / "dir")
    d2 = load_direction(tmp_path / "dir", G)
    assert torch.equal(d2.theta, d.theta) and d2.scale == d.scale
    other = BigGANGenerator(G.config)
    with pytest.raises(CheckpointError, match="another generator"):
        load_direction(tmp_path / "dir", other)
    with pytest.raises(ConfigError, match="unknown BigGAN assessor 'memorability'"):
        learn_direction(G, "memorability", steps=1)


class _Shaded:
    """A stand-in generator: a flat grey image whose level is the class's (0.2, 0.4, 0.6, 0.8 in brightness) plus
    0.05 z[0]: the brightness std inside a class is 0.05, over the classes sqrt(0.05^2 + 0.05) = 0.229."""

    def __init__(self):
        self.config = types.SimpleNamespace(num_classes=4, dim_z=3)
        self.device = torch.device("cpu")

    def generate(self, z, y):
        level = torch.tensor([0.2, 0.4, 0.6, 0.8])[y] + 0.05 * z[:, 0]
        return (2 * level - 1)[:, None, None, None].expand(-1, 3, 4, 4)


def test_scale_inside_the_classes_leaves_out_the_differences_between_them():
    within = assessor_scale(_Shaded(), brightness, n=4000)
    across = assessor_scale(_Shaded(), brightness, n=4000, kind="all")
    assert within == pytest.approx(2 * 0.05, rel=0.06)
    assert across == pytest.approx(2 * (0.05 ** 2 + 0.05) ** 0.5, rel=0.06)
    with pytest.raises(ConfigError, match="unknown scale 'class'"):
        assessor_scale(_Shaded(), brightness, kind="class")
    with pytest.raises(ConfigError, match="n >= 8"):
        assessor_scale(_Shaded(), brightness, n=7)


def test_scale_from_a_dataset_checks_its_classes(cat64):
    from memorygan.biggan.edits import data_scale
    with pytest.raises(ConfigError, match="the dataset has 10 classes, the generator 4"):
        data_scale(cat64, brightness, 4)
    assert 0 < data_scale(cat64, brightness, 10) < data_scale(cat64, brightness, 10, kind="all")


def test_class_kept_counts_only_the_edits_of_sources_in_their_class():
    """The classifier calls an image of class c when its brightness lies in [level_c, level_c + 0.2): the sources
    with z[0] < 0 (about half) fall below their level and are called another class. A direction that raises
    brightness by 0.025 at alpha 0.5 keeps every source that was in its class (class_kept 1), and brings some of the
    others into it, which only class_kept_all counts."""
    Gs = _Shaded()

    def classifier(image):
        b = brightness(image)
        bins = torch.floor((b - 0.2) / 0.2 + 1e-6).long() % 4
        return torch.nn.functional.one_hot(bins, 4).float()

    d = ZDirection(torch.tensor([1.0, 0.0, 0.0]), "brightness", 0.1, "")
    ev = evaluate_direction(Gs, d, classifier, seeds=range(200), alphas=(0.5,), batch=50)
    assert ev["class_kept"] == 1.0
    assert 0.35 < ev["source_accuracy"] < 0.65
    assert ev["class_kept_all"] > ev["source_accuracy"] + 0.05
    assert ev["slope"] == pytest.approx(0.05 / 0.1, rel=1e-4) and ev["slope_raw"] == pytest.approx(0.05, rel=1e-4)
    with pytest.raises(ConfigError, match="alphas must be non-zero"):
        evaluate_direction(Gs, d, None, seeds=range(4), alphas=(0.0, 0.5))


def test_paint_by_word_moves_the_region_and_keeps_the_rest(G):
    z0 = torch.randn(1, 20, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(64, 64)
    mask[8:40, 8:40] = 1
    score = region_score("brightness", 0.95)
    r = paint_by_word(G, z0, 2, mask, score, cma_iterations=6, popsize=8, adam_steps=5, seed=0)
    assert r.score_after < r.score_before
    assert r.psnr_outside == pytest.approx(psnr_outside(r.image, r.source, mask))
    assert r.psnr_outside > 20
    assert psnr_outside(r.source, r.source, mask) > 100

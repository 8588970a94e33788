"""Assessors (editing/assessors.py): hand-built images, known gradients, spec resolution and errors."""
import math
import sys
import types

import pytest
import torch
from helpers import tiny_generator

from memorygan.editing.assessors import SHARPNESS, get_assessor
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def _image(rgb, h=4, w=4):
    """A constant image of colour rgb (values in [0, 1]) in the generator's [-1, 1] range."""
    return (torch.tensor(rgb, dtype=torch.float32)[None, :, None, None].expand(1, 3, h, w) * 2 - 1).clone()


def _seg(ids):
    """{-1, 1} one-hot seg logits (as a trained generator's) of an id map (H, W)."""
    return (torch.nn.functional.one_hot(ids, 4).permute(2, 0, 1)[None].float() * 2 - 1)


@pytest.fixture
def G():
    return tiny_generator("memorygan", randomize=False, class_names=NAMES)


def test_colour_assessors_of_constant_images(G):
    red, grey = _image([1.0, 0.0, 0.0]), _image([0.5, 0.5, 0.5])
    assert get_assessor("brightness", G)(red).item() == pytest.approx(0.299, abs=1e-6)
    assert get_assessor("brightness", G)(grey).item() == pytest.approx(0.5, abs=1e-6)
    assert get_assessor("redness", G)(red).item() == pytest.approx(1.0, abs=1e-6)
    assert get_assessor("redness", G)(grey).item() == pytest.approx(0.0, abs=1e-6)
    # Hasler-Suesstrunk: a constant image has no spread; rg = 1, yb = 0.5 -> 0.3 * sqrt(1.25)
    assert get_assessor("colourfulness", G)(red).item() == pytest.approx(0.3 * math.sqrt(1.25), abs=1e-3)
    assert get_assessor("colourfulness", G)(grey).item() == pytest.approx(0.0, abs=1e-3)


def test_part_assessors_inside_the_generated_mask(G):
    ids = torch.tensor([[0, 0, 3, 3], [0, 1, 1, 3], [0, 1, 1, 3], [2, 2, 2, 2]])
    image = _image([0.5, 0.5, 0.5])
    image[0, :, ids == 3] = torch.tensor([1.0, -1.0, -1.0])[:, None]        # red hair
    image[0, :, ids == 2] = torch.tensor([-1.0, -1.0, 1.0])[:, None]        # blue eyes
    seg = _seg(ids)
    z = math.exp(SHARPNESS) + 3 * math.exp(-SHARPNESS)
    on, off = math.exp(SHARPNESS) / z, math.exp(-SHARPNESS) / z             # soft mask inside / outside a part
    assert get_assessor("area:hair", G)(image, seg).item() == pytest.approx((4 * on + 12 * off) / 16, abs=1e-7)
    assert get_assessor("area:hair+eyes", G)(image, seg).item() == pytest.approx((8 * on + 24 * off) / 16, abs=1e-7)
    assert get_assessor("lightness:hair", G)(image, seg).item() == pytest.approx(0.5, abs=1e-3)     # HLS of red
    assert get_assessor("saturation:hair", G)(image, seg).item() == pytest.approx(1.0, abs=1e-3)
    assert get_assessor("hue:hair", G)(image, seg).item() == pytest.approx(0.0, abs=1e-3)
    assert get_assessor("hue:eyes", G)(image, seg).item() == pytest.approx(-1 / 3, abs=1e-3)
    assert get_assessor("blueness:eyes", G)(image, seg).item() == pytest.approx(1.0, abs=1e-3)
    # eyes fill the bottom row: centre at y = 1 (bottom), x = 0
    assert get_assessor("centroid_y:eyes", G)(image, seg).item() == pytest.approx(1.0, abs=1e-3)
    assert get_assessor("centroid_x:eyes", G)(image, seg).item() == pytest.approx(0.0, abs=1e-3)
    assert get_assessor("centroid_x:hair", G)(image, seg).item() > 0.5


def test_brightness_has_the_known_gradient(G):
    """d mean-luma / d pixel = luma coefficient / 2 / (H W) in the [-1, 1] image range."""
    image = torch.randn(2, 3, 4, 4, requires_grad=True)
    get_assessor("brightness", G)(image).sum().backward()
    for c, coef in enumerate((0.299, 0.587, 0.114)):
        assert torch.allclose(image.grad[:, c], torch.full((2, 4, 4), coef / 2 / 16))
    seg = torch.randn(2, 4, 4, 4, requires_grad=True)
    get_assessor("area:skin", G)(torch.zeros(2, 3, 4, 4), seg).sum().backward()
    assert seg.grad.abs().sum() > 0                                         # part assessors reach the seg too


def test_user_assessor_and_errors(G, monkeypatch):
    mod = types.ModuleType("my_scores")
    mod.mean_red = lambda image, seg, parts: image[:, 0].mean((1, 2))
    mod.bad_shape = lambda image, seg, parts: image.mean()
    monkeypatch.setitem(sys.modules, "my_scores", mod)
    assert get_assessor("my_scores:mean_red", G)(_image([1.0, 0.0, 0.0])).item() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"returned shape \(\), expected \(1,\)"):
        get_assessor("my_scores:bad_shape", G)(_image([1.0, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="has no callable 'nothing'"):
        get_assessor("my_scores:nothing", G)
    with pytest.raises(ConfigError, match="unknown assessor 'sharpness'"):
        get_assessor("sharpness", G)
    with pytest.raises(ConfigError, match="cannot be imported"):
        get_assessor("no_such_module_xyz:f", G)
    with pytest.raises(ConfigError, match="needs parts"):
        get_assessor("lightness", G)
    with pytest.raises(ConfigError, match="unknown part 'nose'"):
        get_assessor("lightness:nose", G)
    with pytest.raises(ConfigError, match="needs the segmentation probe"):
        get_assessor("probe:hair", G)

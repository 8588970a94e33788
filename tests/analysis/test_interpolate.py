import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import interpolate_codes, interpolation, interpolation_figure, mix_parts
from memorygan.analysis.parts import samples
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def test_interpolate_codes():
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    a, b = torch.randn(1, 4, 5, 16), torch.randn(1, 4, 5, 16)
    whole = interpolate_codes(G, a, b, 5)
    assert whole.shape == (5, 4, 5, 16)
    assert torch.equal(whole[0], a[0]) and torch.equal(whole[-1], b[0])
    assert torch.allclose(whole[2], (a[0] + b[0]) / 2, atol=1e-6)
    for part in ("skin", "eyes", "background"):
        for mode in ("both", "shape", "texture"):
            e = interpolate_codes(G, a, b, 4, [part], mode)
            assert torch.equal(e[0], a[0])
            assert torch.equal(e[-1], mix_parts(G, a, b, [part], mode)[0])  # the end point is the mix
    with pytest.raises(ConfigError, match="steps must be >= 2"):
        interpolate_codes(G, a, b, 1)


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_interpolation_end_points_are_the_samples(arch):
    G = tiny_generator(arch, class_names=NAMES).eval()
    res = interpolation(G, 3, 5, steps=4, parts=["hair", "eyes"])
    assert res.labels == ["whole", "hair", "eyes"]
    ends = samples(G, [3, 5])
    whole = res.renders[0]["image"]
    assert whole.shape == (4, 3, 32, 32)
    assert torch.allclose(whole[0], ends.image[0], atol=1e-5) and torch.allclose(whole[-1], ends.image[1], atol=1e-5)
    with torch.no_grad():
        mixed = G(expanded=mix_parts(G, ends.expanded[:1], ends.expanded[1:], ["hair"]), noise_mode="const").image
    hair = res.renders[1]["image"]
    assert torch.allclose(hair[0], ends.image[0], atol=1e-5) and torch.allclose(hair[-1], mixed[0], atol=1e-5)
    assert len(res.stats()[0]["step_change"]) == 3


def test_interpolation_figure_size_and_errors():
    G = tiny_generator("ssg").eval()
    fig = interpolation_figure(G, 0, 1, steps=3, parts=[2])
    assert fig.shape == (4 * 34 + 2, 3 * 34 + 2, 3) and fig.dtype == np.uint8
    assert len(interpolation(G, 0, 1, steps=3).labels) == 5    # whole + every part
    assert interpolation(G, 0, 1, steps=3, parts=[]).labels == ["whole"]
    with pytest.raises(ConfigError, match="nothing to interpolate"):
        interpolation(G, 0, 1, parts=[], whole=False)

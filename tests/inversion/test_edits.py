"""`inversion.edits.compare_edits`: a direction's slope and pixel change on true vs recovered codes vs a tuned copy."""
import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.editing.assessors import Assessor, get_assessor
from memorygan.editing.directions import Direction, sample_source
from memorygan.models.codes import Codes
from memorygan.errors import ConfigError
from memorygan.inversion.edits import EditView, compare_edits
from memorygan.models.codes import ROLE_NAMES


class LinearG:
    """A generator stand-in whose image is channel c = gain * expanded[:, 0, 0, c] everywhere (4 x 4 pixels), so an
    edit's effect can be computed by hand. Every layer of every part has the shape role."""
    arch = "memorygan"
    device = torch.device("cpu")

    def __init__(self, gain: float):
        self.gain = gain
        self.layer_roles = torch.full((2, 3), ROLE_NAMES.index("shape"))            # (K=2, L=3)

    def __call__(self, expanded=None, noise=None, noise_mode="const", return_fused=False):
        img = self.gain * expanded[:, 0, 0, :3, None, None].expand(-1, 3, 4, 4)      # (B, 3, 4, 4)
        return SimpleNamespace(image=img, seg=torch.zeros(img.shape[0], 2, 4, 4))


def _mean_assessor():
    return Assessor("mean", lambda image, seg, parts: image.mean((1, 2, 3)), [])


def test_hand_computed_slopes_pixel_and_edit_differences():
    # theta moves the first three channels of part 0 by (0.3, 0.6, 0.9) per unit alpha: the mean rises 0.6 * gain
    theta = torch.tensor([0.3, 0.6, 0.9, 5.0])[None, None]                           # (P=1, R=1, D=4)
    d = Direction(theta, "parts", [0], ["shape"], "mean", scale=0.5, part_names=["a", "b"])
    e = torch.zeros(2, 2, 3, 4)
    e[:, 0, 0, :3] = torch.tensor([[0.1, 0.2, -0.3], [0.0, -0.2, 0.4]])
    views = [EditView("true", LinearG(1.0), Codes(e), d), EditView("tuned", LinearG(0.5), Codes(e), d)]
    r = compare_edits(views, _mean_assessor(), alphas=[-0.5, 0.5], names=["a", "b"])
    assert r["alphas"] == [-0.5, 0.0, 0.5] and r["reference"] == "true" and r["names"] == ["a", "b"]
    assert r["views"]["true"]["slope"] == pytest.approx([1.2, 1.2])                  # 0.6 / 0.5
    assert r["views"]["tuned"]["slope"] == pytest.approx([0.6, 0.6])                 # half the gain, half the slope
    assert r["views"]["tuned"]["slope_mean"] == pytest.approx(0.6)
    # |0.5 x - x| / 2 averaged over channels: x = e + alpha * theta
    for a in (-0.5, 0.0, 0.5):
        x = e[:, 0, 0, :3] + a * theta[0, 0, :3]
        want = (0.25 * x.abs()).mean(1).tolist()
        assert r["views"]["tuned"]["pixel_diff"][f"{a:g}"] == pytest.approx(want)
        assert r["views"]["tuned"]["pixel_diff_mean"][f"{a:g}"] == pytest.approx(float(np.mean(want)))
    # the tuned view's change is half the true change: |0.5 c - c| / |c| = 0.5, at both alphas
    assert r["views"]["tuned"]["edit_diff"]["0.5"] == pytest.approx([0.5, 0.5])
    assert r["views"]["tuned"]["edit_diff_mean"]["-0.5"] == pytest.approx(0.5)
    assert "0" not in r["views"]["tuned"]["edit_diff"]
    assert "pixel_diff" not in r["views"]["true"]                                     # the reference has no diffs
    # an uneven alpha grid: the change is still measured from alpha 0, so a linear response keeps its slope
    r = compare_edits(views, _mean_assessor(), alphas=[-0.5, 0.25])
    assert r["alphas"] == [-0.5, 0.0, 0.25]
    assert r["views"]["true"]["slope"] == pytest.approx([1.2, 1.2])


def test_identical_views_agree_exactly_and_noisy_codes_do_not(arch):
    G = tiny_generator(arch).eval()
    names = G.part_names
    src, _ = sample_source(G, 3, seed=5)
    theta = 0.5 * torch.randn(1, 2, G.config.latent_dim, generator=torch.Generator().manual_seed(0))
    d = Direction(theta, "parts", [1], ["shape", "texture"], f"lightness:{names[1]}", scale=0.1,
                  part_names=names)
    A = get_assessor(f"lightness:{names[1]}", G)
    noisy = Codes(src.expanded + 0.3 * torch.randn(src.expanded.shape, generator=torch.Generator().manual_seed(1)))
    r = compare_edits([EditView("true", G, Codes(src.expanded), d), EditView("same", G, Codes(src.expanded), d),
                       EditView("recovered", G, noisy, d)], A)
    same, rec = r["views"]["same"], r["views"]["recovered"]
    assert same["slope"] == r["views"]["true"]["slope"]
    assert all(v == 0 for per in same["pixel_diff"].values() for v in per)
    assert all(math.isinf(v) for per in same["psnr"].values() for v in per)
    assert all(v == 0 for per in same["edit_diff"].values() for v in per)
    assert len(rec["slope"]) == 3 and rec["slope"] != r["views"]["true"]["slope"]
    assert all(v > 0 for v in rec["pixel_diff"]["0"]) and all(v > 0 for v in rec["edit_diff"]["0.5"])
    # PSNR and pixel difference describe the same images: lower PSNR where the difference is larger
    order_d = np.argsort(rec["pixel_diff"]["0.5"])
    order_p = np.argsort(rec["psnr"]["0.5"])
    assert order_d.tolist() == order_p[::-1].tolist()


def test_a_tuned_copy_with_the_same_weights_keeps_the_slope(arch):
    G = tiny_generator(arch).eval()
    src, _ = sample_source(G, 2, seed=1)
    theta = 0.5 * torch.randn(1, 2, G.config.latent_dim, generator=torch.Generator().manual_seed(2))
    d = Direction(theta, "parts", [2], ["shape", "texture"], "brightness", scale=0.2, part_names=G.part_names)
    twin = copy.deepcopy(G)
    bent = copy.deepcopy(G)
    with torch.no_grad():
        for p in bent.parameters():
            p.mul_(1.3)
    A = get_assessor("brightness", G)
    r = compare_edits([EditView("source", G, Codes(src.expanded), d), EditView("twin", twin, Codes(src.expanded), d),
                       EditView("bent", bent, Codes(src.expanded), d)], A, reference="source")
    assert r["views"]["twin"]["slope"] == pytest.approx(r["views"]["source"]["slope"], abs=1e-9)
    assert r["views"]["bent"]["slope"] != pytest.approx(r["views"]["source"]["slope"], abs=1e-6)


def test_bad_views_are_refused():
    d = Direction(torch.ones(1, 1, 4), "parts", [0], ["shape"], "mean", scale=1.0, part_names=["a", "b"])
    e = torch.zeros(2, 2, 3, 4)
    v = EditView("a", LinearG(1.0), Codes(e), d)
    with pytest.raises(ConfigError, match="at least one view"):
        compare_edits([], _mean_assessor())
    with pytest.raises(ConfigError, match="labels must differ"):
        compare_edits([v, v], _mean_assessor())
    with pytest.raises(ConfigError, match="reference 'x' is not one of"):
        compare_edits([v], _mean_assessor(), reference="x")
    with pytest.raises(ConfigError, match="same images"):
        compare_edits([v, EditView("b", LinearG(1.0), Codes(e[:1]), d)], _mean_assessor())
    with pytest.raises(ConfigError, match="two non-zero"):
        compare_edits([v], _mean_assessor(), alphas=[0.0, 1.0])

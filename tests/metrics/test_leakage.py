"""Leakage: hand-computed batches, 0 for a generator whose parts do not interact, the exact value for one whose
part leaks on purpose, and runs on the tiny generators of both architectures."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from helpers import GeneratorParts, tiny_generator
from memorygan.errors import ConfigError
from memorygan.metrics.leakage import LeakageCounts, leakage, leakage_ratio, part_layers, part_region


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


# ---------------------------------------------------------------------------------------------------- pure function

def test_leakage_ratio_hand_computed():
    a = torch.zeros(1, 3, 2, 2)
    b = a.clone()
    b[0, :, 0, 0] = torch.tensor([0.6, 0.3, 0.0])       # inside: channel mean |change| 0.3
    b[0, :, 1, 1] = torch.tensor([0.0, 0.0, -0.3])      # outside: 0.1; the other two outside pixels: 0
    region = torch.tensor([[[True, False], [False, False]]])
    ratio, inside, outside = leakage_ratio(a, b, region)
    assert inside == pytest.approx(0.3)
    assert outside == pytest.approx(0.1 / 3)            # (0 + 0 + 0.1) / 3 pixels
    assert ratio == pytest.approx((0.1 / 3) / 0.3)


def test_leakage_counts_pool_over_batches():
    # batch 1: 1 inside pixel changed by 0.3, 3 outside pixels with total change 0.1 (as above)
    # batch 2: 2 inside pixels changed by 1 and 0, 2 outside pixels changed by 0.2 each
    a = torch.zeros(1, 3, 2, 2)
    b1 = a.clone()
    b1[0, :, 0, 0] = torch.tensor([0.6, 0.3, 0.0])
    b1[0, :, 1, 1] = torch.tensor([0.0, 0.0, -0.3])
    b2 = torch.tensor([[1.0, 0.0], [0.2, 0.2]]).expand(1, 3, 2, 2)
    c = LeakageCounts()
    c.update(a, b1, torch.tensor([[[True, False], [False, False]]]))
    c.update(a, b2, torch.tensor([[[True, True], [False, False]]]))
    assert (c.inside_count, c.outside_count) == (3, 5)
    assert c.inside == pytest.approx((0.3 + 1.0) / 3)       # pooled pixels, not a mean of batch means
    assert c.outside == pytest.approx((0.1 + 0.4) / 5)
    assert c.ratio == pytest.approx((0.5 / 5) / (1.3 / 3))
    assert c.area == pytest.approx(3 / 8)
    assert c.reason is None


def test_leakage_counts_undefined_cases():
    a = torch.zeros(2, 3, 2, 2)
    b = torch.ones(2, 3, 2, 2)
    empty = LeakageCounts().update(a, b, torch.zeros(2, 2, 2, dtype=torch.bool))
    assert math.isnan(empty.ratio) and "empty" in empty.reason and empty.area == 0
    full = LeakageCounts().update(a, b, torch.ones(2, 2, 2, dtype=torch.bool))
    assert math.isnan(full.ratio) and "every pixel" in full.reason
    still = LeakageCounts().update(a, a, torch.eye(2, dtype=torch.bool).expand(2, 2, 2))
    assert math.isnan(still.ratio) and "changes no pixel" in still.reason and still.outside == 0
    with pytest.raises(ValueError, match="bool"):
        leakage_ratio(a, b, torch.ones(2, 2, 2))


def test_part_region_is_the_union():
    seg_a = torch.zeros(1, 3, 2, 2)
    seg_a[0, 1, 0, 0] = 1                                # part 1 at top-left before
    seg_b = torch.zeros(1, 3, 2, 2)
    seg_b[0, 1, 1, 1] = 1                                # and at bottom-right after resampling
    assert part_region(seg_a, seg_b, 1).tolist() == [[[True, False], [False, True]]]


# ---------------------------------------------------------------------------------------------------- generators

class Painter(GeneratorParts, nn.Module):
    """A generator whose parts do not interact: part k owns a fixed band of columns and paints it with a colour
    computed from its own expanded codes (all its layers) only. With `leak=s`, part 1's colour is also added,
    scaled by s, to every pixel of the image."""

    def __init__(self, k=4, size=8, leak=0.0):
        super().__init__()
        self.config = SimpleNamespace(num_classes=k, class_names=None, base_layers=1, depth_layers=2,
                                      local_layers=3, resolution=size)
        self.leak = leak
        self.register_buffer("owner", torch.arange(size).repeat(size, 1) * k // size)   # (H, W) column bands
        self.register_buffer("w", torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))

    def sample_z(self, n, seed=None, generator=None):
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.config.num_classes, 3, 2, generator=generator)

    def colour(self, e):
        """(B, K, L, D) -> (B, K, 3): part k's colour from its codes alone."""
        return torch.tanh(e.sum(-1) @ self.w)

    def forward(self, z=None, *, expanded=None, composition_mask=None, truncation=1.0, noise_mode="const"):
        e = z * truncation if expanded is None else expanded
        b, k = e.shape[:2]
        present = torch.ones(b, k) if composition_mask is None else composition_mask
        colour = self.colour(e)
        region = nn.functional.one_hot(self.owner, k).permute(2, 0, 1).float()         # (K, H, W)
        image = sum(present[:, p, None, None, None] * colour[:, p, :, None, None] * region[p] for p in range(k))
        image = image + self.leak * colour[:, 1, :, None, None]
        seg = (2 * region - 1).expand(b, -1, -1, -1)
        return SimpleNamespace(image=image, seg=seg, expanded=e)


@pytest.mark.parametrize("layers", ["own", "all"])
def test_leakage_is_zero_without_interaction(layers):
    G = Painter()
    G.train()
    r = leakage(G, num_samples=6, batch_size=4, layers=layers, method="reference")   # no synthesis stages
    assert G.training
    assert set(r) == {"leakage", "leakage_mean", "layers", "num_samples", "seed", "truncation", "seconds"}
    assert list(r["leakage"]) == ["part0", "part1", "part2", "part3"] and r["layers"] == layers
    for v in r["leakage"].values():
        assert v["ratio"] == 0.0 and v["outside"] == 0.0 and v["inside"] > 0
        assert v["area"] == pytest.approx(0.25) and v["reason"] is None
    assert r["leakage_mean"] == 0.0


def test_leakage_of_a_part_that_tints_the_image():
    # part 1's colour c (3 channels) is painted in its band and s * c over the whole image. Resampling part 1
    # changes its band by (1 + s) |dc| and every other pixel by s |dc| (per channel), so with the bands fixed
    # the pooled ratio is s / (1 + s) whatever the codes: 1/3 for s = 0.5. The other parts do not leak.
    s, n, seed = 0.5, 5, 3
    G = Painter(leak=s)
    r = leakage(G, num_samples=n, seed=seed, batch_size=8, method="reference")
    assert r["leakage"]["part1"]["ratio"] == pytest.approx(1 / 3, rel=1e-6)  # float32 images
    for name in ["part0", "part2", "part3"]:
        assert r["leakage"][name]["ratio"] == 0.0
    assert r["leakage_mean"] == pytest.approx(1 / 12, rel=1e-6)
    # inside = (1 + s) * mean |dc|: the donor's own codes of part 1 (layers 1, 2; the base layer 0 is kept)
    z = G.sample_z(2 * n, generator=torch.Generator().manual_seed(seed))
    e = z[:n].clone()
    e[:, 1, 1:] = z[n:, 1, 1:]
    dc = (G.colour(e)[:, 1] - G.colour(z[:n])[:, 1]).abs().mean()
    assert r["leakage"]["part1"]["inside"] == pytest.approx((1 + s) * dc.item(), rel=1e-6)
    assert r["leakage"]["part1"]["outside"] == pytest.approx(s * dc.item(), rel=1e-6)


def test_part_layers():
    G = Painter()
    assert part_layers(G, 0, "own") == [0, 1, 2]        # background: all its layers are its own
    assert part_layers(G, 2, "own") == [1, 2]           # foreground: shape + texture, not the base copy
    assert part_layers(G, 2, "all") == [0, 1, 2]


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_leakage_on_tiny_generator(arch):
    G = tiny_generator(arch, seed=2).eval()
    r = leakage(G, num_samples=3, seed=1, batch_size=3)
    assert list(r["leakage"]) == ["part0", "part1", "part2", "part3"]
    defined = 0
    for v in r["leakage"].values():
        assert set(v) == {"ratio", "inside", "outside", "area", "reason"}
        assert 0 <= v["area"] <= 1
        if v["reason"] is None:
            defined += 1
            assert math.isfinite(v["ratio"]) and v["ratio"] >= 0 and v["inside"] > 0 and v["outside"] >= 0
    assert defined >= 2 and math.isfinite(r["leakage_mean"])
    # deterministic for a seed, and a part's value does not depend on which other parts are measured
    sub = leakage(G, num_samples=3, seed=1, batch_size=3, parts=[2])
    assert sub["leakage"] == {"part2": r["leakage"]["part2"]}


def test_leakage_errors():
    G = Painter()
    with pytest.raises(ConfigError, match="layers"):
        leakage(G, num_samples=2, layers="texture")
    with pytest.raises(ConfigError, match="out of range"):
        leakage(G, num_samples=2, parts=[4])
    with pytest.raises(ConfigError, match="listed twice"):
        leakage(G, num_samples=2, parts=[1, 1])
    with pytest.raises(ConfigError, match="num_samples"):
        leakage(G, num_samples=0)
    with pytest.raises(ConfigError, match="no parts given"):
        leakage(G, num_samples=2, parts=[])


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_batched_leakage_equals_the_reference(arch):
    """The batched path (two local-generator passes per batch, one fuse + render per part) gives exactly the
    numbers of one full generator pass per resampled part; a part's value does not depend on which others run."""
    G = tiny_generator(arch, seed=6)
    for kw in ({"layers": "own"}, {"layers": "all", "parts": [2, 0], "truncation": 0.6}):
        fast = leakage(G, num_samples=5, seed=1, batch_size=3, **kw)["leakage"]
        ref = leakage(G, num_samples=5, seed=1, batch_size=3, method="reference", **kw)["leakage"]
        assert fast.keys() == ref.keys()
        for part in fast:
            for key in ("ratio", "inside", "outside", "area"):
                a, b = fast[part][key], ref[part][key]
                assert (math.isnan(a) and math.isnan(b)) or a == b, (part, key, a, b)
    one = leakage(G, num_samples=5, seed=1, batch_size=3, parts=[2])["leakage"]["part2"]
    assert one == leakage(G, num_samples=5, seed=1, batch_size=3)["leakage"]["part2"]
    with pytest.raises(ConfigError, match="method must be one of batched, reference"):
        leakage(G, num_samples=2, method="fast")


def test_expanded_from_z_equals_the_forward_codes(arch):
    G = tiny_generator(arch, seed=2)
    z = G.sample_z(3, seed=4)
    for psi in (1.0, 0.5):
        assert torch.equal(G.expanded_from_z(z, psi), G(z, truncation=psi).expanded)

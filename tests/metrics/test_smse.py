"""SMSE (MemoryGAN Eq. 15): hand-computed sequences, a generator whose parts do not interact, and the batched
metric against the per-sample sequential composition of analysis.compose."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import GeneratorParts, tiny_generator
from memorygan.analysis.compose import sequential_composition
from memorygan.errors import ConfigError
from memorygan.metrics.smse import sequential_mse, smse, smse_values, summarize


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


# ---------------------------------------------------------------------------------------------------- pure function

def hand_sequence():
    """3 steps of one 2x2 RGB sample (S=3, B=1); parts added in the order 0, 1, 2.

    step 0: image 0 everywhere; mask all part 0.
    step 1: top-left changes by (0.3, 0.3, 0.3), top-right by (0, 0, 0.6), bottom row by 1 (all channels);
            mask [[0, 0], [1, 1]].
    step 2: top-left changes by 0.1 (all channels), bottom-left by (0.2, 0, 0), top-right by 0.5, bottom-right
            by 0; mask [[0, 2], [1, 2]].
    """
    i0 = torch.zeros(3, 2, 2)
    i1 = i0.clone()
    i1[:, 0, 0] += torch.tensor([0.3, 0.3, 0.3])
    i1[:, 0, 1] += torch.tensor([0.0, 0.0, 0.6])
    i1[:, 1, :] += 1.0
    i2 = i1.clone()
    i2[:, 0, 0] += 0.1
    i2[:, 1, 0] += torch.tensor([0.2, 0.0, 0.0])
    i2[:, 0, 1] += 0.5
    images = torch.stack([i0, i1, i2])[:, None]                                   # (3, 1, 3, 2, 2)
    masks = torch.tensor([[[0, 0], [0, 0]], [[0, 0], [1, 1]], [[0, 2], [1, 2]]])[:, None]  # (3, 1, 2, 2)
    return images, masks


def test_sequential_mse_hand_computed():
    images, masks = hand_sequence()
    v = sequential_mse(images, masks)
    assert v.shape == (2, 1) and v.dtype == torch.float64
    # step 1: previous parts {0} cover the top row (step-1 mask); channel-mean squared change:
    #   top-left 0.3^2 = 0.09, top-right 0.6^2 / 3 = 0.12  ->  (0.09 + 0.12) / 2 = 0.105
    assert v[0, 0].item() == pytest.approx(0.105, abs=1e-7)
    # step 2: previous parts {0, 1} cover top-left (0) and bottom-left (1):
    #   top-left 0.1^2 = 0.01, bottom-left 0.2^2 / 3 = 0.04 / 3  ->  (0.01 + 0.04 / 3) / 2 = 0.0116667
    assert v[1, 0].item() == pytest.approx((0.01 + 0.04 / 3) / 2, abs=1e-7)


def test_sequential_mse_order():
    images, masks = hand_sequence()
    # the same renders read as the order 1, 0, 2: step 1's previous part is 1 -> the bottom row of the step-1
    # mask, which changed by 1 in every channel -> 1.0; step 2's previous parts {1, 0} are the same set as before
    v = sequential_mse(images, masks, order=[1, 0, 2])
    assert v[0, 0].item() == pytest.approx(1.0, abs=1e-7)
    assert v[1, 0].item() == pytest.approx((0.01 + 0.04 / 3) / 2, abs=1e-7)
    # order 2, 1, 0: step 2's previous parts {2, 1} are top-right (0.5^2 = 0.25) and bottom-right and
    # bottom-left (0 and 0.04 / 3)
    v = sequential_mse(images, masks, order=[2, 1, 0])
    assert v[1, 0].item() == pytest.approx((0.25 + 0.0 + 0.04 / 3) / 3, abs=1e-7)


def test_sequential_mse_nan_when_previous_parts_cover_nothing():
    images, masks = hand_sequence()
    # order 2, 0, 1: step 1's previous part 2 is nowhere in the step-1 mask -> NaN; the other sample is defined
    images = torch.cat([images, images], 1)
    masks = torch.cat([masks, torch.zeros_like(masks) + 2], 1)
    v = sequential_mse(images, masks, order=[2, 0, 1])
    assert math.isnan(v[0, 0].item())
    assert v[0, 1].item() == pytest.approx((0.09 + 0.12 + 1 + 1) / 4, abs=1e-7)  # sample 1: all pixels are part 2
    s = summarize(v[0])
    assert s["count"] == 1 and s["excluded"] == 1 and s["mean"] == pytest.approx(v[0, 1].item())


def test_sequential_mse_bad_inputs():
    images, masks = hand_sequence()
    with pytest.raises(ValueError, match="order"):
        sequential_mse(images, masks, order=[0, 0, 1])
    with pytest.raises(ValueError, match="order"):
        sequential_mse(images, masks, order=[0, 1])
    with pytest.raises(ValueError, match="masks"):
        sequential_mse(images, masks[:, :, :1])
    with pytest.raises(ValueError, match="integer"):
        sequential_mse(images, masks.float())


def test_summarize_quartiles():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0, math.nan])
    assert (s["q1"], s["median"], s["q3"]) == (2.0, 3.0, 4.0)
    assert s["mean"] == 3.0 and s["std"] == pytest.approx(np.std([1, 2, 3, 4, 5]))
    assert s["count"] == 5 and s["excluded"] == 1


# ---------------------------------------------------------------------------------------------------- generators

class Painter(GeneratorParts, nn.Module):
    """K parts, each owning a fixed band of columns (part `empty` owns none) and painting it with a colour of its
    own expanded codes; absent parts (composition mask 0) paint nothing. Parts do not interact."""

    def __init__(self, k=4, size=8, empty=None):
        super().__init__()
        self.config = SimpleNamespace(num_classes=k, class_names=None, base_layers=1, depth_layers=2,
                                      local_layers=3, resolution=size)
        owner = torch.arange(size).repeat(size, 1) * k // size                    # (H, W) column bands
        if empty is not None:
            owner[owner == empty] = 0
        self.register_buffer("owner", owner)
        self.register_buffer("w", torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))

    def sample_z(self, n, seed=None, generator=None):
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.config.num_classes, 3, 2, generator=generator)

    def forward(self, z=None, *, expanded=None, composition_mask=None, truncation=1.0, noise_mode="const"):
        e = z * truncation if expanded is None else expanded
        b, k = e.shape[:2]
        present = torch.ones(b, k) if composition_mask is None else composition_mask
        colour = torch.tanh(e.sum(-1) @ self.w)                                   # (B, K, 3)
        region = nn.functional.one_hot(self.owner, k).permute(2, 0, 1).float()    # (K, H, W)
        image = sum(present[:, p, None, None, None] * colour[:, p, :, None, None] * region[p] for p in range(k))
        seg = (2 * region - 1).expand(b, -1, -1, -1)
        return SimpleNamespace(image=image, seg=seg, expanded=e)


def test_smse_is_zero_without_interaction():
    r = smse(Painter(), num_samples=5, batch_size=2, method="reference")     # stand-ins have no synthesis stages
    assert list(r["smse"]) == ["part1", "part2", "part3"]
    for s in r["smse"].values():
        assert s["mean"] == 0.0 and s["std"] == 0.0 and s["q3"] == 0.0 and s["count"] == 5


def test_smse_counts_excluded_samples():
    # part 3 owns no pixel: added first, nothing precedes part 0 anywhere -> all NaN, excluded from the statistics
    r = smse(Painter(empty=3), num_samples=3, order=[3, 0, 1, 2], method="reference")
    assert r["order"] == ["part3", "part0", "part1", "part2"]
    assert r["smse"]["part0"]["count"] == 0 and r["smse"]["part0"]["excluded"] == 3
    assert math.isnan(r["smse"]["part0"]["mean"])
    assert r["smse"]["part1"]["count"] == 3 and r["smse_mean"] == 0.0


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_smse_on_tiny_generator(arch):
    G = tiny_generator(arch, seed=3).eval()
    G.config.class_names = ["bg", "a", "b", "c"]
    G.train()
    r = smse(G, num_samples=3, seed=7, batch_size=2)
    assert G.training  # mode restored
    assert set(r) == {"smse", "smse_mean", "order", "num_samples", "seed", "truncation", "seconds"}
    assert r["order"] == ["bg", "a", "b", "c"] and list(r["smse"]) == ["a", "b", "c"]
    for s in r["smse"].values():
        assert set(s) == {"mean", "std", "q1", "median", "q3", "count", "excluded"}
        assert s["count"] + s["excluded"] == 3
        if s["count"]:
            assert 0 <= s["q1"] <= s["median"] <= s["q3"] and s["mean"] >= 0 and s["std"] >= 0
    assert math.isfinite(r["smse_mean"]) and r["smse_mean"] > 0
    again = smse(G, num_samples=3, seed=7, batch_size=2)
    assert again["smse"] == r["smse"]
    other = smse(G, num_samples=3, seed=8, batch_size=2)
    assert other["smse"] != r["smse"]


def test_smse_matches_per_sample_sequential_composition():
    G = tiny_generator("memorygan", seed=1).eval()
    order = [0, 2, 1, 3]
    seed = 5
    batched = smse_values(G, num_samples=2, seed=seed, order=order, batch_size=2)
    assert batched.shape == (3, 2)
    z = G.sample_z(2, generator=torch.Generator().manual_seed(seed))
    for n in range(2):
        outs = sequential_composition(G, order=order, z=z[n:n + 1])
        images = torch.stack([o.image for o in outs])                             # (S, 1, 3, H, W)
        masks = torch.stack([o.seg.argmax(1) for o in outs])                      # (S, 1, H, W)
        direct = sequential_mse(images, masks, order)[:, 0]
        torch.testing.assert_close(batched[:, n], direct, rtol=1e-4, atol=1e-7, equal_nan=True)
    r = smse(G, num_samples=2, seed=seed, order=order, batch_size=2)
    assert r["order"] == ["part0", "part2", "part1", "part3"]
    for i, name in enumerate(["part2", "part1", "part3"]):
        assert r["smse"][name]["mean"] == pytest.approx(np.nanmean(batched[i].numpy()))


def test_smse_errors():
    G = Painter()
    with pytest.raises(ConfigError, match="listed twice"):
        smse(G, num_samples=2, order=[0, 1, 1, 2])
    with pytest.raises(ConfigError, match="out of range"):
        smse(G, num_samples=2, order=[0, 4])
    with pytest.raises(ConfigError, match="unknown part"):
        smse(G, num_samples=2, order=[0, "hair"])
    with pytest.raises(ConfigError, match="at least 2"):
        smse(G, num_samples=2, order=[1])
    with pytest.raises(ConfigError, match="num_samples"):
        smse(G, num_samples=0)
    with pytest.raises(ConfigError, match="batch_size"):
        smse(G, num_samples=2, batch_size=0)


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_batched_smse_equals_the_reference(arch):
    """The batched path (codes mapped once, local generators once per batch, fuse + render per step) gives the
    same numbers as one full generator pass per step, for a part subset, truncation and a ragged last batch."""
    G = tiny_generator(arch, seed=5)
    for kw in ({}, {"order": ["part0", "part2", 1], "truncation": 0.7}):
        fast = smse_values(G, num_samples=5, seed=2, batch_size=3, **kw)
        ref = smse_values(G, num_samples=5, seed=2, batch_size=3, method="reference", **kw)
        torch.testing.assert_close(fast, ref, rtol=0, atol=0, equal_nan=True)
    with pytest.raises(ConfigError, match="method must be one of batched, reference"):
        smse(G, num_samples=2, method="fast")

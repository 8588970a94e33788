"""Discriminator augmentation (training/augment.py): image and mask in step, colour on the image only, ADA's p."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from memorygan.errors import ConfigError
from memorygan.training.augment import (ADA_COLOR_OPS, ADA_GEOM_OPS, ADA_OPS, DIFFAUG_OPS, AugmentPipe,
                                        cutout_fill, parse_ops, shift_fill, warp_bilinear)
from memorygan.training.loop import resume, train

from helpers import assert_weights_close, checkpoint_weights

K = 5
PALETTE = torch.tensor([[0.0, 0.0, 0.0], [0.9, -0.3, 0.1], [-0.5, 0.7, 0.2], [0.2, 0.4, -0.8], [-0.9, -0.9, 0.9]])


def _scene(b=4, size=16, seed=0):
    """A random id map, its one-hot mask in {-1, 1} and the image painted from it (background colour 0, the
    image's fill value): any transform applied identically to both keeps image == palette(mask)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, K, (b, size // 4, size // 4), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    onehot = F.one_hot(ids, K).permute(0, 3, 1, 2).float()
    image = torch.einsum("bkhw,kc->bchw", onehot, PALETTE)
    return image, onehot * 2 - 1


def _painted(mask):
    return torch.einsum("bkhw,kc->bchw", (mask + 1) / 2, PALETTE)


def test_warp_matches_grid_sample_with_reflection():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 9, 12)
    a = torch.randn(3) * 2
    s = 0.6 + torch.rand(3)
    theta = torch.stack([torch.stack([s * a.cos(), -a.sin(), torch.rand(3) - 0.5], 1),
                         torch.stack([a.sin(), s * a.cos(), torch.rand(3) - 0.5], 1)], 1)
    want = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), mode="bilinear",
                         padding_mode="reflection", align_corners=False)
    assert torch.allclose(warp_bilinear(x, theta), want, atol=1e-5)
    # the identity reproduces the input
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3)
    assert torch.allclose(warp_bilinear(x, eye), x, atol=1e-5)


def test_warp_has_a_second_derivative_for_r1():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    theta = torch.tensor([[0.8, -0.3, 0.1], [0.3, 0.8, -0.2]]).expand(2, 2, 3)
    w = torch.randn(2, 3, 8, 8)
    (g,) = torch.autograd.grad((warp_bilinear(x, theta) ** 2 * w).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.pow(2).sum(), x)          # R1's backward through the augmentation
    assert gg.abs().sum() > 0 and torch.isfinite(gg).all()


def test_shift_and_cutout_by_hand():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    fill = torch.tensor([-7.0])
    out = shift_fill(x, torch.tensor([1]), torch.tensor([-1]), fill)       # one right, one up
    want = torch.tensor([[-7, 4, 5, 6], [-7, 8, 9, 10], [-7, 12, 13, 14], [-7, -7, -7, -7.0]])
    assert torch.equal(out[0, 0], want)
    cut = cutout_fill(x, torch.tensor([0]), torch.tensor([1]), 2, fill, torch.tensor([True]))
    want = x.clone()
    want[0, 0, 0:2, 0:1] = -7                                                # side 2 centred at (0, 1), clipped
    assert torch.equal(cut, want)
    assert torch.equal(cutout_fill(x, torch.tensor([0]), torch.tensor([1]), 2, fill, torch.tensor([False])), x)


@pytest.mark.parametrize("ops", [DIFFAUG_OPS[1:], ADA_GEOM_OPS, ("translation", "xint", "rotate", "cutout")])
def test_geometric_ops_move_image_and_mask_together(ops):
    image, mask = _scene()
    pipe = AugmentPipe(ops, p=1.0)
    img2, mask2 = pipe(image, mask, torch.Generator().manual_seed(3))
    assert not torch.allclose(img2, image)                                  # something moved
    assert torch.allclose(img2, _painted(mask2), atol=1e-5)                 # ... and the mask moved with it
    # a wrong pairing (the mask of another sample's draw) breaks the identity: the check can fail
    _, other = pipe(image, mask, torch.Generator().manual_seed(4))
    assert not torch.allclose(img2, _painted(other), atol=1e-3)


@pytest.mark.parametrize("ops", [("color",), ADA_COLOR_OPS])
def test_colour_ops_touch_the_image_only(ops):
    image, mask = _scene()
    img2, mask2 = AugmentPipe(ops, p=1.0)(image, mask, torch.Generator().manual_seed(1))
    assert torch.equal(mask2, mask)
    assert (img2 - image).abs().amax(dim=(1, 2, 3)).min() > 1e-3           # every sample recoloured


def test_probability_zero_is_the_identity_and_one_changes_every_sample():
    image, mask = _scene(b=6)
    img0, mask0 = AugmentPipe(ADA_OPS + ("cutout",), p=0.0)(image, mask, torch.Generator().manual_seed(0))
    assert torch.allclose(img0, image, atol=1e-5) and torch.allclose(mask0, mask, atol=1e-5)
    img1, _ = AugmentPipe(("rotate",), p=1.0)(image, mask, torch.Generator().manual_seed(0))
    assert (img1 - image).abs().amax(dim=(1, 2, 3)).min() > 1e-2


def test_probability_is_per_op_and_sample():
    """p = 0.5 on one op: about half of many samples change (binomial, n = 400: 0.5 +- 0.1 is > 4 sigma)."""
    image, mask = _scene(b=400, size=8)
    img, _ = AugmentPipe(("lumaflip",), p=0.5)(image, mask, torch.Generator().manual_seed(0))
    changed = ((img - image).abs().amax(dim=(1, 2, 3)) > 1e-4).float().mean()
    # lumaflip fires with p and then flips with probability 1/2: a quarter of the samples change
    assert 0.15 < changed < 0.35


def test_same_stream_same_augmentation():
    image, mask = _scene()
    pipe = AugmentPipe(ADA_OPS + DIFFAUG_OPS, p=0.7)
    a = pipe(image, mask, torch.Generator().manual_seed(5))
    b = pipe(image, mask, torch.Generator().manual_seed(5))
    c = pipe(image, mask, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])


def test_ada_adjusts_p_towards_the_target():
    pipe = AugmentPipe(("xflip",), p=0.5, adaptive=True, target=0.6, ada_kimg=1.0, interval=4)
    pipe.accumulate(torch.tensor([[3.0], [1.0], [2.0], [-1.0]]))           # signs: r_t = (1 + 1 + 1 - 1) / 4
    pipe.adjust(batch=8)                                                    # 0.5 < 0.6: p down by 8 * 4 / 1000
    assert pipe.p.item() == pytest.approx(0.5 - 0.032) and pipe.rt.item() == pytest.approx(0.5)
    pipe.accumulate(torch.ones(4, 1))
    pipe.adjust(batch=8)                                                    # r_t = 1 > 0.6: up again
    assert pipe.p.item() == pytest.approx(0.5)
    assert pipe.sign_count.item() == 0                                      # the sums restart every interval
    big = AugmentPipe(("xflip",), p=0.99, adaptive=True, ada_kimg=0.001)
    big.accumulate(torch.ones(2, 1))
    big.adjust(batch=8)
    assert big.p.item() == 1.0                                              # clamped to [0, 1]
    st = big.state()
    again = AugmentPipe(("xflip",), adaptive=True)
    again.load_state(st)
    assert again.state() == st


def test_parse_ops_and_errors():
    assert parse_ops("", "diffaug") == DIFFAUG_OPS and parse_ops("", "none") == ()
    assert parse_ops("cutout,xflip", "ada") == ("cutout", "xflip")          # applied in ALL_OPS order
    with pytest.raises(ConfigError, match="--augment-ops: unknown op.*zoom"):
        parse_ops("xflip,zoom", "ada")
    with pytest.raises(ConfigError, match="--augment must be one of"):
        parse_ops("", "strong")


def test_options_validate_augmentation(opts_for):
    with pytest.raises(ConfigError, match="--augment-p must be in"):
        opts_for(augment="ada", augment_p=1.5).validate()
    with pytest.raises(ConfigError, match="--augment-ops needs --augment"):
        opts_for(augment="none", augment_ops="xflip").validate()
    with pytest.raises(ConfigError, match="--ada-target"):
        opts_for(augment="ada", ada_target=1.0).validate()


def test_training_logs_p_and_resumes_it_exactly(opts_for):
    """ADA's p is logged, saved in checkpoints and restored on resume (bit-exact with an uninterrupted run)."""
    kw = dict(augment="ada", augment_p=0.3, ada_kimg=0.05, ada_interval=2, checkpoint_every=2)
    full = train(opts_for(out="full", steps=6, **kw))
    half = train(opts_for(out="half", steps=4, **kw))
    res = resume(half.run_dir, steps=6)
    assert_weights_close(checkpoint_weights(full.checkpoint), checkpoint_weights(res.checkpoint), atol=0)
    st_full = torch.load(full.checkpoint / "state.pt", weights_only=True)["augment"]
    st_res = torch.load(res.checkpoint / "state.pt", weights_only=True)["augment"]
    assert st_full == st_res
    rows = [json.loads(x) for x in (full.run_dir / "stats.jsonl").read_text().splitlines()]
    ps = [r["augment_p"] for r in rows]
    assert ps[0] == pytest.approx(0.3) and len(set(round(p, 6) for p in ps)) > 1      # it moved
    step = 4 * 2 / 50                                                       # batch 4, interval 2, 0.05 kimg
    for a, b in zip(ps, ps[1:]):                                            # moves only in whole steps
        d = abs(b - a)
        assert d == pytest.approx(0, abs=1e-6) or d == pytest.approx(step, abs=1e-6) or b in (0.0, 1.0)
    assert all("ada_rt" in r for r in rows)


def test_augmentation_changes_training_and_off_is_unchanged(opts_for):
    base = train(opts_for(out="base", steps=2))
    off = train(opts_for(out="off", steps=2, augment="diffaug", augment_p=0.0))
    on = train(opts_for(out="on", steps=2, augment="diffaug"))
    w_base, w_off, w_on = (checkpoint_weights(r.checkpoint) for r in (base, off, on))
    assert_weights_close(w_base, w_off, atol=1e-5)      # p = 0: the same training up to rounding (the ops run)
    assert max((w_base["D"][k] - w_on["D"][k]).abs().max().item() for k in w_base["D"]) > 1e-4

"""Projection (inversion/projection.py) on tiny generators: exact recovery where the answer is known, the mask loss
makes the segmentation follow a mask, the generator is left untouched, code spaces, noise optimisation."""
import pytest
import torch
from helpers import tiny_generator

from memorygan.checkpoint import generator_fingerprint
from memorygan.errors import ConfigError
from memorygan.inversion.losses import psnr_uint8
from memorygan.inversion.projection import CodeSpace, InversionOptions, project
from memorygan.inversion.run import _miou
from memorygan.visualize import to_uint8

MSE_ONLY = dict(perceptual_weight=0.0, seg_weight=0.0, code_weight=0.0)


def _psnrs(a, b):
    return [psnr_uint8(to_uint8(a[i:i + 1]), to_uint8(b[i:i + 1])) for i in range(a.shape[0])]


@pytest.mark.parametrize("level", ["expanded", "latents"])
def test_samples_are_recovered_from_the_mean_codes(arch, level):
    G = tiny_generator(arch).eval()
    before, grads = generator_fingerprint(G), [q.requires_grad for q in G.parameters()]
    out = G.sample(2, seed=3)
    space = CodeSpace(G, level)
    start = G(expanded=space.expanded(G, space.codes(torch.zeros(2, *space.shape)))).image   # the mean codes
    p = project(G, out.image, InversionOptions(level=level, steps=300, **MSE_ONLY))
    got, start_psnr = _psnrs(p.image, out.image), _psnrs(start, out.image)
    assert min(got) > 28 and sum(got) / 2 > 32, got             # 8-bit PSNR of the reconstruction
    assert min(g - s for g, s in zip(got, start_psnr)) > 12      # far better than the mean codes' image
    # the returned codes render the returned image, at their level
    again = G(expanded=p.expanded).image if level == "expanded" else G(latents=p.codes).image
    assert torch.allclose(again, p.image, atol=1e-5)
    assert p.codes.shape == (2, *CodeSpace(G, level).shape) and p.noise is None
    assert generator_fingerprint(G) == before and [q.requires_grad for q in G.parameters()] == grads
    assert all(q.grad is None for q in G.parameters())


def test_the_mask_loss_makes_the_segmentation_follow_the_mask(arch):
    """A target image that says nothing about the parts (flat grey) with a sample's segmentation as its mask:
    without the mask loss the parts are wherever the grey fit leaves them; with it they follow the mask."""
    G = tiny_generator(arch).eval()
    out = G.sample(3, seed=11)
    ids = out.seg.argmax(1)
    grey = torch.zeros_like(out.image)
    opts = dict(steps=100, perceptual_weight=0.0)
    without = project(G, grey, InversionOptions(seg_weight=0.0, **opts), ids=ids)
    with_mask = project(G, grey, InversionOptions(seg_weight=1.0, **opts), ids=ids)
    m0 = [_miou(without.seg[i:i + 1], ids[i:i + 1]) for i in range(3)]
    m1 = [_miou(with_mask.seg[i:i + 1], ids[i:i + 1]) for i in range(3)]
    assert sum(m1) / 3 > sum(m0) / 3 + 0.1, (m0, m1)
    # rows without a mask (has_mask 0) are not pulled by it
    part = project(G, grey, InversionOptions(seg_weight=1.0, **opts), ids=ids, has_mask=torch.tensor([1.0, 0, 0]))
    assert torch.allclose(part.image[1:], without.image[1:], atol=1e-5)
    assert not torch.allclose(part.image[:1], without.image[:1], atol=1e-3)


def test_code_space_centre_and_spread():
    G = tiny_generator("ssg").eval()
    G.update_w_avg(n=256)
    space = CodeSpace(G, "wplus", n=500)
    assert space.level == "latents" and space.shape == (G.num_latents, 16)
    assert torch.equal(space.mean, G.w_avg.expand(G.num_latents, -1))         # SSG: the one mean w everywhere
    assert torch.allclose(space.std, space.std[:1].expand_as(space.std))
    Gm = tiny_generator("memorygan").eval()
    before = generator_fingerprint(Gm)
    sm = CodeSpace(Gm, "expanded", n=500)                                      # no w_avg yet: sample mean
    assert int(Gm.w_avg_count) == 0 and generator_fingerprint(Gm) == before  # G's buffers untouched
    lat = Gm.map_z(Gm.sample_z(500, generator=torch.Generator().manual_seed(0)))["latents"]
    assert torch.allclose(sm.latent_mean, lat.mean(0), atol=1e-6)
    assert torch.allclose(sm.mean, Gm.expand(lat.mean(0)[None])[0], atol=1e-6)
    u = torch.randn(2, *sm.shape)
    assert torch.allclose(sm.units(sm.codes(u)), u, atol=1e-4)


def test_noise_optimisation_changes_the_maps_and_keeps_them_normalised():
    G = tiny_generator("memorygan").eval()
    out = G.sample(2, seed=1)
    target = (out.image + 0.05 * torch.randn(out.image.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    p = project(G, target, InversionOptions(steps=30, optimize_noise=True, **MSE_ONLY))
    assert len(p.noise) == len(G.noise_shapes())
    for n, s in zip(p.noise, G.noise_shapes()):
        assert n.shape == (2, *s[1:])
        assert torch.allclose(n.mean((1, 2, 3)), torch.zeros(2), atol=1e-5)
    const = G.render_net.noise_0
    assert not torch.allclose(p.noise[0][0], const[0], atol=1e-3)
    assert torch.allclose(G(expanded=p.expanded, noise=p.noise).image, p.image, atol=1e-5)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="--level must be one of"):
        InversionOptions(level="w").check()
    with pytest.raises(ConfigError, match="nothing to do"):
        InversionOptions(steps=0).check()
    with pytest.raises(ConfigError, match="--seg-weight must be >= 0"):
        InversionOptions(seg_weight=-1).check()

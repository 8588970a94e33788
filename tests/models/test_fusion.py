import torch

from memorygan.models.fusion import fuse, fusion_weights, part_masks


def test_masks_sum_to_one_and_background_logit():
    torch.manual_seed(0)
    depths = torch.randn(2, 5, 4, 4)
    m = part_masks(depths)
    assert torch.allclose(m.sum(1), torch.ones(2, 4, 4), atol=1e-6)
    assert torch.allclose(m, torch.softmax(depths, 1))


def test_composition_mask_removes_parts_and_renormalises():
    depths = torch.tensor([0.0, 1.0, 2.0]).reshape(1, 3, 1, 1)
    c = torch.tensor([[1.0, 0.0, 1.0]])
    m = part_masks(depths, c)
    e0, e2 = 1.0, torch.exp(torch.tensor(2.0))
    assert torch.allclose(m[0, :, 0, 0], torch.stack([torch.tensor(e0), torch.tensor(0.0), e2]) / (e0 + e2), atol=1e-6)
    only_bg = part_masks(torch.randn(2, 3, 4, 4), torch.tensor([[1.0, 0, 0], [1, 0, 0]]))
    assert torch.allclose(only_bg[:, 0], torch.ones(2, 4, 4), atol=1e-6)
    assert torch.all(only_bg[:, 1:] == 0)


def test_transparent_class_is_added_on_top():
    # m = [0.5, 0.3, 0.2] with class 2 transparent: opaque = [0.5, 0.3] / 0.8, transparent keeps 0.2
    m = torch.tensor([0.5, 0.3, 0.2]).reshape(1, 3, 1, 1)
    w = fusion_weights(m, [2])
    assert torch.allclose(w[0, :, 0, 0], torch.tensor([0.625, 0.375, 0.2]), atol=1e-6)
    assert torch.allclose(w.sum(1), torch.tensor(1.2))
    feats = torch.stack([torch.full((1, 1, 1), v) for v in (1.0, 2.0, 10.0)])[None]  # (1, 3, C=1, 1, 1)
    depths = torch.log(m)
    fused, masks = fuse(feats, depths, transparent_classes=[2])
    assert torch.allclose(fused.flatten(), torch.tensor([0.625 * 1 + 0.375 * 2 + 0.2 * 10]), atol=1e-5)
    assert torch.allclose(masks, m, atol=1e-6)  # the returned masks are the plain softmax
    no_t, _ = fuse(feats, depths)
    assert torch.allclose(no_t.flatten(), torch.tensor([0.5 + 0.6 + 2.0]), atol=1e-5)


def test_generators_fast_fusion_equals_reference():
    """fuse_parts (no K coarse feature maps; MemoryGAN mixes before the shared to_feat) == fuse(to_features)."""
    from helpers import tiny_generator

    for arch in ("memorygan", "ssg"):
        G = tiny_generator(arch)
        out = G.sample(2, seed=0)
        hidden, depths = G.run_local(G.positions(None), out.expanded)
        c = torch.tensor([[1.0, 1, 0, 1], [1, 1, 1, 1]])
        ref, m = fuse(G.to_features(hidden), depths, c, G.config.transparent_classes)
        fast = G.fuse_parts(hidden, fusion_weights(part_masks(depths, c), G.config.transparent_classes))
        assert fast.shape == ref.shape == (2, G.config.coarse_channels, 8, 8)
        assert torch.allclose(fast, ref, atol=1e-5), arch

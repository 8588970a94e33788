"""Closed-form spatial edits (issue 29): coordinates, exact moves and turns of a part, removal, clones, the preserved
outside, and the errors."""
import math

import pytest
import torch
from helpers import tiny_generator

from memorygan.editing.directions import seed_source
from memorygan.editing.spatial import (PartTransform, SpatialEdit, apply_transform, coords_to_pixels, inverse_grid,
                                       measure_edit, part_centroids, pixels_to_coords, spatial_edit, synthesize_edit)
from memorygan.errors import ConfigError


@pytest.fixture(scope="module", params=["memorygan", "ssg"])
def G(request):
    return tiny_generator(request.param, seed=3).eval()


def _source(G, seeds=(0, 1)):
    return seed_source(G, list(seeds))


def test_pixel_coordinates_match_the_coarse_grid(G):
    # tiny: 32 px, coarse 8: coarse pixel i covers image pixels 4i..4i+3, centre 4i + 1.5, coordinate -1 + 2i/7
    i = torch.arange(8, dtype=torch.float32)
    xy = torch.stack([4 * i + 1.5, 4 * i + 1.5], -1)
    uv = pixels_to_coords(G, xy)
    assert torch.allclose(uv[:, 0], -1 + 2 * i / 7, atol=1e-6)
    assert torch.allclose(uv[:, 0], G.coords[0, 0, 0], atol=1e-6)
    assert torch.allclose(coords_to_pixels(G, uv), xy, atol=1e-5)


def test_transform_and_its_inverse_grid_agree(G):
    t = PartTransform(1, shift=(3.0, -2.0), scale=(1.3, 0.8), rotate=25.0)
    centre = torch.tensor([[12.0, 17.0]])
    pts = torch.tensor([[5.0, 9.0], [20.0, 3.0], [12.0, 17.0], [30.0, 28.0]])
    moved = apply_transform(t, pts, centre[0])
    grid = pixels_to_coords(G, moved).t().reshape(1, 2, 1, 4)               # the moved points as a "grid"
    back = coords_to_pixels(G, inverse_grid(G, grid, t, centre).reshape(2, 4).t())
    assert torch.allclose(back, pts, atol=1e-4)
    # the centre stays where it is under scale and rotation, and a quarter turn maps right of it to above it
    turn = PartTransform(1, rotate=90.0)
    assert torch.allclose(apply_transform(turn, torch.tensor([16.0, 10.0]), torch.tensor([10.0, 10.0])),
                          torch.tensor([10.0, 4.0]), atol=1e-5)


def test_no_edit_is_the_plain_image(G):
    src = _source(G)
    res = spatial_edit(G, src, SpatialEdit(transforms=[PartTransform(1)]), preserve=False)
    with torch.no_grad():
        plain = G(expanded=src.expanded)
    assert torch.allclose(res.after["image"], plain.image, atol=1e-5)
    assert torch.allclose(res.before["image"], plain.image, atol=1e-5)


@pytest.mark.parametrize("depth", ["keep-mask", "raw"])
def test_a_move_by_one_coarse_pixel_shifts_the_part_exactly(G, depth):
    src = _source(G)
    part = 1
    res = spatial_edit(G, src, SpatialEdit(transforms=[PartTransform(part, shift=(4.0, 0.0))]), depth=depth,
                       preserve=False)
    with torch.no_grad():
        hidden, raw = G.generate_parts(src.expanded)
        hid2, raw2 = G.generate_parts(src.expanded, _coords_for(G, src, part, dx_coarse=1))
    # the local generator is evaluated per pixel: its depth one coarse pixel to the right is the old one
    assert torch.allclose(raw2[:, part, :, 1:], raw[:, part, :, :-1], atol=1e-5)
    m0, m1 = res.before["masks"][:, part], res.after["masks"][:, part]
    if depth == "keep-mask":                       # the mask itself moves, whatever lies under it
        assert torch.allclose(m1[:, :, 1:], m0[:, :, :-1], atol=1e-5)
    else:
        assert not torch.allclose(m1[:, :, 1:], m0[:, :, :-1], atol=1e-3)
    assert torch.equal(res.after["masks"].sum(1).round(), torch.ones_like(m0))


def _coords_for(G, src, part, dx_coarse):
    b, k, hc = len(src), G.num_classes, G.config.coarse_size
    coords = G.coords[:, None].expand(b, k, 2, hc, hc).clone()
    coords[:, part, 0] -= dx_coarse * 2.0 / (hc - 1)
    return coords


def test_measure_edit_reads_centroids_and_areas_in_pixels(G):
    from memorygan.editing.spatial import SpatialEditResult

    k, hc = G.num_classes, G.config.coarse_size
    blob = torch.zeros(1, k, hc, hc)
    blob[0, 0] = 1
    blob[0, 0, 2:4, 2:4] = 0
    blob[0, 2, 2:4, 2:4] = 1                                     # part 2: coarse pixels 2..3 = image px 8..15
    moved = torch.roll(blob, 1, dims=-1)                         # one coarse pixel = 4 image pixels to the right
    edit = SpatialEdit(transforms=[PartTransform(2, shift=(4.0, 0.0))], remove=[1])
    rows = measure_edit(G, SpatialEditResult({"masks": blob}, {"masks": moved}, edit, 0.0))
    t = rows[0]["transforms"][0]
    assert t["centroid_before"] == [11.5, 11.5] and t["centroid_after"] == [15.5, 11.5]
    assert t["centroid_error_px"] == pytest.approx(0.0, abs=1e-5) and t["area_ratio"] == pytest.approx(1.0)
    wrong = measure_edit(G, SpatialEditResult({"masks": blob}, {"masks": blob}, edit, 0.0))[0]["transforms"][0]
    assert wrong["centroid_error_px"] == pytest.approx(4.0, abs=1e-5)
    assert rows[0]["removed"] == [{"part": G.part_names[1], "area_before": 0.0, "area_after": 0.0}]


def test_a_quarter_turn_about_the_centre_rotates_the_mask(G):
    src = _source(G)
    part = 1
    centre = ((G.config.resolution - 1) / 2,) * 2
    res = spatial_edit(G, src, SpatialEdit(transforms=[PartTransform(part, rotate=90.0, centre=centre)]),
                       depth="keep-mask", preserve=False)
    m0, m1 = res.before["masks"][:, part], res.after["masks"][:, part]
    assert torch.allclose(m1, torch.rot90(m0, 1, (-2, -1)), atol=1e-5)


def test_remove_is_the_composition_mask_and_preserve_keeps_the_outside(G):
    src = _source(G)
    part = 2
    res = spatial_edit(G, src, SpatialEdit(remove=[part]), preserve=False)
    comp = torch.ones(len(src), G.num_classes)
    comp[:, part] = 0
    with torch.no_grad():
        ref = G(expanded=src.expanded, composition_mask=comp)
    assert torch.allclose(res.after["image"], ref.image, atol=1e-5)
    assert float(res.after["masks"][:, part].abs().max()) == 0.0
    kept = spatial_edit(G, src, SpatialEdit(remove=[part]), preserve=True)
    outside = kept.region == 0
    assert bool(outside.any()) and bool((~outside).any())
    diff = (kept.after["image"] - kept.before["image"]).abs().amax(1)
    assert float(diff[outside].max()) == 0.0                   # bit for bit outside the region
    assert float(diff[~outside].max()) > 1e-3                  # and the edit happened inside it


@pytest.mark.parametrize("depth", ["keep-mask", "raw"])
def test_a_clone_of_a_removed_part_is_a_move(G, depth):
    src = _source(G)
    part, shift = 1, (5.0, -3.0)
    moved = spatial_edit(G, src, SpatialEdit(transforms=[PartTransform(part, shift=shift)]), depth=depth,
                         preserve=False)
    cloned = spatial_edit(G, src, SpatialEdit(remove=[part], clones=[PartTransform(part, shift=shift)]),
                          depth=depth, preserve=False)
    assert torch.allclose(cloned.after["masks"], moved.after["masks"], atol=1e-5)
    assert torch.allclose(cloned.after["image"], moved.after["image"], atol=1e-4)


def test_a_clone_adds_the_part_and_keeps_the_original(G):
    src = _source(G)
    part = 1
    res = spatial_edit(G, src, SpatialEdit(clones=[PartTransform(part, shift=(8.0, 0.0))]), preserve=False)
    assert float(res.after["masks"][:, part].sum()) > float(res.before["masks"][:, part].sum())
    assert torch.allclose(res.after["masks"].sum(1), torch.ones_like(res.after["masks"][:, 0]), atol=1e-5)


def test_synthesize_edit_without_edits_is_synthesize(G):
    src = _source(G)
    with torch.no_grad():
        a = synthesize_edit(G, src.expanded)
        b = G.synthesize(src.expanded)
    assert torch.equal(a["image"], b["image"])


@pytest.mark.parametrize("edit, message", [
    (SpatialEdit(transforms=[PartTransform(1, scale=0.0)]), "scale must be positive"),
    (SpatialEdit(transforms=[PartTransform(1, shift=(1, 0)), PartTransform(1, rotate=3)]), "at most one transform"),
    (SpatialEdit(remove=[0, 1, 2, 3]), "removing every part"),
    (SpatialEdit(transforms=[PartTransform(9)]), "out of range"),
])
def test_bad_edits_are_refused(G, edit, message):
    with pytest.raises(ConfigError, match=message):
        spatial_edit(G, _source(G), edit)


def test_turning_an_absent_part_without_a_centre_is_refused(G):
    src = _source(G, [0])
    with torch.no_grad():
        masks = G(expanded=src.expanded)
    absent = PartTransform(3, rotate=10.0)
    zero = torch.zeros(1, G.num_classes, G.config.coarse_size, G.config.coarse_size)
    zero[:, 0] = 1
    from memorygan.editing.spatial import transform_centre
    with pytest.raises(ConfigError, match="no centre"):
        transform_centre(G, absent, zero, 1)
    assert masks is not None
    assert math.isfinite(float(transform_centre(G, PartTransform(3, shift=(2, 0)), zero, 1).sum()))


def test_warp_images_moves_and_turns_a_map_in_pixels(G):
    from memorygan.editing.spatial import warp_images

    x = torch.randn(1, 3, 32, 32)
    centre = torch.tensor([[15.5, 15.5]])
    moved = warp_images(G, x, PartTransform(1, shift=(2.0, -1.0)), centre)
    assert torch.allclose(moved[..., :31, 2:], x[..., 1:, :30], atol=1e-5)         # right by 2, up by 1
    assert float(moved[..., :, :2].abs().max()) == 0.0                            # zeros where nothing was
    turned = warp_images(G, x, PartTransform(1, rotate=90.0), centre)
    assert torch.allclose(turned, torch.rot90(x, 1, (-2, -1)), atol=1e-5)
    half = warp_images(G, torch.randn(1, 1, 8, 8), PartTransform(1, shift=(4.0, 0.0)), centre)   # any resolution:
    assert float(half[..., :, :1].abs().max()) == 0.0                             # 4 px = one pixel at 8 x 8


def test_warp_carries_the_render_activations(G):
    from memorygan.editing.spatial import PartWarp, warp_images

    src = _source(G, [0])
    edit = SpatialEdit(transforms=[PartTransform(1, shift=(4.0, 0.0))])
    warped = spatial_edit(G, src, edit, preserve=False, warp=True)
    plain = spatial_edit(G, src, edit, preserve=False, warp=False)
    assert not torch.allclose(warped.after["image"], plain.after["image"], atol=1e-4)
    # the mixing rule on a sure mask: part 1 is the square 8..15 x 8..15, moved 4 px to the right
    seg = torch.full((1, G.num_classes, 32, 32), -50.0)
    seg[:, 0] = 50.0
    seg[:, 0, 8:16, 8:16], seg[:, 1, 8:16, 8:16] = -50.0, 50.0
    source_act, edit_act = torch.randn(1, 5, 16, 16), torch.randn(1, 5, 16, 16)
    mover = PartWarp(G, [source_act], [(edit.transforms[0], torch.zeros(1, 2))], seg)
    out = mover(0, edit_act.clone())
    moved = warp_images(G, source_act, edit.transforms[0], torch.zeros(1, 2))
    assert torch.allclose(out[..., 4:8, 6:8], moved[..., 4:8, 6:8], atol=1e-5)    # inside the new place (16 px)
    assert torch.allclose(out[..., :3, :], edit_act[..., :3, :])                   # far from it: the edit's own

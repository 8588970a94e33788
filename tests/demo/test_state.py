"""The demo's logic without Gradio (demo/state.py)."""
import numpy as np
import pytest
import torch
from helpers import tiny_generator
from PIL import Image

from memorygan.demo.state import DemoState
from memorygan.editing.assessors import get_assessor
from memorygan.editing.codes import load_codes
from memorygan.editing.directions import learn_direction
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


@pytest.fixture
def state(arch):
    G = tiny_generator(arch, class_names=NAMES).eval()
    return DemoState(G)


def _codes(state):
    return state.current.codes.expanded.clone()


def test_generate_is_the_seed_sample_and_views(state):
    view = state.generate(5, 0.7)
    ref = state.G.sample(1, seed=5, truncation=0.7)
    assert torch.equal(state.current.codes.expanded, ref.expanded)
    assert view.image.shape == (32, 32, 3) and view.mask.shape == (32, 32, 3)
    assert abs(sum(view.areas.values()) - 1) < 1e-3 and view.message == "seed 5, truncation 0.7"
    assert view.panel().shape[0] == 32 and view.panel(256).shape[0] == 256     # enlarged by an integer factor


def test_compose_draws_only_the_chosen_parts_and_keeps_the_codes(state):
    state.generate(1)
    before = _codes(state)
    view = state.compose_first(2)                                  # background and skin
    with torch.no_grad():                  # the inference path the demo takes
        ref = state.G(expanded=before, composition_mask=torch.tensor([[1.0, 1, 0, 0]]))
    from memorygan.visualize import to_uint8
    assert np.array_equal(view.image, to_uint8(ref.image)[0]) and view.message == "parts drawn: background, skin"
    assert not np.array_equal(view.image, state.view().image)
    assert torch.equal(_codes(state), before) and state.history == []   # nothing committed
    with pytest.raises(ConfigError, match="1..4"):
        state.compose_first(0)


def test_resample_and_mix_change_only_the_part_codes(state):
    state.generate(1)
    before = _codes(state)
    state.resample_part("hair", "texture", seed=9)
    after = _codes(state)
    changed = (after != before).any(-1)[0]                         # (K, L)
    roles = state.G.layer_roles
    assert changed[3].tolist() == (roles[3] == 2).tolist() and not changed[[0, 1, 2]].any()
    state.mix(["eyes"], 4)
    mixed = (_codes(state) != after).any(-1)[0]
    assert mixed[2].any() and not mixed[[0, 1, 3]].any()
    assert len(state.history) == 2


def test_sliders_never_accumulate_and_undo(state):
    G = state.G
    d = learn_direction(G, get_assessor("lightness:hair", G), "parts", ["hair"], steps=2, batch=2, scale_n=8)
    state.directions["hair"] = d
    state.generate(2)
    start = _codes(state)
    state.apply_direction("hair", 0.5)
    once = _codes(state)
    state.apply_direction("hair", 1.0)
    state.apply_direction("hair", 0.5)                             # back to 0.5: the same codes as the first time
    assert torch.allclose(_codes(state), once, atol=1e-6) and not torch.equal(once, start)
    state.apply_direction("hair", 0.0)
    assert torch.allclose(_codes(state), start, atol=1e-6)
    assert len(state.history) == 1                                 # the slider pushed its start once
    state.interpolate("skin", 7, 1.0)
    state.interpolate("skin", 7, 0.0)
    assert torch.allclose(_codes(state), start, atol=1e-6)
    assert len(state.history) == 2
    state.undo()                                                   # back to before the interpolation slider
    assert torch.allclose(_codes(state), start, atol=1e-6)
    state.undo()                                                   # back to before the direction slider
    assert torch.equal(_codes(state), start)
    with pytest.raises(ConfigError, match="nothing to undo"):
        state.undo()
    with pytest.raises(ConfigError, match="unknown direction 'x'; directions: hair"):
        state.apply_direction("x", 0.1)
    with pytest.raises(ConfigError, match=r"t must be in \[0, 1\]"):
        state.interpolate("skin", 7, 1.5)


def test_errors_before_an_image_and_unknown_parts(state):
    with pytest.raises(ConfigError, match="no image yet"):
        state.resample_part("hair")
    state.generate(0)
    with pytest.raises(ConfigError, match="unknown part 'nose'"):
        state.resample_part("nose")
    with pytest.raises(ConfigError, match="what must be one of"):
        state.resample_part("hair", "colour")


def test_downloads_round_trip(state, tmp_path):
    state.generate(3)
    state.resample_part("skin", "both", 8)
    paths = state.save(tmp_path)
    codes = load_codes(paths["codes"], state.G)
    assert torch.equal(codes.expanded, state.current.codes.expanded)
    mask = np.asarray(Image.open(paths["mask"]))
    assert mask.shape == (32, 32) and mask.max() < 4
    other = DemoState(state.G)
    view = other.load_codes(paths["codes"])
    assert np.array_equal(view.image, np.asarray(Image.open(paths["image"])))


@pytest.mark.filterwarnings("error::UserWarning")      # e.g. torch's "NumPy array is not writable" (a PIL image's view)
def test_invert_an_uploaded_image(state):
    """A sample of the generator, uploaded at another size, inverts to a close reconstruction; bad masks refused."""
    from memorygan.visualize import to_uint8

    target = to_uint8(state.G.sample(1, seed=11).image)[0]
    big = np.asarray(Image.fromarray(target).resize((48, 48), Image.NEAREST))      # resized back on upload
    view = state.invert(big, steps=60)
    assert view.message.startswith("inverted image (60 steps, PSNR")
    psnr = float(view.message.split("PSNR ")[1].split(" dB")[0])
    assert psnr > 20
    with pytest.raises(ConfigError, match="mask has class id 9 but the generator has 4 parts"):
        state.invert(target, np.full((32, 32), 9, np.uint8), steps=1)
    with pytest.raises(ConfigError, match="upload an image first"):
        state.invert(None)


def test_text_edit_moves_only_the_chosen_parts_codes(state, monkeypatch):
    monkeypatch.delenv("MEMORYGAN_CLIP", raising=False)
    state.generate(1)
    before = _codes(state)
    view = state.text_edit("red hair", ["hair"], steps=3)
    changed = (_codes(state) != before).any(-1)[0]                 # (K, L)
    assert changed[3].any() and not changed[[0, 1, 2]].any()
    assert view.message.startswith("text edit 'red hair' on hair (parts, 3 steps): score ")
    state.undo()
    assert torch.equal(_codes(state), before)
    with pytest.raises(ConfigError, match="--clip PATH"):
        state.text_edit("red hair", ["hair"], scorer="clip", steps=1)
    with pytest.raises(ConfigError, match="choose the parts"):
        state.text_edit("red hair", [], steps=1)


def test_region_edit_shows_the_blended_result(state):
    pytest.importorskip("cma")                        # the default optimizer is CMA-ES (the [edit] extra)
    from memorygan.editing.region import region_edit
    from memorygan.editing.scorers import text_score
    from memorygan.visualize import to_uint8

    state.generate(2)
    src = state._source(state.current)
    budget = dict(popsize=4, cma_iters=2, adam_steps=2, seed=0)
    view = state.region_edit("blonde hair", ["hair"], **budget)
    assert state.current.codes.blend_source is not None and "PSNR outside" in view.message
    # the view is region_edit's own result (codes inside the region, the source outside), not a plain render
    ref = region_edit(state.G, src, text_score("attributes", "blonde hair", state.G), parts=["hair"], **budget)
    assert np.array_equal(view.image, to_uint8(ref.after.image)[0])
    plain = state.G(expanded=state.current.codes.expanded, noise_mode="const")
    assert not np.array_equal(view.image, to_uint8(plain.image)[0])
    # a painted mask (RGBA, another size): its alpha is the region
    painted = np.zeros((64, 64, 4), np.uint8)
    painted[:20, :, 3] = 255
    view = state.region_edit("blonde hair", None, painted, **budget)
    assert state.current.codes.blend_source is not None and "codes of" in view.message
    # the next edit continues from the edited codes, without the blend
    state.resample_part("eyes", "texture", 3)
    assert state.current.codes.blend_source is None
    with pytest.raises(ConfigError, match="paint a region on the image or choose parts"):
        state.region_edit("blonde hair", None, np.zeros((8, 8), np.uint8))


def test_clip_from_the_environment_loaded_once(state, monkeypatch, tmp_path):
    """The demo reads $MEMORYGAN_CLIP (its error message tells users to set it) and loads CLIP once, not per edit."""
    import memorygan.editing.clip as clip_mod
    import memorygan.editing.scorers as scorers

    loads = []

    class FakeClip:
        def __init__(self, folder, device="cpu"):
            loads.append(str(folder))

    monkeypatch.setattr(clip_mod, "ClipModel", FakeClip)
    monkeypatch.setattr(scorers, "text_score", lambda kind, prompt, G, clip=None, **kw: (kind, clip))
    monkeypatch.setenv("MEMORYGAN_CLIP", str(tmp_path / "clip"))
    kind, model = state._scorer("red hair", "clip")
    assert kind == "clip" and isinstance(model, FakeClip)
    assert state._scorer("blue eyes", "clip")[1] is model
    assert loads == [str(tmp_path / "clip")]


def test_move_remove_and_clone_parts_keep_the_codes(state):
    state.generate(3)
    codes = _codes(state)
    before = state.view().image
    view = state.move_part("hair", 4, 0)
    assert view.message.startswith("hair moved by (+4, +0) px") and not np.array_equal(view.image, before)
    assert torch.equal(state.current.codes.expanded, codes) and state.current.codes.z is not None
    state.move_part("hair", 4, 0, scale=1.2)                 # replaces the hair's transform, does not add to it
    assert [(t.part, t.shift, t.scale) for t in state.current.spatial["edit"].transforms] == [(3, (4.0, 0.0), 1.2)]
    state.remove_parts(["eyes"])
    edit = state.current.spatial["edit"]
    assert edit.remove == [2] and len(edit.transforms) == 1
    state.move_part("skin", 0, 6, clone=True)
    assert len(state.current.spatial["edit"].clones) == 1
    for _ in range(4):
        state.undo()
    assert state.current.spatial is None and np.array_equal(state.view().image, before)
    with pytest.raises(ConfigError, match="scale must be > 0"):
        state.move_part("hair", 0, 0, scale=0)
    with pytest.raises(ConfigError, match="move the copy away"):
        state.move_part("hair", clone=True)
    with pytest.raises(ConfigError, match="choose at least one part"):
        state.remove_parts([])


def test_a_code_edit_after_a_spatial_edit_starts_from_the_codes(state):
    state.generate(1)
    plain = state.view().image
    state.move_part("skin", 0, 4)
    state.resample_part("hair", "texture", 7)
    assert state.current.spatial is None
    assert not np.array_equal(state.view().image, plain)


def test_drag_points_and_steps(state):
    state.generate(2)
    f = state.display_factor(256)
    assert f == 8
    pic = state.add_point(10 * f + 3, 12 * f + 3, 256)         # the middle of image pixel (10, 12)
    assert pic.shape == (256, 256, 3)
    assert state.points == [pytest.approx((10.0, 12.0), abs=0.5 / f)]
    with pytest.raises(ConfigError, match="click a handle point and then its target"):
        next(state.drag_steps(5))
    state.add_point(14 * f + 3, 12 * f + 3, 256)
    with pytest.raises(ConfigError, match="outside the image"):
        state.add_point(40 * f, 3, 256)
    codes = _codes(state)
    frames = list(state.drag_steps(6, "codes", every=2, min_height=256))
    assert len(frames) >= 2 and frames[0][0].message == "drag step 0"
    view, canvas = frames[-1]
    assert view.message.startswith("drag (codes): 1 point(s), ") and canvas.shape == (256, 256, 3)
    assert not torch.equal(state.current.codes.expanded, codes)
    assert len(state.points) == 2 and state.points[1] == pytest.approx((14.0, 12.0), abs=0.5 / f)
    state.undo()
    assert torch.equal(state.current.codes.expanded, codes)
    frames = list(state.drag_steps(4, "coords", every=2))
    assert frames[-1][0].message.startswith("drag (coords)")
    assert state.current.spatial is not None and set(state.current.spatial["grids"])
    assert state.clear_points().shape[-1] == 3 and state.points == []

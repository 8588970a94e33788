"""The BigGAN demo: its state (class picker, class interpolation, direction slider, Paint-by-Word, undo) and its
Gradio endpoints."""
import os

import numpy as np
import pytest
import torch

from memorygan.biggan.checkpoint import save_biggan
from memorygan.biggan.config import biggan_config
from memorygan.biggan.edits import ZDirection, save_direction
from memorygan.biggan.models import BigGANGenerator, truncated_z
from memorygan.checkpoint import generator_fingerprint
from memorygan.demo.biggan_state import BigGANDemoState
from memorygan.errors import ConfigError
from memorygan.visualize import to_uint8


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    cfg = biggan_config("biggan-small", num_classes=3, class_names=["beach", "forest", "night"], g_ch=8, d_ch=8,
                        dim_z=20, shared_dim=8)
    return BigGANGenerator(cfg).eval().requires_grad_(False)


@pytest.fixture
def state(G):
    theta = torch.zeros(20)
    theta[3] = 1.0
    return BigGANDemoState(G, {"up": ZDirection(theta, "brightness", 0.1, generator_fingerprint(G))})


def test_generate_is_the_class_sample(G, state):
    v = state.generate("forest", 5, 2.0)
    z = truncated_z(1, 20, None, torch.Generator().manual_seed(5))
    assert np.array_equal(v.image, to_uint8(G.generate(z, torch.tensor([1])))[0])
    assert "forest, seed 5" in v.message
    t = state.generate("forest", 5, 0.5)                  # truncated: another z
    assert not np.array_equal(t.image, v.image)
    with pytest.raises(ConfigError, match="unknown class 'desert'; this generator knows beach, forest, night"):
        state.generate("desert", 0)


def test_sliders_do_not_accumulate_and_undo(G, state):
    first = state.generate("beach", 1).image
    a = state.apply_direction("up", 1.0).image
    state.apply_direction("up", 0.5)
    again = state.apply_direction("up", 1.0).image
    assert np.array_equal(a, again) and not np.array_equal(a, first)
    assert np.array_equal(state.apply_direction("up", 0.0).image, first)
    end = state.interpolate_class("night", 1.0).image
    z = truncated_z(1, 20, None, torch.Generator().manual_seed(1))
    assert np.array_equal(end, to_uint8(G.generate(z, torch.tensor([2])))[0])
    state.undo()
    assert np.array_equal(state.view().image, first)
    with pytest.raises(ConfigError, match="unknown direction 'down'"):
        state.apply_direction("down", 1.0)


def test_paint_keeps_the_outside(state):
    src = state.generate("night", 2).image
    mask = np.zeros((256, 256), np.uint8)                 # painted on the enlarged panel
    mask[32:128, 32:128] = 255
    v = state.paint(mask, "brightness", 0.95, iterations=2)
    assert "PSNR outside" in v.message
    diff = np.abs(v.image.astype(int) - src.astype(int)).sum(-1)
    assert diff[40:56, 40:56].mean() > diff[:, 48:].mean()
    with pytest.raises(ConfigError, match="paint the region"):
        state.paint(None, "brightness", 0.9)
    state.interpolate_class("beach", 0.5)
    with pytest.raises(ConfigError, match="not an interpolated class"):
        state.paint(mask, "brightness", 0.9)


def test_endpoints(G, tmp_path):
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    from memorygan.demo.app import OFFLINE_ENV
    from memorygan.demo.biggan_app import launch_biggan
    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
    save_biggan(G, tmp_path / "g")
    save_direction(ZDirection(torch.ones(20) * 0.1, "brightness", 0.1, generator_fingerprint(G)),
                   tmp_path / "dirs" / "up")
    app, url = launch_biggan(tmp_path / "g", tmp_path / "dirs", block=False)
    try:
        assert url.startswith("http://127.0.0.1:")
        c = Client(url, verbose=False)
        names = {e for e in c.view_api(print_info=False, return_format="dict")["named_endpoints"]}
        assert {"/generate", "/interpolate_class", "/apply_direction", "/paint", "/undo"} <= names
        img, msg = c.predict("night", 3, 2.0, api_name="/generate")
        from PIL import Image
        shown = np.asarray(Image.open(img).convert("RGB"))
        z = truncated_z(1, 20, None, torch.Generator().manual_seed(3))
        want = to_uint8(G.generate(z, torch.tensor([2])))[0]
        assert np.array_equal(shown[::4, ::4], want)      # the panel enlarged 4x (nearest) to 256 px
        _, msg = c.predict("up", 1.0, api_name="/apply_direction")
        assert "alpha +1.00" in msg
    finally:
        app.close()

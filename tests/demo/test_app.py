"""The Gradio app: every named endpoint through gradio_client, the binding address, and a real browser."""
import os

import numpy as np
import pytest
import torch
from helpers import tiny_generator

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from memorygan.demo.app import OFFLINE_ENV, launch  # noqa: E402
from memorygan.demo.browser import browser_available, drive, drive_drag, drive_edits  # noqa: E402
from memorygan.editing.assessors import get_assessor  # noqa: E402
from memorygan.editing.directions import learn_direction, save_direction  # noqa: E402

NAMES = ["background", "skin", "eyes", "hair"]
ENDPOINTS = ["/generate", "/compose", "/resample_part", "/mix", "/interpolate", "/apply_direction", "/text_edit",
             "/region_edit", "/move_part", "/remove_parts", "/drag", "/clear_points", "/invert", "/undo",
             "/download"]


SERVED = {}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    G.save_pretrained(root / "g")
    d = learn_direction(G, get_assessor("lightness:hair", G), "parts", ["hair"], steps=2, batch=2, scale_n=8)
    save_direction(d, root / "dirs" / "hair-light")
    app, url = launch(root / "g", root / "dirs", block=False)
    SERVED["root"] = root
    yield url
    app.close()


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on `port`."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                out.append(local.split(":")[0])
    return out


def test_binds_only_localhost(served):
    port = int(served.rstrip("/").rsplit(":", 1)[1])
    assert served.startswith("http://127.0.0.1:")
    addrs = _listening(port)
    assert addrs and all(a == "0100007F" for a in addrs), addrs          # 127.0.0.1 only, no 0.0.0.0 / ::


def test_every_endpoint(served, tmp_path):
    from gradio_client import Client

    c = Client(served, verbose=False)
    api = c.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert set(ENDPOINTS) <= set(api)
    assert c.predict(4, 1.0, api_name="/generate")[1] == "seed 4, truncation 1"
    assert c.predict(2, api_name="/compose")[1] == "parts drawn: background, skin"
    assert c.predict("hair", "texture", 3, api_name="/resample_part")[1] == "hair: texture codes of seed 3"
    assert c.predict(["eyes"], 5, api_name="/mix")[1] == "eyes from seed 5"
    assert c.predict("skin", 6, 0.5, api_name="/interpolate")[1] == "skin 0.50 of the way to seed 6"
    assert c.predict("hair-light", 0.25, api_name="/apply_direction")[1] == "hair-light alpha +0.25"
    assert c.predict(api_name="/undo")[1].startswith("undo: back to")
    assert c.predict("red hair", ["hair"], "attributes", "parts", 5, api_name="/text_edit")[1].startswith(
        "text edit 'red hair' on hair (parts, 5 steps): score ")
    msg = c.predict("blonde hair", ["hair"], None, "adam", api_name="/region_edit")[1]
    assert msg.startswith("region edit 'blonde hair' (adam, codes of hair): score ") and "PSNR outside" in msg
    with pytest.raises(Exception, match="needs a local CLIP folder"):
        c.predict("red hair", ["hair"], "clip", "parts", 5, api_name="/text_edit")
    from gradio_client import handle_file
    from PIL import Image
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "upload.png")
    assert c.predict(handle_file(str(tmp_path / "upload.png")), None, 20, api_name="/invert")[1].startswith(
        "inverted image (20 steps, PSNR")
    files = c.predict(api_name="/download")
    assert sorted(os.path.basename(f) for f in files) == ["codes.safetensors", "image.png", "mask.png"]
    with pytest.raises(Exception, match="parts: no parts given"):          # our one-line error, shown in the UI
        c.predict([], 5, api_name="/mix")
    with pytest.raises(Exception, match="not in the list of choices"):     # Gradio checks the dropdowns itself
        c.predict("nose", 1, 0.5, api_name="/interpolate")


def test_endpoint_images_are_the_states(served):
    """What the page shows is what DemoState draws for the same actions (not only the right status line)."""
    from gradio_client import Client
    from PIL import Image

    import memorygan
    from memorygan.demo.app import DISPLAY_HEIGHT
    from memorygan.demo.state import DemoState

    G, _ = memorygan.load(SERVED["root"] / "g")
    st = DemoState(G)
    c = Client(served, verbose=False)
    calls = [(("generate", 5, 0.8), (5, 0.8, "/generate")),
             (("resample_part", "hair", "texture", 2), ("hair", "texture", 2, "/resample_part")),
             (("move_part", "skin", 3, 0, 1.0, 0.0, False), ("skin", 3, 0, 1.0, 0, False, "/move_part")),
             (("remove_parts", ["eyes"]), (["eyes"], "/remove_parts"))]
    for (method, *args), (*inputs, name) in calls:
        want = getattr(st, method)(*args).panel(DISPLAY_HEIGHT)
        got = np.asarray(Image.open(c.predict(*inputs, api_name=name)[0]).convert("RGB"))
        assert got.shape == want.shape and np.array_equal(got, want), name


def test_spatial_endpoints(served):
    from gradio_client import Client
    from PIL import Image

    c = Client(served, verbose=False)
    c.predict(4, 1.0, api_name="/generate")
    panel, msg = c.predict("hair", 4, -2, 1.0, 0, False, api_name="/move_part")
    assert msg == "hair moved by (+4, -2) px, scale 1, turned +0 deg"
    assert np.asarray(Image.open(panel)).shape[0] == 256
    assert c.predict(["eyes"], api_name="/remove_parts")[1] == "removed eyes"
    with pytest.raises(Exception, match="click a handle point and then its target"):
        c.predict(10, "codes", api_name="/drag")
    assert c.predict(api_name="/clear_points") is not None


@pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))
def test_real_browser_generate_resample_direction(served, tmp_path):
    result = drive(served, tmp_path / "demo.png", direction="hair-light")
    assert [s["action"] for s in result["steps"]] == ["generate", "resample part", "apply direction"]
    assert all(s["changed"] for s in result["steps"]), result
    assert (tmp_path / "demo.png").stat().st_size > 10_000


@pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))
def test_real_browser_drag_by_clicks(served, tmp_path):
    result = drive_drag(served, tmp_path / "drag.png")
    assert result["canvas_shown"] and result["clicks_drawn"] == [True, True]
    assert result["status"].startswith("drag (codes): 1 point(s), "), result


@pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))
def test_real_browser_text_region_and_invert_panels(served, tmp_path):
    """A text edit, a stroke painted in the ImageEditor and edited (no parts chosen: without the painting the server
    refuses with "paint a region"), and an uploaded file inverted, each changing the panel."""
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(tmp_path / "up.png")
    result = drive_edits(served, tmp_path / "up.png")
    assert [s["action"] for s in result["steps"]] == ["generate", "text edit", "region edit", "invert"]
    assert all(s["changed"] for s in result["steps"]), result
    status = {s["action"]: s["status"] for s in result["steps"]}
    assert status["text edit"].startswith("text edit 'red hair' on hair (parts, 5 steps)")
    assert status["region edit"].startswith("region edit 'blonde hair' (cma+adam, codes of ") and "PSNR" in status[
        "region edit"]
    assert status["invert"].startswith("inverted image (20 steps")


def test_painted_mask_from_an_image_editor_value():
    from memorygan.demo.app import painted_mask

    assert painted_mask(None) is None and painted_mask({"background": None, "layers": []}) is None
    layer = np.zeros((16, 16, 4), np.uint8)
    assert painted_mask({"layers": [layer]}) is None                     # an empty layer paints nothing
    layer[2:5, 3:9, 3] = 200
    second = np.zeros((16, 16, 4), np.uint8)
    second[10, 10, 3] = 255
    m = painted_mask({"layers": [layer, second]})
    assert m.shape == (16, 16) and set(zip(*np.nonzero(m))) == {(r, c) for r in range(2, 5) for c in range(3, 9)} | {(10, 10)}


def test_invert_with_an_encoder_streams_the_encoder_result_first(tmp_path):
    """`memorygan demo --encoder E`: /invert answers with the encoder's codes at once (0 steps: only that), and with
    refinement steps streams progress before the refined image."""
    from gradio_client import Client, handle_file
    from PIL import Image

    from memorygan.encoder import build_encoder, save_encoder

    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    G.save_pretrained(tmp_path / "g")
    save_encoder(build_encoder(G, stats_samples=32), tmp_path / "E")
    app, url = launch(tmp_path / "g", encoder=tmp_path / "E", block=False)
    try:
        c = Client(url, verbose=False)
        Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(tmp_path / "up.png")
        msg = c.predict(handle_file(str(tmp_path / "up.png")), None, 0, api_name="/invert")[1]
        assert msg.startswith("encoded image (encoder, 1 pass(es), PSNR")
        job = c.submit(handle_file(str(tmp_path / "up.png")), None, 20, api_name="/invert")
        final = job.result()
        assert final[1].startswith("inverted image (20 steps from the encoder's codes, PSNR")
        messages = [o[1] for o in job.outputs()]
        assert messages[0].startswith("encoded image") and "refining: 0/20 steps" in messages[0]
    finally:
        app.close()

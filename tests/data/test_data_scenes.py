import json

import numpy as np
import pytest
from PIL import Image

from memorygan.data import scenes as S
from memorygan.data.files import read_mask, write_mask
from memorygan.data.synth import synthesize
from memorygan.errors import DatasetError


def test_class_style_depends_only_on_class_id():
    S.class_style.cache_clear()
    a = S.class_style(17)
    S.class_style.cache_clear()
    assert S.class_style(17) == a
    # neighbouring ids differ in both shape family and texture
    for k in range(1, 40):
        s1, s2 = S.class_style(k), S.class_style(k + 1)
        assert s1.family != s2.family and s1.texture != s2.texture
    assert len({S.class_style(k).family for k in range(1, 11)}) == len(S.FAMILIES)
    assert S.class_style(0).family == "background"


def test_class_names():
    assert S.class_names(13)[:3] == ["bg", "c0001", "c0002"]
    names = S.class_names(1000)
    assert names[999] == "c0999" and len(set(names)) == 1000


def test_painters_order_occludes():
    # class 2 is a rounded rectangle, class 1 an ellipse (FAMILIES order); the second object is painted last
    assert S.class_style(1).family == "ellipse" and S.class_style(2).family == "rectangle"
    attrs = {"objects": [{"class": 2, "x": 0.0, "y": 0.0, "radius": 0.6, "angle": 0.0, "brightness": 1.0},
                         {"class": 1, "x": 0.0, "y": 0.0, "radius": 0.2, "angle": 0.0, "brightness": 1.0}],
             "background": {"brightness": 1.0, "light": 0.0}, "render_seed": 1}
    img, ids = S.render_scene(attrs, 64, 13)
    assert ids[32, 32] == 1            # small object in front
    assert ids[32, 32 + 14] == 2       # x = 0.45: the larger one around it
    assert ids[2, 2] == 0              # background in the corner
    attrs["objects"].reverse()         # paint the big one last: it hides the small one completely
    _, ids2 = S.render_scene(attrs, 64, 13)
    assert not (ids2 == 1).any()


def test_many_classes_use_16_bit_masks(tmp_path):
    ids = np.array([[0, 999], [256, 65535]], np.uint16)
    write_mask(tmp_path / "m.png", ids, 70000 // 2)
    with Image.open(tmp_path / "m.png") as m:
        assert m.mode.startswith("I")
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 999], [256, 65535]]


def test_scenes_dataset(scenes_ds):
    info = json.loads((scenes_ds / "dataset.json").read_text())
    assert info["classes"][0] == "bg" and len(info["classes"]) == 300 and info["transparent_classes"] == []
    recs = [json.loads(l) for l in (scenes_ds / "attributes.jsonl").read_text().splitlines()]
    assert len(recs) == 6
    for r in recs:
        ids = read_mask(scenes_ds / "masks" / f"{r['basename']}.png")
        assert 2 <= len(r["objects"]) <= 5
        present = set(np.unique(ids).tolist()) - {0}
        # every label is one of the image's objects (some may be fully hidden)
        assert present and present <= {o["class"] for o in r["objects"]}
        radii = [o["radius"] for o in r["objects"]]
        assert radii == sorted(radii, reverse=True)


def test_scenes_deterministic_and_seed_dependent(tmp_path, hashes):
    a = synthesize("scenes", tmp_path / "a", n=4, size=16, seed=1, num_classes=1000).path
    b = synthesize("scenes", tmp_path / "b", n=4, size=16, seed=1, num_classes=1000).path
    c = synthesize("scenes", tmp_path / "c", n=4, size=16, seed=2, num_classes=1000).path
    assert hashes(a) == hashes(b)
    ha, hc = hashes(a), hashes(c)
    assert all(ha[k] != hc[k] for k in ha if k.startswith("masks/"))


def test_bad_class_count_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="--classes"):
        synthesize("scenes", tmp_path / "x", n=1, size=16, num_classes=1)
    assert not (tmp_path / "x").exists()

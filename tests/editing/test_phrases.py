"""The attribute-word scorer: colour conversion, features, hand-built and re-rendered portraits, calibration against
the built-in table, phrase lookup and registration, gradients and errors."""
import copy
import json

import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.data.portraits import generate_portrait, render_portrait
from memorygan.editing.phrases import (
    PhraseBook,
    _width,
    calibrate,
    feature_values,
    load_phrasebook,
    phrase_score,
    srgb_to_lab,
)
from memorygan.editing.scorers import held_out_score, text_score
from memorygan.errors import ConfigError

K13 = ["background", "skin", "eyes", "eyebrows", "mouth", "nose", "ears", "hair", "neck", "cloth", "eyeglasses",
       "hat", "earrings"]


class Parts:
    """Just enough of a generator for resolving phrases: the 13 portrait part names."""
    part_names = K13

    def resolve_parts(self, parts, arg="parts"):
        return [K13.index(p) if isinstance(p, str) else int(p) for p in parts]


def _batch(items):
    """[(rgb uint8 (H, W, 3), ids (H, W))] -> image (B, 3, H, W) in [-1, 1], seg one-hot {-1, 1} (B, 13, H, W)."""
    image = torch.from_numpy(np.stack([i for i, _ in items])).permute(0, 3, 1, 2).float() / 127.5 - 1
    ids = torch.from_numpy(np.stack([d for _, d in items])).long()
    return image, 2 * torch.nn.functional.one_hot(ids, 13).permute(0, 3, 1, 2).float() - 1


def test_srgb_to_lab_known_values():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]]).view(4, 3, 1, 1)
    lab = srgb_to_lab(rgb)[:, :, 0, 0] * 100
    want = torch.tensor([[100.0, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [53.39, 0, 0]])
    assert torch.allclose(lab, want, atol=0.05)


def test_width_of_a_band_is_its_width():
    m = torch.zeros(1, 8, 40)
    m[:, :, 10:30] = 1                                           # 20 of 40 columns: half the image wide
    # sqrt(12 var) of 20 equally spaced pixel centres, in image widths: sqrt(20^2 - 1) / 40
    assert float(_width(m)) == pytest.approx((20 ** 2 - 1) ** 0.5 / 40, abs=1e-6)


def test_hand_built_hair_colours():
    """A flat image: hair band painted with the calibrated mean colour of one class is that class, not another."""
    book = load_phrasebook()
    G = Parts()
    for space in ("lab", "rgb"):
        for cls, phrase in (("red", "red hair"), ("black", "black hair"), ("blond", "blonde hair")):
            i = book.references["hair colour"]["rgb"].classes.index(cls)
            colour = book.references["hair colour"]["rgb"].mean[i]
            ids = np.zeros((32, 32), np.int64)
            ids[:10] = 7                                             # hair on top
            ids[10:] = 1
            rgb = np.zeros((32, 32, 3), np.uint8)
            rgb[:10] = (colour.numpy() * 255).round().astype(np.uint8)
            rgb[10:] = (200, 160, 130)
            image, seg = _batch([(rgb, ids)])
            assert bool(phrase_score(phrase, G, book, space).success(image, seg)[0]), (space, phrase)
            other = "grey hair" if cls != "grey" else "red hair"
            assert not bool(phrase_score(other, G, book, space).success(image, seg)[0])
            assert float(phrase_score(phrase, G, book, space).score(image, seg)[0]) > 0.5
    # no hair drawn: no hair colour holds
    image, seg = _batch([(np.full((32, 32, 3), 120, np.uint8), np.ones((32, 32), np.int64))])
    assert not bool(phrase_score("red hair", G, book).success(image, seg)[0])


def _plain_portrait():
    for i in range(100):
        img, ids, rec = generate_portrait(11, i, 64)
        if rec["hat"] is None and rec["glasses"] is None and rec["hair"]["style"] in ("bob", "long"):
            return rec
    raise AssertionError("no plain portrait")


def test_rerendered_portraits_follow_their_edited_attributes():
    """One portrait drawn again with its hair recoloured from the palette (a red, a black, a blond record), with a
    hat and without: the scorer reads the change."""
    from memorygan.data.portraits import HAIR_TONES

    rec = _plain_portrait()
    G = Parts()
    book = load_phrasebook()
    variants = {"red hair": ("red", (0.62, 0.28, 0.12)), "black hair": ("black", tuple(HAIR_TONES[5])),
                "blonde hair": ("blond", tuple(HAIR_TONES[0]))}
    for phrase, (name, rgb) in variants.items():
        r = copy.deepcopy(rec)
        r["hair"]["color"], r["hair"]["rgb"] = name, [float(c) for c in rgb]
        image, seg = _batch([render_portrait(r, 64)])
        for other in variants:
            assert bool(phrase_score(other, G, book).success(image, seg)[0]) == (other == phrase), (phrase, other)
    hat = copy.deepcopy(rec)
    hat["hat"] = {"kind": "beanie", "rgb": [0.2, 0.3, 0.7], "height": 0.5}
    image, seg = _batch([render_portrait(rec, 64), render_portrait(hat, 64)])
    assert phrase_score("a hat", G, book).success(image, seg).tolist() == [False, True]
    assert phrase_score("no hat", G, book).success(image, seg).tolist() == [True, False]


def test_builtin_table_classifies_fresh_portraits():
    """Held-out portraits (another seed than the table's): the nearest class agrees with the ground truth."""
    book = load_phrasebook()
    G = Parts()
    items = [generate_portrait(7, i, 64) for i in range(80)]
    image, seg = _batch([(a, b) for a, b, _ in items])
    recs = [r for _, _, r in items]
    checks = {"hair colour": ("hair", "color", 0.7), "skin tone": None, "hat": None, "glasses": None}
    for gname in checks:
        g = book.groups[gname]
        score = phrase_score(next(t for t, (gg, _) in book.phrases.items() if gg == gname), G, book)
        t = score.terms[0]
        pred = score.log_probs(image, seg)[0].argmax(1)
        truth = [g.label(r) for r in recs]
        keep = [i for i, c in enumerate(truth) if c is not None and c in t.ref.classes]
        acc = float(np.mean([t.ref.classes[int(pred[i])] == truth[i] for i in keep]))
        assert acc >= (0.7 if gname in ("hair colour", "skin tone") else 0.95), (gname, acc)


def test_calibrate_reproduces_the_builtin_table_and_reads_datasets(tmp_path):
    from memorygan.data.synth import synthesize

    book = calibrate(PhraseBook(), n=120, size=64, seed=3, groups=["hat", "skin tone"])
    builtin = load_phrasebook()
    for gname in ("hat", "skin tone"):
        for space in ("lab", "rgb"):
            ref, want = book.references[gname][space], builtin.references[gname][space]
            for c in ref.classes:
                a, b = ref.mean[ref.classes.index(c)], want.mean[want.classes.index(c)]
                assert bool((((a - b) / want.std).abs() < 1.0).all()), (gname, space, c, a, b)
    synthesize("portraits", tmp_path / "data", n=40, size=32, seed=0)
    book = calibrate(PhraseBook(), data=tmp_path / "data", groups=["hair colour", "glasses"])
    assert sum(book.references["glasses"]["lab"].count) == 40
    assert "dataset" in book.source
    path = book.save(tmp_path / "table.json")
    again = load_phrasebook(path)
    assert torch.equal(again.references["glasses"]["lab"].mean, book.references["glasses"]["lab"].mean)
    # the calibrated table is what `edit text|region --phrases T.json` and `demo --phrases T.json` score with
    # (issue 30: a calibrated table could not be used): its references, not the built-in table's
    g = tiny_generator("ssg", num_classes=5, class_names=["background", "skin", "eyes", "hair", "eyeglasses"])
    used = text_score("attributes", "glasses", g, phrases=str(path)).terms[0].ref
    assert torch.equal(used.mean, book.references["glasses"]["lab"].mean)
    assert not torch.equal(used.mean, load_phrasebook().references["glasses"]["lab"].mean)
    from memorygan.demo.state import DemoState
    demo = DemoState(g, phrases=str(path))
    demo._scorer("glasses", "attributes")
    assert demo.phrases.source == book.source
    with pytest.raises(ConfigError, match="has no calibrated references|unknown phrase"):
        text_score("attributes", "blue eyes", g, phrases=str(path))    # only two groups were calibrated


def test_smile_features_separate_big_smiles():
    items = [generate_portrait(5, i, 64) for i in range(80)]
    image, seg = _batch([(a, b) for a, b, _ in items])
    f = feature_values("smile", image, seg, [4, 1])
    big = torch.tensor([r["mouth"]["smile"] >= 0.6 for _, _, r in items])
    none = torch.tensor([r["mouth"]["smile"] < 0.15 for _, _, r in items])
    assert float(f[big, 1].mean()) > float(f[none, 1].mean()) * 1.3             # a big smile: a larger mouth
    assert float(f[big, 2].mean()) > float(f[none, 2].mean())                    # teeth: more contrast


def test_scores_are_differentiable_and_combine():
    G = Parts()
    img, ids, _ = generate_portrait(0, 1, 64)
    image, seg = _batch([(img, ids)])
    image.requires_grad_(True)
    seg.requires_grad_(True)
    one = phrase_score("red hair", G)
    both = phrase_score("a person with red hair and a hat", G)
    assert [t.phrase for t in both.terms] == ["red hair", "a hat"]
    loss = both.loss(image, seg)
    assert torch.allclose(loss, one.loss(image, seg) + phrase_score("a hat", G).loss(image, seg))
    assert torch.allclose(both.score(image, seg), one.score(image, seg) * phrase_score("a hat", G).score(image, seg))
    # the loss is half the squared distance to the class mean in pooled-std units
    t = one.terms[0]
    f = feature_values("colour", image, seg, t.parts, "lab")
    want = 0.5 * (((f - t.ref.mean[t.cls_index]) / t.ref.std) ** 2).sum(1)
    assert torch.allclose(one.loss(image, seg), want)
    loss.sum().backward()
    assert float(image.grad.abs().sum()) > 0 and float(seg.grad.abs().sum()) > 0
    assert bool(torch.isfinite(image.grad).all() & torch.isfinite(seg.grad).all())


def test_phrase_lookup_registration_and_errors(tmp_path):
    G = Parts()
    book = load_phrasebook()
    assert phrase_score("A person with BLONDE hair!", G, book).terms[0].phrase == "blonde hair"
    assert phrase_score("light brown hair", G, book).terms[0].ref.classes[0] == "blond"   # longest phrase wins
    assert phrase_score("light brown hair", G, book).describe().startswith("'light brown hair' (hair colour: "
                                                                         "light_brown)")
    with pytest.raises(ConfigError, match=r"unknown phrase in prompt 'purple hair'.*red hair"):
        phrase_score("purple hair", G, book)
    with pytest.raises(ConfigError, match="two classes of the group 'hair colour'"):
        phrase_score("red hair and black hair", G, book)
    book.add("ginger hair", "hair colour", "red")
    assert phrase_score("ginger hair", G, book).terms[0].ref.classes.index("red") == \
        phrase_score("ginger hair", G, book).terms[0].cls_index
    with pytest.raises(ConfigError, match="has no class 'purple'"):
        book.add("purple hair", "hair colour", "purple")
    aliases = tmp_path / "aliases.json"
    aliases.write_text(json.dumps({"auburn hair": ["hair colour", "red"], "a cap": ["hat", "yes"]}))
    g = tiny_generator("ssg", class_names=["background", "skin", "eyes", "hair"])
    s = text_score("attributes", "auburn hair", g, phrases=str(aliases))
    assert s.terms[0].group.name == "hair colour"
    with pytest.raises(ConfigError, match="reads part 'hat', which this generator does not have"):
        text_score("attributes", "a cap", g, phrases=str(aliases))
    aliases.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected"):
        text_score("attributes", "red hair", g, phrases=str(aliases))
    with pytest.raises(ConfigError, match="--colour-space must be one of"):
        text_score("attributes", "red hair", g, colour_space="hsv")
    with pytest.raises(ConfigError, match="--prompt"):
        text_score("attributes", "  ", g)
    with pytest.raises(ConfigError, match="--scorer must be one of"):
        text_score("dalle", "red hair", g)
    ho = held_out_score("rgb", "red hair", g)
    assert ho.space == "rgb"
    assert held_out_score("lightness:hair", "red hair", g).describe() == "assessor lightness:hair"


def _face(eyes_rgb=(60, 40, 30), skin_rgb=(200, 160, 130), glasses_box=None):
    """A hand-built 32 px face: skin everywhere, two 3x4 eyes, optional eyeglasses box (rows, cols)."""
    ids = np.ones((32, 32), np.int64)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:] = skin_rgb
    for c0 in (8, 20):
        ids[12:15, c0:c0 + 4] = 2
        rgb[12:15, c0:c0 + 4] = eyes_rgb
    if glasses_box is not None:
        r0, r1, c0, c1 = glasses_box
        ids[r0:r1, c0:c1] = 10
        rgb[r0:r1, c0:c1] = (20, 20, 20)
    return rgb, ids


def _u8(t):
    return tuple(int(round(255 * float(v))) for v in t)


def test_hand_built_eyes_skin_and_glasses():
    """Eyes and skin painted with one class's calibrated mean colour are that class (and not its neighbour); the
    glasses feature is sqrt(area fraction) of the eyeglasses mask, hand-computed."""
    book = load_phrasebook()
    G = Parts()
    for space in ("lab", "rgb"):
        eyes = book.references["eye colour"]["rgb"]
        for cls, phrase, other in (("blue", "blue eyes", "brown eyes"), ("dark_brown", "dark brown eyes",
                                                                           "blue eyes")):
            image, seg = _batch([_face(eyes_rgb=_u8(eyes.mean[eyes.classes.index(cls)]))])
            assert bool(phrase_score(phrase, G, book, space).success(image, seg)[0]), (space, phrase)
            assert not bool(phrase_score(other, G, book, space).success(image, seg)[0]), (space, other)
        skin = book.references["skin tone"]["rgb"]
        for cls, phrase, other in (("dark", "dark skin", "light skin"), ("light", "light skin", "dark skin")):
            image, seg = _batch([_face(skin_rgb=_u8(skin.mean[skin.classes.index(cls)]))])
            assert bool(phrase_score(phrase, G, book, space).success(image, seg)[0]), (space, phrase)
            assert not bool(phrase_score(other, G, book, space).success(image, seg)[0]), (space, other)
    # the eyes' colour feature is the painted colour (the soft mask leaks ~5e-4 of the skin in)
    image, seg = _batch([_face(eyes_rgb=(30, 90, 200))])
    f = feature_values("colour", image, seg, [2], "rgb")[0]
    assert torch.allclose(f, torch.tensor([30, 90, 200]) / 255, atol=2e-3)
    # glasses: a 4x8 box on a 32x32 image covers 32/1024 of it -> feature sqrt(1/32) = 0.177 ("yes" reference 0.175)
    with_g, seg_g = _batch([_face(glasses_box=(11, 15, 6, 14)), _face()])
    area = feature_values("area", with_g, seg_g, [10])[:, 0]
    assert float(area[0]) == pytest.approx((32 / 1024) ** 0.5, abs=2e-3)
    assert float(area[1]) < 0.02
    assert phrase_score("wearing glasses", G, book).success(with_g, seg_g).tolist() == [True, False]
    assert phrase_score("no glasses", G, book).success(with_g, seg_g).tolist() == [False, True]

"""Judges that took no part in an edit (editing/judges.py): probe masks, ground-truth regressors, success over the
images not satisfied before, comparison at equal judged gain."""
import json
import math
import numpy as np
import pytest
import torch

from memorygan.cli import main
from memorygan.editing.assessors import get_assessor
from memorygan.editing.directions import learn_direction
from memorygan.editing.evaluate import equal_gain, evaluate_direction
from memorygan.editing.judges import Judges
from memorygan.editing.regressor import AttributeNet
from memorygan.editing.results import summarise
from memorygan.errors import ConfigError


def write_regressor(folder, attribute, kind, *, classes=(), value=None, resolution=32):
    """An assessor folder whose network ignores the image: regression -> `value`; classes -> always `value`."""
    from safetensors.torch import save_file

    out_dim = len(classes) if kind == "classes" else 1
    net = AttributeNet(out_dim)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        if kind == "classes":
            net.head.bias[list(classes).index(value)] = 5.0
        else:
            net.head.bias[0] = 2.0                                      # mean + 2 std
    folder.mkdir(parents=True)
    save_file(net.state_dict(), str(folder / "assessor.safetensors"))
    mean, std = (value - 2 * 0.1, 0.1) if kind == "regression" else (0.0, 1.0)
    (folder / "assessor.json").write_text(json.dumps({
        "format": "memorygan-assessor", "version": 1, "attribute": attribute, "kind": kind, "classes": list(classes),
        "mean": mean, "std": std, "resolution": [resolution, resolution], "channels": 32, "heldout": {}}))


def test_phrases_are_judged_by_the_regressor_of_their_group(painter, tmp_path):
    write_regressor(tmp_path / "hair.color", "hair.color", "classes", classes=["black", "blond", "red"], value="red")
    write_regressor(tmp_path / "identity.pigment", "identity.pigment", "regression", value=0.9)
    J = Judges(painter, regressors=tmp_path)
    img = torch.zeros(3, 3, 32, 32)
    assert J.phrase_holds("a person with red hair", img).tolist() == [True] * 3
    assert J.phrase_holds("black hair", img).tolist() == [False] * 3
    assert J.phrase_holds("dark skin", img).tolist() == [True] * 3          # 0.9 is in the class [2/3, 1.01)
    assert J.phrase_holds("red hair and light skin", img).tolist() == [False] * 3
    assert J.phrase_holds("blue eyes", img) is None                         # no eyes.color regressor here
    assert J.phrase_holds("a watercolour painting", img) is None           # no phrase the ground truth knows
    assert J.score("hair.color:red", img) == pytest.approx(torch.full((3,), 1.0), abs=0.03)
    assert J.score("identity.pigment", img) == pytest.approx(torch.full((3,), 0.9), abs=1e-5)
    with pytest.raises(ConfigError, match="name one of its classes as hair.color:CLASS"):
        J.score("hair.color", img)
    with pytest.raises(ConfigError, match=r"no regressor for 'mouth.smile' \(train one: memorygan edit train-assessor"):
        J.score("mouth.smile", img)
    with pytest.raises(ConfigError, match="--judges .*: not a folder"):
        Judges(painter, regressors=tmp_path / "missing")


def test_probe_classes_are_matched_to_the_generators_parts_by_name(painter, tmp_path):
    names = ["hair", "eyes", "background", "skin"]                          # another order than the generator's
    make_probe(tmp_path / "probe", names, 16, eyes_everywhere=True)
    J = Judges(painter, probe=tmp_path / "probe")
    ids = J.probe_ids(torch.zeros(2, 3, 32, 32))
    assert ids.shape == (2, 32, 32) and (ids == painter.part_names.index("eyes")).all()
    assert J.score("probe-area:eyes", torch.zeros(2, 3, 32, 32)).tolist() == [1.0, 1.0]
    assert J.score("probe-area:hair", torch.zeros(2, 3, 32, 32)).tolist() == [0.0, 0.0]
    assert J.has("probe-area:hair") and not Judges(painter).has("probe-area:hair")
    make_probe(tmp_path / "probe3", names[:3], 16)
    with pytest.raises(ConfigError, match="the probe has no class for the generator's parts skin"):
        Judges(painter, probe=tmp_path / "probe3")


class FakeJudges:
    """Duck-typed judges: probe masks from a rule, a judge score from a callable."""

    def __init__(self, ids_fn, score_fn=None):
        self.probe = object()
        self.ids_fn, self.score_fn = ids_fn, score_fn
        self.specs = {"probe": "fake", "regressors": "fake"}

    def probe_ids(self, image):
        return self.ids_fn(image)

    def score(self, spec, image):
        return self.score_fn(image)


def test_judged_measures_read_the_judges_not_the_generator(painter):
    A = get_assessor("brightness:eyes", painter)
    d = learn_direction(painter, A, "latent", steps=40, batch=8, lr=0.05, seed=0, scale_n=64)
    bands = painter.owner                                                    # the painter's own segmentation
    seg = 2 * torch.nn.functional.one_hot(bands, 4).permute(2, 0, 1).float() - 1         # the painter's seg
    same = FakeJudges(lambda im: bands.expand(im.shape[0], -1, -1), lambda im: A(im, seg.expand(len(im), -1, -1, -1)))
    rec = evaluate_direction(painter, d, A, n=12, batch=6, target_parts=["eyes"], judges=same, judge="x")
    jd = rec["judged"]
    # a probe that agrees with the generator gives the generator's numbers
    assert jd["preserved_outside"] == pytest.approx(rec["preserved_outside"], abs=1e-12)
    assert jd["seg_miou_nontarget"] == pytest.approx(rec["seg_miou_nontarget"], abs=1e-12)
    # a judge equal to the assessor agrees perfectly; only the unit differs (2 std of the judge at alpha 0)
    assert jd["agreement"] == pytest.approx(1.0)
    assert jd["slope"] == pytest.approx(rec["slope"] * rec["scale"] / jd["scale"], rel=1e-6)
    # a probe that sees no eyes lets nothing change: the whole image counts as outside, which the latent moves
    blind = FakeJudges(lambda im: torch.zeros(im.shape[0], *im.shape[2:], dtype=torch.long),
                       lambda im: torch.zeros(im.shape[0]))
    rec_b = evaluate_direction(painter, d, A, n=12, batch=6, target_parts=["eyes"], judges=blind, judge="x")
    assert rec_b["judged"]["preserved_outside"]["0.5"] < rec_b["preserved_outside"]["0.5"] - 1e-4
    assert rec_b["preserved_outside"] == rec["preserved_outside"]           # the generator's own numbers unchanged
    assert rec_b["judged"]["slope"] == 0.0 or math.isnan(rec_b["judged"]["slope"])   # a judge that sees nothing
    with pytest.raises(ConfigError, match="needs the judges' folder"):
        evaluate_direction(painter, d, A, n=4, judge="x")


def _rec(gain, kept):
    al = [-0.5, -0.25, 0.0, 0.25, 0.5]
    return {"alphas": al, "judged": {"score_gain": {f"{a:g}": g for a, g in zip(al, [-1, -1, *gain])},
                                     "preserved_outside": {f"{a:g}": v for a, v in zip(al, [0, 0, *kept])}}}


def test_equal_gain_interpolates_each_direction_to_the_common_gain():
    part, whole = _rec([0.0, 0.2, 0.4], [1.0, 0.98, 0.96]), _rec([0.0, 0.5, 1.0], [1.0, 0.9, 0.8])
    eq = equal_gain({"part": part, "whole": whole})
    assert eq["gain"] == pytest.approx(0.4)
    assert eq["alpha"] == pytest.approx({"part": 0.5, "whole": 0.2})
    assert eq["preserved_outside"] == pytest.approx({"part": 0.96, "whole": 1 - 0.1 * 0.2 / 0.25})
    flat = _rec([0.0, 0.3, 0.3], [1.0, 0.9, 0.8])                            # does not rise: no honest alpha
    assert math.isnan(equal_gain({"part": part, "flat": flat})["preserved_outside"]["part"])
    still = _rec([0.0, 0.004, 0.008], [1.0, 0.99, 0.98])                     # rises, but the judge sees ~nothing
    assert math.isnan(equal_gain({"part": part, "still": still})["preserved_outside"]["still"])
    with pytest.raises(ConfigError, match="'x' has no judged gain"):
        equal_gain({"x": {"alphas": [0.0], "judged": {}}})


def test_success_counts_only_images_not_satisfied_before():
    rows = [dict(_changed=0.0, _count=1.0, _same=1.0, _inter=np.ones(1), _union=np.ones(1), psnr_outside=40.0,
                 judge_satisfied_before=b, judge_satisfied_after=a, success_before=b, success_after=True)
            for b, a in ((True, True), (False, True), (False, False))]
    s = summarise(rows)
    assert s["judge_satisfied_after"] == pytest.approx(2 / 3)
    assert s["judge_satisfied_unsatisfied_before"] == 2 and s["judge_satisfied_over_unsatisfied"] == 0.5
    assert s["success_over_unsatisfied"] == 1.0 and s["success_unsatisfied_before"] == 2


def make_probe(folder, names, resolution, eyes_everywhere=False):
    from memorygan.metrics.probe import ProbeUNet, save_probe

    probe = ProbeUNet(len(names), 8, 2)
    if eyes_everywhere:
        with torch.no_grad():
            for p in probe.parameters():
                p.zero_()
            last = [m for m in probe.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.bias[names.index("eyes")] = 1.0                             # the probe sees eyes everywhere
    save_probe(probe, folder, {"format": "memorygan-probe", "version": 1, "num_classes": len(names),
                               "base_channels": 8, "depth": 2, "classes": list(names),
                               "resolution": [resolution, resolution]})


def test_evaluate_cli_reports_the_judges(tmp_path, capsys):
    """`edit evaluate --judges DIR --judge ATTR --judge-probe DIR` on a real (tiny) generator and probe."""
    from helpers import tiny_generator

    names = ["background", "skin", "eyes", "hair"]
    G = tiny_generator("ssg", class_names=names).eval()
    G.save_pretrained(tmp_path / "g")
    gen = str(tmp_path / "g")
    write_regressor(tmp_path / "judges" / "skin.lightness", "skin.lightness", "regression", value=0.5,
                    resolution=G.config.resolution)
    make_probe(tmp_path / "probe", names, G.config.resolution)
    assert main(["edit", "learn", "--generator", gen, "--assessor", "lightness:skin", "--parts", "skin",
                 "--steps", "1", "--batch", "2", "--scale-samples", "8", "--out", str(tmp_path / "d"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["edit", "evaluate", "--generator", gen, "--direction", str(tmp_path / "d"), "--n", "4",
                 "--out", str(tmp_path / "ev"), "--judges", str(tmp_path / "judges"), "--judge", "skin.lightness",
                 "--judge-probe", str(tmp_path / "probe"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "judged (took no part): skin.lightness slope" in out and "probe masks: preserved outside" in out
    rec = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert rec["judged"]["by"]["regressor"] == "skin.lightness"
    assert set(rec["judged"]["preserved_outside"]) == {"-0.5", "-0.25", "0", "0.25", "0.5"}
    assert main(["edit", "evaluate", "--generator", gen, "--direction", str(tmp_path / "d"), "--n", "4",
                 "--out", str(tmp_path / "ev2"), "--judge", "skin.lightness", "--no-progress"]) == 2
    assert "--judge needs --judges DIR" in capsys.readouterr().err


def test_editing_report_with_judges_and_chosen_methods(tmp_path):
    """The study with judges: a targets table from the judged measures, the judged and equal-gain tables, only the
    methods asked for (and the eye-colour experiment judged by P(blue) when asked)."""
    from helpers import tiny_generator

    from memorygan.editing.report import ATTRIBUTES, write_editing_report

    names = ["background", "skin", "eyes", "mouth", "hair"]
    G = tiny_generator("memorygan", num_classes=5, class_names=names, transparent_classes=[])
    write_regressor(tmp_path / "j" / "hair.lightness", "hair.lightness", "regression", value=0.4,
                    resolution=G.config.resolution)
    make_probe(tmp_path / "probe", names, G.config.resolution)
    md = write_editing_report({"MemoryGAN": G}, tmp_path / "rep", n=3, steps=2, batch=2, strip_seeds=(0,), scale_n=8,
                              attributes=ATTRIBUTES[:1], log=lambda *a: None, judges=tmp_path / "j",
                              judge_probe=tmp_path / "probe", methods=("part", "latent"))
    text = md.read_text()
    assert text.index("## Targets") < text.index("Regenerate:")
    assert "| part directions: judged slope 0.8-1.2 with Spearman >= 0.9 | 0 of 1: MemoryGAN hair lightness" in text
    assert "Part codes vs whole latent at equal judged gain:" in text    # a constant judge: no gain, compared as NaN
    assert "| hair lightness | – | – / – |" in text
    assert "InterFaceGAN" not in text.split("## MemoryGAN")[1] and "## Eye colour" not in text
    rec = json.loads((tmp_path / "rep" / "memorygan" / "hair-lightness-learned-part-codes" / "evaluation.json")
                     .read_text())
    assert rec["judged"]["by"]["regressor"] == "hair.lightness" and "preserved_outside" in rec["judged"]
    with pytest.raises(ConfigError, match="--methods: unknown nope"):
        write_editing_report({"MemoryGAN": G}, tmp_path / "rep2", methods=("nope",), log=lambda *a: None)


def test_text_report_is_judged_over_the_images_unsatisfied_before(tmp_path):
    """The text/region study with judges: a hair-colour regressor that always says black judges "red hair" unmet on
    every image (none satisfied it before), and the targets table says so; the probe's mIoU is reported."""
    pytest.importorskip("cma")
    from helpers import tiny_generator

    from memorygan.editing.text_report import PhraseEdit, write_text_report

    names = ["background", "skin", "eyes", "hair"]
    G = tiny_generator("memorygan", class_names=names)
    write_regressor(tmp_path / "j" / "hair.color", "hair.color", "classes", classes=["black", "red"], value="black",
                    resolution=G.config.resolution)
    make_probe(tmp_path / "probe", names, G.config.resolution)
    kw = dict(seeds=[0, 1], steps=2, lambda_seg=10.0, sweep=(0.0,), phrases=(PhraseEdit("red hair", "hair"),),
              region_phrases=("red hair",), region_kw={"popsize": 4, "cma_iters": 1, "adam_steps": 1, "components": 2,
                                                     "basis_samples": 32})
    md = write_text_report({"MG": G}, tmp_path / "out", log=lambda *a: None, judges=tmp_path / "j",
                           judge_probe=tmp_path / "probe", **kw)
    data = json.loads((tmp_path / "out" / "text-edits.json").read_text())["results"]["MG"]
    s = data["phrases"]["red hair | seg 10"]["summary"]
    assert s["judge_satisfied_unsatisfied_before"] == 2 and s["judge_satisfied_over_unsatisfied"] == 0.0
    assert 0 <= s["judge_seg_miou_nontarget"] <= 1
    text = md.read_text()
    assert text.index("## Targets") < text.index("Settings:")
    assert "over the images that did not satisfy them before, >= 90 % | MG 0/2 = 0 % | **no** |" in text
    assert "| MG | red hair | λ_seg 10 | 0 (0 of 2) |" in text


def test_targets_count_a_part_slope_met_by_any_part_code_method():
    """The slope target per (model, attribute): the learned row alone, and a second row met when any part-code
    method (learned, InterFaceGAN, SeFa) is in 0.8-1.2 with Spearman >= 0.9; the whole latent never counts."""
    from memorygan.editing.report import METHODS, targets_rows

    def rec(slope, spearman):
        return {"judged": {"slope": slope, "spearman": spearman, "at": {}}}

    runs = {"hair lightness": {METHODS["part"]: rec(0.74, 0.95), METHODS["interfacegan"]: rec(0.92, 0.93),
                               METHODS["sefa"]: rec(0.48, 0.36), METHODS["latent"]: rec(1.0, 0.99)},
            "skin tone": {METHODS["part"]: rec(0.81, 0.89), METHODS["interfacegan"]: rec(0.96, 0.88),
                          METHODS["latent"]: rec(1.0, 0.99)}}
    rows = targets_rows({"results": {"SSG": {"attributes": runs}}})
    learned = next(r for r in rows if r.startswith("| part directions"))
    anyrow = next(r for r in rows if r.startswith("| the same, any part-code method"))
    assert "0 of 2: SSG hair lightness 0.74 / 0.95; SSG skin tone 0.81 / 0.89 | **no** |" in learned
    assert ("1 of 2: SSG hair lightness (learned 0.74 / 0.95, InterFaceGAN 0.92 / 0.93 ✓, SeFa 0.48 / 0.36) ✓; "
            "SSG skin tone (learned 0.81 / 0.89, InterFaceGAN 0.96 / 0.88) | **no** |") in anyrow
    only_learned = {"hair lightness": {METHODS["part"]: rec(0.9, 0.95), METHODS["latent"]: rec(1.0, 0.99)}}
    rows = targets_rows({"results": {"SSG": {"attributes": only_learned}}})
    assert not any(r.startswith("| the same, any part-code method") for r in rows)      # nothing else was tried

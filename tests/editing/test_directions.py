"""Directions (GANalyze), baselines (InterFaceGAN, SeFa), their evaluation, files and CLI."""
import json

import pytest
import torch
from helpers import tiny_generator

from memorygan.cli import main
from memorygan.editing.assessors import get_assessor
from memorygan.editing.baselines import interfacegan, sefa, sefa_eigenvectors
from memorygan.editing.directions import (edit_output, learn_direction, load_direction, parts_delta,
                                          sample_source, save_direction, seed_source)
from memorygan.editing.evaluate import evaluate_direction
from memorygan.errors import CheckpointError, ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def test_parts_delta_follows_the_layer_roles():
    G = tiny_generator("ssg", randomize=False)                # L = 5: base [0], shape [1, 2], texture [3, 4]
    theta = torch.stack([torch.full((16,), 1.0), torch.full((16,), 2.0)])[None]      # part 2: shape 1, texture 2
    delta = parts_delta(G, theta, [2], ["shape", "texture"])
    assert delta.shape == (4, 5, 16)
    assert delta[2, :, 0].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0]                      # the base layer never moves
    assert delta[[0, 1, 3]].abs().sum() == 0
    assert parts_delta(G, theta[:, 1:], [0], ["texture"])[0, :, 0].tolist() == [0.0, 0.0, 0.0, 2.0, 2.0]


def test_learned_part_direction_moves_its_part_and_nothing_else(painter):
    """On a generator whose parts do not interact, a direction in part 2's codes changes part 2's lightness by the
    requested amount and leaves every other pixel exactly unchanged."""
    A = get_assessor("brightness:eyes", painter)
    d = learn_direction(painter, A, "parts", ["eyes"], steps=60, batch=8, lr=0.05, seed=0, scale_n=64)
    assert d.info["curve"][-1]["loss"] < 0.1 * d.info["curve"][0]["loss"]
    rec = evaluate_direction(painter, d, A, n=20, batch=20)
    assert rec["target_parts"] == ["eyes"]
    assert rec["preserved_outside"] == {f"{a:g}": 1.0 for a in rec["alphas"]}        # exactly: no leakage
    assert all(v == 1.0 for v in rec["seg_miou_nontarget"].values())
    assert all(v == 0.0 for v in rec["attribute_leakage"].values())
    assert rec["slope"] == pytest.approx(1.0, abs=0.05) and rec["spearman"] > 0.95 and rec["monotone_fraction"] == 1
    # the whole-latent baseline moves the other parts too
    whole = learn_direction(painter, A, "latent", steps=60, batch=8, lr=0.05, seed=0, scale=d.scale)
    rec_w = evaluate_direction(painter, whole, A, n=20, batch=20, target_parts=["eyes"])
    assert rec_w["preserved_outside"]["0.5"] < 0.999 and rec_w["attribute_leakage_mean"] > 0.01


def test_interfacegan_finds_the_part_direction(painter):
    A = get_assessor("brightness:eyes", painter)
    d = interfacegan(painter, A, "parts", ["eyes"], n=300, seed=0, scale_n=64)
    assert d.method == "interfacegan" and d.theta.shape == (1, 2, 16)
    rec = evaluate_direction(painter, d, A, n=30, batch=15)
    assert rec["preserved_outside"]["0.5"] == 1.0
    assert 0.6 <= rec["slope"] <= 1.4 and rec["spearman"] > 0.8
    # conditional: project out a second attribute's normal (hue of the same part)
    cond = get_assessor("hue:eyes", painter)
    dc = interfacegan(painter, A, "parts", ["eyes"], n=300, seed=0, condition=cond, scale_n=64)
    assert dc.info["condition"] == "hue:eyes" and abs(dc.info["cosine_to_condition"]) <= 1


def test_interfacegan_normal_is_the_painters_true_direction(painter):
    """The painter's eye luma is linear in the eyes' codes: 0.2/L * sum over layers of code @ w, Rec. 601 weights. Its
    gradient in (shape, texture) is (v, v) with v = w @ [0.299, 0.587, 0.114] (each role fills two of the five
    layers). The SVM normal must point there (a random unit vector has cosine ~0.1 in 32 dimensions)."""
    A = get_assessor("brightness:eyes", painter)
    d = interfacegan(painter, A, "parts", ["eyes"], n=300, seed=0, scale_n=64)
    v = painter.w @ torch.tensor([0.299, 0.587, 0.114])
    truth = torch.stack([v, v])[None]
    cosine = torch.nn.functional.cosine_similarity(d.theta.flatten(), truth.flatten(), dim=0)
    assert float(cosine) > 0.95, float(cosine)


def test_sefa_eigenvectors_and_direction():
    G = tiny_generator("ssg", class_names=NAMES).eval()
    vecs, vals = sefa_eigenvectors(G, 2, "texture", num=4)
    assert vecs.shape == (4, 16) and (vals[:-1] >= vals[1:]).all()
    assert torch.allclose(vecs @ vecs.T, torch.eye(4), atol=1e-5)
    # the top eigenvector maximises ||A v|| over unit vectors: better than random ones
    mod = [G.local_nets[2].layers[l].conv.modulation for l in (3, 4)]
    norm = lambda v: sum(float(((m.weight.detach() * m.scale) @ v).norm() ** 2) for m in mod)  # noqa: E731
    assert norm(vecs[0]) >= max(norm(torch.nn.functional.normalize(torch.randn(16), dim=0)) for _ in range(20))
    A = get_assessor("brightness", G)
    d = sefa(G, A, ["hair"], "texture", num=3, seed=0, select_n=8, calibrate_n=16, scale_n=32)
    assert d.method == "sefa" and d.theta.shape == (1, 1, 16) and 0 <= d.info["eigenvector"] < 3
    rec = evaluate_direction(G, d, A, n=8, batch=8)
    assert rec["slope"] > 0                                      # calibrated in the increasing direction


def test_query_direction_needs_memorygan_and_z():
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    A = get_assessor("brightness", G)
    d = learn_direction(G, A, "query", ["skin"], steps=3, batch=2, lr=0.05, scale_n=16)
    assert d.theta.shape == (1, 16)
    source = seed_source(G, [0, 1])
    assert not torch.allclose(edit_output(G, d, source, 0.5).image, edit_output(G, d, source, 0.0).image)
    source.z = None
    with pytest.raises(ConfigError, match="needs the controller noise z"):
        edit_output(G, d, source, 0.5)
    with pytest.raises(ConfigError, match="query codes exist only in MemoryGAN"):
        learn_direction(tiny_generator("ssg", class_names=NAMES), A, "query", ["skin"], steps=1)


def test_space_errors():
    G = tiny_generator("ssg", class_names=NAMES).eval()
    A = get_assessor("brightness", G)
    with pytest.raises(ConfigError, match="--space parts needs --parts"):
        learn_direction(G, A, "parts", None, steps=1)
    with pytest.raises(ConfigError, match="unknown part 'nose'"):
        learn_direction(G, A, "parts", ["nose"], steps=1)
    with pytest.raises(ConfigError, match="--space must be one of"):
        learn_direction(G, A, "w", None, steps=1)
    with pytest.raises(ConfigError, match="does not vary"):
        learn_direction(G, _const(G), "latent", None, steps=1, scale_n=8)


def _const(G):
    from memorygan.editing.assessors import Assessor
    return Assessor("const", lambda image, seg, parts: image[:, 0, 0, 0] * 0, [])


def test_direction_files_round_trip_and_refuse_another_generator(tmp_path):
    G = tiny_generator("ssg", class_names=NAMES).eval()
    A = get_assessor("lightness:hair", G)
    d = learn_direction(G, A, "parts", ["hair", "skin"], "texture", steps=2, batch=2, scale_n=16)
    save_direction(d, tmp_path / "d")
    back = load_direction(tmp_path / "d", G)
    assert torch.equal(back.theta, d.theta) and back.parts == [3, 1] and back.roles == ["texture"]
    assert back.scale == d.scale and back.info["curve"] == d.info["curve"]
    source, _ = sample_source(G, 2, seed=4)
    assert torch.equal(edit_output(G, back, source, 0.3).image, edit_output(G, d, source, 0.3).image)
    other = tiny_generator("ssg", seed=9, class_names=NAMES)
    with pytest.raises(CheckpointError, match="learned on another generator"):
        load_direction(tmp_path / "d", other)
    with pytest.raises(CheckpointError, match="cannot edit a memorygan generator"):
        load_direction(tmp_path / "d", tiny_generator("memorygan", class_names=NAMES))
    with pytest.raises(CheckpointError, match="not a direction folder"):
        load_direction(tmp_path)


def test_edit_cli_end_to_end(tmp_path, capsys):
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    G.save_pretrained(tmp_path / "g")
    g = str(tmp_path / "g")
    assert main(["edit", "learn", "--generator", g, "--assessor", "lightness:hair", "--parts", "hair",
                 "--steps", "3", "--batch", "2", "--scale-samples", "16", "--out", str(tmp_path / "d"),
                 "--no-progress"]) == 0
    assert main(["edit", "apply", "--generator", g, "--direction", str(tmp_path / "d"), "--seeds", "0,1",
                 "--alphas=-0.5,0,0.5", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "strip.png").is_file()
    rec = json.loads((tmp_path / "a" / "apply.json").read_text())
    assert rec["names"] == ["seed 0", "seed 1"] and rec["alphas"] == [-0.5, 0.0, 0.5]
    # the edited codes load back and alpha 0 is the unedited sample
    from memorygan.editing.codes import load_codes
    codes = load_codes(tmp_path / "a" / "edited-codes.safetensors", G)
    assert codes.names[1] == "seed 0 alpha=0" and torch.allclose(codes.expanded[1], G.sample(1, seed=0).expanded[0])
    capsys.readouterr()
    assert main(["edit", "evaluate", "--generator", g, "--direction", str(tmp_path / "d"), "--n", "4",
                 "--out", str(tmp_path / "e"), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"slope", "spearman", "monotone_fraction", "preserved_outside", "seg_miou_nontarget",
                        "attribute_leakage"}
    assert (tmp_path / "e" / "evaluation.png").is_file()
    # bad inputs: one-line errors, exit code 2
    assert main(["edit", "learn", "--generator", g, "--assessor", "nope", "--parts", "hair", "--steps", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "unknown assessor 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["edit", "apply", "--generator", g, "--direction", str(tmp_path / "d"), "--alphas", "5",
              "--out", str(tmp_path / "y")])
    assert "alpha 5 is out of range" in capsys.readouterr().err
    other = tiny_generator("memorygan", seed=3, class_names=NAMES)
    other.save_pretrained(tmp_path / "g2")
    assert main(["edit", "apply", "--generator", str(tmp_path / "g2"), "--direction", str(tmp_path / "d"),
                 "--out", str(tmp_path / "z")]) == 2
    assert "learned on another generator" in capsys.readouterr().err
    # a generator derived from the direction's (e.g. tuned by PTI): allowed when asked, with the same edit
    assert main(["edit", "apply", "--generator", str(tmp_path / "g2"), "--direction", str(tmp_path / "d"),
                 "--seeds", "0", "--alphas=0,0.5", "--allow-other-generator", "--out", str(tmp_path / "z")]) == 0
    assert (tmp_path / "z" / "strip.png").is_file()
    assert main(["edit", "evaluate", "--generator", str(tmp_path / "g2"), "--direction", str(tmp_path / "d"),
                 "--n", "2", "--allow-other-generator", "--out", str(tmp_path / "e2"), "--no-progress"]) == 0


def test_learn_refuses_a_foreign_out_before_training(tmp_path, capsys, monkeypatch):
    """--out holding the user's files (or being a file) is refused before any training, and left as it was; an
    existing direction folder is replaced."""
    G = tiny_generator("memorygan", class_names=NAMES).eval()
    G.save_pretrained(tmp_path / "g")
    import memorygan.editing.directions as directions
    trained = []
    real = directions.learn_direction
    monkeypatch.setattr(directions, "learn_direction", lambda *a, **k: trained.append(1) or real(*a, **k))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    (tmp_path / "file").write_text("keep")
    for out, message in ((tmp_path / "mine", "is not a direction folder"), (tmp_path / "file", "is a file")):
        for cmd in (["learn", "--steps", "1", "--batch", "2", "--scale-samples", "8"], ["interfacegan", "--n", "8"],
                    ["sefa"]):
            assert main(["edit", cmd[0], "--generator", str(tmp_path / "g"), "--assessor", "lightness:hair",
                         "--parts", "hair", "--out", str(out)] + cmd[1:]) == 2
            assert message in capsys.readouterr().err
    assert trained == [] and (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert (tmp_path / "file").read_text() == "keep"
    argv = ["edit", "learn", "--generator", str(tmp_path / "g"), "--assessor", "lightness:hair", "--parts", "hair",
            "--steps", "1", "--batch", "2", "--scale-samples", "8", "--out", str(tmp_path / "d"), "--no-progress"]
    assert main(argv) == 0 and main(argv) == 0 and trained == [1, 1]


def test_editing_report_runs_on_a_tiny_generator(tmp_path):
    """The study end to end at toy budgets (one attribute): its rows and the eye-colour experiment are written."""
    from memorygan.editing.report import ATTRIBUTES, eye_colour_plans, write_editing_report

    names = ["background", "skin", "eyes", "mouth", "hair"]
    G = tiny_generator("memorygan", num_classes=5, class_names=names, transparent_classes=[])
    md = write_editing_report({"MemoryGAN": G}, tmp_path / "rep", n=3, steps=2, batch=2, interfacegan_n=20,
                              strip_seeds=(0,), scale_n=8, calibrate_n=4, attributes=ATTRIBUTES[:1],
                              command="memorygan edit report ...", log=lambda *a: None)
    text = md.read_text()
    for method in ("learned, part codes", "learned, whole latent", "InterFaceGAN, part codes", "SeFa, part codes"):
        assert text.count(f"| hair lightness | {method} |") == 1
    assert "| MemoryGAN | eyes' query (working memory) |" in text and "| MemoryGAN | skin + hair codes |" in text
    assert (tmp_path / "rep" / "memorygan" / "hair-lightness-learned-part-codes" / "strip.png").is_file()
    # run again: every finished direction is kept (same settings, same generator), the page is the same
    ev = tmp_path / "rep" / "memorygan" / "hair-lightness-sefa-part-codes" / "evaluation.json"
    before, lines = ev.read_bytes(), []
    md2 = write_editing_report({"MemoryGAN": G}, tmp_path / "rep", n=3, steps=2, batch=2, interfacegan_n=20,
                               strip_seeds=(0,), scale_n=8, calibrate_n=4, attributes=ATTRIBUTES[:1],
                               command="memorygan edit report ...", log=lines.append)
    n_dirs = len(list((tmp_path / "rep" / "memorygan").glob("*/evaluation.json")))
    assert n_dirs == 4 + len(eye_colour_plans(G))
    assert sum("kept" in line for line in lines) == n_dirs and ev.read_bytes() == before
    assert md2.read_text().split("## ")[1:] == text.split("## ")[1:]
    # other settings: learned again
    lines.clear()
    write_editing_report({"MemoryGAN": G}, tmp_path / "rep", n=2, steps=2, batch=2, interfacegan_n=20,
                         strip_seeds=(0,), scale_n=8, calibrate_n=4, attributes=ATTRIBUTES[:1], log=lines.append)
    assert not any("kept" in line for line in lines) and ev.read_bytes() != before
    # the query space only exists in MemoryGAN
    assert [p[1] for p in eye_colour_plans(tiny_generator("ssg", class_names=["background", "skin", "eyes", "hair"]))] \
        == ["parts", "parts"]


def test_combine_reports(tmp_path):
    from memorygan.editing.report import ATTRIBUTES, combine_reports, write_editing_report

    names = ["background", "skin", "eyes", "mouth", "hair"]
    for arch in ("memorygan", "ssg"):
        G = tiny_generator(arch, num_classes=5, class_names=names, transparent_classes=[])
        write_editing_report({arch.upper(): G}, tmp_path / arch, n=2, steps=1, batch=2, interfacegan_n=12,
                             strip_seeds=(0,), scale_n=4, calibrate_n=2, attributes=ATTRIBUTES[:1], log=lambda *a: None)
    import shutil
    shutil.move(tmp_path / "ssg", tmp_path / "moved" / "ssg")         # a study folder moved (e.g. into docs/)
    md = combine_reports([tmp_path / "memorygan", tmp_path / "moved" / "ssg"], tmp_path / "editing.md",
                         "memorygan edit ...")
    text = md.read_text()
    assert "(moved/ssg/ssg/hair-lightness-learned-part-codes/strip.png)" in text
    assert "## MEMORYGAN (memorygan)" in text and "## SSG (ssg)" in text and "memorygan edit ..." in text
    assert "| SSG | skin + hair codes |" in text
    with pytest.raises(ConfigError, match="no editing.json"):
        combine_reports([tmp_path], tmp_path / "x.md")


def test_editing_report_records_a_method_that_fails_and_goes_on(tmp_path, monkeypatch):
    """SSG's dead mouth generator gave no SeFa eigenvector that moves the mouth's area: the study must say so in its
    row and go on (it aborted), and a rerun keeps the failure instead of repeating it."""
    from memorygan.editing import baselines
    from memorygan.editing.report import ATTRIBUTES, write_editing_report

    def no_sefa(G, A, *a, **k):
        raise ConfigError(f"the sefa direction does not move the assessor {A.spec!r}")
    monkeypatch.setattr(baselines, "sefa", no_sefa)
    G = tiny_generator("ssg", num_classes=5, class_names=["background", "skin", "eyes", "mouth", "hair"],
                       transparent_classes=[])
    kw = dict(n=2, steps=1, batch=2, interfacegan_n=12, strip_seeds=(0,), scale_n=4, calibrate_n=2,
              attributes=ATTRIBUTES[:1])
    md = write_editing_report({"SSG": G}, tmp_path, log=lambda *a: None, **kw)
    text = md.read_text()
    assert "| hair lightness | SeFa, part codes | failed: the sefa direction does not move the assessor " \
           "'lightness:hair' |" in text
    assert "| hair lightness | InterFaceGAN, part codes | " in text and "## Eye colour" in text
    lines = []
    write_editing_report({"SSG": G}, tmp_path, log=lines.append, **kw)
    assert any("sefa-part-codes: finished earlier" in line for line in lines)


def test_alpha_limits_are_one_rule_for_cli_and_demo(tmp_path):
    """|alpha| <= 2 (4x the learned range) everywhere: the CLI's --alphas and the demo's slider method refuse the
    same value with the same words."""
    from helpers import tiny_generator

    from memorygan.demo.state import DemoState
    from memorygan.editing.cli import _alphas
    from memorygan.editing.directions import MAX_ALPHA, Direction, check_alpha
    from memorygan.errors import ConfigError

    assert check_alpha(-MAX_ALPHA) == -2.0 and MAX_ALPHA == 2.0
    import argparse
    with pytest.raises(argparse.ArgumentTypeError, match=r"alpha 2.5 is out of range.*within \[-2, 2\]"):
        _alphas("0.5,2.5")
    G = tiny_generator("memorygan").eval()
    d = Direction(torch.zeros(1, 2, G.config.latent_dim), "parts", [1], ["shape", "texture"], "none", 1.0,
                  arch=G.arch)
    st = DemoState(G, {"d": d})
    st.generate(0)
    with pytest.raises(ConfigError, match=r"alpha 2.5 is out of range.*within \[-2, 2\]"):
        st.apply_direction("d", 2.5)
    assert st.apply_direction("d", 2.0).message.startswith("d alpha +2")

"""Text-guided part edits (MemoryGAN Eq. 16-18): the StyleCLIP schedule, edits that move only their parts, batch
independence, the seg and identity terms, the query space, outputs and CLI errors."""
import json
import sys
import types

import pytest
import torch
from helpers import tiny_generator

from memorygan.cli import main
from memorygan.editing.directions import seed_source
from memorygan.editing.scorers import text_score
from memorygan.editing.text import (
    edit_space,
    identity_network,
    run_text_edit,
    seg_term,
    styleclip_lr,
    text_edit,
    text_edit_batched,
)
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def test_styleclip_schedule():
    assert styleclip_lr(0.0, 0.1) == 0.0                                  # linear ramp-up over the first 5%
    assert styleclip_lr(0.025, 0.1) == pytest.approx(0.05)
    assert styleclip_lr(0.05, 0.1) == pytest.approx(0.1)
    assert styleclip_lr(0.5, 0.1) == pytest.approx(0.1)
    assert styleclip_lr(0.875, 0.1) == pytest.approx(0.05)                # half-way down the cosine ramp
    assert styleclip_lr(1.0, 0.1) == pytest.approx(0.0)


def test_part_edit_reaches_the_phrase_and_touches_nothing_else(painter, tmp_path):
    """On a generator whose parts do not interact, editing the hair codes towards "red hair" makes the hair red and
    leaves every other pixel and mask exactly as it was."""
    score = text_score("attributes", "a person with red hair", painter)
    source = seed_source(painter, [0, 1, 2])
    rec = run_text_edit(painter, source, ["a", "b", "c"], score, tmp_path / "e", parts="hair", steps=150,
                        lambda_seg=1.0)
    s = rec["summary"]
    assert s["success_before"] == 0.0 and s["success_after"] == 1.0
    assert s["loss_after"] < 0.1 * s["loss_before"]
    assert s["preserved_outside"] == 1.0 and s["seg_miou_nontarget"] == 1.0 and s["psnr_outside"] == 100.0
    assert s["seg_kept_outside"] == 1.0
    assert rec["target_parts"] == ["hair"] and rec["identity"].startswith("off")
    for f in ("before.png", "after.png", "mask-before.png", "mask-after.png", "difference.png", "strip.png",
              "edited-codes.safetensors", "metrics.json"):
        assert (tmp_path / "e" / f).is_file()
    from memorygan.editing.codes import load_codes
    codes = load_codes(tmp_path / "e" / "edited-codes.safetensors")
    out = painter(expanded=codes.expanded)
    before = painter(expanded=source.expanded)
    hair = painter.owner == 3
    assert torch.equal(out.image[..., ~hair], before.image[..., ~hair])
    assert float((out.image[..., hair] - before.image[..., hair]).abs().max()) > 0.05


def test_each_image_is_edited_independently_of_its_batch():
    G = tiny_generator("ssg", class_names=NAMES)
    score = text_score("attributes", "red hair", G)
    both = text_edit(G, seed_source(G, [3, 4]), score, "hair", steps=8)
    one = text_edit(G, seed_source(G, [4]), score, "hair", steps=8)
    assert torch.allclose(both.theta[1:], one.theta, atol=1e-5)
    assert torch.allclose(both.after.image[1:], one.after.image, atol=1e-4)


def test_batched_text_edit_equals_one_batch_and_strips_show_the_first_images(tmp_path, monkeypatch):
    """Five images two at a time (batches 2, 2, 1) give each image the edit one batch of five gives it; the curve is
    the image-weighted mean of the batches'; strip.png shows the first STRIP_LIMIT images, the metrics all."""
    G = tiny_generator("ssg", class_names=NAMES)
    score = text_score("attributes", "red hair", G)
    source = seed_source(G, [0, 1, 2, 3, 4])
    whole = text_edit(G, source, score, "hair", steps=6, log_every=3)
    parts = text_edit_batched(G, source, score, batch=2, parts="hair", steps=6, log_every=3)
    assert parts.theta.shape == whole.theta.shape and parts.after.image.shape == whole.after.image.shape
    assert torch.allclose(parts.theta, whole.theta, atol=1e-5)
    assert torch.allclose(parts.after.image, whole.after.image, atol=1e-4)
    assert torch.allclose(parts.before.seg, whole.before.seg, atol=1e-5)
    assert [c["step"] for c in parts.curve] == [3, 6] and parts.settings["batch"] == 2
    assert parts.curve[-1]["score"] == pytest.approx(whole.curve[-1]["score"], rel=1e-3, abs=1e-6)
    with pytest.raises(ConfigError, match="--batch must be >= 1"):
        text_edit_batched(G, source, score, batch=0, parts="hair", steps=1)
    import memorygan.editing.results as results
    monkeypatch.setattr(results, "STRIP_LIMIT", 2)
    rec = run_text_edit(G, source, [f"s{i}" for i in range(5)], score, tmp_path / "e", batch=2, parts="hair",
                        steps=2)
    from PIL import Image
    strip = Image.open(tmp_path / "e" / "strip.png")
    after = Image.open(tmp_path / "e" / "after.png")
    written = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert rec["summary"]["n"] == 5 and len(written["images"]) == 5 and written["strip_images"] == 2
    assert after.width >= 5 * G.config.resolution and strip.height < 3 * (G.config.resolution + 2)


def test_seg_term_keeps_the_masks(arch):
    G = tiny_generator(arch, class_names=NAMES)
    score = text_score("attributes", "red hair", G)
    src = seed_source(G, [0, 1])
    free = text_edit(G, src, score, "hair", steps=30, lambda_seg=0.0)
    kept = text_edit(G, src, score, "hair", steps=30, lambda_seg=1000.0)
    assert "seg" not in free.curve[-1] and kept.curve[-1]["seg"] > 0
    change = lambda r: float((r.after.seg - r.before.seg).pow(2).mean())   # noqa: E731
    assert change(kept) < 0.5 * change(free)
    outside = text_edit(G, src, score, "hair", steps=5, lambda_seg=100.0, seg_on="outside")
    assert outside.settings["seg_on"] == "outside"
    with pytest.raises(ConfigError, match="--seg-on must be one of"):
        text_edit(G, src, score, "hair", steps=1, seg_on="everywhere")
    parts = text_edit(G, src, score, "hair", steps=2, lambda_seg=100.0, seg_norm="parts")
    assert parts.settings["seg_norm"] == "parts"
    with pytest.raises(ConfigError, match="--seg-norm must be one of"):
        text_edit(G, src, score, "hair", steps=1, seg_norm="classes")


def test_seg_term_by_pixels_and_by_parts_by_hand():
    """2 x 2 image, class 0 on three pixels, class 1 on one; the logits change by 2 (both channels) on the class-1
    pixel only: squared difference 4 there. By pixels 4 / 4 = 1; by parts (0 + 4) / 2 = 2. Weighted outside the
    target part 1, only class 0's pixels count: 0."""
    before = torch.tensor([[[[1.0, 1.0], [1.0, -1.0]], [[-1.0, -1.0], [-1.0, 1.0]]]])      # (1, 2, 2, 2)
    after = before.clone()
    after[0, :, 1, 1] += 2.0
    assert float(seg_term(before, after, [], "all", "pixels")[0]) == pytest.approx(1.0)
    assert float(seg_term(before, after, [], "all", "parts")[0]) == pytest.approx(2.0)
    assert float(seg_term(before, after, [1], "outside", "parts")[0]) == pytest.approx(0.0, abs=1e-3)
    assert float(seg_term(before, before, [], "all", "parts")[0]) == 0.0


def test_margin_seg_term_costs_only_moves_towards_another_label():
    """One pixel, label 0 with margin 2 in the source (kept: min(2, SEG_MARGIN = 1) = 1). A larger margin or any
    change that keeps margin >= 1 is free; margin 0.2 costs (1 - 0.2)^2; a flipped label (margin -1) costs 4."""
    before = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1)
    for after, want in (([3.0, -1.0], 0.0), ([0.0, -1.0], 0.0), ([0.2, 0.0], 0.64), ([0.0, 1.0], 4.0)):
        got = float(seg_term(before, torch.tensor(after).view(1, 2, 1, 1), [], seg_loss="margin")[0])
        assert got == pytest.approx(want, abs=1e-6), after
    after = torch.tensor([0.2, 0.0]).view(1, 2, 1, 1).requires_grad_(True)
    seg_term(before, after, [], seg_loss="margin").sum().backward()
    assert after.grad[0, 0, 0, 0] < 0 < after.grad[0, 1, 0, 0]          # pushes the source's label back up
    G = tiny_generator("ssg", class_names=NAMES)
    with pytest.raises(ConfigError, match="--seg-loss must be one of"):
        text_edit(G, seed_source(G, [0]), text_score("attributes", "red hair", G), "hair", steps=1, seg_loss="ce")


def test_identity_term_uses_the_given_network(monkeypatch):
    mod = types.ModuleType("fake_identity")
    calls = []

    def embed(image):
        calls.append(image.shape)
        return image.flatten(1)[:, :8]
    mod.embed = embed
    monkeypatch.setitem(sys.modules, "fake_identity", mod)
    G = tiny_generator("ssg", class_names=NAMES)
    F = identity_network("fake_identity:embed")
    res = text_edit(G, seed_source(G, [0]), text_score("attributes", "red hair", G), "hair", steps=4, identity=F,
                    lambda_id=0.5)
    assert len(calls) == 5 and "id" in res.curve[-1] and res.settings["identity"] == "on"
    with pytest.raises(ConfigError, match="MODULE:CALLABLE"):
        identity_network("fake_identity")
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        identity_network("fake_identity:nope")


def test_query_space_moves_only_the_query_of_its_part():
    G = tiny_generator("memorygan", class_names=NAMES)
    src = seed_source(G, [0, 1])
    res = text_edit(G, src, text_score("attributes", "red hair", G), "hair", space="query", steps=10)
    assert res.theta.shape == (2, 1, 16)
    # the edit is G(z, query_offsets) with the offset on hair's query only (index 1 + 3)
    offsets = torch.zeros(2, 5, 16)
    offsets[:, 4] = res.theta[:, 0]
    direct = G(src.z, query_offsets=offsets)
    assert torch.allclose(direct.image, res.after.image, atol=1e-5)
    ssg = tiny_generator("ssg", class_names=NAMES)
    with pytest.raises(ConfigError, match="query codes exist only in MemoryGAN"):
        edit_space(ssg, "query", "hair")
    src.z = None
    with pytest.raises(ConfigError, match="needs the controller noise z"):
        edit_space(G, "query", "hair", source=src)


def test_cli_text_edit_and_errors(tmp_path, capsys):
    G = tiny_generator("memorygan", class_names=NAMES)
    G.save_pretrained(tmp_path / "G")
    out = tmp_path / "out"
    rc = main(["edit", "text", "--generator", str(tmp_path / "G"), "--prompt", "red hair", "--parts", "hair",
               "--seeds", "0,1", "--steps", "3", "--held-out", "rgb", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "identity term off" in text and "satisfied" in text
    rec = json.loads((out / "metrics.json").read_text())
    for key in ("score_before", "score_after", "preserved_outside", "seg_miou_nontarget", "held_out_after"):
        assert key in rec["summary"]
    assert [r["name"] for r in rec["images"]] == ["seed 0", "seed 1"]
    assert rec["lambda_l2"] == 0.008 and rec["lr"] == 0.1
    # the edited codes re-render the edited image
    from memorygan.editing.codes import load_codes
    codes = load_codes(out / "edited-codes.safetensors", G)
    assert codes.names == ["seed 0 edited", "seed 1 edited"]
    bad = [(["--parts", "wings"], "unknown part"), (["--parts", "hair", "--prompt", "purple hair"], "unknown phrase"),
           (["--parts", "hair", "--space", "query", "--codes", str(out / "edited-codes.safetensors")],
            "needs the controller noise z")]
    for extra, msg in bad:
        args = ["edit", "text", "--generator", str(tmp_path / "G"), "--prompt", "red hair", "--steps", "1",
                "--out", str(tmp_path / "bad"), "--no-progress"] + extra
        assert main(args) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err


def test_text_report_runs_resumes_and_writes_the_page(tmp_path):
    pytest.importorskip("cma")                        # its region edits run CMA-ES (the [edit] extra)
    from memorygan.editing.text_report import PhraseEdit, write_text_report

    G = tiny_generator("memorygan", class_names=NAMES)
    logs = []
    kw = dict(seeds=[0], steps=2, lambda_seg=10.0, sweep=(0.0, 10.0),
              phrases=(PhraseEdit("red hair", "hair"), PhraseEdit("dark skin", "skin")),
              region_phrases=("red hair",), region_kw={"popsize": 4, "cma_iters": 1, "adam_steps": 1,
                                                     "components": 2, "basis_samples": 32})
    md = write_text_report({"MG": G}, tmp_path, log=logs.append, **kw)
    data = json.loads((tmp_path / "text-edits.json").read_text())["results"]["MG"]
    assert set(data["phrases"]) == {"red hair | seg 0", "red hair | seg 10", "dark skin | seg 0", "dark skin | seg 10"}
    assert set(data["eye_colour"]) == {"eyes codes", "skin+hair codes", "skin+hair query codes"}
    assert data["eye_colour"]["skin+hair query codes"]["space"] == "query"
    assert set(data["region"]) == {"red hair | cma+adam", "red hair | adam"}
    text = md.read_text()
    assert "## Region edits" in text and "| MG | red hair | cma+adam |" in text
    assert (tmp_path / "fig17.png").is_file()
    n = len(logs)
    write_text_report({"MG": G}, tmp_path, log=logs.append, **kw)          # everything is read back
    assert len(logs) == n
    text_dir = tmp_path / "mg" / "text"                                     # the default term names its folders
    assert (text_dir / "red-hair-hair-seg10-margin-parts").is_dir() and (text_dir / "red-hair-hair-seg0").is_dir()
    assert json.loads((text_dir / "red-hair-hair-seg10-margin-parts" / "metrics.json").read_text())["seg_loss"] \
        == "margin"
    write_text_report({"MG": G}, tmp_path, log=logs.append, **dict(kw, seg_loss="l2", seg_norm="pixels"))
    assert (text_dir / "red-hair-hair-seg10").is_dir()                      # Eq. 18 as written: the plain name
    assert len(logs) > n                                                    # new runs; λ_seg 0 read back
    assert not any("seg0" in line for line in logs[n:])

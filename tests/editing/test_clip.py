"""CLIP from local files: a tiny random CLIP in the transformers format, loaded from a folder (or $MEMORYGAN_CLIP),
scores of the right shape with gradients, CLIP's preprocessing in torch, random crops, and clear errors."""
import json

import pytest
import torch
from helpers import tiny_generator

from memorygan.cli import main
from memorygan.errors import ConfigError

pytest.importorskip("transformers")

from memorygan.editing.clip import OPENAI_MEAN, OPENAI_STD, ClipModel, ClipScore, random_crops  # noqa: E402
from memorygan.editing.scorers import text_score  # noqa: E402

NAMES = ["background", "skin", "eyes", "hair"]


def test_tiny_clip_loads_and_scores_with_gradients(tiny_clip):
    clip = ClipModel(tiny_clip)
    assert not any(p.requires_grad for p in clip.model.parameters())
    assert all(p.dtype == torch.float32 for p in clip.model.parameters())
    text = clip.encode_text(["red hair", "a hat"])
    assert text.shape == (2, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    score = ClipScore(clip, "red hair", crops=3)
    image = (torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_(True)
    s = score.score(image)
    assert s.shape == (3,) and bool(torch.isfinite(s).all()) and bool((s.abs() <= 1 + 1e-5).all())
    # the score is the cosine of the two embeddings
    assert torch.allclose(s, (clip.encode_image(image) * text[:1]).sum(-1), atol=1e-6)
    loss = score.loss(image, generator=torch.Generator().manual_seed(1))
    assert loss.shape == (3,)
    loss.sum().backward()
    assert image.grad is not None and bool(torch.isfinite(image.grad).all()) and float(image.grad.abs().sum()) > 0
    # without a generator: the full view only, 1 - score
    with torch.no_grad():
        assert torch.allclose(score.loss(image), 1 - s.detach(), atol=1e-6)
    assert score.success(image) is None


def test_random_crops_are_seeded_and_stay_in_the_region(tiny_clip):
    score = ClipScore(ClipModel(tiny_clip), "red hair", crops=4)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    a = score.loss(image, generator=torch.Generator().manual_seed(5))
    b = score.loss(image, generator=torch.Generator().manual_seed(5))
    c = score.loss(image, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    region = torch.zeros(2, 32, 32)
    region[:, 4:12, 20:30] = 1                                     # box 8 rows x 10 columns
    crops = random_crops(image * region[:, None], region, 20, 0.5, torch.Generator().manual_seed(0))
    assert all(4 <= c.shape[-1] <= 8 and c.shape[-1] == c.shape[-2] for c in crops)
    # every crop lies inside the box: the masked image is zero outside it, so no crop is all zero
    assert all(float(c.abs().sum()) > 0 for c in crops)


def test_preprocessing_is_clip_resize_and_normalisation(tiny_clip, tmp_path):
    clip = ClipModel(tiny_clip)
    rgb = torch.tensor([0.2, 0.5, 0.9])
    image = (rgb.view(1, 3, 1, 1) * 2 - 1).expand(1, 3, 16, 16)
    x = clip.preprocess(image)
    assert x.shape == (1, 3, 32, 32)                               # the vision config's image_size, no config file
    want = (rgb - torch.tensor(OPENAI_MEAN)) / torch.tensor(OPENAI_STD)
    assert torch.allclose(x[0, :, 10, 10], want, atol=1e-4)
    # a preprocessor_config.json sets the resize (shortest edge), the centre crop and the normalisation
    folder = tmp_path / "clip2"
    folder.mkdir()
    for f in tiny_clip.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, "image_mean": [0.5, 0.5, 0.5],
         "image_std": [0.25, 0.25, 0.25]}))
    clip2 = ClipModel(folder)
    ramp = torch.linspace(-1, 1, 20).view(1, 1, 1, 20).expand(1, 3, 20, 20)
    y = clip2.preprocess(ramp)
    assert y.shape == (1, 3, 32, 32)
    full = torch.nn.functional.interpolate((ramp + 1) / 2, size=(40, 40), mode="bicubic", align_corners=False)
    assert torch.allclose(y, (full[:, :, 4:36, 4:36] - 0.5) / 0.25, atol=1e-5)   # centre crop of the resize


def test_clip_folder_from_the_environment_and_errors(tiny_clip, monkeypatch, tmp_path):
    monkeypatch.setenv("MEMORYGAN_CLIP", str(tiny_clip))
    assert ClipModel().folder == tiny_clip
    monkeypatch.delenv("MEMORYGAN_CLIP")
    with pytest.raises(ConfigError, match=r"--clip PATH or set MEMORYGAN_CLIP"):
        ClipModel()
    with pytest.raises(ConfigError, match=r"--clip .*missing: no such folder"):
        ClipModel(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        ClipModel(tmp_path / "empty")


def test_never_downloads(tiny_clip, monkeypatch):
    import transformers

    seen = []
    real = transformers.CLIPModel.from_pretrained.__func__

    def spy(cls, *a, **kw):
        seen.append(kw.get("local_files_only"))
        return real(cls, *a, **kw)
    monkeypatch.setattr(transformers.CLIPModel, "from_pretrained", classmethod(spy))
    ClipModel(tiny_clip)
    assert seen == [True]


def test_text_edit_with_clip_through_the_cli(tiny_clip, tmp_path, capsys):
    G = tiny_generator("ssg", class_names=NAMES)
    G.save_pretrained(tmp_path / "G")
    assert text_score("clip", "red hair", G, clip=tiny_clip).kind == "clip"
    out = tmp_path / "edit"
    rc = main(["edit", "text", "--generator", str(tmp_path / "G"), "--scorer", "clip", "--clip", str(tiny_clip),
               "--prompt", "red hair", "--parts", "hair", "--seeds", "0,1", "--steps", "3", "--crops", "2",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["scorer"].startswith("CLIP") and rec["summary"]["n"] == 2
    assert "success_after" not in rec["summary"]                      # CLIP has no absolute criterion
    capsys.readouterr()
    assert rec["summary"]["loss_after"] == pytest.approx(1 - rec["summary"]["score_after"], abs=1e-5)
    rc = main(["edit", "text", "--generator", str(tmp_path / "G"), "--scorer", "clip", "--clip",
               str(tmp_path / "nope"), "--prompt", "red hair", "--parts", "hair", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1, err


def test_cli_without_a_clip_folder_names_both_ways(tmp_path, capsys, monkeypatch):
    """Neither --clip nor $MEMORYGAN_CLIP: one line naming both ways, exit 2, nothing written."""
    monkeypatch.delenv("MEMORYGAN_CLIP", raising=False)
    G = tiny_generator("ssg", class_names=NAMES)
    G.save_pretrained(tmp_path / "G")
    for cmd in ("text", "region"):
        out = tmp_path / cmd
        rc = main(["edit", cmd, "--generator", str(tmp_path / "G"), "--scorer", "clip", "--prompt", "red hair",
                   "--parts", "hair", "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert "--clip PATH" in err and "MEMORYGAN_CLIP" in err, err
        assert not out.exists()


def test_loading_clip_leaves_device_contexts_working(tiny_clip):
    """In a fresh process (torch caches the device context's factory set once per process): after a CLIP load,
    `with torch.device("meta")` still places torch.linspace on meta (complexity.py builds generators that way)."""
    import subprocess
    import sys

    code = ("import torch\nfrom memorygan.editing.clip import ClipModel\n"
            f"ClipModel({str(tiny_clip)!r})\n"
            "with torch.device('meta'):\n    print(torch.linspace(0, 1, 3).device, torch.zeros(1).device)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["meta", "meta"]


def test_a_clip_text_edit_raises_the_clip_score(tiny_clip):
    """The edit optimises the CLIP loss: on every image the full-view CLIP score of the prompt rises (the loss
    1 - score falls), and only the chosen part's codes move."""
    from memorygan.editing.directions import seed_source
    from memorygan.editing.text import text_edit

    G = tiny_generator("ssg", class_names=NAMES).eval()
    score = text_score("clip", "red hair", G, clip=tiny_clip)
    src = seed_source(G, [0, 1, 2])
    res = text_edit(G, src, score, parts=[3], steps=25, lr=0.05, lambda_seg=0.0, seed=0)
    with torch.no_grad():
        before = score.score(res.before.image, res.before.seg)
        after = score.score(res.after.image, res.after.seg)
    assert bool((after > before + 1e-3).all()), (before, after)
    moved = (res.after.expanded != res.before.expanded).flatten(2).any(-1)      # (B, K)
    assert moved[:, 3].all() and not moved[:, :3].any()

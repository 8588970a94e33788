"""The encoder (issue 28): code groups and units, learning on known answers, resumable training, files refused when
they belong elsewhere, ReStyle passes, `memorygan invert --encoder`, and the demo's instant upload."""
import json

import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.cli import main
from memorygan.editing.codes import load_codes
from memorygan.encoder import (EncoderTrainOptions, build_encoder, encode, known_answer_metrics, load_encoder,
                               save_encoder, train_encoder)
from memorygan.encoder.model import code_groups, render
from memorygan.errors import CheckpointError, ConfigError

QUICK = dict(perceptual_weight=0.0, checkpoint_every=1000, eval_every=1000, eval_samples=4)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def G(arch):
    return tiny_generator(arch).eval().requires_grad_(False)


def test_groups_cover_the_latents_and_heads_fill_them(G):
    """Every latent code is predicted by exactly one group; SSG's shape codes come from the medium level and its
    texture codes from the fine level (W+ is base, then shape/texture interleaved per part)."""
    groups = code_groups(G)
    m = G.map_z(G.sample_z(1, seed=0))["latents"].shape[1]
    assert sorted(i for g in groups for i in g["index"]) == list(range(m))
    if G.arch == "ssg":
        nb, k = G.config.base_layers, G.num_classes
        shape = next(g for g in groups if g["name"] == "shape")
        assert shape["index"] == list(range(nb, nb + 2 * k, 2)) and shape["levels"] == ["medium"]
    E = build_encoder(G, stats_samples=64)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    u = E(x)
    assert u.shape == (3, m, G.config.latent_dim)
    # each code is written by its own head: zero one group's heads and only its codes become 0
    g = groups[-1]
    with torch.no_grad():
        for lv in g["levels"]:
            E.heads[f"{g['name']}_{lv}"].linear.weight.zero_()
    u2 = E(x)
    others = [i for i in range(m) if i not in g["index"]]
    assert torch.all(u2[:, g["index"]] == 0)
    torch.testing.assert_close(u2[:, others], u[:, others])


def test_units_round_trip_and_the_first_pass_sees_the_mean_render(G):
    E = build_encoder(G, stats_samples=200)
    codes = G.map_z(G.sample_z(4, seed=3))["latents"]
    torch.testing.assert_close(E.codes(E.units(codes)), codes, rtol=1e-5, atol=1e-5)
    # the mean codes' render is the first pass's second input
    torch.testing.assert_close(E.mean_image, render(G, "latents", E.mean[None])["image"][0])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(E(x), E(x, E.mean_image[None].expand(2, -1, -1, -1)))
    # spread: SSG shares one mean/std over its W+ codes (one w per sample); MemoryGAN's differ per part
    if G.arch == "ssg":
        assert torch.all(E.std == E.std[:1])
    else:
        assert not torch.allclose(E.std[0], E.std[1])


def test_restyle_passes_add_corrections_from_the_previous_render(G):
    E = build_encoder(G, stats_samples=64)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        two = encode(E, G, x, passes=2)
        u1 = E(x)
        r1 = render(G, "latents", E.codes(u1))["image"]
        u2 = u1 + E(x, r1)
    torch.testing.assert_close(two.units, u2)
    torch.testing.assert_close(two.image, render(G, "latents", E.codes(u2))["image"])
    torch.testing.assert_close(two.expanded, G.expand(E.codes(u2)))
    with pytest.raises(ConfigError, match="passes must be >= 1"):
        encode(E, G, x, passes=0)
    with pytest.raises(ConfigError, match=r"\(B, 3, 32, 32\)"):
        E(torch.zeros(1, 3, 16, 16))


def test_queries_level_is_memorygan_only_and_maps_through_the_generator(arch):
    G = tiny_generator(arch).eval().requires_grad_(False)
    if arch == "ssg":
        with pytest.raises(ConfigError, match="only MemoryGAN has query codes"):
            build_encoder(G, "queries", stats_samples=32)
        return
    E = build_encoder(G, "queries", stats_samples=64)
    with torch.no_grad():
        enc = encode(E, G, torch.zeros(1, 3, 32, 32))
    torch.testing.assert_close(enc.latents, G.mlp_latent(enc.codes))
    assert enc.queries is enc.codes


def test_training_learns_the_known_codes(tmp_path, arch):
    """Code loss only, on a tiny generator: on held-out samples the code error falls below the mean codes' answer
    (about 1 in units of the spread) and the render gets closer to the image; the logged training loss falls."""
    G = tiny_generator(arch).eval().requires_grad_(False)
    before = known_answer_metrics(build_encoder(G), G, 32)
    opts = EncoderTrainOptions(steps=200, batch=16, lr=1e-3, mse_weight=0, seg_weight=0,
                               **dict(QUICK, eval_every=100, eval_samples=32))
    run = train_encoder(G, tmp_path / "E", opts, progress=None)
    E, _ = load_encoder(tmp_path / "E", G)
    after = known_answer_metrics(E, G, 32)
    assert after["code_rms"] < before["code_rms"] - 0.05, (before, after)
    assert after["psnr"] > before["psnr"] + 2, (before, after)
    assert [r["step"] for r in run.log] == [100, 200] and run.log[1]["code"] < run.log[0]["code"]
    assert run.log[-1]["known"] == pytest.approx(after, rel=1e-5)


def test_resume_continues_exactly(tmp_path):
    """4 steps in one go == 2 steps, stop, run again to 4: same weights, optimiser state and log (steps seeded)."""
    G = tiny_generator("memorygan").eval().requires_grad_(False)
    common = dict(batch=2, real_batch=2, perceptual_weight=0.0, eval_every=2, eval_samples=2)
    data = _sample_dataset(tmp_path, G)
    train_encoder(G, tmp_path / "a", EncoderTrainOptions(steps=4, checkpoint_every=4, **common), data=data,
                  progress=None)
    train_encoder(G, tmp_path / "b", EncoderTrainOptions(steps=2, checkpoint_every=2, **common), data=data,
                  progress=None)
    run = train_encoder(G, tmp_path / "b", EncoderTrainOptions(steps=4, checkpoint_every=2, **common), data=data,
                        progress=None)
    assert run.resumed_from == 2
    from safetensors.torch import load_file
    for name in ("encoder.safetensors", "training.safetensors"):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)
    la = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in la] == [r["step"] for r in lb] == [2, 4]
    assert la[-1]["loss"] == pytest.approx(lb[-1]["loss"], rel=1e-5)
    # another setting on the same folder is refused and the folder kept
    before = (tmp_path / "b" / "encoder.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"other settings \(--lr differ"):
        train_encoder(G, tmp_path / "b", EncoderTrainOptions(steps=6, lr=1e-2, **common), data=data, progress=None)
    assert (tmp_path / "b" / "encoder.safetensors").read_bytes() == before


def _sample_dataset(tmp_path, G, n=4):
    from memorygan.inversion.targets import write_sample_targets
    write_sample_targets(G, list(range(500, 500 + n)), tmp_path / "data")
    return tmp_path / "data"


def test_files_refused_with_clear_errors(tmp_path):
    G = tiny_generator("memorygan").eval()
    other = tiny_generator("memorygan", seed=5).eval()
    E = build_encoder(G, stats_samples=32)
    save_encoder(E, tmp_path / "E")
    E2, meta = load_encoder(tmp_path / "E", G)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(E2(x), E(x))
    with pytest.raises(CheckpointError, match="trained for another generator"):
        load_encoder(tmp_path / "E", other)
    with pytest.raises(CheckpointError, match="not an encoder folder"):
        load_encoder(tmp_path)
    (tmp_path / "E" / "encoder.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="encoder.json: not valid JSON"):
        load_encoder(tmp_path / "E")
    # training into a folder of something else refuses before any work, and leaves it alone
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an encoder folder"):
        train_encoder(G, tmp_path / "x", EncoderTrainOptions(steps=1, **QUICK), progress=None)
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="--batch must be >= 1"):
        EncoderTrainOptions(batch=0).check()
    with pytest.raises(ConfigError, match="--delta-weight must be a finite number >= 0"):
        EncoderTrainOptions(delta_weight=-1).check()


def test_e4e_delta_penalty_is_zero_for_one_w():
    """SSG W+ codes drawn from one w have no delta; spreading them apart costs."""
    from memorygan.encoder.train import delta_penalty
    G = tiny_generator("ssg").eval()
    E = build_encoder(G, stats_samples=64)
    w = G.map_z(G.sample_z(2, seed=1))["latents"].detach()
    assert float(delta_penalty(E, E.units(w))) < 1e-10
    w2 = w.clone()
    w2[:, 0] += E.std[0]
    assert float(delta_penalty(E, E.units(w2))) > 0.01


@pytest.fixture
def trained(tmp_path_factory):
    """A MemoryGAN tiny generator folder and a briefly trained encoder of it (shared by the CLI/demo tests)."""
    root = tmp_path_factory.mktemp("enc")
    G = tiny_generator("memorygan").eval()
    gdir = G.save_pretrained(root / "G")
    assert main(["encoder", "train", "--generator", str(gdir), "--out", str(root / "E"), "--steps", "3",
                 "--batch", "2", "--perceptual", "none", "--no-progress", "--device", "cpu",
                 "--eval-every", "3"]) == 0
    return root, gdir


def test_cli_train_then_invert_with_the_encoder_alone(trained, capsys):
    root, gdir = trained
    assert main(["encoder", "train", "--generator", str(gdir), "--out", str(root / "E"), "--steps", "3",
                 "--batch", "2", "--perceptual", "none", "--no-progress", "--device", "cpu",
                 "--eval-every", "3"]) == 0
    assert "already holds an encoder trained for 3 steps" in capsys.readouterr().out
    out = root / "inv"
    assert main(["invert", "--generator", str(gdir), "--encoder", str(root / "E"), "--steps", "0",
                 "--seeds", "7-8", "--out", str(out), "--perceptual", "none", "--no-progress",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "encoder alone: psnr" in printed
    import memorygan
    G, _ = memorygan.load(gdir)
    E, _ = load_encoder(root / "E", G)
    codes = load_codes(out / "seed0007" / "codes.safetensors", G)
    assert codes.level == "latents" and codes.latents is not None      # every edit space applies
    from PIL import Image
    target = torch.from_numpy(np.array(Image.open(out / "targets" / "images" / "seed0007.png"))).permute(
        2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        enc = encode(E, G, target)
    torch.testing.assert_close(codes.latents, enc.latents, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(codes.expanded, G.expand(codes.latents), rtol=1e-5, atol=1e-5)
    m = json.loads((out / "seed0007" / "metrics.json").read_text())
    assert m["encoder"]["passes"] == 1 and m["psnr"] == pytest.approx(m["encoder"]["psnr"])
    # refinement from the encoder's codes keeps going from there (and records both)
    out2 = root / "inv2"
    assert main(["invert", "--generator", str(gdir), "--encoder", str(root / "E"), "--steps", "5", "--level",
                 "latents", "--seeds", "7", "--out", str(out2), "--perceptual", "none", "--no-progress",
                 "--device", "cpu"]) == 0
    m2 = json.loads((out2 / "seed0007" / "metrics.json").read_text())
    assert m2["encoder"]["psnr"] == pytest.approx(m["encoder"]["psnr"], abs=1e-6)


def test_cli_invert_encoder_arguments_refused(trained, capsys):
    root, gdir = trained
    base = ["invert", "--generator", str(gdir), "--seeds", "1", "--perceptual", "none", "--no-progress",
            "--device", "cpu"]
    assert main(base + ["--steps", "0", "--out", str(root / "o1")]) == 2
    assert "both 0 (without --encoder)" in capsys.readouterr().err
    assert main(base + ["--passes", "2", "--out", str(root / "o2")]) == 2
    assert "--passes goes with --encoder" in capsys.readouterr().err
    assert main(base + ["--encoder", str(root / "nope"), "--steps", "0", "--out", str(root / "o3")]) == 2
    assert "no such folder" in capsys.readouterr().err
    other = tiny_generator("memorygan", seed=9).eval().save_pretrained(root / "G9")
    assert main(["invert", "--generator", str(other), "--seeds", "1", "--perceptual", "none", "--no-progress",
                 "--device", "cpu", "--encoder", str(root / "E"), "--steps", "0", "--out", str(root / "o4")]) == 2
    assert "trained for another generator" in capsys.readouterr().err


def test_demo_shows_the_encoder_result_first_then_refines(trained):
    from memorygan.demo.state import DemoState
    import memorygan
    root, gdir = trained
    G, _ = memorygan.load(gdir)
    E, _ = load_encoder(root / "E", G)
    st = DemoState(G, encoder=E)
    img = (np.random.default_rng(0).random((48, 40, 4)) * 255).astype(np.uint8)     # RGBA, another size and aspect
    items = list(st.invert_steps(img, steps=20, poll=0.01))
    views = [v for v in items if not isinstance(v, str)]
    assert len(views) == 2 and all(m.startswith("refining: ") for m in items[1:-1])
    assert views[0].message.startswith("encoded image (encoder, 1 pass(es)")
    assert "refining: 0/20 steps" in views[0].message
    assert views[-1].message.startswith("inverted image (20 steps from the encoder's codes")
    assert st.current.codes.latents is None          # refined expanded codes
    st.undo()
    assert st.current.codes.latents is not None and st.current.label.startswith("encoded image")
    only = list(DemoState(G, encoder=E).invert_steps(img[..., :3], steps=0))
    assert len(only) == 1
    with pytest.raises(ConfigError, match="0 steps needs an encoder"):
        list(DemoState(G).invert_steps(img, steps=0))


def test_init_from_starts_from_another_encoders_weights(tmp_path):
    G = tiny_generator("memorygan").eval().requires_grad_(False)
    a = build_encoder(G, stats_samples=64)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.01)
    save_encoder(a, tmp_path / "a")
    opts = EncoderTrainOptions(steps=1, batch=2, passes=2, lr=1e-9, **QUICK)
    train_encoder(G, tmp_path / "b", opts, progress=None, init_from=tmp_path / "a")
    b, _ = load_encoder(tmp_path / "b", G)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=k)
    assert b.config.passes == 2
    q = build_encoder(G, "queries", stats_samples=32)
    save_encoder(q, tmp_path / "q")
    with pytest.raises(ConfigError, match="an encoder of queries, this run trains --level latents"):
        train_encoder(G, tmp_path / "c", opts, progress=None, init_from=tmp_path / "q")

"""Official SemanticStyleGAN checkpoint import/export, against the independent official-layout reference network
in tests/reference (written from the released key list and DESIGN 7.1 without looking at the project's code)."""
import argparse
import os
import pickle
import random

import pytest
import torch

import memorygan
from memorygan.cli import main
from memorygan.errors import CheckpointError
from memorygan.interop import export_ssg, export_ssg_checkpoint, import_ssg, infer_ssg_config
from memorygan.interop.ssg_official import load_official_generator, read_official_checkpoint
from reference.official_ssg import OfficialSSGGenerator, make_official_checkpoint

ARCH = dict(style_dim=32, local_channels=16, coarse_channels=32, coarse_size=16, min_feat_size=8, channel_max=32,
            transparent_classes=(3,))
TOL = 1e-4


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "ssg.pt"
    ref = make_official_checkpoint(path, 64, 5, seed=0, **ARCH)
    G, cfg = load_official_generator(path)
    return path, ref, G, cfg


def _close(out, ref_out):
    for key in ("image", "seg", "coarse_seg", "depths"):
        diff = (out[key] - ref_out[key]).abs().max().item()
        assert diff < TOL, f"{key} differs by {diff}"


def test_inferred_architecture(official):
    _, _, _, cfg = official
    assert (cfg.arch, cfg.resolution, cfg.num_classes, cfg.latent_dim, cfg.local_channels, cfg.coarse_channels,
            cfg.coarse_size, cfg.min_feat_size, cfg.local_layers, cfg.mapping_layers) == \
        ("ssg", 64, 5, 32, 16, 32, 16, 8, 10, 8)
    assert cfg.transparent_classes == [3] and cfg.base_layers == 2 and cfg.depth_layers == 6


def test_parity_from_one_z_per_image(official):
    """The official convention: z (B, D), mapped once, its w on every W+ code."""
    _, ref, G, _ = official
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, ref_out = G(z, noise_mode="const"), ref([z], randomize_noise=False)
        _close(out, ref_out)
        assert torch.allclose(out.latents, ref_out["w_plus"], atol=1e-6)
        assert torch.equal(out.latents, out.latents[:, :1].expand_as(out.latents))   # one w for every code


def official_choices(seed, batch, parts):
    """The part-wise choices the official `mix_styles` draws after `random.seed(seed)`: parts outer, samples inner."""
    random.seed(seed)
    choice = torch.zeros(batch, parts, dtype=torch.long)
    for k in range(parts):
        for j in range(batch):
            choice[j, k] = random.randint(0, 2)
    return choice


def test_parity_from_a_mixed_pair(official):
    _, ref, G, _ = official
    gen = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(4, 32, generator=gen), torch.randn(4, 32, generator=gen)
    choice = official_choices(11, 4, ref.num_classes)
    assert set(choice.flatten().tolist()) == {0, 1, 2}
    with torch.no_grad():
        random.seed(11)
        ref_out = ref([z1, z2], randomize_noise=False)
        out = G((z1, z2), mix_choice=choice)
        _close(out, ref_out)
        assert torch.allclose(out.latents, ref_out["w_plus"], atol=1e-6)


def test_parity_per_code_z(official):
    """The explicit form: one z per W+ code, each mapped separately."""
    _, ref, G, _ = official
    z = torch.randn(3, ref.n_latent, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _close(G(z, noise_mode="const"), ref(z, randomize_noise=False))


def test_parity_from_w_plus_and_expanded(official):
    _, ref, G, _ = official
    w = torch.randn(2, ref.n_latent, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref_out = ref(w, input_is_latent=True, randomize_noise=False)
        _close(G(latents=w), ref_out)
        expanded = ref.expand_latents(w)
        assert torch.equal(G.expand(w), expanded)
        _close(G(expanded=expanded), ref.synthesis(expanded, randomize_noise=False))


def test_parity_with_truncation_and_composition_mask(official):
    _, ref, G, _ = official
    G.update_w_avg(512)
    gen = torch.Generator().manual_seed(3)
    z, z2 = torch.randn(2, 32, generator=gen), torch.randn(2, 32, generator=gen)
    c = torch.tensor([[1.0, 1, 0, 1, 0], [1, 0, 1, 1, 1]])
    with torch.no_grad():
        ref_out = ref([z], truncation=0.6, truncation_latent=G.w_avg, randomize_noise=False, composition_mask=c)
        _close(G(z, truncation=0.6, composition_mask=c), ref_out)
        random.seed(5)
        ref_out = ref([z, z2], truncation=0.6, truncation_latent=G.w_avg, randomize_noise=False, composition_mask=c)
        _close(G((z, z2), mix_choice=official_choices(5, 2, 5), truncation=0.6, composition_mask=c), ref_out)


def test_mean_latent_matches_official(official):
    """The truncation centre is the mean of the mapped z (official `mean_latent`), one vector for every code."""
    _, ref, G, _ = official
    G.update_w_avg(4096, seed=0)
    torch.manual_seed(0)
    assert G.w_avg.shape == (1, 32)
    assert torch.allclose(G.w_avg, ref.mean_latent(20000), atol=0.03)


def test_export_round_trip_through_official_layout(official, tmp_path):
    path, ref, G, _ = official
    exported = export_ssg(G)
    assert set(exported) == set(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(exported[k], v), k
    out = tmp_path / "again.pt"
    export_ssg_checkpoint(G, out)
    G2, cfg2 = load_official_generator(out)
    assert cfg2 == G.config
    for k, v in G.state_dict().items():
        if k not in ("w_avg", "w_avg_count"):
            assert torch.equal(G2.state_dict()[k], v), k
    ref2 = OfficialSSGGenerator(64, 5, **ARCH)
    ref2.load_state_dict(read_official_checkpoint(out)[0], strict=True)  # the reference accepts our export


def test_import_cli_writes_a_loadable_generator(official, tmp_path, capsys):
    path, ref, _, _ = official
    assert main(["import-ssg", str(path), "--out", str(tmp_path / "imp"), "--w-avg-samples", "64"]) == 0
    assert "K=5" in capsys.readouterr().out
    G, cfg = memorygan.load(tmp_path / "imp")
    assert int(G.w_avg_count) == 64
    z = torch.randn(1, ref.n_latent, 32)
    with torch.no_grad():
        _close(G(z), ref(z, randomize_noise=False))
    # existing output is not overwritten without --overwrite
    assert main(["import-ssg", str(path), "--out", str(tmp_path / "imp")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export-ssg", str(tmp_path / "imp"), "--out", str(tmp_path / "exp.pt")]) == 0
    assert torch.equal(read_official_checkpoint(tmp_path / "exp.pt")[0]["pos_embed.weights"],
                       ref.state_dict()["pos_embed.weights"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _save(obj, path):
    torch.save(obj, path)
    return path


def _bad_import(path, tmp_path, match):
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match=match):
        import_ssg(path, out)
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())  # no half-written temp folder


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.pt"
    p.write_text("hello")
    _bad_import(p, tmp_path, "not a PyTorch checkpoint")
    _bad_import(tmp_path / "missing.pt", tmp_path, "no such file")
    _bad_import(_save({"model": {}}, tmp_path / "other.pt"), tmp_path, "no 'g_ema'")
    _bad_import(_save([1, 2], tmp_path / "list.pt"), tmp_path, "expected a dict")


def test_pickle_with_code_is_refused(tmp_path):
    p = tmp_path / "evil.pt"
    with open(p, "wb") as f:
        pickle.dump({"g_ema": {}, "args": _Evil()}, f)
    _bad_import(p, tmp_path, "refused to load")
    p2 = _save({"g_ema": {"x": torch.zeros(1)}, "args": _Evil()}, tmp_path / "evil2.pt")
    _bad_import(p2, tmp_path, r"refused to load.*(posix|os)\.system")
    # a known Namespace is fine (it is what official checkpoints hold)
    sd, args = read_official_checkpoint(_save({"g_ema": {"x": torch.zeros(1)}, "args": argparse.Namespace(size=8)},
                                              tmp_path / "ok.pt"))
    assert args.size == 8


def test_missing_extra_and_misshaped_tensors(official, tmp_path):
    path, _, _, _ = official
    ckpt = torch.load(path, weights_only=False)
    sd = dict(ckpt["g_ema"])
    missing = dict(sd)
    del missing["local_nets.2.linears.3.conv.modulation.bias"]
    _bad_import(_save({**ckpt, "g_ema": missing}, tmp_path / "m.pt"), tmp_path,
                r"1 missing tensor\(s\): local_nets\.2\.linears\.3\.conv\.modulation\.bias")
    extra = dict(sd, **{"render_net.extra.weight": torch.zeros(3)})
    _bad_import(_save({**ckpt, "g_ema": extra}, tmp_path / "e.pt"), tmp_path, r"unexpected tensor\(s\): render_net\.extra")
    shaped = dict(sd)
    shaped["local_nets.1.to_depth.conv.weight"] = torch.zeros(2, 16, 1, 1)
    _bad_import(_save({**ckpt, "g_ema": shaped}, tmp_path / "s.pt"), tmp_path,
                r"mis-shaped.*local_nets\.1\.to_depth\.conv\.weight: expected \(1, 16, 1, 1\), got \(2, 16, 1, 1\)")
    no_pos = {k: v for k, v in sd.items() if k != "pos_embed.weights"}
    _bad_import(_save({**ckpt, "g_ema": no_pos}, tmp_path / "p.pt"), tmp_path, "unknown layout: missing pos_embed")
    kern = dict(sd)
    kern["render_net.convs.0.blur.kernel"] = torch.ones(4, 4)
    _bad_import(_save({**ckpt, "g_ema": kern}, tmp_path / "k.pt"), tmp_path, "blur kernel")


def test_paper_layout_keys_infer_the_released_model():
    """The released 512 px / 13-class key list (shared/reference) infers the official architecture."""
    import pathlib
    tsv = pathlib.Path(__file__).resolve().parents[3] / "shared" / "reference" / "ssg_official_g_ema_keys_512_K13.tsv"
    if not tsv.exists():
        pytest.skip(f"{tsv} not present")
    sd = {}
    for line in tsv.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")
        sd[key] = torch.empty(eval(shape), device="meta")
    cfg = infer_ssg_config(sd, argparse.Namespace(transparent_dims=[10, 12]))
    assert (cfg.resolution, cfg.num_classes, cfg.coarse_size, cfg.min_feat_size, cfg.channel_base, cfg.channel_max) == \
        (512, 13, 64, 16, 32768, 512)
    with torch.device("meta"):
        G = memorygan.models.SemanticStyleGAN(cfg)
    exported = export_ssg(G)
    assert {k: tuple(v.shape) for k, v in exported.items()} == {k: tuple(v.shape) for k, v in sd.items()}


def test_export_of_a_memorygan_generator_is_refused_in_one_line(tmp_path, capsys):
    from helpers import tiny_generator
    folder = tiny_generator("memorygan").save_pretrained(tmp_path / "g")
    assert main(["export-ssg", str(folder), "--out", str(tmp_path / "official.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("memorygan export-ssg: error: export to the official SemanticStyleGAN layout needs an 'ssg' "
                   "generator; this one is 'memorygan' (MemoryGAN has no official counterpart)")
    assert not (tmp_path / "official.pt").exists()

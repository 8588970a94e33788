"""`memorygan analyze report`: two tiny training runs (MemoryGAN, SSG) evaluated side by side."""
import json

import numpy as np
import pytest
import torch
from helpers import TINY_PRESET

from memorygan.cli import main
from memorygan.errors import ConfigError


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from memorygan.data.synth import synthesize
    from memorygan.metrics.probe import train_probe
    from memorygan.training import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    data = synthesize("portraits", root / "data", n=16, size=32, seed=0).path
    train_probe(data, steps=5, batch_size=4, base_channels=4, progress=False)
    out = {}
    for arch in ("memorygan", "ssg"):
        preset = root / f"{arch}.json"
        preset.write_text(json.dumps(dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"], arch=arch))))
        train(data=str(data), preset=str(preset), out=str(root / arch), batch=4, steps=1, sample_every=0,
              checkpoint_every=0, progress=False, threads=1)
        out[arch] = root / arch
    yield root, out
    torch.set_num_threads(before)


def test_report_writes_tables_figures_and_numbers(runs, capsys):
    root, r = runs
    out = root / "eval"
    md = root / "docs" / "evaluation.md"
    rc = main(["analyze", "report", str(r["memorygan"]), str(r["ssg"]), "--labels", "MemoryGAN,SSG", "--out", str(out),
               "--markdown", str(md), "--num", "8", "--num-smse", "3", "--num-leakage", "2", "--num-embed", "6",
               "--num-correlate", "5", "--no-progress", "--threads", "1"])
    assert rc == 0
    rec = json.loads((out / "evaluation.json").read_text())
    assert list(rec["runs"]) == ["MemoryGAN", "SSG"] and rec["command"].startswith("memorygan analyze report")
    for label, arch in (("MemoryGAN", "memorygan"), ("SSG", "ssg")):
        r_ = rec["runs"][label]
        assert r_["arch"] == arch and r_["step"] == 1
        assert 0 <= r_["metrics"]["consistency"]["mask_miou"] <= 1 and r_["metrics"]["dfid"]["domain_fid"] >= 0
        assert r_["metrics"]["dfid"]["num_samples"] == 8
        names = r_["figure_parts"]
        assert names[:3] == ["background", "skin", "hair"]            # portraits: the paper's figure parts
        # SMSE: one entry per part after the background, from the raw per-sample values saved beside it
        raw = np.load(out / label.lower() / "smse_values.npy")
        assert raw.shape == (12, 3) and list(r_["smse"])[0] == "skin"
        finite = raw[0][np.isfinite(raw[0])]
        if finite.size:
            assert r_["smse"]["skin"]["mean"] == pytest.approx(float(finite.mean()), rel=1e-5)
        assert set(r_["leakage"]["leakage"]) == set(r_["smse"]) | {"background"}
        spaces = set(r_["correlation_summary"])
        assert spaces == ({"query", "latent"} if arch == "memorygan" else {"latent"})
        for f in ("compose.png", "embed.png", "correlate.png", "interpolate-0-1.png", "mix-both-skin.png"):
            assert (out / label.lower() / f).is_file(), f
    assert (out / "smse.png").is_file() and (out / "leakage.png").is_file()
    text = md.read_text()
    assert "| MemoryGAN |" in text and "| SSG |" in text and "SMSE per part" in text and "Leakage per part" in text
    assert "](../eval/smse.png)" in text          # links relative to the markdown page
    assert "Inception FID/KID/IS need" in text     # said plainly when no weights were given


def test_report_bad_input(runs, tmp_path, capsys):
    from memorygan.analysis.report import write_evaluation_report

    root, r = runs
    with pytest.raises(ConfigError, match="1 label"):
        write_evaluation_report([r["memorygan"], r["ssg"]], ["only"], tmp_path / "x")
    with pytest.raises(ConfigError, match="distinct"):
        write_evaluation_report([r["memorygan"], r["ssg"]], ["a", "a"], tmp_path / "x")
    assert main(["analyze", "report", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "is not a folder" in capsys.readouterr().err

"""`memorygan probe train|eval` and `memorygan metrics` (and its deprecated `domain` form) through
memorygan.cli.main."""
import json
import shutil

import pytest
import torch

from helpers import tiny_generator
from memorygan.cli import main
from memorygan.metrics.domain import DomainMetrics
from memorygan.metrics import compute_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(trained, tmp_path):
    """A private copy of the trained dataset (probe/ included): commands write caches into it."""
    root, _ = trained
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data"


def test_probe_train_and_eval(scenes32, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(scenes32, root)
    rc = main(["probe", "train", "--data", str(root), "--steps", "4", "--batch", "4", "--channels", "4",
               "--seed", "1", "--quiet", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "held-out mIoU" in out and "c0003" in out
    assert sorted(p.name for p in (root / "probe").iterdir()) == ["probe.json", "probe.safetensors"]
    meta = json.loads((root / "probe" / "probe.json").read_text())
    assert meta["steps"] == 4 and meta["base_channels"] == 4 and meta["seed"] == 1

    assert main(["probe", "eval", "--data", str(root), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["miou"] == pytest.approx(meta["heldout_miou"]) and list(res["iou"]) == meta["classes"]


def test_probe_errors_are_reported(scenes32, tmp_path, capsys):
    assert main(["probe", "eval", "--data", str(scenes32)]) == 2
    err = capsys.readouterr().err
    assert "memorygan probe: error:" in err and "has no trained probe" in err
    assert main(["probe", "train", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["probe", "train", "--data", str(scenes32), "--steps", "0"])
    assert "--steps: expected an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["metrics", "domain", "--help"])
    assert e.value.code == 0 and "mask consistency" in " ".join(capsys.readouterr().out.split())


def test_metrics_domain_json(data, tmp_path, capsys):
    root = data  # a copy: the command writes the probe's real-statistics cache
    G = tiny_generator("memorygan", seed=2).eval()
    G.save_pretrained(tmp_path / "G")
    rc = main(["metrics", "domain", "--generator", str(tmp_path / "G"), "--data", str(root), "--num", "6",
               "--seed", "3", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    want = DomainMetrics(root, root).evaluate(G, num_samples=6, seed=3)
    assert res["num_samples"] == 6 and res["seed"] == 3
    for key in ("domain_fid", "domain_kid", "domain_kid_std", "mask_miou"):
        assert res[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key


# ---------------------------------------------------------------------------------------------------- memorygan metrics

def make_run(tmp_path, data, G):
    from memorygan.checkpoint import save_generator
    from memorygan.training.loop import RUN_FORMAT
    from memorygan.training.options import TrainOptions

    run = tmp_path / "run"
    run.mkdir()
    opts = TrainOptions(data=str(data), out=str(run), steps=100)
    (run / "config.json").write_text(json.dumps({"format": RUN_FORMAT, "version": 1, "options": opts.to_dict()}))
    save_generator(G, run / "checkpoints" / "step-00000040" / "generator", extra={"training": {"step": 40}})
    return run


def test_metrics_generator_json(data, tmp_path, capsys):
    G = tiny_generator("memorygan", seed=2).eval()
    G.save_pretrained(tmp_path / "G")
    names = "dfid,dkid,consistency,smse,leakage"
    rc = main(["metrics", "--generator", str(tmp_path / "G"), "--data", str(data), "--metrics", names, "--n", "6",
               "--batch", "3", "--seed", "7", "--json", "--no-progress", "--threads", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res) == names.split(",")
    want = compute_metrics(names, generator=G, data=data, n=6, batch_size=3, seed=7)
    assert res["dfid"]["domain_fid"] == pytest.approx(want["dfid"]["domain_fid"], rel=1e-9)
    assert res["dkid"]["domain_kid"] == pytest.approx(want["dkid"]["domain_kid"], rel=1e-9, abs=1e-12)
    assert res["consistency"]["mask_miou"] == pytest.approx(want["consistency"]["mask_miou"], rel=1e-9)
    assert res["smse"]["smse"].keys() == want["smse"]["smse"].keys() and res["smse"]["num_samples"] == 6
    assert res["leakage"]["leakage"].keys() == want["leakage"]["leakage"].keys()


def test_metrics_run_appends_lines_and_prints_a_table(data, tmp_path, capsys):
    run = make_run(tmp_path, data, tiny_generator("ssg", seed=4).eval())
    for seed in ("1", "2"):
        assert main(["metrics", "--run", str(run), "--metrics", "dfid,consistency", "--n", "4", "--seed", seed,
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "checkpoint step-00000040 (step 40); appended to metric-dfid.jsonl, metric-consistency.jsonl" in out
    assert any(line.split()[:1] == ["dfid"] for line in out.splitlines())
    assert "consistency per class:" in out
    rows = [json.loads(line) for line in (run / "metric-dfid.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [1, 2] and all(r["step"] == 40 and r["num_samples"] == 4 for r in rows)
    assert rows[0]["snapshot"].endswith("step-00000040") and "domain_fid" in rows[0]["results"]
    assert len((run / "metric-consistency.jsonl").read_text().splitlines()) == 2
    assert not (run / "metrics.jsonl").exists()


def test_metrics_inception_weights_end_to_end(data, tmp_path, capsys, inception_file):
    """kid and is with the real network architecture (random weights from a file) on 10 samples, 4 real images."""
    G = tiny_generator("memorygan", seed=2).eval()
    G.save_pretrained(tmp_path / "G")
    rc = main(["metrics", "--generator", str(tmp_path / "G"), "--data", str(data), "--metrics", "kid,is",
               "--n", "10", "--num-real", "4", "--batch", "5", "--inception-weights", str(inception_file), "--json",
               "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["kid"]["kid_subset_size"] == 4 and res["kid"]["num_real"] == 4 and res["is"]["is_splits"] == 10
    assert res["is"]["is"] >= 1.0 and res["kid"]["extractor"] == "inception"
    assert [p.name.split("-")[0] for p in (data / ".memorygan-cache").iterdir()] == ["inception"]


@pytest.mark.parametrize("args, message", [
    (["--metrics", "dfid,fud"], "unknown metric 'fud' (--metrics); known metrics: fid, kid, is, dfid, dkid, "
                                "consistency, smse, leakage, ifid, presence, augleak"),
    ([], "--metrics is required"),
    (["--metrics", "dfid", "--num-real", "49"], "--num-real 49 is larger than the 48 images of dataset"),
    (["--metrics", "kid", "--n", "20", "--kid-subset", "30", "--inception-weights", "INCEPTION"],
     "KID subset size 30 (--kid-subset) is larger than the 20 generated images (--n)"),
    (["--metrics", "is", "--n", "5", "--inception-weights", "INCEPTION"], "IS with 10 splits needs at least 10 images"),
    (["--metrics", "fid"], "no Inception weights: pass --inception-weights or set MEMORYGAN_INCEPTION_WEIGHTS"),
    (["--metrics", "fid", "--inception-weights", "WRONG"], "wrong.pth: not FID InceptionV3 weights"),
    (["--metrics", "fid", "--inception-weights", "MISSING"], "missing.pth: Inception weights file not found"),
    (["--metrics", "dfid", "--data", "K3"], "the generator has 4 classes (parts) but dataset"),
])
def test_metrics_bad_inputs(data, tmp_path, capsys, monkeypatch, inception_file, args, message):
    monkeypatch.delenv("MEMORYGAN_INCEPTION_WEIGHTS", raising=False)
    tiny_generator("memorygan").save_pretrained(tmp_path / "G")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, wrong)
    k3 = tmp_path / "k3"
    if "K3" in args:
        from memorygan.data.synth import synthesize
        synthesize("scenes", k3, n=3, size=32, seed=0, num_classes=3)
    subst = {"INCEPTION": str(inception_file), "WRONG": str(wrong), "MISSING": str(tmp_path / "missing.pth"),
             "K3": str(k3)}
    args = [subst.get(a, a) for a in args]
    if "--data" not in args:
        args += ["--data", str(data)]
    assert main(["metrics", "--generator", str(tmp_path / "G"), "--no-progress", *args]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("memorygan metrics: error:") and message in err, err


def test_metrics_bad_sources(data, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32), (i * 50, 0, 0)).save(folder / f"{i}.png")
    assert main(["metrics", "--images", str(folder), "--data", str(data), "--metrics", "dfid,consistency"]) == 2
    assert "consistency need(s) a generator (--generator or --run); --images gives only images" in \
        capsys.readouterr().err
    assert main(["metrics", "--images", str(folder), "--data", str(data), "--metrics", "dfid", "--n", "4"]) == 2
    assert "4 images were asked for (--n) but image folder" in capsys.readouterr().err
    assert main(["metrics", "--images", str(folder), "--data", str(data), "--metrics", "dfid", "--json",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["dfid"]["num_samples"] == 3
    (folder / "3.png").write_bytes(b"broken")
    assert main(["metrics", "--images", str(folder), "--data", str(data), "--metrics", "dfid"]) == 2
    assert "cannot read image" in capsys.readouterr().err

    run = tmp_path / "run"
    run.mkdir()
    assert main(["metrics", "--run", str(run), "--metrics", "dfid"]) == 2
    assert "has no checkpoint (no checkpoints/step-* folder)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one source only
        main(["metrics", "--run", str(run), "--images", str(folder), "--metrics", "dfid"])
    assert "not allowed with argument" in capsys.readouterr().err

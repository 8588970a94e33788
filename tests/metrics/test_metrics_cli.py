"""`memorygan probe train|eval` and `memorygan metrics domain` through memorygan.cli.main."""
import json
import shutil

import pytest

from helpers import tiny_generator
from memorygan.cli import main
from memorygan.metrics.domain import DomainMetrics

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_metrics_domain_json(trained, tmp_path, capsys):
    root, _ = trained
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

"""The metrics registry: names, one shared pass, image folders, bad inputs, runs and their JSON lines."""
import json
import shutil

import pytest
import torch

from helpers import tiny_generator
from memorygan.checkpoint import save_generator
from memorygan.errors import CheckpointError, ConfigError, DatasetError
from memorygan.metrics.domain import DomainMetrics
from memorygan.metrics.fidelity import compute_fidelity
from memorygan.metrics.inception import ENV_VAR
from memorygan.metrics import compute_metrics, evaluate_run, format_results, run_snapshot
from memorygan.metrics.jsonl import append_line, append_metric_lines, read_metric_lines
from memorygan.metrics.registry import get_metric, metric_names
from memorygan.metrics.samples import generated_batches

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = ["fid", "kid", "is", "dfid", "dkid", "consistency", "smse", "leakage", "ifid", "presence", "augleak"]


class CountingG(torch.nn.Module):
    """A generator that counts its forward calls (the shared pass must call it once per batch)."""

    def __init__(self, G):
        super().__init__()
        self.G, self.calls = G, 0

    @property
    def config(self):
        return self.G.config

    def sample_z(self, *args, **kwargs):
        return self.G.sample_z(*args, **kwargs)

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.G(*args, **kwargs)


@pytest.fixture
def data(trained, tmp_path):
    """A private copy of the trained dataset (probe/ included): the tests write caches."""
    root, _ = trained
    shutil.copytree(root, tmp_path / "data")
    return tmp_path / "data"


def make_run(tmp_path, data, G=None, steps=(20,)):
    """A training-run folder as the training loop writes it: config.json and checkpoints/step-N/generator/."""
    from memorygan.training.loop import RUN_FORMAT
    from memorygan.training.options import TrainOptions

    run = tmp_path / "run"
    run.mkdir()
    opts = TrainOptions(data=str(data), out=str(run), steps=100)
    (run / "config.json").write_text(json.dumps({"format": RUN_FORMAT, "version": 1, "options": opts.to_dict()}))
    for step in steps:
        save_generator(G if G is not None else tiny_generator("memorygan", seed=step),
                       run / "checkpoints" / f"step-{step:08d}" / "generator",
                       extra={"training": {"step": step, "kimg": step / 1000}})
    return run


# ---------------------------------------------------------------------------------------------------- names

def test_registered_names_and_unknown_metric():
    assert metric_names() == ALL
    assert get_metric("KID").std_key == "kid_std" and get_metric("consistency").needs_generator
    with pytest.raises(ConfigError, match="unknown metric 'fud' \\(--metrics\\); known metrics: fid, kid, is, dfid, "
                                          "dkid, consistency, smse, leakage, ifid, presence, augleak"):
        compute_metrics("fid,fud", generator=tiny_generator())
    with pytest.raises(ConfigError, match="no metric given"):
        compute_metrics(" , ", generator=tiny_generator())


# ---------------------------------------------------------------------------------------------------- one pass

def test_one_pass_feeds_every_metric(data, tmp_path, tiny_extractor):
    G = CountingG(tiny_generator("memorygan", seed=3).eval())
    ext = tiny_extractor()
    res = compute_metrics("is,dfid,fid,kid,dkid,consistency", generator=G, data=data, n=12, batch_size=4, seed=2,
                          inception=ext, cache_dir=tmp_path / "cache")
    assert list(res) == ["is", "dfid", "fid", "kid", "dkid", "consistency"]  # the order asked for
    assert G.calls == 3  # 12 samples in batches of 4, once for all six metrics
    assert ext.calls == 12 + 3  # the 48 real images (batches of 4), then the 3 generated batches

    # the same numbers as each computed on its own
    want = DomainMetrics(data, data).evaluate(G.G, num_samples=12, batch_size=4, seed=2)
    assert res["dfid"]["domain_fid"] == want["domain_fid"]
    assert (res["dkid"]["domain_kid"], res["dkid"]["domain_kid_std"]) == (want["domain_kid"], want["domain_kid_std"])
    assert res["consistency"]["mask_miou"] == want["mask_miou"]
    assert res["consistency"]["mask_iou"] == want["mask_iou"]
    alone = compute_fidelity(tiny_extractor(), data=data, generator=G.G, num_samples=12, seed=2, batch_size=4,
                             cache_dir=tmp_path / "cache")
    for key in ("fid", "kid", "kid_std", "is", "is_std"):
        assert res[key.split("_")[0]][key] == alone[key], key
    for name in res:
        assert res[name]["num_samples"] == 12 and res[name]["seconds"] > 0
    assert res["fid"]["num_real"] == res["dkid"]["num_real"] == 48 and res["kid"]["kid_subset_size"] == 12

    # the real statistics are cached: a second computation reads them
    ext2 = tiny_extractor()
    compute_metrics("fid", generator=G, data=data, n=4, batch_size=4, inception=ext2, cache_dir=tmp_path / "cache")
    assert ext2.calls == 1


def test_image_folder_source(data, tmp_path, tiny_extractor):
    """A folder of a generator's PNG samples measures what the generator does (quantised identically)."""
    from PIL import Image

    G = tiny_generator("ssg", seed=5).eval()
    folder = tmp_path / "samples"
    folder.mkdir()
    for i, img in enumerate(torch.cat([x for x, _ in generated_batches(G, 10, seed=1)])):
        pixels = ((img + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    kw = dict(data=data, inception=tiny_extractor(), cache_dir=tmp_path / "cache")
    from_g = compute_metrics("dfid,dkid,fid,is", generator=G, n=10, seed=1, **kw)
    from_images = compute_metrics("dfid,dkid,fid,is", images=folder, **kw)
    for name, key in (("dfid", "domain_fid"), ("dkid", "domain_kid"), ("fid", "fid"), ("is", "is")):
        assert from_images[name][key] == pytest.approx(from_g[name][key], rel=1e-5, abs=1e-9), name
        assert from_images[name]["num_samples"] == 10
    assert compute_metrics("dfid", images=folder, data=data, n=6)["dfid"]["num_samples"] == 6

    for names in ("consistency", "dfid,smse", "leakage"):
        with pytest.raises(ConfigError, match="need\\(s\\) a generator \\(--generator or --run\\); --images"):
            compute_metrics(names, images=folder, data=data)
    # the probe measures 32x32 images only
    Image.new("RGB", (16, 16)).save(folder / "zzz.png")
    with pytest.raises(DatasetError, match="image .*zzz.png is 16x16 but the probe measures the 32x32 images"):
        compute_metrics("dfid", images=folder, data=data)


# ---------------------------------------------------------------------------------------------------- bad inputs

def test_bad_inputs_fail_before_any_sample(data, tmp_path, monkeypatch, tiny_extractor, inception_file):
    G = CountingG(tiny_generator("memorygan").eval())
    ext = tiny_extractor()
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(CheckpointError, match="--inception-weights") as e:
        compute_metrics("dfid,kid", generator=G, data=data, n=4)
    assert ENV_VAR in str(e.value) and "never downloaded" in str(e.value)
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}, wrong)
    with pytest.raises(CheckpointError, match="resnet.pth: not FID InceptionV3 weights; .*missing tensor"):
        compute_metrics("is", generator=G, n=10, inception_weights=wrong)
    with pytest.raises(ConfigError, match="fid, dfid need\\(s\\) the real dataset \\(--data\\)"):
        compute_metrics("fid,is,dfid", generator=G, inception=ext)
    with pytest.raises(ConfigError, match="exactly one source of images"):
        compute_metrics("is", inception=ext)
    with pytest.raises(ConfigError, match="exactly one source of images"):
        compute_metrics("is", generator=G, images=tmp_path, inception=ext)
    with pytest.raises(DatasetError, match="--num-real 49 is larger than the 48 images of dataset"):
        compute_metrics("fid", generator=G, data=data, num_real=49, inception=ext)
    with pytest.raises(ConfigError, match="KID subset size 40 \\(--kid-subset\\) is larger than the 30 real"):
        compute_metrics("kid", generator=G, data=data, n=50, num_real=30, kid_subset_size=40, inception=ext,
                        cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="KID subset size 40 \\(--kid-subset\\) is larger than the 20 generated"):
        compute_metrics("kid", generator=G, data=data, n=20, kid_subset_size=40, inception=ext,
                        cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="IS with 10 splits needs at least 10 images, got 6 \\(--n\\)"):
        compute_metrics("is", generator=G, n=6, inception=ext)
    with pytest.raises(ConfigError, match="--n must be at least 2"):
        compute_metrics("dfid", generator=G, data=data, n=1)
    # a dataset whose number of classes differs from the model's
    from memorygan.data.synth import synthesize
    k3 = synthesize("scenes", tmp_path / "k3", n=3, size=32, seed=0, num_classes=3).path
    with pytest.raises(ConfigError, match="the generator has 4 classes \\(parts\\) but dataset .*k3 \\(--data\\) "
                                          "has 3"):
        compute_metrics("fid", generator=G, data=k3, inception=ext)
    with pytest.raises(ConfigError, match="generator has 4 classes"):
        compute_metrics("smse", generator=G, data=k3)
    # the probe is missing
    no_probe = tmp_path / "no_probe"
    shutil.copytree(data, no_probe, ignore=shutil.ignore_patterns("probe"))
    with pytest.raises(CheckpointError, match="has no trained probe.*memorygan probe train"):
        compute_metrics("consistency", generator=G, data=no_probe, n=4)
    assert G.calls == 0  # every error came before the first sample


# ---------------------------------------------------------------------------------------------------- smse / leakage

def test_smse_and_leakage_through_the_registry():
    smse_mod = pytest.importorskip("memorygan.metrics.smse")
    leakage_mod = pytest.importorskip("memorygan.metrics.leakage")
    G = tiny_generator("memorygan", seed=6).eval()
    res = compute_metrics(["smse", "leakage"], generator=G, n=4, batch_size=2, seed=3)
    want_s = smse_mod.smse(G, num_samples=4, seed=3, batch_size=2)
    want_l = leakage_mod.leakage(G, num_samples=4, seed=3, batch_size=2)
    assert res["smse"]["smse_mean"] == pytest.approx(want_s["smse_mean"], nan_ok=True)
    assert res["smse"]["smse"].keys() == want_s["smse"].keys()
    assert res["leakage"]["leakage_mean"] == pytest.approx(want_l["leakage_mean"], nan_ok=True)
    assert res["smse"]["num_samples"] == res["leakage"]["num_samples"] == 4


# ---------------------------------------------------------------------------------------------------- runs

def test_append_metric_lines_keeps_earlier_lines(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0}\n')
    first = {"dfid": {"domain_fid": 1.5, "num_samples": 8, "seconds": 0.1},
             "consistency": {"mask_miou": float("nan"), "mask_iou": {"a": None}, "num_samples": 8, "seconds": 0.2}}
    files = append_metric_lines(run, first, snapshot=run / "checkpoints" / "step-00000010", step=10, seed=1)
    assert [f.name for f in files] == ["metric-dfid.jsonl", "metric-consistency.jsonl"]
    before = (run / "metric-dfid.jsonl").read_bytes()
    append_metric_lines(run, {"dfid": {"domain_fid": 0.5, "num_samples": 8, "seconds": 0.1}}, step=20,
                        truncation=0.7)
    after = (run / "metric-dfid.jsonl").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2
    rows = read_metric_lines(run, "dfid")
    assert [r["results"]["domain_fid"] for r in rows] == [1.5, 0.5] and [r["step"] for r in rows] == [10, 20]
    assert set(rows[0]) == {"metric", "results", "snapshot", "step", "num_samples", "seed", "truncation",
                            "timestamp", "seconds"}
    assert rows[0]["snapshot"].endswith("step-00000010") and rows[0]["seed"] == 1 and rows[1]["truncation"] == 0.7
    assert rows[0]["num_samples"] == 8 and rows[0]["seconds"] == 0.1 and rows[1]["timestamp"] >= rows[0]["timestamp"]
    assert read_metric_lines(run, "consistency")[0]["results"]["mask_miou"] is None  # NaN -> null (strict JSON)
    assert (run / "metrics.jsonl").read_text() == '{"step": 0}\n'  # the training loop's file is not touched

    # a line cut short by a killed writer stays as it was; the next line starts on a line of its own
    path = run / "metric-kid.jsonl"
    path.write_bytes(b'{"metric": "kid", "results": {"kid": 0.1}}\n{"metric": "kid", "res')
    append_line(path, {"metric": "kid", "results": {"kid": 0.2}})
    lines = path.read_text().splitlines()
    assert lines == ['{"metric": "kid", "results": {"kid": 0.1}}', '{"metric": "kid", "res',
                     '{"metric": "kid", "results": {"kid": 0.2}}']


def test_evaluate_run_uses_the_newest_checkpoint_and_the_runs_dataset(data, tmp_path):
    G = tiny_generator("memorygan", seed=30).eval()
    run = make_run(tmp_path, data, steps=(10,))
    save_generator(G, run / "checkpoints" / "step-00000030" / "generator", extra={"training": {"step": 30}})
    snapshot, step = run_snapshot(run)
    assert snapshot.name == "step-00000030" and step == 30
    ev = evaluate_run(run, "dfid,consistency", n=6, batch_size=3, seed=4)  # data and probe from config.json
    want = DomainMetrics(data, data).evaluate(G, num_samples=6, batch_size=3, seed=4)
    assert ev.results["dfid"]["domain_fid"] == pytest.approx(want["domain_fid"], rel=1e-9)
    assert ev.snapshot == snapshot and ev.step == 30
    assert [f.name for f in ev.files] == ["metric-dfid.jsonl", "metric-consistency.jsonl"]
    evaluate_run(run, "dfid", n=6, batch_size=3, seed=5)
    rows = read_metric_lines(run, "dfid")
    assert len(rows) == 2 and [r["seed"] for r in rows] == [4, 5] and rows[0]["step"] == 30
    assert rows[0]["snapshot"] == str(snapshot) and rows[0]["num_samples"] == 6
    assert len(read_metric_lines(run, "consistency")) == 1


def test_run_errors(data, tmp_path):
    with pytest.raises(CheckpointError, match="run folder .*nowhere \\(--run\\) does not exist"):
        evaluate_run(tmp_path / "nowhere", "dfid")
    run = make_run(tmp_path, data, steps=())
    with pytest.raises(CheckpointError, match="run .* \\(--run\\) has no checkpoint \\(no checkpoints/step-\\* "
                                              "folder\\)"):
        evaluate_run(run, "dfid")
    save_generator(tiny_generator(), run / "checkpoints" / "step-00000005" / "generator")
    cfg = json.loads((run / "config.json").read_text())
    cfg["options"]["data"] = str(tmp_path / "moved")
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DatasetError, match="the dataset of run .*moved \\(from its config.json\\), does not exist; "
                                           "pass --data"):
        evaluate_run(run, "dfid")
    ev = evaluate_run(run, "dfid", data=data, n=4, append=False)  # --data overrides it
    assert ev.step == 5 and ev.files == [] and not list(run.glob("metric-*.jsonl"))


def test_format_results():
    text = format_results({
        "fid": {"fid": 12.5, "num_samples": 100, "num_real": 48, "seconds": 1.25},
        "kid": {"kid": 0.01, "kid_std": 0.002, "num_samples": 100, "num_real": 48, "seconds": 1.25},
        "consistency": {"mask_miou": 0.5, "mask_iou": {"sky": 0.75, "tree": None}, "num_samples": 100,
                        "seconds": 0.5},
        "smse": {"smse": {"tree": {"mean": 0.1, "std": 0.05, "count": 100}}, "smse_mean": 0.1,
                 "num_samples": 100, "seconds": 2.0},
    })
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "value", "std", "samples", "real", "seconds"]
    assert lines[1].split() == ["fid", "12.5", "-", "100", "48", "1.2"]
    assert lines[2].split() == ["kid", "0.01", "0.002", "100", "48", "1.2"]
    i = lines.index("consistency per class:")
    assert lines[i + 1:i + 4] == ["  class   IoU", "  sky    0.75", "  tree      -"]
    i = lines.index("smse per part, in order of addition:")
    assert [line.split() for line in lines[i + 1:i + 3]] == [["part", "mean", "std", "count"],
                                                             ["tree", "0.1", "0.05", "100"]]

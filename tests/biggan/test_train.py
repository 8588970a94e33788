"""BigGAN training: the run folder, bit-exact resume, the monitors and collapse detection, the CLI."""
import json

import pytest
import torch
from safetensors.torch import load_file

from memorygan.biggan.checkpoint import load_biggan
from memorygan.biggan.monitors import CollapseMonitor
from memorygan.biggan.train import BigGANTrainOptions, read_metrics, resume, train
from memorygan.cli import main
from memorygan.errors import CheckpointError, ConfigError
from memorygan.fileio import read_lines

TINY = {"g_ch": 8, "d_ch": 8, "dim_z": 20, "shared_dim": 8}


def opts(data, out, **kw):
    base = dict(data=str(data), out=str(out), generator_overrides=dict(TINY), batch=4, steps=4, log_every=1,
                sample_every=0, checkpoint_every=2, threads=1, progress=False, standing_batches=2, ema_start=2)
    base.update(kw)
    return BigGANTrainOptions(**base)


def test_run_folder(cat64, tmp_path):
    res = train(opts(cat64, tmp_path / "run", sample_every=2))
    run = tmp_path / "run"
    assert res.steps == 4 and res.kimg == pytest.approx(4 * 4 / 1000)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "biggan" and cfg["generator"]["num_classes"] == 10
    assert cfg["generator"]["class_names"][0] == "beach"
    rows = read_lines(run / "stats.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"d_real", "d_fake", "d_loss", "g_loss", "sv_g_max", "sv_d_median"} <= rows[0].keys()
    sv = read_lines(run / "sv.jsonl")
    assert len(sv) == 4 and "G/linear" in sv[0] and "D/embed" in sv[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    assert (run / "samples" / "step-00000004.png").is_file()
    G, gcfg = load_biggan(run)
    assert gcfg.class_names[1] == "forest"
    x = G.generate(torch.randn(2, gcfg.dim_z), torch.tensor([0, 9]))
    assert x.shape == (2, 3, 64, 64) and torch.isfinite(x).all()


def test_resume_is_bit_exact(cat64, tmp_path):
    train(opts(cat64, tmp_path / "a", steps=4, d_accum=2, g_accum=2))
    train(opts(cat64, tmp_path / "b", steps=2, d_accum=2, g_accum=2))
    resume(tmp_path / "b", more_steps=2, threads=1, progress=False)
    for f in ("G.safetensors", "D.safetensors", "generator/generator.safetensors"):
        a = load_file(str(tmp_path / "a" / "checkpoints" / "step-00000004" / f))
        b = load_file(str(tmp_path / "b" / "checkpoints" / "step-00000004" / f))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f
    la, lb = read_lines(tmp_path / "a" / "stats.jsonl"), read_lines(tmp_path / "b" / "stats.jsonl")
    assert [r["g_loss"] for r in la] == [r["g_loss"] for r in lb]


def test_accumulation_counts_images(cat64, tmp_path):
    res = train(opts(cat64, tmp_path / "run", steps=2, d_accum=3, g_accum=2, d_steps=2))
    assert res.kimg == pytest.approx(2 * 2 * 3 * 4 / 1000)


def test_monitor_silent_on_slow_growth_fires_on_a_jump():
    m = CollapseMonitor(window=5, sv_ratio=4.0, d_floor=0.05)
    for step in range(40):                                  # healthy: sigma grows 3 % per row, D loss near 1.5
        assert m.update(step, 1.5, {"G/linear": 1.0 * 1.03 ** step, "D/linear": 2.0}) == []
    w = m.update(40, 1.5, {"G/linear": 1.03 ** 39 * 10, "D/linear": 2.0})
    assert len(w) == 1 and "G/linear" in w[0] and "blew up" in w[0]
    assert m.update(41, 1.5, {"G/linear": 1.03 ** 39 * 11, "D/linear": 2.0}) == []   # once, not every row


def test_monitor_d_loss_collapse():
    m = CollapseMonitor(window=3, d_floor=0.05)
    assert m.update(1, 0.01, {}) == [] and m.update(2, 0.01, {}) == []
    w = m.update(3, 0.0, {})
    assert len(w) == 1 and "D's loss" in w[0]
    assert m.update(4, 0.0, {}) == []
    m.update(5, 1.0, {})
    m2 = CollapseMonitor(window=3, d_floor=0.05)
    m2.load_state(m.state())
    assert m2.state() == m.state()


def test_collapse_is_detected_in_training_and_a_healthy_run_is_silent(cat64, tmp_path):
    """Provoke a collapse: G frozen (lr 0) while D trains fast, so D's hinge loss goes to 0. The same run with the
    preset's learning rates stays silent."""
    with pytest.warns(UserWarning, match="D's loss has stayed below 0.1"):
        collapsed = train(opts(cat64, tmp_path / "c", steps=40, lr_g=0.0, lr_d=1e-2, checkpoint_every=0,
                               monitor_window=5, d_floor=0.1))
    assert any("D's loss" in w for w in collapsed.warnings)
    rows = read_lines(tmp_path / "c" / "stats.jsonl")
    assert any("warnings" in r for r in rows)
    assert min(r["d_loss"] for r in rows) < 0.1
    healthy = train(opts(cat64, tmp_path / "h", steps=40, checkpoint_every=0, monitor_window=5, d_floor=0.1))
    assert healthy.warnings == []


def test_option_errors(cat64, tmp_path):
    with pytest.raises(ConfigError, match="--steps: give --steps, --kimg or --minutes"):
        train(opts(cat64, tmp_path / "x", steps=None))
    with pytest.raises(ConfigError, match="--batch: must be an integer >= 1"):
        train(opts(cat64, tmp_path / "x", batch=0))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        train(opts(cat64, tmp_path / "full"))
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="makes 128 px"):
        train(opts(cat64, tmp_path / "y", preset="biggan-128", generator_overrides={**TINY, "dim_z": 120}))


def test_resume_refuses_part_based_runs(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"format": "memorygan-run", "options": {}}))
    with pytest.raises(CheckpointError, match="not a BigGAN run"):
        resume(tmp_path / "run")


def test_cli_train_generate_evaluate(cat64, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["biggan", "train", "--data", str(cat64), "--out", str(run), "--steps", "2", "--batch", "4",
                 "--set", "g_ch=8", "--set", "d_ch=8", "--set", "dim_z=20", "--set", "shared_dim=8",
                 "--sample-every", "0", "--threads", "1", "--no-progress"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    out = tmp_path / "grid.png"
    assert main(["biggan", "generate", str(run), "--out", str(out), "--classes", "beach,night", "--seeds", "0-2",
                 "--truncation", "0.5"]) == 0
    from PIL import Image
    assert Image.open(out).size == (2 + 3 * 66, 2 + 2 * 66)
    assert main(["biggan", "generate", str(run), "--out", str(out), "--classes", "volcano"]) == 2
    assert "'volcano' is not a class" in capsys.readouterr().err
    assert main(["biggan", "classifier", "--data", str(cat64), "--steps", "5", "--quiet"]) == 0
    assert main(["biggan", "evaluate", str(run), "--data", str(cat64), "--per-class", "4",
                 "--truncations", "1,0.5", "--out", str(tmp_path / "e.json"), "--plot", str(tmp_path / "e.png")]) == 0
    rows = json.loads((tmp_path / "e.json").read_text())
    assert [r["truncation"] for r in rows] == [1.0, 0.5] and (tmp_path / "e.png").is_file()
    assert set(rows[0]["per_class"]) == {"beach", "forest", "city", "desert", "snowfield", "lake", "night", "orchard",
                                         "garden", "harbour"}
    assert main(["biggan", "train", "--resume", str(run), "--more-steps", "1", "--threads", "1",
                 "--no-progress"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out


def test_metrics_during_training(cat64, tmp_path):
    from memorygan.biggan.classifier import train_classifier
    train_classifier(cat64, tmp_path / "clf", steps=5, progress=False)
    train(opts(cat64, tmp_path / "run", steps=2, metrics_every=2, metrics_per_class=3,
               classifier=str(tmp_path / "clf")))
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 1 and rows[0]["step"] == 2 and rows[0]["num_samples"] == 30
    assert 0 <= rows[0]["accuracy"] <= 1 and rows[0]["inception_score"] >= 1 and "beach" in rows[0]["per_class_fid"]


def test_monitor_variety_collapse_on_the_first_cpu_runs_recall():
    """The recall of docs/biggan.md's first run (every 250 steps) fires at step 750, where it first falls below half
    its best (0.288 < 0.599 / 2), clears at 1000 (0.336) and fires again at 1250 (0.238), as the other rules: once
    until it clears. A recall that wanders without halving stays silent."""
    m = CollapseMonitor(recall_ratio=0.5)
    first_run = [0.599, 0.341, 0.288, 0.336, 0.238, 0.256, 0.117, 0.157]
    fired = {250 * (i + 1): m.update_recall(250 * (i + 1), r) for i, r in enumerate(first_run)}
    assert [s for s, w in fired.items() if w] == [750, 1250] and "recall fell to 0.288" in fired[750][0]
    m2 = CollapseMonitor(recall_ratio=0.5)
    m2.load_state(m.state())
    assert m2.state() == m.state() and m2.update_recall(2250, 0.1) == []          # still collapsed: said once
    healthy = CollapseMonitor(recall_ratio=0.5)
    assert all(healthy.update_recall(s, r) == [] for s, r in enumerate([0.3, 0.45, 0.33, 0.5, 0.26, float("nan")]))


def test_variety_collapse_reaches_the_metrics_log(cat64, tmp_path, monkeypatch):
    """Training with --metrics-every: a recall that halves warns, in the metrics row and the run's warnings."""
    from memorygan.biggan import evaluate
    from memorygan.biggan.classifier import train_classifier

    train_classifier(cat64, tmp_path / "clf", steps=5, progress=False)
    real = evaluate.evaluate_generator
    recalls = iter([0.6, 0.2])

    def fake(*a, **k):
        return dict(real(*a, **k), recall=next(recalls))
    monkeypatch.setattr(evaluate, "evaluate_generator", fake)
    with pytest.warns(UserWarning, match="recall fell to 0.2"):
        res = train(opts(cat64, tmp_path / "run", steps=4, metrics_every=2, metrics_per_class=2,
                         classifier=str(tmp_path / "clf"), checkpoint_every=0))
    rows = read_metrics(tmp_path / "run")
    assert "warnings" not in rows[0] and "variety collapse" in rows[1]["warnings"][0]
    assert any("recall fell" in w for w in res.warnings)


def test_torchrun_two_processes_equal_one_with_accumulation(cat64, tmp_path):
    """DDP semantics: 2 processes with micro-batch 4 give the weights of 1 process with 2 accumulations of 4 (the
    same data and latents; BatchNorm statistics per micro-batch either way)."""
    import os
    import subprocess
    import sys
    single = train(opts(cat64, tmp_path / "single", steps=2, d_accum=2, g_accum=2, checkpoint_every=0))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "memorygan",
           "biggan", "train", "--data", str(cat64), "--out", str(out), "--steps", "2", "--batch", "4",
           "--accum", "1", "--ema-start", "2", "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "0",
           "--threads", "1", "--no-progress"] + [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    for f in ("G.safetensors", "D.safetensors"):
        a = load_file(str(single.checkpoint / f))
        b = load_file(str(out / "checkpoints" / "step-00000002" / f))
        # BatchNorm's running statistics are per process (the thesis's choice): rank 0 saw its own micro-batches
        stats = [k for k in a if k.endswith(("stored_mean", "stored_var"))]
        worst = max((a[k] - b[k]).abs().max().item() for k in a if k not in stats)
        assert worst < 1e-5, f"{f}: {worst}"
        if f == "G.safetensors":
            assert len(stats) > 10 and max((a[k] - b[k]).abs().max().item() for k in stats) > 1e-3


def test_cli_direction_and_paint(cat64, tmp_path, capsys):
    run = tmp_path / "run"
    train(opts(cat64, run, steps=1, checkpoint_every=0))
    assert main(["biggan", "direction", str(run), "--assessor", "brightness", "--out", str(tmp_path / "d"),
                 "--steps", "3", "--batch", "4", "--eval-seeds", "0-3"]) == 0
    ev = json.loads((tmp_path / "d" / "direction.json").read_text())["info"]["evaluation"]
    assert ev["seeds"] == 4 and "slope" in ev and "class_kept" not in ev and ev["scale"] == "within-class"
    assert ev["scale_from"] == "samples"
    # the unit from the real images: 2 std of brightness inside the dataset's classes, whatever the generator
    from memorygan.biggan.edits import brightness
    from memorygan.data.labelled import LabelledDataset
    ds = LabelledDataset(cat64)
    b = brightness(torch.stack([ds.load(i)["image"] for i in range(len(ds.names))])).double()
    pooled = torch.stack([b[ds.labels == c].var() for c in range(10)]).mean().sqrt()
    assert main(["biggan", "direction", str(run), "--assessor", "brightness", "--out", str(tmp_path / "d2"),
                 "--steps", "2", "--batch", "4", "--eval-seeds", "0-1", "--scale-from", str(cat64)]) == 0
    meta = json.loads((tmp_path / "d2" / "direction.json").read_text())
    assert meta["scale"] == pytest.approx(2 * float(pooled), rel=1e-5)
    assert meta["info"]["scale_from"] == str(cat64) and meta["info"]["evaluation"]["scale_from"] == str(cat64)
    from memorygan.biggan.classifier import train_classifier
    train_classifier(cat64, tmp_path / "clf", steps=2, progress=False)
    assert main(["biggan", "direction-eval", str(run), str(tmp_path / "d"), "--classifier", str(tmp_path / "clf"),
                 "--eval-seeds", "0-5", "--alphas=-0.2,0.1", "--out", str(tmp_path / "ev.json")]) == 0
    again = json.loads((tmp_path / "ev.json").read_text())
    assert again["seeds"] == 6 and again["alphas"] == [-0.2, 0.1] and set(again["mean_change_at"]) == {"-0.2", "0.1"}
    assert 0 <= again["class_kept_all"] <= 1 and 0 <= again["source_accuracy"] <= 1
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["biggan", "direction-eval", str(run), str(tmp_path / "d"), "--alphas", "0,0.5"])
    assert "alphas must be non-zero" in capsys.readouterr().err
    out = tmp_path / "paint.png"
    assert main(["biggan", "paint", str(run), "--class", "night", "--box", "8,8,40,40", "--target", "0.9",
                 "--iterations", "2", "--popsize", "4", "--adam-steps", "1", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["class"] == "night" and res["psnr_outside"] > 10
    assert main(["biggan", "paint", str(run), "--class", "night", "--box", "8,8,80,40", "--target", "0.9",
                 "--out", str(out)]) == 2
    assert "--box '8,8,80,40': needs" in capsys.readouterr().err


def test_unconditional_baseline(cat64, tmp_path):
    from memorygan.biggan.classifier import train_classifier
    train_classifier(cat64, tmp_path / "clf", steps=5, progress=False)
    res = train(opts(cat64, tmp_path / "run", steps=2, unconditional=True, metrics_every=2, metrics_per_class=2,
                     classifier=str(tmp_path / "clf")))
    G, cfg = load_biggan(res.run)
    assert cfg.num_classes == 1 and cfg.class_names == ["all"]
    row = read_metrics(tmp_path / "run")[0]
    assert row["num_samples"] == 20 and "accuracy" not in row
    assert sum(row["class_share"].values()) == pytest.approx(1.0)
    assert main(["biggan", "evaluate", str(res.run), "--data", str(cat64), "--classifier", str(tmp_path / "clf"),
                 "--per-class", "2"]) == 0

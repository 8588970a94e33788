"""The training loop end to end on a tiny config: run folder, resume equivalence, robustness, CLI."""
import json
import os
import signal

import pytest
import torch

import memorygan
from memorygan.cli import main
from memorygan.errors import CheckpointError, ConfigError, DatasetError
from memorygan.training import loop, phases
from memorygan.training.loop import Trainer, TrainingError, TrainingInterrupted, latest_checkpoint, resume, train


from helpers import assert_weights_close as _assert_close, checkpoint_weights as _weights


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_run_folder_contents(opts_for, arch):
    res = train(opts_for(arch, steps=3, sample_every=2, checkpoint_every=2, keep=2))
    run = res.run_dir
    assert res.step == 3 and res.images == 12 and res.stopped_by == "steps"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["format"] == "memorygan-run" and cfg["generator"]["arch"] == arch
    assert cfg["generator"]["num_classes"] == 13                       # taken from the dataset
    assert cfg["options"]["steps"] == 3
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    needed = {"loss_d", "loss_g", "loss_mask", "score_real", "score_fake", "lr", "sec_per_kimg", "kimg"}
    assert needed <= rows[0].keys()
    assert {"r1_img", "r1_mask", "pl_penalty"} <= rows[0].keys()        # step 0 is a reg step for both
    assert ("kl" in rows[0]) == (arch == "memorygan")
    assert all(torch.isfinite(torch.tensor(v)) for r in rows for v in r.values() if isinstance(v, float))
    # samples at 0, 2 and the end; checkpoints at 0, 2, 3 with keep=2
    assert sorted(p.name for p in (run / "samples").glob("step-*.png")) == \
        ["step-00000000.png", "step-00000002.png", "step-00000003.png"]
    assert (run / "samples" / "depth-00000003.png").is_file()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step-00000002", "step-00000003"]
    assert res.checkpoint == run / "checkpoints" / "step-00000003"
    # the generator folder loads without the training code; the state with weights_only=True
    G, gcfg = memorygan.load(res.checkpoint / "generator")
    assert gcfg.arch == arch and int(G.w_avg_count) > 0
    state = torch.load(res.checkpoint / "state.pt", weights_only=True)
    assert state["step"] == 3 and state["images"] == 12
    assert list(run.glob("tensorboard/events.*")), "no TensorBoard event file"


def test_resume_keeps_the_recorded_architecture_when_the_preset_changes(opts_for, tmp_path):
    """A preset edited after a run started (a new discriminator recipe, say) does not change the resumed run: its
    networks come from its config.json (the weights would not fit otherwise)."""
    preset = json.loads(open(opts_for().preset).read())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(preset))
    half = train(opts_for(out="half", steps=2, preset=str(path), checkpoint_every=2))
    preset["discriminator"] = dict(preset["discriminator"], channel_max=16, arch="projected")
    preset["generator"] = dict(preset["generator"], local_channels=4)
    path.write_text(json.dumps(preset))
    res = resume(half.run_dir, steps=3)
    assert res.step == 3
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert cfg["discriminator"]["arch"] == "dual" and cfg["generator"]["local_channels"] == 8


def test_resume_equals_uninterrupted(opts_for):
    """2N steps in one go == N steps, then --resume for N more (weights equal to float tolerance)."""
    full = train(opts_for(out="full", steps=6, mixing=0.5))
    half = train(opts_for(out="half", steps=3, mixing=0.5))
    assert half.step == 3
    res = resume(half.run_dir, steps=6)
    assert res.step == 6 and res.images == 24
    _assert_close(_weights(full.checkpoint), _weights(res.checkpoint))
    st_full = torch.load(full.checkpoint / "state.pt", weights_only=True)
    st_res = torch.load(res.checkpoint / "state.pt", weights_only=True)
    assert st_full["pl_mean"] == pytest.approx(st_res["pl_mean"], rel=1e-5)
    steps = [json.loads(x)["step"] for x in (res.run_dir / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_drops_stats_logged_after_the_checkpoint(opts_for):
    res = train(opts_for(steps=2))
    with open(res.run_dir / "stats.jsonl", "a") as f:            # a line from a step that was never checkpointed
        f.write(json.dumps({"step": 3, "loss_d": 1.0}) + "\n")
    resume(res.run_dir, steps=3)
    steps = [json.loads(x)["step"] for x in (res.run_dir / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_resume_refuses_changing_the_recipe(opts_for):
    res = train(opts_for(steps=1))
    with pytest.raises(ConfigError, match="cannot change lr"):
        resume(res.run_dir, steps=2, lr=0.1)
    with pytest.raises(CheckpointError, match="not a training run"):
        resume(res.run_dir / "samples", steps=2)


def test_nonfinite_steps_are_skipped_then_training_stops(opts_for, monkeypatch):
    res = train(opts_for(steps=2, checkpoint_every=2))
    good = _weights(res.checkpoint)
    real = phases.g_nonsaturating_loss
    monkeypatch.setattr(phases, "g_nonsaturating_loss", lambda pred: real(pred) * float("nan"))
    with pytest.raises(TrainingError, match=r"3 consecutive steps.*phase G.*step-00000002"):
        resume(res.run_dir, steps=20, max_nonfinite=3)
    # nothing was written over the last good checkpoint, and it still loads
    assert latest_checkpoint(res.run_dir).name == "step-00000002"
    _assert_close(good, _weights(res.checkpoint), atol=0)
    events = [json.loads(x) for x in (res.run_dir / "stats.jsonl").read_text().splitlines()]
    events = [e for e in events if e.get("event") == "nonfinite"]
    assert [e["streak"] for e in events] == [1, 2, 3] and {e["phase"] for e in events} == {"G"}


def test_single_nonfinite_step_is_skipped_and_training_continues(opts_for, monkeypatch):
    real = phases.d_logistic_loss
    calls = {"n": 0}

    def flaky(r, f):
        calls["n"] += 1
        out = real(r, f)
        return out * float("inf") if calls["n"] == 2 else out
    monkeypatch.setattr(phases, "d_logistic_loss", flaky)
    tr = Trainer(opts_for(steps=3))
    d_before = None

    orig_step = tr.train_step

    def step():
        nonlocal d_before
        if tr.step == 1:
            d_before = {k: v.clone() for k, v in tr.D.state_dict().items()}
        orig_step()
        if tr.step == 2:   # the D step of step index 1 was skipped: D unchanged by it (no D reg at odd steps)
            assert all(torch.equal(d_before[k], v) for k, v in tr.D.state_dict().items())
    tr.train_step = step
    res = tr.fit()
    assert res.step == 3 and tr.nonfinite_total == 1 and tr.nonfinite_streak == 0
    assert all(torch.isfinite(p).all() for p in tr.G.parameters())


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_a_skipped_phase_changes_nothing(opts_for, monkeypatch, impl):
    """A non-finite path-length step is skipped on the device (fused Adam's found_inf; the foreach fallback reads the
    flag back): G's weights, its Adam moments and step counts and the path-length mean keep their values, while the
    other phases of the same step train; the skip is logged at the next flush."""
    from memorygan.training import optim
    if impl == "foreach":
        monkeypatch.setattr(optim, "adam_implementation", lambda params: {"foreach": True})
    tr = Trainer(opts_for(steps=4, g_reg_every=1, d_reg_every=1, log_every=100))
    assert bool(tr.g_opt.param_groups[0]["fused"]) == (impl == "fused")
    tr.train_step()
    real = phases.g_path_length
    monkeypatch.setattr(phases, "g_path_length", lambda *a, **k: (lambda p, m, ln: (p * float("nan"), m, ln))(
        *real(*a, **k)))
    # run G main as usual, then look at G right before the (bad) path-length phase
    before = {}
    orig_finish = tr._finish_phase

    def finish(name, module, opt, losses):
        if name == "Greg":
            before["G"] = {k: v.clone() for k, v in tr.G.state_dict().items()}
            before["opt"] = {id(p): {k: v.clone() for k, v in st.items()} for p, st in opt.state.items()}
            before["pl_mean"] = torch.as_tensor(tr.pl_mean).clone()
        return orig_finish(name, module, opt, losses)
    monkeypatch.setattr(tr, "_finish_phase", finish)
    d_before = {k: v.clone() for k, v in tr.D.state_dict().items()}
    tr.train_step()
    assert all(torch.equal(before["G"][k], v) for k, v in tr.G.state_dict().items())
    for p, st in tr.g_opt.state.items():
        assert all(torch.equal(before["opt"][id(p)][k], v) for k, v in st.items())
    assert torch.equal(torch.as_tensor(tr.pl_mean), before["pl_mean"])
    assert not all(torch.equal(d_before[k], v) for k, v in tr.D.state_dict().items())     # D trained
    assert tr.nonfinite_total == 0                                                       # not read back yet
    tr._flush_nonfinite()
    assert tr.nonfinite_total == 1 and tr.nonfinite_streak == 1 and tr._nonfinite_phase == "Greg"
    monkeypatch.setattr(phases, "g_path_length", real)
    tr.train_step()
    tr._flush_nonfinite()
    assert tr.nonfinite_total == 1 and tr.nonfinite_streak == 0
    assert not all(torch.equal(before["G"][k], v) for k, v in tr.G.state_dict().items())  # G trains again
    tr.close()


def test_interrupted_checkpoint_write_keeps_the_previous_one(opts_for, monkeypatch):
    res = train(opts_for(steps=2, checkpoint_every=2))
    before = _weights(res.checkpoint)
    listing = sorted(p.name for p in (res.run_dir / "checkpoints").iterdir())
    assert listing == ["step-00000000", "step-00000002"]

    def broken(*a, **k):
        raise OSError("disk full")
    tr = Trainer(opts_for(steps=4), resume=True)
    tr.train_step()
    monkeypatch.setattr(loop, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        tr.save_checkpoint()
    after = sorted(p.name for p in (res.run_dir / "checkpoints").iterdir())
    assert after == listing, "a partial checkpoint folder was left behind"
    assert latest_checkpoint(res.run_dir) == res.checkpoint
    _assert_close(before, _weights(res.checkpoint), atol=0)
    memorygan.load(res.checkpoint / "generator")


def test_ctrl_c_writes_a_checkpoint_and_resumes(opts_for):
    tr = Trainer(opts_for(steps=10))
    orig = tr.train_step

    def step():
        orig()
        if tr.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
    tr.train_step = step
    with pytest.raises(TrainingInterrupted, match="--resume"):
        tr.fit()
    assert latest_checkpoint(tr.run).name == "step-00000002"
    res = resume(tr.run, steps=3)
    assert res.step == 3


def test_bad_inputs_are_refused_before_any_work(opts_for, tmp_path, tiny_data):
    with pytest.raises(ConfigError, match="unknown preset"):
        train(opts_for(preset="no-such-preset", out="a"))
    with pytest.raises(DatasetError, match="does not exist"):
        train(opts_for(data=str(tmp_path / "missing"), out="b"))
    with pytest.raises(ConfigError, match="divisible"):
        train(opts_for(batch=6, accum=4, out="c"))
    with pytest.raises(ConfigError, match="duration"):
        train(opts_for(steps=None, out="d"))
    for name in "abcd":
        assert not (tmp_path / name).exists()
    existing = tmp_path / "e"
    existing.mkdir()
    (existing / "keep.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not empty"):
        train(opts_for(out="e"))
    assert (existing / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]


def test_bf16_and_clipping_run(opts_for):
    res = train(opts_for(steps=2, bf16=True, clip_grad=1.0, accum=2))
    rows = [json.loads(x) for x in (res.run_dir / "stats.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss_g"])) for r in rows)


@pytest.mark.parametrize("bf16", [False, True])
def test_clipping_bounds_the_update(opts_for, bf16):
    """Adam is blind to the scale of a gradient except through its eps (1e-8): a gradient clipped to a norm of
    1e-12 moves every weight about 1e4x less than the unclipped one. A loop that ignores --clip-grad moves them
    the same."""
    def moved(clip, out):
        tr = Trainer(opts_for(steps=1, out=out, bf16=bf16, clip_grad=clip, d_reg_every=16, g_reg_every=16))
        before = {k: v.detach().clone() for k, v in tr.G.named_parameters()}
        tr.fit()
        return torch.stack([(v.detach() - before[k]).abs().max() for k, v in tr.G.named_parameters()]).max()
    free, clipped = moved(None, "free"), moved(1e-12, "clipped")
    assert float(free) > 1e-4
    assert float(clipped) < 1e-3 * float(free)


def test_discriminator_learns_to_separate_real_from_generated(opts_for):
    """After a few steps at a high lr, real scores sit above generated ones (both start near 0)."""
    res = train(opts_for(steps=12, lr=0.01, d_reg_every=16, g_reg_every=16, mixing=0.0))
    rows = [json.loads(x) for x in (res.run_dir / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["score_real"] > rows[-1]["score_fake"]


def test_cli_train_and_resume(tiny_data, tiny_preset, tmp_path, capsys):
    out = tmp_path / "cli-run"
    rc = main(["train", "--data", str(tiny_data), "--preset", tiny_preset["ssg"], "--out", str(out), "--steps", "1",
               "--batch", "4", "--no-progress", "--threads", "1", "--set", "local_layers=4"])
    assert rc == 0 and "trained 1 steps" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["generator"]["local_layers"] == 4
    assert main(["train", "--resume", str(out), "--steps", "2", "--no-progress"]) == 0
    assert latest_checkpoint(out).name == "step-00000002"
    assert main(["train", "--resume", str(out), "--lr", "0.5"]) == 2
    assert "cannot change lr" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny_data), "--out", str(tmp_path / "x")]) == 2
    assert "duration" in capsys.readouterr().err


def test_load_accepts_run_and_checkpoint_folders(opts_for):
    res = train(opts_for(steps=1))
    G1, _ = memorygan.load(res.run_dir)
    G2, _ = memorygan.load(res.checkpoint)
    G3, _ = memorygan.load(res.checkpoint / "generator")
    z = G1.sample_z(2, 0)
    assert torch.equal(G1(z).image, G3(z).image) and torch.equal(G2(z).image, G3(z).image)

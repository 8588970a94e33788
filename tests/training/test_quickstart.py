"""`memorygan quickstart` end to end on a tiny scale (the real one is the README's first command)."""
import json

from memorygan.cli import main
from memorygan.quickstart import run_quickstart


def test_quickstart_tiny(tmp_path, tiny_preset):
    out = tmp_path / "qs"
    res = run_quickstart(out, minutes=0.03, n=20, size=32, preset=tiny_preset["memorygan"], probe_steps=5,
                         metrics_every=2, metrics_samples=8, workers=1, progress=False, log=lambda *a: None)
    assert (out / "data" / "dataset.json").is_file() and (out / "data" / "probe" / "probe.json").is_file()
    assert 0.0 <= res.probe_miou <= 1.0
    for name in ("samples.png", "composition.png", "metrics.png", "summary.md"):
        assert (res.report / name).is_file(), name
    metrics = [json.loads(x) for x in (res.run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 0 and len(metrics) >= 2
    assert {"domain_fid", "domain_kid", "mask_miou"} <= metrics[0].keys()
    assert "Domain FID went from" in (res.report / "summary.md").read_text()
    # a second call reuses data and probe and continues the run for the remaining minutes
    import torch
    from memorygan.training.loop import latest_checkpoint
    state = torch.load(latest_checkpoint(res.run) / "state.pt", weights_only=True)
    step_before, probe_mtime = state["step"], (out / "data" / "probe" / "probe.json").stat().st_mtime
    run_quickstart(out, minutes=state["train_seconds"] / 60 + 0.001, n=20, size=32, preset=tiny_preset["memorygan"], probe_steps=5,
                          metrics_every=2, metrics_samples=8, workers=1, progress=False, log=lambda *a: None)
    step_after = torch.load(latest_checkpoint(res.run) / "state.pt", weights_only=True)["step"]
    assert step_after > step_before
    assert (out / "data" / "probe" / "probe.json").stat().st_mtime == probe_mtime


def test_quickstart_rejects_bad_minutes(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "q"), "--minutes", "0"]) == 2
    assert "--minutes must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()

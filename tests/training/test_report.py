import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.errors import CheckpointError
from memorygan.training.loop import train
from memorygan.training.report import metrics_figure, plot_runs, run_logs, write_report


def test_report_of_a_run(opts_for, tmp_path):
    res = train(opts_for(steps=2))
    # pretend metrics were logged, to check the table and the ratio line
    rows = [{"step": 0, "kimg": 0.0, "train_minutes": 0.0, "domain_fid": 200.0, "domain_kid": 0.5, "mask_miou": 0.1},
            {"step": 2, "kimg": 0.008, "train_minutes": 0.1, "domain_fid": 50.0, "domain_kid": 0.1, "mask_miou": 0.6}]
    (res.run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = write_report(res.run_dir)
    assert out == res.run_dir / "report"
    text = (out / "summary.md").read_text()
    assert "2 steps" in text and "25.0% of the initial value" in text and "0.600 mIoU" in text
    assert "one per seed 0..15, as `memorygan generate RUN --seeds 0-15`" in text
    samples = np.asarray(Image.open(out / "samples.png"))
    assert samples.shape[0] == 2 * (32 + 2) + 2                    # images row and mask row
    # the caption is true: the grid is what `memorygan generate` draws for seeds 0-15
    assert main(["generate", str(res.run_dir), "--seeds", "0-15", "--out", str(tmp_path / "gen.png")]) == 0
    np.testing.assert_array_equal(samples, np.asarray(Image.open(tmp_path / "gen.png")))
    comp = np.asarray(Image.open(out / "composition.png"))
    assert comp.shape[1] == 72 + 13 * (32 + 2) + 2                  # row labels, then one column per part
    assert comp.shape[0] == 28 + 3 * 3 * (32 + 2) + 2               # title and part names, 3 seeds x 3 rows
    assert np.asarray(Image.open(out / "metrics.png")).std() > 0
    stats, metrics = run_logs(res.run_dir)
    assert [s["step"] for s in stats] == [1, 2] and len(metrics) == 2


def test_comparison_plot_cli(opts_for, tmp_path):
    a = train(opts_for(out="a", steps=1)).run_dir
    b = train(opts_for("ssg", out="b", steps=1)).run_dir
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "cmp"), "--labels", "MemoryGAN,SSG"]) == 0
    assert (tmp_path / "cmp" / "metrics.png").is_file()
    assert main(["report", str(a), str(b)]) == 2
    png = plot_runs([a], tmp_path / "one.png")
    assert png.is_file()


def test_report_needs_a_checkpoint(tmp_path, opts_for):
    with pytest.raises(CheckpointError, match="not a training run"):
        write_report(tmp_path)


def test_comparison_plot_x_axes(opts_for, tmp_path):
    """Runs at different batch sizes compare per optimizer step (`--x step`), per image (`kimg`) or per minute: each
    metric line's x values are that field of the run's metrics log."""
    a = train(opts_for(out="a", steps=1)).run_dir
    rows = [{"step": 0, "kimg": 0.0, "train_minutes": 0.0, "domain_fid": 9.0, "mask_miou": 0.1},
            {"step": 500, "kimg": 32.0, "train_minutes": 60.0, "domain_fid": 2.0, "mask_miou": 0.2},
            {"step": 1000, "kimg": 64.0, "train_minutes": 130.0, "domain_fid": 1.0, "mask_miou": 0.3}]
    (a / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for x, want in (("step", [0, 500, 1000]), ("kimg", [0.0, 32.0, 64.0]), ("minutes", [0.0, 60.0, 130.0])):
        fig = metrics_figure([a], ["b64"], x=x)
        fid, kid, miou, _ = fig.axes
        assert list(fid.lines[0].get_xdata()) == want and list(fid.lines[0].get_ydata()) == [9.0, 2.0, 1.0]
        assert list(miou.lines[0].get_xdata()) == want and not kid.lines     # no KID in this log: no line
        assert fid.get_xlabel().startswith({"step": "training steps", "kimg": "thousands", "minutes": "training min"}[x])
    with pytest.raises(ValueError, match="x must be one of"):
        metrics_figure([a], x="epochs")
    assert main(["report", str(a), str(a), "--out", str(tmp_path / "cmp"), "--x", "step"]) == 0
    assert (tmp_path / "cmp" / "metrics.png").is_file()

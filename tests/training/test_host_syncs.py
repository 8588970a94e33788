"""Host reads per training step. On a GPU every `float(t)`, `bool(t)`, `t.item()` or `t.tolist()` of a device tensor
waits for the queue to drain; a step that reads many small values back is launch-bound (issue 11: thousands of
tiny ops and per-step host work). Counted on the CPU: the reads memorygan's own code makes during `train_step`."""
import json
import sys

import pytest
import torch
from helpers import TINY_PRESET

READS = ("__bool__", "__float__", "__int__", "item", "tolist")
# reads of tensors that live on the CPU whatever the training device (no GPU sync): the data order (a CPU
# permutation), the mixing coin and the mixing choice's range check (drawn from CPU generators, then moved)
CPU_SIDE = {"perm", "mixing_coin", "check_mix_choice"}


class HostReads:
    """Counts tensor -> Python reads whose caller is a memorygan module."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in READS:
            orig = getattr(torch.Tensor, name)

            def wrapper(t, *a, _orig=orig, _name=name, **kw):
                caller = sys._getframe(1)
                mod = caller.f_globals.get("__name__", "")
                if mod.startswith("memorygan") and caller.f_code.co_name not in CPU_SIDE:
                    self.calls.append(f"{mod}:{caller.f_lineno} {_name}")
                return _orig(t, *a, **kw)
            monkeypatch.setattr(torch.Tensor, name, wrapper)


def test_the_counter_sees_reads_from_memorygan_only(monkeypatch):
    import types
    mod = types.ModuleType("memorygan._hostread_probe")
    exec("def f(t):\n    return float(t.sum()) + t.sum().item() + int(bool(t.any()))\n", mod.__dict__)
    reads = HostReads(monkeypatch)
    assert mod.f(torch.ones(2)) == 5.0
    float(torch.ones(()))                                              # a test's own read is not counted
    assert [c.split(" ")[1] for c in reads.calls] == ["__float__", "item", "__bool__"]


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_a_training_step_reads_back_once_per_phase(arch, monkeypatch, tmp_path):
    """Every regulariser fires (D, R1, G, path length: four phases), two accumulation chunks: one read per phase
    (whether to step: the finiteness of losses and gradient norm, summed over processes). The stats stay on the
    device until the log line."""
    from memorygan.data.synth import synthesize
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    synthesize("portraits", tmp_path / "data", n=8, size=32, seed=0)
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps(dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"], arch=arch))))
    opts = TrainOptions(data=str(tmp_path / "data"), preset=str(preset), out=str(tmp_path / "run"), batch=4, accum=2,
                        steps=3, d_reg_every=1, g_reg_every=1, mixing=1.0, log_every=100, sample_every=0,
                        checkpoint_every=0, progress=False, threads=1)
    tr = Trainer(opts)
    tr.train_step()                                                    # warm-up (lazy state)
    reads = HostReads(monkeypatch)
    tr.train_step()
    assert len(reads.calls) == 4, reads.calls
    assert all(c.startswith("memorygan.training.loop:") and c.endswith(" item") for c in reads.calls)
    monkeypatch.undo()
    row = tr._write_stats(1.0)                                        # the log line converts the stats
    for key in ("grad_norm_D", "grad_norm_Dreg", "grad_norm_G", "grad_norm_Greg", "pl_mean"):
        assert isinstance(row[key], float) and row[key] > 0, key
    assert isinstance(tr._training_state()["pl_mean"], float)            # checkpoints keep a float

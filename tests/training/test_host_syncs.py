"""Host syncs per training step. On a GPU the host queues kernels ahead of the device unless it has to wait: a read
of a device tensor (`float(t)`, `t.item()`, `t.tolist()`), an op with a value-dependent shape, or a blocking copy
from CPU memory (`t.to("cuda")`). A step that waits often is launch-bound (issue 11). Found on the CPU by
`tests/synccheck.py`: a training step with every regulariser makes none; the log line reads back twice."""
import json
import types

import pytest
import torch
from helpers import TINY_PRESET
from synccheck import host_sync_check

from memorygan.devices import to_device

PROBE = '''
import torch
from memorygan.devices import to_device

def reads(t):
    return float(t.sum()) + t.sum().item() + int(bool(t.any())) + len(t.tolist())

def moves(t):
    return t.to("cpu"), t.to(t), t.new_tensor([1.0]), torch.tensor([1.0], device=t.device)

def shapes(t):
    return t[t > 0], torch.nonzero(t), torch.unique(t)

def inside_torch(t):
    return torch.nn.functional.one_hot(t.long(), 3)     # checks the range on the CPU: two reads inside torch

def allowed(t):
    return to_device(t, t.device), torch.as_tensor(t), t.to(torch.float64), torch.tensor([1.0]), perm(t)

def perm(t):
    return t.tolist()                                   # a CPU-side function (the data order)
'''


@pytest.fixture
def probe():
    mod = types.ModuleType("memorygan._sync_probe")
    exec(PROBE, mod.__dict__)
    return mod


def _kinds(events):
    return [(e.split(" (")[1].split(")")[0], e.split(") ")[1]) for e in events]


def test_the_check_sees_every_kind_of_host_sync(probe):
    t = torch.tensor([0.0, 1.0, 2.0])
    with host_sync_check() as c:
        probe.reads(t)
    assert _kinds(c.events) == [("reads", "read: aten::_local_scalar_dense")] * 3 + [("reads", "read: tolist")]
    with host_sync_check() as c:
        probe.moves(t)
    assert _kinds(c.events) == [("moves", "move: to"), ("moves", "move: to"), ("moves", "from host: new_tensor"),
                                ("moves", "from host: tensor")]
    with host_sync_check() as c:
        probe.shapes(t)
    kinds = _kinds(c.events)
    assert kinds[0] == ("shapes", "data-dependent shape: aten::index") and len(kinds) == 3
    assert all(k[0] == "shapes" and k[1].startswith("data-dependent shape") for k in kinds)
    with host_sync_check() as c:
        probe.inside_torch(t)
    assert _kinds(c.events) == [("inside_torch", "read: aten::_local_scalar_dense")] * 2


def test_the_check_allows_to_device_cpu_side_reads_and_the_callers_own(probe):
    t = torch.tensor([0.0, 1.0, 2.0])
    with host_sync_check() as c:
        probe.allowed(t)
        float(t.sum()), t.to("cpu")                    # the test's own code is not memorygan's
    assert c.events == []


def test_to_device_stages_cpu_tensors_in_pinned_memory_for_cuda(monkeypatch):
    """The CUDA branch, on a CPU-only machine: the copy goes through pinned memory with non_blocking."""
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: calls.append("pin") or t)
    monkeypatch.setattr(torch.Tensor, "to", lambda t, *a, **k: calls.append((a, k)) or t)
    t = torch.ones(2)
    assert to_device(t, "cuda:0") is t
    assert calls == ["pin", ((torch.device("cuda:0"),), {"non_blocking": True})]
    calls.clear()
    to_device(t, "cpu")                                            # same device: a plain move, no pinning
    assert calls == [((torch.device("cpu"),), {})]
    monkeypatch.undo()
    assert to_device(t, None) is t


def _trainer(tmp_path, arch, **kw):
    from memorygan.data.synth import synthesize
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    synthesize("portraits", tmp_path / "data", n=8, size=32, seed=0)
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps(dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"], arch=arch))))
    opts = TrainOptions(data=str(tmp_path / "data"), preset=str(preset), out=str(tmp_path / "run"), batch=4, accum=2,
                        steps=3, d_reg_every=1, g_reg_every=1, mixing=1.0, log_every=100, sample_every=0,
                        checkpoint_every=0, progress=False, threads=1, **kw)
    return Trainer(opts)


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_a_training_step_makes_no_host_sync(arch, tmp_path):
    """Every regulariser fires (D, R1, G, path length), the batch is style-mixed, two accumulation chunks, and the
    dataset has a transparent class: no read, no blocking copy, no value-dependent shape. Whether to step is decided
    on the device (fused Adam's found_inf); the stats and the skipped-phase flags are read back at the log line, in
    two transfers."""
    tr = _trainer(tmp_path, arch)
    assert tr.gcfg.transparent_classes
    tr.train_step()                                                    # warm-up (lazy state)
    with host_sync_check() as c:
        tr.train_step()
    assert c.events == []
    with host_sync_check() as c:
        tr._flush_nonfinite()
        row = tr._write_stats(1.0)                                     # the log line converts the stats
    assert [e.split(") ")[1] for e in c.events] == ["read: tolist", "read: tolist"], c.events
    for key in ("grad_norm_D", "grad_norm_Dreg", "grad_norm_G", "grad_norm_Greg", "pl_mean"):
        assert isinstance(row[key], float) and row[key] > 0, key
    assert tr.nonfinite_total == 0 and tr._pending_bad == []
    assert isinstance(tr._training_state()["pl_mean"], float)            # checkpoints keep a float


def test_without_a_fused_adam_the_step_reads_back_once_per_phase(tmp_path, monkeypatch):
    """The fallback for devices without a fused Adam kernel: whether to step is read back, one read per phase.
    (The optimizer's own step is replaced by a recorder here: torch's foreach Adam reads its step counters, which
    live on the CPU for it.)"""
    from memorygan.training import optim
    monkeypatch.setattr(optim, "adam_implementation", lambda params: {"foreach": True})
    tr = _trainer(tmp_path, "memorygan")
    assert not tr.g_opt.param_groups[0]["fused"] and tr.g_opt.param_groups[0]["foreach"]
    tr.train_step()
    stepped = []
    tr.d_opt.step = lambda: stepped.append("D")
    tr.g_opt.step = lambda: stepped.append("G")
    with host_sync_check() as c:
        tr.train_step()
    assert stepped == ["D", "D", "G", "G"]
    assert [e.split(" (")[1] for e in c.events] == ["_finish_phase) read: aten::_local_scalar_dense"] * 4, c.events


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_sampling_makes_no_host_sync(arch):
    """`G.sample` (CPU-drawn codes, random noise, truncation, a transparent class in the fusion) and the part-wise
    mixing of expanded codes queue without a wait: sampling loops on a GPU (metrics, generate) run ahead too."""
    from helpers import tiny_generator

    from memorygan.training.mixing import random_partwise_mix
    G = tiny_generator(arch, transparent_classes=[2]).eval()
    G.sample(2, seed=0, truncation=0.7)             # the first truncation reads the count back, estimates w_avg
    with host_sync_check() as c:
        G.sample(2, seed=1, truncation=0.7, noise_mode="random")
        gen = torch.Generator().manual_seed(0)
        e1, e2 = (G.expanded_from_z(G.sample_z(2, generator=gen)) for _ in range(2))
        with torch.no_grad():
            G(expanded=random_partwise_mix(e1, e2, G.layer_roles, gen))
    assert c.events == []


def test_truncation_re_estimates_w_avg_after_loading_weights_without_it():
    """Truncation keeps "w_avg is estimated" on the host; loading a state dict whose count is 0 makes it unknown again,
    so the next truncation estimates w_avg instead of truncating towards zeros."""
    from helpers import tiny_generator
    G = tiny_generator("memorygan")
    G.sample(1, seed=0, truncation=0.5)
    assert int(G.w_avg_count) > 0
    fresh = {k: torch.zeros_like(v) if k in ("w_avg", "w_avg_count") else v for k, v in G.state_dict().items()}
    G.load_state_dict(fresh)
    G.sample(1, seed=0, truncation=0.5)
    assert int(G.w_avg_count) > 0 and G.w_avg.abs().sum() > 0


def test_the_training_loop_reads_back_only_at_log_steps(tmp_path):
    """`fit` over 4 steps with --log-every 2: the step and the loop around it make no sync; the skipped-phase flags
    are read back once per log step (2 reads), the stats once per log line. (Samples, metrics and the checkpoint at
    the end read back as they must: they leave the device.)"""
    tr = _trainer(tmp_path, "memorygan")
    tr.opts.steps, tr.opts.log_every = 4, 2
    with host_sync_check() as c:
        tr.fit()
    where = [e.split(" (")[1].split(")")[0] for e in c.events]
    assert not {"_fit", "train_step", "_finish_phase", "_generate"} & set(where), c.events
    assert where.count("_flush_nonfinite") == 2 and where.count("_stats_means") == 2, c.events


def test_augmented_projected_step_makes_no_host_sync(tmp_path):
    """ADA (every op, p adjusted every step) and the projected discriminator add no host sync to a step."""
    from memorygan.training.augment import ALL_OPS
    tr = _trainer(tmp_path, "memorygan", augment="ada", augment_ops=",".join(ALL_OPS), augment_p=0.5,
                  ada_interval=1, discriminator_overrides={"arch": "projected", "projected_size": 32,
                                                           "projected_width": 8})
    tr.train_step()
    with host_sync_check() as c:
        tr.train_step()
    assert c.events == []
    row = tr._write_stats(1.0)
    assert 0 <= row["augment_p"] <= 1 and -1 <= row["ada_rt"] <= 1

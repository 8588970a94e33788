"""Device placement, checked on the CPU (tests/devicecheck.py): the code paths that run on the model's device
(training steps with every regulariser, metrics, analyses, editing, the demo) create no tensor on a default device.
A tensor memorygan makes without `device=` lands on "meta" and fails the first op that mixes it with the model's
tensors, as it would fail on a GPU."""
import json
import sys
import types

import pytest
import torch
from devicecheck import wrong_device_check
from helpers import TINY_PRESET, tiny_generator

NAMES = ["background", "skin", "eyes", "mouth", "hair"]


def test_the_check_catches_a_tensor_made_without_device():
    mod = types.ModuleType("memorygan._devicecheck_probe")
    exec("import torch\n"
         "def bad(x):\n    return torch.stack([x.sum(), torch.tensor(float(x.numel()))])\n"
         "def good(x):\n    return torch.stack([x.sum(), torch.tensor(float(x.numel()), device=x.device)])\n",
         mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        x = torch.ones(3)
        assert mod.bad(x).tolist() == [3.0, 3.0]                       # unnoticed on a CPU-only run ...
        with wrong_device_check() as chk, pytest.raises(RuntimeError, match="meta"):
            mod.bad(x)                                                 # ... caught under the check
        assert chk.moved == ["memorygan._devicecheck_probe: tensor"]
        with wrong_device_check():
            assert mod.good(x).tolist() == [3.0, 3.0]
            assert torch.tensor([1.0]).device.type == "cpu"            # code outside memorygan is left alone
    finally:
        del sys.modules[mod.__name__]


def test_the_check_leaves_torchs_own_tensors_alone():
    """A factory called inside torch belongs to torch even when memorygan made the call that reached it: torch 2.11's
    single-tensor Adam makes its step counter with `torch.tensor(0.0)` (no device) when memorygan calls `opt.step()`;
    moving that to "meta" failed `learn_direction` under the check although nothing was wrong."""
    inner = types.ModuleType("torch._devicecheck_internal")
    exec("import torch\ndef counter():\n    return torch.tensor(0.0)\n", inner.__dict__)
    probe = types.ModuleType("memorygan._devicecheck_probe")
    probe.counter = inner.counter
    exec("import torch\n"
         "def via_torch():\n    return counter()\n"
         "def adam_step(p):\n"
         "    opt = torch.optim.Adam([p], lr=0.1, foreach=False)\n"
         "    p.sum().backward()\n    opt.step()\n    return opt.state[p]['step']\n", probe.__dict__)
    sys.modules.update({inner.__name__: inner, probe.__name__: probe})
    try:
        with wrong_device_check() as chk:
            assert probe.via_torch().device.type == "cpu"
            p = torch.nn.Parameter(torch.ones(3))
            assert float(probe.adam_step(p)) == 1.0
            assert p.detach().tolist() == pytest.approx([0.9] * 3)
        assert chk.moved == []
    finally:
        for name in (inner.__name__, probe.__name__):
            del sys.modules[name]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from memorygan.data.synth import synthesize

    root = tmp_path_factory.mktemp("dev")
    synthesize("portraits", root / "data", n=16, size=32, seed=0)
    presets = {}
    for arch in ("memorygan", "ssg"):
        path = root / f"{arch}.json"
        path.write_text(json.dumps(dict(TINY_PRESET, generator=dict(TINY_PRESET["generator"], arch=arch))))
        presets[arch] = str(path)
    return root, presets


@pytest.mark.parametrize("accum", [1, 2])
def test_training_steps_with_every_regulariser(arch, accum, tiny_run, tmp_path):
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    root, presets = tiny_run
    opts = TrainOptions(data=str(root / "data"), preset=presets[arch], out=str(tmp_path / "run"), batch=4,
                        accum=accum, steps=2, d_reg_every=1, g_reg_every=1, mixing=1.0, log_every=1, sample_every=0,
                        checkpoint_every=0, progress=False, threads=1)
    tr = Trainer(opts)
    with wrong_device_check() as chk:
        for _ in range(2):
            tr.train_step()
        tr.save_samples()
    assert chk.moved == [] and tr.step == 2 and tr.pl_mean > 0


def test_augmented_training_with_the_projected_discriminator(tiny_run, tmp_path):
    """ADA with every op (image and mask warped together) and the projected D: every tensor on the model's device."""
    from memorygan.training.augment import ALL_OPS
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    root, presets = tiny_run
    opts = TrainOptions(data=str(root / "data"), preset=presets["ssg"], out=str(tmp_path / "run"), batch=4, steps=2,
                        d_reg_every=1, g_reg_every=1, log_every=1, sample_every=0, checkpoint_every=0, progress=False,
                        threads=1, augment="ada", augment_ops=",".join(ALL_OPS), augment_p=0.5, ada_interval=1,
                        discriminator_overrides={"arch": "projected", "projected_size": 32, "projected_width": 8})
    tr = Trainer(opts)
    with wrong_device_check() as chk:
        for _ in range(2):
            tr.train_step()
    assert chk.moved == [] and tr.step == 2


def test_metrics_and_analyses(arch, tmp_path):
    from memorygan.analysis import mix_parts, sequential_composition
    from memorygan.analysis.dependencies import generated_dependencies
    from memorygan.metrics.leakage import leakage
    from memorygan.metrics.smse import smse

    G = tiny_generator(arch, num_classes=5, class_names=NAMES, transparent_classes=[]).eval()
    with wrong_device_check() as chk:
        smse(G, num_samples=3, batch_size=3)
        leakage(G, num_samples=3, batch_size=3)
        sequential_composition(G, seed=1)
        out = G.sample(2, seed=0, truncation=0.7)
        mix_parts(G, out.expanded, out.expanded.flip(0), ["eyes", "hair"])
        generated_dependencies(G, n=4, batch=4)
    assert chk.moved == []


def test_editing_and_demo(arch):
    from memorygan.demo.state import DemoState
    from memorygan.editing.assessors import get_assessor
    from memorygan.editing.baselines import interfacegan, sefa
    from memorygan.editing.directions import learn_direction
    from memorygan.editing.evaluate import evaluate_direction

    G = tiny_generator(arch, num_classes=5, class_names=NAMES, transparent_classes=[]).eval()
    with wrong_device_check() as chk:
        for spec in ("brightness", "colourfulness:hair", "area:eyes", "centroid_x:hair", "hue:eyes",
                     "saturation:skin", "blueness:eyes"):
            out = G.sample(2, seed=1)
            get_assessor(spec, G)(out.image, out.seg)
        A = get_assessor("lightness:hair", G)
        d = learn_direction(G, A, "parts", ["hair"], steps=2, batch=2, scale_n=4)
        evaluate_direction(G, d, A, n=2, batch=2)
        learn_direction(G, A, "latent", None, steps=1, batch=2, scale_n=4)
        if arch == "memorygan":
            learn_direction(G, A, "query", ["skin"], steps=1, batch=2, scale_n=4)
        interfacegan(G, A, "parts", ["hair"], n=20, scale_n=4, calibrate_n=2)
        sefa(G, A, ["hair"], num=2, select_n=2, calibrate_n=2, scale_n=4)
        state = DemoState(G, {"d": d})
        state.generate(0)
        state.compose_first(2)
        state.resample_part("hair", "texture", 1)
        state.mix(["eyes"], 2)
        state.interpolate("skin", 3, 0.5)
        state.apply_direction("d", 0.5)
    assert chk.moved == []


def test_metrics_inside_training_run_on_the_training_device(tiny_run, tmp_path, monkeypatch):
    """The in-training metrics once built their probe with the CPU default beside a CUDA generator: no error, just
    minutes of silent CPU work per evaluation. Every device-taking helper the trainer builds must get its device."""
    from memorygan.metrics import domain
    from memorygan.metrics.probe import train_probe
    from memorygan.training.loop import Trainer
    from memorygan.training.options import TrainOptions

    root, presets = tiny_run
    train_probe(root / "data", out=tmp_path / "probe", steps=2, progress=False)
    seen = []
    original = domain.DomainMetrics.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("device", "<default>"))
        original(self, *args, **kwargs)
    monkeypatch.setattr(domain.DomainMetrics, "__init__", spy)
    opts = TrainOptions(data=str(root / "data"), preset=presets["ssg"], out=str(tmp_path / "run"), batch=4, steps=1,
                        probe=str(tmp_path / "probe"), metrics_samples=4, sample_every=0, checkpoint_every=0,
                        progress=False, threads=1)
    tr = Trainer(opts)
    tr.run_metrics()                          # builds the probe and the real statistics (modules: outside the check)
    with wrong_device_check() as chk:
        row = tr.run_metrics()
    assert seen == [tr.device] and row["num_samples"] == 4 and chk.moved == []

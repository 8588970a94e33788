"""--device: `auto` picks the GPU when torch sees one (and says so), explicit devices are checked before any work."""
import pytest
import torch

from memorygan import devices
from memorygan.errors import ConfigError


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend torch sees `n` CUDA devices (nothing is allocated on them)."""
    def install(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: f"Fake GPU {i}")
        monkeypatch.setattr(devices, "_announced", set())
    return install


def test_auto_is_the_cpu_without_a_gpu(fake_gpus, capsys):
    fake_gpus(0)
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device(None) == "cpu"
    assert capsys.readouterr().err == ""                      # nothing to say when nothing was chosen for the user


def test_auto_picks_the_gpu_and_says_so_once(fake_gpus, capsys):
    fake_gpus(2)
    assert devices.resolve_device("auto") == "cuda"
    assert devices.resolve_device("auto") == "cuda"
    err = capsys.readouterr().err
    assert err.count("using cuda (Fake GPU 0)") == 1 and "--device cpu" in err


def test_under_torchrun_each_process_takes_its_local_gpu(fake_gpus, monkeypatch):
    fake_gpus(2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert devices.resolve_device("auto", announce=False) == "cuda:1"
    assert devices.resolve_device("cuda") == "cuda:1"
    assert devices.resolve_device("cuda:0") == "cuda:0"       # an explicit index is kept


@pytest.mark.parametrize("name, message", [
    ("cuda", "--device cuda: torch .* sees no CUDA device; use --device cpu or --device auto"),
    ("cuda:1", "sees no CUDA device"),
    ("gpu", "--device 'gpu': not a device"),
    ("", None),
])
def test_explicit_devices_are_checked(fake_gpus, name, message):
    fake_gpus(0)
    if message is None:
        assert devices.resolve_device(name) == "cpu"          # empty means auto
        return
    with pytest.raises(ConfigError, match=message):
        devices.resolve_device(name)


def test_device_index_beyond_the_gpus(fake_gpus):
    fake_gpus(2)
    assert devices.resolve_device("CUDA:1") == "cuda:1"
    with pytest.raises(ConfigError, match=r"--device cuda:2: there are only 2 CUDA devices \(cuda:0..cuda:1\)"):
        devices.resolve_device("cuda:2")


def test_cli_refuses_an_unusable_device_before_any_work(fake_gpus, tmp_path, capsys):
    from memorygan.cli import main

    fake_gpus(0)
    with pytest.raises(SystemExit) as e:
        main(["generate", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png"), "--device", "cuda"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --device: torch" in err and "sees no CUDA device" in err
    assert not (tmp_path / "x.png").exists()


def test_every_device_flag_defaults_to_auto():
    from memorygan.cli import build_parser

    found = []

    def walk(parser, path):
        for action in parser._actions:
            if action.option_strings == ["--device"]:
                found.append((path, action.default))
            for name, sub in getattr(action, "choices", None).items() if isinstance(action.choices, dict) else []:
                walk(sub, f"{path} {name}")
    walk(build_parser(), "memorygan")
    commands = {p for p, _ in found}
    for cmd in ("memorygan train", "memorygan generate", "memorygan quickstart", "memorygan probe train",
                "memorygan metrics", "memorygan analyze report", "memorygan analyze compose", "memorygan invert",
                "memorygan edit learn", "memorygan demo", "memorygan report", "memorygan edit text-report"):
        assert cmd in commands, cmd
    train_default = [d for p, d in found if p == "memorygan train"]
    assert train_default == [None]                            # train: None -> TrainOptions.device ("auto")
    assert all(d == "auto" for p, d in found if p != "memorygan train"), found


def test_training_resolves_auto(tmp_path):
    from memorygan.training.options import TrainOptions

    assert TrainOptions().device == "auto"


def test_configure_backends_turns_on_the_cudnn_autotuner_unless_told_not_to(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.delenv(devices.CUDNN_BENCHMARK_ENV, raising=False)
    assert devices.configure_backends() is True and torch.backends.cudnn.benchmark is True
    monkeypatch.setenv(devices.CUDNN_BENCHMARK_ENV, "0")
    assert devices.configure_backends() is False and torch.backends.cudnn.benchmark is False


def test_the_cli_entry_point_configures_the_backends(monkeypatch, tmp_path, capsys):
    """Every command gets the autotuner (it matters on a GPU), before its own work: even one that then fails on
    its input."""
    from memorygan.cli import main
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.delenv(devices.CUDNN_BENCHMARK_ENV, raising=False)
    assert main(["generate", str(tmp_path / "no-such-generator"), "--out", str(tmp_path / "g.png"),
                 "--device", "cpu"]) == 2
    assert "no-such-generator" in capsys.readouterr().err
    assert torch.backends.cudnn.benchmark is True

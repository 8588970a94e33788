import torch

from memorygan.ops.autocast import autocast_dtype, autocast_off, under_autocast


def test_autocast_queries_on_cpu():
    assert not under_autocast("cpu") and autocast_dtype("cpu", torch.float32) == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert under_autocast("cpu") and autocast_dtype("cpu", torch.float32) == torch.bfloat16
        with autocast_off("cpu"):
            assert not under_autocast("cpu")
            a = torch.randn(2, 3)
            assert (a @ a.t()).dtype == torch.float32
        assert (a @ a.t()).dtype == torch.bfloat16


def test_device_types_without_autocast():
    """The meta device (MAC counting) has no autocast: the helpers answer instead of raising."""
    assert not under_autocast("meta")
    assert autocast_dtype("meta", torch.float64) == torch.float64
    with autocast_off("meta"):
        x = torch.empty(2, 3, device="meta")
        assert (x @ x.t()).shape == (2, 2)

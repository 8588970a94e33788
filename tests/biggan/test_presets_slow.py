"""The GPU presets at full size: built, shapes right, and one iteration of Algorithm 1 on the CPU (slow)."""
import time

import pytest
import torch

from memorygan.biggan.config import biggan_config
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator
from memorygan.biggan.steps import adam, train_iteration


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["biggan-128", "biggan-256", "biggan-deep-128", "biggan-deep-256"])
def test_one_step_on_the_cpu(preset):
    torch.manual_seed(0)
    cfg = biggan_config(preset, num_classes=10)
    G, D = BigGANGenerator(cfg), BigGANDiscriminator(cfg)
    r = cfg.resolution
    g_opt, d_opt = adam(G.parameters(), 1e-4, 0, 0.999, 1e-6), adam(D.parameters(), 4e-4, 0, 0.999, 1e-6)
    before = G.linear.weight.detach().clone()
    x = torch.rand(2, 3, r, r) * 2 - 1
    y = torch.tensor([1, 7])
    t0 = time.perf_counter()
    out = train_iteration(G, D, g_opt, d_opt, lambda s, a: (x, y),
                          lambda p, s, a: (torch.randn(2, cfg.dim_z), y), d_accum=1, g_accum=1)
    seconds = time.perf_counter() - t0
    assert all(torch.isfinite(v) for v in out.values())
    assert not torch.equal(G.linear.weight, before)
    G.eval()
    with torch.no_grad():
        img = G.generate(torch.randn(1, cfg.dim_z), torch.tensor([3]))
    assert img.shape == (1, 3, r, r)
    print(f"{preset}: one iteration at batch 2 on the CPU in {seconds:.1f} s")

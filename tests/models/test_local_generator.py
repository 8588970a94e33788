"""The local generator's chunked CPU inference path (`LocalGenerator._hidden_chunked`) against its batched pass."""
import pytest
import torch

from memorygan.models.local_generator import LocalGenerator

from helpers import tiny_generator


class ChunkSpy(list):
    """The chunk size of every chunked run; `set(budget)` sets the per-thread byte budget (None: batched pass)."""

    def __init__(self, monkeypatch):
        super().__init__()
        self.monkeypatch = monkeypatch

    def set(self, budget):
        self.monkeypatch.setattr(LocalGenerator, "cpu_chunk_bytes", budget)


@pytest.fixture
def chunk_spy(monkeypatch):
    calls = ChunkSpy(monkeypatch)
    original = LocalGenerator._hidden_chunked

    def spy(self, pos, codes, chunk):
        calls.append(chunk)
        return original(self, pos, codes, chunk)
    monkeypatch.setattr(LocalGenerator, "_hidden_chunked", spy)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    return calls


def _parts(G, expanded, coords=None):
    with torch.no_grad():
        return G.generate_parts(expanded, coords)


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
@pytest.mark.parametrize("budget_samples", [1, 2, 3])
def test_chunked_inference_equals_the_batched_pass(arch, budget_samples, chunk_spy):
    """Chunks of 1 (addmm), 2 and 3 samples (baddbmm, with a shorter last chunk) give the batched pass's hidden
    activations and depths, for every sample (so each chunk uses its own samples' matrices)."""
    G = tiny_generator(arch).eval()
    b, k = 3, G.num_classes
    with torch.no_grad():
        expanded = G(G.sample_z(b, seed=1)).expanded
    chunk_spy.set(None)
    hidden, depths = _parts(G, expanded)
    pos = G.positions(None)
    per_sample = max(pos[0].numel(), G.config.local_channels * pos[0, 0].numel()) * 4
    chunk_spy.set(budget_samples * per_sample)
    hidden_c, depths_c = _parts(G, expanded)
    n = b * k if arch == "memorygan" else b      # SSG runs each part's generator on the B samples alone
    expected = [budget_samples] * (G.num_classes if arch == "ssg" else 1) if budget_samples < n else []
    assert chunk_spy == expected
    assert hidden_c.shape == hidden.shape and depths_c.shape == depths.shape
    assert hidden.abs().max() > 0.1 and depths.abs().max() > 0.01
    torch.testing.assert_close(hidden_c, hidden, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(depths_c, depths, atol=1e-5, rtol=1e-5)


def test_chunked_inference_with_per_part_coordinates(chunk_spy):
    """Per-part coordinates give each of the B*K samples its own position features: chunks slice them too."""
    G = tiny_generator("memorygan").eval()
    b, k = 2, G.num_classes
    with torch.no_grad():
        expanded = G(G.sample_z(b, seed=2)).expanded
    coords = G.coords.expand(b, k, *G.coords.shape[1:]).clone()
    coords = coords * torch.linspace(0.5, 1.5, b * k).reshape(b, k, 1, 1, 1)   # a different grid for every part
    chunk_spy.set(None)
    hidden, depths = _parts(G, expanded, coords)
    chunk_spy.set(1)
    hidden_c, depths_c = _parts(G, expanded, coords)
    assert chunk_spy == [1]
    torch.testing.assert_close(hidden_c, hidden, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(depths_c, depths, atol=1e-5, rtol=1e-5)


def test_chunked_inference_under_bf16_autocast(chunk_spy):
    G = tiny_generator("memorygan").eval()
    z = G.sample_z(3, seed=3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        chunk_spy.set(None)
        ref = G(z)
        chunk_spy.set(1)
        out = G(z)
    assert chunk_spy == [1]
    assert out.image.dtype == ref.image.dtype
    assert float((out.image.float() - ref.image.float()).abs().max()) < 0.05
    assert float((out.depths.float() - ref.depths.float()).abs().max()) < 0.05


def test_chunked_path_only_for_cpu_inference(chunk_spy):
    """With autograd (training, inversion) the batched pass runs: gradients flow as before."""
    G = tiny_generator("memorygan")
    chunk_spy.set(1)
    z = G.sample_z(2, seed=4)
    out = G(z)
    out.image.sum().backward()
    assert chunk_spy == []
    assert G.memory.layers[0].conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        G(z)
    assert chunk_spy == [1]

"""The local generator's all-layers-at-once matrices against the per-layer reference ops, and its chunked CPU
inference path (`LocalGenerator._hidden_chunked`) against its batched pass."""
import pytest
import torch

from memorygan.models.local_generator import LocalGenerator

from helpers import CountOps, tiny_generator


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

    def spy(self, pos, mats, bias, chunk):
        calls.append(chunk)
        return original(self, pos, mats, bias, chunk)
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


def _reference(G, on: bool):
    for layer in G.memory.layers:
        layer.conv.use_reference = on


def _memory_with_biases():
    G = tiny_generator("memorygan")
    with torch.no_grad():
        for layer in G.memory.layers:          # non-zero biases everywhere (they start at 0 and 1)
            layer.activate.bias.normal_(0, 0.3)
            layer.conv.modulation.bias.normal_(1, 0.3)
    return G


def _hidden_and_grads(G, codes, reference: bool, autocast: bool):
    _reference(G, reference)
    pos = G.positions(None)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        hidden, depth = G.memory.hidden(pos, codes)
    loss = (hidden.float() * torch.linspace(-1, 1, hidden[0].numel()).reshape(hidden[0].shape)).sum() \
        + depth.float().pow(2).sum()
    grads = torch.autograd.grad(loss, [codes] + list(G.memory.parameters()), allow_unused=True)
    return hidden.detach().float(), depth.detach().float(), grads


def _grad_errors(grads, reference):
    """Max abs error of each gradient the loss reaches, relative to that gradient's largest entry."""
    errs = []
    for a, b in zip(grads, reference):
        if b is None:                          # parameters after the last layer that the loss does not reach
            assert a is None
            continue
        errs.append(float((a - b).abs().max() / b.abs().max().clamp_min(1e-3)))
    return errs


def test_layer_matrices_equal_the_per_layer_reference():
    """`layer_matrices` (every layer's styles, modulation and demodulation in one pass) gives the official per-layer
    order (per-sample weights, grouped conv, then bias, leaky ReLU, gain): values and every gradient."""
    G = _memory_with_biases()
    codes = torch.randn(5, G.config.local_layers, G.config.latent_dim, requires_grad=True)
    h_ref, d_ref, g_ref = _hidden_and_grads(G, codes, reference=True, autocast=False)
    h, d, g = _hidden_and_grads(G, codes, reference=False, autocast=False)
    assert h.shape == (5, G.config.local_channels, *G.positions(None).shape[2:]) and d.shape[1] == 1
    torch.testing.assert_close(h, h_ref, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(d, d_ref, atol=2e-5, rtol=1e-4)
    errs = _grad_errors(g, g_ref)
    assert len(errs) >= 1 + 4 * G.config.local_layers   # codes and each layer's four parameters
    assert max(errs) < 1e-4


def test_layer_matrices_under_bf16_autocast_are_at_least_as_accurate():
    """Under bf16 autocast the matrices are computed in fp32 and cast once: against the fp32 reference, values and
    gradients are no further off than the per-layer ops under autocast (which demodulate in bf16)."""
    G = _memory_with_biases()
    codes = torch.randn(5, G.config.local_layers, G.config.latent_dim, requires_grad=True)
    h32, d32, g32 = _hidden_and_grads(G, codes, reference=True, autocast=False)
    h_old, _, g_old = _hidden_and_grads(G, codes, reference=True, autocast=True)
    h, d, g = _hidden_and_grads(G, codes, reference=False, autocast=True)
    err, err_old = float((h - h32).abs().max()), float((h_old - h32).abs().max())
    assert err <= err_old and err < 0.06
    assert float((d - d32).abs().max()) < 0.06
    assert max(_grad_errors(g, g32)) <= max(_grad_errors(g_old, g32)) and max(_grad_errors(g, g32)) < 0.15


def test_layer_matrices_follow_float64_codes():
    G = tiny_generator("memorygan").double()
    codes = torch.randn(3, G.config.local_layers, G.config.latent_dim, dtype=torch.float64)
    mats, bias = G.memory.layer_matrices(codes, torch.float64)
    c = G.config.local_channels
    assert mats.dtype == bias.dtype == torch.float64
    assert mats.shape == (G.config.local_layers, 3, c, c) and bias.shape == (G.config.local_layers, 1, c, 1)
    # demodulated, times sqrt(2): every output row has norm sqrt(2)
    torch.testing.assert_close(mats.pow(2).sum(-1), torch.full((G.config.local_layers, 3, c), 2.0,
                                                               dtype=torch.float64), rtol=1e-5, atol=0)


def test_each_layer_costs_a_matmul_and_an_activation_not_its_own_modulation():
    """Every op is a kernel launch on a GPU. With the layers' styles, modulation and demodulation done for all layers
    at once, a layer adds only its baddbmm and leaky ReLU (and their backward, and views) to a training pass: 17
    ATen ops per layer, forward and backward (measured; each layer doing its own modulation, as before, took 77)."""
    def ops(layers):
        G = tiny_generator("memorygan", local_layers=layers, depth_layers=2)
        codes = torch.randn(6, layers, G.config.latent_dim, requires_grad=True)
        pos = G.positions(None).detach()
        with CountOps() as count:
            hidden, depth = G.memory.hidden(pos, codes)
            (hidden.sum() + depth.sum()).backward()
        assert G.memory.layers[-1].conv.weight.grad.abs().sum() > 0
        return count.n
    per_layer = (ops(8) - ops(4)) / 4
    assert 0 < per_layer <= 20

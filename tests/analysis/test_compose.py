import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import composition_figure, sequential_composition


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_sequential_composition_adds_one_part_per_column(arch):
    G = tiny_generator(arch).eval()
    outs = sequential_composition(G, seed=3)
    k = G.config.num_classes
    assert len(outs) == k
    full = G(G.sample_z(1, 3), noise_mode="const")
    # the last column has every part present: the ordinary sample
    assert torch.allclose(outs[-1].image, full.image, atol=1e-5)
    # column j: the seg argmax only uses parts added so far (coarse mask exactly zero elsewhere)
    for j, o in enumerate(outs):
        present = set(range(j + 1))
        assert set(o.coarse_seg.argmax(1).unique().tolist()) <= present
        assert o.composition_mask[0].tolist() == [1.0 if i in present else 0.0 for i in range(k)]


def test_order_and_errors():
    G = tiny_generator("memorygan").eval()
    outs = sequential_composition(G, seed=0, order=[2, 0])
    assert [o.composition_mask[0].tolist() for o in outs] == [[0, 0, 1, 0], [1, 0, 1, 0]]
    with pytest.raises(ValueError, match="distinct part ids"):
        sequential_composition(G, seed=0, order=[0, 0])
    with pytest.raises(ValueError, match="distinct part ids"):
        sequential_composition(G, seed=0, order=[7])


def test_figure_shape():
    G = tiny_generator("ssg").eval()
    fig = composition_figure(G, [0, 1])
    k, s, pad = G.config.num_classes, G.config.resolution, 2
    assert fig.dtype == np.uint8
    assert fig.shape == (6 * (s + pad) + pad, k * (s + pad) + pad, 3)

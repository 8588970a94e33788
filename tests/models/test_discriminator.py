import pytest
import torch

from memorygan.config import DiscriminatorConfig, discriminator_config
from memorygan.models import DualBranchDiscriminator
from memorygan.models.discriminator import minibatch_stddev


def test_output_shape_and_gradients_reach_both_branches(tiny_dconfig):
    torch.manual_seed(0)
    D = DualBranchDiscriminator(tiny_dconfig)
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    seg = torch.randn(4, 4, 32, 32, requires_grad=True)
    out = D(img, seg)
    assert out.shape == (4, 1)
    out.sum().backward()
    assert img.grad.abs().sum() > 0 and seg.grad.abs().sum() > 0
    missing = [n for n, p in D.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_branch_outputs_are_summed(tiny_dconfig):
    torch.manual_seed(0)
    D = DualBranchDiscriminator(tiny_dconfig)
    img, seg = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 32, 32)
    a = D.image_branch(img) + D.seg_branch(seg)
    assert a.shape == (2, tiny_dconfig.channels(4), 4, 4)
    seg2 = seg.clone()
    seg2[:, 1] += 1
    assert not torch.allclose(D(img, seg), D(img, seg2))  # the seg branch matters


def test_minibatch_stddev_hand_case():
    x = torch.zeros(4, 2, 1, 1)
    x[:, 0, 0, 0] = torch.tensor([0.0, 2.0, 0.0, 2.0])  # group 4: values 0,2,0,2 -> std 1
    x[:, 1, 0, 0] = torch.tensor([1.0, 1.0, 1.0, 1.0])  # std 0 (+1e-8 inside sqrt)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (4, 3, 1, 1)
    assert torch.allclose(y[:, 2].flatten(), torch.full((4,), (1.0 + 1e-4) / 2), atol=1e-4)
    # batch 6 with group 4 falls back to a divisor of 6 (3)
    assert minibatch_stddev(torch.randn(6, 2, 2, 2), group_size=4).shape == (6, 3, 2, 2)


def test_paper_scale_structure():
    cfg = discriminator_config("ssg-256")
    with torch.device("meta"):
        D = DualBranchDiscriminator(cfg)
    assert D.final_linear[0].weight.shape == (512, 8192)  # linear 8192 -> 512
    assert D.final_linear[1].weight.shape == (1, 512)
    assert D.image_branch.from_input.conv.weight.shape == (128, 3, 1, 1)   # width 128 at 256 px
    assert D.seg_branch.from_input.conv.weight.shape == (128, 13, 1, 1)
    assert len(D.image_branch.blocks) == 6                                  # 256 -> 4


def test_wrong_input_shapes_are_refused(tiny_dconfig):
    D = DualBranchDiscriminator(tiny_dconfig)
    with pytest.raises(ValueError, match="seg"):
        D(torch.randn(2, 3, 32, 32), torch.randn(2, 5, 32, 32))
    assert isinstance(tiny_dconfig, DiscriminatorConfig)


def _official_conv_layer(layer, x):
    """rosinality/SemanticStyleGAN `ConvLayer`: [Blur], EqualConv2d (weight * scale, conv bias only without
    activation), then FusedLeakyReLU (x + bias, leaky ReLU 0.2, * sqrt 2)."""
    import math

    import torch.nn.functional as F
    from memorygan.ops.upfirdn import upfirdn2d
    if layer.downsample:
        x = upfirdn2d(x, layer.blur_kernel, pad=layer.blur_pad)
    c = layer.conv
    x = F.conv2d(x, c.weight * c.scale, c.bias, stride=c.stride, padding=c.padding)
    if layer.act is not None:
        x = F.leaky_relu(x + layer.act.bias.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    return x


def test_res_block_equals_the_official_order():
    """The block folds 1 / sqrt 2 into both paths' convolutions (and the activation's bias and gain into conv2):
    the official `(conv2(conv1(x)) + skip(x)) / sqrt 2`, values and gradients, with non-zero biases."""
    import math

    from memorygan.models.discriminator import ResBlock
    torch.manual_seed(0)
    block = ResBlock(6, 8)
    with torch.no_grad():
        block.conv1.act.bias.normal_()
        block.conv2.act.bias.normal_()
    x = torch.randn(2, 6, 16, 16, requires_grad=True)
    want = (_official_conv_layer(block.conv2, _official_conv_layer(block.conv1, x))
            + _official_conv_layer(block.skip, x)) / math.sqrt(2)
    got = block(x)
    assert got.shape == (2, 8, 8, 8)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    probe = torch.randn_like(want)
    params = [x] + list(block.parameters())
    g_want = torch.autograd.grad((want * probe).sum(), params)
    g_got = torch.autograd.grad((got * probe).sum(), params)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    with torch.no_grad():                      # the in-place inference path too
        torch.testing.assert_close(block(x), want, atol=1e-5, rtol=1e-5)


def test_conv_layer_gain_must_be_positive():
    from memorygan.models.discriminator import ConvLayer
    with pytest.raises(ValueError, match="gain must be positive"):
        ConvLayer(3, 4, 3, gain=-1.0)

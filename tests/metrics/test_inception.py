"""The FID InceptionV3: layout against the reference key list, loading, TF1 resize, FID-specific pools, IS."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from memorygan.errors import CheckpointError
from memorygan.metrics.inception import (
    ENV_VAR,
    FIDInceptionV3,
    float_to_uint8,
    inception_score,
    load_inception,
    tf_bilinear_resize,
    tf_resize_299,
)

KEYS_TSV = Path(__file__).resolve().parents[3] / "shared" / "reference" / "fid_inception_v3_keys.tsv"


def reference_keys() -> list[tuple[str, tuple[int, ...]]]:
    if not KEYS_TSV.is_file():
        pytest.skip(f"{KEYS_TSV} not present")
    rows = []
    for line in KEYS_TSV.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("[]").split(",") if s.strip())))
    return rows


def random_inception(seed: int = 0) -> FIDInceptionV3:
    """Full architecture with random weights that keep activations O(1) and distinct BN statistics everywhere."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=g)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=g)
                module.bias.normal_(0.0, 0.1, generator=g)
                module.running_mean.normal_(0.0, 0.1, generator=g)
                module.running_var.uniform_(0.5, 2.0, generator=g)
                module.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=g)))
        model.fc.weight.normal_(0.0, 0.05, generator=g)
        model.fc.bias.normal_(0.0, 0.5, generator=g)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These forwards are many small convolutions; on a shared 2-core machine two intra-op threads spend most of
    their time waiting for each other (measured 20-40x slower under load), one thread does not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return random_inception(0)


@pytest.fixture(scope="module")
def small_input():
    """A network input at 75x75, the smallest size the stem and reductions accept (~6% of the 299 cost)."""
    return torch.randn(2, 3, 75, 75, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def reference_outputs(model, small_input):
    with torch.no_grad():
        feats = model.pool_features(small_input)
        return feats, model.logits(feats, bias=True)


# ----------------------------------------------------------------------------------------------------------------------
# Layout


def test_state_dict_matches_reference_key_list():
    rows = reference_keys()
    sd = FIDInceptionV3().state_dict()
    assert [k for k, _ in rows] == list(sd)  # same keys, same order
    assert [s for _, s in rows] == [tuple(v.shape) for v in sd.values()]


def test_param_count():
    model = FIDInceptionV3()
    assert model.num_params() == 23_850_960  # "about 23.9 M"
    assert len(model.state_dict()) == 566  # 94 BasicConv2d x 6 tensors + fc weight and bias
    expected = sum(math.prod(s) for k, s in reference_keys()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert model.num_params() == expected


# ----------------------------------------------------------------------------------------------------------------------
# Forward


def test_output_shapes_float_input_and_batch_independence(model):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1  # generator convention, [-1, 1]
    feats, logits = model.features(x, return_logits=True)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(feats).all() and feats.std() > 1e-2
    torch.testing.assert_close(logits, feats @ model.fc.weight.T)  # IS logits: no fc bias
    # A float [-1, 1] batch goes through the StyleGAN2-ADA quantisation; uint8 pixels are used as is. In eval mode
    # BN uses running statistics, so the second image alone gives the same features as inside the batch.
    with torch.no_grad():
        alone, biased = model(float_to_uint8(x[1:]), return_logits=True, logits_bias=True)
    torch.testing.assert_close(alone, feats[1:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(biased, logits[1:] + model.fc.bias, rtol=1e-4, atol=1e-4)


def test_small_input_reaches_the_pool(model, small_input, reference_outputs):
    feats, logits = reference_outputs
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008)
    assert feats.std() > 1e-2 and not torch.allclose(feats[0], feats[1])


def test_features_refuses_float_pixels_in_0_255(model):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.features(torch.full((1, 3, 8, 8), 200.0))


def test_float_to_uint8():
    x = torch.tensor([-1.5, -1.0, -0.004, 0.0, 0.5, 1.0, 2.0])
    # (x * 127.5 + 128).clamp(0, 255) truncated: -1 -> 0.5 -> 0, 0 -> 128, 0.5 -> 191.75 -> 191, 1 -> 255
    assert float_to_uint8(x).tolist() == [0, 0, 127, 128, 191, 255, 255]
    assert float_to_uint8(x).dtype == torch.uint8


def test_basic_conv_eval_uses_running_stats(model):
    block = model.Conv2d_2a_3x3
    assert not block.training
    x = torch.randn(2, 32, 9, 9, generator=torch.Generator().manual_seed(3))
    bn = block.bn
    manual = F.conv2d(x, block.conv.weight)
    manual = (manual - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-3)
    manual = F.relu(manual * bn.weight[:, None, None] + bn.bias[:, None, None])
    with torch.no_grad():
        torch.testing.assert_close(block(x), manual, rtol=1e-5, atol=1e-5)
        # the batch's own statistics would give something else
        batch_stats = F.relu(F.batch_norm(F.conv2d(x, block.conv.weight), None, None, bn.weight, bn.bias,
                                          training=True, eps=1e-3))
        assert not torch.allclose(block(x), batch_stats, atol=1e-2)


def _branch_pool_at_corner(block, x, pooled_corner):
    """Expected pool-branch output at pixel (0, 0): the branch's 1x1 BasicConv2d applied by hand."""
    bp = block.branch_pool
    y = bp.conv.weight[:, :, 0, 0] @ pooled_corner  # (C_out,)
    y = (y - bp.bn.running_mean) / torch.sqrt(bp.bn.running_var + 1e-3) * bp.bn.weight + bp.bn.bias
    return F.relu(y)


@pytest.mark.parametrize("name, in_channels, pool", [
    ("Mixed_5b", 192, "avg"),  # block A
    ("Mixed_6b", 768, "avg"),  # block C
    ("Mixed_7b", 1280, "avg"),  # block E (average)
    ("Mixed_7c", 2048, "max"),  # block E, FID graph: max pool
])
def test_pool_branch_excludes_padding(model, name, in_channels, pool):
    block = getattr(model, name)
    n_out = block.branch_pool.conv.out_channels
    x = torch.randn(1, in_channels, 5, 5, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = block(x)[0, -n_out:, 0, 0]  # pool branch is concatenated last
        window = x[0, :, :2, :2]  # the 3x3 window at the corner has 4 valid pixels
        if pool == "avg":
            expected = _branch_pool_at_corner(block, x, window.mean(dim=(1, 2)))  # / 4, not / 9
            include_pad = _branch_pool_at_corner(block, x, window.sum(dim=(1, 2)) / 9)
            assert not torch.allclose(out, include_pad, atol=1e-3)
        else:
            expected = _branch_pool_at_corner(block, x, window.amax(dim=(1, 2)))
            average = _branch_pool_at_corner(block, x, window.mean(dim=(1, 2)))
            assert not torch.allclose(out, average, atol=1e-3)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------------
# TF1 bilinear resize


def numpy_tf_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Straightforward loop of TF1 resize_bilinear (align_corners=False, no half-pixel centres), float32."""
    in_h, in_w = img.shape
    sy, sx = np.float32(in_h) / np.float32(out_h), np.float32(in_w) / np.float32(out_w)
    out = np.zeros((out_h, out_w), np.float32)
    for i in range(out_h):
        fy = np.float32(i) * sy
        y0 = int(np.floor(fy))
        y1 = min(y0 + 1, in_h - 1)
        dy = fy - np.float32(y0)
        for j in range(out_w):
            fx = np.float32(j) * sx
            x0 = int(np.floor(fx))
            x1 = min(x0 + 1, in_w - 1)
            dx = fx - np.float32(x0)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * dx
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_hw, out_hw", [((5, 7), (3, 4)), ((4, 3), (9, 11)), ((6, 6), (6, 6)),
                                           ((13, 17), (299, 299))])
def test_tf_bilinear_resize_matches_numpy_loop(in_hw, out_hw):
    x = torch.rand(1, 1, *in_hw, generator=torch.Generator().manual_seed(5)) * 255
    ref = numpy_tf_resize(x[0, 0].numpy(), *out_hw)
    got = tf_bilinear_resize(x, out_hw)
    assert got.shape == (1, 1, *out_hw) and got.dtype == torch.float32
    np.testing.assert_allclose(got[0, 0].numpy(), ref, rtol=0, atol=1e-4)


def test_tf_bilinear_resize_hand_case_and_differs_from_interpolate():
    x = torch.tensor([[[[0.0, 10.0]]]])  # (1, 1, 1, 2)
    # src = j * 2 / 4 = 0, .5, 1, 1.5; the right neighbour is clamped at the border
    assert tf_bilinear_resize(x, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    y = torch.arange(20.0).reshape(1, 1, 4, 5)
    tf = tf_bilinear_resize(y, (2, 2))  # src rows 0, 2; cols 0, 2.5
    assert tf.flatten().tolist() == [0.0, 2.5, 10.0, 12.5]
    assert not torch.allclose(tf, F.interpolate(y, size=(2, 2), mode="bilinear", align_corners=False))


def test_tf_resize_299_pipeline():
    x8 = torch.randint(0, 256, (2, 3, 10, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    out = tf_resize_299(x8)
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    torch.testing.assert_close(out, (tf_bilinear_resize(x8.float(), 299) - 128) / 128, rtol=0, atol=0)
    torch.testing.assert_close(out, tf_resize_299(x8.float()), rtol=0, atol=0)  # uint8 == float pixels
    # top-left output pixel is the top-left input pixel (no half-pixel offset)
    torch.testing.assert_close(out[:, :, 0, 0], (x8[:, :, 0, 0].float() - 128) / 128)
    full = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    torch.testing.assert_close(tf_resize_299(full), (full.float() - 128) / 128, rtol=0, atol=0)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        tf_resize_299(torch.zeros(1, 1, 8, 8))


# ----------------------------------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("fmt", ["pth", "pth_without_num_batches_tracked", "safetensors"])
def test_load_round_trip(model, small_input, reference_outputs, tmp_path, fmt):
    sd = model.state_dict()
    if fmt == "safetensors":
        path = tmp_path / "inception.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
        if fmt == "pth_without_num_batches_tracked":
            sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
        torch.save(sd, path)
    loaded = load_inception(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    for k, v in loaded.state_dict().items():
        if k in sd:
            assert torch.equal(v, sd[k]), k
        else:
            assert k.endswith("num_batches_tracked") and v.item() == 0, k
    with torch.no_grad():
        feats = loaded.pool_features(small_input)
        logits = loaded.logits(feats, bias=True)
    torch.testing.assert_close(feats, reference_outputs[0], rtol=0, atol=0)
    torch.testing.assert_close(logits, reference_outputs[1], rtol=0, atol=0)


def test_load_from_environment_variable(model, tmp_path, monkeypatch):
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    monkeypatch.setenv(ENV_VAR, str(path))
    loaded = load_inception()
    assert torch.equal(loaded.fc.weight, model.fc.weight)


def test_no_path_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(CheckpointError, match="--inception-weights") as e:
        load_inception()
    assert ENV_VAR in str(e.value) and "never downloaded" in str(e.value)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pth.*not found"):
        load_inception(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_inception(tmp_path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth.*not a readable"):
        load_inception(garbage)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="bad.safetensors.*not a readable"):
        load_inception(bad_st)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(CheckpointError, match="list.pth.*state dict"):
        load_inception(not_a_dict)


class _Code:  # an arbitrary pickled object: weights_only loading must refuse it
    pass


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "code.pth"
    torch.save({"x": _Code()}, path)
    with pytest.raises(CheckpointError, match="code.pth.*not a readable") as e:
        load_inception(path)
    assert "pickled objects other than tensors" in str(e.value) and "_Code" in str(e.value)
    assert "weights_only" not in str(e.value)  # no advice to unpickle untrusted code


def test_wrong_keys_and_shapes_are_listed(tmp_path):
    sd = FIDInceptionV3().state_dict()
    del sd["Mixed_6c.branch7x7_2.conv.weight"]
    sd["aux_logits.fc.weight"] = torch.zeros(3)
    sd["fc.weight"] = torch.zeros(1000, 2048)
    sd["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "imagenet_inception.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as e:
        load_inception(path)
    msg = str(e.value)
    assert "imagenet_inception.pth" in msg
    assert "1 missing tensor(s): Mixed_6c.branch7x7_2.conv.weight" in msg
    assert "1 unexpected tensor(s): aux_logits.fc.weight" in msg
    assert "2 mis-shaped tensor(s)" in msg and "fc.weight: expected (1008, 2048), got (1000, 2048)" in msg


# ----------------------------------------------------------------------------------------------------------------------
# Inception Score


def test_inception_score_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(50, 1008), splits=10)  # softmax of equal logits: uniform
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("num_classes", [1, 7, 1008])
def test_inception_score_confident_and_spread_is_num_classes(num_classes):
    # each split holds every class once, predicted with certainty: p(y) uniform, KL = log C per sample
    probs = torch.eye(num_classes).repeat(2, 1)  # (2 C, C)
    mean, std = inception_score(probs, splits=2, probs=True)
    assert mean == pytest.approx(num_classes, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # the same from (very confident) logits
    mean, _ = inception_score(probs * 60.0, splits=2)
    assert mean == pytest.approx(num_classes, rel=1e-6)


def test_inception_score_hand_computed_splits():
    # split 1: two samples both certain of class 0 -> p(y) = e0 -> IS 1; split 2: classes 0 and 1 -> IS 2
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mean, std = inception_score(probs, splits=2, probs=True)
    assert mean == pytest.approx(1.5) and std == pytest.approx(0.5)
    # one split, p = (.5, .5) and (1, 0): p(y) = (.75, .25)
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    kl = [0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25), math.log(1 / 0.75)]
    mean, std = inception_score(p, splits=1, probs=True)
    assert mean == pytest.approx(math.exp(sum(kl) / 2)) and std == 0.0


def test_inception_score_rejects_bad_input():
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.zeros(5, 10), splits=10)
    with pytest.raises(ValueError, match="summing to 1"):
        inception_score(torch.ones(4, 3), splits=2, probs=True)

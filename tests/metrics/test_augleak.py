"""Leaked-augmentation statistics (metrics/augleak.py) and the presence / augleak metrics through the registry."""
import shutil

import pytest
import torch

from helpers import tiny_generator
from memorygan.metrics.augleak import compare, leak_statistics
from memorygan.metrics.compute import compute_metrics
from memorygan.training.augment import AugmentPipe

pytestmark = pytest.mark.usefixtures("one_thread")


def test_grey_border_and_square_by_hand():
    imgs = torch.full((2, 3, 16, 16), 0.8)
    imgs[0, :, :2, :] = 0.0                                  # image 0: top 2 rows mid grey (a translation's fill)
    imgs[1, :, 4:8, 4:8] = 0.0                               # image 1: a 4x4 grey square (cutout's fill, side 16/4)
    st = leak_statistics(imgs)
    border_px = 16 * 16 - 12 * 12                            # the outer strip of width 16 / 8 = 2
    assert st["grey_border"] == pytest.approx(32 / (2 * border_px))
    assert st["grey_square"] == pytest.approx(0.5)           # image 1 only: 2 grey rows hold no 4x4 grey window
    imgs[0, :, :4, :] = 0.0
    assert leak_statistics(imgs)["grey_square"] == pytest.approx(1.0)     # 4 grey rows do
    imgs[1, :, 4:8, 4:7] = 0.5
    assert leak_statistics(imgs)["grey_square"] == pytest.approx(0.5)     # a 4x3 square is not one
    assert st["luma_mean"] < 0.8 and st["num_images"] == 2


def test_centroids_and_compare():
    labels = torch.zeros(3, 8, 8, dtype=torch.long)
    labels[:, :4, :4] = 1                                    # class 1 in the top-left quadrant
    st = leak_statistics(torch.zeros(3, 3, 8, 8), labels, 2, ["bg", "part"])
    assert st["centroids"]["part"]["y"] == pytest.approx(0.25) and st["centroids"]["part"]["x"] == pytest.approx(0.25)
    assert st["centroids"]["part"]["y_std"] == pytest.approx(0.0)
    flipped = leak_statistics(torch.zeros(3, 3, 8, 8), labels.flip(1), 2, ["bg", "part"])   # upside down
    res = compare(flipped, st)
    assert res["gaps"]["centroid_gap"] == pytest.approx(0.5) and res["gaps"]["centroid_gap_class"] == "part"


def test_augmented_images_show_their_augmentation():
    """The statistics see what the augmentations do: cutout leaves grey squares, colour moves luma and saturation."""
    torch.manual_seed(0)
    imgs = (torch.rand(64, 3, 32, 32) * 0.6 + 0.3)
    masks = -torch.ones(64, 2, 32, 32)
    masks[:, 0] = 1
    base = leak_statistics(imgs)
    cut, _ = AugmentPipe(("cutout",), p=1.0)(imgs, masks, torch.Generator().manual_seed(0))
    assert leak_statistics(cut)["grey_square"] > 0.9 > base["grey_square"] + 0.5
    col, _ = AugmentPipe(("brightness", "saturation"), p=1.0)(imgs, masks, torch.Generator().manual_seed(0))
    gaps = compare(leak_statistics(col), base)["gaps"]
    assert abs(gaps["luma_std"]) > 0.05 and abs(gaps["saturation_std"]) > 0.05


def test_presence_and_augleak_through_the_registry(trained, tmp_path):
    root, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root, data)
    G = tiny_generator("memorygan", seed=3).eval()
    res = compute_metrics("presence,augleak", generator=G, data=data, n=8, batch_size=4, seed=1)
    pres = res["presence"]
    classes = [k[len("presence_real_"):] for k in pres if k.startswith("presence_real_")]
    assert len(classes) == 4
    gaps = [abs(pres[f"presence_{c}"] - pres[f"presence_real_{c}"]) for c in classes]
    assert pres["presence_mean_gap"] == pytest.approx(sum(gaps) / 4)
    leak = res["augleak"]
    assert leak["generated"]["num_images"] == 8 and leak["real"]["num_images"] == 48     # every real image
    assert set(leak["gaps"]) >= {"luma_mean", "grey_border", "grey_square", "centroid_gap"}

import numpy as np
import pytest
import torch

from memorygan.data import SegmentationDataset
from memorygan.errors import DatasetError, MemoryGANWarning


def test_item_ranges_shapes_and_one_hot(portraits_ds):
    ds = SegmentationDataset(portraits_ds)
    assert len(ds) == 6 and ds.num_classes == 13
    item = ds[0]
    img, mask, ids = item["image"], item["mask"], item["ids"]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    assert mask.shape == (13, 32, 32) and mask.dtype == torch.float32
    assert ids.shape == (32, 32) and ids.dtype == torch.int64
    assert img.min() >= -1 and img.max() <= 1 and img.min() < -0.5 and img.max() > 0.3
    assert set(torch.unique(mask).tolist()) == {-1.0, 1.0}
    assert torch.equal(((mask + 1) / 2).sum(0), torch.ones(32, 32))
    assert torch.equal(mask.argmax(0), ids)
    # the pixel values are the PNG's, mapped x / 127.5 - 1
    from PIL import Image
    raw = np.array(Image.open(ds.image_paths[0]))
    assert torch.allclose(img, torch.from_numpy(raw).permute(2, 0, 1).float() / 127.5 - 1)


def test_flip_is_applied_to_image_and_mask_together(portraits_ds):
    ds = SegmentationDataset(portraits_ds)
    a, b = ds.load(2), ds.load(2, flip=True)
    assert torch.equal(b["image"], a["image"].flip(-1))
    assert torch.equal(b["ids"], a["ids"].flip(-1))
    assert torch.equal(b["mask"], a["mask"].flip(-1))
    assert not torch.equal(a["ids"], b["ids"])  # portraits are not symmetric
    # mirror doubles the dataset deterministically
    m = SegmentationDataset(portraits_ds, mirror=True)
    assert len(m) == 12
    it = m[6 + 2]
    assert it["index"] == 2 and it["flip"] and torch.equal(it["image"], b["image"])
    assert not m[2]["flip"]
    # random flips: with probability 1 every item is flipped
    r = SegmentationDataset(portraits_ds, flip_prob=1.0)
    assert r[2]["flip"] and torch.equal(r[2]["ids"], b["ids"])


def test_dataloader_batches_and_resize(portraits_ds):
    with pytest.warns(MemoryGANWarning, match="resized on load"):
        ds = SegmentationDataset(portraits_ds, resolution=16)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["mask"].shape == (4, 13, 16, 16)
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_scenes_many_classes(scenes_ds):
    ds = SegmentationDataset(scenes_ds)
    item = ds[1]
    assert item["mask"].shape == (300, 32, 32)
    assert torch.equal(item["mask"].argmax(0), item["ids"])


def test_open_validates_cheaply(tmp_path, make_ds):
    with pytest.raises(DatasetError, match="does not exist"):
        SegmentationDataset(tmp_path / "nope")
    root = make_ds(tmp_path / "a", [np.zeros((4, 4))] * 2, ["bg", "x"])
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="dataset.json"):
        SegmentationDataset(root)
    root = make_ds(tmp_path / "b", [np.zeros((4, 4))] * 2, ["bg", "x"])
    (root / "masks" / "00001.png").unlink()
    with pytest.raises(DatasetError, match=r"1 images have no mask \(first: images/00001\)"):
        SegmentationDataset(root)
    root = make_ds(tmp_path / "c", [np.zeros((4, 4))] * 2, ["bg", "x"], info_overrides={"resolution": 8})
    with pytest.raises(DatasetError, match="00000.png is 4x4 but dataset.json declares resolution 8x8"):
        SegmentationDataset(root)
    root = make_ds(tmp_path / "d", [np.zeros((4, 4))] * 2, ["bg", "x"], info_overrides={"num_images": 3})
    with pytest.raises(DatasetError, match="declares 3 images but the folder holds 2"):
        SegmentationDataset(root)


def test_out_of_range_id_names_the_file(tmp_path, make_ds):
    root = make_ds(tmp_path / "a", [np.zeros((4, 4)), np.full((4, 4), 5)], ["bg", "x"])
    ds = SegmentationDataset(root)
    ds[0]
    with pytest.raises(DatasetError, match="mask 00001.png has class id 5 but dataset.json declares 2 classes"):
        ds[1]


def test_procedural_dataset_equals_the_written_one(portraits_ds, scenes_ds):
    from memorygan.data import ProceduralDataset
    for root, kind, k in ((portraits_ds, "portraits", None), (scenes_ds, "scenes", 300)):
        files = SegmentationDataset(root, mirror=True)
        live = ProceduralDataset(kind, n=6, size=32, seed=3, num_classes=k, mirror=True)
        assert len(live) == len(files) == 12 and live.classes == files.classes
        for i in (1, 6 + 4):
            a, b = files[i], live[i]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
            assert torch.equal(a["ids"], b["ids"]) and a["flip"] == b["flip"] and a["index"] == b["index"]

"""Fixtures of the data tests. Helpers are handed out as fixtures (tests run with --import-mode=importlib)."""
import pytest

from memorygan.data.synth import synthesize
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, keyed by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def make_dataset(root: Path, masks: list[np.ndarray], classes: list[str], images: list[np.ndarray] | None = None,
                 names: list[str] | None = None, info_overrides: dict | None = None) -> Path:
    """Write a small hand-made dataset folder."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = names or [f"{i:05d}" for i in range(len(masks))]
    for i, (n, m) in enumerate(zip(names, masks)):
        h, w = m.shape
        img = images[i] if images is not None else np.full((h, w, 3), 40 * i % 255, np.uint8)
        Image.fromarray(img).save(root / "images" / f"{n}.png")
        Image.fromarray(m.astype(np.uint8)).save(root / "masks" / f"{n}.png")
    h, w = masks[0].shape
    info = {"format": "memorygan-dataset", "version": 1, "name": "hand", "classes": classes,
            "transparent_classes": [], "resolution": h if h == w else [h, w], "num_images": len(masks),
            "provenance": {}}
    info.update(info_overrides or {})
    (root / "dataset.json").write_text(json.dumps(info))
    return root




@pytest.fixture
def hashes():
    return tree_hashes


@pytest.fixture
def make_ds():
    return make_dataset



@pytest.fixture(scope="session")
def portraits_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "portraits"
    synthesize("portraits", out, n=6, size=32, seed=3)
    return out


@pytest.fixture(scope="session")
def scenes_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "scenes"
    synthesize("scenes", out, n=6, size=32, seed=3, num_classes=300)
    return out


@pytest.fixture(scope="session")
def categories_ds(tmp_path_factory) -> Path:
    """24 images of all 12 categories (two each), 16 px."""
    out = tmp_path_factory.mktemp("ds") / "categories"
    synthesize("categories", out, n=24, size=16, seed=3, num_categories=12)
    return out

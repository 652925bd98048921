"""A shaded body made of capsules (no SMPL model needed), ray-cast with numpy into GIF / MP4 frames.

Every bone is a capsule (a cylinder with hemispherical caps) with its own radius (thick torso and
thighs, thin forearms), the head is a sphere with a small nose that shows the facing direction.
Rendering is a small ray caster written with numpy:

* a perspective camera at a fixed elevation/azimuth that follows the (smoothed) root, so long
  walks stay in frame; the zoom is fitted once over the whole clip, so sizes compare across frames;
* per-pixel ray/capsule and ray/sphere intersections (closed form), evaluated only inside each
  bone's projected bounding box, with a **z-buffer** for visibility. A painter's ordering (sorting
  whole bones by depth) was the alternative; capsules interpenetrate at every joint, where any
  per-bone order is wrong for part of the overlap, while the per-pixel depth test is exact and,
  vectorized over the box, just as cheap;
* Lambert shading with one fixed light (upper left of the camera) plus a soft ambient term and a
  small highlight; a dark outline where depth jumps, so crossing limbs stay readable;
* a checkered floor fading into the background, and a soft shadow: every capsule projected along
  the light onto the floor as a 2D capsule;
* supersampling (default 2x2) for anti-aliased edges.

Joints are ``(T, J, 3)`` metres, y up (HumanML3D J = 22 or KIT-ML J = 21; other skeletons pass a
:class:`BodyModel`). About 30-40 ms per 320 px frame on one CPU core (2x supersampling).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from motiongpt.viz.text import font_family, wrap_text
from motiongpt.viz.video import require_ffmpeg, save_gif, save_mp4, write_atomic

__all__ = [
    "Bone",
    "BodyModel",
    "BodyRenderOptions",
    "CameraTrack",
    "body_model",
    "make_camera",
    "iter_body_frames",
    "render_body_frames",
    "render_body",
    "render_bodies",
    "render_bodies_frames",
    "smpl_missing",
]

# Base colours (RGB 0-1) per body part: right side warm, left side cool, centre neutral, as in the
# skeleton plots (motiongpt.viz.plot3d.SIDE_COLORS), lighter so shading stays visible.
PART_COLORS = {
    "center": (0.62, 0.66, 0.72),
    "right": (0.88, 0.42, 0.36),
    "left": (0.36, 0.56, 0.85),
    "head": (0.80, 0.82, 0.86),
    "nose": (0.35, 0.37, 0.42),
}
_PARTS = tuple(PART_COLORS)  # part index -> name (index stored per pixel)


@dataclass(frozen=True)
class Bone:
    """One capsule between two joints."""

    a: int
    """Index of the first joint."""
    b: int
    """Index of the second joint."""
    radius: float
    """Capsule radius in metres."""
    part: str = "center"
    """Colour group: ``"center"``, ``"left"`` or ``"right"``."""


@dataclass(frozen=True)
class BodyModel:
    """The capsules of one skeleton, and where the head sphere goes."""

    num_joints: int
    """Joints per frame the model expects."""
    bones: tuple[Bone, ...]
    """Capsules drawn every frame."""
    head: int | None = None
    """Joint at the centre of the head sphere (None: no head sphere)."""
    neck: int | None = None
    """Joint below the head; the sphere sits a little beyond ``head`` along neck -> head."""
    head_radius: float = 0.1
    """Head sphere radius in metres."""
    face: tuple[int, int, int, int] | None = None
    """(right hip, left hip, right shoulder, left shoulder): gives the facing direction for the
    nose; None draws no nose."""


def _humanml3d_model() -> BodyModel:
    # Radii (metres) of a slim adult; SMPL joint indices (motiongpt.motion.skeleton.JOINT_NAMES).
    c, l, r = "center", "left", "right"
    bones = [
        Bone(0, 3, 0.115, c), Bone(3, 6, 0.12, c), Bone(6, 9, 0.125, c), Bone(9, 12, 0.055, c),  # spine, neck
        Bone(1, 2, 0.1, c),  # pelvis
        Bone(13, 14, 0.075, c), Bone(13, 16, 0.065, l), Bone(14, 17, 0.065, r),  # shoulder girdle
        Bone(0, 1, 0.095, l), Bone(0, 2, 0.095, r),  # hips
        Bone(1, 4, 0.08, l), Bone(4, 7, 0.055, l), Bone(7, 10, 0.042, l),  # left thigh, shin, foot
        Bone(2, 5, 0.08, r), Bone(5, 8, 0.055, r), Bone(8, 11, 0.042, r),  # right leg
        Bone(16, 18, 0.048, l), Bone(18, 20, 0.038, l),  # left upper arm, forearm
        Bone(17, 19, 0.048, r), Bone(19, 21, 0.038, r),  # right arm
    ]
    return BodyModel(22, tuple(bones), head=15, neck=12, head_radius=0.1, face=(2, 1, 17, 16))


def _kit_model() -> BodyModel:
    # KIT-ML joints: 0 root, 1-4 spine to head, 5-7 right arm, 8-10 left arm, 11-15 right leg,
    # 16-20 left leg (KIT_KINEMATIC_CHAIN). Positions are in metres here as everywhere else.
    c, l, r = "center", "left", "right"
    bones = [
        Bone(0, 1, 0.115, c), Bone(1, 2, 0.12, c), Bone(2, 3, 0.06, c),
        Bone(3, 5, 0.065, r), Bone(3, 8, 0.065, l), Bone(5, 8, 0.07, c),
        Bone(5, 6, 0.048, r), Bone(6, 7, 0.038, r), Bone(8, 9, 0.048, l), Bone(9, 10, 0.038, l),
        Bone(0, 11, 0.095, r), Bone(0, 16, 0.095, l), Bone(11, 16, 0.1, c),
        Bone(11, 12, 0.08, r), Bone(12, 13, 0.055, r), Bone(13, 14, 0.042, r), Bone(14, 15, 0.035, r),
        Bone(16, 17, 0.08, l), Bone(17, 18, 0.055, l), Bone(18, 19, 0.042, l), Bone(19, 20, 0.035, l),
    ]
    return BodyModel(21, tuple(bones), head=4, neck=3, head_radius=0.1, face=(11, 16, 5, 8))


def body_model(num_joints: int, chains: Sequence[Sequence[int]] | None = None, radius: float = 0.05) -> BodyModel:
    """The capsule body for 22 (HumanML3D) or 21 (KIT-ML) joints, or plain capsules of ``radius``
    along the bones of ``chains`` for any other skeleton (no head sphere)."""
    if chains is None:
        if num_joints == 22:
            return _humanml3d_model()
        if num_joints == 21:
            return _kit_model()
        raise ValueError(f"joints: no default body for {num_joints} joints (22 HumanML3D, 21 KIT-ML); pass chains")
    bones = tuple(Bone(int(a), int(b), radius) for ch in chains for a, b in zip(ch[:-1], ch[1:]))
    if not bones:
        raise ValueError("chains hold no bone (each chain needs at least two joints)")
    return BodyModel(num_joints, bones)


@dataclass(frozen=True)
class BodyRenderOptions:
    """Camera and look of the capsule renderer."""

    elev: float = 12.0
    """Camera elevation above the horizon, degrees."""
    azim: float = 30.0
    """Camera azimuth, degrees, from the +z axis (a z+-facing person's front) towards +x (the
    person's left side): 0 is straight in front, 90 the person's left."""
    distance: float = 6.0
    """Camera distance from the tracked point, metres (larger: flatter perspective)."""
    follow: bool = True
    """Track the root (smoothed over ``follow_window`` frames); False frames the whole motion."""
    follow_window: int = 15
    """Frames of the moving average applied to the root before the camera follows it."""
    margin: float = 0.06
    """Empty border around the fitted content, as a fraction of the viewport."""
    supersample: int = 2
    """Render at this many times the output resolution per axis and downsample (anti-aliasing)."""
    shadow: bool = True
    """Draw the soft shadow on the floor."""
    outline: bool = True
    """Darken pixels where depth jumps (silhouettes, a limb in front of another)."""
    floor: bool = True
    """Draw the checkered floor (else plain background)."""
    tile: float = 0.5
    """Floor checker tile size in metres."""
    frame_counter: bool = True
    """Draw ``t/T`` in the bottom right corner (also keeps GIF encoders from merging still frames)."""


@dataclass(frozen=True)
class CameraTrack:
    """A pinhole camera that translates with the motion (its orientation never changes).

    Pixel coordinates are in the output image: x to the right, y down, pixel centres at ``k + 0.5``;
    the 3D viewport starts ``top`` rows below the image top (a caption band sits above it).
    """

    right: np.ndarray
    """(3,) camera x axis in world coordinates."""
    up: np.ndarray
    """(3,) camera y axis (world up tilted by the elevation)."""
    forward: np.ndarray
    """(3,) viewing direction."""
    positions: np.ndarray
    """(T, 3) camera centre per frame."""
    focal: float
    """Focal length in output pixels."""
    cx: float
    """Principal point x in viewport pixels."""
    cy: float
    """Principal point y in viewport pixels."""
    width: int
    """Viewport width in pixels."""
    height: int
    """Viewport height in pixels."""
    top: int = 0
    """Rows above the viewport in the output image."""

    def project(self, points: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """World points ``(N, 3)`` at frame ``t`` -> output pixel coordinates ``(N, 2)`` (x, y) and depths ``(N,)``."""
        p = np.asarray(points, dtype=np.float64) - self.positions[t]  # (N, 3) relative to the camera
        x, y, z = p @ self.right, p @ self.up, p @ self.forward
        z = np.maximum(z, 1e-6)
        return np.stack([self.cx + self.focal * x / z, self.top + self.cy - self.focal * y / z], axis=1), z

    def scaled(self, s: int) -> "CameraTrack":
        """The same camera for an ``s`` times larger viewport (no caption band)."""
        return CameraTrack(
            self.right, self.up, self.forward, self.positions, self.focal * s, self.cx * s, self.cy * s,
            self.width * s, self.height * s, 0,
        )


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_joints(joints: np.ndarray, model: BodyModel | None, name: str = "joints") -> tuple[np.ndarray, BodyModel]:
    arr = np.asarray(joints)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"{name} must have shape (T, J, 3) with T >= 1, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype} (shape {arr.shape})")
    arr = arr.astype(np.float64)
    if model is None:
        try:
            model = body_model(arr.shape[1])
        except ValueError as exc:
            raise ValueError(f"{name} of shape {arr.shape}: {exc}") from None
    elif model.num_joints != arr.shape[1]:
        raise ValueError(f"{name} of shape {arr.shape} has {arr.shape[1]} joints, but the body model expects {model.num_joints}")
    used = [j for b in model.bones for j in (b.a, b.b)] + [j for j in (model.head, model.neck) if j is not None]
    if max(used) >= arr.shape[1] or min(used) < 0:
        raise ValueError(f"the body model references joint {max(used)}, but {name} of shape {arr.shape} has {arr.shape[1]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        t, j, _ = np.argwhere(bad)[0]
        raise ValueError(f"{name} of shape {arr.shape} contain NaN or inf (first at frame {t}, joint {j})")
    return arr, model


def _check_size(size: int | tuple[int, int], minimum: int = 32) -> tuple[int, int]:
    try:
        w, h = (size, size) if np.isscalar(size) else tuple(size)
        ok = int(w) == w and int(h) == h and minimum <= w <= 4096 and minimum <= h <= 4096
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be an int or (width, height) of whole pixels in [{minimum}, 4096], got {size!r}")
    return int(w), int(h)


def _check_options(options: BodyRenderOptions | None) -> BodyRenderOptions:
    o = options or BodyRenderOptions()
    if not isinstance(o, BodyRenderOptions):
        raise TypeError(f"options must be a BodyRenderOptions, got {type(o).__name__}")
    if not (isinstance(o.supersample, int) and 1 <= o.supersample <= 4):
        raise ValueError(f"options.supersample must be an int in [1, 4], got {o.supersample!r}")
    if not (-80.0 <= o.elev <= 80.0):
        raise ValueError(f"options.elev must be in [-80, 80] degrees, got {o.elev}")
    if not o.distance > 0.5:
        raise ValueError(f"options.distance must be > 0.5 m, got {o.distance}")
    if not (0.0 <= o.margin < 0.4):
        raise ValueError(f"options.margin must be in [0, 0.4), got {o.margin}")
    if not o.tile > 0:
        raise ValueError(f"options.tile must be positive, got {o.tile}")
    return o


# --------------------------------------------------------------------------------------------
# Geometry per frame
# --------------------------------------------------------------------------------------------


@dataclass
class _Prims:
    """The primitives of one frame (all float64, world coordinates)."""

    a: np.ndarray  # (B, 3) capsule start points
    b: np.ndarray  # (B, 3) capsule end points
    r: np.ndarray  # (B,) radii
    part: np.ndarray  # (B,) part index into _PARTS
    spheres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (S, 3) centres
    sphere_r: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (S,)
    sphere_part: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (S,)


def _frame_prims(model: BodyModel, pose: np.ndarray) -> _Prims:
    """Capsules and spheres of one ``(J, 3)`` pose."""
    ia = np.array([b.a for b in model.bones])
    ib = np.array([b.b for b in model.bones])
    prims = _Prims(
        a=pose[ia], b=pose[ib], r=np.array([b.radius for b in model.bones]),
        part=np.array([_PARTS.index(b.part) for b in model.bones]),
    )
    if model.head is not None:
        head = pose[model.head].copy()
        if model.neck is not None:
            up = head - pose[model.neck]
            n = np.linalg.norm(up)
            if n > 1e-6:
                head = head + up / n * 0.3 * model.head_radius  # the head joint sits low in the skull
        centres, radii, parts = [head], [model.head_radius], [_PARTS.index("head")]
        if model.face is not None:
            rh, lh, rs, ls = model.face
            across = (pose[rh] - pose[lh]) + (pose[rs] - pose[ls])  # points to the body's right
            # up x (to the right) = facing direction: a z+-facing body has across = -x, up x -x = +z.
            fwd = np.cross(np.array([0.0, 1.0, 0.0]), across)
            n = np.linalg.norm(fwd)
            if n > 1e-6:
                centres.append(head + fwd / n * 0.85 * model.head_radius)
                radii.append(0.3 * model.head_radius)
                parts.append(_PARTS.index("nose"))
        prims.spheres, prims.sphere_r, prims.sphere_part = np.array(centres), np.array(radii), np.array(parts)
    return prims


def _max_radius(model: BodyModel) -> float:
    return max([b.radius for b in model.bones] + ([model.head_radius * 1.3] if model.head is not None else []))


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding: ``(T, D) -> (T, D)``."""
    k = int(min(max(window, 1), x.shape[0]))
    if k <= 1:
        return x.copy()
    lo = k // 2
    padded = np.concatenate([np.repeat(x[:1], lo, 0), x, np.repeat(x[-1:], k - 1 - lo, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1, x.shape[1])), padded]), axis=0)
    return (c[k:] - c[:-k]) / k


def _axes(elev: float, azim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e, a = np.radians(elev), np.radians(azim)
    to_cam = np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])  # unit, target -> camera
    forward = -to_cam
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return right, up, forward


def make_camera(
    joints: np.ndarray,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    model: BodyModel | None = None,
    *,
    top: int = 0,
    focal: float | None = None,
) -> CameraTrack:
    """The camera :func:`iter_body_frames` uses for ``joints``: fitted so every frame's body fits the
    ``size`` viewport (``top`` rows reserved above it). ``focal`` forces a zoom (panels sharing one
    scale)."""
    arr, model = _check_joints(joints, model)
    o = _check_options(options)
    w, h = _check_size(size, minimum=8)  # a viewport: the caption band may take part of the image
    right, up, forward = _axes(o.elev, o.azim)
    root = arr[:, 0, :]
    floor = float(arr[..., 1].min())
    height = float(arr[..., 1].max()) - floor
    if o.follow:
        track = _smooth(root[:, [0, 2]], o.follow_window)  # (T, 2) x, z
    else:
        lo, hi = root[:, [0, 2]].min(0), root[:, [0, 2]].max(0)
        track = np.broadcast_to((lo + hi) / 2, (arr.shape[0], 2))
    target = np.stack([track[:, 0], np.full(len(track), floor + 0.5 * height), track[:, 1]], axis=1)  # (T, 3)
    positions = target - o.distance * forward
    # Fit on every joint of every frame, each inflated by the largest radius (conservative).
    rad = _max_radius(model)
    rel = arr - positions[:, None, :]  # (T, J, 3)
    x, y, z = rel @ right, rel @ up, rel @ forward
    z = np.maximum(z - rad, 0.05)
    x_lo, x_hi = float(((x - rad) / z).min()), float(((x + rad) / z).max())
    y_lo, y_hi = float(((y - rad) / z).min()), float(((y + rad) / z).max())
    # At least 0.8 m across, so a thin pose (arms down, side view) is not blown up.
    min_span = 0.8 / o.distance
    if x_hi - x_lo < min_span:
        mid = (x_hi + x_lo) / 2
        x_lo, x_hi = mid - min_span / 2, mid + min_span / 2
    fit = min(w * (1 - 2 * o.margin) / (x_hi - x_lo), h * (1 - 2 * o.margin) / (y_hi - y_lo))
    f = fit if focal is None else float(focal)
    # Principal point chosen to centre the content's projected box in the viewport.
    cx = w / 2 - f * (x_lo + x_hi) / 2
    cy = h / 2 + f * (y_lo + y_hi) / 2
    return CameraTrack(right, up, forward, positions, f, cx, cy, w, h, top)


# --------------------------------------------------------------------------------------------
# Ray casting
# --------------------------------------------------------------------------------------------


class _Raster:
    """Per-clip constant buffers of one viewport: pixel rays, the floor hit points, the background."""

    def __init__(self, cam: CameraTrack, floor_y: float, options: BodyRenderOptions) -> None:
        self.cam, self.o, self.floor_y = cam, options, floor_y
        w, h = cam.width, cam.height
        u = (np.arange(w, dtype=np.float32) + 0.5 - cam.cx) / cam.focal  # (W,) x / z per column
        v = (cam.cy - (np.arange(h, dtype=np.float32) + 0.5)) / cam.focal  # (H,) y / z per row
        rd = (
            cam.forward.astype(np.float32)[None, None, :]
            + u[None, :, None] * cam.right.astype(np.float32)
            + v[:, None, None] * cam.up.astype(np.float32)
        )  # (H, W, 3)
        self.rd = rd / np.linalg.norm(rd, axis=-1, keepdims=True)
        # Light from the upper left of the camera, a little towards the viewer: the visible side
        # of the body is lit whatever the azimuth.
        light = -0.45 * cam.right + 1.15 * np.array([0.0, 1.0, 0.0]) - 0.55 * cam.forward
        self.light = (light / np.linalg.norm(light)).astype(np.float32)
        # The camera height never changes, so the ray parameter of the floor hit is per-pixel
        # constant and each frame's floor point is camera xz + a fixed offset.
        cam_y = float(cam.positions[0, 1])
        dy = self.rd[..., 1]
        # (H, W) rays that reach the floor from above (a camera below the floor sees none of it).
        self.floor_mask = (dy < -1e-4) & (cam_y > floor_y)
        t_floor = np.where(self.floor_mask, (floor_y - cam_y) / np.where(self.floor_mask, dy, -1.0), np.inf)
        self.floor_off = np.stack([self.rd[..., 0], self.rd[..., 2]], -1) * np.where(self.floor_mask, t_floor, 0)[..., None]  # (H, W, 2)
        # Background: a light vertical gradient; the floor fades into it with distance.
        rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        self.sky = (np.array([0.97, 0.975, 0.985], np.float32) * (1 - rows) + np.array([0.90, 0.915, 0.935], np.float32) * rows)
        self.sky = np.broadcast_to(self.sky, (h, w, 3)).copy()
        dist = np.where(self.floor_mask, t_floor, np.inf).astype(np.float32)
        near = float(options.distance)
        self.fog = np.clip((dist - near) / (2.5 * near), 0.0, 1.0) ** 0.8  # (H, W) 0 near .. 1 far
        self.fog[~self.floor_mask] = 1.0
        # Per frame only the checker parity changes: colour = base + step * parity, with the fog
        # blend folded into the two constant images. Rows above the horizon never change.
        rows = np.flatnonzero(self.floor_mask.any(axis=1))
        self.floor_row = int(rows[0]) if len(rows) else h
        tint = np.array([0.98, 0.99, 1.0], np.float32)
        fog = self.fog[self.floor_row :, :, None]
        self.floor_base = self.sky[self.floor_row :] * fog + (1 - fog) * tint * np.float32(0.84)  # (h', W, 3)
        self.floor_step = (1 - fog) * tint * np.float32(0.05)  # lighter tiles
        # In tiles, shifted by +1024 so int truncation equals floor; clipped where fog hides the floor.
        self.tile_off = np.clip(self.floor_off[self.floor_row :] / np.float32(options.tile), -1000, 1e6) + np.float32(1024)

    def background(self, t: int) -> np.ndarray:
        """(H, W, 3) float32 floor (checker, fogged) and sky for frame ``t``."""
        img = self.sky.copy()
        if not self.o.floor or self.floor_row >= self.cam.height:
            return img
        # Camera position in tiles = whole + fraction; only the fraction is added per pixel (float32
        # keeps its precision far from the origin), the whole part only flips the parity.
        cam = self.cam.positions[t, [0, 2]] / self.o.tile
        whole = np.floor(cam)
        frac = (cam - whole).astype(np.float32)
        ix = (self.tile_off[..., 0] + frac[0]).astype(np.int32)
        iz = (self.tile_off[..., 1] + frac[1]).astype(np.int32)
        parity = ((ix + iz + int(whole.sum())) & 1).astype(np.float32)[..., None]  # (h', W, 1) checker 0/1
        img[self.floor_row :] = self.floor_base + self.floor_step * parity
        return img

    def _box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int, int] | None:
        x0, y0 = max(int(np.floor(lo[0])), 0), max(int(np.floor(lo[1])), 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 1, self.cam.width), min(int(np.ceil(hi[1])) + 1, self.cam.height)
        return None if x0 >= x1 or y0 >= y1 else (x0, y0, x1, y1)

    def shadow(self, t: int, prims: _Prims) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
        """Shadow coverage 0..1 on the floor of frame ``t``: ``(H, W)`` float32 and the box
        ``(x0, y0, x1, y1)`` outside which it is zero (None: no shadow in view)."""
        cam = self.cam
        out = np.zeros((cam.height, cam.width), np.float32)
        union: list[tuple[int, int, int, int]] = []
        L = self.light.astype(np.float64)
        soft = 0.035  # metres of penumbra
        a, b, r = prims.a, prims.b, prims.r
        if len(prims.spheres):
            a = np.concatenate([a, prims.spheres])
            b = np.concatenate([b, prims.spheres])
            r = np.concatenate([r, prims.sphere_r])

        def to_floor(p: np.ndarray) -> np.ndarray:  # (N, 3) -> (N, 3) along the light onto y = floor
            return p - ((p[:, 1] - self.floor_y) / L[1])[:, None] * L[None, :]

        fa, fb = to_floor(a), to_floor(b)
        # Objects high above the floor cast fainter shadows.
        lift = np.clip((np.minimum(a[:, 1], b[:, 1]) - self.floor_y) / 1.5, 0.0, 1.0)
        for k in range(len(r)):
            rr = r[k] + soft
            corners = np.array(
                [[p[0] + dx, self.floor_y, p[2] + dz] for p in (fa[k], fb[k]) for dx in (-rr, rr) for dz in (-rr, rr)]
            )
            px, _ = cam.project(corners, t)
            box = self._box(px.min(0), px.max(0))
            if box is None:
                continue
            x0, y0, x1, y1 = box
            m = self.floor_mask[y0:y1, x0:x1]
            if not m.any():
                continue
            pxz = self.floor_off[y0:y1, x0:x1] + np.array([cam.positions[t, 0], cam.positions[t, 2]], np.float32)
            pa = pxz - np.array([fa[k, 0], fa[k, 2]], np.float32)  # (h, w, 2)
            ba = np.array([fb[k, 0] - fa[k, 0], fb[k, 2] - fa[k, 2]], np.float32)
            hh = np.clip((pa @ ba) / max(float(ba @ ba), 1e-12), 0.0, 1.0)
            d = np.linalg.norm(pa - hh[..., None] * ba, axis=-1) - np.float32(r[k])  # signed distance (m)
            cov = np.clip(0.5 - d / (2 * soft), 0.0, 1.0) * np.float32(1.0 - 0.6 * lift[k]) * m
            np.maximum(out[y0:y1, x0:x1], cov, out=out[y0:y1, x0:x1])
            union.append(box)
        if not union:
            return out, None
        boxes = np.array(union)
        return out, (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))

    def bodies(self, t: int, prims: _Prims) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Z-buffered ray casting of the frame's capsules and spheres.

        Returns ``(depth (H, W) with inf where empty, normal (H, W, 3), part index (H, W))``.
        """
        cam = self.cam
        H, W = cam.height, cam.width
        zbuf = np.full((H, W), np.inf, np.float32)
        nrm = np.zeros((H, W, 3), np.float32)
        part = np.zeros((H, W), np.int8)
        ro = cam.positions[t]  # (3,) every ray starts at the camera centre

        def bbox(points: np.ndarray, radius: float) -> tuple[int, int, int, int] | None:
            px, z = cam.project(points, t)
            pad = cam.focal * radius / max(float(z.min()) - radius, 0.05) + 1.0  # projected radius, rounded up
            return self._box(px.min(0) - pad, px.max(0) + pad)

        for k in range(len(prims.r)):
            pa, pb, ra = prims.a[k], prims.b[k], float(prims.r[k])
            box = bbox(np.stack([pa, pb]), ra)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            rd = self.rd[y0:y1, x0:x1]  # (h, w, 3)
            # Capsule intersection (closed form; after I. Quilez, "capsule - ray intersection").
            ba = (pb - pa).astype(np.float32)
            oa = (ro - pa).astype(np.float32)
            baba = float(ba @ ba)
            if baba < 1e-10:  # zero-length bone: a sphere
                t_hit = _ray_sphere(rd, (ro - pa).astype(np.float32), ra)
            else:
                bard = rd @ ba  # (h, w)
                rdoa = rd @ oa
                baoa, oaoa = float(ba @ oa), float(oa @ oa)
                qa = baba - bard * bard
                qb = baba * rdoa - baoa * bard
                qc = baba * oaoa - baoa * baoa - ra * ra * baba
                disc = qb * qb - qa * qc
                with np.errstate(divide="ignore", invalid="ignore"):
                    t_body = (-qb - np.sqrt(np.maximum(disc, 0))) / qa
                y = baoa + t_body * bard
                body_ok = (disc >= 0) & (qa > 1e-12) & (y > 0) & (y < baba)
                # Outside the cylinder part the ray enters through a cap sphere: the nearer of the
                # two hits is the right one (also when the ray runs along the bone axis, qa = 0).
                ob = (ro - pb).astype(np.float32)
                t_cap = np.minimum(
                    _sphere_hit(rdoa, oaoa - ra * ra), _sphere_hit(rd @ ob, float(ob @ ob) - ra * ra)
                )
                t_hit = np.where(body_ok, t_body, np.where(disc >= 0, t_cap, np.inf))
            t_hit = np.where(t_hit > 0, t_hit, np.inf).astype(np.float32)
            z = zbuf[y0:y1, x0:x1]
            win = t_hit < z
            if not win.any():
                continue
            z[win] = t_hit[win]
            pos = ro.astype(np.float32) + rd[win] * t_hit[win][:, None]  # (n, 3) hit points
            rel = pos - pa.astype(np.float32)
            hh = np.clip((rel @ ba) / max(baba, 1e-12), 0.0, 1.0) if baba >= 1e-10 else np.zeros(len(rel), np.float32)
            nrm[y0:y1, x0:x1][win] = (rel - hh[:, None] * ba) / np.float32(ra)
            part[y0:y1, x0:x1][win] = prims.part[k]
        for k in range(len(prims.sphere_r)):
            c, ra = prims.spheres[k], float(prims.sphere_r[k])
            box = bbox(c[None], ra)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            rd = self.rd[y0:y1, x0:x1]
            t_hit = _ray_sphere(rd, (ro - c).astype(np.float32), ra)
            t_hit = np.where(t_hit > 0, t_hit, np.inf).astype(np.float32)
            z = zbuf[y0:y1, x0:x1]
            win = t_hit < z
            if not win.any():
                continue
            z[win] = t_hit[win]
            pos = ro.astype(np.float32) + rd[win] * t_hit[win][:, None]
            nrm[y0:y1, x0:x1][win] = (pos - c.astype(np.float32)) / np.float32(ra)
            part[y0:y1, x0:x1][win] = prims.sphere_part[k]
        return zbuf, nrm, part

    def shade(self, t: int, prims: _Prims) -> np.ndarray:
        """The frame as (H, W, 3) float32 RGB in 0..1."""
        img = self.background(t)
        if self.o.shadow and self.o.floor:
            sh, box = self.shadow(t, prims)
            if box is not None:
                x0, y0, x1, y1 = box
                img[y0:y1, x0:x1] *= (1.0 - 0.42 * sh[y0:y1, x0:x1])[..., None]
        zbuf, nrm, part = self.bodies(t, prims)
        hit = np.isfinite(zbuf)
        if hit.any():
            n = nrm[hit]  # (n, 3)
            n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
            L = self.light
            lambert = np.clip(n @ L, 0.0, 1.0)
            ambient = 0.30 + 0.12 * n[:, 1]  # a little brighter facing up (sky), darker facing down
            view = -self.rd[hit]
            half = L[None, :] + view
            half /= np.linalg.norm(half, axis=-1, keepdims=True)
            spec = 0.18 * np.clip(np.einsum("nc,nc->n", n, half), 0.0, 1.0) ** 24
            base = np.array([PART_COLORS[p] for p in _PARTS], np.float32)[part[hit]]  # (n, 3)
            img[hit] = np.clip(base * (ambient + 0.72 * lambert)[:, None] + spec[:, None], 0.0, 1.0)
            if self.o.outline:
                edge = _depth_edges(zbuf, threshold=0.06)
                img[edge] *= 0.45
        return img


def _sphere_hit(b: np.ndarray, c: float) -> np.ndarray:
    """Nearer root of ``t^2 + 2 b t + c = 0`` (unit ray direction, ``b = rd . oc``,
    ``c = |oc|^2 - r^2``), inf where the ray misses."""
    d = b * b - c
    return np.where(d > 0, -b - np.sqrt(np.maximum(d, 0)), np.inf)


def _ray_sphere(rd: np.ndarray, oc: np.ndarray, radius: float) -> np.ndarray:
    """Nearest hit distance of rays ``rd`` (h, w, 3) from a common origin at ``oc`` relative to the
    sphere centre; inf for misses."""
    return _sphere_hit(rd @ oc, float(oc @ oc) - radius * radius)


def _depth_edges(zbuf: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) bool: body pixels nearer than a 4-neighbour by more than ``threshold`` metres (or next
    to empty background)."""
    z = np.where(np.isfinite(zbuf), zbuf, np.float32(1e6))
    edge = np.zeros(z.shape, bool)
    edge[:, :-1] |= z[:, 1:] - z[:, :-1] > threshold
    edge[:, 1:] |= z[:, :-1] - z[:, 1:] > threshold
    edge[:-1, :] |= z[1:, :] - z[:-1, :] > threshold
    edge[1:, :] |= z[:-1, :] - z[1:, :] > threshold
    return edge & np.isfinite(zbuf)


# --------------------------------------------------------------------------------------------
# Captions and counters
# --------------------------------------------------------------------------------------------


def _title_band(title: str | None, width: int) -> np.ndarray | None:
    """The caption rendered once as a ``(h, width, 3)`` uint8 band (matplotlib text, any script)."""
    wrapped = wrap_text(title, max(int(width / 6.2), 10), max_lines=3)
    if not wrapped:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_lines = wrapped.count("\n") + 1
    height = 8 + 14 * n_lines
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=(0.97, 0.975, 0.985))
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 1 - 4 / height, wrapped, ha="center", va="top", fontsize=8, color="#222222",
             parse_math=False, fontfamily=list(font_family()), linespacing=1.25)
    canvas.draw()
    band = np.asarray(canvas.buffer_rgba())[..., :3]
    out = np.empty((height, width, 3), np.uint8)
    out[...] = band[:1, :1]  # background colour, in case of a one-pixel size rounding
    hh, ww = min(height, band.shape[0]), min(width, band.shape[1])
    out[:hh, :ww] = band[:hh, :ww]
    return out


@functools.lru_cache(maxsize=4)
def _counter_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _draw_counter(frame: np.ndarray, text: str) -> np.ndarray:
    im = Image.fromarray(frame)
    draw = ImageDraw.Draw(im)
    draw.text((im.width - 4, im.height - 3), text, fill=(90, 90, 90), anchor="rd", font=_counter_font(10))
    return np.asarray(im)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def iter_body_frames(
    joints: np.ndarray,
    title: str | None = None,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    model: BodyModel | None = None,
    *,
    focal: float | None = None,
    length: int | None = None,
) -> Iterator[np.ndarray]:
    """Frames ``(H, W, 3)`` uint8, one per pose, rendered lazily (the renderer behind :func:`render_body`).

    ``size`` is the whole output image (a caption band, when there is a title, takes the top rows
    of it). ``focal`` forces the zoom (see :func:`make_camera`); ``length`` pads the clip by
    holding its last frame (side-by-side panels of different lengths). Inputs are checked on
    the call, before any frame is rendered.
    """
    arr, model = _check_joints(joints, model)
    o = _check_options(options)
    w, h = _check_size(size)
    band = _title_band(title, w)
    top = 0 if band is None else band.shape[0]
    if h - top < 16:
        raise ValueError(f"size {size!r} leaves {h - top} rows for the body under the caption; make it taller")
    return _frames(arr, model, o, (w, h - top), band, focal, length)


def _frames(
    arr: np.ndarray,
    model: BodyModel,
    o: BodyRenderOptions,
    viewport: tuple[int, int],
    band: np.ndarray | None,
    focal: float | None,
    length: int | None,
) -> Iterator[np.ndarray]:
    top = 0 if band is None else band.shape[0]
    cam = make_camera(arr, viewport, o, model, top=top, focal=focal)
    ss = o.supersample
    raster = _Raster(cam.scaled(ss), floor_y=float(arr[..., 1].min()), options=o)
    n = arr.shape[0]
    total = n if length is None else max(int(length), n)
    last = None
    for t in range(total):
        if t < n:
            img = raster.shade(t, _frame_prims(model, arr[t]))  # (ss*H, ss*W, 3) float
            rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
            if ss > 1:
                rgb = np.asarray(Image.fromarray(rgb).reduce(ss))  # box filter: supersampling
            last = rgb
        frame = last if band is None else np.concatenate([band, last], axis=0)
        if o.frame_counter:
            frame = _draw_counter(frame, f"{min(t + 1, n)}/{n}" + (" (held)" if t >= n else ""))
        yield np.ascontiguousarray(frame)


def render_body_frames(
    joints: np.ndarray,
    title: str | None = None,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    model: BodyModel | None = None,
) -> np.ndarray:
    """All frames of :func:`iter_body_frames` as one ``(T, H, W, 3)`` uint8 array (for tests and
    notebooks; long clips are better streamed to :func:`render_body`)."""
    return np.stack(list(iter_body_frames(joints, title, size, options, model)))


def _write(frames: Iterator[np.ndarray], out_path: Path, fps: float) -> Path:
    if out_path.suffix.lower() == ".mp4":
        exe = require_ffmpeg()
        return write_atomic(out_path, lambda tmp: save_mp4(frames, tmp, fps, exe))
    return write_atomic(out_path, lambda tmp: save_gif(frames, tmp, fps))


def render_body(
    joints: np.ndarray,
    out_path: str | Path,
    title: str | None = None,
    fps: float = 20.0,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    model: BodyModel | None = None,
) -> Path:
    """Render a joint sequence as a shaded capsule body to an animated ``.gif`` or ``.mp4``.

    Args:
        joints: ``(T, J, 3)`` positions, metres, y up (J = 22 HumanML3D, 21 KIT-ML, or ``model``).
        out_path: output file: ``.mp4`` through ffmpeg (on PATH or from imageio-ffmpeg), anything
            else GIF. Written atomically: a failure leaves no partial file (and an existing file
            untouched); parent folders are created.
        title: caption above the body (wrapped, any Unicode).
        fps: playback frame rate (HumanML3D 20, KIT-ML 12.5).
        size: output size in pixels, an int (square) or ``(width, height)``.
        options: camera and look (:class:`BodyRenderOptions`).
        model: capsules per bone; default from J (:func:`body_model`).

    Returns:
        ``out_path`` as a Path.

    Raises:
        ValueError: bad ``joints`` (shape, NaN/inf: the message names the argument, shape and the
            first bad frame), ``fps <= 0``, bad ``size`` or options.
        RuntimeError: ``.mp4`` and no ffmpeg (checked before rendering).
    """
    out_path = Path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _check_joints(joints, model)  # fail before creating any file
    _check_size(size)
    _check_options(options)
    if out_path.suffix.lower() == ".mp4":
        require_ffmpeg()
    return _write(iter_body_frames(joints, title, size, options, model), out_path, fps)


def render_bodies_frames(
    motions: Sequence[np.ndarray] | np.ndarray,
    titles: Sequence[str | None] | None = None,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    *,
    same_scale: bool = True,
) -> Iterator[np.ndarray]:
    """Yield frames with one capsule-body panel per motion, side by side (``size`` per panel, a
    2-pixel divider between panels). Shorter motions hold their last frame; with ``same_scale``
    every panel uses the smallest fitted zoom so bodies compare in size."""
    if isinstance(motions, np.ndarray) and motions.ndim != 4:
        raise ValueError(
            f"motions must be a list of (T, J, 3) arrays (or one (N, T, J, 3) array), got one array of shape "
            f"{motions.shape}; wrap a single motion in a list or use render_body"
        )
    motions = list(motions)
    if not motions:
        raise ValueError("motions is empty: give at least one (T, J, 3) array")
    checked = [_check_joints(m, None, name=f"motions[{i}]")[0] for i, m in enumerate(motions)]
    if titles is None:
        titles = [None] * len(checked)
    elif isinstance(titles, str) or len(titles) != len(checked):
        raise ValueError(f"titles must be a list with one caption per motion ({len(checked)}), got {titles!r}")
    o = _check_options(options)
    w, h = _check_size(size)
    total = max(m.shape[0] for m in checked)
    bands = [_title_band(t, w) for t in titles]
    # Every panel's caption band gets the height of the tallest, so the bodies line up.
    band_h = max((b.shape[0] for b in bands if b is not None), default=0)
    if h - band_h < 16:
        raise ValueError(f"size {size!r} leaves {h - band_h} rows for the bodies under the captions; make it taller")
    models = [body_model(m.shape[1]) for m in checked]
    viewport = (w, h - band_h)
    focal = None
    if same_scale:
        focal = min(make_camera(m, viewport, o, md).focal for m, md in zip(checked, models))
    gens = [_frames(m, md, o, viewport, None, focal, total) for m, md in zip(checked, models)]
    divider = np.full((h, 2, 3), 200, np.uint8)
    bg = np.array([247, 249, 251], np.uint8)
    headers = []
    for b in bands:
        head = np.empty((band_h, w, 3), np.uint8)
        head[...] = bg
        if b is not None:
            head[: b.shape[0]] = b
        headers.append(head)
    for _ in range(total):
        panels = [np.concatenate([hd, next(g)], axis=0) for hd, g in zip(headers, gens)]
        parts: list[np.ndarray] = []
        for i, p in enumerate(panels):
            if i:
                parts.append(divider)
            parts.append(p)
        yield np.concatenate(parts, axis=1)


def render_bodies(
    motions: Sequence[np.ndarray] | np.ndarray,
    out_path: str | Path,
    titles: Sequence[str | None] | None = None,
    fps: float = 20.0,
    size: int | tuple[int, int] = 320,
    options: BodyRenderOptions | None = None,
    *,
    same_scale: bool = True,
) -> Path:
    """Several motions as capsule bodies side by side in one ``.gif`` / ``.mp4`` (e.g. generated
    vs ground truth); arguments as :func:`render_bodies_frames` and :func:`render_body`. The image
    is ``N * width + 2 * (N - 1)`` pixels wide."""
    out_path = Path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out_path.suffix.lower() == ".mp4":
        require_ffmpeg()
    frames = render_bodies_frames(motions, titles, size, options, same_scale=same_scale)
    first = next(frames)  # validates every input before any file exists

    def chain() -> Iterator[np.ndarray]:
        yield first
        yield from frames

    return _write(chain(), out_path, fps)


# --------------------------------------------------------------------------------------------
# SMPL meshes (optional, not bundled)
# --------------------------------------------------------------------------------------------

_SMPL_FILES = ("SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz", "smpl/SMPL_NEUTRAL.pkl", "smpl/SMPL_NEUTRAL.npz")


def smpl_missing(smpl_dir: str | Path) -> list[str]:
    """What a mesh rendering from ``smpl_dir`` would still need: the ``smplx`` package and an SMPL
    model file (``SMPL_NEUTRAL.pkl``/``.npz``, from https://smpl.is.tue.mpg.de after registering).
    Returns human-readable items; empty when everything is there."""
    import importlib.util

    missing = []
    if importlib.util.find_spec("smplx") is None:
        missing.append("the Python package smplx (pip install smplx)")
    d = Path(smpl_dir)
    if not d.is_dir():
        missing.append(f"the SMPL model folder {d} (it does not exist)")
    elif not any((d / f).is_file() for f in _SMPL_FILES):
        missing.append(f"an SMPL model file in {d}: one of {', '.join(_SMPL_FILES)}")
    return missing

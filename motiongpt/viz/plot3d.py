"""Skeleton rendering of joint sequences to animated GIF / MP4 and to PNG frame strips.

Several motions can share one animation side by side (:func:`render_motions`).

Joints are ``(T, J, 3)`` global positions in metres with y up (HumanML3D: J = 22, KIT-ML: J = 21).
Everything uses ``matplotlib.figure.Figure`` with the Agg canvas directly, so no pyplot global state
or GUI backend is touched (safe in tests, threads and headless servers).

Speed: the figure, the 3D axes and every artist are created once; each frame only updates line data,
the ground window and a frame counter, then redraws the Agg canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d import proj3d  # importing mplot3d also registers the "3d" projection
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection
from PIL import Image

from motiongpt.motion.skeleton import KINEMATIC_CHAIN, KIT_KINEMATIC_CHAIN
from motiongpt.viz.text import font_family, wrap_text
from motiongpt.viz.video import require_ffmpeg, save_gif, save_mp4, write_atomic

__all__ = [
    "Chains",
    "SIDE_COLORS",
    "default_chains",
    "chain_sides",
    "validate_joints",
    "render_motion",
    "render_frames_png",
    "render_to_arrays",
    "render_motions",
    "render_motions_to_arrays",
    "MotionFile",
    "find_motions",
    "load_features_file",
    "load_motion_file",
    "render_directory",
]

Chains = Sequence[Sequence[int]]

# Right side warm, left side cool, centre dark: left/right stay distinguishable in grey-scale too.
SIDE_COLORS = {"right": "#d62728", "left": "#1f77b4", "center": "#333333"}
# Both standard chain lists are ordered right leg, left leg, spine, right arm, left arm (T2M's
# paramUtil order; KIT's face joints are right hip 11, left hip 16, right shoulder 5, left shoulder 8).
_STANDARD_SIDES = ("right", "left", "center", "right", "left")
_FALLBACK_PALETTE = ("#d62728", "#1f77b4", "#333333", "#ff7f0e", "#17becf", "#2ca02c", "#9467bd", "#8c564b")


def default_chains(num_joints: int) -> tuple[tuple[int, ...], ...]:
    """Kinematic chains for 22 (HumanML3D) or 21 (KIT-ML) joints; ``ValueError`` otherwise."""
    if num_joints == 22:
        return KINEMATIC_CHAIN
    if num_joints == 21:
        return KIT_KINEMATIC_CHAIN
    raise ValueError(f"no default kinematic chains for {num_joints} joints (22 HumanML3D, 21 KIT-ML); pass chains=")


def chain_sides(chains: Chains) -> list[str]:
    """``"right"``/``"left"``/``"center"`` per chain for the standard chains, else ``""``."""
    key = tuple(tuple(c) for c in chains)
    if key in (KINEMATIC_CHAIN, KIT_KINEMATIC_CHAIN):
        return list(_STANDARD_SIDES)
    return [""] * len(chains)


def _chain_colors(chains: Chains) -> list[str]:
    return [SIDE_COLORS[s] if s else _FALLBACK_PALETTE[i % len(_FALLBACK_PALETTE)] for i, s in enumerate(chain_sides(chains))]


def validate_joints(joints: np.ndarray, chains: Chains | None = None) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """Check a joint sequence and pick its chains.

    Returns:
        ``(joints as float64 (T, J, 3), chains)``.

    Raises:
        ValueError: naming the shape when it is not ``(T, J, 3)`` with ``T >= 1``, when J has no
            default chains and none were given, when a chain index is out of range, or when
            positions are not finite.
    """
    arr = np.asarray(joints)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 2:
        raise ValueError(f"joints must have shape (T, J, 3) with T >= 1, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"joints must be numeric, got dtype {arr.dtype} (shape {arr.shape})")
    arr = arr.astype(np.float64, copy=False)
    if chains is None:
        try:
            chains = default_chains(arr.shape[1])
        except ValueError as exc:
            raise ValueError(f"joints of shape {arr.shape}: {exc}") from None
    chains = tuple(tuple(int(j) for j in c) for c in chains)
    top = max((max(c) for c in chains if c), default=-1)
    if top >= arr.shape[1] or any(j < 0 for c in chains for j in c):
        raise ValueError(f"chains reference joint {top}, but joints of shape {arr.shape} have {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"joints of shape {arr.shape} contain NaN or inf")
    return arr, chains


def _to_plot(xyz: np.ndarray) -> np.ndarray:
    """Data (x, y up, z) -> matplotlib 3D (X, Y, Z up) as the proper rotation (x, -z, y).

    A plain axis swap (x, z, y) would be a reflection and draw every motion mirrored (left as right).
    """
    return np.stack([xyz[..., 0], -xyz[..., 2], xyz[..., 1]], axis=-1)


@dataclass(frozen=True)
class _View:
    """Per-frame camera windows shared by every panel of one motion."""

    centers: np.ndarray  # (T, 2) plot X, Y centre of the view window per frame
    half: np.ndarray  # (2,) half extents of the ground window along plot X, Y (metres)
    floor: float  # plot Z of the floor
    top: float  # plot Z of the top of the view box
    grid_step: float  # ground grid spacing (metres)


def _make_view(pts: np.ndarray, follow: bool | None, follow_threshold: float = 3.0) -> _View:
    """Choose the view: a fixed window over the whole motion, or one that follows the root.

    ``pts`` is ``(T, J, 3)`` in plot coordinates. Following keeps long walks at a readable size.
    """
    floor = float(pts[..., 2].min())
    height = max(float(pts[..., 2].max()) - floor, 0.5)
    root = pts[:, 0, :2]
    lo, hi = pts[..., :2].reshape(-1, 2).min(0), pts[..., :2].reshape(-1, 2).max(0)
    if follow is None:
        follow = bool((root.max(0) - root.min(0)).max() > follow_threshold)
    if follow:
        # A square window covering the body's own spread around the root, at least half the height.
        spread = float(np.abs(pts[..., :2] - root[:, None, :]).max())
        half = np.full(2, max(spread, height / 2) + 0.4)
        centers = root.copy()
    else:
        # The ground rectangle follows the motion's extent (plus a margin), at least 1.5 m across so
        # a motion in place still stands on a visible floor.
        half = np.maximum((hi - lo) / 2 + 0.4, 0.75)
        centers = np.broadcast_to((lo + hi) / 2, root.shape).copy()
    # About 8-16 grid cells along the longer side, in round steps.
    step = next(s for s in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 1e9) if 2 * float(half.max()) / s <= 16)
    return _View(centers=centers, half=half, floor=floor, top=floor + height * 1.05, grid_step=step)


class _Scene:
    """The artists of one skeleton panel on a 3D axes, updated in place per frame."""

    def __init__(
        self,
        ax,
        pts: np.ndarray,
        chains: tuple[tuple[int, ...], ...],
        view: _View,
        *,
        elev: float,
        azim: float,
        linewidth: float,
        trajectory: bool,
    ) -> None:
        self.ax, self.pts, self.chains, self.view = ax, pts, chains, view
        ax.set_axis_off()
        ax.view_init(elev=elev, azim=azim)
        # Equal metric scale on all three axes; zoom compensates the empty margin of 3D axes.
        ax.set_box_aspect((2 * view.half[0], 2 * view.half[1], view.top - view.floor))
        ax.set_zlim(view.floor, view.top)
        # Manual z-order: the camera looks down on the floor, so floor < grid < path < bones always
        # holds; matplotlib's per-artist depth sort would sometimes draw the floor over the feet.
        ax.computed_zorder = False
        self.ground = Poly3DCollection([np.zeros((4, 3))], facecolor="#e8e8e8", edgecolor="none", zorder=0)
        ax.add_collection3d(self.ground)
        self.grid = Line3DCollection([np.zeros((2, 3))], colors="#b0b0b0", linewidths=0.6, zorder=1)
        ax.add_collection3d(self.grid)
        self.traj_all = self.traj_now = None
        if trajectory:
            (self.traj_all,) = ax.plot([], [], [], color="#8c8c8c", lw=1.0, ls=(0, (2, 2)), zorder=2)
            (self.traj_now,) = ax.plot([], [], [], color="#2a2a2a", lw=1.6, zorder=3)
        self.lines = [
            ax.plot([], [], [], color=color, lw=linewidth, solid_capstyle="round", zorder=4 + k)[0]
            for k, color in enumerate(_chain_colors(chains))
        ]
        # A dot on the head (the end of the centre chain) shows which way is up at a glance.
        sides = chain_sides(chains)
        self.head_joint = chains[sides.index("center")][-1] if "center" in sides else None
        (self.head,) = ax.plot([], [], [], "o", color=SIDE_COLORS["center"], ms=linewidth * 1.6, zorder=4 + len(chains))

    def update(self, t: int) -> None:
        v, pts = self.view, self.pts
        cx, cy = v.centers[t]
        (hx, hy) = v.half
        x0, x1, y0, y1 = cx - hx, cx + hx, cy - hy, cy + hy
        self.ax.set_xlim(x0, x1)
        self.ax.set_ylim(y0, y1)
        f = v.floor
        self.ground.set_verts([np.array([[x0, y0, f], [x1, y0, f], [x1, y1, f], [x0, y1, f]])])
        # Grid lines at world-fixed multiples of the step, so the floor visibly scrolls when following.
        gx = np.arange(math.ceil(x0 / v.grid_step), math.floor(x1 / v.grid_step) + 1) * v.grid_step
        gy = np.arange(math.ceil(y0 / v.grid_step), math.floor(y1 / v.grid_step) + 1) * v.grid_step
        segs = [((x, y0, f), (x, y1, f)) for x in gx] + [((x0, y, f), (x1, y, f)) for y in gy]
        self.grid.set_segments(segs)
        if self.traj_all is not None:
            root = pts[:, 0, :2]
            # Mask path points outside the window (3D artists are not clipped to the axes box).
            outside = (root[:, 0] < x0) | (root[:, 0] > x1) | (root[:, 1] < y0) | (root[:, 1] > y1)
            px = np.where(outside, np.nan, root[:, 0])
            py = np.where(outside, np.nan, root[:, 1])
            pz = np.full_like(px, f + 1e-3)
            self.traj_all.set_data_3d(px, py, pz)
            self.traj_now.set_data_3d(px[: t + 1], py[: t + 1], pz[: t + 1])
        frame = pts[t]
        for line, chain in zip(self.lines, self.chains):
            seg = frame[list(chain)]
            line.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])
        if self.head_joint is not None:
            head = frame[self.head_joint]
            self.head.set_data_3d([head[0]], [head[1]], [head[2]])


def _relative_content(pts: np.ndarray, view: _View) -> np.ndarray:
    """``(T*J, 3)`` poses relative to each frame's view window: x, y minus the window centre, z
    minus the floor (what :func:`_fit_axes` must keep inside the panel)."""
    rel = pts - np.concatenate([view.centers, np.full((len(view.centers), 1), view.floor)], axis=1)[:, None, :]
    return rel.reshape(-1, 3)


def _share_views(views: Sequence[_View]) -> list[_View]:
    """Give every panel the same window size and height, so side-by-side panels share one metric
    scale (a generated motion that is too small or travels too little is visibly so)."""
    half = np.max([v.half for v in views], axis=0)
    height = max(v.top - v.floor for v in views)
    step = next(s for s in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 1e9) if 2 * float(half.max()) / s <= 16)
    return [_View(centers=v.centers, half=half, floor=v.floor, top=v.floor + height, grid_step=step) for v in views]


def _fit_axes(ax, rect: tuple[float, float, float, float], view: _View, rel: np.ndarray) -> None:
    """Move/scale a 3D axes so the projected content (ground square and every pose) fills ``rect``.

    ``rel`` is ``(N, 3)`` content relative to the window (see :func:`_relative_content`); panels
    fitted on the same ``rel`` and view size get the same scale. Matplotlib sizes 3D axes for the
    whole box at any camera angle, which leaves wide empty margins (the box top sits at the highest
    hand of the whole clip). The camera only translates between frames, so fitting once on all
    poses (in frame-0 view coordinates) keeps every frame inside. Scaling the axes scales the
    projection linearly, so two passes converge.
    """
    fig = ax.figure
    (hx, hy), (cx, cy) = view.half, view.centers[0]
    ground = np.array(
        [[cx - hx, cy - hy, view.floor], [cx + hx, cy - hy, view.floor],
         [cx + hx, cy + hy, view.floor], [cx - hx, cy + hy, view.floor]]
    )
    content = np.concatenate([ground, rel + np.array([cx, cy, view.floor])])  # (4 + N, 3)
    rx, ry, rw, rh = rect
    ax.set_position(rect)
    for _ in range(2):
        ax.set_xlim(cx - hx, cx + hx)
        ax.set_ylim(cy - hy, cy + hy)
        ax.apply_aspect()
        px, py, _ = proj3d.proj_transform(content[:, 0], content[:, 1], content[:, 2], ax.get_proj())
        corners = fig.transFigure.inverted().transform(ax.transData.transform(np.column_stack([px, py])))
        (bx0, by0), (bx1, by1) = corners.min(0), corners.max(0)
        scale = min(rw / (bx1 - bx0), rh / (by1 - by0))
        pos = ax.get_position()
        # Map figure point p to rect centre + (p - content centre) * scale.
        bcx, bcy, rcx, rcy = (bx0 + bx1) / 2, (by0 + by1) / 2, rx + rw / 2, ry + rh / 2
        ax.set_position((rcx + (pos.x0 - bcx) * scale, rcy + (pos.y0 - bcy) * scale, pos.width * scale, pos.height * scale))


def _wrap(title: str | None, width: int) -> str:
    return wrap_text(title, width)


def _text(fig: Figure, x: float, y: float, text: str, **kwargs):
    """``fig.text`` for captions: no mathtext (``$`` is literal) and fonts that cover any script."""
    return fig.text(x, y, text, parse_math=False, fontfamily=list(font_family()), **kwargs)


def _legend(fig: Figure, chains: tuple[tuple[int, ...], ...]) -> None:
    sides = chain_sides(chains)
    if "left" in sides:
        handles = [Line2D([], [], color=SIDE_COLORS[s], lw=2.5, label=s) for s in ("left", "right")]
        fig.legend(handles=handles, loc="lower left", fontsize=7, frameon=False, handlelength=1.2, borderaxespad=0.2)


def _canvas_rgb(canvas: FigureCanvasAgg) -> np.ndarray:
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) uint8


def render_to_arrays(
    joints: np.ndarray,
    title: str | None = None,
    chains: Chains | None = None,
    *,
    size: float = 4.0,
    dpi: int = 80,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool | None = None,
    trajectory: bool = True,
    frame_counter: bool = True,
    legend: bool = True,
    linewidth: float = 3.0,
) -> Iterator[np.ndarray]:
    """Yield one ``(H, W, 3)`` uint8 RGB image per frame (the renderer behind :func:`render_motion`)."""
    arr, chains = validate_joints(joints, chains)
    pts = _to_plot(arr)
    view = _make_view(pts, follow)
    fig = Figure(figsize=(size, size), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    wrapped = _wrap(title, int(size * 11))
    n_title = wrapped.count("\n") + 1 if wrapped else 0
    top = 1.0 - 0.055 * n_title
    ax = fig.add_axes((0.0, 0.0, 1.0, top), projection="3d")
    scene = _Scene(ax, pts, chains, view, elev=elev, azim=azim, linewidth=linewidth, trajectory=trajectory)
    _fit_axes(ax, (0.02, 0.02, 0.96, top - 0.03), view, _relative_content(pts, view))
    if wrapped:
        _text(fig, 0.5, 0.985, wrapped, ha="center", va="top", fontsize=8)
    if legend:
        _legend(fig, chains)
    # The counter also makes every frame differ, so GIF encoders never merge identical frames and
    # the frame count always equals T.
    counter = fig.text(0.98, 0.015, "", ha="right", va="bottom", fontsize=7, color="#555555") if frame_counter else None
    n = arr.shape[0]
    for t in range(n):
        scene.update(t)
        if counter is not None:
            counter.set_text(f"{t + 1}/{n}")
        yield _canvas_rgb(canvas)


# The writers live in motiongpt.viz.video (shared with the capsule-body renderer); these module
# names stay so render_motion's steps can be swapped out in tests.
_write_atomic = write_atomic
_save_gif = save_gif
_save_mp4 = save_mp4
_ffmpeg = require_ffmpeg


def render_motion(
    joints: np.ndarray,
    out_path: str | Path,
    title: str | None = None,
    fps: float = 20.0,
    chains: Chains | None = None,
    *,
    size: float = 4.0,
    dpi: int = 80,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool | None = None,
    trajectory: bool = True,
    frame_counter: bool = True,
    legend: bool = True,
) -> Path:
    """Render a joint sequence to an animated ``.gif`` (or ``.mp4`` with ffmpeg, see :func:`ffmpeg_available`).

    Args:
        joints: ``(T, J, 3)`` positions, metres, y up (J = 22 HumanML3D or 21 KIT-ML, else ``chains``).
        out_path: output file; ``.mp4`` uses ffmpeg, anything else is written as GIF. Written
            atomically (temp file in the same folder, then ``os.replace``); parents are created.
        title: caption shown above the figure (wrapped).
        fps: playback frame rate (HumanML3D 20, KIT-ML 12.5).
        chains: kinematic chains to draw; default from J.
        size, dpi: figure size in inches and resolution (4 in x 80 dpi = 320 px square).
        elev, azim: camera angles in degrees; the default sees a z+-facing person from the front left.
        follow: camera follows the root (True), stays fixed over the whole motion (False), or
            follows only when the root travels more than 3 m (None).
        trajectory: draw the root path on the floor (dashed: whole path; solid: up to now).
        frame_counter: draw ``t/T`` in a corner.
        legend: show which colour is the left and which the right side.

    Returns:
        ``out_path`` as a Path.

    Raises:
        ValueError: bad joint shapes (the message names the shape) or ``fps <= 0``.
        RuntimeError: ``.mp4`` requested and no ffmpeg (on PATH or from imageio-ffmpeg) was found
            (checked before rendering).
    """
    out_path = Path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    validate_joints(joints, chains)  # fail before creating any file
    exe = _ffmpeg() if out_path.suffix.lower() == ".mp4" else None
    frames = render_to_arrays(
        joints, title, chains, size=size, dpi=dpi, elev=elev, azim=azim, follow=follow,
        trajectory=trajectory, frame_counter=frame_counter, legend=legend,
    )
    if exe is not None:
        return _write_atomic(out_path, lambda tmp: _save_mp4(frames, tmp, fps, exe))
    return _write_atomic(out_path, lambda tmp: _save_gif(frames, tmp, fps))


def _check_motions(
    motions: Sequence[np.ndarray] | np.ndarray,
    titles: Sequence[str | None] | None,
    chains: Chains | None,
) -> tuple[list[tuple[np.ndarray, tuple[tuple[int, ...], ...]]], list[str | None]]:
    """Validate the inputs of :func:`render_motions`; errors name ``motions[i]`` / ``titles``."""
    if isinstance(motions, np.ndarray) and motions.ndim != 4:
        raise ValueError(
            f"motions must be a list of (T, J, 3) arrays (or one (N, T, J, 3) array), got one array of shape "
            f"{motions.shape}; wrap a single motion in a list or use render_motion"
        )
    motions = list(motions)
    if not motions:
        raise ValueError("motions is empty: give at least one (T, J, 3) array")
    checked = []
    for i, m in enumerate(motions):
        try:
            checked.append(validate_joints(m, chains))
        except ValueError as exc:
            raise ValueError(f"motions[{i}]: {exc}") from None
    if titles is None:
        titles = [None] * len(checked)
    elif isinstance(titles, str):
        raise ValueError(f"titles must be a list with one caption per motion, got the string {titles!r}")
    else:
        titles = list(titles)
        if len(titles) != len(checked):
            raise ValueError(f"titles has {len(titles)} entries for {len(checked)} motions; give one per motion")
    return checked, titles


def render_motions_to_arrays(
    motions: Sequence[np.ndarray] | np.ndarray,
    titles: Sequence[str | None] | None = None,
    chains: Chains | None = None,
    *,
    title: str | None = None,
    panel_size: float = 3.2,
    dpi: int = 80,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool | None = None,
    same_scale: bool = True,
    trajectory: bool = True,
    frame_counter: bool = True,
    legend: bool = True,
    linewidth: float = 2.5,
) -> Iterator[np.ndarray]:
    """Yield ``(H, W, 3)`` uint8 frames with one skeleton panel per motion, side by side.

    The animation lasts as long as the longest motion; shorter ones hold their last frame (their
    counter then reads ``T/T (held)``). Panels are ``panel_size * dpi`` pixels wide each (the
    image is ``len(motions)`` times that). See :func:`render_motions` for the arguments.
    """
    checked, titles = _check_motions(motions, titles, chains)
    n = len(checked)
    pts_list = [_to_plot(arr) for arr, _ in checked]
    views = [_make_view(p, follow) for p in pts_list]
    rels = [_relative_content(p, v) for p, v in zip(pts_list, views)]
    if same_scale:
        # Same window size and the same content to fit -> every panel gets the same scale.
        views = _share_views(views)
        union = np.concatenate(rels)
        rels = [union] * n
    col = int(panel_size * 11)
    wrapped = [_wrap(t, col) for t in titles]
    n_lines = max((w.count("\n") + 1 if w else 0) for w in wrapped)
    sup = _wrap(title, int(panel_size * n * 11))
    n_sup = sup.count("\n") + 1 if sup else 0
    # Vertical layout in inches: overall title, panel captions, the panels, a strip for counters.
    sup_h, cap_h, foot_h = 0.17 * n_sup, 0.15 * n_lines, 0.2 if frame_counter else 0.05
    fig_w, fig_h = panel_size * n, panel_size + sup_h + cap_h + foot_h
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    panel_bottom, panel_top = foot_h / fig_h, (foot_h + panel_size) / fig_h
    scenes, counters = [], []
    for i, ((arr, ch), pts, view) in enumerate(zip(checked, pts_list, views)):
        ax = fig.add_axes((i / n, panel_bottom, 1.0 / n, panel_top - panel_bottom), projection="3d")
        scene = _Scene(ax, pts, ch, view, elev=elev, azim=azim, linewidth=linewidth, trajectory=trajectory)
        _fit_axes(ax, ((i + 0.03) / n, panel_bottom + 0.02 / fig_h, 0.94 / n, panel_top - panel_bottom - 0.04 / fig_h), view, rels[i])
        scenes.append(scene)
        if wrapped[i]:
            _text(fig, (i + 0.5) / n, 1.0 - (sup_h + 0.03) / fig_h, wrapped[i], ha="center", va="top", fontsize=8)
        if frame_counter:
            counters.append(fig.text((i + 0.5) / n, 0.04 / fig_h, "", ha="center", va="bottom", fontsize=7, color="#555555"))
        if i:
            # A thin divider between panels.
            fig.add_artist(Line2D([i / n, i / n], [0.02, 0.98], transform=fig.transFigure, color="#cccccc", lw=0.8))
    if sup:
        _text(fig, 0.5, 1.0 - 0.03 / fig_h, sup, ha="center", va="top", fontsize=9)
    if legend:
        _legend(fig, checked[0][1])
    lengths = [arr.shape[0] for arr, _ in checked]
    total = max(lengths)
    for t in range(total):
        for k, (scene, length) in enumerate(zip(scenes, lengths)):
            scene.update(min(t, length - 1))  # a shorter motion holds its last frame
            if counters:
                counters[k].set_text(f"{min(t + 1, length)}/{length}" + (" (held)" if t >= length else ""))
        yield _canvas_rgb(canvas)


def render_motions(
    motions: Sequence[np.ndarray] | np.ndarray,
    out_path: str | Path,
    titles: Sequence[str | None] | None = None,
    fps: float = 20.0,
    chains: Chains | None = None,
    *,
    title: str | None = None,
    panel_size: float = 3.2,
    dpi: int = 80,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool | None = None,
    same_scale: bool = True,
    trajectory: bool = True,
    frame_counter: bool = True,
    legend: bool = True,
) -> Path:
    """Render several motions side by side into one animated ``.gif`` / ``.mp4`` (e.g. generated
    vs ground truth).

    Args:
        motions: list of ``(T_i, J_i, 3)`` joint arrays (metres, y up; lengths and skeletons may
            differ), or one ``(N, T, J, 3)`` array. Shorter motions hold their last frame.
        out_path: output file; ``.mp4`` through ffmpeg (see :func:`ffmpeg_available`), anything
            else GIF. Written atomically.
        titles: one caption per panel (None entries for none); long captions are wrapped, any
            Unicode is fine.
        fps: playback frame rate.
        chains: kinematic chains for every motion; default from each motion's J.
        title: an overall caption above the panels.
        panel_size, dpi: panel size in inches and resolution; each panel is ``panel_size * dpi``
            pixels wide.
        elev, azim, follow, trajectory, frame_counter, legend: as in :func:`render_motion`; the
            counters are per panel.
        same_scale: give every panel the same window size and scale (default), so sizes and
            distances compare across panels; False fits each panel to its own motion.

    Returns:
        ``out_path`` as a Path.

    Raises:
        ValueError: no motions, a bad motion (the message names ``motions[i]`` and its shape),
            a titles list of the wrong length, or ``fps <= 0``.
        RuntimeError: ``.mp4`` and no ffmpeg (checked before rendering).
    """
    out_path = Path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _check_motions(motions, titles, chains)  # fail before creating any file
    exe = _ffmpeg() if out_path.suffix.lower() == ".mp4" else None
    frames = render_motions_to_arrays(
        motions, titles, chains, title=title, panel_size=panel_size, dpi=dpi, elev=elev, azim=azim, follow=follow,
        same_scale=same_scale, trajectory=trajectory, frame_counter=frame_counter, legend=legend,
    )
    if exe is not None:
        return _write_atomic(out_path, lambda tmp: _save_mp4(frames, tmp, fps, exe))
    return _write_atomic(out_path, lambda tmp: _save_gif(frames, tmp, fps))


def render_frames_png(
    joints: np.ndarray,
    out_path: str | Path,
    frames: Sequence[int] | None = None,
    title: str | None = None,
    chains: Chains | None = None,
    *,
    panel_size: float = 2.6,
    dpi: int = 100,
    elev: float = 20.0,
    azim: float = -60.0,
    follow: bool | None = None,
    trajectory: bool = True,
) -> Path:
    """Render a few frames side by side into one PNG strip (for README figures).

    Args:
        joints: ``(T, J, 3)`` positions, metres, y up.
        out_path: ``.png`` file, written atomically.
        frames: frame indices to show (negative counts from the end); default 5 evenly spaced.
        title: caption above the strip (wrapped).
        chains, elev, azim, follow, trajectory: as in :func:`render_motion`; every panel shares
            one view so the panels are comparable.
        panel_size, dpi: size of one panel in inches, and resolution.

    Raises:
        ValueError: bad joint shapes, no frames, or a frame index out of range (named).
    """
    arr, chains = validate_joints(joints, chains)
    n = arr.shape[0]
    if frames is None:
        frames = np.unique(np.linspace(0, n - 1, min(5, n)).round().astype(int)).tolist()
    frames = [int(f) for f in frames]
    if not frames:
        raise ValueError("frames is empty")
    for f in frames:
        if not -n <= f < n:
            raise ValueError(f"frame {f} out of range for joints of shape {arr.shape}")
    frames = [f % n for f in frames]
    pts = _to_plot(arr)
    view = _make_view(pts, follow)
    rel = _relative_content(pts, view)
    k = len(frames)
    wrapped = _wrap(title, int(panel_size * k * 11))
    n_title = wrapped.count("\n") + 1 if wrapped else 0
    fig_h = panel_size + 0.2 * n_title
    fig = Figure(figsize=(panel_size * k, fig_h), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    top = 1.0 - (0.2 * n_title) / fig_h
    for i, f in enumerate(frames):
        ax = fig.add_axes((i / k, 0.0, 1.0 / k, top), projection="3d")
        scene = _Scene(ax, pts, chains, view, elev=elev, azim=azim, linewidth=2.5, trajectory=trajectory)
        # Fit first: it sets frame 0's limits, which update() then moves to frame f's window.
        _fit_axes(ax, ((i + 0.03) / k, 0.1 / fig_h + 0.02, 0.94 / k, top - 0.1 / fig_h - 0.04), view, rel)
        scene.update(f)
        fig.text((i + 0.5) / k, 0.02, f"frame {f}", ha="center", va="bottom", fontsize=7, color="#555555")
    if wrapped:
        _text(fig, 0.5, 1.0 - 0.05 / fig_h, wrapped, ha="center", va="top", fontsize=9)
    _legend(fig, chains)
    rgb = _canvas_rgb(canvas)
    return _write_atomic(Path(out_path), lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))


# --------------------------------------------------------------------------------------------
# Folders of motions (the logic behind visualization/plot_3d_global.py)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionFile:
    """One motion found in a folder."""

    id: str
    """File stem."""
    path: Path
    """The ``.npy`` file."""
    title: str | None
    """First caption of the clip, when a caption file was found."""


def _first_caption(text_path: Path) -> str | None:
    if not text_path.is_file():
        return None
    for line in text_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            # HumanML3D "caption#tokens#start#end" lines: the caption is before the 3rd-from-last '#'.
            parts = line.strip().rsplit("#", 3)
            return parts[0].strip() if len(parts) == 4 else line.strip()
    return None


def find_motions(directory: str | Path, motion_ids: Sequence[str] | None = None, max_count: int | None = None) -> list[MotionFile]:
    """The motions to render in ``directory``.

    ``directory`` is a dataset root holding ``new_joints/`` (captions from ``texts/<id>.txt``), a
    ``new_joints/`` folder itself (captions from the sibling ``texts/``), or any folder of ``.npy``
    files (captions from ``<id>.txt`` beside them, if present). Ids are sorted unless
    ``motion_ids`` gives them; ``max_count`` keeps the first N.

    Raises:
        FileNotFoundError: naming the folder when it is missing, or the file of a listed id.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"motion folder {directory} not found")
    if (directory / "new_joints").is_dir():
        npy_dir, text_dir = directory / "new_joints", directory / "texts"
    elif directory.name == "new_joints" and (directory.parent / "texts").is_dir():
        npy_dir, text_dir = directory, directory.parent / "texts"
    else:
        npy_dir, text_dir = directory, directory
    if motion_ids:
        paths = [npy_dir / f"{m}.npy" for m in motion_ids]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"motion file(s) not found: {', '.join(missing)}")
    else:
        paths = sorted(npy_dir.glob("*.npy"))
    if max_count is not None:
        paths = paths[: max(max_count, 0)]
    return [MotionFile(p.stem, p, _first_caption(text_dir / f"{p.stem}.txt")) for p in paths]


def load_motion_file(path: str | Path) -> np.ndarray:
    """Joints ``(T, J, 3)`` of a motion file (:func:`motiongpt.motion.io.motion_joints`: ``.npy``
    joints or HumanML3D / KIT-ML features, ``.bvh``), checked for drawing.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the array is neither joints nor features (the message names the file and shape).
    """
    from motiongpt.motion.io import motion_joints

    arr = motion_joints(path)
    try:
        validate_joints(arr)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return arr


_load_joints = load_motion_file


def load_features_file(
    path: str | Path, mean: str | Path | None = None, std: str | Path | None = None
) -> np.ndarray:
    """Joints ``(T, J, 3)`` from a ``(T, 263)`` (HumanML3D) or ``(T, 251)`` (KIT-ML) features file.

    With ``mean`` and ``std`` (``Mean.npy`` / ``Std.npy`` files) the features are first
    de-normalized (``x * std + mean``), for features saved in the normalized space a model works in.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: wrong shapes, non-finite values, or only one of ``mean`` / ``std`` (the message
            names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} not found")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (Mean.npy and Std.npy) or neither")
    try:
        feats = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric .npy array ({exc})") from None
    if feats.ndim != 2 or feats.shape[1] not in (263, 251):
        raise ValueError(f"{path}: features must have shape (T, 263) or (T, 251), got {feats.shape}")
    if mean is not None:
        stats = []
        for p in (Path(mean), Path(std)):
            if not p.is_file():
                raise FileNotFoundError(f"normalization file {p} not found")
            a = np.load(p, allow_pickle=False)
            if a.shape != (feats.shape[1],):
                raise ValueError(f"{p}: shape {a.shape} does not match features of shape {feats.shape} from {path}")
            stats.append(a)
        feats = feats * stats[1] + stats[0]
    from motiongpt.motion.features import features_to_joints

    return features_to_joints(feats, name=str(path))


def render_directory(
    directory: str | Path,
    out_dir: str | Path,
    motion_ids: Sequence[str] | None = None,
    fps: float | None = None,
    max_count: int | None = None,
    ext: str = "gif",
    log: Callable[[str], None] | None = None,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Render every motion of a folder (see :func:`find_motions`) to ``out_dir/<id>.<ext>``.

    ``fps`` defaults to the skeleton's (20 for 22 joints, 12.5 for 21). A file that cannot be
    rendered is reported, not fatal.

    Returns:
        ``(written paths, [(failed file, reason), ...])``.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for motion in find_motions(directory, motion_ids, max_count):
        try:
            joints = _load_joints(motion.path)
        except (OSError, ValueError, EOFError) as exc:
            failed.append((motion.path, str(exc)))
            if log:
                log(f"skip {motion.path}: {exc}")
            continue
        rate = fps if fps is not None else (12.5 if joints.shape[1] == 21 else 20.0)
        out = render_motion(joints, out_dir / f"{motion.id}.{ext}", title=motion.title or motion.id, fps=rate)
        written.append(out)
        if log:
            log(f"wrote {out} ({joints.shape[0]} frames)")
    return written, failed

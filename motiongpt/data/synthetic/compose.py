"""Sequencing and blending of action segments into one clip's pose targets.

A clip is built left to right on a :class:`Timeline`:

* the **base trajectory** (pelvis ground position and heading) is appended segment by segment,
  so it is continuous in position and heading by construction;
* each **foot** is a :class:`FootTrack`, an alternation of planted :class:`Stance` intervals and
  :class:`Swing` phases. A planted foot has one fixed ground placement for its whole stance
  (rolling about the heel or the ball of the foot at its ends), so it cannot slide;
* everything else (nominal pelvis height, pelvis offsets and tilt, spine, head, arm targets, gait
  gains) is a set of **channels** that each segment fills for its own frames; neighbouring
  segments are cross-faded over :data:`BLEND_S` seconds, which gives smooth transitions.

:func:`render_targets` then renders the feet, derives gait-coupled motion from them (arm swing,
pelvis rotation and sway), solves the pelvis height so that every constrained foot target is
reachable (the knee bends instead of the foot leaving its mark), and returns the
:class:`~motiongpt.data.synthetic.body.PoseTargets` for the body solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np

from motiongpt.data.synthetic.body import (
    ANKLE_HEIGHT,
    ARM_REACH,
    FOOT,
    FOOT_FLAT,
    HIP_OFFSET,
    LEG_REACH,
    PoseTargets,
    euler_yxz,
    rot_x,
)

__all__ = [
    "FPS",
    "BLEND_S",
    "CHANNEL_SHAPES",
    "Style",
    "Stance",
    "Swing",
    "FootTrack",
    "Part",
    "Timeline",
    "foot_pose",
    "minjerk",
    "smoothstep",
    "render_targets",
    "RenderedClip",
]

FPS = 20
BLEND_S = 0.4  # cross-fade length between neighbouring segments' channels (seconds)
LEG_MAX = 0.985  # fraction of the full leg length a constrained leg may extend to (no locked knees)
MIN_TOE_CLEARANCE = 0.06  # (m) toe/heel height at mid-swing at least; sin-shaped over the swing
SOFTMIN_K = 0.006  # softness (m) of the pelvis-height min over the constraints (smooth knee bending)

# Channel name -> per-frame shape. See Style.rest_channels for the meaning of each.
CHANNEL_SHAPES: dict[str, tuple[int, ...]] = {
    "y_nom": (),  # nominal pelvis height (m) before the leg-reach constraint
    "off": (2,),  # pelvis offset from the base trajectory in the heading frame (lateral +left, forward)
    "tilt": (2,),  # pelvis (pitch + forward, roll + raises the left hip) in radians
    "spine": (3,),  # spine (pitch, yaw, roll) relative to the pelvis
    "neck": (3,),  # neck/head (pitch + down, yaw + left, roll)
    "wrist": (2, 3),  # wrist targets relative to each shoulder, chest frame
    "pole": (2, 3),  # elbow bend directions, chest frame
    "shrug": (2,),  # extra collar elevation (rad)
    "gait": (4,),  # (arm swing amplitude rad, torso counter-twist rad, lateral sway m, elbow flex on forward swing)
}


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic ease ``3x^2 - 2x^3`` on ``[0, 1]`` (clamped)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def minjerk(x: np.ndarray) -> np.ndarray:
    """Quintic minimum-jerk ease ``10x^3 - 15x^4 + 6x^5`` on ``[0, 1]`` (clamped)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap radians to ``(-pi, pi]``."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass
class Style:
    """Body-level style of one clip (sampled per clip so the corpus is not one robot)."""

    stance_w: float = 0.10
    """Lateral distance of each ankle from the pelvis centre when standing (m)."""
    toe_out: float = 0.12
    """Feet turned outward by this yaw (rad)."""
    stand_ratio: float = 0.985
    """Standing hip-to-ankle distance as a fraction of the shorter leg (knees slightly soft)."""
    lean: float = 0.03
    """Habitual forward lean of the spine (rad)."""
    head_pitch: float = 0.05
    """Habitual head pitch (rad, + looks down)."""
    arm_frac: float = 0.985
    """Shoulder-to-wrist distance of a relaxed hanging arm as a fraction of the arm's reach
    (0.985 ~ 20 degrees of elbow flexion)."""
    arm_fwd: float = 0.08
    """Relaxed arms hang this far forward of vertical (rad)."""
    arm_out: float = 0.03
    """Relaxed wrists sit this far outward of the shoulder (m)."""
    cadence: float = 1.0
    """Step-frequency multiplier."""
    arm_swing: float = 1.0
    """Arm-swing amplitude multiplier."""
    sway: float = 0.025
    """Lateral pelvis sway toward the stance foot while walking (m)."""
    tempo: float = 1.0
    """Gesture speed multiplier (>1 = faster waves, claps, squats)."""
    clearance: float = 1.0
    """Swing-foot clearance multiplier."""

    @property
    def y_stand(self) -> float:
        """Nominal standing pelvis height (m)."""
        return ANKLE_HEIGHT + self.stand_ratio * float(LEG_REACH.min())

    def hang_wrist(self) -> np.ndarray:
        """``(2, 3)`` relaxed wrist targets relative to the shoulders (chest frame)."""
        a = self.arm_fwd
        out = []
        for side, sgn in ((0, 1.0), (1, -1.0)):
            r = self.arm_frac * ARM_REACH[side]
            out.append(np.array([sgn * self.arm_out, -r * math.cos(a), r * math.sin(a)]))
        return np.stack(out)

    @staticmethod
    def hang_pole() -> np.ndarray:
        """``(2, 3)`` elbow bend directions of relaxed arms: backward and slightly out."""
        left = np.array([0.35, 0.0, -1.0])
        return np.stack([left, left * np.array([-1.0, 1.0, 1.0])])

    def rest_channels(self, n: int) -> dict[str, np.ndarray]:
        """Channels of relaxed standing for ``n`` frames (segments start from a copy of these)."""
        return {
            "y_nom": np.full(n, self.y_stand),
            "off": np.zeros((n, 2)),
            "tilt": np.zeros((n, 2)),
            "spine": np.tile([self.lean, 0.0, 0.0], (n, 1)),
            "neck": np.tile([self.head_pitch, 0.0, 0.0], (n, 1)),
            "wrist": np.tile(self.hang_wrist(), (n, 1, 1)),
            "pole": np.tile(self.hang_pole(), (n, 1, 1)),
            "shrug": np.zeros((n, 2)),
            "gait": np.zeros((n, 4)),
        }


@dataclass
class Stance:
    """One planted interval of a foot: a fixed ground placement, rolling at both ends."""

    t0: float
    """First planted time (frames)."""
    t1: float
    """Last planted time (frames); ``math.inf`` while the stance is open."""
    x: float
    """Ground point under the ankle (flat foot), world x."""
    z: float
    """Same, world z."""
    yaw: float
    """Foot heading (rad, + = toward +x)."""
    phi_in: float = 0.0
    """Foot pitch at touch-down (+ toe up: heel strike; - heel up: toe first landing)."""
    n_in: float = 0.0
    """Frames to roll from ``phi_in`` to flat."""
    phi_out: float = 0.0
    """Foot pitch at lift-off (- heel rise about the ball; + toe rise about the heel)."""
    n_out: float = 0.0
    """Frames of the roll from flat to ``phi_out`` before lift-off."""


# A custom swing maps frame times (n,) to (ankle (n, 3), foot direction (n, 3)), world.
SwingFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Swing:
    """The flight of a foot between two stances."""

    clearance: float = 0.08
    """Height (m) of the arc above the straight lift-off -> touch-down line."""
    peak: float = 0.5
    """Fraction of the swing at which the arc is highest."""
    custom: SwingFn | None = None
    """Explicit trajectory (kicks, jump flights) instead of the arc."""
    constraining: bool = True
    """Whether the pelvis height must keep this target reachable (False for kicks/flights)."""
    hold: float = 0.12
    """Fraction of the swing at each end without horizontal motion (lift first, then travel, so
    the foot is never low and gliding, which would read as a sliding contact)."""
    profile: str = "minjerk"
    """Horizontal ease: ``"minjerk"`` (quintic, peak 1.9x mean speed) or ``"cubic"`` (peak 1.5x,
    for running, whose swing is short and long)."""
    pivot: tuple[float, float] | None = None
    """Ground point (x, z) the body turns about; when set (turns in place) the foot orbits it
    (angle and radius interpolated) instead of cutting straight across past the other foot."""


@dataclass
class FootTrack:
    """Alternating stances and swings of one foot (``len(swings) == len(stances) - 1``)."""

    side: int
    """0 = left, 1 = right."""
    stances: list[Stance] = field(default_factory=list)
    """Planted intervals in time order."""
    swings: list[Swing] = field(default_factory=list)
    """``swings[k]`` connects ``stances[k]`` and ``stances[k + 1]``."""

    @property
    def current(self) -> Stance:
        """The latest (open) stance."""
        return self.stances[-1]

    def step(self, t_lift: float, t_land: float, new: Stance, swing: Swing, phi_out: float = 0.0, n_out: float = 0.0) -> None:
        """Close the current stance at ``t_lift`` (rolling to ``phi_out``), swing, plant ``new`` at ``t_land``."""
        cur = self.current
        if t_lift < cur.t0 + 1.0:  # a stance must last at least a frame
            t_lift = cur.t0 + 1.0
        if t_land <= t_lift:
            raise ValueError(f"touch-down {t_land} not after lift-off {t_lift}")
        cur.t1 = t_lift
        room = max(cur.t1 - cur.t0 - cur.n_in, 0.0)
        cur.phi_out, cur.n_out = phi_out, min(n_out, room)
        new.t0 = t_land
        self.swings.append(swing)
        self.stances.append(new)


@dataclass
class Part:
    """One contiguous piece of the timeline (an action segment, or ``pad`` standing)."""

    family: str
    """Action family name, or ``"pad"`` for unlabelled standing at the clip ends."""
    params: dict
    """Action parameters (what the labels and captions describe)."""
    f0: int
    """First frame."""
    f1: int
    """One past the last frame."""
    channels: dict[str, np.ndarray]
    """Channel arrays over ``[f0, f1)`` (see :data:`CHANNEL_SHAPES`)."""
    events: dict = field(default_factory=dict)
    """Extra facts for the labels (e.g. frames of each wave, planned distances)."""


def foot_pose(x: np.ndarray, z: np.ndarray, yaw: np.ndarray, phi: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Ankle position and ankle->toe direction of a foot resting on the floor.

    Args:
        x, z: ``(n,)`` ground point under the ankle of the flat foot.
        yaw: ``(n,)`` foot heading.
        phi: ``(n,)`` pitch: ``> 0`` rolls about the heel (toe up), ``< 0`` about the ball (heel up).
        side: 0 left, 1 right (foot lengths differ slightly).

    Returns:
        ``ankle (n, 3)`` and unit ``foot_dir (n, 3)``.
    """
    x, z, yaw, phi = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, z, yaw, phi))
    flat = FOOT_FLAT[side]
    cy, sy = np.cos(yaw), np.sin(yaw)
    c, s = np.cos(phi), np.sin(phi)

    def to_world(lat: np.ndarray, up: np.ndarray, fwd: np.ndarray) -> np.ndarray:
        # foot frame (lateral +x, up, forward +z) rotated by the yaw
        return np.stack([cy * lat + sy * fwd, up, -sy * lat + cy * fwd], axis=-1)

    # Pitch rotation Rx(-phi) of foot-frame vectors (0, u, f): (u c + f s, -u s + f c)
    def pitch(u: float | np.ndarray, f: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return u * c + f * s, -u * s + f * c

    zero = np.zeros_like(x)
    heel_u, heel_f = pitch(ANKLE_HEIGHT, 0.0)  # ankle from the heel pivot
    toe_u, toe_f = pitch(ANKLE_HEIGHT, -flat)  # ankle from the ball pivot
    heel_piv = phi >= 0
    up = np.where(heel_piv, heel_u, toe_u)
    fwd = np.where(heel_piv, heel_f, flat + toe_f)
    ankle = to_world(zero, up, fwd) + np.stack([x, zero, z], axis=-1)
    du, df = pitch(-ANKLE_HEIGHT, flat)
    fdir = to_world(zero, du, df) / FOOT[side]
    return ankle, fdir


def _profile(t: np.ndarray, t0: float, n: float) -> np.ndarray:
    """Smooth 0 -> 1 over ``[t0, t0 + n]``."""
    if n <= 1e-9:
        return (t >= t0).astype(np.float64)
    return smoothstep((t - t0) / n)


def render_foot(track: FootTrack, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame ankle target, foot direction, contact and constraint flags of one foot.

    Returns:
        ``ankle (T, 3)``, ``foot_dir (T, 3)``, ``contact (T,)`` (planted), ``constrain (T,)``.
    """
    n = t.shape[0]
    ankle = np.zeros((n, 3))
    fdir = np.zeros((n, 3))
    contact = np.zeros(n, dtype=bool)
    constrain = np.ones(n, dtype=bool)
    side = track.side
    for k, st in enumerate(track.stances):
        m = (t >= st.t0) & (t <= st.t1)
        if np.any(m):
            tt = t[m]
            phi = st.phi_in * (1.0 - _profile(tt, st.t0, st.n_in))
            if math.isfinite(st.t1):
                phi = phi + st.phi_out * _profile(tt, st.t1 - st.n_out, st.n_out)
            ones = np.ones_like(tt)
            ankle[m], fdir[m] = foot_pose(st.x * ones, st.z * ones, st.yaw * ones, phi, side)
            contact[m] = True
        if k + 1 >= len(track.stances):
            continue
        sw, nx = track.swings[k], track.stances[k + 1]
        m = (t > st.t1) & (t < nx.t0)
        if not np.any(m):
            continue
        tt = t[m]
        constrain[m] = sw.constraining
        if sw.custom is not None:
            ankle[m], fdir[m] = sw.custom(tt)
            continue
        a0, d0 = foot_pose(st.x, st.z, st.yaw, st.phi_out, side)
        a1, d1 = foot_pose(nx.x, nx.z, nx.yaw, nx.phi_in, side)
        s = (tt - st.t1) / (nx.t0 - st.t1)
        ease = minjerk if sw.profile == "minjerk" else smoothstep
        e = ease((s - sw.hold) / (1.0 - 2.0 * sw.hold))[:, None]
        pos = a0 + (a1 - a0) * e
        if sw.pivot is not None:
            px, pz = sw.pivot
            r0, r1 = math.hypot(a0[0, 0] - px, a0[0, 2] - pz), math.hypot(a1[0, 0] - px, a1[0, 2] - pz)
            th0 = math.atan2(a0[0, 0] - px, a0[0, 2] - pz)
            dth = float(wrap_angle(math.atan2(a1[0, 0] - px, a1[0, 2] - pz) - th0))
            th = th0 + dth * e[:, 0]
            rad = r0 + (r1 - r0) * e[:, 0]
            pos[:, 0] = px + rad * np.sin(th)
            pos[:, 2] = pz + rad * np.cos(th)
        gamma = math.log(0.5) / math.log(min(max(sw.peak, 0.05), 0.95))
        pos[:, 1] += sw.clearance * np.sin(np.pi * s**gamma)
        yaw = st.yaw + float(wrap_angle(nx.yaw - st.yaw)) * minjerk(s)
        phi = st.phi_out + (nx.phi_in - st.phi_out) * smoothstep(s)
        _, fd = foot_pose(np.zeros_like(s), np.zeros_like(s), yaw, phi, side)
        # Keep the toe and the heel point clear of the floor by MIN_TOE_CLEARANCE * sin(pi s).
        toe_y = pos[:, 1] + FOOT[side] * fd[:, 1]
        heel_y = pos[:, 1] - ANKLE_HEIGHT * np.cos(phi)
        pos[:, 1] += np.maximum(0.0, MIN_TOE_CLEARANCE * np.sin(np.pi * s) - np.minimum(toe_y, heel_y))
        ankle[m], fdir[m] = pos, fd
    return ankle, fdir, contact, constrain


class Timeline:
    """Builds a clip left to right: base trajectory, foot tracks and channel parts."""

    def __init__(self, style: Style, x0: float = 0.0, z0: float = 0.0, psi0: float = 0.0) -> None:
        self.style = style
        self.t = 0  # next frame to fill
        self._x: list[np.ndarray] = []
        self._z: list[np.ndarray] = []
        self._psi: list[np.ndarray] = []
        self.pose = (x0, z0, psi0)  # base pose at frame self.t
        self.parts: list[Part] = []
        self.feet = [FootTrack(0), FootTrack(1)]
        for side in (0, 1):
            fx, fz, fyaw = self.neutral_foot(side, x0, z0, psi0)
            self.feet[side].stances.append(Stance(t0=-1e9, t1=math.inf, x=fx, z=fz, yaw=fyaw))

    # ------------------------------------------------------------------ geometry helpers
    def neutral_foot(self, side: int, x: float, z: float, psi: float, width: float | None = None) -> tuple[float, float, float]:
        """Ground placement (x, z, yaw) of a foot in the standing stance for a pelvis base pose."""
        w = self.style.stance_w if width is None else width
        lat = w if side == 0 else -w
        # the ground point under the ankle sits a little behind the pelvis (ankle ~ under the hip)
        fwd = -0.01
        fx = x + math.cos(psi) * lat + math.sin(psi) * fwd
        fz = z - math.sin(psi) * lat + math.cos(psi) * fwd
        toe = self.style.toe_out if side == 0 else -self.style.toe_out
        return fx, fz, psi + toe

    # ------------------------------------------------------------------ appending
    def append_base(self, x: np.ndarray, z: np.ndarray, psi: np.ndarray) -> None:
        """Append base trajectory frames (continuing from :attr:`pose`)."""
        self._x.append(np.asarray(x, dtype=np.float64))
        self._z.append(np.asarray(z, dtype=np.float64))
        self._psi.append(np.asarray(psi, dtype=np.float64))
        self.t += len(x)
        self.pose = (float(x[-1]), float(z[-1]), float(psi[-1]))

    def hold(self, n: int) -> None:
        """Append ``n`` frames of a motionless base."""
        x, z, psi = self.pose
        self.append_base(np.full(n, x), np.full(n, z), np.full(n, psi))

    def add_part(self, family: str, params: dict, f0: int, channels: dict[str, np.ndarray], events: dict | None = None) -> Part:
        """Register the part covering ``[f0, self.t)``."""
        n = self.t - f0
        for name, shape in CHANNEL_SHAPES.items():
            arr = channels[name]
            if arr.shape != (n,) + shape:
                raise ValueError(f"{family}: channel {name} has shape {arr.shape}, expected {(n,) + shape}")
        part = Part(family=family, params=params, f0=f0, f1=self.t, channels=channels, events=events or {})
        self.parts.append(part)
        return part

    def base_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole base trajectory ``(x, z, psi)``, each ``(T,)``."""
        return np.concatenate(self._x), np.concatenate(self._z), np.concatenate(self._psi)


def blend_channels(parts: list[Part], n_frames: int) -> dict[str, np.ndarray]:
    """Cross-fade the parts' channels into whole-clip arrays (edge-held outside each part)."""
    half = BLEND_S * FPS / 2.0
    t = np.arange(n_frames, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name in CHANNEL_SHAPES:
        acc = None
        for k, part in enumerate(parts):
            idx = np.clip(np.arange(n_frames), part.f0, part.f1 - 1) - part.f0
            val = part.channels[name][idx]  # (T, ...) edge-held
            if acc is None:
                acc = val
                continue
            # shorter parts get a shorter fade so no more than two parts ever overlap
            h = min(half, (part.f1 - part.f0) / 2.0, (parts[k - 1].f1 - parts[k - 1].f0) / 2.0)
            w = smoothstep((t - (part.f0 - h)) / max(2.0 * h, 1e-9))
            w = w.reshape((n_frames,) + (1,) * (val.ndim - 1))
            acc = acc * (1.0 - w) + val * w
        out[name] = acc
    return out


def _gauss_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with edge hold (small kernels; numpy only)."""
    if sigma <= 0:
        return x
    r = int(3 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, axis=0), x, np.repeat(x[-1:], r, axis=0)], axis=0)
    out = np.zeros_like(x, dtype=np.float64)
    for i, w in enumerate(k):
        out += w * pad[i : i + x.shape[0]]
    return out


@dataclass
class RenderedClip:
    """Pose targets of one clip plus the per-frame facts the labels need."""

    targets: PoseTargets
    """Inputs of the body solver, ``T`` frames."""
    contact: np.ndarray
    """``(T, 2)`` planted flags of the left/right foot."""
    base: np.ndarray
    """``(T, 3)`` base trajectory (x, z, heading)."""


def render_targets(tl: Timeline) -> RenderedClip:
    """Turn a finished timeline into body-solver targets (see the module docstring)."""
    x, z, psi = tl.base_arrays()
    n = x.shape[0]
    t = np.arange(n, dtype=np.float64)
    ch = blend_channels(tl.parts, n)

    ankle = np.zeros((n, 2, 3))
    fdir = np.zeros((n, 2, 3))
    contact = np.zeros((n, 2), dtype=bool)
    constrain = np.zeros((n, 2), dtype=bool)
    for side in (0, 1):
        ankle[:, side], fdir[:, side], contact[:, side], constrain[:, side] = render_foot(tl.feet[side], t)

    # Gait coupling: how far the right foot is ahead of the left along the heading (-1..1).
    fwd = np.stack([np.sin(psi), np.zeros(n), np.cos(psi)], axis=-1)  # (T, 3)
    lead = ((ankle[:, 1] - ankle[:, 0]) * fwd).sum(-1) / 0.5
    lead = _gauss_smooth(np.clip(lead, -1.5, 1.5), 1.5)
    swing_amp, twist_amp, sway_amp, flex = ch["gait"].T
    stance_bias = _gauss_smooth(contact[:, 0].astype(float) - contact[:, 1].astype(float), 2.5)

    # Pelvis: yaw follows the leading leg, sways and rolls over the stance foot.
    pelvis_yaw = psi + 0.5 * twist_amp * lead
    off_lat = ch["off"][:, 0] + sway_amp * stance_bias
    off_fwd = ch["off"][:, 1]
    root = np.stack(
        [x + np.cos(psi) * off_lat + np.sin(psi) * off_fwd, np.zeros(n), z - np.sin(psi) * off_lat + np.cos(psi) * off_fwd],
        axis=-1,
    )
    pitch = ch["tilt"][:, 0]
    roll = ch["tilt"][:, 1] + 1.2 * sway_amp * stance_bias
    g0 = euler_yxz(pelvis_yaw, pitch, roll)  # (T, 3, 3)

    # Pelvis height: soft minimum of the nominal height and, per leg, the highest pelvis that still
    # lets the hip reach its (constrained) ankle target with a slightly bent knee.
    cands = [ch["y_nom"]]
    for side in (0, 1):
        hip_off = g0 @ HIP_OFFSET[side]  # (T, 3)
        dx = root[:, 0] + hip_off[:, 0] - ankle[:, side, 0]
        dz = root[:, 2] + hip_off[:, 2] - ankle[:, side, 2]
        reach = LEG_MAX * LEG_REACH[side]
        h = ankle[:, side, 1] + np.sqrt(np.maximum(reach**2 - dx * dx - dz * dz, 1e-4)) - hip_off[:, 1]
        cands.append(np.where(constrain[:, side], h, np.inf))
    c = np.stack(cands, axis=0)  # (3, T)
    m = c.min(axis=0)
    root[:, 1] = m - SOFTMIN_K * np.log(np.exp(-(c - m) / SOFTMIN_K).sum(axis=0))

    # Torso counter-rotates against the pelvis; arms swing opposite to the legs.
    spine = ch["spine"].copy()
    spine[:, 1] -= (0.5 + 1.0) * twist_amp * lead
    wrist = ch["wrist"].copy()
    theta = np.stack([swing_amp * lead, -swing_amp * lead], axis=1)  # (T, 2): + = arm forward
    rot = rot_x(-theta)  # (T, 2, 3, 3) about the chest's lateral axis
    wrist = np.einsum("tsij,tsj->tsi", rot, wrist)
    shrink = 1.0 - flex[:, None] * np.maximum(theta, 0.0)
    wrist *= shrink[..., None]

    # Knees point between the pelvis heading and the foot heading.
    fwd_p = np.stack([np.sin(pelvis_yaw), np.zeros(n), np.cos(pelvis_yaw)], axis=-1)
    fdir_h = fdir.copy()
    fdir_h[..., 1] = 0.0
    fdir_h /= np.maximum(np.linalg.norm(fdir_h, axis=-1, keepdims=True), 1e-9)
    knee_pole = fwd_p[:, None, :] + fdir_h

    targets = PoseTargets(
        root=root,
        pelvis=np.stack([pelvis_yaw, pitch, roll], axis=-1),
        spine=spine,
        neck=ch["neck"],
        wrist=wrist,
        elbow_pole=ch["pole"],
        ankle=ankle,
        foot_dir=fdir,
        knee_pole=knee_pole,
        shrug=ch["shrug"],
    )
    return RenderedClip(targets=targets, contact=contact, base=np.stack([x, z, psi], axis=-1))

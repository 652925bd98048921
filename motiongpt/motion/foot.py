"""Foot-contact detection and foot-skating clean-up for ``(T, 22, 3)`` joint positions.

Generated motion (and some retargeted mocap) slides its feet while they should be planted.
:func:`fix_foot_skating` removes that sliding:

1. **Contacts** (:func:`detect_foot_contacts`), per foot joint (left ankle, left toe, right
   ankle, right toe, the four joints of the HumanML3D contact features): the joint is in contact
   when its speed is below ``vel_thresh`` (m/s; HumanML3D labels contacts by speed alone, with
   0.002 m^2 per frame at 20 fps, i.e. 0.89 m/s) *and* its height above its own floor level (a
   low percentile of its height over the clip, so a clip need not stand on y = 0) is below
   ``height_thresh``. Contact runs shorter than ``min_contact_frames`` are dropped.
2. **Pinning**: during a contact run the joint's horizontal position (x, z) is replaced by the
   run's mean position; its height is kept. Over ``blend_frames`` frames before and after a run
   the correction of the run's edge frame fades in/out (smoothstep), so the foot does not jump
   and a foot that already stands still is left as it is.
3. **Leg chain**: a joint that is not pinned moves with the other joint of its foot (the ankle
   follows a planted toe at toe-off, the toe a planted ankle at heel strike). The hip stays
   where it is; the knee is re-solved by analytic two-bone IK so the ankle reaches its target
   with the frame's own thigh and shin lengths, bending in the plane the original knee bent in
   (forward for a straight leg). The toe is put back at its own distance from the ankle,
   pointing at its target. Bone lengths are therefore preserved exactly; a target out of the
   leg's reach is approached as far as the straight leg allows (its height then changes too).

Measured: a synthetic walk with an injected 0.18 m/s sway loses 97 % of its sliding during
contacts (``tests/motion/test_foot.py``); tiny-VQ-VAE reconstructions of 10 held-out demo clips
slide 0.093 m/s during the ground truth's contacts, 0.021 m/s after the clean-up.

Joints outside the legs, and leg joints of frames outside every contact run and blend window,
are returned unchanged.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DEFAULT_VEL_THRESH",
    "DEFAULT_HEIGHT_THRESH",
    "FOOT_JOINTS",
    "detect_foot_contacts",
    "fix_foot_skating",
    "foot_skating",
]

# HumanML3D labels a contact below sqrt(FOOT_CONTACT_THRESHOLD) * 20 fps = 0.894 m/s.
# Defaults: slower than HumanML3D's label threshold, because pinning a joint that still moves
# (a heel lifting at toe-off) distorts the step more than leaving a slow slide does.
DEFAULT_VEL_THRESH = 0.5  # m/s
DEFAULT_HEIGHT_THRESH = 0.03  # m above the joint's floor level
_FLOOR_PERCENTILE = 5.0  # the joint's floor level: robust to a few frames of penetration

# (hip, knee, ankle, toe) of the left and right leg; contacts are reported in the HumanML3D
# feature order: left ankle, left toe, right ankle, right toe.
_LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
FOOT_JOINTS = (7, 10, 8, 11)


def _check(joints: object, fps: float, name: str | None) -> np.ndarray:
    where = f"{name}: " if name is not None else ""
    arr = np.asarray(joints)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{where}expected joints as a real-valued numeric array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1:] != (22, 3):
        raise ValueError(f"{where}expected joints of shape [T, 22, 3], got {tuple(arr.shape)}")
    if arr.shape[0] < 2:
        raise ValueError(f"{where}expected at least 2 frames of joints (speeds need a next frame), got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        frame = int(np.argmax(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)))
        raise ValueError(f"{where}joints contain NaN or inf values (first at frame {frame})")
    if isinstance(fps, bool) or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"{where}fps must be a positive number, got {fps!r}")
    return arr.astype(np.float64)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of every run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _speeds(pos: np.ndarray, fps: float) -> np.ndarray:
    """``(T, ...)`` speed of ``(T, ..., 3)`` positions: central differences, one-sided at the ends."""
    return np.linalg.norm(np.gradient(pos, axis=0), axis=-1) * fps


def detect_foot_contacts(
    joints: np.ndarray,
    fps: float = 20.0,
    *,
    vel_thresh: float = DEFAULT_VEL_THRESH,
    height_thresh: float | None = DEFAULT_HEIGHT_THRESH,
    min_contact_frames: int = 2,
    name: str | None = None,
) -> np.ndarray:
    """Foot contacts of ``(T, 22, 3)`` joints (metres, y up): bool ``(T, 4)`` for the left
    ankle, left toe, right ankle, right toe (the order of HumanML3D's contact features).

    A joint is in contact when its speed (m/s, central differences) is below ``vel_thresh`` and
    its height above its floor level (5th percentile of its height over the clip) is below
    ``height_thresh`` (None: speed only, as HumanML3D labels contacts). Runs shorter than
    ``min_contact_frames`` are dropped.
    """
    arr = _check(joints, fps, name)
    feet = arr[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    contact = _speeds(feet, fps) < vel_thresh  # (T, 4)
    if height_thresh is not None:
        floor = np.percentile(feet[..., 1], _FLOOR_PERCENTILE, axis=0)  # (4,)
        contact &= feet[..., 1] - floor < height_thresh
    for k in range(contact.shape[1]):
        for a, b in _runs(contact[:, k]):
            if b - a < min_contact_frames:
                contact[a:b, k] = False
    return contact


def foot_skating(joints: np.ndarray, contacts: np.ndarray, fps: float = 20.0) -> float:
    """Mean horizontal speed (m/s) of the foot joints over the frames they are in contact.

    ``contacts``: bool ``(T, 4)`` as from :func:`detect_foot_contacts` (or ground truth). The
    speed of frame t is the forward difference t -> t + 1, counted when t and t + 1 are both in
    contact; returns 0.0 when there is no such frame.
    """
    feet = np.asarray(joints, dtype=np.float64)[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    step = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 4) horizontal
    both = contacts[:-1] & contacts[1:]
    return float(step[both].mean()) if both.any() else 0.0


def _pin_offsets(xz: np.ndarray, contact: np.ndarray, blend_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal correction ``(T, 2)`` of one joint that pins it during contact runs, and its
    weight ``(T,)`` (1 in a run, fading to 0 outside).

    Inside a run the correction moves the joint to the run's mean position. Outside, the
    correction of the run's nearest edge frame fades out over ``blend_frames`` (smoothstep), so
    a foot that already stands still at its contact position is left untouched.
    """
    n = len(xz)
    offset = np.zeros((n, 2))
    weight = np.zeros(n)
    frames = np.arange(n)
    for a, b in _runs(contact):
        pin = xz[a:b].mean(axis=0)  # (2,) the run's mean position
        offset[a:b] = pin - xz[a:b]
        weight[a:b] = 1.0
        for edge, side in ((a, frames < a), (b - 1, frames > b - 1)):
            dist = np.abs(frames - edge)
            s = np.clip(1.0 - dist / (blend_frames + 1.0), 0.0, 1.0)
            w = np.where(side, s * s * (3.0 - 2.0 * s), 0.0)  # smoothstep fade
            take = w > weight  # overlapping fades: the nearer run wins
            weight[take] = w[take]
            offset[take] = w[take, None] * (pin - xz[edge])
    return offset, weight


def _two_bone_ik(
    hip: np.ndarray, target: np.ndarray, thigh: np.ndarray, shin: np.ndarray, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle ``(N, 3)`` reaching ``target`` from ``hip`` with bone lengths ``(N,)``.

    The knee bends toward ``pole`` (a direction, made perpendicular to hip -> target). A target
    beyond reach (or nearer than |thigh - shin|) is approached along the hip -> target line.
    """
    v = target - hip  # (N, 3)
    dist = np.linalg.norm(v, axis=-1)  # (N,)
    u = v / np.maximum(dist, 1e-12)[:, None]
    d = np.clip(dist, np.abs(thigh - shin) + 1e-9, thigh + shin)
    cos_a = np.clip((thigh**2 + d**2 - shin**2) / (2.0 * thigh * d), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    n = pole - (pole * u).sum(-1, keepdims=True) * u
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    knee = hip + thigh[:, None] * (cos_a[:, None] * u + sin_a[:, None] * n)
    ankle = hip + d[:, None] * u
    return knee, ankle


def fix_foot_skating(
    joints: np.ndarray,
    fps: float = 20.0,
    *,
    vel_thresh: float = DEFAULT_VEL_THRESH,
    height_thresh: float | None = DEFAULT_HEIGHT_THRESH,
    blend_frames: int = 2,
    min_contact_frames: int = 2,
    contacts: np.ndarray | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Remove foot sliding during contacts; returns float32 ``(T, 22, 3)`` (see module docstring).

    Args:
        joints: ``(T, 22, 3)`` global positions, metres, y up.
        fps: frame rate (speeds are in m/s).
        vel_thresh: contact speed threshold, m/s.
        height_thresh: contact height threshold above the joint's floor level, m (None: off).
        blend_frames: frames over which the pinning fades in before and out after a contact.
        min_contact_frames: shorter contact runs are ignored.
        contacts: bool ``(T, 4)`` contacts to use instead of detecting them (left ankle, left
            toe, right ankle, right toe).
        name: clip id or path, quoted in error messages.
    """
    arr = _check(joints, fps, name)
    where = f"{name}: " if name is not None else ""
    if isinstance(blend_frames, bool) or not isinstance(blend_frames, (int, np.integer)) or blend_frames < 0:
        raise ValueError(f"{where}blend_frames must be an integer >= 0, got {blend_frames!r}")
    if contacts is None:
        contacts = detect_foot_contacts(
            arr, fps, vel_thresh=vel_thresh, height_thresh=height_thresh,
            min_contact_frames=min_contact_frames, name=name,
        )
    else:
        contacts = np.asarray(contacts)
        if contacts.shape != (len(arr), 4):
            raise ValueError(f"{where}expected contacts of shape [{len(arr)}, 4], got {tuple(contacts.shape)}")
        contacts = contacts.astype(bool)
    out = arr.copy()
    # Facing direction per frame: the fallback knee bend direction for a straight leg.
    across = arr[:, 1] - arr[:, 2]  # (T, 3) right hip -> left hip (= +x when facing +z)
    forward = np.cross(across, np.array([0.0, 1.0, 0.0]))  # (T, 3)
    for side, (hip, knee, ankle, toe) in enumerate(_LEGS):
        c_ankle, c_toe = contacts[:, 2 * side], contacts[:, 2 * side + 1]
        off_ankle, w_ankle = _pin_offsets(arr[:, ankle][:, [0, 2]], c_ankle, blend_frames)  # (T, 2), (T,)
        off_toe, w_toe = _pin_offsets(arr[:, toe][:, [0, 2]], c_toe, blend_frames)
        rows = np.flatnonzero((w_ankle > 0) | (w_toe > 0))
        if len(rows) == 0:
            continue
        p_hip, p_knee, p_ankle, p_toe = (arr[rows, j] for j in (hip, knee, ankle, toe))  # (N, 3)
        thigh = np.linalg.norm(p_knee - p_hip, axis=-1)  # (N,)
        shin = np.linalg.norm(p_ankle - p_knee, axis=-1)
        foot = np.linalg.norm(p_toe - p_ankle, axis=-1)
        # Ankle target: its own pin, and as far as it is not pinned it moves with the toe's
        # correction (a foot rolling over its planted toe); its height is kept.
        target = p_ankle.copy()
        target[:, [0, 2]] += off_ankle[rows] + (1.0 - w_ankle[rows, None]) * off_toe[rows]
        # Knee bend plane of the original pose; a straight leg bends forward.
        u0 = p_ankle - p_hip
        u0 = u0 / np.maximum(np.linalg.norm(u0, axis=-1, keepdims=True), 1e-12)
        pole = (p_knee - p_hip) - ((p_knee - p_hip) * u0).sum(-1, keepdims=True) * u0
        straight = np.linalg.norm(pole, axis=-1) < 1e-6
        pole[straight] = forward[rows][straight]
        new_knee, new_ankle = _two_bone_ik(p_hip, target, thigh, shin, pole)
        # Toe: its own pin, and as far as it is not pinned it follows the ankle; then put back
        # at its distance from the ankle.
        toe_target = p_toe + (1.0 - w_toe[rows, None]) * (new_ankle - p_ankle)
        toe_target[:, [0, 2]] += off_toe[rows]
        direction = toe_target - new_ankle
        direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
        out[rows, knee] = new_knee
        out[rows, ankle] = new_ankle
        out[rows, toe] = new_ankle + foot[:, None] * direction
    return out.astype(np.float32)

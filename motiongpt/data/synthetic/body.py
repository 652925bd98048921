"""Kinematic body solver: high-level pose targets -> local joint rotations -> joint positions.

The synthetic animation is authored as a few intuitive per-frame signals (pelvis position and
orientation, spine/neck angles, wrist targets for the arms, ankle targets for the legs). This
module turns them into the per-bone rotations of the SMPL 22-joint skeleton and runs
:func:`motiongpt.motion.skeleton.forward_kinematics`, so every bone has exactly the reference
length. Legs and arms use analytic two-bone IK with a pole vector (knee forward, elbow out/back),
so a planted ankle target gives a planted ankle: no foot sliding by construction.

Everything is vectorized over frames; one call can solve many clips concatenated along the frame
axis (the corpus builder does that per worker chunk to amortize numpy's per-call overhead).

Conventions (those of the rest pose of the skeleton): y up, the body faces +z, its left side is
+x. A bone's "frame" is the global rotation applied to its rest offset (``RAW_OFFSETS`` times the
bone length); local rotations are relative to the previous bone of the kinematic chain, and every
chain (including the arm chains that start at spine3) starts from the root rotation, exactly as
``forward_kinematics`` accumulates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motiongpt.motion.quaternion import matrix_to_quat
from motiongpt.motion.skeleton import KINEMATIC_CHAIN, TARGET_BONE_LENGTHS, TARGET_OFFSETS, forward_kinematics

__all__ = [
    "rot_x",
    "rot_y",
    "rot_z",
    "euler_yxz",
    "PoseTargets",
    "BodySolution",
    "solve_body",
    "SHOULDER_IN_CHEST",
    "THIGH",
    "SHIN",
    "FOOT",
    "UPPER_ARM",
    "FOREARM",
    "HIP_OFFSET",
    "ANKLE_HEIGHT",
    "FOOT_FLAT",
    "LEG_REACH",
    "ARM_REACH",
]

# ---------------------------------------------------------------------------- skeleton numbers
# Index 0 = left, 1 = right throughout this package.
THIGH = np.array([TARGET_BONE_LENGTHS[4], TARGET_BONE_LENGTHS[5]])  # (2,) hip -> knee
SHIN = np.array([TARGET_BONE_LENGTHS[7], TARGET_BONE_LENGTHS[8]])  # (2,) knee -> ankle
FOOT = np.array([TARGET_BONE_LENGTHS[10], TARGET_BONE_LENGTHS[11]])  # (2,) ankle -> foot (toe)
UPPER_ARM = np.array([TARGET_BONE_LENGTHS[18], TARGET_BONE_LENGTHS[19]])  # (2,) shoulder -> elbow
FOREARM = np.array([TARGET_BONE_LENGTHS[20], TARGET_BONE_LENGTHS[21]])  # (2,) elbow -> wrist
HIP_OFFSET = np.stack([TARGET_OFFSETS[1], TARGET_OFFSETS[2]])  # (2, 3) pelvis -> hip, pelvis frame
LEG_REACH = THIGH + SHIN  # (2,) fully straight leg, hip to ankle
ARM_REACH = UPPER_ARM + FOREARM  # (2,)

# The skeleton has no heel joint: with the foot flat, the ankle joint sits ANKLE_HEIGHT above the
# floor and the "foot" joint (ball of the foot) on it. Real HumanML3D clips show ~5.5 cm between
# them, so the foot bone is pitched ~23 degrees down in a flat stance.
ANKLE_HEIGHT = 0.06
FOOT_FLAT = np.sqrt(FOOT**2 - ANKLE_HEIGHT**2)  # (2,) horizontal ankle -> toe distance, flat foot

# Natural shoulder girdle (rest pose has the collar->shoulder bone hanging down, which is not
# human): the collar bone rises ~50 degrees from horizontal and the shoulder bone points outward
# ~10 degrees below horizontal, matching the reference skeleton's frame-0 pose.
COLLAR_ANGLE = np.deg2rad(50.0)
SHOULDER_ANGLE = np.deg2rad(80.0)
HEAD_PITCH = np.deg2rad(50.0)  # the neck -> head bone rises this much above the forward axis

_RIGHT_SIGN = np.array([1.0, -1.0])  # mirror factor for x (lateral) quantities, left/right


def rot_x(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about +x, ``(...) -> (..., 3, 3)``; positive tips +y toward +z."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(a.shape + (3, 3))


def rot_y(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about +y (yaw), ``(...) -> (..., 3, 3)``; positive turns +z toward +x (left)."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(a.shape + (3, 3))


def rot_z(a: np.ndarray) -> np.ndarray:
    """Rotation matrices about +z, ``(...) -> (..., 3, 3)``; positive tips +x toward +y."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(a.shape + (3, 3))


def euler_yxz(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """``Ry(yaw) @ Rx(pitch) @ Rz(roll)``: yaw left (+), lean forward (+), tilt (+ drops the left side... see rot_z)."""
    return rot_y(yaw) @ rot_x(pitch) @ rot_z(roll)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _orthonormal(ref: np.ndarray, d: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit component of ``ref`` orthogonal to unit ``d`` (``fallback`` where ref is parallel to d)."""
    r = ref - (ref * d).sum(-1, keepdims=True) * d
    n = np.linalg.norm(r, axis=-1, keepdims=True)
    bad = n[..., 0] < 1e-6
    if np.any(bad):
        fb = np.broadcast_to(fallback, r.shape)
        r2 = fb - (fb * d).sum(-1, keepdims=True) * d
        r = np.where(bad[..., None], r2, r)
        n = np.linalg.norm(r, axis=-1, keepdims=True)
    return r / np.maximum(n, 1e-12)


def _frame_down(d: np.ndarray, ref_z: np.ndarray) -> np.ndarray:
    """Bone frame for a rest direction -y: column y = -d, column z = ref_z orthogonalized."""
    y = -d
    z = _orthonormal(ref_z, y, np.array([1.0, 0.0, 0.0]))
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def _frame_forward(d: np.ndarray, ref_y: np.ndarray) -> np.ndarray:
    """Bone frame for a rest direction +z: column z = d, column y = ref_y orthogonalized."""
    z = d
    y = _orthonormal(ref_y, z, np.array([0.0, 0.0, -1.0]))
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def two_bone_ik(
    root: np.ndarray, target: np.ndarray, a: float, b: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analytic two-bone IK.

    Args:
        root: ``(N, 3)`` first joint (hip / shoulder).
        target: ``(N, 3)`` wanted end joint (ankle / wrist).
        a, b: upper and lower bone lengths.
        pole: ``(N, 3)`` direction the middle joint (knee / elbow) bends toward.

    Returns:
        ``(mid, dir_upper, dir_lower)``: middle joint ``(N, 3)`` and unit bone directions. The end
        joint reaches ``target`` exactly when it is within reach; otherwise the limb points at it.
    """
    v = target - root  # (N, 3)
    dist = np.linalg.norm(v, axis=-1)
    u = v / np.maximum(dist, 1e-9)[:, None]
    dc = np.clip(dist, abs(a - b) + 1e-4, (a + b) * 0.99995)  # stay off the singular straight limb
    cos_a = np.clip((a * a + dc * dc - b * b) / (2.0 * a * dc), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    n = _orthonormal(pole, u, np.array([0.0, 0.0, 1.0]))
    mid = root + a * (cos_a[:, None] * u + sin_a[:, None] * n)
    end = root + dc[:, None] * u
    return mid, _normalize(mid - root), _normalize(end - mid)


@dataclass
class PoseTargets:
    """Per-frame high-level pose of one or many clips (frames concatenated, ``N`` in total)."""

    root: np.ndarray
    """``(N, 3)`` pelvis position, world, metres."""
    pelvis: np.ndarray
    """``(N, 3)`` pelvis (yaw, pitch, roll) in radians: yaw = heading (+ turns left), pitch + leans forward."""
    spine: np.ndarray
    """``(N, 3)`` total spine bend (pitch, yaw, roll) relative to the pelvis, spread over 3 bones."""
    neck: np.ndarray
    """``(N, 3)`` neck+head (pitch, yaw, roll) relative to the chest (pitch + looks down)."""
    wrist: np.ndarray
    """``(N, 2, 3)`` left/right wrist targets relative to the shoulder, in the chest frame."""
    elbow_pole: np.ndarray
    """``(N, 2, 3)`` left/right elbow bend directions, chest frame."""
    ankle: np.ndarray
    """``(N, 2, 3)`` left/right ankle targets, world."""
    foot_dir: np.ndarray
    """``(N, 2, 3)`` left/right unit ankle->toe directions, world."""
    knee_pole: np.ndarray
    """``(N, 2, 3)`` left/right knee bend directions (forward), world."""
    shrug: np.ndarray
    """``(N, 2)`` extra collar elevation (radians) left/right, e.g. when an arm is raised overhead."""


@dataclass
class BodySolution:
    """Output of :func:`solve_body`."""

    joints: np.ndarray
    """``(N, 22, 3)`` global joint positions from ``forward_kinematics``."""
    local_quats: np.ndarray
    """``(N, 22, 4)`` local rotations (w, x, y, z); joint 0 holds the root's global rotation."""


# Spine bend distribution over the bones 0->3, 3->6, 6->9 (sums to 1).
_SPINE_SHARE = (0.3, 0.35, 0.35)


def solve_body(p: PoseTargets) -> BodySolution:
    """Solve the skeleton for high-level pose targets (see the module docstring)."""
    n = p.root.shape[0]
    g = np.empty((n, 22, 3, 3))  # bone frames (global rotations), index = child joint
    pos = np.empty((n, 22, 3))  # positions computed on the way (IK needs hip and shoulder)
    g[:, 0] = euler_yxz(p.pelvis[:, 0], p.pelvis[:, 1], p.pelvis[:, 2])
    pos[:, 0] = p.root

    def place(child: int, parent: int) -> None:
        pos[:, child] = pos[:, parent] + np.einsum("nij,j->ni", g[:, child], TARGET_OFFSETS[child])

    # Spine: pelvis -> spine1 -> spine2 -> spine3, then neck and head.
    prev = g[:, 0]
    for child, parent, share in zip((3, 6, 9), (0, 3, 6), _SPINE_SHARE):
        g[:, child] = prev @ euler_yxz(p.spine[:, 1] * share, p.spine[:, 0] * share, p.spine[:, 2] * share)
        prev = g[:, child]
        place(child, parent)
    chest = g[:, 9]
    g[:, 12] = chest @ euler_yxz(p.neck[:, 1] * 0.4, p.neck[:, 0] * 0.4, p.neck[:, 2] * 0.4)
    place(12, 9)
    g[:, 15] = g[:, 12] @ rot_x(-HEAD_PITCH + p.neck[:, 0] * 0.6) @ rot_y(p.neck[:, 1] * 0.6)
    place(15, 12)

    # Arms: fixed natural shoulder girdle (plus shrug), then two-bone IK to the wrist targets.
    for side, (collar, shoulder, elbow, wrist) in enumerate(((13, 16, 18, 20), (14, 17, 19, 21))):
        sgn = _RIGHT_SIGN[side]
        g[:, collar] = chest @ rot_z(sgn * (COLLAR_ANGLE + p.shrug[:, side]))
        place(collar, 9)
        g[:, shoulder] = chest @ rot_z(sgn * (SHOULDER_ANGLE + 0.5 * p.shrug[:, side]))
        place(shoulder, collar)
        target = pos[:, shoulder] + np.einsum("nij,nj->ni", chest, p.wrist[:, side])
        pole = np.einsum("nij,nj->ni", chest, p.elbow_pole[:, side])
        mid, d_up, d_lo = two_bone_ik(pos[:, shoulder], target, UPPER_ARM[side], FOREARM[side], pole)
        # Twist reference: the bend direction, so the frames stay smooth (position-only anyway).
        g[:, elbow] = _frame_down(d_up, pole)
        g[:, wrist] = _frame_down(d_lo, pole)
        place(elbow, shoulder)
        place(wrist, elbow)

    # Legs: hip bones follow the pelvis; two-bone IK to the ankle; foot frame from its direction.
    up = np.array([0.0, 1.0, 0.0])
    for side, (hip, knee, ankle, toe) in enumerate(((1, 4, 7, 10), (2, 5, 8, 11))):
        g[:, hip] = g[:, 0]
        place(hip, 0)
        mid, d_up, d_lo = two_bone_ik(pos[:, hip], p.ankle[:, side], THIGH[side], SHIN[side], p.knee_pole[:, side])
        g[:, knee] = _frame_down(d_up, p.knee_pole[:, side])
        g[:, ankle] = _frame_down(d_lo, p.knee_pole[:, side])
        g[:, toe] = _frame_forward(_normalize(p.foot_dir[:, side]), np.broadcast_to(up, (n, 3)))
        place(knee, hip)
        place(ankle, knee)
        place(toe, ankle)

    # Global bone frames -> local rotations along the chains (each chain starts at the root).
    local = np.empty_like(g)
    local[:, 0] = g[:, 0]
    for chain in KINEMATIC_CHAIN:
        prev = g[:, 0]
        for child in chain[1:]:
            local[:, child] = np.swapaxes(prev, -1, -2) @ g[:, child]
            prev = g[:, child]
    quats = matrix_to_quat(local)  # (N, 22, 4)
    joints = forward_kinematics(quats, p.root)
    return BodySolution(joints=joints, local_quats=quats)


def _shoulder_in_chest() -> np.ndarray:
    """Left/right shoulder joint position relative to spine3 in the chest frame (no shrug)."""
    out = np.empty((2, 3))
    for side, (collar, shoulder) in enumerate(((13, 16), (14, 17))):
        sgn = _RIGHT_SIGN[side]
        out[side] = rot_z(sgn * COLLAR_ANGLE) @ TARGET_OFFSETS[collar] + rot_z(sgn * SHOULDER_ANGLE) @ TARGET_OFFSETS[shoulder]
    return out


SHOULDER_IN_CHEST = _shoulder_in_chest()  # (2, 3)

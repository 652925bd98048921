"""Inverse kinematics of the HumanML3D reference, written literally (one loop step per bone).

:func:`inverse_kinematics` gives local joint rotations (e.g. for BVH export or for
:func:`motiongpt.motion.skeleton.forward_kinematics`); :func:`uniform_skeleton` is the
reference's retargeting step (IK, then FK with the target offsets). The feature pipeline in
:mod:`motiongpt.motion.features` uses closed forms of both (see its module docstring); these
literal versions document the reference and let the tests check the closed forms.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from motiongpt.motion.quaternion import qbetween, qfrom_axis_angle, qinv, qmul
from motiongpt.motion.skeleton import (
    FACE_JOINTS,
    KINEMATIC_CHAIN,
    RAW_OFFSETS,
    TARGET_OFFSETS,
    forward_kinematics,
)

__all__ = ["inverse_kinematics", "uniform_skeleton", "random_motion"]

_LEG_BONES = (5, 8)


def _check(joints: np.ndarray, name: str | None) -> np.ndarray:
    where = f"{name}: " if name is not None else ""
    arr = np.asarray(joints)
    if arr.ndim != 3 or arr.shape[1:] != (len(RAW_OFFSETS), 3):
        raise ValueError(f"{where}expected joints of shape [T, {len(RAW_OFFSETS)}, 3], got {tuple(arr.shape)}")
    if arr.shape[0] < 1:
        raise ValueError(f"{where}expected at least 1 frame of joints, got 0")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}joints contain NaN or inf values")
    return arr.astype(np.float64)


def _finite(out: np.ndarray, name: str | None) -> np.ndarray:
    """Raise instead of returning the NaNs that degenerate poses give (as in the reference)."""
    if not np.isfinite(out).all():
        frame = int(np.argmax(~np.isfinite(out.reshape(len(out), -1)).all(axis=1)))
        where = f"{name}: " if name is not None else ""
        raise ValueError(
            f"{where}degenerate pose at frame {frame}: a zero-length bone, a bone opposite its rest "
            "direction or an undefined facing direction makes the reference IK 0/0"
        )
    return out


def _inverse_kinematics64(joints: np.ndarray, smooth_forward: bool) -> np.ndarray:
    """Reference IK on float64 ``(T, 22, 3)`` -> ``(T, 22, 4)`` local quaternions (float64)."""
    r_hip, l_hip, r_sdr, l_sdr = FACE_JOINTS
    # Quirk of the reference: the hip term is j1 - j2 (the face-z+ step uses j2 - j1).
    across = (joints[:, l_hip] - joints[:, r_hip]) + (joints[:, r_sdr] - joints[:, l_sdr])  # (T, 3)
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)  # (T, 3)
    if smooth_forward:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root = qbetween(forward, np.array([0.0, 0.0, 1.0]))  # (T, 4)
    root[0] = (1.0, 0.0, 0.0, 0.0)  # frame 0: identity (reference behaviour)
    quats = np.zeros(joints.shape[:-1] + (4,))  # (T, 22, 4)
    quats[:, 0] = root
    for chain in KINEMATIC_CHAIN:
        rot = root  # every chain starts from the root quaternion, also those starting at joint 9
        for parent, child in zip(chain[:-1], chain[1:]):
            v = joints[:, child] - joints[:, parent]  # (T, 3)
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
            local = qmul(qinv(rot), qbetween(RAW_OFFSETS[child], v))  # (T, 4)
            quats[:, child] = local
            rot = qmul(rot, local)
    return quats


def inverse_kinematics(
    joints: np.ndarray, *, smooth_forward: bool = False, name: str | None = None
) -> np.ndarray:
    """Local joint rotations of ``[T, 22, 3]`` positions, as the HumanML3D reference computes them.

    Joint 0 holds the root (global) rotation, ``between(forward, z+)`` with the reference's facing
    quirk and the identity at frame 0; joint ``j`` holds its rotation relative to the accumulated
    rotation of its chain, which starts from the root rotation for every chain. With
    ``smooth_forward`` the facing direction is Gaussian-smoothed (sigma 20, mode 'nearest').

    Returns:
        float32 ``[T, 22, 4]`` quaternions ``(w, x, y, z)``;
        ``forward_kinematics(q, root, offsets)`` rebuilds positions with any bone lengths.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is reported by _finite below
        quats = _inverse_kinematics64(_check(joints, name), smooth_forward)
    return _finite(quats, name).astype(np.float32)


def uniform_skeleton(joints: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Retarget ``[T, 22, 3]`` positions to the target skeleton, literally as the reference does.

    scale = target leg length / source leg length (leg length = max|offset[5]| + max|offset[8]|,
    source offsets from frame 0's bone lengths); IK without smoothing; FK with ``TARGET_OFFSETS``
    from the root positions times scale. Returns float32 ``[T, 22, 3]``.
    """
    arr = _check(joints, name)
    parents = np.zeros(len(RAW_OFFSETS), dtype=np.int64)
    for chain in KINEMATIC_CHAIN:
        for parent, child in zip(chain[:-1], chain[1:]):
            parents[child] = parent
    lengths0 = np.linalg.norm(arr[0, 1:] - arr[0, parents[1:]], axis=-1)  # (21,)
    src_offsets = RAW_OFFSETS * np.concatenate([[0.0], lengths0])[:, None]  # (22, 3)
    src_leg = sum(np.abs(src_offsets[j]).max() for j in _LEG_BONES)
    tgt_leg = sum(np.abs(TARGET_OFFSETS[j]).max() for j in _LEG_BONES)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is reported by _finite below
        quats = _inverse_kinematics64(arr, smooth_forward=False)
    out = forward_kinematics(quats, arr[:, 0] * (tgt_leg / src_leg), TARGET_OFFSETS, KINEMATIC_CHAIN)
    return _finite(out, name).astype(np.float32)


def random_motion(
    n_frames: int, *, seed: int | np.random.Generator | None = None, fps: float = 20.0
) -> np.ndarray:
    """A plausible synthetic clip: ``[n_frames, 22, 3]`` float32 positions on the target skeleton.

    Every joint gets a smooth random local rotation (sums of slow sinusoids, up to ~0.5 rad), the
    root turns slowly about y and walks forward at ~1 m/s with a small vertical bob. Useful for
    tests and benchmarks that must run without the real dataset.
    """
    if n_frames < 1:
        raise ValueError(f"expected n_frames >= 1, got {n_frames}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None] / fps  # (T, 1, 1) seconds
    n_joints = len(RAW_OFFSETS)
    amp = rng.uniform(0.05, 0.25, size=(1, n_joints, 3, 2))
    freq = rng.uniform(0.2, 1.5, size=(1, n_joints, 3, 2)) * 2 * np.pi
    phase = rng.uniform(0, 2 * np.pi, size=(1, n_joints, 3, 2))
    rotvec = (amp * np.sin(freq * t[..., None] + phase)).sum(-1)  # (T, 22, 3) smooth rotation vectors
    angle = np.linalg.norm(rotvec, axis=-1)  # (T, 22)
    local = qfrom_axis_angle(rotvec + 1e-12, angle)  # (T, 22, 4); +1e-12 keeps the axis defined
    # Root: slow yaw drift, facing-direction walk, small bob.
    yaw = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.uniform(-0.3, 0.3) * np.sin(0.5 * t[:, 0, 0] + rng.uniform(0, 6)) / fps)
    yaw_q = qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), yaw)  # (T, 4)
    local[:, 0] = qmul(yaw_q, local[:, 0] * np.array([1.0, 0.3, 0.3, 0.3]))  # (T, 4) mostly yaw
    local[:, 0] /= np.linalg.norm(local[:, 0], axis=-1, keepdims=True)
    speed = rng.uniform(0.5, 1.5)
    step = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=-1) * speed / fps  # (T, 3)
    root = np.cumsum(step, axis=0) + rng.uniform(-2, 2, size=3) * np.array([1.0, 0.0, 1.0])
    root[:, 1] = 0.93 + 0.03 * np.sin(2 * np.pi * 1.8 * t[:, 0, 0])
    joints = forward_kinematics(local, root, TARGET_OFFSETS, KINEMATIC_CHAIN)  # (T, 22, 3)
    return joints.astype(np.float32)

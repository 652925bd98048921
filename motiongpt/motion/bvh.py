"""BVH export and import for the 22-joint HumanML3D (SMPL) skeleton.

Export: :func:`write_bvh` turns ``(T, 22, 3)`` joint positions (metres, y up, any fps) into a
standard BVH file (``HIERARCHY`` / ``ROOT`` / ``JOINT`` / ``End Site`` / ``MOTION``) that
Blender's importer, MotionBuilder and the usual BVH readers accept:

* joints carry SMPL names (``Pelvis``, ``L_Hip``, ``R_Hip``, ``Spine1``, ... see
  :data:`SMPL_BVH_NAMES`) and the SMPL parent structure; the five leaves (toes, head, wrists)
  end in ``End Site`` s;
* the rest pose is a T-pose facing +z with the subject's left on +x (SMPL's own rest pose); bone
  lengths are the embedded reference lengths ``TARGET_BONE_LENGTHS`` (``bone_lengths="reference"``,
  the default) or the clip's mean bone lengths (``"data"``);
* units are **metres** by default, so Blender (whose unit is the metre) imports the figure at
  human size with its default scale 1.0; ``units="cm"`` writes centimetres (MotionBuilder, Maya);
* the root (``Pelvis``, ``OFFSET 0 0 0``) has ``Xposition Yposition Zposition`` channels holding
  the pelvis position; every joint has ``Zrotation Xrotation Yrotation`` channels (degrees; the
  rotation is ``Rz @ Rx @ Ry`` as in the CMU files; ``rotation_order`` picks another order);
* the six children of the two branching joints (``L_Hip``, ``R_Hip``, ``Spine1`` under
  ``Pelvis``; ``Neck``, ``L_Collar``, ``R_Collar`` under ``Spine3``) also get translation
  channels by default (``branch_translations``; see below);
* ``Frame Time`` is ``1 / fps``.

Rotations come from inverse kinematics on the positions: a joint with one child gets the
twist-free (shortest-arc, relative to its parent) rotation that points its bone at the child's
position; the two joints with three children get the least-squares (Kabsch) rotation of their
three rest offsets onto the three observed bones, and the rest offsets of those six branch
bones are fitted to the clip (their mean direction in the parent's frame).

Real HumanML3D clips come from SMPL, whose pelvis triangle (hips, spine) and chest triangle
(neck, collars) are rigid, but the representation does not enforce it: generated motion, the
synthetic corpus and ``random_motion`` (which rotate every bone on its own, as the feature
recipe's IK does) bend them, and then no rotation of ``Pelvis`` places all three children. The
translation channels of the branch children hold their exact offsets in the parent's rotated
frame, so every joint of a clip on the written skeleton is reproduced exactly (measured:
< 3 micrometres, also through Blender 5.0's importer). A clip with other bone lengths (generated
motion) matches every bone direction exactly and positions up to its bone-length differences
(measured on tiny-VQ-VAE reconstructions of the demo corpus: 3.5 mm mean joint error;
``bone_lengths="data"`` writes the clip's mean lengths instead, which helps skeletons far from
the reference such as imported mocap). With ``branch_translations=False`` the file
has the classic layout (translation on the root only): exact for a rigid pelvis and chest (real
SMPL-derived clips), the rigid best fit otherwise (centimetres off on ``random_motion``).

Import: :func:`read_bvh` parses any BVH (any joint count and names, any rotation channel order,
position channels on any joint) into a :class:`BVH`; :meth:`BVH.global_positions` runs forward
kinematics. :func:`bvh_to_joints` maps a file onto the 22 SMPL joints (built-in maps for SMPL
names, CMU 31-joint files and Mixamo ``mixamorig:`` rigs, auto-detected, or a user map),
converts units to metres, rotates the file's up axis to +y and resamples to 20 fps by linear
interpolation of joint positions. :func:`bvh_to_features` continues to the 263-d HumanML3D
features.

Conventions of the reader (the majority convention, also Blender's): a joint's position
channels *replace* its ``OFFSET`` (root offsets are usually zero anyway); rotation channels
compose in the listed order, ``R = R_first @ R_second @ R_third``, acting on column vectors of
the joint's children offsets; the global rotation is ``parent_global @ local``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motiongpt.motion.features import joints_to_features
from motiongpt.motion.foot import fix_foot_skating
from motiongpt.motion.skeleton import PARENTS, TARGET_BONE_LENGTHS
from motiongpt.utils.atomic import atomic_write_text

__all__ = [
    "SMPL_BVH_NAMES",
    "BUILTIN_JOINT_MAPS",
    "BVH",
    "BVHError",
    "write_bvh",
    "bvh_text",
    "read_bvh",
    "parse_bvh",
    "bvh_to_joints",
    "bvh_to_features",
    "detect_joint_map",
    "import_bvh",
    "euler_to_matrix",
    "matrix_to_euler",
    "UNIT_METRES",
]

# SMPL joint names, in HumanML3D joint order (index = joint index of ``(T, 22, 3)`` arrays).
SMPL_BVH_NAMES = (
    "Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle",
    "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder",
    "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist",
)
_N = len(SMPL_BVH_NAMES)
_CHILDREN = [[c for c in range(_N) if PARENTS[c] == j] for j in range(_N)]
_LEAVES = tuple(j for j in range(_N) if not _CHILDREN[j])  # (10, 11, 15, 20, 21)
# The two joints with three children and the rest directions (T-pose) of those children, in
# the gauge frame used to fit them: y along the first child listed, x from right to left.
_BRANCHES = {0: (3, 1, 2), 9: (12, 13, 14)}  # joint -> (up child, left child, right child)

# T-pose rest directions (facing +z, left = +x) of every bone parent -> joint.
_X, _Y, _Z = np.eye(3)
_REST_DIRS = np.array(
    [
        [0, 0, 0], _X, -_X, _Y, -_Y, -_Y, _Y, -_Y, -_Y, _Y, _Z, _Z, _Y, _X, -_X, _Y,
        _X, -_X, _X, -_X, _X, -_X,
    ],
    dtype=np.float64,
)
# End Site offsets (metres) of the leaves: toe tips, top of the head, hand tips.
_END_SITES = {10: 0.05 * _Z, 11: 0.05 * _Z, 15: 0.10 * _Y, 20: 0.08 * _X, 21: -0.08 * _X}

# Metres per file unit for the unit names accepted by ``units=``. "cmu" is the CMU ASF length
# unit (``:units length 0.45`` means 1 unit = 1/0.45 inch) used by the CMU BVH conversions.
UNIT_METRES = {
    "m": 1.0,
    "dm": 0.1,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "ft": 0.3048,
    "cmu": 0.0254 / 0.45,
}

_AXIS = {"X": 0, "Y": 1, "Z": 2}


class BVHError(ValueError):
    """A BVH file (or a joint map for it) is malformed; the message names the file and line."""


# ----------------------------------------------------------------------------- rotations


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` about coordinate axis ``axis`` by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(np.shape(angle) + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]  # the rotated plane, right-handed
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _check_order(order: str) -> tuple[int, int, int]:
    up = order.upper()
    if len(up) != 3 or set(up) != {"X", "Y", "Z"}:
        raise ValueError(f"rotation order must be a permutation of 'XYZ', got {order!r}")
    return tuple(_AXIS[a] for a in up)  # type: ignore[return-value]


def euler_to_matrix(angles_deg: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """BVH Euler angles ``(..., 3)`` in degrees -> rotation matrices ``(..., 3, 3)``.

    ``order`` lists the channels as in the file: ``"ZXY"`` means ``R = Rz @ Rx @ Ry`` with the
    angles in that order.
    """
    axes = _check_order(order)
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return _axis_rotation(axes[0], a[..., 0]) @ _axis_rotation(axes[1], a[..., 1]) @ _axis_rotation(axes[2], a[..., 2])


def matrix_to_euler(m: np.ndarray, order: str = "ZXY", *, unwrap: bool = False) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> Euler angles ``(..., 3)`` in degrees for ``order``.

    Inverse of :func:`euler_to_matrix` with the middle angle in [-90, 90]; at gimbal lock
    (middle angle +-90) the third angle is set to 0. With ``unwrap`` the first and third angles
    are unwrapped along axis 0 (time), so an animation curve never jumps by 360 degrees.
    """
    i, j, k = _check_order(order)
    m = np.asarray(m, dtype=np.float64)
    # Parity of the axis permutation: +1 for cyclic orders (XYZ, YZX, ZXY), -1 otherwise.
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    sb = np.clip(s * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sb)
    cb = np.sqrt(np.maximum(0.0, 1.0 - sb * sb))
    a = np.arctan2(-s * m[..., j, k], m[..., k, k])
    c = np.arctan2(-s * m[..., i, j], m[..., i, i])
    lock = cb < 1e-7
    if np.any(lock):
        # Only a + c (or a - c) is defined: put it all in the first angle.
        a = np.where(lock, np.arctan2(s * m[..., k, j], m[..., j, j]), a)
        c = np.where(lock, 0.0, c)
    out = np.degrees(np.stack([a, b, c], axis=-1))
    if unwrap and out.ndim >= 2 and out.shape[0] > 1:
        out[..., 0] = np.degrees(np.unwrap(np.radians(out[..., 0]), axis=0))
        out[..., 2] = np.degrees(np.unwrap(np.radians(out[..., 2]), axis=0))
    return out


def _rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation matrices ``(..., 3, 3)`` taking directions ``u`` to ``v``.

    Robust for opposite directions (a half turn about an axis perpendicular to ``u``).
    """
    u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(u, v)  # (..., 3), |axis| = sin(angle)
    cos = (u * v).sum(-1)  # (...)
    # Rodrigues with K = [axis]_x: R = I + K + K^2 / (1 + cos)
    kx = np.zeros(u.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2] = -axis[..., 2], axis[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = axis[..., 2], -axis[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -axis[..., 1], axis[..., 0]
    opposite = cos < -1.0 + 1e-9
    denom = np.where(opposite, 1.0, 1.0 + cos)[..., None, None]
    r = np.eye(3) + kx + kx @ kx / denom
    if np.any(opposite):
        # Half turn about any axis n perpendicular to u: R = 2 n n^T - I.
        helper = np.where(np.abs(u[..., :1]) < 0.9, _X, _Y)
        n = np.cross(u, helper)
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        half = 2.0 * n[..., :, None] * n[..., None, :] - np.eye(3)
        r = np.where(opposite[..., None, None], half, r)
    return r


def _kabsch(rest: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Rotations ``(T, 3, 3)`` minimizing ``sum_i |R rest_i - obs_t,i|^2``.

    ``rest``: ``(K, 3)`` vectors; ``obs``: ``(T, K, 3)``.
    """
    h = np.einsum("ki,tkj->tij", rest, obs)  # (T, 3, 3) cross-covariance sum_k rest_k obs_k^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.transpose(0, 2, 1) @ u.transpose(0, 2, 1)))  # (T,) reflection fix
    corr = np.ones((len(h), 3))
    corr[:, 2] = np.where(d == 0, 1.0, d)
    return vt.transpose(0, 2, 1) @ (corr[:, :, None] * u.transpose(0, 2, 1))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- export


def _check_export_joints(joints: object, where: str) -> np.ndarray:
    arr = np.asarray(joints)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{where}expected joints as a real-valued numeric array, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[1:] != (_N, 3):
        raise ValueError(f"{where}expected joints of shape [T, {_N}, 3], got {tuple(arr.shape)}")
    if arr.shape[0] < 1:
        raise ValueError(f"{where}expected at least 1 frame of joints, got 0")
    if not np.isfinite(arr).all():
        frame = int(np.argmax(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)))
        raise ValueError(f"{where}joints contain NaN or inf values (first at frame {frame})")
    arr = arr.astype(np.float64)
    bones = np.linalg.norm(arr[:, 1:] - arr[:, PARENTS[1:]], axis=-1)  # (T, 21)
    if (bones < 1e-6).any():
        t, b = np.argwhere(bones < 1e-6)[0]
        raise ValueError(
            f"{where}degenerate pose at frame {t}: bone {SMPL_BVH_NAMES[PARENTS[b + 1]]} -> "
            f"{SMPL_BVH_NAMES[b + 1]} has zero length, its rotation is undefined"
        )
    return arr


def _solve_rotations(
    joints: np.ndarray, lengths: np.ndarray, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IK for the BVH hierarchy.

    Args:
        joints: ``(T, 22, 3)`` float64 positions.
        lengths: ``(22,)`` bone lengths of the written skeleton (entry 0 unused).

    Returns:
        ``offsets (22, 3)`` rest offsets, ``local (T, 22, 3, 3)`` local rotation matrices
        (joint 0: global root rotation; leaves: identity) and ``branch (T, 22, 3)`` the exact
        local translation (in the parent's rotated frame) of every joint; the writer uses it for
        the six branch children only.
    """
    n_frames = len(joints)
    offsets = _REST_DIRS * lengths[:, None]  # (22, 3)
    glob = np.zeros((n_frames, _N, 3, 3))  # global rotation of every joint
    local = np.zeros((n_frames, _N, 3, 3))
    for j in range(_N):  # parents come before children in joint order
        parent = PARENTS[j]
        g_parent = glob[:, parent] if parent >= 0 else np.broadcast_to(np.eye(3), (n_frames, 3, 3))
        if j in _BRANCHES:
            up, left, right = _BRANCHES[j]
            kids = (up, left, right)
            bones = joints[:, kids] - joints[:, j : j + 1]  # (T, 3, 3): one bone per row
            # Gauge frame from the data: y along the up bone, x from the right to the left child.
            y = _unit(bones[:, 0])
            x = bones[:, 1] - bones[:, 2]
            x = x - (x * y).sum(-1, keepdims=True) * y
            x_norm = np.linalg.norm(x, axis=-1)
            if (x_norm < 1e-9).any():
                t = int(np.argmax(x_norm < 1e-9))
                raise ValueError(
                    f"{where}degenerate pose at frame {t}: {SMPL_BVH_NAMES[left]} and "
                    f"{SMPL_BVH_NAMES[right]} lie on the {SMPL_BVH_NAMES[up]} axis"
                )
            x = x / x_norm[:, None]
            frame = np.stack([x, y, np.cross(x, y)], axis=-1)  # (T, 3, 3) columns x, y, z
            # Rest offsets: the mean direction of each bone in that frame, at the written length
            # (exact when the branch is rigid, the least-squares compromise otherwise).
            in_frame = np.einsum("tji,tkj->tki", frame, bones)  # (T, 3, 3) frame^T @ bone
            for kid, mean_dir in zip(kids, in_frame.mean(axis=0)):
                offsets[kid] = _unit(mean_dir) * lengths[kid]
            g = _kabsch(offsets[list(kids)], bones)  # (T, 3, 3)
        elif j in _LEAVES:
            g = g_parent  # a leaf's rotation moves only its End Site: keep it fixed
        else:
            child = _CHILDREN[j][0]
            bone = joints[:, child] - joints[:, j]  # (T, 3)
            in_parent = np.einsum("tji,tj->ti", g_parent, bone)  # parent^T @ bone
            g = g_parent @ _rotation_between(offsets[child], in_parent)
        glob[:, j] = g
        local[:, j] = np.einsum("tji,tjk->tik", g_parent, g)  # parent^T @ g
    branch = np.zeros((n_frames, _N, 3))
    branch[:, 1:] = np.einsum("tkji,tkj->tki", glob[:, PARENTS[1:]], joints[:, 1:] - joints[:, PARENTS[1:]])
    return offsets, local, branch


# Children of the branch joints: the joints that get translation channels by default.
_BRANCH_CHILDREN = tuple(sorted(c for kids in _BRANCHES.values() for c in kids))


def _hierarchy_lines(
    offsets: np.ndarray, names: Sequence[str], rot_channels: str, scale: float, translated: set[int]
) -> list[str]:
    lines = ["HIERARCHY"]

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{round(x * scale, 6) + 0.0:.6f}" for x in v)

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        if j == 0:
            lines.append(f"ROOT {names[j]}")
            lines.append("{")
            lines.append(f"\tOFFSET {fmt(np.zeros(3))}")
            lines.append(f"\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{pad}JOINT {names[j]}")
            lines.append(f"{pad}{{")
            lines.append(f"{pad}\tOFFSET {fmt(offsets[j])}")
            if j in translated:
                lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
            else:
                lines.append(f"{pad}\tCHANNELS 3 {rot_channels}")
        for child in _CHILDREN[j]:
            emit(child, depth + 1)
        if j in _END_SITES:
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {fmt(_END_SITES[j])}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


def _dfs_order() -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in _CHILDREN[j]:
            visit(c)

    visit(0)
    return order


def bvh_text(
    joints: np.ndarray,
    *,
    fps: float = 20.0,
    names: Sequence[str] = SMPL_BVH_NAMES,
    units: str = "m",
    rotation_order: str = "ZXY",
    bone_lengths: str = "reference",
    branch_translations: bool = True,
    name: str | None = None,
) -> str:
    """The BVH file text for ``(T, 22, 3)`` joints; see :func:`write_bvh` for the arguments."""
    where = f"{name}: " if name is not None else ""
    if isinstance(fps, bool) or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"{where}fps must be a positive number, got {fps!r}")
    if units not in ("m", "cm"):
        raise ValueError(f"{where}units must be 'm' or 'cm', got {units!r}")
    names = tuple(str(n) for n in names)
    if len(names) != _N or len(set(names)) != _N or any(not n or re.search(r"\s|[{}]", n) for n in names):
        raise ValueError(
            f"{where}names must be {_N} distinct joint names without whitespace or braces, got {names!r}"
        )
    axes = _check_order(rotation_order)
    rot_channels = " ".join("XYZ"[a] + "rotation" for a in axes)
    arr = _check_export_joints(joints, where)
    if bone_lengths == "reference":
        lengths = TARGET_BONE_LENGTHS.astype(np.float64)
    elif bone_lengths == "data":
        lengths = np.concatenate([[0.0], np.linalg.norm(arr[:, 1:] - arr[:, PARENTS[1:]], axis=-1).mean(0)])
    else:
        raise ValueError(f"{where}bone_lengths must be 'reference' or 'data', got {bone_lengths!r}")
    scale = 1.0 if units == "m" else 100.0
    offsets, local, branch = _solve_rotations(arr, lengths, where)
    eulers = matrix_to_euler(local, rotation_order.upper(), unwrap=True)  # (T, 22, 3) degrees
    translated = set(_BRANCH_CHILDREN) if branch_translations else set()
    # MOTION rows list each joint's channels in the hierarchy's (depth-first) joint order.
    columns = []
    for j in _dfs_order():
        if j == 0:
            columns.append(arr[:, 0] * scale)  # (T, 3) root position
        elif j in translated:
            columns.append(branch[:, j] * scale)  # (T, 3) exact offset in the parent's frame
        columns.append(eulers[:, j])  # (T, 3)
    rows = np.concatenate(columns, axis=1)  # (T, C)
    lines = _hierarchy_lines(offsets, names, rot_channels, scale, translated)
    lines += ["MOTION", f"Frames: {len(arr)}", f"Frame Time: {1.0 / fps:.8f}"]
    fmt = " ".join(["%.6f"] * rows.shape[1])
    lines += [fmt % tuple(r) for r in rows]
    return "\n".join(lines) + "\n"


def write_bvh(
    joints: np.ndarray,
    path: str | os.PathLike,
    *,
    fps: float = 20.0,
    names: Sequence[str] = SMPL_BVH_NAMES,
    units: str = "m",
    rotation_order: str = "ZXY",
    bone_lengths: str = "reference",
    branch_translations: bool = True,
) -> Path:
    """Write ``(T, 22, 3)`` joint positions as a BVH file (atomically); returns the path.

    Args:
        joints: ``(T, 22, 3)`` global positions, metres, y up, HumanML3D joint order.
        path: output ``.bvh`` path (parent folders are created).
        fps: frame rate of ``joints``; ``Frame Time`` is ``1 / fps``.
        names: the 22 joint names to write (default SMPL names, :data:`SMPL_BVH_NAMES`).
        units: ``"m"`` (default: Blender imports at human size with scale 1.0) or ``"cm"``.
        rotation_order: rotation channel order, ``"ZXY"`` by default (``R = Rz @ Rx @ Ry``).
        bone_lengths: ``"reference"`` (the embedded HumanML3D skeleton) or ``"data"`` (the
            clip's mean bone lengths).
        branch_translations: give the six children of the pelvis and of Spine3 (hips, Spine1,
            neck, collars) translation channels holding their exact offsets, so non-rigid
            pelvis/chest geometry is reproduced; False writes the classic layout (translation on
            the root only) and those joints follow the best rigid fit.

    Rotations are solved by IK so that every bone points where the input's bone points; see the
    module docstring for when positions are exact.
    """
    text = bvh_text(
        joints, fps=fps, names=names, units=units, rotation_order=rotation_order,
        bone_lengths=bone_lengths, branch_translations=branch_translations, name=str(path),
    )
    atomic_write_text(path, text)
    return Path(path)


# ----------------------------------------------------------------------------- import: parsing


_CHANNEL_NAMES = {
    f"{a}{kind}".lower(): f"{a}{kind}" for a in "XYZ" for kind in ("position", "rotation")
}


@dataclass
class BVH:
    """A parsed BVH file.

    Joints are in file order (every parent before its children).
    """

    names: list[str]
    """Joint names, file order."""
    parents: np.ndarray
    """``(J,)`` parent index of every joint, ``-1`` for a root."""
    offsets: np.ndarray
    """``(J, 3)`` ``OFFSET`` of every joint (file units)."""
    channels: list[tuple[str, ...]]
    """Channel names of every joint, canonical case (``"Xposition"``, ``"Zrotation"``, ...)."""
    end_sites: dict[int, np.ndarray]
    """Joint index -> ``End Site`` offset ``(3,)`` for joints that have one."""
    frame_time: float
    """Seconds per frame."""
    motion: np.ndarray
    """``(T, C)`` channel values, C = total channel count (degrees for rotations)."""
    path: str | None = None
    """Source file, quoted in error messages."""
    channel_start: list[int] = field(init=False, default_factory=list)
    """Index of each joint's first channel in a ``motion`` row (computed from ``channels``)."""

    def __post_init__(self) -> None:
        starts, total = [], 0
        for ch in self.channels:
            starts.append(total)
            total += len(ch)
        self.channel_start = starts

    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        """File index of joint ``name`` (exact match)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise BVHError(f"{self.path or '<bvh>'}: no joint named {name!r}") from None

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Local rotations ``(T, J, 3, 3)`` and translations ``(T, J, 3)`` from the channels."""
        t, j = self.n_frames, len(self.names)
        rot = np.broadcast_to(np.eye(3), (t, j, 3, 3)).copy()
        trans = np.broadcast_to(self.offsets, (t, j, 3)).copy()
        for k, chans in enumerate(self.channels):
            start = self.channel_start[k]
            for c, ch in enumerate(chans):
                values = self.motion[:, start + c]  # (T,)
                axis = _AXIS[ch[0]]
                if ch.endswith("position"):
                    trans[:, k, axis] = values  # position channels replace the offset
                else:
                    rot[:, k] = rot[:, k] @ _axis_rotation(axis, np.radians(values))
        return rot, trans

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Global rotations ``(T, J, 3, 3)`` and positions ``(T, J, 3)`` (file units and axes)."""
        rot, trans = self.local_transforms()
        g_rot = np.empty_like(rot)
        g_pos = np.empty_like(trans)
        for k, p in enumerate(self.parents):
            if p < 0:
                g_rot[:, k] = rot[:, k]
                g_pos[:, k] = trans[:, k]
            else:
                g_rot[:, k] = g_rot[:, p] @ rot[:, k]
                g_pos[:, k] = g_pos[:, p] + np.einsum("tij,tj->ti", g_rot[:, p], trans[:, k])
        return g_rot, g_pos

    def global_positions(self) -> np.ndarray:
        """Forward kinematics: ``(T, J, 3)`` joint positions in file units and axes."""
        return self.global_transforms()[1]

    def end_site_positions(self) -> dict[int, np.ndarray]:
        """Joint index -> ``(T, 3)`` position of its End Site."""
        g_rot, g_pos = self.global_transforms()
        return {k: g_pos[:, k] + g_rot[:, k] @ off for k, off in self.end_sites.items()}


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their 1-based line numbers."""

    def __init__(self, lines: Sequence[str], where: str) -> None:
        self.items: list[tuple[str, int]] = []
        self.where = where
        self.motion_line: int | None = None
        for n, line in enumerate(lines, start=1):
            words = line.split()
            if words and words[0].upper() == "MOTION":
                self.motion_line = n
                break
            # Braces glued to words ("Hips{") are split off so both layouts parse.
            for w in re.findall(r"[{}]|[^\s{}]+", line):
                self.items.append((w, n))
        self.pos = 0

    def peek(self) -> tuple[str, int] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def next(self, expect: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            last = self.items[-1][1] if self.items else 1
            raise BVHError(f"{self.where}: malformed hierarchy: file ends after line {last} while expecting {expect}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            raise BVHError(f"{self.where}: line {line}: malformed hierarchy: expected '{word}', got '{tok}'")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise BVHError(f"{self.where}: line {line}: expected a number for {what}, got '{tok}'") from None
        if not math.isfinite(value):
            raise BVHError(f"{self.where}: line {line}: {what} is not finite ({tok})")
        return value


_Hierarchy = tuple[list[str], list[int], list[np.ndarray], list[tuple[str, ...]], dict[int, np.ndarray]]


def _parse_hierarchy(tokens: _Tokens) -> _Hierarchy:
    """Names, parents, offsets, channels and End Sites of every joint, in file order."""
    where = tokens.where
    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}

    def offset(owner: str) -> np.ndarray:
        tokens.expect("OFFSET")
        return np.array([tokens.number(f"the OFFSET of {owner}") for _ in range(3)])

    def joint(parent: int, keyword_line: int) -> None:
        # Name: the rest of the keyword's line up to the brace.
        parts = []
        while (item := tokens.peek()) is not None and item[1] == keyword_line and item[0] != "{":
            parts.append(tokens.next("a joint name")[0])
        if not parts:
            raise BVHError(f"{where}: line {keyword_line}: malformed hierarchy: joint without a name")
        name = " ".join(parts)
        if name in names:
            raise BVHError(f"{where}: line {keyword_line}: duplicate joint name '{name}'")
        tokens.expect("{")
        index = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(offset(f"joint '{name}'"))
        chans: tuple[str, ...] = ()
        item = tokens.peek()
        if item is not None and item[0].upper() == "CHANNELS":
            tokens.next("CHANNELS")
            count_f = tokens.number(f"the channel count of joint '{name}'")
            if count_f != int(count_f) or not 0 <= count_f <= 6:
                raise BVHError(
                    f"{where}: line {item[1]}: channel count of joint '{name}' must be 0..6, got {count_f:g}"
                )
            listed = []
            for _ in range(int(count_f)):
                tok, line = tokens.next(f"a channel name of joint '{name}'")
                if tok.lower() not in _CHANNEL_NAMES:
                    raise BVHError(
                        f"{where}: line {line}: joint '{name}': unknown channel '{tok}' (expected "
                        "Xposition/Yposition/Zposition/Xrotation/Yrotation/Zrotation; or the "
                        "CHANNELS count does not match the names listed)"
                    )
                listed.append(_CHANNEL_NAMES[tok.lower()])
            if len(set(listed)) != len(listed):
                raise BVHError(f"{where}: line {item[1]}: joint '{name}' lists a channel twice: {listed}")
            chans = tuple(listed)
        channels.append(chans)
        while True:
            tok, line = tokens.next(f"'}}' closing joint '{name}'")
            up = tok.upper()
            if tok == "}":
                return
            if up == "JOINT":
                joint(index, line)
            elif up == "END":
                tokens.expect("Site")
                tokens.expect("{")
                end_sites[index] = offset(f"the End Site of '{name}'")
                tokens.expect("}")
            else:
                raise BVHError(
                    f"{where}: line {line}: malformed hierarchy in joint '{name}': expected JOINT, "
                    f"End Site or '}}', got '{tok}'"
                )

    tokens.expect("HIERARCHY")
    while tokens.peek() is not None:
        tok, line = tokens.next("ROOT")
        if tok.upper() != "ROOT":
            raise BVHError(f"{where}: line {line}: malformed hierarchy: expected ROOT, got '{tok}'")
        joint(-1, line)
    if not names:
        raise BVHError(f"{where}: malformed hierarchy: no ROOT joint")
    return names, parents, offsets, channels, end_sites


def parse_bvh(text: str, *, path: str | os.PathLike | None = None) -> BVH:
    """Parse BVH file text (see :func:`read_bvh`); ``path`` is quoted in errors."""
    where = str(path) if path is not None else "<bvh text>"
    lines = text.lstrip("\ufeff").splitlines()  # a UTF-8 byte-order mark is not a token
    tokens = _Tokens(lines, where)
    names, parents, offsets, channels, end_sites = _parse_hierarchy(tokens)
    if tokens.motion_line is None:
        raise BVHError(f"{where}: no MOTION section after the hierarchy")
    # MOTION header: "Frames: N" and "Frame Time: dt" (possibly with the value on the next line).
    rest = [(n, lines[n - 1].strip()) for n in range(tokens.motion_line + 1, len(lines) + 1)]
    rest = [(n, s) for n, s in rest if s]

    def header(i: int, label: str) -> tuple[float, int]:
        if i >= len(rest):
            raise BVHError(f"{where}: MOTION section ends before '{label}'")
        n, s = rest[i]
        m = re.fullmatch(rf"{label}\s*(\S+)?", s, flags=re.IGNORECASE)
        if m is None:
            raise BVHError(f"{where}: line {n}: expected '{label} <number>', got '{s[:60]}'")
        value, used = m.group(1), 1
        if value is None:
            if i + 1 >= len(rest):
                raise BVHError(f"{where}: line {n}: '{label}' without a value")
            value, used = rest[i + 1][1], 2
        try:
            return float(value), used
        except ValueError:
            raise BVHError(f"{where}: line {n}: '{label}' value is not a number: '{value}'") from None

    n_frames_f, used1 = header(0, "Frames:")
    frame_time, used2 = header(used1, "Frame Time:")
    if n_frames_f != int(n_frames_f) or n_frames_f < 1:
        raise BVHError(f"{where}: 'Frames:' must be a positive integer, got {n_frames_f:g}")
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise BVHError(f"{where}: 'Frame Time:' must be positive, got {frame_time:g}")
    n_frames = int(n_frames_f)
    rows = rest[used1 + used2 :]
    n_channels = sum(len(c) for c in channels)
    if len(rows) < n_frames:
        raise BVHError(f"{where}: 'Frames: {n_frames}' but only {len(rows)} frame lines follow")
    if len(rows) > n_frames:
        raise BVHError(
            f"{where}: line {rows[n_frames][0]}: {len(rows) - n_frames} more frame lines than 'Frames: {n_frames}'"
        )
    motion = np.empty((n_frames, n_channels))
    for t, (n, s) in enumerate(rows):
        words = s.split()
        if len(words) != n_channels:
            raise BVHError(
                f"{where}: line {n}: frame {t} has {len(words)} values, the hierarchy declares "
                f"{n_channels} channels"
            )
        try:
            motion[t] = [float(w) for w in words]
        except ValueError:
            bad = next(w for w in words if not _is_float(w))
            raise BVHError(f"{where}: line {n}: frame {t}: '{bad}' is not a number") from None
    if not np.isfinite(motion).all():
        t = int(np.argmax(~np.isfinite(motion).all(axis=1)))
        raise BVHError(f"{where}: line {rows[t][0]}: frame {t} has NaN or inf values")
    return BVH(
        names=names,
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64).reshape(len(names), 3),
        channels=channels,
        end_sites=end_sites,
        frame_time=frame_time,
        motion=motion,
        path=str(path) if path is not None else None,
    )


def _is_float(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file: hierarchy (names, parents, offsets, channels, End Sites) and frames.

    Raises :class:`BVHError` (a ``ValueError``) naming the file, the line and the problem for a
    malformed hierarchy, an unknown channel, a frame whose value count differs from the declared
    channels, or a frame count that differs from ``Frames:``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise BVHError(f"{p}: cannot read the BVH file: {err.strerror or err}") from None
    return parse_bvh(text, path=p)


# ----------------------------------------------------------------------------- import: joint maps

# HumanML3D joint order -> BVH joint name. A value may also be a list of names: the joint is
# then the mean of their positions (CMU has no joint where SMPL has Spine3 or the collars).
_SMPL_KEYS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)


def _side_map(left: Mapping[str, str | list[str]]) -> dict[str, str | list[str]]:
    """Complete a map given for the centre and left joints with the mirrored right joints."""
    out: dict[str, str | list[str]] = {}
    for key, value in left.items():
        out[key] = value
        if key.startswith("left_"):
            swap = (lambda n: n.replace("Left", "Right").replace("LHip", "RHip"))
            out["right_" + key[5:]] = [swap(v) for v in value] if isinstance(value, list) else swap(value)
    return {k: out[k] for k in _SMPL_KEYS}


BUILTIN_JOINT_MAPS: dict[str, dict[str, str | list[str]]] = {
    # Our own export and other SMPL-named rigs ("Pelvis", "L_Hip", ... also "m_avg_L_Hip").
    "smpl": dict(zip(_SMPL_KEYS, SMPL_BVH_NAMES)),
    # Mixamo rigs ("mixamorig:Hips"; the namespace prefix is ignored when matching).
    "mixamo": _side_map(
        {
            "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2",
            "neck": "Neck", "head": "Head", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg",
            "left_ankle": "LeftFoot", "left_foot": "LeftToeBase", "left_collar": "LeftShoulder",
            "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
        }
    ),
    # CMU 31-joint files (Hips, LHipJoint, LowerBack, Spine, Spine1, Neck, Neck1, Head, ...).
    # CMU has no joint at SMPL's Spine3 (between Spine1 and Neck1) or at the collars (between
    # the spine and the shoulder joint): those are midpoints.
    "cmu": _side_map(
        {
            "pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": ["Spine1", "Neck1"],
            "neck": "Neck1", "head": "Head", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg",
            "left_ankle": "LeftFoot", "left_foot": "LeftToeBase",
            "left_collar": ["LeftShoulder", "LeftArm"], "left_shoulder": "LeftArm",
            "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
        }
    ),
}


def _norm_name(name: str) -> str:
    """Matching key of a joint name: no namespace ("mixamorig:"), SMPL FBX prefix, case, '_- '."""
    base = name.rsplit(":", 1)[-1].rsplit("|", 1)[-1]
    base = re.sub(r"^(m_avg_|f_avg_)", "", base, flags=re.IGNORECASE)
    return re.sub(r"[\s_\-.]", "", base).lower()


# Accepted spellings of the 22 keys of a user map: "left_hip", "L_Hip", "lhip", "LeftHip", ...
_KEY_ALIASES = {}
for _i, (_key, _smpl) in enumerate(zip(_SMPL_KEYS, SMPL_BVH_NAMES)):
    for _alias in (_key, _smpl, _key.replace("left_", "l_").replace("right_", "r_")):
        _KEY_ALIASES[_norm_name(_alias)] = _i


def _load_map(joint_map: Mapping[str, object] | str | os.PathLike, where: str) -> dict[int, list[str]]:
    """A user map (dict or JSON file) -> {joint index: [bvh names]} with all 22 joints."""
    source = where
    if isinstance(joint_map, (str, os.PathLike)):
        source = str(joint_map)
        try:
            raw = json.loads(Path(joint_map).read_text(encoding="utf-8"))
        except OSError as err:
            raise BVHError(f"{source}: cannot read the joint map: {err.strerror or err}") from None
        except json.JSONDecodeError as err:
            raise BVHError(f"{source}: joint map is not valid JSON: line {err.lineno}: {err.msg}") from None
    else:
        raw = joint_map
    if not isinstance(raw, Mapping):
        raise BVHError(f"{source}: joint map must be an object {{smpl_name: bvh_name}}, got {type(raw).__name__}")
    out: dict[int, list[str]] = {}
    for key, value in raw.items():
        idx = _KEY_ALIASES.get(_norm_name(str(key)))
        if idx is None:
            raise BVHError(f"{source}: joint map key {key!r} is not one of the 22 SMPL joints {list(SMPL_BVH_NAMES)}")
        if idx in out:
            raise BVHError(f"{source}: joint map names SMPL joint {SMPL_BVH_NAMES[idx]} twice")
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BVHError(
                f"{source}: joint map value for {key!r} must be a joint name or a list of names, got {value!r}"
            )
        out[idx] = names
    missing = [SMPL_BVH_NAMES[i] for i in range(_N) if i not in out]
    if missing:
        raise BVHError(f"{source}: joint map lacks SMPL joints {missing}")
    return out


def _resolve(bvh: BVH, wanted: dict[int, list[str]]) -> tuple[dict[int, list[int]], list[str]]:
    """Match map names against the file's joints (exact name first, then normalized)."""
    exact = {n: i for i, n in enumerate(bvh.names)}
    normed: dict[str, int] = {}
    for i, n in enumerate(bvh.names):
        normed.setdefault(_norm_name(n), i)
    found: dict[int, list[int]] = {}
    missing: list[str] = []
    for idx, names in wanted.items():
        hits = []
        for n in names:
            k = exact.get(n, normed.get(_norm_name(n)))
            if k is None:
                missing.append(n)
            else:
                hits.append(k)
        found[idx] = hits
    return found, sorted(set(missing))


def detect_joint_map(bvh: BVH) -> str:
    """Name of the first built-in map (smpl, mixamo, cmu) whose joints the file all has.

    Raises :class:`BVHError` listing, for the closest map, the joints the file lacks.
    """
    best: tuple[int, str, list[str]] | None = None
    for name, mapping in BUILTIN_JOINT_MAPS.items():
        wanted = {i: (v if isinstance(v, list) else [v]) for i, v in enumerate(mapping.values())}
        _, missing = _resolve(bvh, wanted)
        if not missing:
            return name
        if best is None or len(missing) < best[0]:
            best = (len(missing), name, missing)
    assert best is not None
    raise BVHError(
        f"{bvh.path or '<bvh>'}: cannot map the file's joints to the 22 SMPL joints: closest "
        f"built-in map '{best[1]}' lacks {best[2]}; pass joint_map={{smpl_name: bvh_name}} "
        f"(the file has {bvh.names})"
    )


# ----------------------------------------------------------------------------- import: joints


_UP_AXES = {"x": _X, "y": _Y, "z": _Z, "-x": -_X, "-y": -_Y, "-z": -_Z}
_LEG = ((1, 4, 7), (2, 5, 8))  # hip, knee, ankle of each side
# Reference hip -> knee -> ankle length (0.82 m), the yardstick of the unit detection.
_REF_LEG = float(np.mean([TARGET_BONE_LENGTHS[[4, 7]].sum(), TARGET_BONE_LENGTHS[[5, 8]].sum()]))


def _mapped_positions(
    bvh: BVH, joint_map: Mapping[str, object] | str | os.PathLike | None
) -> tuple[np.ndarray, str]:
    """``(T, 22, 3)`` positions of the mapped joints (file units and axes) and the map's name."""
    where = bvh.path or "<bvh>"
    if joint_map is None:
        map_name = detect_joint_map(bvh)
        mapping = BUILTIN_JOINT_MAPS[map_name]
        wanted = {i: (v if isinstance(v, list) else [v]) for i, v in enumerate(mapping.values())}
    else:
        map_name = str(joint_map) if isinstance(joint_map, (str, os.PathLike)) else "custom"
        wanted = _load_map(joint_map, where)
    found, missing = _resolve(bvh, wanted)
    if missing:
        raise BVHError(
            f"{where}: the joint map names joints the file does not have: {missing} (the file has {bvh.names})"
        )
    pos = bvh.global_positions()  # (T, J, 3) file units
    return np.stack([pos[:, found[i]].mean(axis=1) for i in range(_N)], axis=1), map_name  # (T, 22, 3)


def _unit_scale(joints: np.ndarray, units: str | float, where: str) -> float:
    """Metres per file unit: explicit, or the candidate unit whose leg length is most human."""
    if isinstance(units, bool) or not isinstance(units, (str, int, float)):
        raise ValueError(f"{where}: units must be 'auto', a unit name or metres per unit, got {units!r}")
    if not isinstance(units, str):
        scale = float(units)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"{where}: units must be a positive number of metres per unit, got {units!r}")
        return scale
    if units != "auto":
        if units not in UNIT_METRES:
            raise ValueError(
                f"{where}: units must be 'auto', one of {sorted(UNIT_METRES)} or metres per unit, got {units!r}"
            )
        return UNIT_METRES[units]
    # Hip -> knee -> ankle length, median over frames and both legs: pose-independent, and the
    # segment whose definition agrees best between skeleton conventions (spines vary a lot).
    legs = [
        np.linalg.norm(joints[:, k] - joints[:, h], axis=-1) + np.linalg.norm(joints[:, a] - joints[:, k], axis=-1)
        for h, k, a in _LEG
    ]
    leg = float(np.median(np.concatenate(legs)))
    if not leg > 0:
        raise BVHError(f"{where}: cannot infer the units: the legs have zero length; pass units=")
    ratios = {u: abs(math.log(leg * m / _REF_LEG)) for u, m in UNIT_METRES.items()}
    unit = min(ratios, key=ratios.get)
    if ratios[unit] > math.log(1.6):
        raise BVHError(
            f"{where}: cannot infer the units: the leg length {leg:.4g} (file units) is not a human "
            f"leg in any of {sorted(UNIT_METRES)}; pass units= (a unit name or metres per unit)"
        )
    return UNIT_METRES[unit]


def _up_rotation(joints: np.ndarray, up: str, where: str) -> tuple[np.ndarray, str]:
    """Rotation matrix taking the file's up axis to +y, and that axis' name."""
    if up == "auto":
        # Feet -> head, median over frames: the body's long axis points up in nearly every pose.
        axis_vec = np.median(joints[:, 15] - 0.5 * (joints[:, 7] + joints[:, 8]), axis=0)  # (3,)
        norm = np.linalg.norm(axis_vec)
        k = int(np.argmax(np.abs(axis_vec)))
        if not norm > 0 or abs(axis_vec[k]) < 0.7 * norm:
            raise BVHError(
                f"{where}: cannot detect the up axis (feet -> head direction "
                f"{np.round(axis_vec / max(norm, 1e-12), 2)} is not along a coordinate axis); pass up='y' "
                "or 'z' (or '-y', 'x', ...)"
            )
        src = np.eye(3)[k] * np.sign(axis_vec[k])
        up = ("-" if axis_vec[k] < 0 else "") + "xyz"[k]
    else:
        if up not in _UP_AXES:
            raise ValueError(f"{where}: up must be 'auto' or one of {sorted(_UP_AXES)}, got {up!r}")
        src = _UP_AXES[up]
    if src[2] == 1.0:
        # z up (Blender, 3ds Max): the usual conversion, (x, y, z) -> (x, z, -y).
        return np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]), up
    return _rotation_between(src, _Y), up


def _resample(joints: np.ndarray, src_fps: float, fps: float) -> np.ndarray:
    """Linear interpolation of ``(T, ...)`` positions from ``src_fps`` to ``fps``.

    Output frame k is at time ``k / fps`` for every k with ``k / fps <= (T - 1) / src_fps``
    (so ``floor(duration * fps) + 1`` frames; a duration of 0 gives 1 frame).
    """
    if abs(src_fps - fps) <= 1e-6 * fps:
        return joints
    duration = (len(joints) - 1) / src_fps
    n_out = int(math.floor(duration * fps + 1e-6)) + 1
    u = np.arange(n_out) * (src_fps / fps)  # (T_out,) fractional source frame
    i0 = np.minimum(np.floor(u).astype(np.int64), len(joints) - 1)
    i1 = np.minimum(i0 + 1, len(joints) - 1)
    w = (u - i0).reshape((-1,) + (1,) * (joints.ndim - 1))
    return joints[i0] * (1.0 - w) + joints[i1] * w


def _import_joints(
    path: str | os.PathLike | BVH,
    joint_map: Mapping[str, object] | str | os.PathLike | None,
    fps: float,
    up: str,
    units: str | float,
) -> tuple[np.ndarray, dict]:
    """:func:`bvh_to_joints` plus what was detected (map, units, up axis, source frames/fps)."""
    bvh = path if isinstance(path, BVH) else read_bvh(path)
    where = bvh.path or "<bvh>"
    if isinstance(fps, bool) or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"{where}: fps must be a positive number, got {fps!r}")
    joints, map_name = _mapped_positions(bvh, joint_map)  # (T, 22, 3) file units and axes
    scale = _unit_scale(joints, units, where)
    rot, up_axis = _up_rotation(joints, up, where)
    joints = np.einsum("ij,tkj->tki", rot, joints) * scale  # (T, 22, 3) metres, y up
    out = _resample(joints, bvh.fps, float(fps)).astype(np.float32)
    info = {
        "source": where,
        "joint_map": map_name,
        "metres_per_unit": scale,
        "up_axis": up_axis,
        "source_fps": bvh.fps,
        "source_frames": bvh.n_frames,
        "fps": float(fps),
        "frames": len(out),
    }
    return out, info


def bvh_to_joints(
    path: str | os.PathLike | BVH,
    joint_map: Mapping[str, object] | str | os.PathLike | None = None,
    fps: float = 20.0,
    *,
    up: str = "auto",
    units: str | float = "auto",
) -> np.ndarray:
    """A BVH file as HumanML3D joints: float32 ``(T, 22, 3)``, metres, y up, ``fps`` frames/s.

    Args:
        path: a ``.bvh`` file (or an already parsed :class:`BVH`).
        joint_map: ``{smpl_name: bvh_name}`` (a dict or a JSON file path) for all 22 SMPL joints;
            keys in SMPL (``"L_Hip"``) or HumanML3D (``"left_hip"``) spelling; a value may be a
            list of BVH joint names, meaning the mean of their positions. None: auto-detect a
            built-in map (:data:`BUILTIN_JOINT_MAPS`: ``smpl``, ``mixamo``, ``cmu``). Names
            match exactly or ignoring case, ``_``/``-``/spaces and a namespace (``mixamorig:``).
        fps: output frame rate; frame k is the linear interpolation of the file's joint
            positions at time ``k / fps`` (``floor(duration * fps) + 1`` frames).
        up: the file's up axis, ``"auto"`` (the median feet -> head direction) or ``"y"``,
            ``"z"``, ``"-y"``, ``"x"``, ...; it is rotated to +y (z up: ``(x, y, z) -> (x, z, -y)``).
        units: ``"auto"`` (the unit of :data:`UNIT_METRES` whose hip-knee-ankle length is
            nearest the reference skeleton's 0.82 m), a unit name (``"m"``, ``"cm"``,
            ``"inch"``, ``"cmu"``, ...) or metres per file unit.

    Positions are the file's, converted: no floor or facing normalization (the feature
    conversion does that), no retargeting to the reference bone lengths.
    """
    return _import_joints(path, joint_map, fps, up, units)[0]


def bvh_to_features(
    path: str | os.PathLike | BVH,
    joint_map: Mapping[str, object] | str | os.PathLike | None = None,
    *,
    up: str = "auto",
    units: str | float = "auto",
    fix_foot: bool = False,
) -> np.ndarray:
    """A BVH file as HumanML3D features: :func:`bvh_to_joints` at 20 fps (through
    :func:`motiongpt.motion.foot.fix_foot_skating` with ``fix_foot``), then
    :func:`motiongpt.motion.features.joints_to_features`: float32 ``(T - 1, 263)`` (the recipe
    drops the last frame, which has no next frame for the velocities).
    """
    joints, info = _import_joints(path, joint_map, 20.0, up, units)
    return _features(joints, info["source"], fix_foot)[1]


def _features(joints: np.ndarray, where: str, fix_foot: bool) -> tuple[np.ndarray, np.ndarray]:
    if len(joints) < 2:
        raise BVHError(f"{where}: the clip is shorter than 2 frames at 20 fps; features need 2")
    if fix_foot:
        joints = fix_foot_skating(joints, fps=20.0, name=where)
    return joints, joints_to_features(joints, name=where)


# ----------------------------------------------------------------------------- file-level helpers


def import_bvh(
    bvh_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    joint_map: Mapping[str, object] | str | os.PathLike | None = None,
    fix_foot: bool = False,
    up: str = "auto",
    units: str | float = "auto",
    dataset_dir: str | os.PathLike | None = None,
    caption: str | None = None,
    split: str | None = None,
) -> dict:
    """Import a BVH file as a motion clip (the body of ``scripts/import_bvh.py``).

    Writes, each file atomically:

    * ``out_dir/<name>.npy``: float32 ``(T, 22, 3)`` joints, metres, y up, 20 fps (the file's
      placement; feet cleaned with ``fix_foot``);
    * ``out_dir/<name>_feats.npy``: float32 ``(T - 1, 263)`` HumanML3D features;
    * with ``dataset_dir``, a HumanML3D-layout entry: ``new_joint_vecs/<name>.npy`` (the
      features), ``new_joints/<name>.npy`` (``features_to_joints`` of them, as HumanML3D stores
      it), ``texts/<name>.txt`` (``caption`` as ``caption##0.0#0.0``: no POS tokens), and with
      ``split`` the id appended to ``<split>.txt``. ``Mean.npy``/``Std.npy`` are not updated.

    Returns a summary dict (paths, frames, detected map / units / up axis).
    """
    from motiongpt.motion.features import features_to_joints
    from motiongpt.utils.atomic import atomic_save_npy

    src = Path(bvh_path)
    name = name if name is not None else src.stem
    if not name or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name.startswith("."):
        raise ValueError(f"{src}: clip name {name!r} must be letters, digits, '_', '-' or '.' (not starting with '.')")
    if dataset_dir is None and (caption is not None or split is not None):
        raise ValueError(f"{src}: caption and split describe a dataset entry: pass dataset_dir too")
    if dataset_dir is not None and not caption:
        raise ValueError(f"{src}: a dataset entry needs a caption (texts/{name}.txt)")
    if split is not None and not re.fullmatch(r"[A-Za-z0-9_\-]+", split):
        raise ValueError(f"{src}: split name {split!r} must be letters, digits, '_' or '-'")
    caption_line = None
    if caption is not None:
        # Imported lazily: motiongpt.data imports motiongpt.motion at load time.
        from motiongpt.data.humanml3d import format_caption_line

        caption_line = format_caption_line(" ".join(caption.split()))
    joints, info = _import_joints(src, joint_map, 20.0, up, units)
    joints, feats = _features(joints, str(src), fix_foot)
    out = Path(out_dir)
    paths = {"joints": out / f"{name}.npy", "features": out / f"{name}_feats.npy"}
    atomic_save_npy(paths["joints"], joints.astype(np.float32))
    atomic_save_npy(paths["features"], feats)
    if dataset_dir is not None:
        root = Path(dataset_dir)
        paths["new_joint_vecs"] = root / "new_joint_vecs" / f"{name}.npy"
        paths["new_joints"] = root / "new_joints" / f"{name}.npy"
        paths["text"] = root / "texts" / f"{name}.txt"
        atomic_save_npy(paths["new_joint_vecs"], feats)
        atomic_save_npy(paths["new_joints"], features_to_joints(feats, name=str(src)))
        atomic_write_text(paths["text"], caption_line + "\n")
        if split is not None:
            split_file = root / f"{split}.txt"
            ids = split_file.read_text(encoding="utf-8").split() if split_file.is_file() else []
            if name not in ids:
                ids.append(name)
            atomic_write_text(split_file, "\n".join(ids) + "\n")
            paths["split"] = split_file
    info.update({"name": name, "fix_foot": fix_foot, "feature_frames": len(feats)})
    info["paths"] = {k: str(v) for k, v in paths.items()}
    return info

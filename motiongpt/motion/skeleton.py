"""Skeleton constants of the HumanML3D (SMPL 22-joint) and KIT-ML (21-joint) representations,
and vectorized forward kinematics.

All numbers are facts of the published datasets (see ``humanml3d-representation.md``): the
joint order, the kinematic chains, the unit "raw offset" bone directions, and the bone lengths of
frame 0 of HumanML3D clip ``000021`` (the target skeleton every clip is retargeted to). The bone
lengths are embedded here so the package works without the dataset; a test checks them against
the reference file.
"""

from __future__ import annotations

import numpy as np

from motiongpt.motion.quaternion import qmul, qrot

__all__ = [
    "JOINT_NAMES",
    "KINEMATIC_CHAIN",
    "PARENTS",
    "RAW_OFFSETS",
    "TARGET_BONE_LENGTHS",
    "TARGET_OFFSETS",
    "FACE_JOINTS",
    "FOOT_LEFT",
    "FOOT_RIGHT",
    "LEFT_JOINTS",
    "RIGHT_JOINTS",
    "MIRROR_PERM",
    "KIT_KINEMATIC_CHAIN",
    "parents_from_chains",
    "forward_kinematics",
]

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)

# Each chain starts at its parent joint.
KINEMATIC_CHAIN = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
KIT_KINEMATIC_CHAIN = ((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10))


def parents_from_chains(chains) -> np.ndarray:
    """Parent index of every joint (``-1`` for the root) from kinematic chains."""
    n = 1 + max(max(c) for c in chains)
    parents = np.full(n, -1, dtype=np.int64)
    for chain in chains:
        for a, b in zip(chain[:-1], chain[1:]):
            parents[b] = a
    return parents


PARENTS = parents_from_chains(KINEMATIC_CHAIN)

# Unit bone directions in the rest pose, joint by joint.
RAW_OFFSETS = np.array(
    [
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
        [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
        [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
    ],
    dtype=np.float64,
)

# |joint - parent| at frame 0 of HumanML3D clip 000021 (metres), rows 0..21 of the SMPL-H joints.
TARGET_BONE_LENGTHS = np.array(
    [
        0.0, 0.10307396801404012, 0.10988336793155128, 0.13156824272391562, 0.39362320104637244,
        0.3901882263567628, 0.14319021469648505, 0.43243308125288354, 0.4256433445515134,
        0.057364735143330216, 0.14338181866410357, 0.1494190728208926, 0.2193600528916467,
        0.137486767617009, 0.1433828328285533, 0.10303921946937832, 0.13161404584007272,
        0.12298437803931866, 0.2568400048098033, 0.2630917441711329, 0.2660117216252147,
        0.2698764031509594,
    ],
    dtype=np.float64,
)
TARGET_OFFSETS = RAW_OFFSETS * TARGET_BONE_LENGTHS[:, None]  # (22, 3)

# right hip, left hip, right shoulder, left shoulder (the reference's face_joint_indx).
FACE_JOINTS = (2, 1, 17, 16)
FOOT_LEFT = (7, 10)
FOOT_RIGHT = (8, 11)
LEFT_JOINTS = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT_JOINTS = (2, 5, 8, 11, 14, 17, 19, 21)

# Joint permutation that swaps left and right (used with x negation for mirroring).
MIRROR_PERM = np.arange(22)
MIRROR_PERM[list(LEFT_JOINTS)] = RIGHT_JOINTS
MIRROR_PERM[list(RIGHT_JOINTS)] = LEFT_JOINTS


def forward_kinematics(
    local_quats: np.ndarray,
    root_pos: np.ndarray,
    offsets: np.ndarray = TARGET_OFFSETS,
    chains=KINEMATIC_CHAIN,
) -> np.ndarray:
    """Global joint positions from local joint rotations.

    Args:
        local_quats: ``(..., J, 4)`` local rotation of every joint; joint 0 holds the root's
            global rotation. ``(w, x, y, z)``.
        root_pos: ``(..., 3)`` root (pelvis) positions.
        offsets: ``(J, 3)`` or ``(..., J, 3)`` bone offsets of each joint from its parent.
        chains: kinematic chains, each starting at its parent joint.

    Returns:
        ``(..., J, 3)`` joint positions. Loops over bones only; vectorized over frames/clips.
    """
    local_quats = np.asarray(local_quats, dtype=np.float64)
    lead = local_quats.shape[:-2]
    n_joints = local_quats.shape[-2]
    offsets = np.broadcast_to(np.asarray(offsets, dtype=np.float64), lead + (n_joints, 3))
    joints = np.zeros(lead + (n_joints, 3), dtype=np.float64)
    joints[..., 0, :] = root_pos
    for chain in chains:
        rot = local_quats[..., 0, :]
        for parent, child in zip(chain[:-1], chain[1:]):
            rot = qmul(rot, local_quats[..., child, :])
            joints[..., child, :] = qrot(rot, offsets[..., child, :]) + joints[..., parent, :]
    return joints

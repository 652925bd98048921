"""Skeleton constants against the reference file; quaternion helpers; literal IK <-> FK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motiongpt.motion import inverse_kinematics, random_motion
from motiongpt.motion.quaternion import (
    cont6d_to_matrix,
    matrix_to_quat,
    qbetween,
    qfrom_axis_angle,
    qinv,
    qmul,
    qnormalize,
    qrot,
    quat_to_cont6d,
    quat_to_matrix,
)
from motiongpt.motion.skeleton import (
    KINEMATIC_CHAIN,
    LEFT_JOINTS,
    MIRROR_PERM,
    PARENTS,
    RAW_OFFSETS,
    RIGHT_JOINTS,
    TARGET_BONE_LENGTHS,
    TARGET_OFFSETS,
    forward_kinematics,
)

RNG = np.random.default_rng(1234)


def _quats(n: int) -> np.ndarray:
    return qnormalize(RNG.normal(size=(n, 4)))


@pytest.mark.shared_data
def test_target_bone_lengths_match_reference_skeleton(hml_dir: Path) -> None:
    ref = np.load(hml_dir / "reference_skeleton_000021.npy")[:22]  # (22, 3) frame 0 of 000021
    lengths = np.linalg.norm(ref[1:] - ref[PARENTS[1:]], axis=-1)
    np.testing.assert_allclose(TARGET_BONE_LENGTHS[1:], lengths, atol=1e-6, rtol=0)
    assert TARGET_BONE_LENGTHS[0] == 0.0


def test_skeleton_tables_are_consistent() -> None:
    np.testing.assert_array_equal(TARGET_OFFSETS, RAW_OFFSETS * TARGET_BONE_LENGTHS[:, None])
    np.testing.assert_array_equal(np.abs(RAW_OFFSETS[1:]).sum(-1), 1.0)  # unit axis directions
    children = sorted(c for chain in KINEMATIC_CHAIN for c in chain[1:])
    assert children == list(range(1, 22))  # every joint but the root has exactly one parent
    assert PARENTS[0] == -1 and (PARENTS[1:] < np.arange(1, 22)).all()
    np.testing.assert_array_equal(MIRROR_PERM[MIRROR_PERM], np.arange(22))
    assert all(MIRROR_PERM[left] == right for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS))


def test_qmul_associative_and_inverse() -> None:
    a, b, c = _quats(50), _quats(50), _quats(50)
    np.testing.assert_allclose(qmul(qmul(a, b), c), qmul(a, qmul(b, c)), atol=1e-12)
    np.testing.assert_allclose(qmul(a, qinv(a)), np.broadcast_to([1.0, 0, 0, 0], a.shape), atol=1e-12)


def test_qrot_is_a_rotation_consistent_with_matrix() -> None:
    q, v = _quats(100), RNG.normal(size=(100, 3))
    w = qrot(q, v)
    np.testing.assert_allclose(np.linalg.norm(w, axis=-1), np.linalg.norm(v, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(qrot(qinv(q), w), v, atol=1e-12)
    np.testing.assert_allclose(w, np.einsum("nij,nj->ni", quat_to_matrix(q), v), atol=1e-12)
    np.testing.assert_allclose(qrot(qmul(q, q), v), qrot(q, qrot(q, v)), atol=1e-12)
    # 90 degrees about y takes x to -z.
    quarter = qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(np.pi / 2))
    np.testing.assert_allclose(qrot(quarter, np.array([1.0, 0, 0])), [0, 0, -1.0], atol=1e-15)


def test_qbetween_maps_u_onto_v() -> None:
    u, v = RNG.normal(size=(100, 3)), RNG.normal(size=(100, 3))
    q = qbetween(u, v)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(unit(qrot(q, u)), unit(v), atol=1e-12)
    assert (q[:, 0] >= 0).all()  # w = |u||v| + u.v >= 0: the shortest arc


def test_matrix_and_cont6d_round_trips() -> None:
    q = _quats(200)
    m = quat_to_matrix(q)
    np.testing.assert_allclose(m @ m.transpose(0, 2, 1), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    back = matrix_to_quat(m)
    np.testing.assert_allclose(back, q * np.sign(q[:, :1]), atol=1e-10)  # same up to sign
    c6 = quat_to_cont6d(q)
    np.testing.assert_array_equal(c6[:, :3], m[:, :, 0])
    np.testing.assert_allclose(cont6d_to_matrix(c6), m, atol=1e-12)
    np.testing.assert_allclose(cont6d_to_matrix(c6 * 3.0), m, atol=1e-12)  # Gram-Schmidt scale-free


def test_literal_ik_then_fk_rebuilds_positions() -> None:
    joints = random_motion(30, seed=9).astype(np.float64)
    for smooth in (False, True):  # the root rotation cancels in FK either way
        quats = inverse_kinematics(joints, smooth_forward=smooth).astype(np.float64)
        np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(quats[0, 0], [1.0, 0.0, 0.0, 0.0])  # reference: frame 0 root
        rebuilt = forward_kinematics(quats, joints[:, 0], TARGET_OFFSETS, KINEMATIC_CHAIN)
        np.testing.assert_allclose(rebuilt, joints, atol=1e-5)

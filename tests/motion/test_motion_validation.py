"""Every bad input to the motion API raises ValueError naming the problem (and the clip)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from motiongpt.motion import (
    canonicalize_joints,
    compute_mean_std,
    features_to_joints,
    features_to_joints_batch,
    inverse_kinematics,
    joints_to_features,
    joints_to_features_batch,
    mirror_joints,
    n_joints_from_dim,
    random_motion,
    uniform_skeleton,
)

GOOD = random_motion(12, seed=0)  # (12, 22, 3)
GOOD_F = joints_to_features(GOOD)  # (11, 263)


def _raises(fn, *args, match: str, **kwargs) -> None:
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((10, 21, 3)), r"expected joints of shape \[T, 22, 3\].*got \(10, 21, 3\)"),
        (np.zeros((10, 22)), r"got \(10, 22\)"),
        (np.zeros((10, 22, 2)), r"got \(10, 22, 2\)"),
        (np.zeros(5), r"got \(5,\)"),
        (GOOD[:1], r"at least 2 frames.*got 1"),
        (GOOD[:0], r"at least 2 frames.*got 0"),
        (GOOD.astype(complex), r"real-valued.*complex"),
        (GOOD > 0, r"real-valued.*bool"),
        (np.full((4, 22, 3), "a"), r"real-valued"),
    ],
)
def test_joints_to_features_rejects_bad_shapes(bad: np.ndarray, match: str) -> None:
    _raises(joints_to_features, bad, match=match)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_joints_are_reported_with_frame_and_name(value: float) -> None:
    bad = GOOD.copy()
    bad[7, 3, 1] = value
    _raises(joints_to_features, bad, name="012314", match=r"^012314: joints contain NaN or inf values \(first at frame 7\)")
    _raises(canonicalize_joints, bad, match="NaN or inf")
    _raises(mirror_joints, bad, match="NaN or inf")


def test_name_appears_in_shape_errors() -> None:
    _raises(joints_to_features, np.zeros((10, 21, 3)), name="clips/000001.npy", match=r"^clips/000001\.npy: expected joints")
    _raises(features_to_joints, np.zeros((10, 262)), name="000002", match=r"^000002: feature size 262")


def test_degenerate_pose_raises_instead_of_nan() -> None:
    still = np.zeros((5, 22, 3))  # every bone has zero length
    _raises(joints_to_features, still, name="bad", match=r"^bad: degenerate pose at frame 0: zero-length bone")
    zero_bone = GOOD.copy()
    zero_bone[4:, 20] = zero_bone[4:, 18]  # left forearm collapses from frame 4
    _raises(joints_to_features, zero_bone, match=r"^degenerate pose at frame 4: zero-length bone")
    _raises(joints_to_features_batch, [GOOD, zero_bone], names=["a", "b"], match=r"^item 1 \(b\): degenerate pose at frame 4")
    _raises(canonicalize_joints, zero_bone, match=r"frame 4: zero-length bone")
    # Hip and shoulder bones all vertical: (j2 - j1) + (j17 - j16) has no horizontal part, so
    # the facing direction y x across is zero (this survives the retarget, which keeps directions).
    _raises(joints_to_features, _vertical_shoulders(GOOD, 0), match=r"^degenerate pose at frame 0: undefined facing direction")
    # The same at a later frame only breaks the IK's (quirky) across, frame by frame.
    _raises(joints_to_features_batch, [GOOD, _vertical_shoulders(GOOD, 6)], match=r"^item 1: degenerate pose at frame 6: undefined IK facing")


def test_bone_opposite_to_rest_direction_raises() -> None:
    # Left knee -> ankle (rest direction -y) pointing straight up at frame 3: between(u, -u) is
    # 0/0 in the reference; here it is an error naming the frame.
    bad = GOOD.astype(np.float64)
    bad[3, 7] = bad[3, 4] + np.array([0.0, 0.4, 0.0])
    bad[3, 10] = bad[3, 7] + np.array([0.0, 0.0, 0.1])
    _raises(joints_to_features, bad, match=r"^degenerate pose at frame 3: a bone points exactly opposite")


def _vertical_shoulders(joints: np.ndarray, frame: int) -> np.ndarray:
    out = joints.astype(np.float64)
    up = np.array([0.0, 0.1, 0.0])
    out[frame, 1] = out[frame, 0] - up
    out[frame, 2] = out[frame, 0] - 1.2 * up
    out[frame, 13] = out[frame, 9] + up
    out[frame, 14] = out[frame, 9] + 0.8 * up
    out[frame, 16] = out[frame, 13] - 1.5 * up
    out[frame, 17] = out[frame, 14] - 1.1 * up
    return out


def test_batch_errors_name_index_and_name() -> None:
    clips = [GOOD, GOOD, np.zeros((3, 21, 3))]
    _raises(joints_to_features_batch, clips, match=r"^item 2: expected joints of shape")
    _raises(joints_to_features_batch, clips, names=["a", "b", "c"], match=r"^item 2 \(c\): expected joints")
    _raises(joints_to_features_batch, clips, names=["a", "b", "c"], name="train", match=r"^train: item 2 \(c\): ")
    _raises(joints_to_features_batch, [GOOD], names=["a", "b"], match=r"got 2 names for 1 items")
    _raises(joints_to_features_batch, [GOOD, GOOD[:1]], match=r"^item 1: expected at least 2 frames")
    assert joints_to_features_batch([]) == []


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((10, 262)), r"feature size 262 is not 12\*J - 1.*263.*251"),
        (np.zeros((10, 11)), r"feature size 11"),
        (np.zeros(263), r"expected features of shape \[T, D\].*got \(263,\)"),
        (np.zeros((2, 3, 4, 263)), r"got \(2, 3, 4, 263\)"),
        (np.zeros((0, 263)), r"at least 1 frame"),
        (np.ones((3, 263), dtype=complex), r"real-valued"),
    ],
)
def test_features_to_joints_rejects_bad_input(bad: np.ndarray, match: str) -> None:
    _raises(features_to_joints, bad, match=match)


def test_features_non_finite_and_batch_errors() -> None:
    bad = GOOD_F.copy()
    bad[5, 200] = np.nan  # even a column features_to_joints does not read
    _raises(features_to_joints, bad, name="x", match=r"^x: features contain NaN or inf values \(first at frame 5\)")
    _raises(features_to_joints_batch, [GOOD_F, bad], names=["a", "b"], match=r"^item 1 \(b\): features contain NaN")
    _raises(features_to_joints_batch, [GOOD_F, np.zeros((4, 251))], match=r"^item 1: feature size 251 differs from item 0's \(263\)")
    assert features_to_joints_batch([]) == []


def test_mirror_and_layout_errors() -> None:
    _raises(joints_to_features, np.zeros((0, 5, 22, 3)), match=r"at least 1 clip")
    _raises(features_to_joints, np.zeros((0, 5, 263)), match=r"at least 1 clip")
    _raises(inverse_kinematics, np.zeros((3, 22, 3)), name="ik", match=r"^ik: degenerate pose at frame 0")
    _raises(uniform_skeleton, np.zeros((3, 21, 3)), match=r"expected joints of shape \[T, 22, 3\]")
    _raises(mirror_joints, np.zeros((4, 21, 3)), name="c", match=r"^c: expected joints of shape \[\.\.\., 22, 3\], got \(4, 21, 3\)")
    assert n_joints_from_dim(263) == 22 and n_joints_from_dim(251) == 21
    _raises(n_joints_from_dim, 100, name="z", match=r"^z: feature size 100")


def test_compute_mean_std_errors() -> None:
    _raises(compute_mean_std, [], match="empty")
    _raises(compute_mean_std, [GOOD_F, GOOD_F[:, :251]], names=["a", "b"], match=r"^item 1 \(b\): feature size 251 differs")
    bad = GOOD_F.copy()
    bad[2, 0] = np.inf
    _raises(compute_mean_std, [GOOD_F, bad], match=r"^item 1: features contain NaN or inf values \(first at frame 2\)")
    _raises(compute_mean_std, [GOOD_F[:1]], match=r"at least 2 frames in total")
    _raises(compute_mean_std, [np.zeros((5, 264))], match=r"feature size 264")
    _raises(compute_mean_std, [np.zeros(263)], match=r"shape \[T, D\]")
    const = np.tile(GOOD_F[:1], (5, 1))  # nothing varies
    _raises(compute_mean_std, [const], name="tiny", match=re.escape("tiny: the std of feature block 'root_angular_velocity' [0:1] is 0"))

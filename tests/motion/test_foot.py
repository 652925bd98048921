"""Foot-contact detection and foot-skating clean-up (motiongpt.motion.foot)."""

from __future__ import annotations

import numpy as np
import pytest

from motiongpt.motion import random_motion
from motiongpt.motion.foot import FOOT_JOINTS, detect_foot_contacts, fix_foot_skating, foot_skating
from motiongpt.motion.skeleton import PARENTS

LEG_JOINTS = {4, 5, 7, 8, 10, 11}  # knees, ankles, toes: the only joints the clean-up may move


@pytest.fixture(scope="module")
def walk() -> tuple[np.ndarray, np.ndarray]:
    """A synthetic walk with planted feet (no sliding by construction) and its true contacts."""
    from motiongpt.data.synthetic import render_plan

    _, joints, _ = render_plan([("walk", {"speed_band": "normal", "speed_mps": 1.2, "distance_m": 3.0})], seed=0)
    joints = joints.astype(np.float64)
    speed = np.linalg.norm(np.gradient(joints[:, list(FOOT_JOINTS)], axis=0), axis=-1) * 20.0  # (T, 4) m/s
    truth = speed < 0.02  # a planted joint does not move
    assert truth.any(axis=0).all() and (~truth).any(axis=0).all()  # every foot joint plants and swings
    return joints, truth


def _slide(joints: np.ndarray) -> np.ndarray:
    """Inject sliding: the whole body sways horizontally (up to ~0.3 m/s), planted feet included."""
    t = np.arange(len(joints)) / 20.0
    drift = np.zeros((len(joints), 3))
    drift[:, 0] = 0.05 * np.sin(2 * np.pi * 0.8 * t)
    drift[:, 2] = 0.04 * np.sin(2 * np.pi * 0.5 * t + 1.0)
    return joints + drift[:, None]


def _bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1)


def test_detects_every_planted_frame(walk):
    joints, truth = walk
    for clip in (joints, _slide(joints)):
        contacts = detect_foot_contacts(clip)
        assert contacts.shape == truth.shape and contacts.dtype == bool
        assert contacts[truth].all()  # recall 1: every planted frame is found
        assert (contacts & ~truth).mean() < 0.2  # some slow frames next to a plant are included
    # A foot high in the air is never in contact, however slow.
    lifted = joints.copy()
    lifted[:, [7, 10], 1] += np.where(np.arange(len(joints)) % 40 < 20, 0.0, 0.3)[:, None]
    high = detect_foot_contacts(lifted)[:, :2]
    assert not high[np.arange(len(joints)) % 40 >= 22].any()


def test_removes_injected_sliding(walk):
    joints, truth = walk
    sliding = _slide(joints)
    fixed = fix_foot_skating(sliding)
    before, after = foot_skating(sliding, truth), foot_skating(fixed, truth)
    assert before > 0.1  # m/s of sliding during contacts before the clean-up
    assert after < 0.2 * before  # > 80 % less skating (measured: 97 %)
    # Bone lengths are the input's; only leg joints move.
    np.testing.assert_allclose(_bone_lengths(fixed), _bone_lengths(sliding), atol=1e-5)
    moved = np.abs(fixed - sliding).max(axis=(0, 2)) > 1e-6
    assert set(np.flatnonzero(moved)) <= LEG_JOINTS
    # Frames away from every contact run (and its 2-frame fades) are untouched; swing frames
    # next to a contact get part of the correction, bounded by the injected sway (<= 6.4 cm).
    contacts = detect_foot_contacts(sliding)
    for side, joints_of_leg in enumerate(((4, 7, 10), (5, 8, 11))):
        near = np.convolve(contacts[:, 2 * side : 2 * side + 2].any(axis=1), np.ones(5), mode="same") > 0
        np.testing.assert_allclose(fixed[~near][:, joints_of_leg], sliding[~near][:, joints_of_leg], atol=1e-6)
    swing_change = np.linalg.norm(fixed - sliding, axis=-1)[:, list(FOOT_JOINTS)][~truth]
    assert swing_change.mean() < 0.035 and swing_change.max() < 0.08
    # Heights are kept (the clean-up is horizontal) except where a target is out of the leg's
    # reach and the straight leg points at it (3 frames here, by millimetres).
    dy = np.abs(fixed[:, [7, 8], 1] - sliding[:, [7, 8], 1])
    assert (dy < 1e-6).mean() > 0.95 and dy.max() < 0.01


def test_given_contacts_pin_the_feet(walk):
    joints, truth = walk
    fixed = fix_foot_skating(_slide(joints), contacts=truth)
    assert foot_skating(fixed, truth) < 0.01
    # A pinned joint sits at its run's mean horizontal position in the sliding clip.
    sliding = _slide(joints)
    padded = np.concatenate([[False], truth[:, 0], [False]]).astype(int)
    starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
    for a, b in zip(starts, ends):
        pin = sliding[a:b, 7][:, [0, 2]].mean(axis=0)
        np.testing.assert_allclose(fixed[a:b, 7][:, [0, 2]], np.broadcast_to(pin, (b - a, 2)), atol=1e-3)


def test_clean_motion_barely_changes(walk):
    joints, _ = walk
    fixed = fix_foot_skating(joints)
    change = np.linalg.norm(fixed - joints, axis=-1)
    assert change.max() < 0.03 and change[:, list(FOOT_JOINTS)].mean() < 0.005


def test_unreachable_target_keeps_bone_lengths():
    joints = random_motion(40, seed=2).astype(np.float64)
    joints[:, :, 1] -= joints[:, [10, 11], 1].min()  # put it on the floor
    contacts = np.zeros((40, 4), dtype=bool)
    contacts[5:35, 0] = True  # claim the left ankle is planted while the body walks ~1 m
    fixed = fix_foot_skating(joints, contacts=contacts)
    np.testing.assert_allclose(_bone_lengths(fixed), _bone_lengths(joints), atol=1e-5)
    assert np.isfinite(fixed).all()


def test_straight_leg_bends_forward():
    from motiongpt.motion.skeleton import TARGET_BONE_LENGTHS, TARGET_OFFSETS

    # Rest skeleton facing +z (left = +x), then the left leg straight and swung backward by
    # 10..30 degrees over the frames, as at a toe-off.
    n = 10
    joints = np.zeros((n, 22, 3))
    for j in range(1, 22):
        joints[:, j] = joints[:, PARENTS[j]] + TARGET_OFFSETS[j]
    angle = np.radians(np.linspace(10, 30, n))
    leg_dir = np.stack([np.zeros(n), -np.cos(angle), -np.sin(angle)], axis=-1)  # (n, 3) down and back
    joints[:, 4] = joints[:, 1] + TARGET_BONE_LENGTHS[4] * leg_dir
    joints[:, 7] = joints[:, 4] + TARGET_BONE_LENGTHS[7] * leg_dir
    joints[:, 10] = joints[:, 7] + TARGET_BONE_LENGTHS[10] * np.array([0.0, 0.0, 1.0])
    contacts = np.zeros((n, 4), dtype=bool)
    contacts[:, 0] = True  # pin the ankle at its mean position: forward of the farthest frames
    fixed = fix_foot_skating(joints, contacts=contacts)
    far = angle > np.radians(21)  # frames whose ankle moves toward the hip: the leg must bend
    mid = 0.5 * (fixed[:, 1] + fixed[:, 7])
    assert (fixed[far, 4, 2] - mid[far, 2] > 0.01).all()  # the knee bends forward (+z)
    np.testing.assert_allclose(_bone_lengths(fixed), _bone_lengths(joints), atol=1e-6)


def test_bad_arguments():
    joints = random_motion(10, seed=0)
    with pytest.raises(ValueError, match=r"clip7: expected joints of shape \[T, 22, 3\]"):
        fix_foot_skating(joints[:, :21], name="clip7")
    with pytest.raises(ValueError, match="at least 2 frames"):
        fix_foot_skating(joints[:1])
    with pytest.raises(ValueError, match=r"contacts of shape \[10, 4\]"):
        fix_foot_skating(joints, contacts=np.zeros((10, 2), dtype=bool))
    with pytest.raises(ValueError, match="fps"):
        detect_foot_contacts(joints, fps=-1)
    bad = joints.copy()
    bad[4, 3, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf values \\(first at frame 4\\)"):
        fix_foot_skating(bad)

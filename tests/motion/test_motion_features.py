"""HumanML3D features: accuracy against the published data, against a literal step-by-step
implementation of the reference pipeline, batch == per-clip, invariances, round trips, mirroring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from motiongpt.motion import (
    canonicalize_joints,
    feature_blocks,
    features_to_joints,
    features_to_joints_batch,
    joints_to_features,
    joints_to_features_batch,
    mirror_joints,
    random_motion,
    uniform_skeleton,
)
from motiongpt.motion import features as features_mod
from motiongpt.motion.ik import inverse_kinematics
from motiongpt.motion.quaternion import qbetween, qfrom_axis_angle, qinv, qmul, qrot, quat_to_cont6d
from motiongpt.motion.skeleton import MIRROR_PERM, PARENTS, TARGET_BONE_LENGTHS

CLIP = "012314"
BLOCKS = feature_blocks(22)


def _load(hml_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    joints = np.load(hml_dir / "new_joints" / f"{CLIP}.npy")
    feats = np.load(hml_dir / "new_joint_vecs" / f"{CLIP}.npy")
    return joints, feats


def _yaw(angle: float) -> np.ndarray:
    return qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(angle))


def _rotate(joints: np.ndarray, q: np.ndarray, shift=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Rotate and shift in float64 (kept float64: float32 rounding 10 m away would perturb the
    short bones by ~1e-6 m and their rotations by ~2e-5)."""
    q = np.broadcast_to(q, joints.shape[:-1] + (4,))
    return qrot(q, joints.astype(np.float64)) + np.asarray(shift)


def _literal_reference(joints: np.ndarray) -> np.ndarray:
    """The reference ``process_file`` written out step by step with the AoS quaternion helpers
    (no closed forms), to check the fast path's shortcuts."""
    pos = uniform_skeleton(joints).astype(np.float64)  # 1. literal IK + FK
    pos[..., 1] -= pos[..., 1].min()  # 2.
    pos -= pos[0, 0] * np.array([1.0, 0.0, 1.0])  # 3.
    across = (pos[0, 2] - pos[0, 1]) + (pos[0, 17] - pos[0, 16])  # 4.
    across /= np.linalg.norm(across)
    forward = np.cross([0.0, 1.0, 0.0], across)
    forward /= np.linalg.norm(forward)
    face = qbetween(forward, np.array([0.0, 0.0, 1.0]))
    pos = qrot(np.broadcast_to(face, pos.shape[:-1] + (4,)), pos)
    glob = pos.copy()
    thr = 0.002  # 5.
    feet_l = (((pos[1:, [7, 10]] - pos[:-1, [7, 10]]) ** 2).sum(-1) < thr).astype(np.float64)
    feet_r = (((pos[1:, [8, 11]] - pos[:-1, [8, 11]]) ** 2).sum(-1) < thr).astype(np.float64)
    quats = inverse_kinematics(pos, smooth_forward=True).astype(np.float64)  # 6.
    cont6d = quat_to_cont6d(quats)
    r = quats[:, 0]
    velocity = qrot(r[1:], pos[1:, 0] - pos[:-1, 0])
    r_velocity = np.arcsin(qmul(r[1:], qinv(r[:-1]))[:, 2:3])
    ric = pos.copy()  # 7.
    ric[..., 0] -= ric[:, 0:1, 0]
    ric[..., 2] -= ric[:, 0:1, 2]
    ric = qrot(np.repeat(r[:, None], 22, axis=1), ric)
    local_vel = qrot(np.repeat(r[:-1, None], 22, axis=1), glob[1:] - glob[:-1])  # 8.
    n = len(pos) - 1
    return np.concatenate(  # 9.
        [r_velocity, velocity[:, [0, 2]], ric[:-1, 0, 1:2], ric[:-1, 1:].reshape(n, -1),
         cont6d[:-1, 1:].reshape(n, -1), local_vel.reshape(n, -1), feet_l, feet_r],
        axis=-1,
    )


# ----------------------------------------------------------------------------- published data


@pytest.mark.shared_data
def test_features_to_joints_reproduces_published_joints(hml_dir: Path) -> None:
    joints, feats = _load(hml_dir)
    out = features_to_joints(feats, name=CLIP)
    assert out.shape == (170, 22, 3) and out.dtype == np.float32
    assert np.abs(out - joints).max() <= 1e-5


@pytest.mark.shared_data
def test_joints_to_features_reproduces_published_features(hml_dir: Path) -> None:
    joints, feats = _load(hml_dir)
    out = joints_to_features(joints, name=CLIP)
    assert out.shape == (169, 263) and out.dtype == np.float32
    # new_joints were recovered from the 170 published rows (the source clip had 171 frames),
    # so T = 170 joints give the first 169 rows again.
    err = np.abs(out - feats[:169])
    assert err.mean() <= 1e-3, err.mean()
    assert err.max() <= 0.05, err.max()
    np.testing.assert_array_equal(out[:, BLOCKS["foot_contacts"]], feats[:169, BLOCKS["foot_contacts"]])
    # Away from the cut smoothing window at the end every block is much closer.
    assert err[:120].max() <= 5e-3


@pytest.mark.shared_data
def test_fast_path_matches_literal_reference_pipeline(hml_dir: Path) -> None:
    joints, _ = _load(hml_dir)
    for clip in (joints, _rotate(random_motion(90, seed=3), _yaw(2.0), (1.0, 0.2, -3.0))):
        ref = _literal_reference(clip)
        out = joints_to_features(clip)
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 2e-5
        np.testing.assert_array_equal(out[:, -4:], ref[:, -4:])


@pytest.mark.shared_data
def test_canonicalize_matches_literal_uniform_skeleton(hml_dir: Path) -> None:
    joints, _ = _load(hml_dir)
    # Source skeleton with other bone lengths: scale the clip and stretch the arms.
    src = joints.astype(np.float64) * 1.13
    src[:, [18, 19, 20, 21]] += 0.05 * (src[:, [18, 19, 20, 21]] - src[:, [16, 17, 18, 19]])
    src = _rotate(src, _yaw(-1.1), (0.5, 0.3, 2.0))
    literal = uniform_skeleton(src).astype(np.float64)
    fast = canonicalize_joints(src)
    # Same up to the floor/origin/facing steps: compare bone vectors and root heights' shape.
    bones_l = literal[:, 1:] - literal[:, PARENTS[1:]]
    bones_f = fast[:, 1:] - fast[:, PARENTS[1:]]
    np.testing.assert_allclose(np.linalg.norm(bones_f, axis=-1), np.linalg.norm(bones_l, axis=-1), atol=1e-6)
    np.testing.assert_allclose(fast[:, 0, 1], literal[:, 0, 1] - literal[..., 1].min(), atol=1e-5)


# ----------------------------------------------------------------------------- batch == per clip


def _clip_set(base: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    clips = [base, base[:2], base[5:47], mirror_joints(base[10:]), _rotate(base[3:100], _yaw(0.7), (2, 0, -1))]
    clips += [random_motion(int(n), seed=int(s)) for n, s in zip(rng.integers(2, 200, 5), range(5))]
    return clips


def test_batch_equals_per_clip_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    clips = _clip_set(random_motion(160, seed=11))
    single = [joints_to_features(c) for c in clips]
    batch = joints_to_features_batch(clips)
    assert [b.shape for b in batch] == [(len(c) - 1, 263) for c in clips]
    for a, b in zip(single, batch):
        np.testing.assert_array_equal(a, b)
    # Small groups: clips split across several internal chunks still give the same rows.
    monkeypatch.setattr(features_mod, "_CHUNK_FRAMES", 100)
    for a, b in zip(single, joints_to_features_batch(clips)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.shared_data
def test_batch_equals_per_clip_real(hml_dir: Path) -> None:
    joints, _ = _load(hml_dir)
    clips = _clip_set(joints)
    for a, b in zip(joints_to_features_batch(clips), clips):
        np.testing.assert_array_equal(a, joints_to_features(b))
    # [B, T, 22, 3] input gives the per-clip results stacked.
    stacked = np.stack([joints[:60], joints[50:110], joints[100:160]])
    out = joints_to_features(stacked)
    assert out.shape == (3, 59, 263)
    np.testing.assert_array_equal(out[1], joints_to_features(joints[50:110]))


def test_features_to_joints_batch_equals_per_clip() -> None:
    feats = joints_to_features_batch(_clip_set(random_motion(150, seed=5)))
    batch = features_to_joints_batch(feats)
    for f, b in zip(feats, batch):
        np.testing.assert_array_equal(b, features_to_joints(f))
    stacked = np.stack([feats[0][:40], feats[0][40:80]])
    out = features_to_joints(stacked)
    assert out.shape == (2, 40, 22, 3)
    np.testing.assert_array_equal(out[1], features_to_joints(feats[0][40:80]))
    equal_lengths = features_to_joints_batch([feats[0][:40], feats[0][40:80]])
    np.testing.assert_array_equal(equal_lengths[1], out[1])


def test_smoothing_is_per_clip_gaussian_nearest() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([3, 200, 81, 1, 40])
    signal = rng.normal(size=(2, lengths.sum()))
    starts = np.cumsum(lengths) - lengths
    out = features_mod._smooth_forward(signal, lengths, starts)
    for s, n in zip(starts, lengths):
        expected = gaussian_filter1d(signal[:, s : s + n], 20, axis=-1, mode="nearest")
        np.testing.assert_array_equal(out[:, s : s + n], expected)


def test_segmented_cumsum_restarts_per_clip() -> None:
    rng = np.random.default_rng(1)
    lengths = np.array([5, 1, 9, 3])
    values = rng.normal(size=(2, lengths.sum()))
    out = features_mod._segmented_cumsum(values, lengths)
    starts = np.cumsum(lengths) - lengths
    for s, n in zip(starts, lengths):
        np.testing.assert_array_equal(out[:, s : s + n], np.cumsum(values[:, s : s + n], axis=-1))


# ----------------------------------------------------------------------------- invariances, round trips


@pytest.mark.shared_data
@pytest.mark.parametrize("angle, shift", [(0.9, (3.0, 0.5, -2.0)), (-2.5, (-10.0, -0.3, 7.0)), (np.pi, (0, 0, 0))])
def test_global_yaw_and_translation_invariance(hml_dir: Path, angle: float, shift) -> None:
    joints, _ = _load(hml_dir)
    ref = joints_to_features(joints)
    moved = joints_to_features(_rotate(joints, _yaw(angle), shift))
    np.testing.assert_allclose(moved, ref, atol=1e-5)
    np.testing.assert_array_equal(moved[:, -4:], ref[:, -4:])


def test_yaw_invariance_synthetic() -> None:
    joints = random_motion(100, seed=21)
    ref = joints_to_features(joints)
    np.testing.assert_allclose(joints_to_features(_rotate(joints, _yaw(1.3), (1, 2, 3))), ref, atol=1e-5)


@pytest.mark.shared_data
def test_roundtrip_reproduces_canonical_joints(hml_dir: Path) -> None:
    joints, _ = _load(hml_dir)
    src = _rotate(joints.astype(np.float64) * 0.9, _yaw(1.9), (4.0, 1.0, -1.0))  # other scale/place
    canon = canonicalize_joints(src).astype(np.float64)
    back = features_to_joints(joints_to_features(src))
    np.testing.assert_allclose(back, canon[:-1], atol=1e-4)
    # Canonical form: target bone lengths, on the floor, frame-0 root at x = z = 0, facing z+.
    lengths = np.linalg.norm(canon[:, 1:] - canon[:, PARENTS[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(TARGET_BONE_LENGTHS[1:], lengths.shape), atol=1e-6)
    assert abs(canon[..., 1].min()) < 1e-6
    np.testing.assert_allclose(canon[0, 0, [0, 2]], 0.0, atol=1e-6)
    across = (canon[0, 2] - canon[0, 1]) + (canon[0, 17] - canon[0, 16])
    forward = np.cross([0.0, 1.0, 0.0], across)
    np.testing.assert_allclose(forward / np.linalg.norm(forward), [0.0, 0.0, 1.0], atol=1e-6)
    # The trajectory keeps its shape: pairwise root distances scale by the retarget factor only.
    d_src = np.linalg.norm(np.diff(src[:, 0, [0, 2]], axis=0), axis=-1)
    d_can = np.linalg.norm(np.diff(canon[:, 0, [0, 2]], axis=0), axis=-1)
    ratio = d_can[d_src > 1e-3] / d_src[d_src > 1e-3]
    assert np.ptp(ratio) < 1e-4 and abs(ratio.mean() - 1 / 0.9) < 1e-3


def test_kit_features_give_21_joints() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(scale=0.1, size=(30, 251)).astype(np.float32)
    out = features_to_joints(feats)
    assert out.shape == (30, 21, 3) and out.dtype == np.float32
    # Without root motion the joints are the ric positions plus the root.
    feats[:, 0:3] = 0.0
    out = features_to_joints(feats)
    np.testing.assert_allclose(out[:, 1:], feats[:, 4:64].reshape(30, 20, 3), atol=1e-7)
    np.testing.assert_allclose(out[:, 0], np.stack([np.zeros(30), feats[:, 3], np.zeros(30)], -1), atol=1e-7)
    assert features_to_joints_batch([feats[:10], feats])[1].shape == (30, 21, 3)


def test_features_to_joints_integrates_root_motion() -> None:
    # Constant half-yaw velocity w and forward speed v: the root walks on a circle.
    t, w, v = 50, 0.02, 0.05
    feats = np.zeros((t, 263))
    feats[:, 0], feats[:, 2], feats[:, 3] = w, v, 0.9
    root = features_to_joints(feats)[:, 0]
    yaw = 2 * w * np.arange(t)  # full yaw angle of r[t] = (cos a, 0, sin a, 0), a = w t
    steps = np.diff(root, axis=0)
    heading = 2 * w * np.arange(1, t)
    np.testing.assert_allclose(steps[:, 0], -np.sin(heading) * v, atol=1e-6)
    np.testing.assert_allclose(steps[:, 2], np.cos(heading) * v, atol=1e-6)
    np.testing.assert_allclose(root[:, 1], 0.9, atol=1e-7)
    assert yaw.shape == (t,)


# ----------------------------------------------------------------------------- mirroring


def test_mirror_twice_is_identity_and_swaps_sides() -> None:
    joints = random_motion(40, seed=4)
    once = mirror_joints(joints)
    np.testing.assert_array_equal(mirror_joints(once), joints)
    np.testing.assert_array_equal(once[:, 2, 0], -joints[:, 1, 0])  # right hip <- mirrored left hip
    np.testing.assert_array_equal(once[:, 16, 1:], joints[:, 17, 1:])
    np.testing.assert_array_equal(once[:, 0], joints[:, 0] * np.array([-1, 1, 1], dtype=np.float32))
    assert sorted(MIRROR_PERM.tolist()) == list(range(22))
    assert mirror_joints(joints[:, None]).shape == (40, 1, 22, 3)  # any leading dims


@pytest.mark.shared_data
def test_mirrored_clip_features(hml_dir: Path) -> None:
    joints, _ = _load(hml_dir)
    ref = joints_to_features(joints)
    mir = joints_to_features(mirror_joints(joints), name="M" + CLIP)
    assert mir.shape == ref.shape and np.isfinite(mir).all()
    # Not exact: the mirrored clip is retargeted with the other leg's length onto the (slightly
    # asymmetric) target skeleton, and the IK facing direction is a small residual of hip and
    # shoulder vectors (reference quirk), which that asymmetry moves by ~10%.
    def rel_err(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    assert rel_err(mir[1:, 0], -ref[1:, 0]) < 0.2  # root yaw velocity negated
    assert np.corrcoef(mir[1:, 0], ref[1:, 0])[0, 1] < -0.98
    assert rel_err(mir[:, 1], -ref[:, 1]) < 0.1  # lateral root velocity negated
    assert np.corrcoef(mir[:, 1], ref[:, 1])[0, 1] < -0.98
    assert rel_err(mir[:, 2], ref[:, 2]) < 0.1  # forward velocity kept
    assert rel_err(mir[:, 3], ref[:, 3]) < 0.02  # root height kept
    # Foot contacts swap sides (left ankle/foot <-> right), up to threshold flips.
    swapped = ref[:, [261, 262, 259, 260]]
    assert (mir[:, 259:] != swapped).mean() < 0.05


def test_float32_and_float64_inputs_agree() -> None:
    joints = random_motion(60, seed=8)
    a = joints_to_features(joints)
    assert a.flags["C_CONTIGUOUS"] and features_to_joints(a).flags["C_CONTIGUOUS"]
    assert all(f.flags["C_CONTIGUOUS"] for f in joints_to_features_batch([joints, joints[:9]]))
    b = joints_to_features(joints.astype(np.float64))
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    f = features_to_joints(a.astype(np.float64))
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, features_to_joints(a))

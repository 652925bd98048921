"""One reader of motion files for every tool (motiongpt.motion.io)."""

from __future__ import annotations

import numpy as np
import pytest

from motiongpt.motion import random_motion
from motiongpt.motion.features import features_to_joints, joints_to_features
from motiongpt.motion.io import motion_joints, read_motion_file


def test_joints_features_and_bvh_read_alike(tmp_path):
    joints = random_motion(40, seed=0).astype(np.float32)  # (40, 22, 3)
    np.save(tmp_path / "j.npy", joints)
    feats = joints_to_features(joints)
    np.save(tmp_path / "f.npy", feats)
    assert read_motion_file(tmp_path / "j.npy").shape == (40, 22, 3)
    assert read_motion_file(tmp_path / "f.npy").shape == (39, 263)  # as stored
    np.testing.assert_allclose(motion_joints(tmp_path / "j.npy"), joints)
    from_features = motion_joints(tmp_path / "f.npy")
    assert from_features.shape == (39, 22, 3)
    # the exact features -> joints map, the one every tool uses
    np.testing.assert_allclose(from_features, features_to_joints(feats.astype(np.float32)), atol=1e-5)
    from motiongpt.motion.bvh import write_bvh

    write_bvh(joints, tmp_path / "m.bvh", fps=20)
    assert motion_joints(tmp_path / "m.bvh", num_joints=22).shape == (40, 22, 3)


@pytest.mark.parametrize("name,content,message", [
    ("missing.npy", None, "motion file not found"),
    ("clip.txt", b"hello", "expected a .npy"),
    ("cut.npy", b"\x93NUMPY\x01\x00", "not a plain numeric .npy array"),
])
def test_bad_files_are_named(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((FileNotFoundError, ValueError), match=message) as err:
        read_motion_file(path)
    assert str(path) in str(err.value)


def test_pickles_shapes_and_joint_counts_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain numeric"):
        read_motion_file(tmp_path / "obj.npy")
    np.save(tmp_path / "flat.npy", np.zeros((10, 7), np.float32))
    with pytest.raises(ValueError, match=r"flat.npy: expected joints .* got shape \(10, 7\)"):
        motion_joints(tmp_path / "flat.npy")
    np.save(tmp_path / "kit.npy", np.zeros((10, 21, 3), np.float32))
    assert motion_joints(tmp_path / "kit.npy").shape == (10, 21, 3)
    with pytest.raises(ValueError, match=r"expected 22 joints"):
        motion_joints(tmp_path / "kit.npy", num_joints=22)

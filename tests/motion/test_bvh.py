"""BVH export (write_bvh) and import (read_bvh, bvh_to_joints, bvh_to_features, import_bvh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motiongpt.motion import features_to_joints, random_motion
from motiongpt.motion.bvh import (
    BUILTIN_JOINT_MAPS,
    SMPL_BVH_NAMES,
    BVHError,
    bvh_text,
    bvh_to_features,
    bvh_to_joints,
    euler_to_matrix,
    import_bvh,
    matrix_to_euler,
    parse_bvh,
    read_bvh,
    write_bvh,
)
from motiongpt.motion.quaternion import qfrom_axis_angle, qmul, qnormalize, quat_to_matrix
from motiongpt.motion.skeleton import KINEMATIC_CHAIN, PARENTS, TARGET_BONE_LENGTHS, TARGET_OFFSETS, forward_kinematics

REPO = Path(__file__).resolve().parents[2]
MM = 1e-3


def _fk_smpl(bvh) -> np.ndarray:
    """Forward kinematics of a parsed file, joints in HumanML3D order."""
    pos = bvh.global_positions()
    return pos[:, [bvh.index(n) for n in SMPL_BVH_NAMES]]


def _bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1)  # (T, 21)


def _rigid_torso_motion(n: int, seed: int) -> np.ndarray:
    """Random motion on the reference skeleton whose pelvis and chest branches are rigid (as in SMPL)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 20.0
    rotvec = 0.4 * np.sin(rng.uniform(1, 6, (1, 22, 3)) * t[..., None] + rng.uniform(0, 6, (1, 22, 3)))  # (T, 22, 3)
    local = qfrom_axis_angle(rotvec + 1e-9, np.linalg.norm(rotvec, axis=-1))  # (T, 22, 4)
    local[:, 1] = local[:, 2] = local[:, 3]  # hips and spine1 rotate with one rotation
    chest = qmul(qmul(qmul(local[:, 3], local[:, 6]), local[:, 9]), local[:, 12])
    local[:, 13] = local[:, 14] = chest  # collars follow the neck's frame (their chains start at the root)
    root = np.stack([np.linspace(0, 1, n), 0.9 + 0.02 * np.sin(t[:, 0]), np.zeros(n)], axis=-1)
    return forward_kinematics(local, root, TARGET_OFFSETS, KINEMATIC_CHAIN)


# ----------------------------------------------------------------------------- rotations


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_matches_quaternion_composition_and_inverts(order):
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, size=(200, 3))
    angles[:, 1] = rng.uniform(-89, 89, size=200)
    angles[:3, 1] = 90.0  # gimbal lock
    angles[3:6, 1] = -90.0
    axes = {"X": np.array([1.0, 0, 0]), "Y": np.array([0, 1.0, 0]), "Z": np.array([0, 0, 1.0])}
    q = np.array([1.0, 0, 0, 0])
    for k, a in enumerate(order):  # R = R_first @ R_second @ R_third
        q = qmul(q, qfrom_axis_angle(axes[a], np.radians(angles[:, k])))
    expected = quat_to_matrix(qnormalize(q))
    m = euler_to_matrix(angles, order)
    np.testing.assert_allclose(m, expected, atol=1e-12)
    back = matrix_to_euler(m, order)
    np.testing.assert_allclose(euler_to_matrix(back, order), m, atol=1e-9)
    assert np.all(np.abs(back[:, 1]) <= 90.0 + 1e-9)


def test_matrix_to_euler_unwraps_along_time():
    yaw = np.linspace(0, 720, 50)  # two full turns about y
    angles = np.stack([np.zeros(50), np.zeros(50), yaw], axis=-1)
    out = matrix_to_euler(euler_to_matrix(angles, "ZXY"), "ZXY", unwrap=True)
    assert np.abs(np.diff(out, axis=0)).max() < 20.0
    np.testing.assert_allclose(out[:, 2], yaw, atol=1e-6)
    wrapped = matrix_to_euler(euler_to_matrix(angles, "ZXY"), "ZXY")
    assert np.abs(wrapped).max() <= 180.0 + 1e-9


# ----------------------------------------------------------------------------- export


def test_write_bvh_structure(tmp_path):
    joints = random_motion(12, seed=3)
    path = write_bvh(joints, tmp_path / "sub" / "clip.bvh", fps=20)
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT Pelvis\n")
    assert text.count("End Site") == 5  # toes, head, wrists
    assert text.count("{") == text.count("}") == 22 + 5
    bvh = read_bvh(path)
    assert bvh.names[0] == "Pelvis" and sorted(bvh.names) == sorted(SMPL_BVH_NAMES)
    assert bvh.n_frames == 12 and bvh.frame_time == pytest.approx(0.05)
    np.testing.assert_array_equal(bvh.offsets[0], 0.0)
    assert bvh.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    # Parents follow the SMPL tree; single-child bones have the reference lengths.
    for name, parent in zip(SMPL_BVH_NAMES[1:], PARENTS[1:]):
        assert bvh.names[bvh.parents[bvh.index(name)]] == SMPL_BVH_NAMES[parent]
    for j in (4, 5, 7, 8, 16, 18):
        offset = bvh.offsets[bvh.index(SMPL_BVH_NAMES[j])]
        assert np.linalg.norm(offset) == pytest.approx(TARGET_BONE_LENGTHS[j], abs=1e-6)
    # Only the six children of the two branch joints carry translation channels.
    translated = {bvh.names[k] for k, ch in enumerate(bvh.channels) if "Xposition" in ch}
    assert translated == {"Pelvis", "L_Hip", "R_Hip", "Spine1", "Neck", "L_Collar", "R_Collar"}
    assert not list(tmp_path.joinpath("sub").glob(".*tmp"))  # atomic write left no temp file


@pytest.mark.parametrize("units,order", [("m", "ZXY"), ("cm", "XYZ"), ("m", "YZX")])
def test_roundtrip_random_motion_within_1mm(tmp_path, units, order):
    joints = random_motion(60, seed=7)
    bvh = read_bvh(write_bvh(joints, tmp_path / "r.bvh", units=units, rotation_order=order))
    scale = 100.0 if units == "cm" else 1.0
    err = np.linalg.norm(_fk_smpl(bvh) / scale - joints, axis=-1)
    assert err.max() < MM


def test_roundtrip_synthetic_corpus_clip_within_1mm(tmp_path):
    from motiongpt.data.synthetic import render_plan

    _, joints, _ = render_plan([("jump", None)], seed=2)
    got = bvh_to_joints(write_bvh(joints, tmp_path / "j.bvh"))
    assert np.abs(got - joints).max() < MM


def test_classic_layout_exact_for_rigid_torso_and_approximate_otherwise():
    rigid = _rigid_torso_motion(40, seed=1)
    bvh = parse_bvh(bvh_text(rigid, branch_translations=False))
    assert sum(len(c) for c in bvh.channels) == 6 + 21 * 3  # translation on the root only
    assert np.abs(_fk_smpl(bvh) - rigid).max() < MM
    # random_motion rotates hips/spine independently: a rigid pelvis cannot follow exactly, but
    # every single-child bone still points exactly where the source bone points.
    joints = random_motion(40, seed=1).astype(np.float64)
    got = _fk_smpl(parse_bvh(bvh_text(joints, branch_translations=False)))
    for j in (4, 7, 10, 6, 15, 18, 20):
        d_src = joints[:, j] - joints[:, PARENTS[j]]
        d_got = got[:, j] - got[:, PARENTS[j]]
        cos = (d_src * d_got).sum(-1) / np.linalg.norm(d_src, axis=-1) / np.linalg.norm(d_got, axis=-1)
        assert cos.min() > 1 - 1e-9


def test_bone_lengths_reference_vs_data():
    joints = random_motion(30, seed=5).astype(np.float64)
    stretched = joints.copy()
    stretched[:, [4, 7, 10]] += (joints[:, [4, 7, 10]] - joints[:, [1]]) * 0.1  # longer left thigh
    ref = _fk_smpl(parse_bvh(bvh_text(stretched)))
    data = _fk_smpl(parse_bvh(bvh_text(stretched, bone_lengths="data")))
    # The reference skeleton keeps its own thigh; directions still match, so the knee is off by
    # the length difference only.
    np.testing.assert_allclose(_bone_lengths(ref)[:, 3], TARGET_BONE_LENGTHS[4], atol=1e-6)
    assert np.abs(data[:, 4] - stretched[:, 4]).max() < MM
    assert np.abs(ref[:, 4] - stretched[:, 4]).max() > 0.01


def test_write_bvh_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"shape \[T, 22, 3\]"):
        write_bvh(np.zeros((5, 21, 3)), tmp_path / "a.bvh")
    bad = random_motion(5, seed=0)
    bad[2, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or inf.*frame 2"):
        write_bvh(bad, tmp_path / "a.bvh")
    flat = random_motion(5, seed=0)
    flat[3, 7] = flat[3, 4]
    with pytest.raises(ValueError, match="frame 3: bone L_Knee -> L_Ankle has zero length"):
        write_bvh(flat, tmp_path / "a.bvh")
    with pytest.raises(ValueError, match="fps"):
        write_bvh(random_motion(5, seed=0), tmp_path / "a.bvh", fps=0)
    assert not (tmp_path / "a.bvh").exists()


@pytest.mark.shared_data
def test_roundtrip_real_clip_within_1mm(hml_dir, tmp_path):
    joints = features_to_joints(np.load(hml_dir / "new_joint_vecs" / "012314.npy"))
    for translations in (True, False):  # a real (SMPL) clip has a rigid pelvis and chest
        path = write_bvh(joints, tmp_path / "real.bvh", branch_translations=translations)
        assert np.abs(bvh_to_joints(path) - joints).max() < MM


# ----------------------------------------------------------------------------- import


_TWO_JOINT = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
  JOINT B
  {
    OFFSET 0 2 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 1 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 90 0 0 0
0 0 0 90 0 0 0 0 90
"""


def test_forward_kinematics_by_hand():
    bvh = parse_bvh(_TWO_JOINT)
    pos = bvh.global_positions()
    ends = bvh.end_site_positions()[1]
    # Frame 0: root at (1, 2, 3) turned 90 deg about z: its +y offset points to -x.
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [-1, 2, 3]], atol=1e-12)
    np.testing.assert_allclose(ends[0], [-1, 3, 3], atol=1e-12)  # B's +x end site, turned to +y
    # Frame 1: root turned 90 deg about y (y offset unchanged); B turned 90 deg about x,
    # then the root's y turn: +x -> +x (about x) -> -z (about y).
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 2, 0]], atol=1e-12)
    np.testing.assert_allclose(ends[1], [0, 2, -1], atol=1e-12)
    assert bvh.fps == 2.0


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda t: t.replace("  JOINT B\n  {", "  JOINT B\n"), r"line \d+: .*expected '\{'"),
        (lambda t: t.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation"), r"line 9: .*unknown channel 'Wrotation'"),
        (lambda t: t.replace("0 0 0 90 0 0 0 0 90", "0 0 0 90 0 0 0 0"), r"line 20: frame 1 has 8 values, .* 9 chan"),
        (lambda t: t.replace("Frames: 2", "Frames: 3"), r"'Frames: 3' but only 2 frame lines"),
        (lambda t: t.replace("OFFSET 0 2 0", "OFFSET 0 x 0"), r"line 8: expected a number for the OFFSET of joint 'B'"),
        (lambda t: t.split("MOTION")[0], "no MOTION section"),
        (lambda t: t.replace("}\nMOTION", "MOTION"), r"file ends .*closing joint 'A'"),
        (lambda t: t.replace("1 2 3 0", "1 2 nan 0"), r"line 19: frame 0 has NaN"),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, mutate, message):
    path = tmp_path / "bad.bvh"
    path.write_text(mutate(_TWO_JOINT))
    with pytest.raises(BVHError, match=message) as info:
        read_bvh(path)
    assert str(path) in str(info.value)


def test_missing_file_and_unmappable_joints(tmp_path):
    with pytest.raises(BVHError, match="cannot read the BVH file"):
        read_bvh(tmp_path / "absent.bvh")
    path = tmp_path / "two.bvh"
    path.write_text(_TWO_JOINT)
    with pytest.raises(BVHError, match=r"two.bvh: cannot map .* lacks .*pass joint_map"):
        bvh_to_joints(path)


MIXAMO = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "Spine",
    "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine1", "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot", "spine3": "Spine2", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
    "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
}


def test_builtin_mixamo_map_is_the_expected_one():
    assert BUILTIN_JOINT_MAPS["mixamo"] == MIXAMO


def test_mixamo_names_z_up_centimetres_60fps(tmp_path):
    joints = random_motion(31, seed=11).astype(np.float64)  # 1.5 s at 20 fps
    # The same motion sampled at 60 fps (linear in between), stored z-up in centimetres with
    # Mixamo joint names: what a Blender / Mixamo export looks like.
    fine = np.concatenate([joints[:-1, None] * (1 - a) + joints[1:, None] * a for a in (0, 1 / 3, 2 / 3)], axis=1)
    fine = np.concatenate([fine.reshape(-1, 22, 3), joints[-1:]])  # (91, 22, 3)
    z_up = np.stack([fine[..., 0], -fine[..., 2], fine[..., 1]], axis=-1)  # y-up -> z-up
    names = ["mixamorig:" + MIXAMO[k] for k in MIXAMO]
    path = write_bvh(z_up, tmp_path / "mixamo.bvh", fps=60, units="cm", names=names)
    got = bvh_to_joints(path)  # auto: map, units, up axis; resampled to 20 fps
    assert got.shape == (31, 22, 3)
    assert np.abs(got - joints).max() < MM
    # The same through an explicit JSON map (SMPL-style keys) and explicit units/up.
    map_path = tmp_path / "map.json"
    map_path.write_text(json.dumps({smpl: "mixamorig:" + MIXAMO[key] for smpl, key in zip(SMPL_BVH_NAMES, MIXAMO)}))
    got2 = bvh_to_joints(path, map_path, up="z", units="cm")
    assert np.abs(got2 - joints).max() < MM


def test_joint_map_errors(tmp_path):
    joints = random_motion(5, seed=0)
    path = write_bvh(joints, tmp_path / "s.bvh")
    partial = {k: v for k, v in zip(SMPL_BVH_NAMES, SMPL_BVH_NAMES)}
    del partial["Head"]
    with pytest.raises(BVHError, match=r"joint map lacks SMPL joints \['Head'\]"):
        bvh_to_joints(path, partial)
    with pytest.raises(BVHError, match=r"file does not have: \['Skull'\]"):
        bvh_to_joints(path, {**partial, "head": "Skull"})
    with pytest.raises(BVHError, match="'tail' is not one of the 22 SMPL joints"):
        bvh_to_joints(path, {**partial, "Head": "Head", "tail": "Pelvis"})
    bad_json = tmp_path / "map.json"
    bad_json.write_text("{not json")
    with pytest.raises(BVHError, match=r"map.json: joint map is not valid JSON: line 1"):
        bvh_to_joints(path, bad_json)


def test_units_and_up_detection_and_overrides(tmp_path):
    joints = random_motion(10, seed=4)
    path = write_bvh(joints, tmp_path / "m.bvh")
    np.testing.assert_allclose(bvh_to_joints(path, units="cm"), joints * 0.01, atol=1e-5)
    np.testing.assert_allclose(bvh_to_joints(path, units=2.0), joints * 2.0, atol=1e-5)
    flipped = bvh_to_joints(path, up="-y")  # a rotation (half turn), not a mirror
    np.testing.assert_allclose(_bone_lengths(flipped), _bone_lengths(joints), atol=1e-5)
    assert (flipped[:, 15, 1] < flipped[:, 7, 1]).all()  # head below the feet now
    with pytest.raises(ValueError, match="units must be"):
        bvh_to_joints(path, units="furlong")
    # A skeleton 200 times too large matches no unit (cm gives 1.65 m legs, mm 0.17 m).
    with pytest.raises(BVHError, match="giant.bvh: cannot infer the units"):
        bvh_to_joints(write_bvh(joints * 200.0, tmp_path / "giant.bvh", bone_lengths="data"))


@pytest.mark.shared_data
def test_cmu_file_is_a_plausible_human(shared_data):
    path = shared_data / "bvh" / "cmu_01_01.bvh"
    bvh = read_bvh(path)
    assert len(bvh.names) == 31 and bvh.fps == pytest.approx(120.0, rel=1e-4)
    joints = bvh_to_joints(bvh)
    duration = (bvh.n_frames - 1) * bvh.frame_time
    assert abs(len(joints) - duration * 20) <= 1
    # Leg (hip-knee-ankle) of an adult; the top of the head (Head's End Site) while standing at
    # frame 0. This CMU skeleton has a short torso: 1.54 m with an adult's 0.83 m leg.
    leg = np.linalg.norm(joints[:, 4] - joints[:, 1], axis=-1) + np.linalg.norm(joints[:, 7] - joints[:, 4], axis=-1)
    assert 0.75 < np.median(leg) < 0.95
    head_top = bvh.end_site_positions()[bvh.index("Head")][0, 1] * (0.0254 / 0.45)
    assert 1.4 < head_top < 2.0
    assert 1.3 < joints[0, 15, 1] < 1.9  # head joint above the feet, y up
    # Feet on the floor: the lowest toe/ankle heights over the clip are near y = 0.
    assert 0.0 <= np.percentile(joints[:, [10, 11], 1].min(axis=1), 5) < 0.08
    # Bones between mapped CMU joints stay rigid through the unit change and the resampling.
    # Spine3 and the collars are midpoints of two CMU joints (see the cmu map): the collar
    # bones change length with the CMU shoulder rotation (measured: up to 3.4 cm).
    spread = np.ptp(_bone_lengths(joints), axis=0)  # (21,) per bone, index j - 1 for joint j
    midpoint_bones = [j - 1 for j in (9, 12, 13, 14, 16, 17)]
    assert np.delete(spread, midpoint_bones).max() < 2e-3
    assert spread[midpoint_bones].max() < 0.05
    feats = bvh_to_features(path)
    assert feats.shape == (len(joints) - 1, 263) and np.isfinite(feats).all()


@pytest.mark.shared_data
def test_cmu_roundtrip_through_our_export(shared_data, tmp_path):
    joints = bvh_to_joints(shared_data / "bvh" / "cmu_01_01.bvh")
    again = bvh_to_joints(write_bvh(joints, tmp_path / "cmu_smpl.bvh", bone_lengths="data"))
    # The CMU joints' bone lengths vary by a few mm (see above): the file's mean lengths leave
    # sub-centimetre differences, the direction of every bone is kept.
    assert np.linalg.norm(again - joints, axis=-1).mean() < 0.005


# ----------------------------------------------------------------------------- file helpers and scripts


def test_import_bvh_writes_clip_and_dataset_entry(tmp_path, cli_module):
    from motiongpt.data.humanml3d import read_captions, read_split

    joints = random_motion(30, seed=9)
    src = write_bvh(joints, tmp_path / "in" / "walk.bvh")
    ds = tmp_path / "ds"
    (ds).mkdir()
    (ds / "train.txt").write_text("S000001\n")
    rc = cli_module("scripts/import_bvh.py").main(
        ["--bvh", str(src), "--out", str(tmp_path / "out"), "--name", "mine", "--dataset", str(ds),
         "--caption", "a person  walks", "--split", "train", "--fix_foot"]
    )
    assert rc == 0
    got = np.load(tmp_path / "out" / "mine.npy")
    feats = np.load(tmp_path / "out" / "mine_feats.npy")
    assert got.shape == (30, 22, 3) and got.dtype == np.float32 and feats.shape == (29, 263)
    np.testing.assert_array_equal(np.load(ds / "new_joint_vecs" / "mine.npy"), feats)
    np.testing.assert_allclose(np.load(ds / "new_joints" / "mine.npy"), features_to_joints(feats), atol=1e-6)
    assert [c.text for c in read_captions(ds / "texts" / "mine.txt")] == ["a person walks"]
    assert read_split(ds, "train") == ["S000001", "mine"]


def test_import_bvh_argument_errors(tmp_path, capsys, cli_module):
    src = write_bvh(random_motion(5, seed=0), tmp_path / "a.bvh")
    with pytest.raises(ValueError, match="needs a caption"):
        import_bvh(src, tmp_path / "o", dataset_dir=tmp_path / "ds")
    with pytest.raises(ValueError, match="pass dataset_dir"):
        import_bvh(src, tmp_path / "o", caption="x")
    script = cli_module("scripts/import_bvh.py")
    assert script.main(["--bvh", str(tmp_path / "none.bvh"), "--out", str(tmp_path / "o")]) == 2
    assert "none.bvh: cannot read the BVH file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_export_script_from_features(tmp_path, cli_module):
    joints = random_motion(20, seed=2)
    from motiongpt.motion import joints_to_features

    feats = joints_to_features(joints)
    np.save(tmp_path / "f.npy", feats)
    export_bvh = cli_module("scripts/export_bvh.py")
    assert export_bvh.main(["--motion", str(tmp_path / "f.npy"), "--out", str(tmp_path / "f.bvh")]) == 0
    np.testing.assert_allclose(bvh_to_joints(tmp_path / "f.bvh"), features_to_joints(feats), atol=MM)
    np.save(tmp_path / "bad.npy", np.zeros((4, 7)))
    assert export_bvh.main(["--motion", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "b.bvh")]) == 2


# ----------------------------------------------------------------------------- Blender (optional)


@pytest.mark.skipif(
    not os.environ.get("MOTIONGPT_BLENDER_PYTHON"),
    reason="set MOTIONGPT_BLENDER_PYTHON to a Python with the bpy module (pip install bpy) to check Blender's importer",
)
def test_blender_imports_the_file(tmp_path):
    joints = random_motion(15, seed=6)
    write_bvh(joints, tmp_path / "b.bvh")
    np.save(tmp_path / "b.npy", joints)
    script = tmp_path / "check.py"
    script.write_text(
        "import sys, json, numpy as np, bpy\n"
        "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
        "bpy.ops.import_anim.bvh(filepath=sys.argv[1], use_fps_scale=False)\n"
        "arm = [o for o in bpy.data.objects if o.type == 'ARMATURE'][0]\n"
        "names = json.loads(sys.argv[3]); src = np.load(sys.argv[2]); err = 0.0\n"
        "for t in range(len(src)):\n"
        "    bpy.context.scene.frame_set(bpy.context.scene.frame_start + t)\n"
        "    h = np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])\n"
        "    err = max(err, np.abs(np.stack([h[:, 0], h[:, 2], -h[:, 1]], -1) - src[t]).max())\n"
        "print('MAXERR', err)\n"
    )
    proc = subprocess.run(
        [os.environ["MOTIONGPT_BLENDER_PYTHON"], str(script), str(tmp_path / "b.bvh"), str(tmp_path / "b.npy"),
         json.dumps(list(SMPL_BVH_NAMES))],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = float(proc.stdout.split("MAXERR")[-1])
    assert err < MM


def test_script_help_runs():
    cmd = [sys.executable, str(REPO / "scripts" / "import_bvh.py"), "--help"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--joint_map" in proc.stdout

"""Skeleton rendering: animated GIFs, PNG strips, orientation, input checks, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motiongpt.motion.skeleton import KINEMATIC_CHAIN, KIT_KINEMATIC_CHAIN
from motiongpt.viz import find_motions, render_frames_png, render_motion, validate_joints
from motiongpt.viz import ffmpeg_available, plot3d, video
from motiongpt.viz.plot3d import SIDE_COLORS, render_to_arrays

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viz_testlib import KIT_REST, REPO_ROOT, SMPL_REST, colour_mask, gif_frames, walking  # noqa: E402


def test_render_real_clip_gif(hml_dir: Path, tmp_path: Path) -> None:
    joints = np.load(hml_dir / "new_joints" / "012314.npy")[:20]
    out = render_motion(joints, tmp_path / "sub" / "real.gif", title="a person bends over and turns " * 4)
    assert out == tmp_path / "sub" / "real.gif" and out.is_file()
    with Image.open(out) as im:
        assert im.is_animated and im.n_frames == 20
        assert im.info["duration"] == 50 and im.info["loop"] == 0
        assert im.size == (320, 320)
    frames = gif_frames(out)
    for f in (frames[0], frames[-1]):
        non_white = (f < 235).any(-1).mean()
        assert 0.05 < non_white < 0.8  # floor, bones and text, on a white background
        assert colour_mask(f, SIDE_COLORS["left"]).sum() > 30 and colour_mask(f, SIDE_COLORS["right"]).sum() > 30
    assert np.abs(frames[0].astype(int) - frames[10]).sum() > 0  # the motion moves
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temp file left behind


def test_render_synthetic_gif_and_frame_count(tmp_path: Path) -> None:
    # The pose stands still for 6 frames (and no path is drawn): the frame counter keeps every
    # frame distinct, so the GIF encoder cannot merge them and the frame count stays T.
    still = np.repeat(SMPL_REST[None].astype(np.float32), 6, axis=0)
    joints = np.concatenate([still, walking(SMPL_REST, 6)])
    out = render_motion(joints, tmp_path / "syn.gif", fps=10, trajectory=False)
    with Image.open(out) as im:
        assert im.n_frames == 12 and im.info["duration"] == 100
    frames = gif_frames(out)
    assert all((f < 235).any(-1).mean() > 0.05 for f in frames)
    # Written with the usual file permissions, not mkstemp's 0600.
    assert out.stat().st_mode & 0o044 == 0o044


def test_kit_21_joint_render(tmp_path: Path) -> None:
    joints = walking(KIT_REST, 8)
    out = render_motion(joints, tmp_path / "kit.gif", title="KIT-ML", fps=12.5)
    with Image.open(out) as im:
        assert im.n_frames == 8 and im.info["duration"] == 80
    f = gif_frames(out)[0]
    assert colour_mask(f, SIDE_COLORS["left"]).sum() > 30 and colour_mask(f, SIDE_COLORS["right"]).sum() > 30
    _, chains = validate_joints(joints)
    assert chains == KIT_KINEMATIC_CHAIN


def test_projection_is_a_rotation_and_camera_sees_the_front() -> None:
    basis = plot3d._to_plot(np.eye(3))  # rows: images of data x, y, z
    np.testing.assert_array_equal(basis[1], [0, 0, 1])  # data y is matplotlib's up axis
    assert np.linalg.det(basis) == pytest.approx(1.0)  # a reflection would draw motions mirrored
    # Default camera (azim -60, elev 20) looks at a z+-facing person from the front.
    azim, elev = np.radians(-60.0), np.radians(20.0)
    towards_camera = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    assert basis[2] @ towards_camera > 0.5


@pytest.mark.parametrize("pose", [SMPL_REST, KIT_REST], ids=["smpl", "kit"])
def test_orientation_upright_and_not_mirrored(pose: np.ndarray) -> None:
    # Facing +z, seen from the default front-left camera: the head is on top, the person's left
    # side (blue) appears on the image's right, and the feet are at the bottom.
    (img,) = list(render_to_arrays(pose[None], frame_counter=False, trajectory=False, legend=False, size=4, dpi=60))
    blue = np.argwhere(colour_mask(img, SIDE_COLORS["left"]))
    red = np.argwhere(colour_mask(img, SIDE_COLORS["right"]))
    head = np.argwhere(colour_mask(img, SIDE_COLORS["center"], tol=30))
    assert len(blue) > 30 and len(red) > 30 and len(head) > 10
    assert blue[:, 1].mean() > red[:, 1].mean() + 3  # left side on the right of the image
    bones = np.concatenate([blue, red])
    assert head[:, 0].min() < bones[:, 0].min() + 3  # topmost pixels are the head / spine
    # Tall, not squashed: the feet are far below the head.
    assert bones[:, 0].max() - head[:, 0].min() > 0.3 * img.shape[0]


@pytest.mark.parametrize(
    ("shape", "chains"),
    [((5, 22), None), ((5, 22, 2), None), ((0, 22, 3), None), ((5, 23, 3), None), ((5, 66), None),
     ((5, 10, 3), KINEMATIC_CHAIN)],
)
def test_bad_shapes_raise_value_error_naming_shape(tmp_path: Path, shape, chains) -> None:
    out = tmp_path / "bad.gif"
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        render_motion(np.zeros(shape, np.float32), out, chains=chains)
    with pytest.raises(ValueError, match="shape"):
        render_frames_png(np.zeros(shape, np.float32), tmp_path / "bad.png", chains=chains)
    assert not any(tmp_path.iterdir())


def test_non_finite_and_bad_fps_rejected(tmp_path: Path) -> None:
    joints = walking(SMPL_REST, 4)
    joints[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render_motion(joints, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        render_motion(walking(SMPL_REST, 4), tmp_path / "x.gif", fps=0)


def test_custom_chains_render(tmp_path: Path) -> None:
    joints = np.random.default_rng(0).random((3, 4, 3)).astype(np.float32)
    with Image.open(render_motion(joints, tmp_path / "c.gif", chains=[[0, 1, 2], [1, 3]])) as im:
        assert im.n_frames == 3


def test_render_frames_png_strip(tmp_path: Path) -> None:
    joints = walking(SMPL_REST, 30, step=0.2)  # 5.8 m: the camera follows the root
    out = render_frames_png(joints, tmp_path / "strip.png", frames=(0, 15, -1), title="walks forward", panel_size=2, dpi=50)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] == 3 * 2 * 50
        rgb = np.asarray(im.convert("RGB"))
    # Every panel shows the skeleton (the follow camera keeps the root in view).
    for k in range(3):
        panel = rgb[:, k * 100 : (k + 1) * 100]
        assert colour_mask(panel, SIDE_COLORS["left"]).sum() > 5, k
    with pytest.raises(ValueError, match="frame 30 out of range"):
        render_frames_png(joints, tmp_path / "x.png", frames=[30])


def test_mp4_without_ffmpeg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither a system ffmpeg nor the imageio-ffmpeg binary.
    monkeypatch.setattr(video.shutil, "which", lambda name: None)
    monkeypatch.setattr(video, "_bundled_ffmpeg", lambda: None)
    assert not ffmpeg_available()
    with pytest.raises(RuntimeError, match="ffmpeg.*imageio-ffmpeg"):
        render_motion(walking(SMPL_REST, 3), tmp_path / "m.mp4")
    assert not any(tmp_path.iterdir())


def test_write_is_atomic_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_replace = video.os.replace

    def spy(src, dst):
        # The finished file is complete before it takes the final name.
        with Image.open(src) as im:
            calls.append((Path(src), Path(dst), im.n_frames))
        real_replace(src, dst)

    monkeypatch.setattr(video.os, "replace", spy)
    out = render_motion(walking(SMPL_REST, 3), tmp_path / "a.gif")
    assert len(calls) == 1
    src, dst, n = calls[0]
    assert dst == out and src.parent == out.parent and src != out and n == 3
    assert not src.exists()


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a.gif"
    out.write_bytes(b"old")

    def boom(frames, path, fps):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(plot3d, "_save_gif", boom)
    with pytest.raises(OSError, match="disk full"):
        render_motion(walking(SMPL_REST, 3), out)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.gif"]


def test_find_motions_titles(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    for cid in ("b", "a"):
        np.save(root / "new_joints" / f"{cid}.npy", walking(SMPL_REST, 3))
    (root / "texts" / "a.txt").write_text("\nwave # twice#wave/VERB#0.0#0.0\nsecond#s/X#0.0#0.0\n", encoding="utf-8")
    found = find_motions(root)
    assert [(m.id, m.title) for m in found] == [("a", "wave # twice"), ("b", None)]
    assert [m.id for m in find_motions(root / "new_joints")] == ["a", "b"]
    assert find_motions(root / "new_joints")[0].title == "wave # twice"  # sibling texts/
    assert [m.id for m in find_motions(root, motion_ids=["b"])] == ["b"]
    assert len(find_motions(root, max_count=1)) == 1
    with pytest.raises(FileNotFoundError, match="zzz.npy"):
        find_motions(root, motion_ids=["zzz"])


def test_cli_renders_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    np.save(root / "new_joints" / "m1.npy", walking(SMPL_REST, 5))
    np.save(root / "new_joints" / "m2.npy", walking(SMPL_REST, 4))
    np.save(root / "new_joints" / "m3.npy", walking(KIT_REST, 3))
    np.save(root / "new_joints" / "broken.npy", np.zeros((4, 7), np.float32))
    (root / "texts" / "m1.txt").write_text("a person walks#a/DET#0.0#0.0\n", encoding="utf-8")
    out = tmp_path / "out"
    script = REPO_ROOT / "visualization" / "plot_3d_global.py"
    res = subprocess.run(
        [sys.executable, str(script), "--dir", str(root), "--motion-list", "m1", "m3", "--out", str(out), "--fps", "10"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["m1.gif", "m3.gif"]
    with Image.open(out / "m1.gif") as im:
        assert im.n_frames == 5 and im.info["duration"] == 100
    # Whole folder: the broken file is reported and the exit status says so.
    res = subprocess.run(
        [sys.executable, str(script), "--dir", str(root / "new_joints"), "--out", str(out), "--max", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 1 and "broken.npy" in res.stderr and "(4, 7)" in res.stderr
    assert (out / "m1.gif").is_file()

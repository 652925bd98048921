"""Capsule-body renderer: frame counts and sizes, the body drawn where the camera projects the
joints, visibility (z-buffer), orientation, shadow, side by side, MP4, bad inputs, atomic writes,
and the visualization/render.py CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motiongpt.viz import BodyRenderOptions, body_model, ffmpeg_available, render_bodies, render_body, render_body_frames
from motiongpt.viz import body as body_mod
from motiongpt.viz.body import make_camera, render_bodies_frames, smpl_missing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viz_testlib import KIT_REST, REPO_ROOT, SMPL_REST, gif_frames, walking  # noqa: E402

SKY_TOP = np.array([247, 249, 251])  # the background's top row colour
PLAIN = BodyRenderOptions(floor=False, shadow=False, frame_counter=False)  # body on the plain sky


def classify(px: np.ndarray) -> str:
    """Colour group of a rendered pixel by its blue/red ratio (shading scales all channels)."""
    r, g, b = (float(c) + 1.0 for c in px)
    if abs(r - 247) + abs(g - 249) + abs(b - 251) < 30 or (r > 225 and g > 225 and b > 225):
        return "background"
    ratio = b / r
    return "left" if ratio > 1.6 else "right" if ratio < 0.75 else "center"


def is_body(img: np.ndarray, xy: np.ndarray, radius: int = 1) -> bool:
    x, y = int(xy[0]), int(xy[1])
    patch = img[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1].reshape(-1, 3).astype(int)
    sky_like = np.abs(patch - img[y, 0].astype(int)).sum(-1) < 12  # same row of the plain gradient
    return not sky_like.any()


def test_frames_count_size_and_gif(tmp_path: Path) -> None:
    joints = walking(SMPL_REST, 7)
    frames = render_body_frames(joints, size=(96, 80))
    assert frames.shape == (7, 80, 96, 3) and frames.dtype == np.uint8
    assert np.abs(frames[0].astype(int) - frames[6]).sum() > 0
    # A still pose: the frame counter keeps every GIF frame distinct, so the count stays T.
    still = np.repeat(SMPL_REST[None], 5, axis=0)
    out = render_body(still, tmp_path / "sub" / "b.gif", title="stands still", fps=10, size=72)
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.size == (72, 72) and im.info["duration"] == 100 and im.info["loop"] == 0
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["b.gif"]
    assert out.stat().st_mode & 0o044 == 0o044


def test_body_is_drawn_where_the_joints_project() -> None:
    joints = walking(SMPL_REST, 3, step=0.3)
    size = 128
    frames = render_body_frames(joints, size=size, options=PLAIN)
    cam = make_camera(joints, size, PLAIN)
    for t in (0, 2):
        img = frames[t]
        # pelvis, head, both wrists, both feet
        px, depth = cam.project(joints[t][[0, 15, 20, 21, 10, 11]], t)
        assert np.all((px > 0) & (px < size)), px
        for xy in px:
            assert is_body(img, xy), (t, xy)
        # A point half a metre to the side of the pelvis is empty, and so is the top-left corner.
        side, _ = cam.project(joints[t][[0]] + np.array([[0.0, 0.0, 0.0]]) + 0.6 * cam.right, t)
        assert not is_body(img, side[0], radius=0)
        assert np.abs(img[:4, :4].reshape(-1, 3).astype(int) - SKY_TOP).max() <= 2
    # The camera follows the root: the pelvis stays near the same pixel while the body walks 0.6 m.
    p0, _ = cam.project(joints[0][[0]], 0)
    p2, _ = cam.project(joints[2][[0]], 2)
    assert np.abs(p0 - p2).max() < 0.1 * size


@pytest.mark.parametrize(("azim", "left_on_right"), [(0.0, True), (180.0, False)])
def test_orientation_not_mirrored(azim: float, left_on_right: bool) -> None:
    opts = BodyRenderOptions(azim=azim, elev=0.0, floor=False, shadow=False, frame_counter=False, outline=False)
    (img,) = render_body_frames(SMPL_REST[None], size=120, options=opts)
    groups = np.array([[classify(px) for px in row] for row in img[::2, ::2]])
    cols = {g: np.argwhere(groups == g)[:, 1].mean() for g in ("left", "right")}
    rows = {g: np.argwhere(groups == g)[:, 0] for g in ("left", "right", "center")}
    assert all(len(v) > 20 for v in rows.values())
    assert (cols["left"] > cols["right"] + 5) == left_on_right
    assert (cols["right"] > cols["left"] + 5) == (not left_on_right)
    # Upright: the head (centre group) is the topmost part, feet at the bottom.
    limbs = np.concatenate([rows["left"], rows["right"]])
    assert rows["center"].min() < limbs.min()
    assert limbs.max() > np.percentile(rows["center"], 90) + 5


def test_depth_order_arm_in_front_of_or_behind_the_chest() -> None:
    # The left forearm crosses in front of the chest (+z, the facing side).
    pose = SMPL_REST.copy()
    sh = pose[16]
    pose[18] = sh + np.array([-0.05, -0.1, 0.3])
    pose[20] = pose[18] + np.array([-0.3, 0.0, 0.0])
    probe = (pose[18] + pose[20]) / 2  # forearm middle, in front of the torso
    for azim, expected in ((0.0, "left"), (180.0, "center")):
        opts = BodyRenderOptions(azim=azim, elev=5.0, floor=False, shadow=False, frame_counter=False, outline=False)
        (img,) = render_body_frames(pose[None], size=140, options=opts)
        (xy,), _ = make_camera(pose[None], 140, opts).project(probe[None], 0)
        # Seen from the front the arm covers the chest; from behind the chest hides the arm.
        got = classify(img[int(xy[1]), int(xy[0])])
        assert got == expected, (azim, got, img[int(xy[1]), int(xy[0])])


def test_shadow_darkens_the_floor_only() -> None:
    joints = SMPL_REST[None]
    on = render_body_frames(joints, size=96, options=BodyRenderOptions(frame_counter=False)).astype(int)[0]
    off = render_body_frames(joints, size=96, options=BodyRenderOptions(shadow=False, frame_counter=False)).astype(int)[0]
    diff = on - off
    assert (diff <= 1).all()  # a shadow never brightens
    assert (diff.sum(-1) < -30).sum() > 20  # and darkens a visible patch
    # Without a floor there is nothing to cast on.
    plain = render_body_frames(joints, size=96, options=PLAIN).astype(int)[0]
    assert (plain[:40, :5] >= 225).all()


def test_kit_and_custom_skeletons() -> None:
    frames = render_body_frames(walking(KIT_REST, 2), size=64, options=PLAIN)
    assert frames.shape == (2, 64, 64, 3)
    assert (np.abs(frames[0].astype(int) - frames[0, :, :1].astype(int)).sum(-1) > 30).mean() > 0.03
    pts = np.random.default_rng(0).random((2, 4, 3))
    model = body_model(4, chains=[[0, 1, 2], [1, 3]], radius=0.1)
    assert render_body_frames(pts, size=48, model=model).shape == (2, 48, 48, 3)


def test_side_by_side_panels_and_holding(tmp_path: Path) -> None:
    a, b = walking(SMPL_REST, 3), walking(SMPL_REST, 5, step=0.1)
    frames = np.stack(list(render_bodies_frames([a, b], titles=["generated", "ground truth"], size=64)))
    assert frames.shape == (5, 64, 2 * 64 + 2, 3)
    left, right = frames[..., :64, :], frames[..., 66:, :]
    assert (frames[:, :, 64:66] == 200).all()  # the divider
    # The 3-frame motion holds its last pose (its counter reads 3/3 (held) from then on) ...
    np.testing.assert_array_equal(left[3], left[4])
    assert np.abs(left[1].astype(int) - left[2]).sum() > 0
    # ... while the longer one keeps moving.
    assert np.abs(right[3].astype(int) - right[4]).sum() > 0
    # Same scale: a copy moved 3 m away (whole floor tiles) renders like the original, the camera
    # following it (up to float rounding on a few edge pixels).
    far = a + np.array([3.0, 0.0, -2.0], np.float32)
    pair = np.stack(list(render_bodies_frames([a, far], size=48))).astype(int)
    differ = np.abs(pair[..., :48, :] - pair[..., 50:, :]).max(-1) > 2
    assert differ.mean() < 0.005
    out = render_bodies([a, b], tmp_path / "cmp.gif", titles=["x", None], fps=10, size=48)
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.size == (98, 48)


def test_same_scale_shows_size_differences() -> None:
    small = SMPL_REST * 0.5
    opts = BodyRenderOptions(floor=False, shadow=False, frame_counter=False)

    def body_heights(same: bool) -> list[int]:
        (img,) = list(render_bodies_frames([SMPL_REST[None], small[None]], size=80, options=opts, same_scale=same))
        heights = []
        for panel in (img[:, :80], img[:, 82:]):
            rows = np.argwhere((np.abs(panel.astype(int) - panel[:, :1].astype(int)).sum(-1) > 30).any(1))[:, 0]
            heights.append(int(rows.max() - rows.min()))
        return heights

    big_h, small_h = body_heights(True)
    assert 0.4 < small_h / big_h < 0.65
    big_h, small_h = body_heights(False)
    assert small_h / big_h > 0.85  # each panel fitted to its own body


@pytest.mark.skipif(not ffmpeg_available(), reason="no ffmpeg on PATH and imageio-ffmpeg not installed")
def test_mp4_is_readable(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    joints = walking(SMPL_REST, 9)
    out = render_body(joints, tmp_path / "b.mp4", title="walks", fps=20, size=(80, 64))
    gen = imageio_ffmpeg.read_frames(str(out))
    meta = next(gen)
    n = sum(1 for _ in gen)
    assert tuple(meta["size"]) == (80, 64) and n == 9 and meta["fps"] == pytest.approx(20.0)
    assert [p.name for p in tmp_path.iterdir()] == ["b.mp4"]


@pytest.mark.parametrize("shape", [(5, 22), (5, 22, 2), (0, 22, 3), (5, 23, 3), (4, 5, 22, 3)])
def test_bad_shapes_name_the_argument(tmp_path: Path, shape) -> None:
    pattern = r"joints.*" + str(shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=pattern):
        render_body(np.zeros(shape, np.float32), tmp_path / "x.gif")
    with pytest.raises(ValueError, match=pattern):
        render_body_frames(np.zeros(shape, np.float32))
    assert not any(tmp_path.iterdir())


def test_bad_values_and_arguments(tmp_path: Path) -> None:
    joints = walking(SMPL_REST, 4)
    joints[2, 7, 0] = np.nan
    with pytest.raises(ValueError, match=r"joints.*NaN.*frame 2, joint 7"):
        render_body(joints, tmp_path / "x.gif")
    good = walking(SMPL_REST, 4)
    with pytest.raises(ValueError, match="fps"):
        render_body(good, tmp_path / "x.gif", fps=0)
    with pytest.raises(ValueError, match="size"):
        render_body(good, tmp_path / "x.gif", size=8)
    with pytest.raises(ValueError, match="supersample"):
        render_body(good, tmp_path / "x.gif", options=BodyRenderOptions(supersample=0))
    inf = good.copy()
    inf[0, 0, 1] = np.inf
    with pytest.raises(ValueError, match=r"motions\[1\].*NaN or inf"):
        render_bodies([good, inf], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="titles"):
        render_bodies([good, good], tmp_path / "x.gif", titles=["one"])
    with pytest.raises(ValueError, match="list of"):
        render_bodies(good, tmp_path / "x.gif")
    assert not any(tmp_path.iterdir())


def test_failed_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a.gif"
    out.write_bytes(b"old")

    def boom(frames, path, fps):
        next(iter(frames))
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(body_mod, "save_gif", boom)
    with pytest.raises(OSError, match="disk full"):
        render_body(walking(SMPL_REST, 3), out, size=48)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.gif"]
    with pytest.raises(OSError, match="disk full"):
        render_body(walking(SMPL_REST, 3), tmp_path / "new.gif", size=48)
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]


def test_real_clip_renders(hml_dir: Path) -> None:
    joints = np.load(hml_dir / "new_joints" / "012314.npy")[:40]  # 2 s at 20 fps
    frames = render_body_frames(joints, title="a person bends over", size=128)
    assert frames.shape == (40, 128, 128, 3)
    plain = render_body_frames(joints, size=128, options=PLAIN)
    cam = make_camera(joints, 128, PLAIN)
    for t in (0, 13, 26, 39):
        body = np.abs(plain[t].astype(int) - plain[t][:, :1].astype(int)).sum(-1) > 30  # differs from the sky row
        assert 0.03 < body.mean() < 0.5
        px, _ = cam.project(joints[t], t)
        assert all(is_body(plain[t], xy) for xy in px), t  # every joint is covered by the body
        assert np.abs(frames[t].astype(int) - frames[max(t - 1, 0)]).sum() > 0 or t == 0


def test_smpl_missing_names_package_and_files(tmp_path: Path) -> None:
    missing = smpl_missing(tmp_path / "nope")
    assert any("nope" in m for m in missing)
    (tmp_path / "smpl_models").mkdir()
    missing = smpl_missing(tmp_path / "smpl_models")
    assert any("SMPL_NEUTRAL.pkl" in m for m in missing)


def test_cli(tmp_path: Path) -> None:
    script = REPO_ROOT / "visualization" / "render.py"
    feats_dir = tmp_path / "in"
    feats_dir.mkdir()
    np.save(feats_dir / "a.npy", walking(SMPL_REST, 4))
    np.save(feats_dir / "b.npy", walking(SMPL_REST, 6))
    np.save(feats_dir / "bad.npy", np.zeros((4, 22, 3, 1), np.float32))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    res = run("--joints", str(feats_dir / "a.npy"), str(feats_dir / "b.npy"), "--titles", "gen", "gt",
              "--out", str(tmp_path / "o" / "cmp.gif"), "--fps", "10", "--size", "48")
    assert res.returncode == 0, res.stderr
    frames = gif_frames(tmp_path / "o" / "cmp.gif")
    assert len(frames) == 6 and frames[0].shape == (48, 98, 3)
    res = run("--joints", str(feats_dir / "bad.npy"), "--out", str(tmp_path / "o" / "bad.gif"))
    assert res.returncode == 2 and "bad.npy" in res.stderr and "(4, 22, 3, 1)" in res.stderr
    assert not (tmp_path / "o" / "bad.gif").exists()
    res = run("--joints", str(feats_dir / "a.npy"), "--out", str(tmp_path / "o" / "m.gif"), "--smpl_dir", str(tmp_path / "smpl"))
    assert res.returncode == 2 and "SMPL" in res.stderr and "without --smpl_dir" in res.stderr
    assert not (tmp_path / "o" / "m.gif").exists()


def test_features_cli_with_normalization(tmp_path: Path) -> None:
    from motiongpt.motion.features import features_to_joints, joints_to_features
    from motiongpt.viz import load_features_file

    feats = joints_to_features(walking(SMPL_REST, 6, step=0.04))  # (5, 263)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=263).astype(np.float32), rng.uniform(0.5, 2.0, 263).astype(np.float32)
    np.save(tmp_path / "f.npy", (feats - mean) / std)  # as a model would output them
    np.save(tmp_path / "Mean.npy", mean)
    np.save(tmp_path / "Std.npy", std)
    joints = load_features_file(tmp_path / "f.npy", tmp_path / "Mean.npy", tmp_path / "Std.npy")
    np.testing.assert_allclose(joints, features_to_joints(feats), atol=1e-4)
    with pytest.raises(ValueError, match=r"Std.npy.*\(3,\)"):
        np.save(tmp_path / "Std.npy", std[:3])
        load_features_file(tmp_path / "f.npy", tmp_path / "Mean.npy", tmp_path / "Std.npy")
    np.save(tmp_path / "Std.npy", std)
    res = subprocess.run(
        [sys.executable, str(REPO_ROOT / "visualization" / "render.py"), "--features", str(tmp_path / "f.npy"),
         "--mean", str(tmp_path / "Mean.npy"), "--std", str(tmp_path / "Std.npy"), "--out", str(tmp_path / "f.gif"),
         "--title", "from features", "--size", "64"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert len(gif_frames(tmp_path / "f.gif")) == 5

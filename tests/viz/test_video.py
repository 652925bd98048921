"""Video writing: ffmpeg discovery (PATH, then imageio-ffmpeg), MP4 read back by an independent
decoder, atomic writes on failure, GIF timing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motiongpt.viz import ffmpeg_available, find_ffmpeg, read_video, render_motion, render_to_arrays, video, write_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viz_testlib import SMPL_REST, walking  # noqa: E402

needs_ffmpeg = pytest.mark.skipif(not ffmpeg_available(), reason="no ffmpeg on PATH and imageio-ffmpeg not installed")


def decode_independently(path: Path) -> tuple[tuple[int, int], int, float]:
    """(width, height), frame count and fps of an MP4, decoded by imageio-ffmpeg's own reader."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    n = sum(1 for _ in gen)
    return tuple(meta["size"]), n, float(meta["fps"])


def test_find_ffmpeg_prefers_path_then_imageio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video.shutil, "which", lambda name: "/opt/bin/ffmpeg" if name == "ffmpeg" else None)
    assert find_ffmpeg() == "/opt/bin/ffmpeg"
    monkeypatch.setattr(video.shutil, "which", lambda name: None)
    monkeypatch.setattr(video, "_bundled_ffmpeg", lambda: "/wheel/ffmpeg")
    assert find_ffmpeg() == "/wheel/ffmpeg" and ffmpeg_available()
    monkeypatch.setattr(video, "_bundled_ffmpeg", lambda: None)
    assert find_ffmpeg() is None and not ffmpeg_available()
    with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
        video.require_ffmpeg()


def test_bundled_ffmpeg_is_found_when_installed() -> None:
    pytest.importorskip("imageio_ffmpeg")
    exe = video._bundled_ffmpeg()
    assert exe is not None and Path(exe).is_file()


@needs_ffmpeg
def test_render_motion_mp4_reads_back(tmp_path: Path) -> None:
    joints = walking(SMPL_REST, 13)
    out = render_motion(joints, tmp_path / "m.mp4", title="walks", fps=20, size=3, dpi=70)  # 210 px
    size, n, fps = decode_independently(out)
    assert size == (210, 210) and n == 13 and fps == pytest.approx(20.0)
    assert out.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    frames = read_video(out)
    assert frames.shape == (13, 210, 210, 3)
    # The content survives encoding: each decoded frame matches the rendered one up to codec loss,
    # and not some other frame.
    ref = list(render_to_arrays(joints, "walks", size=3, dpi=70))
    err = [np.abs(frames[t].astype(int) - ref[t]).mean() for t in (0, 12)]
    assert max(err) < 4, err
    assert np.abs(frames[0].astype(int) - ref[12]).mean() > max(err)
    assert [p.name for p in tmp_path.iterdir()] == ["m.mp4"]


@needs_ffmpeg
def test_write_video_mp4_pads_odd_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [np.full((31, 45, 3), 40 * k, np.uint8) for k in range(5)]
    frames[2] = rng.integers(0, 255, (31, 45, 3), dtype=np.uint8)
    out = write_video(iter(frames), tmp_path / "odd.mp4", fps=12.5)
    size, n, fps = decode_independently(out)
    assert size == (46, 32) and n == 5 and fps == pytest.approx(12.5)
    back = read_video(out)
    # Flat grey frames come back close to their level (lossy codec).
    assert abs(float(back[4, :31, :45].mean()) - 160) < 6


def test_ffmpeg_failure_is_an_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` executable")
    monkeypatch.setattr(video.shutil, "which", lambda name: false if name == "ffmpeg" else None)
    out = tmp_path / "x.mp4"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="failed writing"):
        write_video(iter([np.zeros((8, 8, 3), np.uint8)] * 3), out, fps=10)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.mp4"]


def test_bad_frames_and_fps_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fps"):
        write_video([np.zeros((4, 4, 3), np.uint8)], tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="frame 1 has shape"):
        write_video([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)], tmp_path / "a.gif", fps=5)
    with pytest.raises(ValueError, match="uint8"):
        write_video([np.zeros((4, 4, 3), np.float32)], tmp_path / "a.gif", fps=5)
    with pytest.raises(ValueError, match="no frames"):
        write_video([], tmp_path / "a.gif", fps=5)
    assert not any(tmp_path.iterdir())


def test_gif_timing_and_read_back(tmp_path: Path) -> None:
    frames = [np.full((6, 7, 3), 255, np.uint8) for _ in range(4)]
    for k, f in enumerate(frames):
        f[1:3, k : k + 2] = (200, 30, 30)  # a red square moving right
    out = write_video(frames, tmp_path / "g.gif", fps=25)
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.info["duration"] == 40 and im.size == (7, 6)
    back = read_video(out)
    assert back.shape == (4, 6, 7, 3)
    np.testing.assert_allclose(back.astype(int), np.stack(frames).astype(int), atol=8)

"""Skeleton animations side by side (render_motions): panels, holding the last frame, one shared
scale, captions in any script, errors, MP4, and the --motions mode of plot_3d_global.py."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motiongpt.viz import ffmpeg_available, read_video, render_motions, render_motions_to_arrays
from motiongpt.viz.plot3d import SIDE_COLORS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viz_testlib import KIT_REST, REPO_ROOT, SMPL_REST, colour_mask, gif_frames, walking  # noqa: E402

SMALL = dict(panel_size=2.0, dpi=50, legend=False)  # 100 px panels


def limb_pixels(panel: np.ndarray) -> np.ndarray:
    return colour_mask(panel, SIDE_COLORS["left"]) | colour_mask(panel, SIDE_COLORS["right"])


def test_panels_widths_and_holding() -> None:
    a, b, c = walking(SMPL_REST, 3), walking(SMPL_REST, 5), walking(KIT_REST, 4)
    frames = list(render_motions_to_arrays([a, b, c], titles=["gen", "gt", "kit"], **SMALL))
    assert len(frames) == 5
    h, w, _ = frames[0].shape
    assert w == 300 and h > 100
    panels = [[f[:, k * 100 : (k + 1) * 100] for k in range(3)] for f in frames]
    for k in range(3):
        assert limb_pixels(panels[0][k]).sum() > 20, k  # a skeleton in every panel
    # The 3-frame motion holds its last pose (and its counter): identical pixels from frame 3 on.
    np.testing.assert_array_equal(panels[3][0], panels[4][0])
    assert np.abs(panels[1][0].astype(int) - panels[2][0]).sum() > 0
    assert np.abs(panels[3][1].astype(int) - panels[4][1]).sum() > 0  # the 5-frame one still moves


def test_same_scale_keeps_relative_sizes() -> None:
    def heights(motions, same: bool) -> list[int]:
        frames = list(render_motions_to_arrays(motions, same_scale=same, trajectory=False, frame_counter=False, **SMALL))
        out = []
        for k in range(2):
            rows = np.argwhere(limb_pixels(frames[-1][:, k * 100 : (k + 1) * 100]).any(1))[:, 0]
            out.append(int(rows.max() - rows.min()))
        return out

    # Half-size person: half as tall on the shared scale.
    big_h, small_h = heights([SMPL_REST[None], SMPL_REST[None] * 0.5], True)
    assert 0.35 < small_h / big_h < 0.65
    # A 2.7 m walk needs a wide window; on the shared scale the person standing still is drawn
    # the same size, fitted alone it is drawn larger.
    walk, still = walking(SMPL_REST, 10, step=0.3), np.repeat(SMPL_REST[None], 10, axis=0)
    walk_h, still_h = heights([walk, still], True)
    assert abs(still_h / walk_h - 1) < 0.15
    walk_h, still_h = heights([walk, still], False)
    assert still_h / walk_h > 1.3


def test_titles_wrap_and_any_script_without_warnings() -> None:
    long = "a person walks forward, then turns around and jumps twice while waving " * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph or mathtext warnings
        frames = list(render_motions_to_arrays(
            [walking(SMPL_REST, 2), walking(SMPL_REST, 2)],
            titles=[long, "une personne saute — 人がジャンプする 🕺 costs $5 and $6"],
            title="généré vs vérité \x00terrain", **SMALL,
        ))
    short = list(render_motions_to_arrays([walking(SMPL_REST, 2)] * 2, titles=["a", "b"], **SMALL))
    # Wrapped lines make the caption area taller; the panels keep their width.
    assert frames[0].shape[1] == short[0].shape[1] == 200
    assert frames[0].shape[0] > short[0].shape[0] + 20


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    good = walking(SMPL_REST, 3)
    with pytest.raises(ValueError, match=r"motions\[1\].*\(3, 22\)"):
        render_motions([good, np.zeros((3, 22))], tmp_path / "x.gif")
    nan = good.copy()
    nan[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"motions\[0\].*NaN"):
        render_motions([nan, good], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="titles has 1 entries for 2 motions"):
        render_motions([good, good], tmp_path / "x.gif", titles=["one"])
    with pytest.raises(ValueError, match="list of"):
        render_motions(good, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="empty"):
        render_motions([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        render_motions([good], tmp_path / "x.gif", fps=-1)
    assert not any(tmp_path.iterdir())


def test_gif_and_batch_array(tmp_path: Path) -> None:
    batch = np.stack([walking(SMPL_REST, 4), walking(SMPL_REST, 4, step=0.1)])  # (2, 4, 22, 3)
    out = render_motions(batch, tmp_path / "b.gif", fps=10, **SMALL)
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size[0] == 200 and im.info["duration"] == 100
    assert [p.name for p in tmp_path.iterdir()] == ["b.gif"]


@pytest.mark.skipif(not ffmpeg_available(), reason="no ffmpeg on PATH and imageio-ffmpeg not installed")
def test_side_by_side_mp4(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = render_motions([walking(SMPL_REST, 6), walking(SMPL_REST, 3)], tmp_path / "s.mp4", titles=["a", "b"], **SMALL)
    gen = imageio_ffmpeg.read_frames(str(out))
    meta = next(gen)
    assert sum(1 for _ in gen) == 6
    w, h = meta["size"]
    frames = read_video(out)
    assert w == 200 and frames.shape[:3] == (6, h, 200) and h % 2 == 0


def test_cli_motions(tmp_path: Path) -> None:
    np.save(tmp_path / "gen.npy", walking(SMPL_REST, 4))
    np.save(tmp_path / "gt.npy", walking(SMPL_REST, 6))
    script = REPO_ROOT / "visualization" / "plot_3d_global.py"
    out = tmp_path / "o" / "cmp.gif"
    res = subprocess.run(
        [sys.executable, str(script), "--motions", str(tmp_path / "gen.npy"), str(tmp_path / "gt.npy"),
         "--titles", "generated", "ground truth", "--title", "walk", "--out", str(out), "--fps", "10"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    frames = gif_frames(out)
    assert len(frames) == 6 and frames[0].shape[1] == 2 * 256
    res = subprocess.run(
        [sys.executable, str(script), "--motions", str(tmp_path / "gen.npy"), str(tmp_path / "missing.npy"),
         "--out", str(tmp_path / "o" / "x.gif")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2 and "missing.npy" in res.stderr
    assert not (tmp_path / "o" / "x.gif").exists()

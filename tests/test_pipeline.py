"""End to end: the real demo CLI on a tiny corpus, then a cached re-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _run_demo(out: Path) -> dict:
    cmd = [sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out), "num_clips=30", "num_render=1", "workers=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_demo_runs_and_reuses_cached_stages(tmp_path):
    out = tmp_path / "demo"
    summary = _run_demo(out)
    dataset = Path(summary["dataset"])
    assert dataset.is_absolute() and (dataset / "meta.json").is_file()
    assert summary["metrics"]["num_clips"] == 30
    assert sum(summary["metrics"]["split_sizes"][s] for s in ("train", "val", "test")) == 30
    assert set(summary["stages"]) >= {"dataset", "render"}
    gif = Path(summary["gifs"][0])
    with Image.open(gif) as im:
        assert im.n_frames >= 40  # clips are at least 40 frames long
    assert summary["metrics"]["dataset_cached"] is False

    mtime = (dataset / "meta.json").stat().st_mtime_ns
    again = _run_demo(out)
    assert again["metrics"]["dataset_cached"] is True
    assert (dataset / "meta.json").stat().st_mtime_ns == mtime

"""End to end: the real demo CLI on a tiny corpus, then a cached re-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


# A smoke-sized run: every stage for real, at a size that takes seconds.
TINY_DEMO = """\
num_clips: 30
num_render: 1
workers: 1
vq_overrides:
  - train.total_iters=12
  - train.eval_every=6
  - train.save_every=6
  - train.warmup_iters=2
  - train.lr_milestones=[10]
  - train.batch_size=8
"""


def _run_demo(out: Path) -> dict:
    config = out.parent / "tiny_demo.yaml"
    config.write_text(TINY_DEMO)
    cmd = [sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out), "--config", str(config)]
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
    assert set(summary["stages"]) >= {"dataset", "vqvae", "render"}
    vq = Path(summary["vqvae"])
    assert (vq / "model.safetensors").is_file() and (dataset / "VQVAE" / "meta.json").is_file()
    # every clip and its mirror got codes; the MPJPE is a real measurement (positive, finite)
    assert summary["metrics"]["token_files"] == 60
    assert 0 < summary["metrics"]["vq_mpjpe_mm"] < 1e4
    assert len(summary["gifs"]) == 2 and summary["gifs"][1].endswith("_vq.gif")
    gif = Path(summary["gifs"][0])
    with Image.open(gif) as im:
        assert im.n_frames >= 40  # clips are at least 40 frames long
    assert summary["metrics"]["dataset_cached"] is False

    mtime = (dataset / "meta.json").stat().st_mtime_ns
    again = _run_demo(out)
    assert again["metrics"]["dataset_cached"] is True
    assert again["metrics"]["vq_cached"] is True
    assert again["metrics"]["vq_mpjpe_mm"] == summary["metrics"]["vq_mpjpe_mm"]
    assert (dataset / "meta.json").stat().st_mtime_ns == mtime

"""The embedded-default pipeline behind ``make demo``: every stage offline, cached on re-run.

Stages so far: synthetic corpus (HumanML3D layout) -> skeleton GIFs of a few held-out clips.
Later stages (VQ-VAE, instruction data, fine-tuning, generation, evaluation) append to the
same summary. Each stage is reused when its output exists and was made with the same settings.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from motiongpt.config import atomic_write_text, save_config

__all__ = ["DemoConfig", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Settings of the embedded-default demo run."""

    out_dir: str = "outputs/demo"
    """Folder that receives every stage's output and ``summary.json``."""
    num_clips: int = 2000
    """Clips in the synthetic corpus."""
    seed: int = 0
    """Seed of the synthetic corpus (and of every later stage)."""
    workers: int | None = None
    """Worker processes for corpus generation (None: up to 2)."""
    num_render: int = 4
    """Test-split clips rendered to GIF at the end."""
    render_split: str = "test"
    """Split the rendered clips come from (the test split holds unseen compositions)."""


def _dataset_is_current(root: Path, cfg: DemoConfig) -> bool:
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    return meta.get("num_clips") == cfg.num_clips and meta.get("seed") == cfg.seed


def _stage_dataset(cfg: DemoConfig, root: Path) -> dict:
    from motiongpt.data.synthetic import build_synthetic_dataset

    if _dataset_is_current(root, cfg):
        log.info("dataset: reusing %s", root)
        return {"cached": True}
    return build_synthetic_dataset(root, cfg.num_clips, cfg.seed, workers=cfg.workers, overwrite=True)


def _stage_render(cfg: DemoConfig, root: Path, out: Path) -> list[str]:
    import numpy as np

    from motiongpt.data.humanml3d import parse_caption_line, read_split
    from motiongpt.viz import render_motion

    ids = read_split(root, cfg.render_split)[: cfg.num_render]
    written = []
    for clip_id in ids:
        gif = out / f"{clip_id}.gif"
        if not gif.is_file():
            joints = np.load(root / "new_joints" / f"{clip_id}.npy")
            first = (root / "texts" / f"{clip_id}.txt").read_text(encoding="utf-8").splitlines()[0]
            render_motion(joints, gif, title=parse_caption_line(first).text)
        written.append(str(gif.resolve()))
    return written


def run_demo(cfg: DemoConfig) -> dict:
    """Run (or reuse) every stage and write ``<out_dir>/summary.json``; returns the summary."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "demo_config.yaml")
    stages: dict[str, float] = {}
    dataset = out / "dataset"

    t0 = time.perf_counter()
    ds_info = _stage_dataset(cfg, dataset)
    stages["dataset"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    gifs = _stage_render(cfg, dataset, out / "gifs")
    stages["render"] = round(time.perf_counter() - t0, 2)

    meta = json.loads((dataset / "meta.json").read_text())
    summary = {
        "dataset": str(dataset.resolve()),
        "stages": stages,
        "metrics": {
            "num_clips": meta.get("num_clips"),
            "split_sizes": meta.get("counts"),
            "dataset_cached": bool(ds_info.get("cached", False)),
        },
        "gifs": gifs,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

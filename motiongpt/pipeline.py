"""The embedded-default pipeline behind ``make demo``: every stage offline, cached on re-run.

Stages so far: synthetic corpus (HumanML3D layout) -> tiny VQ-VAE (trained, evaluated on the
held-out test split) -> the corpus and its mirror encoded to codes -> skeleton GIFs of a few
held-out clips, each next to its VQ-VAE reconstruction. Later stages (instruction data,
fine-tuning, generation, evaluation) append to the same summary. Each stage is reused when its output exists and was made with the same settings.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
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
    vq_config: str = "configs/vq/tiny.yaml"
    """VQ-VAE config (YAML of ``motiongpt.vq.config.VQConfig``), relative to the repo or absolute."""
    vq_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of the VQ-VAE config (e.g. ``train.total_iters=50`` for a smoke run)."""
    mirror: bool = True
    """Also encode the left/right mirror of every clip (``M<id>`` codes), as HumanML3D does."""


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


REPO_ROOT = Path(__file__).resolve().parents[1]


def _resolve_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


def _stage_vq(cfg: DemoConfig, root: Path, vq_dir: Path) -> dict:
    """Train the VQ-VAE (reused when a finished run with the same config is there), evaluate it on
    the held-out split, and encode the corpus (the token cache skips work it already did)."""
    from motiongpt.config import config_to_dict, load_config
    from motiongpt.vq.config import VQConfig
    from motiongpt.vq.evaluate import evaluate_vqvae
    from motiongpt.vq.prepare import encode_dataset
    from motiongpt.vq.train import train_vqvae

    vq_cfg = load_config(VQConfig, _resolve_path(cfg.vq_config), cfg.vq_overrides)
    request = config_to_dict(vq_cfg)
    request_file = vq_dir / "demo_request.json"
    done = (vq_dir / "train_summary.json").is_file() and request_file.is_file()
    cached = done and json.loads(request_file.read_text()) == {"vq": request, "data": str(root.resolve())}
    if not cached:
        # A different request (or an interrupted run) starts over: resume only makes sense for
        # the same config, and train_vqvae refuses to mix them.
        same = request_file.is_file() and json.loads(request_file.read_text()) == {"vq": request, "data": str(root.resolve())}
        request_file.unlink(missing_ok=True)
        train_vqvae(vq_cfg, root, vq_dir, resume="auto" if same else False, overwrite=not same)
        atomic_write_text(request_file, json.dumps({"vq": request, "data": str(root.resolve())}, indent=2))
    metrics = evaluate_vqvae(vq_dir, root, split=cfg.render_split)
    encode = encode_dataset(vq_dir, root, mirror=cfg.mirror)
    return {"cached": cached, "eval": metrics, "encode": encode}


def _stage_render(cfg: DemoConfig, root: Path, out: Path, vq_dir: Path) -> list[str]:
    import numpy as np

    from motiongpt.data.humanml3d import parse_caption_line, read_split
    from motiongpt.viz import render_motion

    from motiongpt.vq.model import VQVAE

    vq = VQVAE.from_pretrained(vq_dir)
    ids = read_split(root, cfg.render_split)[: cfg.num_render]
    written = []
    for clip_id in ids:
        first = (root / "texts" / f"{clip_id}.txt").read_text(encoding="utf-8").splitlines()[0]
        caption = parse_caption_line(first).text
        gif = out / f"{clip_id}.gif"
        if not gif.is_file():
            render_motion(np.load(root / "new_joints" / f"{clip_id}.npy"), gif, title=caption)
        written.append(str(gif.resolve()))
        # The same clip through the tokenizer: features -> codes -> features -> joints.
        recon = out / f"{clip_id}_vq.gif"
        if not recon.is_file():
            codes = np.load(root / "VQVAE" / f"{clip_id}.npy")
            render_motion(vq.codes_to_joints(codes), recon, title=f"VQ-VAE ({len(codes)} tokens): {caption}")
        written.append(str(recon.resolve()))
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
    vq_dir = out / "vqvae"
    vq_info = _stage_vq(cfg, dataset, vq_dir)
    stages["vqvae"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    gifs = _stage_render(cfg, dataset, out / "gifs", vq_dir)
    stages["render"] = round(time.perf_counter() - t0, 2)

    meta = json.loads((dataset / "meta.json").read_text())
    summary = {
        "dataset": str(dataset.resolve()),
        "vqvae": str(vq_dir.resolve()),
        "stages": stages,
        "metrics": {
            "num_clips": meta.get("num_clips"),
            "split_sizes": meta.get("counts"),
            "dataset_cached": bool(ds_info.get("cached", False)),
            "vq_cached": vq_info["cached"],
            "vq_mpjpe_mm": round(float(vq_info["eval"]["mpjpe_mm"]), 2),
            "vq_mpjpe_global_mm": round(float(vq_info["eval"]["mpjpe_global_mm"]), 2),
            "vq_codebook_usage_pct": round(float(vq_info["eval"]["codebook_usage_pct"]), 2),
            "vq_eval_split": cfg.render_split,
            "token_files": vq_info["encode"]["n_files"],
        },
        "gifs": gifs,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary

"""Reconstruction quality of a VQ-VAE on a dataset split (a pure function: it never writes checkpoints).

Metrics (all frame-weighted over the split):

* ``mpjpe_mm``: mean per-joint position error in millimetres after root alignment (the pelvis of
  each frame subtracted from both skeletons, as in MoMask's VQ evaluation);
  ``mpjpe_global_mm``: the same without alignment, on the global joints recovered from the
  features (root drift from integrated velocities included). Joints come from
  :func:`motiongpt.motion.features.features_to_joints` on the unnormalized features.
* ``feature_mae``: mean absolute error per feature block (root, ric, rot, vel, contacts) in the
  features' own units; ``feature_mae_normalized``: the same after normalization (comparable across
  blocks).
* ``recon_loss``: the training loss's smooth-L1 term on normalized features.
* ``codebook_usage_pct``: percentage of the ``nb_code`` codes used at least once on the split;
  ``perplexity``: exp(entropy) of the code histogram.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from motiongpt.vq.model import VQVAE

__all__ = ["evaluate_vqvae", "reconstruction_metrics", "format_metrics_table", "eval_blocks"]


def eval_blocks(joints_num: int) -> dict[str, slice]:
    """The five blocks errors are reported on: root (0:4), ric, rot, vel, contacts."""
    from motiongpt.motion.features import feature_blocks

    b = feature_blocks(joints_num)
    return {
        "root": slice(b["root_angular_velocity"].start, b["root_height"].stop),
        "ric": b["ric"],
        "rot": b["rotations"],
        "vel": b["local_velocities"],
        "contacts": b["foot_contacts"],
    }


def _smooth_l1(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    return float(np.where(d < 1.0, 0.5 * d * d, d - 0.5).mean())


def reconstruction_metrics(
    vq: VQVAE, features: Sequence[np.ndarray], batch_size: int = 256, ids: Sequence[str] | None = None
) -> dict[str, Any]:
    """Reconstruct unnormalized clips ``(T_i, D)`` through ``vq`` and measure the errors.

    Each clip is cropped to a multiple of ``vq.downsample`` frames (as the tokenizer sees it).
    """
    from motiongpt.motion.features import features_to_joints_batch

    if len(features) == 0:
        raise ValueError("no clips to evaluate")
    names = list(ids) if ids is not None else [f"clip {i}" for i in range(len(features))]
    gts = [vq.check_features(f, n) for f, n in zip(features, names)]  # cropped (T', D)
    recons, codes = vq.reconstruct_batch(gts, batch_size=batch_size)
    gt_all = np.concatenate(gts)  # (N, D)
    rc_all = np.concatenate(recons)  # (N, D)
    gt_n, rc_n = vq.normalize(gt_all), vq.normalize(rc_all)

    gt_j = np.concatenate(features_to_joints_batch(gts))  # (N, J, 3)
    rc_j = np.concatenate(features_to_joints_batch(recons))  # (N, J, 3)
    err_global = np.linalg.norm(gt_j - rc_j, axis=-1).mean(axis=-1)  # (N,) per frame
    aligned_gt = gt_j - gt_j[:, :1]  # pelvis at the origin in every frame
    aligned_rc = rc_j - rc_j[:, :1]
    err_aligned = np.linalg.norm(aligned_gt - aligned_rc, axis=-1).mean(axis=-1)  # (N,)

    blocks = eval_blocks(vq.joints_num)
    feature_mae = {k: float(np.abs(gt_all[:, s] - rc_all[:, s]).mean()) for k, s in blocks.items()}
    feature_mae_n = {k: float(np.abs(gt_n[:, s] - rc_n[:, s]).mean()) for k, s in blocks.items()}
    contacts = blocks["contacts"]
    contact_acc = float(((gt_all[:, contacts] > 0.5) == (rc_all[:, contacts] > 0.5)).mean())

    all_codes = np.concatenate(codes)
    counts = np.bincount(all_codes, minlength=vq.nb_code).astype(np.float64)
    prob = counts / counts.sum()
    perplexity = float(np.exp(-(prob * np.log(prob + 1e-7)).sum()))
    pos = slice(4, 4 + (vq.joints_num - 1) * 3)
    return {
        "n_clips": len(gts),
        "n_frames": int(gt_all.shape[0]),
        "mpjpe_mm": float(err_aligned.mean() * 1000.0),
        "mpjpe_global_mm": float(err_global.mean() * 1000.0),
        "recon_loss": _smooth_l1(rc_n, gt_n),
        "pos_loss": _smooth_l1(rc_n[:, pos], gt_n[:, pos]),
        "feature_mae": feature_mae,
        "feature_mae_normalized": feature_mae_n,
        "contact_accuracy": contact_acc,
        "codebook_usage_pct": float((counts > 0).mean() * 100.0),
        "codes_used": int((counts > 0).sum()),
        "nb_code": vq.nb_code,
        "perplexity": perplexity,
    }


def evaluate_vqvae(
    vq: VQVAE | str | os.PathLike,
    data_root: str | os.PathLike,
    split: str = "test",
    *,
    batch_size: int = 256,
    max_clips: int = 0,
    min_length: int | None = None,
    max_length: int | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Reconstruction metrics of ``vq`` (a model or a checkpoint directory) on ``split`` of ``data_root``.

    Clips are those of :func:`motiongpt.vq.data.load_motion_set` (the dataset's length range by
    default, 40..196 frames for HumanML3D; ``max_clips`` > 0 keeps the first N). The features are
    normalized with the checkpoint's own statistics; a dataset whose feature size differs from
    the checkpoint's is an error. Returns a JSON-ready dict (see the module docstring).
    """
    from motiongpt.vq.data import load_motion_set

    t0 = time.time()
    vq_path = None
    if not isinstance(vq, VQVAE):
        vq_path = str(Path(vq).resolve())
        vq = VQVAE.from_pretrained(vq)
    data = load_motion_set(
        data_root, split, min_length=min_length, max_length=max_length, dataset=dataset, max_clips=max_clips
    )
    if data.feature_dim != vq.nfeats:
        raise ValueError(
            f"{data_root} has {data.feature_dim}-d features but the VQ-VAE expects {vq.nfeats}-d "
            f"(it was trained on {vq.config.data.data_root or 'unknown data'})"
        )
    if not data.features:
        raise ValueError(f"no clips to evaluate in {data_root} [{split}] ({data.skipped or 'empty split'})")
    metrics = reconstruction_metrics(vq, data.features, batch_size=batch_size, ids=data.ids)
    metrics.update(
        {
            "split": split,
            "data_root": str(Path(data_root).resolve()),
            "vq": vq_path,
            "n_skipped": data.n_skipped,
            "seconds": round(time.time() - t0, 3),
        }
    )
    return metrics


def format_metrics_table(metrics: dict[str, Any]) -> str:
    """A readable markdown table of :func:`evaluate_vqvae`'s result."""
    rows = [
        ("clips / frames", f"{metrics['n_clips']} / {metrics['n_frames']}"),
        ("MPJPE root-aligned (mm)", f"{metrics['mpjpe_mm']:.2f}"),
        ("MPJPE global (mm)", f"{metrics['mpjpe_global_mm']:.2f}"),
        ("recon loss (smooth L1, normalized)", f"{metrics['recon_loss']:.4f}"),
        ("codebook usage", f"{metrics['codebook_usage_pct']:.1f} % ({metrics['codes_used']}/{metrics['nb_code']})"),
        ("perplexity", f"{metrics['perplexity']:.1f}"),
        ("foot-contact accuracy", f"{metrics['contact_accuracy'] * 100:.1f} %"),
    ]
    for k, v in metrics["feature_mae"].items():
        rows.append((f"feature MAE {k} (raw / normalized)", f"{v:.4f} / {metrics['feature_mae_normalized'][k]:.4f}"))
    width = max(len(r[0]) for r in rows)
    head = f"| {'metric'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|"
    return head + "\n" + "\n".join(f"| {k.ljust(width)} | {v} |" for k, v in rows)

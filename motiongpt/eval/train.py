"""Training the text-motion evaluator: an ``accelerate`` loop with validation-based model selection.

Output directory layout::

    out_dir/
      model.safetensors config.yaml vocab.json mean.npy std.npy manifest.json
                          final evaluator (TextMotionEvaluator.from_pretrained(out_dir))
      best/               the checkpoint with the best validation R-precision (mean of top-1/2/3)
      metrics.jsonl tb/   training and validation scalars (JSONL, TensorBoard)
      train_summary.json  steps, time, final and best validation metrics

Data: every clip of the train split (with its segment sub-clips, as the HumanML3D loader makes
them) is one motion; each epoch visits the clips in a new random order and draws one of the clip's
captions, so a batch never holds the same motion twice. Motion crops follow T2M's dataset: the
length floored to a multiple of 4 frames and, a third of the time, one more unit dropped, at a
random start. Everything random comes from ``train.seed``: two runs with the same config on the
same data give the same weights (single process, CPU).

There is no resume: the ``tiny`` preset trains in about two minutes; a ``t2m``-size run on
HumanML3D should save ``best/`` often enough through ``eval_every``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from motiongpt.config import atomic_write_text
from motiongpt.eval.evaluator import (
    CHECKPOINT_FILES,
    MANIFEST,
    EvaluatorConfig,
    TextMotionEvaluator,
    check_config,
    replace_model,
)
from motiongpt.eval.metrics import mean_ci, r_precision
from motiongpt.eval.text import Vocabulary
from motiongpt.utils.atomic import remove_stale_temps
from motiongpt.utils.metrics import MetricLogger

__all__ = ["train_evaluator", "contrastive_loss", "validate_evaluator", "PairSet", "load_pairs"]

log = logging.getLogger(__name__)

_RUN_ARTIFACTS = ("best", "tb", "metrics.jsonl", "train_summary.json", MANIFEST) + CHECKPOINT_FILES


@dataclasses.dataclass
class PairSet:
    """Motions of one split with their captions (unnormalized features)."""

    ids: list[str]
    """Clip ids (segment sub-clips included)."""
    features: list[np.ndarray]
    """float32 ``(T_i, D)`` unnormalized features."""
    captions: list[list[Any]]
    """The :class:`~motiongpt.data.humanml3d.Caption` objects of each motion."""
    mean: np.ndarray
    """Dataset Mean (``Mean.npy``)."""
    std: np.ndarray
    """Dataset Std (``Std.npy``)."""
    feature_dim: int
    """Feature size D."""
    dataset: str
    """Dataset spec name (``humanml3d``, ``kit``, ...)."""


def load_pairs(data_root: str | os.PathLike, split: str, cfg: EvaluatorConfig) -> PairSet:
    """Captioned motions of ``split`` within the config's length range.

    Raises:
        ValueError: naming the split when no captioned motion is left.
    """
    from motiongpt.data.humanml3d import load_humanml3d

    ds = load_humanml3d(
        data_root, split, dataset=cfg.data.dataset, min_length=cfg.data.min_length, max_length=cfg.data.max_length
    )
    clips = [c for c in ds.clips if c.captions]
    if not clips:
        raise ValueError(f"split {split!r} of {data_root} has no captioned motions in [{cfg.data.min_length}, "
                         f"{cfg.data.max_length}] frames ({ds.report.summary()})")
    if ds.mean is None or ds.std is None:  # load_humanml3d requires them by default; kept for type checkers
        raise FileNotFoundError(f"{data_root} has no Mean.npy/Std.npy")
    return PairSet(
        ids=[c.id for c in clips], features=[c.features for c in clips], captions=[list(c.captions) for c in clips],
        mean=ds.mean, std=ds.std, feature_dim=ds.feature_dim, dataset=ds.spec.name,
    )


def contrastive_loss(
    text: torch.Tensor, motion: torch.Tensor, cfg: EvaluatorConfig, *, same_text: torch.Tensor | None = None,
    shift: int = 1,
) -> torch.Tensor:
    """The training loss of ``(B, D)`` paired embeddings (row i of both from one pair).

    ``infonce``: cross-entropy of each text over the batch's motions and of each motion over the
    texts, logits ``-||t_i - m_j|| / temperature``; ``same_text (B, B)`` marks pairs whose captions
    are identical (not negatives of each other: they are left out of the softmax).
    ``margin``: Guo et al.: ``mean(d(t_i, m_i)^2) + mean(max(0, margin - d(t_i, m_(i+shift)))^2)``.
    """
    tc = cfg.train
    if tc.loss == "margin":
        d_pos = (text - motion).norm(dim=-1)  # (B,)
        d_neg = (text - motion.roll(-shift, dims=0)).norm(dim=-1)  # motion i+shift for text i
        return (d_pos**2).mean() + (F.relu(tc.margin - d_neg) ** 2).mean()
    # cdist's matrix-multiply path loses precision near zero distances; the direct path is exact
    dist = torch.cdist(text, motion, compute_mode="donot_use_mm_for_euclid_dist")  # (B, B)
    logits = -dist / tc.temperature
    if same_text is not None:
        off = same_text & ~torch.eye(len(text), dtype=torch.bool, device=text.device)
        logits = logits.masked_fill(off, float("-inf"))
    target = torch.arange(len(text), device=text.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class _Batcher:
    """Epoch-wise random batches of (motion, caption) pairs with T2M's length crops."""

    def __init__(self, pairs: PairSet, cfg: EvaluatorConfig, seed: int) -> None:
        self.pairs, self.cfg = pairs, cfg
        self.rng = np.random.default_rng(seed)
        self.bs = cfg.train.batch_size
        if len(pairs.ids) < self.bs:
            raise ValueError(
                f"train split has {len(pairs.ids)} captioned motions, fewer than train.batch_size={self.bs}"
            )
        self.order: list[int] = []

    def next(self) -> tuple[list[np.ndarray], list[Any]]:
        if len(self.order) < self.bs:  # a batch never straddles epochs: no motion twice in it
            self.order = self.rng.permutation(len(self.pairs.ids)).tolist()
        idx, self.order = self.order[: self.bs], self.order[self.bs :]
        unit = self.cfg.model.unit_length
        clips, caps = [], []
        for i in idx:
            f = self.pairs.features[i]
            t = min(f.shape[0], self.cfg.model.max_motion_length) // unit * unit
            if self.cfg.train.crop_coin and t > unit and self.rng.integers(3) == 0:
                t -= unit  # T2M: (len // unit - 1) * unit a third of the time
            start = int(self.rng.integers(0, f.shape[0] - t + 1))
            clips.append(f[start : start + t])
            options = self.pairs.captions[i]
            caps.append(options[int(self.rng.integers(len(options)))])
        return clips, caps


def _caption_key(cap: Any) -> str:
    return " ".join(getattr(cap, "tokens", ()) or [getattr(cap, "text", str(cap))])


@torch.no_grad()
def validate_evaluator(
    model: TextMotionEvaluator, pairs: PairSet, repeats: int = 5, seed: int = 0, batch_size: int = 32
) -> dict[str, float]:
    """R-precision (top 1/2/3) and MM-Dist of real pairs, averaged over ``repeats`` draws (one
    random caption per motion, shuffled, batches of ``batch_size``); ``*_ci95`` are the half-widths."""
    motion = model.encode_motion(pairs.features)  # (N, D)
    flat = [c for caps in pairs.captions for c in caps]
    text_all = model.encode_text(flat)  # (sum captions, D)
    offsets = np.cumsum([0] + [len(c) for c in pairs.captions])
    runs = []
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        pick = np.array([offsets[i] + rng.integers(len(c)) for i, c in enumerate(pairs.captions)])
        runs.append(r_precision(text_all[pick], motion, batch_size=batch_size, seed=seed + 1000 + r))
    out: dict[str, float] = {}
    for key in ("top1", "top2", "top3", "matching_score"):
        m, ci = mean_ci(run[key] for run in runs)
        out[key], out[f"{key}_ci95"] = m, ci
    out["n_pairs"] = runs[0]["n_pairs"]
    return out


def _lr_factor(step: int, cfg: EvaluatorConfig) -> float:
    tc = cfg.train
    if step < tc.warmup_steps:
        return (step + 1) / (tc.warmup_steps + 1)
    if not tc.cosine_decay:
        return 1.0
    span = max(tc.total_steps - tc.warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - tc.warmup_steps, span) / span))


def train_evaluator(
    cfg: EvaluatorConfig,
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train an evaluator on ``data_root`` (HumanML3D layout) and save it to ``out_dir``.

    Args:
        cfg: a preset (:func:`~motiongpt.eval.evaluator.get_preset`) or ``configs/eval/*.yaml``;
            the feature size and data path are filled in from the data.
        data_root: dataset directory (train split for training, val split for model selection).
        out_dir: output directory (layout in the module docstring).
        overwrite: allow a run in an ``out_dir`` that already holds one (its model, logs and
            ``best/`` are deleted; other files stay); without it that is an error.

    Returns:
        The training summary (also written to ``out_dir/train_summary.json``).
    """
    threads_before = torch.get_num_threads()
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    try:
        return _train(cfg, Path(data_root), Path(out_dir), overwrite)
    finally:
        torch.set_num_threads(threads_before)


def _train(cfg: EvaluatorConfig, data_root: Path, out_dir: Path, overwrite: bool) -> dict[str, Any]:
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    t_start = time.time()
    check_config(cfg)
    tc = cfg.train
    data_root = data_root.resolve()
    if not data_root.is_dir():
        raise FileNotFoundError(f"data_root {data_root} not found")
    accelerator = Accelerator(mixed_precision="no")
    if accelerator.num_processes > 1:
        raise ValueError("train_evaluator runs in one process (the tiny preset takes minutes); launch it without "
                         "accelerate's multi-process launcher")
    existing = [n for n in _RUN_ARTIFACTS if (out_dir / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out_dir} already holds an evaluator run ({', '.join(existing)}); pass "
                              "overwrite=True (--overwrite) to replace it")

    # ---- data (read and checked before anything in out_dir is touched) ----
    train = load_pairs(data_root, cfg.data.train_split, cfg)
    val = load_pairs(data_root, cfg.data.val_split, cfg)
    cfg = replace_model(cfg, nfeats=train.feature_dim)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_root=str(data_root), dataset=train.dataset))
    check_config(cfg)
    if len(val.ids) < 32:
        raise ValueError(f"validation split {cfg.data.val_split!r} has {len(val.ids)} captioned motions; R-precision "
                         "needs at least one batch of 32")
    vocab = Vocabulary.build((c for caps in train.captions for c in caps), min_count=tc.min_word_count)

    # a fresh run must not inherit best/, logs or weights of an earlier one
    for name in existing:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, names=_RUN_ARTIFACTS + (".evaluator-save",))

    # ---- model ----
    torch.manual_seed(tc.seed)
    model = TextMotionEvaluator(cfg, vocab, mean=train.mean, std=train.std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, cfg))
    model, optimizer = accelerator.prepare(model, optimizer)
    net: TextMotionEvaluator = accelerator.unwrap_model(model)
    batcher = _Batcher(train, cfg, seed=tc.seed + 1)
    shift_rng = np.random.default_rng(tc.seed + 2)
    logger = MetricLogger(out_dir, tensorboard=tc.tensorboard)
    log.info(
        "training %s evaluator (%.2fM params, vocabulary %d) on %d pairs of %s for %d steps (batch %d)",
        cfg.preset, sum(p.numel() for p in net.parameters()) / 1e6, len(vocab), len(train.ids), data_root,
        tc.total_steps, tc.batch_size,
    )

    best: dict[str, Any] = {"score": -1.0, "top1": None, "top3": None, "step": None}
    last_val: dict[str, Any] = {}
    running, n_running, t_window = 0.0, 0, time.time()
    first_loss = None
    bar = tqdm(total=tc.total_steps, disable=not tc.progress_bar, desc="evaluator", dynamic_ncols=True)
    model.train()
    for step in range(1, tc.total_steps + 1):
        clips, caps = batcher.next()
        x, mlens = net.prepare_motion(clips)  # (B, T, D_in), (B,)
        ids, pos, tlens = net.prepare_text(caps)  # (B, L), (B, L, 15), (B,)
        keys = [_caption_key(c) for c in caps]
        same = torch.tensor([[a == b for b in keys] for a in keys], device=accelerator.device)
        dev = accelerator.device
        t_emb = net.forward_text(ids.to(dev), pos.to(dev), tlens)
        m_emb = net.forward_motion(x.to(dev), mlens.to(dev))
        loss = contrastive_loss(t_emb, m_emb, cfg, same_text=same, shift=int(shift_rng.integers(1, tc.batch_size)))
        accelerator.backward(loss)
        if tc.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"evaluator training diverged at step {step} (loss {value}); lower train.lr")
        first_loss = value if first_loss is None else first_loss
        running += value
        n_running += 1
        if tc.log_every and (step % tc.log_every == 0 or step == tc.total_steps):
            scalars = {"loss": running / n_running, "lr": scheduler.get_last_lr()[0],
                       "steps_per_s": n_running / max(time.time() - t_window, 1e-9)}
            logger.log(step, scalars, "train")
            bar.set_postfix(loss=f"{scalars['loss']:.3f}")
            running, n_running, t_window = 0.0, 0, time.time()
        if (tc.eval_every and step % tc.eval_every == 0) or step == tc.total_steps:
            last_val = validate_evaluator(net, val, repeats=tc.val_repeats, seed=tc.seed)
            model.train()
            logger.log(step, last_val, "val")
            log.info("step %d: val R-precision top1 %.3f top3 %.3f, MM-Dist %.3f", step, last_val["top1"],
                     last_val["top3"], last_val["matching_score"])
            # top-3 saturates early on easy data; the mean of top-1/2/3 keeps ranking the checkpoints
            score = (last_val["top1"] + last_val["top2"] + last_val["top3"]) / 3.0
            if score > best["score"]:
                best = {"score": score, "top1": last_val["top1"], "top3": last_val["top3"], "step": step}
                net.save_pretrained(out_dir / "best")
    bar.close()

    use_best = tc.final_model == "best" and best["step"] is not None
    final = TextMotionEvaluator.from_pretrained(out_dir / "best") if use_best else net
    final.save_pretrained(out_dir)
    summary = {
        "out_dir": str(out_dir.resolve()),
        "steps": tc.total_steps,
        "seconds": round(time.time() - t_start, 2),
        "first_loss": first_loss,
        "final_model": "best" if use_best else "last",
        "best_step": best["step"],
        "best_val": {"top1": best["top1"], "top3": best["top3"]} if best["step"] is not None else None,
        "last_val": last_val,
        "vocab_size": len(vocab),
        "train_pairs": len(train.ids),
        "val_pairs": len(val.ids),
    }
    atomic_write_text(out_dir / "train_summary.json", json.dumps(summary, indent=1))
    logger.close()
    return summary

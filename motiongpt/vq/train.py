"""VQ-VAE training: an explicit loop on ``accelerate`` with validation, checkpoints and exact resume.

Output directory layout::

    out_dir/
      model.safetensors config.yaml mean.npy std.npy manifest.json   final model (VQVAE.from_pretrained(out_dir))
      best/                     checkpoint with the best validation MPJPE so far
      checkpoints/checkpoint-<step>/   model files + optimizer, scheduler, RNG and sampler state
      checkpoints/latest.txt    name of the newest complete checkpoint (written after it)
      metrics.jsonl tb/         training and validation scalars (JSONL, TensorBoard)
      train_summary.json        steps, time, final and best validation metrics

Resume (``resume=True``) restores weights, codebook EMA buffers, optimizer, scheduler, every
RNG the loop uses and the window sampler, so ``N steps + resume + N steps`` equals ``2N`` steps.
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

from motiongpt.config import atomic_write_text, config_to_dict
from motiongpt.utils.atomic import atomic_directory, remove_stale_temps
from motiongpt.utils.metrics import MetricLogger
from motiongpt.utils.train_state import load_optimizer, rng_state, save_optimizer, set_rng_state
from motiongpt.vq.config import VQConfig, check_config, replace_model
from motiongpt.vq.data import NO_MAX_LENGTH, WindowSampler, load_motion_set
from motiongpt.vq.model import CHECKPOINT_FILES, MANIFEST, VQVAE

__all__ = ["train_vqvae", "latest_checkpoint", "lr_factor"]

log = logging.getLogger(__name__)

# Train fields that only change bookkeeping: a resumed run may change them (e.g. extend
# total_iters); any other difference would make the resumed run a different experiment.
_RESUMABLE_CHANGES = {
    "total_iters", "log_every", "eval_every", "save_every", "keep_last", "progress_bar", "tensorboard", "num_threads",
}


def lr_factor(step: int, warmup_iters: int, milestones: list[int], gamma: float) -> float:
    """Learning-rate multiplier at 0-based ``step``: linear warm-up, then x``gamma`` per milestone passed."""
    if step < warmup_iters:
        return (step + 1) / (warmup_iters + 1)
    return gamma ** sum(1 for m in milestones if step >= m)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint named in ``out_dir/checkpoints/latest.txt`` (None when there is none)."""
    pointer = Path(out_dir) / "checkpoints" / "latest.txt"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise FileNotFoundError(f"{pointer} names {path.name}, which does not exist")
    return path


def _resolve_config(cfg: VQConfig, data_root: Path, feature_dim: int, joints_num: int, dataset: str) -> VQConfig:
    cfg = replace_model(cfg, nfeats=feature_dim, joints_num=joints_num)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_root=str(data_root), dataset=dataset))
    return check_config(cfg)


def _check_resume_config(saved: VQConfig, now: VQConfig, where: Path) -> None:
    a, b = config_to_dict(saved), config_to_dict(now)
    diffs = []
    for section in ("model", "data"):
        diffs += [f"{section}.{k}: {a[section][k]!r} -> {b[section][k]!r}" for k in a[section] if a[section][k] != b[section][k]]
    diffs += [
        f"train.{k}: {a['train'][k]!r} -> {b['train'][k]!r}"
        for k in a["train"]
        if k not in _RESUMABLE_CHANGES and a["train"][k] != b["train"][k]
    ]
    if diffs:
        raise ValueError(
            f"cannot resume from {where}: the config changed ({'; '.join(diffs)}); only "
            f"{sorted(_RESUMABLE_CHANGES)} may change on resume"
        )


_RUN_ARTIFACTS = ("checkpoints", "best", "tb", "metrics.jsonl", "train_summary.json", MANIFEST) + CHECKPOINT_FILES


def _clear_run_dir(out_dir: Path) -> None:
    """Delete what an earlier run wrote into ``out_dir`` (only those names; other files stay)."""
    for name in _RUN_ARTIFACTS:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def train_vqvae(
    cfg: VQConfig,
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a VQ-VAE on ``data_root`` (HumanML3D layout) and save it to ``out_dir``.

    Args:
        cfg: the config (a preset or ``configs/vq/*.yaml``); feature size, joints and the data path
            are filled in from the data.
        data_root: dataset directory (train split for windows, val split for validation).
        out_dir: output directory (layout in the module docstring).
        resume: ``True`` continues from ``checkpoints/latest.txt`` (error when there is none),
            ``"auto"`` does so when a checkpoint exists and starts fresh otherwise, a path resumes
            from that checkpoint directory.
        overwrite: allow a fresh run in an ``out_dir`` that already holds a run or a model (its
            checkpoints, logs and weights are deleted; other files stay); without it that is an
            error, so a forgotten ``--resume`` loses nothing.

    Returns:
        The training summary (also written to ``out_dir/train_summary.json``).
    """
    threads_before = torch.get_num_threads()
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    try:
        return _train(cfg, data_root, out_dir, resume, overwrite)
    finally:
        torch.set_num_threads(threads_before)


def _train(
    cfg: VQConfig, data_root: str | os.PathLike, out_dir: str | os.PathLike, resume: bool | str | os.PathLike, overwrite: bool
) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    t_start = time.time()
    check_config(cfg)
    tc = cfg.train
    data_root = Path(data_root).resolve()
    out_dir = Path(out_dir)
    ckpt_root = out_dir / "checkpoints"

    accelerator = Accelerator(mixed_precision=tc.mixed_precision)
    main = accelerator.is_main_process

    # ---- what to resume from -------------------------------------------------------------------
    resume_dir: Path | None = None
    if resume is True or resume == "auto":
        resume_dir = latest_checkpoint(out_dir)
        if resume_dir is None and resume is True:
            raise FileNotFoundError(f"--resume: no checkpoint in {ckpt_root} (no latest.txt); start without --resume")
    elif resume:
        resume_dir = Path(resume)
        if not (resume_dir / "trainer_state.json").is_file():
            raise FileNotFoundError(f"{resume_dir} is not a training checkpoint (no trainer_state.json)")
    if resume_dir is None:
        existing = [n for n in _RUN_ARTIFACTS if (out_dir / n).exists()]
        # resume="auto" may clear what a run killed before its first checkpoint left (logs,
        # best/), never a finished model.
        killed_early = resume == "auto" and not (out_dir / "model.safetensors").exists()
        if existing and not (overwrite or killed_early):
            raise FileExistsError(
                f"{out_dir} already holds a run ({', '.join(existing)}); pass resume=True (--resume) to "
                "continue it or overwrite=True (--overwrite) to start over"
            )
        if main:
            _clear_run_dir(out_dir)  # a fresh run must not inherit best/, logs or weights of an earlier one
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(ckpt_root)  # leftovers of a run killed mid-save
        remove_stale_temps(out_dir, names=_RUN_ARTIFACTS + (".vq-save",))
    accelerator.wait_for_everyone()

    # ---- data ------------------------------------------------------------------------------------
    train_set = load_motion_set(
        data_root, cfg.data.train_split, min_length=tc.window_size, max_length=NO_MAX_LENGTH, dataset=cfg.data.dataset
    )
    if main and train_set.skipped:
        log.info("train split: %s", train_set.skipped)
    cfg = _resolve_config(cfg, data_root, train_set.feature_dim, train_set.joints_num, train_set.dataset)
    val_set = None
    if tc.eval_every > 0:
        val_set = load_motion_set(
            data_root, cfg.data.val_split, min_length=cfg.downsample, max_length=NO_MAX_LENGTH,
            dataset=cfg.data.dataset, max_clips=tc.val_max_clips,
        )
        if not val_set.features:
            raise ValueError(f"validation split {cfg.data.val_split!r} of {data_root} has no usable clips")
    mean, std = train_set.mean, train_set.std
    train_features = list(train_set.features)
    if tc.mirror:
        train_features += _mirrored(train_features, train_set.joints_num, data_root)
    train_norm = [(f - mean) / std for f in train_features]  # normalized once, up front

    # ---- model, optimizer, schedule ---------------------------------------------------------------
    torch.manual_seed(tc.seed)
    model = VQVAE(cfg, mean=mean, std=std)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tuple(tc.betas), weight_decay=tc.weight_decay)
    # The schedule is defined per optimizer step, so it is stepped by hand once per step rather
    # than prepared by accelerate (which would step it once per process).
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, tc.warmup_iters, tc.lr_milestones, tc.lr_gamma)
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped: VQVAE = accelerator.unwrap_model(model)
    # Different windows on every process, reproducible per rank.
    sampler = WindowSampler(train_norm, tc.window_size, tc.batch_size, seed=tc.seed + 1000 * accelerator.process_index)

    step, best = 0, {"mpjpe_mm": math.inf, "step": None}
    if resume_dir is not None:
        step, best = _load_checkpoint(resume_dir, cfg, unwrapped, optimizer, scheduler, sampler, accelerator)
        if main:
            log.info("resumed from %s at step %d", resume_dir, step)
    if step > tc.total_iters:
        raise ValueError(f"checkpoint is at step {step}, beyond train.total_iters={tc.total_iters}")

    logger = MetricLogger(out_dir, tensorboard=tc.tensorboard, resume_step=step if resume_dir else None, enabled=main)
    if main:
        log.info(
            "training %s VQ-VAE (%.2fM params) on %d clips of %s for %d steps (batch %d x %d frames, %d process(es))",
            cfg.preset, sum(p.numel() for p in unwrapped.parameters()) / 1e6, len(sampler), data_root,
            tc.total_iters, tc.batch_size, tc.window_size, accelerator.num_processes,
        )

    # ---- loop ------------------------------------------------------------------------------------
    model.train()
    bar = tqdm(total=tc.total_iters, initial=step, disable=not (main and tc.progress_bar), desc="vq", dynamic_ncols=True)
    running: dict[str, float] = {}
    used = torch.zeros(cfg.model.nb_code, dtype=torch.bool)
    n_running, t_window = 0, time.time()
    last_val: dict[str, Any] = {}
    first_loss = None
    while step < tc.total_iters:
        batch = torch.from_numpy(sampler.next_batch()).to(accelerator.device)  # (B, W, D) normalized
        with accelerator.autocast():
            out = model(batch)
            losses = unwrapped.loss(batch, out)
        accelerator.backward(losses["loss"])
        if tc.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)

        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        used[out.codes.detach().reshape(-1).cpu()] = True
        n_running += 1
        if first_loss is None:
            first_loss = float(losses["loss"].detach())

        if tc.log_every and (step % tc.log_every == 0 or step == tc.total_iters):
            scalars = {k: v / n_running for k, v in running.items()}
            scalars["lr"] = scheduler.get_last_lr()[0]
            scalars["codebook_usage_pct"] = float(used.float().mean() * 100.0)  # codes hit since last log
            scalars["steps_per_s"] = n_running / max(time.time() - t_window, 1e-9)
            logger.log(step, scalars, "train")
            bar.set_postfix(loss=f"{scalars['loss']:.4f}", ppl=f"{scalars['perplexity']:.0f}")
            running, n_running, t_window = {}, 0, time.time()
            used.zero_()

        is_last = step == tc.total_iters
        if val_set is not None and (step % tc.eval_every == 0 or is_last):
            last_val = _validate(unwrapped, val_set, accelerator)
            if main:
                logger.log(step, {k: v for k, v in last_val.items() if isinstance(v, (int, float))}, "val")
                log.info(
                    "step %d: val MPJPE %.1f mm (global %.1f), recon %.4f, usage %.1f %%",
                    step, last_val["mpjpe_mm"], last_val["mpjpe_global_mm"], last_val["recon_loss"],
                    last_val["codebook_usage_pct"],
                )
                if last_val["mpjpe_mm"] < best["mpjpe_mm"]:
                    best = {"mpjpe_mm": last_val["mpjpe_mm"], "step": step}
                    unwrapped.save_pretrained(out_dir / "best")
            best = gather_object([best])[0] if accelerator.num_processes > 1 else best
        if step % tc.save_every == 0 or is_last:
            _save_checkpoint(ckpt_root, step, best, unwrapped, optimizer, scheduler, sampler, accelerator)
    bar.close()

    # ---- final model -----------------------------------------------------------------------------
    summary: dict[str, Any] = {}
    if main:
        use_best = tc.final_model == "best" and best["step"] is not None
        final = VQVAE.from_pretrained(out_dir / "best") if use_best else unwrapped
        final.save_pretrained(out_dir)
        summary = {
            "out_dir": str(out_dir.resolve()),
            "steps": step,
            "seconds": round(time.time() - t_start, 2),
            "first_loss": first_loss,
            "final_model": "best" if use_best else "last",
            "best_step": best["step"],
            "best_val_mpjpe_mm": None if best["step"] is None else best["mpjpe_mm"],
            "last_val": last_val,
            "resumed_from": str(resume_dir) if resume_dir else None,
            "num_processes": accelerator.num_processes,
        }
        atomic_write_text(out_dir / "train_summary.json", json.dumps(summary, indent=1))
        logger.close()
    accelerator.wait_for_everyone()
    return summary


def _mirrored(features: list[np.ndarray], joints_num: int, data_root: Path) -> list[np.ndarray]:
    """Left/right mirror of each clip's features (features -> joints -> mirror -> features).

    Each mirrored clip is one frame shorter (the features of a frame need the next one). Only the
    22-joint HumanML3D skeleton has a mirror map.
    """
    from motiongpt.motion.features import features_to_joints_batch, joints_to_features_batch, mirror_joints

    if joints_num != 22:
        raise ValueError(
            f"train.mirror needs the 22-joint HumanML3D skeleton; {data_root} has {joints_num} joints "
            "(set train.mirror=false)"
        )
    return joints_to_features_batch([mirror_joints(j) for j in features_to_joints_batch(features)])


def _validate(model: VQVAE, val_set: Any, accelerator: Any) -> dict[str, Any]:
    """Validation metrics on the main process (others skip: the model is identical on all ranks)."""
    from motiongpt.vq.evaluate import reconstruction_metrics

    metrics: dict[str, Any] = {}
    if accelerator.is_main_process:
        m = reconstruction_metrics(model, val_set.features, ids=val_set.ids)
        metrics = {k: v for k, v in m.items() if not isinstance(v, dict)}
        metrics.update({f"mae_{k}": v for k, v in m["feature_mae_normalized"].items()})
    accelerator.wait_for_everyone()
    return metrics


def _save_checkpoint(
    ckpt_root: Path,
    step: int,
    best: dict,
    model: VQVAE,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    sampler: WindowSampler,
    accelerator: Any,
) -> None:
    """Write ``checkpoint-<step>/`` atomically, then point ``latest.txt`` at it, then prune old ones."""
    from accelerate.utils import gather_object
    from safetensors.torch import save_file

    # Each rank has its own RNG and sampler state; rank 0 writes them all.
    rng_tensors, rng_meta = rng_state()
    per_rank = gather_object([{"rng_tensors": rng_tensors, "rng_meta": rng_meta, "sampler": sampler.state_dict()}])
    if accelerator.is_main_process:
        name = f"checkpoint-{step}"
        with atomic_directory(ckpt_root / name) as tmp:
            model.write_files(tmp)  # loadable with VQVAE.from_pretrained
            save_optimizer(optimizer, tmp)
            ranks = []
            for r, st in enumerate(per_rank):
                save_file(st["rng_tensors"], str(tmp / f"rng_state_{r}.safetensors"))
                ranks.append({"rng": st["rng_meta"], "sampler": st["sampler"]})
            state = {
                "step": step,
                "best": best if best["step"] is not None else {"mpjpe_mm": None, "step": None},
                "scheduler": scheduler.state_dict(),
                "num_processes": accelerator.num_processes,
                "ranks": ranks,
            }
            (tmp / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
        atomic_write_text(ckpt_root / "latest.txt", name + "\n")
        keep = model.config.train.keep_last
        if keep > 0:
            ckpts = sorted(
                (p for p in ckpt_root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                key=lambda p: int(p.name.split("-")[-1]),
            )
            for old in ckpts[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_checkpoint(
    ckpt: Path,
    cfg: VQConfig,
    model: VQVAE,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    sampler: WindowSampler,
    accelerator: Any,
) -> tuple[int, dict]:
    from safetensors.torch import load_file

    saved = VQVAE.from_pretrained(ckpt)
    _check_resume_config(saved.config, cfg, ckpt)
    if not (np.array_equal(saved.mean_np, model.mean_np) and np.array_equal(saved.std_np, model.std_np)):
        raise ValueError(f"cannot resume from {ckpt}: the dataset's Mean/Std changed since the checkpoint")
    model.load_state_dict_strict(saved.state_dict(), source=str(ckpt / "model.safetensors"))
    load_optimizer(optimizer, ckpt)
    state = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    if state["num_processes"] != accelerator.num_processes:
        raise ValueError(
            f"cannot resume {ckpt} exactly: it was written by {state['num_processes']} process(es), "
            f"this run has {accelerator.num_processes}"
        )
    scheduler.load_state_dict(state["scheduler"])
    rank = accelerator.process_index
    sampler.load_state_dict(state["ranks"][rank]["sampler"])
    set_rng_state(load_file(str(ckpt / f"rng_state_{rank}.safetensors")), state["ranks"][rank]["rng"])
    best = state["best"]
    if best["step"] is None:
        best = {"mpjpe_mm": math.inf, "step": None}
    return int(state["step"]), best

"""Typed configuration of the motion VQ-VAE: architecture, training schedule, data.

The dataclass defaults are the ``t2m`` preset (T2M-GPT's HumanML3D tokenizer). ``tiny`` is the
same architecture shrunk so it trains on the synthetic corpus on 2 CPU cores in minutes.
``configs/vq/<preset>.yaml`` hold the same values (a test keeps them in sync), and every
checkpoint directory stores its resolved config as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Literal

__all__ = ["VQModelConfig", "VQTrainConfig", "VQDataConfig", "VQConfig", "PRESETS", "get_preset", "check_config"]


@dataclass
class VQModelConfig:
    """Architecture and loss of the T2M-GPT VQ-VAE."""

    nfeats: int = 263
    """Per-frame feature size D (263 HumanML3D, 251 KIT-ML); training fills it in from the data."""
    joints_num: int = 22
    """Skeleton joints J (22 HumanML3D, 21 KIT-ML); sets the position-loss slice ``[4 : 4 + (J-1)*3]``."""
    nb_code: int = 512
    """Codebook size K: codes are integers in ``[0, K)``."""
    code_dim: int = 512
    """Dimension of a codebook entry (the encoder's output channels)."""
    width: int = 512
    """Hidden channels of the encoder and decoder convolutions."""
    down_t: int = 2
    """Number of stride-2 downsampling stages: one code per ``2 ** down_t`` frames (2 -> 4 frames)."""
    depth: int = 3
    """Dilated residual blocks per Resnet1D stack."""
    dilation_growth_rate: int = 3
    """Block ``i`` of a stack uses dilation ``dilation_growth_rate ** i`` (reversed in the decoder)."""
    ema_decay: float = 0.99
    """EMA decay of the codebook statistics (code_sum, code_count)."""
    reset_threshold: float = 1.0
    """A code whose EMA usage count falls below this is reset to a random encoder output."""
    commit_weight: float = 0.02
    """Weight of the commitment loss ``mse(z_e, sg[z_q])``."""
    pos_weight: float = 0.5
    """Weight of the smooth-L1 term on the joint-position block ``[4 : 4 + (J-1)*3]``."""
    root_weight: float = 0.0
    """Weight of an extra smooth-L1 term on the root block ``[0:4]`` (angular velocity, linear
    velocity, height): 4 of 263 features, so the plain term hardly sees the trajectory (0: off, as T2M-GPT)."""
    traj_weight: float = 0.0
    """Weight of the mean distance (metres) between the root paths plus the mean heading error (radians) integrated over each
    training window, as ``features_to_joints`` integrates them: a small bias in a per-frame
    velocity adds up to a wrong travel distance or turn angle (0: off, as T2M-GPT)."""
    vel_weight: float = 0.0
    """Weight of the mean squared error ((m/s)^2) of the global joints' frame-to-frame velocities
    recovered over each window: keeps fast small motions (a waving hand, clapping wrists) that
    position terms average away (0: off, as T2M-GPT)."""


@dataclass
class VQTrainConfig:
    """Optimisation schedule, logging and checkpointing of ``train_vqvae``."""

    window_size: int = 64
    """Frames per training window (random crops of the training clips); a multiple of ``2**down_t``."""
    batch_size: int = 256
    """Windows per optimisation step (per process)."""
    total_iters: int = 300_000
    """Optimisation steps in total, warm-up included."""
    warmup_iters: int = 1000
    """Linear learning-rate warm-up steps: lr * (step + 1) / (warmup_iters + 1)."""
    lr: float = 2e-4
    """Peak AdamW learning rate."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    weight_decay: float = 0.0
    """AdamW weight decay (T2M-GPT uses 0)."""
    lr_milestones: list[int] = field(default_factory=lambda: [200_000])
    """Steps at which the learning rate is multiplied by ``lr_gamma``."""
    lr_gamma: float = 0.05
    """Learning-rate factor applied at each milestone."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this value (0: no clipping)."""
    seed: int = 123
    """Seed of the weights, the codebook resets and the window sampler."""
    mirror: bool = False
    """Also train on the left/right mirror of every training clip (22-joint skeletons only): twice
    the windows, and every one-sided action (wave, kick, raised arm, sidestep) seen on both sides."""
    log_every: int = 50
    """Log training scalars every this many steps."""
    eval_every: int = 5000
    """Validate (recon loss, MPJPE, codebook usage) every this many steps and at the end (0: never)."""
    save_every: int = 10_000
    """Write ``checkpoints/checkpoint-<step>/`` every this many steps and at the end."""
    keep_last: int = 2
    """Periodic checkpoints kept on disk (older ones are deleted; 0 keeps all)."""
    val_max_clips: int = 256
    """Validation clips used during training (the first N of the val split; 0: all)."""
    final_model: Literal["best", "last"] = "best"
    """Weights saved in the output directory at the end: best validation MPJPE, or the last step."""
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """Accelerate mixed precision (keep ``no`` on CPU: bf16 is ~30x slower without native support)."""
    tensorboard: bool = True
    """Write TensorBoard scalars next to ``metrics.jsonl``."""
    progress_bar: bool = True
    """Show a tqdm progress bar on the main process."""
    num_threads: int = 0
    """Torch intra-op CPU threads during training (0: torch's default, one per core). On a CPU
    shared with other jobs, 1 avoids OpenMP barrier stalls (two threads waiting on each other while
    a core is busy elsewhere)."""


@dataclass
class VQDataConfig:
    """Where the motion comes from (recorded so a checkpoint says what it was trained on)."""

    data_root: str = ""
    """HumanML3D-layout dataset directory (set from ``--data_root``; stored as an absolute path)."""
    dataset: str | None = None
    """``humanml3d`` or ``kit``; None: detected from the feature size."""
    train_split: str = "train"
    """Split the training windows are cut from."""
    val_split: str = "val"
    """Split used for validation during training."""


@dataclass
class VQConfig:
    """Everything needed to rebuild, train and identify a motion VQ-VAE."""

    preset: str = "t2m"
    """Name of the preset this config started from (informational)."""
    model: VQModelConfig = field(default_factory=VQModelConfig)
    """Architecture and loss weights."""
    train: VQTrainConfig = field(default_factory=VQTrainConfig)
    """Optimisation and checkpointing."""
    data: VQDataConfig = field(default_factory=VQDataConfig)
    """Dataset location and splits."""

    @property
    def downsample(self) -> int:
        """Frames per code (``2 ** down_t``)."""
        return 2 ** self.model.down_t


def _t2m() -> VQConfig:
    return VQConfig()


def _tiny() -> VQConfig:
    # Same structure as t2m (down_t 2, depth 3, dilation rate 3), sized for 2 CPU cores: ~0.8M
    # parameters, ~7 steps/s on one thread. Tuned on the 2,000-clip synthetic corpus (seed 0) for
    # what the motion *means*, not only MPJPE: with the plain T2M-GPT losses (test MPJPE 24.2 mm)
    # motiongpt.eval.semantic scored the reconstructions 0.66 (waves flattened, forward jumps
    # without travel, 180-degree turns short, claps missed). The trajectory terms fix that:
    # root_weight + traj_weight bring jumps, turns and sidesteps to 0.96-1.00; the squared
    # joint-velocity term brings waves back (0.00 -> 1.00; its mean-absolute form did not), and a
    # stronger position term (pos_weight 4, T2M-GPT: 0.5) stops the wrist overshoot the velocity
    # term causes (hands 5-7 cm too high, read as an extra "arm raised"). Measured: test MPJPE
    # 16.5 / 17.8 mm, semantic accuracy 0.945 / 0.885 test and 0.98 / 0.89 val, 98 / 100 % of the
    # 256 codes used (seeds 123 / 7: the seed moves claps and waves, the families still short of
    # 0.95); the extra terms cost 6-13 % per step (~4.2 min on one thread instead of ~3.9).
    # Tried and not kept: 512 codes (claps 0.25, usage 84 %), training on mirrored clips too
    # (train.mirror: MPJPE 24.5 mm and waves lost within this step budget), pos_weight 2 (0.935).
    # Earlier trade-offs: lr 2e-3 reached the quality of 1e-3 in 80 % of the steps; the codebook
    # size barely changes MPJPE (128 -> 512 codes).
    return VQConfig(
        preset="tiny",
        model=VQModelConfig(
            nb_code=256, code_dim=64, width=96, pos_weight=4.0, root_weight=2.0, traj_weight=1.0, vel_weight=4.0
        ),
        train=VQTrainConfig(
            window_size=64,
            batch_size=64,
            total_iters=1600,
            warmup_iters=100,
            lr=2e-3,
            lr_milestones=[1300],
            lr_gamma=0.1,
            log_every=25,
            eval_every=400,
            save_every=400,
            keep_last=2,
            val_max_clips=128,
            # One thread: ~7 steps/s whether or not the 2 cores are shared (2 threads: ~10.5
            # steps/s on an idle machine but stalls badly under load).
            num_threads=1,
        ),
    )


PRESETS: dict[str, Callable[[], VQConfig]] = {"t2m": _t2m, "tiny": _tiny}
"""Named presets: ``PRESETS[name]()`` returns a fresh :class:`VQConfig`."""


def get_preset(name: str) -> VQConfig:
    """A fresh copy of preset ``name`` (``t2m`` or ``tiny``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown VQ preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]()


def check_config(cfg: VQConfig) -> VQConfig:
    """Validate value ranges that the type system cannot express; raises ``ValueError`` naming the field."""
    m, t = cfg.model, cfg.train
    positive = {
        "model.nfeats": m.nfeats, "model.joints_num": m.joints_num, "model.nb_code": m.nb_code,
        "model.code_dim": m.code_dim, "model.width": m.width, "model.depth": m.depth,
        "model.dilation_growth_rate": m.dilation_growth_rate, "train.window_size": t.window_size,
        "train.batch_size": t.batch_size, "train.total_iters": t.total_iters, "train.lr": t.lr,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    for name in ("commit_weight", "pos_weight", "root_weight", "traj_weight", "vel_weight"):
        if getattr(m, name) < 0:
            raise ValueError(f"model.{name} must be >= 0, got {getattr(m, name)}")
    if m.down_t < 0:
        raise ValueError(f"model.down_t must be >= 0, got {m.down_t}")
    if not 0.0 < m.ema_decay < 1.0:
        raise ValueError(f"model.ema_decay must be in (0, 1), got {m.ema_decay}")
    if 4 + (m.joints_num - 1) * 3 > m.nfeats:
        raise ValueError(f"model.joints_num={m.joints_num} does not fit model.nfeats={m.nfeats}")
    if t.window_size % cfg.downsample:
        raise ValueError(f"train.window_size={t.window_size} is not a multiple of 2**down_t={cfg.downsample}")
    for name in ("warmup_iters", "log_every", "eval_every", "save_every", "keep_last", "val_max_clips", "num_threads"):
        if getattr(t, name) < 0:
            raise ValueError(f"train.{name} must be >= 0, got {getattr(t, name)}")
    if sorted(t.lr_milestones) != list(t.lr_milestones):
        raise ValueError(f"train.lr_milestones must be increasing, got {t.lr_milestones}")
    return cfg


def replace_model(cfg: VQConfig, **changes: object) -> VQConfig:
    """Copy of ``cfg`` with ``model`` fields changed (e.g. the feature size found in the data)."""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **changes))

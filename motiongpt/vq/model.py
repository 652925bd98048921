"""The T2M-GPT motion VQ-VAE: 1-D conv encoder, EMA codebook with dead-code reset, conv decoder.

Normalized HumanML3D features ``(B, T, D)`` become ``T / 2**down_t`` integer codes per clip
(one code per 4 frames with the default ``down_t = 2``) and back. The module also carries the
dataset's normalization (``mean``/``std``) so the public helpers :meth:`VQVAE.encode` /
:meth:`VQVAE.decode` take and return *unnormalized* features, and a checkpoint directory
(:meth:`VQVAE.save_pretrained`) holds weights, config and statistics together.

Differences from the T2M-GPT reference, on purpose:

* encoder residual stacks use increasing dilations ``rate ** i`` and the decoder the reverse
  (T2M-GPT's ``Resnet1D`` defaults to ``reverse_dilation=True`` and so reverses both);
* dead codes are reset to *randomly chosen* encoder outputs of the batch (T2M-GPT takes the first
  ``nb_code`` rows, which all come from the first few windows), and the first codebook likewise;
* the codebook statistics are registered buffers (saved, restored on resume) and are averaged
  across processes under distributed training, so every rank keeps the same codebook.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from motiongpt.config import ConfigError, load_config, save_config
from motiongpt.motion.stats import checked_mean_std
from motiongpt.utils.checkpoint_dir import MANIFEST, check_state_dict, save_checkpoint_dir, verify_manifest, write_manifest
from motiongpt.vq.config import VQConfig, check_config

__all__ = [
    "ResConv1DBlock",
    "Resnet1D",
    "Encoder",
    "Decoder",
    "QuantizeEMAReset",
    "VQOutput",
    "VQVAE",
    "length_buckets",
    "window_joints",
    "CHECKPOINT_FILES",
]

CHECKPOINT_FILES = ("model.safetensors", "config.yaml", "mean.npy", "std.npy")
"""Files of a VQ-VAE checkpoint directory (plus ``manifest.json`` with their hashes, written last)."""

_FORMAT = "motiongpt-vqvae"


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


class ResConv1DBlock(nn.Module):
    """ReLU -> conv k3 (dilation d, pad d) -> ReLU -> conv k1, plus the input. Keeps ``(B, C, T)``."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        # padding = dilation keeps the length for a k3 dilated conv.
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=3, stride=1, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(x))  # (B, C, T) -> (B, C, T)
        h = self.conv2(F.relu(h))  # (B, C, T) -> (B, C, T)
        return x + h


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilations ``rate ** i`` (reversed when ``reverse``)."""

    def __init__(self, channels: int, depth: int, dilation_growth_rate: int, reverse: bool = False) -> None:
        super().__init__()
        dilations = [dilation_growth_rate**i for i in range(depth)]
        if reverse:
            dilations = dilations[::-1]
        self.blocks = nn.Sequential(*[ResConv1DBlock(channels, d) for d in dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)  # (B, C, T) -> (B, C, T)


class Encoder(nn.Module):
    """``(B, D, T) -> (B, code_dim, T / 2**down_t)``."""

    def __init__(self, nfeats: int, code_dim: int, width: int, down_t: int, depth: int, dilation_growth_rate: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(nfeats, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            layers.append(
                nn.Sequential(
                    # k4 s2 p1 halves an even length exactly: (T + 2 - 4) // 2 + 1 = T / 2.
                    nn.Conv1d(width, width, kernel_size=4, stride=2, padding=1),
                    Resnet1D(width, depth, dilation_growth_rate, reverse=False),
                )
            )
        layers.append(nn.Conv1d(width, code_dim, 3, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, D, T) -> (B, code_dim, T / 2**down_t)


class Decoder(nn.Module):
    """``(B, code_dim, N) -> (B, D, N * 2**down_t)``, the mirror of :class:`Encoder`."""

    def __init__(self, nfeats: int, code_dim: int, width: int, down_t: int, depth: int, dilation_growth_rate: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(code_dim, width, 3, 1, 1), nn.ReLU()]
        for _ in range(down_t):
            layers.append(
                nn.Sequential(
                    Resnet1D(width, depth, dilation_growth_rate, reverse=True),
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv1d(width, width, 3, 1, 1),
                )
            )
        layers += [nn.Conv1d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv1d(width, nfeats, 3, 1, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)  # (B, code_dim, N) -> (B, D, N * 2**down_t)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class QuantizeEMAReset(nn.Module):
    """Codebook quantizer with EMA updates and reset of dead codes (T2M-GPT's QuantizeEMAReset).

    Training mode (``self.training``): the first batch initializes the codebook; every batch
    then updates ``code_sum``/``code_count`` by EMA and sets each code to ``code_sum / code_count``
    when its count is >= ``reset_threshold``, else to a random encoder output of the batch (a dead
    code gets a second chance where the data is). Eval mode never changes the codebook.
    """

    def __init__(self, nb_code: int, code_dim: int, decay: float = 0.99, reset_threshold: float = 1.0) -> None:
        super().__init__()
        self.nb_code, self.code_dim = nb_code, code_dim
        self.decay, self.reset_threshold = decay, reset_threshold
        # Buffers, not parameters: updated by EMA (no gradient), saved with the weights so a
        # checkpoint restores the exact quantizer state for resume.
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_sum", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_count", torch.zeros(nb_code))
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))

    def _random_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``nb_code`` random rows of ``x`` ``(N, C)``; tiled with small noise when N < nb_code."""
        n = x.shape[0]
        if n < self.nb_code:
            reps = math.ceil(self.nb_code / n)
            # The noise separates the repeated copies so they do not stay identical forever.
            x = x.repeat(reps, 1) + torch.randn(n * reps, self.code_dim, device=x.device, dtype=x.dtype) * (
                0.01 / math.sqrt(self.code_dim)
            )
        idx = torch.randperm(x.shape[0], device=x.device)[: self.nb_code]
        out = x[idx].contiguous()  # (nb_code, C)
        if _distributed():
            dist.broadcast(out, src=0)  # every rank resets to the same rows
        return out

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor) -> None:
        """Set the codebook to random rows of ``x`` ``(N, C)``; counts start at 1 (as in T2M-GPT)."""
        rows = self._random_rows(x)
        self.codebook.copy_(rows)
        self.code_sum.copy_(rows)
        self.code_count.fill_(1.0)
        self.initted.fill_(True)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code (L2) of each row of ``x`` ``(N, C)`` -> ``(N,)`` int64."""
        cb = self.codebook  # (K, C)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is constant per row, so argmin ignores it.
        dist_ = (cb * cb).sum(dim=1)[None, :] - 2.0 * (x @ cb.t())  # (N, K)
        return dist_.argmin(dim=1)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook rows of ``codes`` ``(...,)`` -> ``(..., C)``."""
        return F.embedding(codes, self.codebook)

    @torch.no_grad()
    def update_codebook(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step on ``x`` ``(N, C)`` assigned to ``codes`` ``(N,)``, then reset dead codes."""
        batch_sum = torch.zeros_like(self.code_sum).index_add_(0, codes, x)  # (K, C)
        batch_count = torch.bincount(codes, minlength=self.nb_code).to(x.dtype)  # (K,)
        if _distributed():
            # Statistics of the global batch, so all ranks keep one codebook.
            dist.all_reduce(batch_sum)
            dist.all_reduce(batch_count)
        rand_rows = self._random_rows(x)  # (K, C)
        self.code_sum.mul_(self.decay).add_(batch_sum, alpha=1.0 - self.decay)
        self.code_count.mul_(self.decay).add_(batch_count, alpha=1.0 - self.decay)
        alive = (self.code_count >= self.reset_threshold).to(x.dtype)[:, None]  # (K, 1)
        means = self.code_sum / self.code_count.clamp_min(1e-12)[:, None]  # (K, C)
        self.codebook.copy_(alive * means + (1.0 - alive) * rand_rows)

    @staticmethod
    def perplexity(codes: torch.Tensor, nb_code: int) -> torch.Tensor:
        """``exp(entropy)`` of the code histogram: the effective number of codes in use."""
        counts = torch.bincount(codes.reshape(-1), minlength=nb_code).float()
        prob = counts / counts.sum().clamp_min(1.0)
        return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize encoder outputs ``z`` ``(B, C, N)``.

        Returns ``(z_q (B, C, N) with straight-through gradient, commit loss, perplexity, codes (B, N))``.
        """
        b, c, n = z.shape
        x = z.permute(0, 2, 1).reshape(b * n, c)  # (B, C, N) -> (B*N, C)
        if self.training and not bool(self.initted):
            self.init_codebook(x.detach())
        codes = self.quantize(x.detach())  # (B*N,)
        x_q = self.dequantize(codes)  # (B*N, C), from the codebook before this step's update
        if self.training:
            self.update_codebook(x.detach(), codes)
        perplexity = self.perplexity(codes, self.nb_code)
        commit = F.mse_loss(x, x_q.detach())
        x_q = x + (x_q - x).detach()  # straight-through: forward x_q, gradient to x
        z_q = x_q.reshape(b, n, c).permute(0, 2, 1).contiguous()  # (B*N, C) -> (B, C, N)
        return z_q, commit, perplexity, codes.reshape(b, n)


# --------------------------------------------------------------------------------------------
# The VQ-VAE
# --------------------------------------------------------------------------------------------


@dataclass
class VQOutput:
    """Result of :meth:`VQVAE.forward`."""

    recon: torch.Tensor
    """``(B, T, D)`` reconstructed normalized features."""
    codes: torch.Tensor
    """``(B, T / 2**down_t)`` int64 codes."""
    commit_loss: torch.Tensor
    """Scalar commitment loss ``mse(z_e, sg[z_q])``."""
    perplexity: torch.Tensor
    """Scalar codebook perplexity of this batch."""


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal length, in chunks of at most ``batch_size``.

    Same-length batches need no padding, so a batched encode is bit-for-bit the per-clip one (zero
    padding would leak into the convolutions' receptive field near each clip's end).
    """
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(int(n), []).append(i)
    out = []
    for n in sorted(groups):
        idx = groups[n]
        out += [idx[k : k + batch_size] for k in range(0, len(idx), batch_size)]
    return out


_FPS = 20.0
"""Frame rate of the features (HumanML3D, KIT-ML): scales the velocity term to m/s."""


def window_joints(features: torch.Tensor, joints_num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global joints of unnormalized feature windows, differentiably (torch ``features_to_joints``).

    ``features`` ``(B, T, D)`` -> ``(joints (B, T, J, 3), yaw (B, T))``: each window starts at the
    origin facing +z, as :func:`motiongpt.motion.features.features_to_joints` starts a clip
    (yaw in radians, + = counter-clockwise seen from above).
    """
    # Frame t uses the velocities of frame t-1 (exclusive cumulative sums, zero at the start).
    prev = torch.cat([torch.zeros_like(features[:, :1, 0:3]), features[:, :-1, 0:3]], dim=1)  # (B, T, 3)
    half_yaw = torch.cumsum(prev[..., 0], dim=1)  # (B, T): column 0 is the half-angle velocity
    c2, s2 = torch.cos(2.0 * half_yaw), torch.sin(2.0 * half_yaw)  # (B, T)
    # Root steps rotated into the world frame, then integrated: (B, T) each.
    root_x = torch.cumsum(c2 * prev[..., 1] - s2 * prev[..., 2], dim=1)
    root_z = torch.cumsum(s2 * prev[..., 1] + c2 * prev[..., 2], dim=1)
    end = 4 + (joints_num - 1) * 3
    rx, ry, rz = features[..., 4:end:3], features[..., 5:end:3], features[..., 6:end:3]  # (B, T, J-1)
    c2, s2 = c2[..., None], s2[..., None]  # (B, T, 1)
    others = torch.stack([c2 * rx - s2 * rz + root_x[..., None], ry, s2 * rx + c2 * rz + root_z[..., None]], dim=-1)
    root = torch.stack([root_x, features[..., 3], root_z], dim=-1)[:, :, None]  # (B, T, 1, 3)
    return torch.cat([root, others], dim=2), 2.0 * half_yaw  # (B, T, J, 3), (B, T)


def _as_float_array(features: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    if torch.is_tensor(features):
        features = features.detach().cpu().numpy()
    arr = np.asarray(features)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected numeric features, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


class VQVAE(nn.Module):
    """Motion VQ-VAE (T2M-GPT architecture) with its dataset normalization.

    ``forward`` works on normalized tensors for training; the helpers :meth:`encode`,
    :meth:`decode`, :meth:`encode_batch`, :meth:`decode_batch`, :meth:`codes_to_joints` take and
    return unnormalized numpy arrays, run in eval mode without gradients, and validate their input
    (``ValueError`` naming the problem, never a silent wrong motion).
    """

    def __init__(self, config: VQConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        super().__init__()
        self.config = check_config(config)
        m = config.model
        self.encoder = Encoder(m.nfeats, m.code_dim, m.width, m.down_t, m.depth, m.dilation_growth_rate)
        self.quantizer = QuantizeEMAReset(m.nb_code, m.code_dim, m.ema_decay, m.reset_threshold)
        self.decoder = Decoder(m.nfeats, m.code_dim, m.width, m.down_t, m.depth, m.dilation_growth_rate)
        mean, std = checked_mean_std(mean, std, m.nfeats)
        # Non-persistent: they live in mean.npy/std.npy of the checkpoint, not in the weights file,
        # but follow the module across devices.
        self.register_buffer("mean", torch.from_numpy(mean.copy()), persistent=False)
        self.register_buffer("std", torch.from_numpy(std.copy()), persistent=False)

    # ---- properties ----------------------------------------------------------------------------

    @property
    def nb_code(self) -> int:
        """Codebook size K."""
        return self.config.model.nb_code

    @property
    def nfeats(self) -> int:
        """Feature size D."""
        return self.config.model.nfeats

    @property
    def joints_num(self) -> int:
        """Skeleton joints J."""
        return self.config.model.joints_num

    @property
    def downsample(self) -> int:
        """Frames per code (4 with ``down_t = 2``)."""
        return self.config.downsample

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.quantizer.codebook.device

    # ---- training-side API (normalized tensors) --------------------------------------------------

    def forward(self, x: torch.Tensor) -> VQOutput:
        """Reconstruct normalized features ``x`` ``(B, T, D)``, T a multiple of :attr:`downsample`."""
        if x.ndim != 3 or x.shape[-1] != self.nfeats:
            raise ValueError(f"expected (B, T, {self.nfeats}) features, got {tuple(x.shape)}")
        if x.shape[1] % self.downsample:
            raise ValueError(f"T={x.shape[1]} is not a multiple of {self.downsample}; crop the clip first")
        z = self.encoder(x.permute(0, 2, 1).float())  # (B, T, D) -> (B, D, T) -> (B, C, T/4)
        z_q, commit, perplexity, codes = self.quantizer(z)  # (B, C, T/4), (), (), (B, T/4)
        recon = self.decoder(z_q).permute(0, 2, 1)  # (B, C, T/4) -> (B, D, T) -> (B, T, D)
        return VQOutput(recon=recon, codes=codes, commit_loss=commit, perplexity=perplexity)

    def loss(self, x: torch.Tensor, out: VQOutput) -> dict[str, torch.Tensor]:
        """T2M-GPT losses for target ``x`` ``(B, T, D)``, plus the optional trajectory terms.

        ``"loss"`` is the weighted total. ``root``, ``traj`` and ``vel`` are computed (and
        returned) only when their weight in ``config.model`` is > 0, so the t2m preset trains
        exactly as T2M-GPT does.
        """
        m = self.config.model
        recon = F.smooth_l1_loss(out.recon, x)  # all D features
        pos = slice(4, 4 + (m.joints_num - 1) * 3)  # root-relative joint positions ("ric")
        pos_loss = F.smooth_l1_loss(out.recon[..., pos], x[..., pos])
        total = recon + m.pos_weight * pos_loss + m.commit_weight * out.commit_loss
        terms = {"recon": recon, "pos": pos_loss, "commit": out.commit_loss, "perplexity": out.perplexity}
        if m.root_weight > 0:
            # The root block is 4 of 263 features, so the plain term barely sees the trajectory.
            terms["root"] = F.smooth_l1_loss(out.recon[..., :4], x[..., :4])
            total = total + m.root_weight * terms["root"]
        if m.traj_weight > 0 or m.vel_weight > 0:
            # Joints recovered over the window, unnormalized, as features_to_joints recovers them.
            j_rec, yaw_rec = window_joints(out.recon * self.std + self.mean, m.joints_num)  # (B, T, J, 3), (B, T)
            j_gt, yaw_gt = window_joints(x * self.std + self.mean, m.joints_num)
            if m.traj_weight > 0:
                # Integrated root path (m) and heading (rad): a small bias in a per-frame
                # velocity adds up to a wrong travel distance or turn angle.
                path_err = (j_rec[:, :, 0, [0, 2]] - j_gt[:, :, 0, [0, 2]]).norm(dim=-1).mean()  # (B, T) -> ()
                terms["traj"] = path_err + (yaw_rec - yaw_gt).abs().mean()
                total = total + m.traj_weight * terms["traj"]
            if m.vel_weight > 0:
                # Squared error of every global joint's velocity, in (m/s)^2. A waving hand or
                # clapping wrists flattened to their mean pose is a large error on a few joints
                # for a few frames: squared, it outweighs the many small errors elsewhere
                # (measured: the mean absolute error left waves flattened, the squared one did not).
                v_rec = (j_rec[:, 1:] - j_rec[:, :-1]) * _FPS  # (B, T-1, J, 3) m/s
                v_gt = (j_gt[:, 1:] - j_gt[:, :-1]) * _FPS
                terms["vel"] = (v_rec - v_gt).pow(2).sum(dim=-1).mean()  # (B, T-1, J) -> ()
                total = total + m.vel_weight * terms["vel"]
        return {"loss": total, **terms}

    def encode_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of normalized ``x`` ``(B, T, D)`` -> ``(B, T / downsample)`` int64 (no validation)."""
        z = self.encoder(x.permute(0, 2, 1).float())  # (B, D, T) -> (B, C, N)
        b, c, n = z.shape
        codes = self.quantizer.quantize(z.permute(0, 2, 1).reshape(b * n, c))  # (B*N,)
        return codes.reshape(b, n)

    def decode_normalized(self, codes: torch.Tensor) -> torch.Tensor:
        """Normalized features of ``codes`` ``(B, N)`` -> ``(B, N * downsample, D)`` (no validation)."""
        z_q = self.quantizer.dequantize(codes).permute(0, 2, 1)  # (B, N) -> (B, N, C) -> (B, C, N)
        return self.decoder(z_q).permute(0, 2, 1)  # (B, D, 4N) -> (B, 4N, D)

    # ---- normalization ---------------------------------------------------------------------------

    @property
    def mean_np(self) -> np.ndarray:
        """float32 ``[D]`` dataset mean (copy)."""
        return self.mean.detach().cpu().numpy().copy()

    @property
    def std_np(self) -> np.ndarray:
        """float32 ``[D]`` dataset std (copy)."""
        return self.std.detach().cpu().numpy().copy()

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / std`` for ``[..., D]`` numpy features."""
        return (np.asarray(features, np.float32) - self.mean_np) / self.std_np

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        """``features * std + mean`` for ``[..., D]`` numpy features."""
        return np.asarray(features, np.float32) * self.std_np + self.mean_np

    # ---- public helpers (unnormalized numpy in and out) -------------------------------------------

    def check_features(self, features: np.ndarray | torch.Tensor, name: str = "features") -> np.ndarray:
        """Validate one clip ``(T, D)`` and crop it to a multiple of :attr:`downsample` frames.

        Raises ``ValueError`` for a wrong rank or feature size, NaN/inf, or fewer frames than one code.
        """
        arr = _as_float_array(features, name)
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected (T, {self.nfeats}) features, got shape {arr.shape}")
        if arr.shape[1] != self.nfeats:
            raise ValueError(
                f"{name}: feature size {arr.shape[1]} does not match the VQ-VAE's {self.nfeats} "
                f"(shape {arr.shape}; 263 = HumanML3D, 251 = KIT-ML)"
            )
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(f"{name}: NaN/inf in {rows.size} frame(s), first at frame {int(rows[0])}")
        t = arr.shape[0] - arr.shape[0] % self.downsample
        if t == 0:
            raise ValueError(f"{name}: {arr.shape[0]} frame(s) is shorter than one code ({self.downsample} frames)")
        return arr[:t]

    def check_codes(self, codes: np.ndarray | torch.Tensor | Sequence[int], name: str = "codes") -> np.ndarray:
        """Validate a 1-D code sequence: integers in ``[0, nb_code)``, not empty -> int64 array."""
        if torch.is_tensor(codes):
            codes = codes.detach().cpu().numpy()
        arr = np.asarray(codes)
        if arr.size == 0:  # before the dtype check: np.asarray([]) is float64
            raise ValueError(f"{name}: empty code sequence")
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected integer codes, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D code sequence, got shape {arr.shape}")
        bad = (arr < 0) | (arr >= self.nb_code)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name}: code {int(arr[i])} at position {i} is out of range [0, {self.nb_code}) "
                f"({int(bad.sum())} bad code(s))"
            )
        return arr.astype(np.int64, copy=False)

    def _eval_mode(self) -> "_EvalMode":
        return _EvalMode(self)

    def encode_batch(
        self, clips: Sequence[np.ndarray | torch.Tensor], batch_size: int = 256, names: Sequence[str] | None = None
    ) -> list[np.ndarray]:
        """Codes of each unnormalized ``(T_i, D)`` clip -> list of int64 ``(T_i // downsample,)``.

        Clips are cropped to a multiple of :attr:`downsample` frames and batched by equal length.
        """
        names = list(names) if names is not None else [f"clip {i}" for i in range(len(clips))]
        arrays = [self.normalize(self.check_features(c, n)) for c, n in zip(clips, names)]
        out: list[np.ndarray | None] = [None] * len(arrays)
        with self._eval_mode():
            for idx in length_buckets([a.shape[0] for a in arrays], batch_size):
                x = torch.from_numpy(np.stack([arrays[i] for i in idx])).to(self.device)  # (b, T, D)
                codes = self.encode_normalized(x).cpu().numpy().astype(np.int64)  # (b, T/4)
                for j, i in enumerate(idx):
                    out[i] = codes[j]
        return out  # type: ignore[return-value]

    def encode(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Codes of one unnormalized clip ``(T, D)`` -> int64 ``(T // downsample,)`` (cropped)."""
        return self.encode_batch([features], names=["features"])[0]

    def decode_batch(
        self, code_seqs: Sequence[np.ndarray | torch.Tensor | Sequence[int]], batch_size: int = 256
    ) -> list[np.ndarray]:
        """Unnormalized features of each code sequence -> list of float32 ``(downsample * N_i, D)``."""
        arrays = [self.check_codes(c, f"codes {i}") for i, c in enumerate(code_seqs)]
        out: list[np.ndarray | None] = [None] * len(arrays)
        with self._eval_mode():
            for idx in length_buckets([a.shape[0] for a in arrays], batch_size):
                codes = torch.from_numpy(np.stack([arrays[i] for i in idx])).to(self.device)  # (b, N)
                feats = self.decode_normalized(codes).cpu().numpy()  # (b, 4N, D)
                for j, i in enumerate(idx):
                    out[i] = self.denormalize(feats[j])
        return out  # type: ignore[return-value]

    def decode(self, codes: np.ndarray | torch.Tensor | Sequence[int]) -> np.ndarray:
        """Unnormalized features ``(downsample * N, D)`` of one code sequence ``(N,)``."""
        arr = self.check_codes(codes)
        return self.decode_batch([arr])[0]

    def codes_to_joints(self, codes: np.ndarray | torch.Tensor | Sequence[int]) -> np.ndarray:
        """Global joint positions ``(downsample * N, J, 3)`` of a code sequence."""
        from motiongpt.motion.features import features_to_joints  # numpy-only, imported on use

        return np.asarray(features_to_joints(self.decode(codes)), dtype=np.float32)

    def reconstruct_batch(
        self, clips: Sequence[np.ndarray], batch_size: int = 256
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Encode then decode each unnormalized clip: ``(features (T', D), codes (T'/4,))`` per clip.

        ``T'`` is the clip length cropped to a multiple of :attr:`downsample`; equal to
        ``decode(encode(clip))`` but in one pass per length bucket.
        """
        arrays = [self.normalize(self.check_features(c, f"clip {i}")) for i, c in enumerate(clips)]
        feats_out: list = [None] * len(arrays)
        codes_out: list = [None] * len(arrays)
        with self._eval_mode():
            for idx in length_buckets([a.shape[0] for a in arrays], batch_size):
                x = torch.from_numpy(np.stack([arrays[i] for i in idx])).to(self.device)  # (b, T, D)
                codes = self.encode_normalized(x)  # (b, T/4)
                recon = self.decode_normalized(codes).cpu().numpy()  # (b, T, D)
                codes_np = codes.cpu().numpy().astype(np.int64)
                for j, i in enumerate(idx):
                    feats_out[i] = self.denormalize(recon[j])
                    codes_out[i] = codes_np[j]
        return feats_out, codes_out

    # ---- checkpoints -----------------------------------------------------------------------------

    def write_files(self, folder: str | os.PathLike) -> None:
        """Write the checkpoint files and ``manifest.json`` into an existing ``folder``, not atomically.

        For callers that already build a temporary directory (training checkpoints); everyone
        else uses :meth:`save_pretrained`.
        """
        folder = Path(folder)
        self._write_files(folder)
        _write_manifest(folder)

    def _write_files(self, folder: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": _FORMAT})
        save_config(self.config, folder / "config.yaml")
        np.save(folder / "mean.npy", self.mean_np, allow_pickle=False)
        np.save(folder / "std.npy", self.std_np, allow_pickle=False)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors``, ``config.yaml``, ``mean.npy``, ``std.npy``, ``manifest.json``.

        A directory that is absent or holds only checkpoint files is replaced as a whole
        (:func:`~motiongpt.utils.atomic.atomic_directory`): a kill mid-save leaves the previous
        checkpoint intact. A directory that also holds other things (a training ``out_dir`` with
        logs and checkpoints) gets the files swapped in one by one, ``manifest.json`` (their
        hashes) removed first and written last, so an interrupted save is detected on load instead
        of mixing two models.
        """
        return save_checkpoint_dir(directory, CHECKPOINT_FILES, _FORMAT, self._write_files, ".vq-save")

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: str | torch.device | None = None, verify: bool = True
    ) -> "VQVAE":
        """Load a checkpoint directory written by :meth:`save_pretrained` (strictly).

        Raises:
            FileNotFoundError: a checkpoint file is missing (naming it).
            ValueError: the manifest's hashes do not match (an interrupted or tampered save), the
                weights have missing/unexpected keys or wrong shapes (naming them), or the
                statistics do not fit the config.
        """
        directory = Path(directory)
        for name in CHECKPOINT_FILES + (MANIFEST,):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} is not a VQ-VAE checkpoint: {name} is missing")
        if verify:
            _verify_manifest(directory)
        try:
            config = load_config(VQConfig, directory / "config.yaml")
        except ConfigError as e:
            raise ValueError(f"bad VQ-VAE config in {directory}: {e}") from e
        mean = np.load(directory / "mean.npy", allow_pickle=False)
        std = np.load(directory / "std.npy", allow_pickle=False)
        model = cls(config, mean=mean, std=std)
        state = load_file(str(directory / "model.safetensors"))
        model.load_state_dict_strict(state, source=str(directory / "model.safetensors"))
        model.eval()
        if device is not None:
            model.to(device)
        return model

    def load_state_dict_strict(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """``load_state_dict(strict=True)`` with a ``ValueError`` naming missing/unexpected/misshapen keys."""
        check_state_dict(self.state_dict(), state, source, "the VQ-VAE config")
        self.load_state_dict(state, strict=True)


class _EvalMode:
    """Context: eval mode + no_grad, restoring the previous training flag (the codebook must not
    be updated by an inference call made in the middle of training)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training
        self.no_grad = torch.no_grad()

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)


def _write_manifest(folder: Path) -> None:
    write_manifest(folder, CHECKPOINT_FILES, _FORMAT)


def read_manifest(directory: str | os.PathLike) -> dict:
    """The ``manifest.json`` of a checkpoint directory (file hashes; the checkpoint's identity)."""
    return json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))


def _verify_manifest(directory: Path) -> None:
    verify_manifest(directory, CHECKPOINT_FILES, _FORMAT)

"""Tiny real checkpoints for the web UI tests: a random-init VQ-VAE and a nano LLaMA LoRA run
(a few real fine-tuning steps on synthetic records) that records it, built in seconds on CPU.

The model writes near-random tokens, which is what the tests need: every path of the page (a
motion is generated, decoded, rendered, offered for download) runs for real.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

NB_CODE = 32  # the codebook of tests/llm/finetune_testlib.make_prepared's records


def make_tiny_vq(out_dir: Path, seed: int = 0) -> Path:
    """A random-init VQ-VAE with ``NB_CODE`` codes (small widths), saved as a checkpoint folder."""
    import torch

    from motiongpt.vq.config import get_preset
    from motiongpt.vq.model import VQVAE

    cfg = get_preset("tiny")
    cfg.model.nb_code, cfg.model.code_dim, cfg.model.width, cfg.model.depth = NB_CODE, 16, 16, 1
    torch.manual_seed(seed)
    vq = VQVAE(cfg)
    # a random codebook so different codes decode to different poses (the EMA buffers start at 0)
    with torch.no_grad():
        for name, buf in vq.quantizer.named_buffers():
            if buf.dtype.is_floating_point and buf.ndim == 2 and buf.shape[0] == NB_CODE:
                buf.copy_(torch.randn_like(buf) * 0.5)
    return vq.save_pretrained(out_dir)


def make_tiny_checkpoint(root: Path, steps: int = 3) -> Path:
    """``root/lora``: a nano-model LoRA run over ``NB_CODE`` codes whose ``vq_dir`` is ``root/vq``."""
    from motiongpt.llm.finetune import finetune
    from tests.llm.finetune_testlib import make_prepared, quick_cfg

    root = Path(root)
    vq_dir = make_tiny_vq(root / "vq")
    prepared = make_prepared(root / "prep")
    cfg = quick_cfg(prepared, root / "lora", "method=lora", f"train.max_steps={steps}", "train.eval_every=0",
                    f"train.save_every={steps}", f"vq_dir={vq_dir}")
    finetune(cfg)
    return root / "lora"


def write_joints_npy(path: Path, frames: int = 48, seed: int = 0) -> Path:
    """A made-up but well-formed joint sequence ``(frames, 22, 3)`` as ``.npy``: the HumanML3D rest
    pose (forward kinematics of the reference offsets) walking slowly forward along z with a sway."""
    from motiongpt.motion.skeleton import PARENTS, TARGET_OFFSETS

    rest = np.zeros((22, 3), np.float64)
    for j in range(1, 22):  # parents come before children in the HumanML3D order
        rest[j] = rest[PARENTS[j]] + TARGET_OFFSETS[j]
    rest[:, 1] -= rest[:, 1].min()  # feet on the floor
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / 20.0
    root = np.concatenate([0.03 * np.sin(2 * np.pi * 0.8 * t + rng.uniform(0, 6)), np.zeros_like(t), 0.6 * t], axis=1)
    joints = rest[None] + root[:, None, :]
    np.save(path, joints.astype(np.float32))
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

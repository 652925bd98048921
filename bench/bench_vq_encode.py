#!/usr/bin/env python
"""Encode throughput of the motion VQ-VAE on this machine (frames per second), per preset.

    python bench/bench_vq_encode.py [--presets tiny t2m] [--num_clips 256] [--repeats 3] [--threads N]

Random weights (throughput does not depend on training) with the codebook initialized from
encoder outputs; HumanML3D-like clip lengths (40..196 frames, uniform). Times
``VQVAE.encode_batch`` end to end (validation, normalization, length bucketing, encoder,
nearest-code search) on unnormalized numpy input, best of ``--repeats``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from motiongpt.vq import VQVAE, get_preset


def bench_preset(name: str, clips: list[np.ndarray], repeats: int, batch_size: int) -> dict:
    torch.manual_seed(0)
    model = VQVAE(get_preset(name))
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 64, model.nfeats))  # initialize the codebook
    model.eval()
    frames = sum(c.shape[0] - c.shape[0] % model.downsample for c in clips)
    model.encode_batch(clips[:8], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.encode_batch(clips, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    return {
        "preset": name,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "clips": len(clips),
        "frames": frames,
        "seconds": best,
        "frames_per_s": frames / best,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "t2m"])
    parser.add_argument("--num_clips", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    clips = [rng.normal(size=(int(rng.integers(40, 197)), 263)).astype(np.float32) for _ in range(args.num_clips)]
    rows = [bench_preset(p, clips, args.repeats, args.batch_size) for p in args.presets]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"VQ-VAE encode throughput, CPU ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load avg {load:.2f}), {args.num_clips} clips of 40-196 frames, "
        f"best of {args.repeats}\n"
    )
    print("| preset | params (M) | clips | frames | seconds | frames/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['preset']} | {r['params_m']:.2f} | {r['clips']} | {r['frames']} | {r['seconds']:.3f} | "
            f"{r['frames_per_s']:,.0f} |"
        )
    return rows


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Evaluate a VQ-VAE's reconstruction on a dataset split (MPJPE, per-block errors, codebook usage).

    python scripts/eval_vqvae.py --vq runs/vq_tiny --data_root DATA --split test --out runs/vq_tiny/eval_test.json

Prints a table and writes the metrics as JSON (``--out``). Never modifies the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.config import atomic_write_text  # noqa: E402
from motiongpt.vq.evaluate import evaluate_vqvae, format_metrics_table  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vq", required=True, help="VQ-VAE checkpoint directory")
    parser.add_argument("--data_root", required=True, help="HumanML3D-layout dataset directory")
    parser.add_argument("--split", default="test", help="split name (default: test)")
    parser.add_argument("--out", default=None, help="write the metrics to this JSON file")
    parser.add_argument("--max_clips", type=int, default=0, help="evaluate only the first N clips (0: all)")
    parser.add_argument("--batch_size", type=int, default=256, help="clips per forward pass")
    parser.add_argument("--min_length", type=int, default=None, help="shortest clip in frames (default: dataset's)")
    parser.add_argument("--max_length", type=int, default=None, help="longest clip in frames (default: dataset's)")
    args = parser.parse_args(argv)

    metrics = evaluate_vqvae(
        args.vq, args.data_root, args.split, batch_size=args.batch_size, max_clips=args.max_clips,
        min_length=args.min_length, max_length=args.max_length,
    )
    print(f"VQ-VAE {args.vq} on {args.data_root} [{args.split}]")
    print(format_metrics_table(metrics))
    if args.out:
        atomic_write_text(args.out, json.dumps(metrics, indent=1))
        print(f"wrote {args.out}")
    return metrics


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

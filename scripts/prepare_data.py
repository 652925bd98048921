#!/usr/bin/env python
"""Encode a dataset with a trained VQ-VAE: ``<data_root>/VQVAE/<id>.npy`` code files.

    python scripts/prepare_data.py --vq runs/vq_tiny --data_root DATA [--mirror]

Re-running with the same VQ-VAE is a no-op; a different VQ-VAE (or rebuilt data) re-encodes
everything (``VQVAE/meta.json`` records the tokenizer's identity). Bad clips are skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.vq.prepare import encode_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vq", required=True, help="VQ-VAE checkpoint directory")
    parser.add_argument("--data_root", required=True, help="HumanML3D-layout dataset directory")
    parser.add_argument("--mirror", action="store_true", help="also encode left/right mirrored clips as M<id>")
    parser.add_argument("--split", default="all", help="split whose ids are encoded (default: all)")
    parser.add_argument("--batch_size", type=int, default=256, help="clips per forward pass")
    parser.add_argument("--force", action="store_true", help="re-encode even when the cache is current")
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = encode_dataset(
        args.vq, args.data_root, mirror=args.mirror, split=args.split, batch_size=args.batch_size,
        force=args.force, device=args.device,
    )
    shown = {**report, "skipped": report["skipped"][:20]}
    if len(report["skipped"]) > 20:
        shown["skipped_more"] = len(report["skipped"]) - 20
    print(json.dumps(shown, indent=2))
    return report


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

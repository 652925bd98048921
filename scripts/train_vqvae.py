#!/usr/bin/env python
"""Train the motion VQ-VAE (tokenizer) on a HumanML3D-layout dataset.

    python scripts/train_vqvae.py --config configs/vq/tiny.yaml --data_root DATA --out_dir runs/vq_tiny [key=value ...]
    python scripts/train_vqvae.py --config configs/vq/tiny.yaml --data_root DATA --out_dir runs/vq_tiny --resume

Overrides are dotted fields of ``motiongpt.vq.config.VQConfig`` (``train.total_iters=500``,
``model.nb_code=256``). Multi-GPU: ``accelerate launch scripts/train_vqvae.py ...``.
The output directory is itself a checkpoint: ``VQVAE.from_pretrained(out_dir)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.config import load_config  # noqa: E402  (after the offline switch)
from motiongpt.vq.config import VQConfig  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/vq/tiny.yaml", help="YAML config (configs/vq/t2m.yaml or tiny.yaml)")
    parser.add_argument("--data_root", required=True, help="HumanML3D-layout dataset directory")
    parser.add_argument("--out_dir", required=True, help="output directory (final model, checkpoints, logs)")
    parser.add_argument(
        "--resume", nargs="?", const="latest", default=None,
        help="continue from out_dir's latest checkpoint; 'auto': only if one exists; or a checkpoint directory",
    )
    parser.add_argument("--overwrite", action="store_true", help="start over in an out_dir that holds checkpoints")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of VQConfig fields")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from motiongpt.vq.train import train_vqvae  # imports accelerate: after argument errors are reported

    cfg = load_config(VQConfig, args.config, args.overrides)
    resume: bool | str = False
    if args.resume == "latest":
        resume = True
    elif args.resume is not None:
        resume = args.resume
    summary = train_vqvae(cfg, args.data_root, args.out_dir, resume=resume, overwrite=args.overwrite)
    if summary:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

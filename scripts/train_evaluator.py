#!/usr/bin/env python
"""Train the text-motion evaluator (the matching model behind FID / R-precision) on a HumanML3D-layout dataset.

    python scripts/train_evaluator.py --data_root DATA --out_dir runs/evaluator_tiny --preset tiny [key=value ...]
    python scripts/train_evaluator.py --data_root DATA --out_dir runs/evaluator --config configs/eval/t2m.yaml

Overrides are dotted fields of ``motiongpt.eval.evaluator.EvaluatorConfig`` (``train.total_steps=600``,
``model.dim_coemb_hidden=256``). The output directory is itself a checkpoint:
``TextMotionEvaluator.from_pretrained(out_dir)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.config import apply_overrides, load_config  # noqa: E402  (after the offline switch)
from motiongpt.eval.evaluator import EvaluatorConfig, get_preset  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", required=True, help="HumanML3D-layout dataset directory")
    parser.add_argument("--out_dir", required=True, help="output directory (final evaluator, best/, logs)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=["tiny", "t2m"], help="built-in preset (default: tiny)")
    group.add_argument("--config", help="YAML config (configs/eval/tiny.yaml or t2m.yaml)")
    parser.add_argument("--overwrite", action="store_true", help="replace an evaluator run already in out_dir")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of EvaluatorConfig fields")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.config:
        cfg = load_config(EvaluatorConfig, args.config, args.overrides)
    else:
        cfg = apply_overrides(get_preset(args.preset or "tiny"), args.overrides)
    from motiongpt.eval.train import train_evaluator  # imports accelerate: after argument errors are reported

    summary = train_evaluator(cfg, args.data_root, args.out_dir, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

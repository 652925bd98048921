#!/usr/bin/env python
"""Run the embedded-default pipeline offline (what ``make demo`` calls).

    python scripts/demo.py --out outputs/demo [key=value ...]

Overrides are fields of ``motiongpt.pipeline.DemoConfig`` (e.g. ``num_clips=500``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from motiongpt.config import load_config
from motiongpt.pipeline import DemoConfig, run_demo


QUALITY = ("vq_mpjpe_mm", "semantic_accuracy", "fid", "fid_vq_recon", "r_precision_top3", "r_precision_top3_real",
           "key_token_accuracy")
"""Metrics of ``summary.json`` printed as the run's quality figures."""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="output folder (default: outputs/demo)")
    parser.add_argument("--config", default=None, help="YAML file with DemoConfig fields")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of DemoConfig fields")
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + ([f"out_dir={args.out}"] if args.out else [])
    cfg = load_config(DemoConfig, args.config, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = run_demo(cfg)
    # A short summary on stdout; everything (samples, GIF paths) is in summary.json.
    short = {k: summary[k] for k in ("dataset", "vqvae", "checkpoint", "evaluator") if k in summary}
    short["stages_s"] = summary["stages"]
    metrics = summary["metrics"]
    short["metrics"] = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict)) and k not in QUALITY}
    # the headline figures last, where they are seen: held-out test split, means over the repeats
    short["quality"] = {k: metrics.get(k) for k in QUALITY}
    print(json.dumps(short, indent=2))
    if metrics.get("eval_dir"):
        print(f"evaluation tables: {Path(metrics['eval_dir']) / 'metrics.md'}")
    print(f"full summary: {Path(cfg.out_dir).resolve() / 'summary.json'}")
    return summary


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

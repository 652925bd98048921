#!/usr/bin/env python
"""Build instruction datasets (train/val/test.json) from VQ codes and captions.

    python scripts/generate_dataset.py --data_root DATA --out_dir data/hml_vocab \\
        [--vq runs/vq_tiny] [--tasks t2m,t2m_init,t2m_last,t2m_keys] [--records_per_clip 0] \\
        [--seed 0] [--format vocab|digits] [--mirror/--no-mirror] [--config FILE.yaml] [key=value ...]

``key=value`` sets any field of ``InstructionDataConfig`` (e.g. ``canonical_prob=1.0``,
``caption_in_motion_tasks=true``, ``max_tokens=60``). Order: defaults, ``--config``, the flags,
then ``key=value``. Writes ``<out_dir>/{train,val,test}.json``, ``meta.json`` (counts per split and
task, skip report) and ``motion_format.json``; prints the counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motiongpt.config import ConfigError, apply_overrides, load_config  # noqa: E402
from motiongpt.llm.dataset_builder import InstructionDataConfig, generate_instruction_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", help="HumanML3D-layout dataset with VQVAE/<id>.npy codes")
    parser.add_argument("--out_dir", help="output folder, e.g. data/<name>")
    parser.add_argument("--vq", help="VQ-VAE checkpoint: check that the token cache is current for it")
    parser.add_argument("--tasks", help="comma-separated tasks (default: t2m,t2m_init,t2m_last,t2m_keys)")
    parser.add_argument("--records_per_clip", type=int, help="records per motion per task (0: one per caption)")
    parser.add_argument("--seed", type=int, help="seed of every random choice")
    parser.add_argument("--format", choices=["vocab", "digits"], help="motion token format (default vocab)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                        help="add mirrored train clips M<id> (default: yes, when their codes exist)")
    parser.add_argument("--config", help="YAML file of InstructionDataConfig fields")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of InstructionDataConfig")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(InstructionDataConfig, args.config)
        flags = []
        if args.tasks is not None:
            flags.append(f"tasks={args.tasks}")
        for name in ("records_per_clip", "seed", "format"):
            if getattr(args, name) is not None:
                flags.append(f"{name}={getattr(args, name)}")
        if args.mirror is not None:
            flags.append(f"mirror={str(args.mirror).lower()}")
        cfg = apply_overrides(cfg, flags, source="command-line flags")
        # paths are set as plain strings (a YAML round trip could reinterpret them)
        paths = {k: getattr(args, k) for k in ("data_root", "out_dir", "vq") if getattr(args, k) is not None}
        cfg = dataclasses.replace(cfg, **paths)
        cfg = apply_overrides(cfg, args.overrides)
        cfg.validate()
    except (ConfigError, ValueError) as e:
        parser.error(str(e))
    report = generate_instruction_dataset(cfg)
    print(json.dumps({"out_dir": cfg.out_dir, "format": report["format"], "counts": report["counts"],
                      "notes": report["notes"], "seconds": report["seconds"]}, indent=1))
    return report


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

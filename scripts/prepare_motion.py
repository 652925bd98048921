#!/usr/bin/env python
"""Tokenize an instruction dataset once into a cached folder for fine-tuning.

    python scripts/prepare_motion.py --data_dir data/hml_vocab --out_dir data/hml_vocab_tiny \\
        [--base_model tiny|nano|/local/hf/dir] [--template alpaca|alpaca_short|compact|chat|auto] [--max_len 512] \\
        [--train_on_prompt] [--truncate] [--vocab_size 2000] [--format vocab|digits] [--force] \\
        [--config FILE.yaml] [key=value ...]

``data_dir`` holds ``train.json`` (+ ``val.json``): from ``scripts/generate_dataset.py``, or
MotionGPT-LoRA's ``train.json`` unchanged (``--format digits``). Writes ``<out>/train/``,
``<out>/val/`` (Arrow, ``datasets.load_from_disk``), ``<out>/tokenizer/``, ``motion_format.json``,
``prepare_config.yaml``, ``stats.json``. Same request + same input files: nothing is redone.
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motiongpt.config import ConfigError, apply_overrides, load_config  # noqa: E402
from motiongpt.llm.prepare import PrepareConfig, prepare_dataset  # noqa: E402
from motiongpt.llm.templates import TEMPLATE_NAMES  # noqa: E402


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    """The ``PrepareConfig`` a command line asks for: the config file, the flags, the paths, then
    ``key=value`` overrides (validated)."""
    cfg = load_config(PrepareConfig, args.config)
    flags = [f"{k}={getattr(args, k)}" for k in ("template", "max_len", "vocab_size", "format")
             if getattr(args, k) is not None]
    flags += [f"{k}=true" for k in ("train_on_prompt", "truncate") if getattr(args, k)]
    cfg = apply_overrides(cfg, flags, source="command-line flags")
    paths = {k: getattr(args, k) for k in ("data_dir", "out_dir", "base_model") if getattr(args, k) is not None}
    cfg = dataclasses.replace(cfg, **paths)
    cfg = apply_overrides(cfg, args.overrides)
    cfg.validate()
    return cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="folder with train.json (and val.json)")
    parser.add_argument("--out_dir", help="output folder")
    parser.add_argument("--base_model", help="tiny | nano | a local Hugging Face model directory (default tiny)")
    parser.add_argument("--template", choices=TEMPLATE_NAMES, help="prompt template (default alpaca)")
    parser.add_argument("--max_len", type=int, help="longest example in tokens (default 512)")
    parser.add_argument("--train_on_prompt", action="store_true", default=None, help="loss on the prompt too")
    parser.add_argument("--truncate", action="store_true", default=None,
                        help="truncate over-long prompts (from the front) instead of dropping the example")
    parser.add_argument("--vocab_size", type=int, help="BPE vocabulary size for the presets (default 2000)")
    parser.add_argument("--format", choices=["vocab", "digits"],
                        help="motion token format (default: data_dir/motion_format.json)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the output is up to date")
    parser.add_argument("--config", help="YAML file of PrepareConfig fields")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of PrepareConfig")
    return parser


def main(argv: list[str] | None = None) -> Path:
    parser = build_parser()
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args)
    except (ConfigError, ValueError) as e:
        parser.error(str(e))
    out = prepare_dataset(cfg, force=args.force)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    print(json.dumps({"out_dir": str(out), "tokenizer": stats["tokenizer"],
                      "splits": {k: {kk: v[kk] for kk in ("records", "kept", "dropped_too_long", "truncated", "length")}
                                 for k, v in stats["splits"].items()}}, indent=1))
    return out


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

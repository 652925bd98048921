#!/usr/bin/env python
"""Merge a LoRA / QLoRA adapter into its base model and save a plain transformers model.

    python scripts/export_merged.py --lora_path lora/tiny_demo_lora --out outputs/tiny_demo_merged

The output holds config.json + model.safetensors, the tokenizer (motion tokens included),
motion_format.json and run_config.yaml; it loads with
``AutoModelForCausalLM.from_pretrained(out, local_files_only=True)`` and needs no peft. The base is
merged unquantized (``--dtype``, default float32; a QLoRA adapter is merged into the full-precision
base it was trained against).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lora_path", required=True, help="adapter run directory (or one of its checkpoint-<step>/)")
    parser.add_argument("--out", required=True, help="output directory for the merged model")
    parser.add_argument("--dtype", default="float32", help="dtype of the merged weights (float32, bfloat16, float16)")
    parser.add_argument("--device", default="cpu", help="device used for merging (cpu, cuda)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    args = parser.parse_args(argv)

    from motiongpt.llm.checkpoint import export_merged

    out = export_merged(args.lora_path, args.out, dtype=args.dtype, device=args.device, overwrite=args.overwrite)
    print(json.dumps({"merged": str(out), "from": args.lora_path}))
    return str(out)


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

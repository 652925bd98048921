#!/usr/bin/env python
"""Fine-tune an LLM to read and write motion tokens: LoRA, QLoRA (4-bit), 8-bit or full.

    python finetune_motion.py --config configs/tiny_demo.yaml --prepared outputs/prep [key=value ...]
    python finetune_motion.py --config configs/tiny_demo.yaml --prepared outputs/prep --resume
    python finetune_motion.py --config configs/llama2_7b_lora.yaml --prepared PREP \\
        --base_model /models/Llama-2-7b-hf --out_dir lora/llama2_t2m

Launching on more hardware changes nothing in the command but its prefix (run from the repo root:
the accelerate configs name the DeepSpeed JSONs by relative path):

    accelerate launch --config_file accelerate_config.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/deepspeed_zero3_offload.yaml finetune_motion.py --config ...
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 finetune_motion.py --config ...   # DP on CPU

(``--num_processes N`` after ``accelerate launch`` sets the GPU count.) Overrides are dotted
fields of ``FinetuneConfig`` (``method=qlora``, ``optim.lr=1e-4``, ``lora.r=16``,
``batch.packing=true``, ``train.max_steps=500``). The output directory (default
``lora/<run_name>``) holds ``checkpoint-<step>/`` directories, a ``latest`` pointer, and the
final adapter / model at its top level: pass it as ``--lora_path`` to the later tools.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help="YAML config (configs/tiny_demo.yaml, configs/llama2_7b_lora.yaml, ...); "
                             "default: the built-in tiny demo (= configs/tiny_demo.yaml)")
    parser.add_argument("--prepared", "--data", dest="prepared", default=None,
                        help="prepared dataset directory (train/, val/, tokenizer/, motion_format.json)")
    parser.add_argument("--base_model", default=None,
                        help="tiny | nano | a local model directory | a previous full fine-tune's output directory")
    parser.add_argument("--out_dir", default=None, help="output directory (default: lora/<run_name>)")
    parser.add_argument("--method", default=None, choices=["lora", "qlora", "8bit", "full"], help="fine-tuning method")
    parser.add_argument("--vq_dir", default=None,
                        help="VQ-VAE directory the codes came from (recorded for later tools)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None,
                        help="continue from out_dir's latest checkpoint; 'auto': only if one exists; "
                             "or a checkpoint directory")
    parser.add_argument("--overwrite", action="store_true", help="start over in an out_dir that holds checkpoints")
    parser.add_argument("--stop_at", type=int, default=None,
                        help="stop with a checkpoint after this step (the schedule still spans the whole run)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of FinetuneConfig fields")
    return parser


def config_from_args(args: argparse.Namespace):
    """The :class:`~motiongpt.llm.finetune_config.FinetuneConfig` a command line asks for (the
    config file, then the path flags, then ``key=value`` overrides); ``ConfigError`` names the field."""
    from motiongpt.config import load_config
    from motiongpt.llm.finetune_config import FinetuneConfig

    overrides = list(args.overrides)
    for name in ("prepared", "base_model", "out_dir", "method", "vq_dir"):
        value = getattr(args, name)
        if value is not None:
            overrides.append(f"{name}={value}")
    if args.config and args.config.endswith("run_config.yaml"):
        # a previous run's resolved config: its `resolved` provenance section is not a config field
        from motiongpt.config import apply_overrides
        from motiongpt.llm.checkpoint import read_run_config

        return apply_overrides(read_run_config(args.config)[0], overrides)
    return load_config(FinetuneConfig, args.config, overrides)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    # the heavy imports (torch, transformers, peft, accelerate: seconds) only after the arguments parsed
    import json
    import logging

    from motiongpt.config import ConfigError

    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"finetune_motion.py: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None

    from motiongpt.llm.finetune import finetune, process_state

    main_process = process_state().is_main_process
    logging.basicConfig(
        level=logging.INFO if main_process else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    resume: bool | str = False
    if args.resume == "latest":
        resume = True
    elif args.resume is not None:
        resume = args.resume
    summary = finetune(cfg, resume=resume, overwrite=args.overwrite, stop_at=args.stop_at)
    if main_process:
        print(json.dumps(summary, indent=2))
    process_state().destroy_process_group()  # a no-op for a single process
    return summary


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

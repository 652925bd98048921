#!/usr/bin/env python
"""Evaluate a fine-tuned checkpoint the way the field does: MotionGPT-LoRA's command, all tasks.

    python eval.py --lora_path lora/tiny_demo_lora --data_root DATASET --evaluator EVAL_DIR \\
        --tasks t2m,t2m_keys,m2t,pred,inbetween --repeats 20 --out_dir OUT
    python eval.py --lora_path RUN --data_root HumanML3D --dataname t2m --vqvae_pth VQ_DIR \\
        --evaluator EVAL_DIR --max_texts 64 --repeats 3 --mm_texts 10 --mm_gens 5 --out_dir /tmp/quick

Writes ``OUT/metrics.json`` (every figure, per repeat too) and ``OUT/metrics.md``: the papers'
text-to-motion table (rows Real, VQ-VAE reconstruction, ours; R-precision top-1/2/3, FID, MM-Dist,
Diversity, MultiModality as mean ± 95 % half-width over the repeats), then key-token tasks
(tokens placed, key-pose distance), m2t (BLEU, ROUGE-L, CIDEr, R-precision of the captions),
pred / inbetween (ADE / FDE, FID, Diversity) and, on the synthetic corpus, semantic accuracy
(with ``--captions FILE``, also of text-to-motion from that file's captions, e.g. rewordings).

Resumable: the generations of every repeat and task are cached under ``OUT/cache``; a re-run
reuses the finished ones (more ``--repeats`` only adds the missing repeats). A cache made with
other generation settings is an error; ``--fresh`` discards it. The evaluator comes from
``scripts/train_evaluator.py`` (without ``--evaluator``: no FID / R-precision / Diversity). Details
of the protocol: ``motiongpt/eval/run.py``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    from motiongpt.generate.compose import RESERVE_CODES  # light: no torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lora_path", required=True, help="fine-tuning output directory (finetune_motion.py --out_dir)")
    p.add_argument("--data_root", required=True, help="dataset in the HumanML3D layout")
    p.add_argument("--evaluator", default=None, help="text-motion evaluator directory (scripts/train_evaluator.py)")
    p.add_argument("--out_dir", required=True, help="folder for metrics.json, metrics.md and the generation cache")
    p.add_argument("--tasks", default="t2m,t2m_keys,m2t,pred,inbetween",
                   help="comma-separated: t2m, t2m_init, t2m_last, t2m_keys, t2m_keys_pos, m2t, pred, inbetween")
    p.add_argument("--vqvae_pth", "--vq_dir", dest="vq_dir", default=None,
                   help="VQ-VAE directory (default: the one the run recorded)")
    p.add_argument("--dataname", choices=["t2m", "kit"], default=None,
                   help="t2m (HumanML3D, 263-d) or kit (KIT-ML, 251-d): checked against the data and the VQ-VAE")
    p.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    p.add_argument("--repeats", type=int, default=20, help="repeats of the protocol (papers: 20)")
    p.add_argument("--seed", type=int, default=0, help="base seed; repeat r uses seed + r")
    p.add_argument("--max_texts", type=int, default=None, help="use only the first N motions of the split")
    p.add_argument("--key_texts", type=int, default=None, help="key-token tasks: only the first N of those")
    p.add_argument("--mm_texts", type=int, default=100, help="MultiModality texts per repeat (0: off)")
    p.add_argument("--mm_gens", type=int, default=10, help="MultiModality generations per text")
    p.add_argument("--gt_length", action="store_true", help="t2m tasks: request the real motion's length")
    p.add_argument("--no_key_free_pass", action="store_true",
                   help="key-token tasks: skip the extra pass without constraints (the model's own key placement)")
    p.add_argument("--no_constraints", action="store_true", help="decode freely (for comparison)")
    p.add_argument("--temperature", type=float, default=0.8, help="0: greedy decoding")
    p.add_argument("--top_k", type=int, default=50, help="0: off")
    p.add_argument("--top_p", type=float, default=1.0, help="1: off")
    p.add_argument("--num_beams", type=int, default=1, help="beam search (needs --temperature 0)")
    p.add_argument("--guidance_scale", "--cond_scale", type=float, default=1.0,
                   help="classifier-free guidance of the text-to-motion tasks (1: off; needs a model trained "
                        "with unconditional records, instruction option uncond_prob)")
    p.add_argument("--compose", action="store_true",
                   help="t2m: write each caption clause by clause at its 'then' connectors (needs a model trained "
                        "with t2m_next records)")
    p.add_argument("--compose_context", type=int, default=None,
                   help="with --compose: codes of the motion so far given with each later clause (0: none; "
                        "default: what the run was trained with)")
    p.add_argument("--compose_reserve", type=int, default=RESERVE_CODES,
                   help="with --compose: codes of the motion budget kept for each clause after the one being "
                        f"written (default {RESERVE_CODES})")
    from motiongpt.generate.inputs import add_rerank_arguments  # light: no torch

    add_rerank_arguments(p, unit="text-to-motion caption")
    p.add_argument("--max_motion_tokens", type=int, default=None,
                   help="longest motion (codes) when the model chooses the length (default: the run's data, else 49)")
    p.add_argument("--max_text_tokens", type=int, default=48, help="longest m2t caption in tokens")
    p.add_argument("--captions", action="append", default=None, metavar="FILE",
                   help="file of '<clip id>#<caption>' lines (scripts/make_rewordings.py): text-to-motion from these "
                        "captions with the t2m settings, semantic accuracy per file (synthetic corpus); repeatable")
    p.add_argument("--caption_repeats", type=int, default=0,
                   help="score the --captions files in the first N repeats only (0: every repeat)")
    p.add_argument("--batch_size", type=int, default=32, help="generation batch size")
    p.add_argument("--bertscore_model", default=None, help="local model directory for BERTScore (m2t)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--fresh", action="store_true", help="discard a generation cache made with other settings")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from motiongpt.eval.run import EvalConfig  # light: torch is imported by evaluate()

    cfg = EvalConfig(
        lora_path=args.lora_path, data_root=args.data_root, evaluator=args.evaluator, vq_dir=args.vq_dir,
        dataname=args.dataname, tasks=[t.strip() for t in args.tasks.split(",") if t.strip()], split=args.split,
        repeats=args.repeats, seed=args.seed, max_texts=args.max_texts, key_texts=args.key_texts,
        mm_texts=args.mm_texts, mm_gens=args.mm_gens, gt_length=args.gt_length,
        constrained=not args.no_constraints, key_free_pass=not args.no_key_free_pass,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams,
        guidance_scale=args.guidance_scale, compose=args.compose,
        compose_context=args.compose_context, compose_reserve=args.compose_reserve,
        candidates=args.candidates, rerank_uncond_weight=args.rerank_uncond_weight,
        max_motion_tokens=args.max_motion_tokens,
        max_text_tokens=args.max_text_tokens, batch_size=args.batch_size,
        bertscore_model=args.bertscore_model, device=args.device, captions=args.captions or [],
        caption_repeats=args.caption_repeats,
    )
    try:
        cfg.validate()  # a bad option fails before the heavy imports
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import logging

    import torch

    from motiongpt.eval.run import evaluate, format_markdown, write_metrics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        result = evaluate(cfg, cache_dir=os.path.join(args.out_dir, "cache"),
                          on_mismatch="replace" if args.fresh else "error", progress=not args.no_progress)
        paths = write_metrics(result, args.out_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_markdown(result))
    print(f"wrote {paths['json']} and {paths['md']}")
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

#!/usr/bin/env python
"""Generate motions (or captions) with a fine-tuned model: MotionGPT-LoRA's command, plus more tasks.

    python generate_motion.py --lora_path lora/tiny_demo_lora --input "a person jumps twice." \\
        --motion_length 120 --out_dir outputs/gen --render
    python generate_motion.py --lora_path RUN --text_path prompts.txt --repeat_times 3 --out_dir OUT
    python generate_motion.py --lora_path RUN --task t2m_init \\
        --input "a person waves.<Motion Token>315</Motion Token>" --out_dir OUT
    python generate_motion.py --lora_path RUN --task t2m_keys_pos --input "a person walks." \\
        --keys 0:12,20:7 --motion_length 120 --out_dir OUT
    python generate_motion.py --lora_path RUN --task m2t --motion clip.npy --out_dir OUT
    python generate_motion.py --lora_path RUN --task inbetween --motion clip.bvh --out_dir OUT

Tasks: t2m, t2m_init, t2m_last, t2m_keys, t2m_keys_pos, m2t, pred, inbetween. ``--input`` is a
caption, optionally followed by key tokens (``<Motion Token>315,91</Motion Token>`` or the
``<motion_id_K>`` spelling); ``--text_path`` holds one ``<caption>#<frames>`` per line (``#NA``:
the model chooses; one NA line makes all lines NA, as LaMP does). ``--motion`` is a joints
``(T, 22, 3)`` .npy, a features ``(T, 263)`` .npy or a .bvh file: the motion described (m2t),
continued (pred: its first ``--context_frames`` frames, default all) or whose first and last
``--context_frames`` frames (default a quarter each) are joined (inbetween); with ``--key_frames``
it also gives the key tokens of the key-token tasks.

Per sample in --out_dir: <name>.npy joints (T, 22, 3), <name>_feats.npy (T, 263), <name>_tokens.txt,
<name>.bvh, <name>.gif and <name>.mp4 (--render; MP4 when ffmpeg is available), <name>.txt (m2t
captions) and results.json (prompt, seed, tokens, length, files of every sample). The folder is
written all at once: nothing half-written on failure. Decoding is constrained by default (every
output well-formed, exact lengths, key tokens in place); --no_constraints decodes freely and
reports the failures in results.json. --guidance_scale 2 (alias --cond_scale) decodes text-to-motion
tasks with classifier-free guidance (for models trained with unconditional records). --compose
writes a t2m caption clause by clause at its "then" connectors (for models trained with t2m_next
records; see motiongpt.generate.compose).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    from motiongpt.generate.compose import RESERVE_CODES  # light: no torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lora_path", default=None, help="fine-tuning output directory (finetune_motion.py --out_dir)")
    p.add_argument("--merged", default=None,
                   help="a merged / plain model directory (scripts/export_merged.py output) instead of an adapter run")
    p.add_argument("--vq_dir", default=None, help="VQ-VAE directory (default: the one the run recorded)")
    p.add_argument("--out_dir", default="outputs/generate", help="output folder (default: outputs/generate)")
    p.add_argument("--overwrite", action="store_true", help="replace --out_dir even if it holds other files")
    p.add_argument("--task", default="t2m",
                   choices=["t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "m2t", "pred", "inbetween"])
    p.add_argument("--prompt", default=None, help="instruction text (default: the task's canonical instruction)")
    p.add_argument("--input", default=None, help="caption, optionally followed by <Motion Token>...</Motion Token>")
    p.add_argument("--text_path", default=None, help="file with one '<caption>#<frames>' per line")
    p.add_argument("--motion_length", type=int, default=None, help="length of the motion in frames (20 fps)")
    p.add_argument("--motion", default=None, help="input motion: joints .npy, features .npy or .bvh")
    p.add_argument("--context_frames", type=int, default=None,
                   help="frames of --motion given: pred prefix (default all); inbetween start and end (default T/4)")
    p.add_argument("--keys", default=None, help="key tokens: codes '315,91' (t2m_keys_pos: 'pos:code,...')")
    p.add_argument("--key_frames", default=None, help="frames of --motion whose codes become the key tokens")
    p.add_argument("--repeat_times", type=int, default=1, help="samples per input (seeds seed, seed+1, ...)")
    p.add_argument("--temperature", type=float, default=0.8, help="0: greedy decoding")
    p.add_argument("--top_k", type=int, default=50, help="0: off")
    p.add_argument("--top_p", type=float, default=1.0, help="1: off")
    p.add_argument("--num_beams", type=int, default=1, help="beam search (needs --temperature 0)")
    p.add_argument("--guidance_scale", "--cond_scale", dest="guidance_scale", type=float, default=1.0,
                   help="classifier-free guidance scale s of text-to-motion tasks: tokens are chosen from "
                        "u + s * (c - u), c / u = log-probabilities with the caption / with the unconditional "
                        "(empty-input) prompt; 1: off (default), 0: unconditional, > 1: follow the caption more. "
                        "The model must have been trained with unconditional records (empty-input t2m "
                        "duplicates); 1.5 is the best on the embedded default model. Not with --num_beams > 1 nor "
                        "with m2t / pred / inbetween. --cond_scale: the same (MoMask's name)")
    p.add_argument("--compose", action="store_true",
                   help="t2m: split each caption at its 'then' connectors, write each clause (task t2m_next, "
                        "given --compose_context codes of the motion so far) and join them; the model must have "
                        "been trained with t2m_next records. Not with --motion_length")
    p.add_argument("--compose_context", type=int, default=None,
                   help="with --compose: codes of the motion so far given with each later clause (0: none, "
                        "each clause from its text alone; default: what the model was trained with)")
    p.add_argument("--compose_reserve", type=int, default=RESERVE_CODES,
                   help="with --compose: codes of the motion budget kept for each clause after the one being "
                        f"written (default {RESERVE_CODES})")
    from motiongpt.generate.inputs import add_rerank_arguments  # light: no torch

    add_rerank_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample")
    p.add_argument("--max_motion_tokens", type=int, default=None,
                   help="longest motion (codes) when the model chooses the length (default: the run's data, else 49)")
    p.add_argument("--max_text_tokens", type=int, default=48, help="longest m2t caption in tokens")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    p.add_argument("--quantize", default=None, choices=["4bit", "8bit"], help="load the base weights quantized")
    p.add_argument("--render", action="store_true", help="write <name>.gif (and .mp4 when ffmpeg is available)")
    p.add_argument("--no_mp4", action="store_true", help="with --render: GIF only")
    p.add_argument("--no_bvh", action="store_true", help="do not write <name>.bvh")
    p.add_argument("--fix_foot", action="store_true", help="remove foot skating from the joints")
    p.add_argument("--no_constraints", action="store_true", help="decode freely (for comparison)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.lora_path is None and args.merged is None:
        print("error: pass --lora_path (a fine-tuning run) or --merged (a merged model directory)", file=sys.stderr)
        return 2
    # validated before the heavy imports (torch, transformers): a bad option fails at once
    from motiongpt.generate.inputs import build_requests
    from motiongpt.generate.request import SamplingConfig, read_text_path

    try:
        sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                  num_beams=args.num_beams, seed=args.seed, max_motion_tokens=args.max_motion_tokens,
                                  max_text_tokens=args.max_text_tokens,
                                  guidance_scale=args.guidance_scale, candidates=args.candidates,
                                  rerank_uncond_weight=args.rerank_uncond_weight).validate()
        inputs = read_text_path(args.text_path) if args.text_path else ()
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from motiongpt.generate.generator import MotionGenerator
    from motiongpt.generate.io import save_results

    try:
        gen = MotionGenerator.from_checkpoint(args.lora_path, device=args.device, dtype=args.dtype,
                                              quantize=args.quantize, merged=args.merged, vq_dir=args.vq_dir)
        motion_codes = gen.encode_motion(args.motion) if args.motion else None
        requests = build_requests(
            args.task, gen.fmt, inputs=inputs, input_text=args.input, length_frames=args.motion_length,
            motion_codes=motion_codes, keys=args.keys, key_frames=args.key_frames,
            context_frames=args.context_frames, instruction=args.prompt, repeat_times=args.repeat_times,
            seed=args.seed,
        )
        if args.compose:
            if args.task != "t2m":
                raise ValueError(f"--compose applies to --task t2m, not {args.task}")
            from motiongpt.generate.compose import generate_composed

            results = generate_composed(gen, requests, sampling, batch_size=args.batch_size,
                                        constrained=not args.no_constraints, progress=args.progress,
                                        fix_foot=args.fix_foot, context_codes=args.compose_context,
                                        reserve_codes=args.compose_reserve)
        else:
            results = gen.generate(requests, sampling, batch_size=args.batch_size,
                                   constrained=not args.no_constraints, progress=args.progress, fix_foot=args.fix_foot)
        meta = {"checkpoint": gen.source, "vq_dir": gen.vq_dir, "task": args.task, "compose": args.compose,
                "compose_context": args.compose_context, "compose_reserve": args.compose_reserve,
                "sampling": dataclasses.asdict(sampling), "constrained": not args.no_constraints,
                "fix_foot": args.fix_foot, "argv": sys.argv[1:] if argv is None else list(argv)}
        path = save_results(results, args.out_dir, render=args.render, bvh=not args.no_bvh,
                            mp4=False if args.no_mp4 else None, meta=meta, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in results:
        what = f"caption {r.text!r}" if r.text is not None else f"{r.length_frames} frames"
        status = "ok" if r.ok else "problems: " + "; ".join(r.problems[:3])
        print(f"{r.name}: {r.task}, seed {r.seed}, {what} ({status})")
    print(f"{sum(r.ok for r in results)} of {len(results)} samples ok; wrote {path}")
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))

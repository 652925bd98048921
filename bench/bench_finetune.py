#!/usr/bin/env python
"""Fine-tuning throughput: our packed LoRA loop vs a plain Hugging Face ``Trainer`` + peft LoRA.

    python bench/bench_finetune.py --model tiny --steps 30 --micro_batch 16 --threads 1 \
        --workdir /tmp/bench_ft [--json out.json] [--vq VQ_DIR] [--trainers ours,hf,ours_nopack]

What is compared (both on the SAME prepared records, the same randomly initialised preset and the
same tokenizer, fp32, one process, ``torch.set_num_threads(--threads)``):

* ``ours`` — :func:`motiongpt.llm.finetune.finetune` with ``method=lora``, ``batch.packing=true``
  (``packing_attention=mask4d``: block-diagonal 4D mask, sdpa), rows of ``--max_seq_len`` (512).
* ``hf`` — ``transformers.Trainer`` on ``get_peft_model(model, <the same LoraConfig>)``, with
  ``DataCollatorForSeq2Seq`` (dynamic padding to the longest record of each batch, labels padded
  with -100), ``--micro_batch`` records per step, Trainer defaults otherwise (random sampler, no
  ``group_by_length``, ``dataloader_num_workers=0``, AdamW torch, max_grad_norm 1.0).
* ``hf_maxlen`` (optional) — the same Trainer with ``padding="max_length"`` to ``--max_seq_len``
  (the other common recipe); speed-ups are always against ``hf`` (dynamic padding).
* ``ours_nopack`` (diagnostic, optional) — our loop with ``batch.packing=false`` and the same
  ``--micro_batch`` records per step as ``hf`` (separates loop overhead from packing).

Same LoRA: the baseline's ``LoraConfig`` is built by the same function our loop uses
(``r``, ``alpha``, ``dropout``, all 7 projections, and — for the vocab format — peft
``trainable_token_indices`` on the motion-token rows), so both train exactly the same parameters.

Equal work per step: a packed micro-batch is counted in rows, not records, so ``ours`` gets
``round(micro_batch * mean_record_tokens / (max_seq_len * 0.97))`` rows per step (``--rows``
overrides): about the same number of *real* tokens per optimizer step as ``hf``'s ``micro_batch``
records. The table prints real tokens per step for each trainer so this can be checked.

Timing (fair to both): each trainer runs in its own subprocess (separate RSS peaks). Model build,
data loading, tokenizer, peft wrapping, the first ``--warmup`` optimizer steps, and the final
checkpoint / evaluation are excluded. The clock runs from the *end* of warm-up step ``W`` to the
*end* of the last step (``ours``: wrapping ``_Run.train_step``; ``hf``: ``on_step_end`` callbacks),
so everything in between counts for both: batch collation, forward, backward, clipping, optimizer,
zero_grad, the loops' own logging. Our loop's checkpoints are off until the end (``save_every=0``,
no ``eval_every``), the Trainer's too (``save_strategy=no``); logging every 10 steps for both.
Real tokens = non-padding input tokens (ours: ``collate_rows``' ``num_tokens``; hf: the sum of
``attention_mask``); padded tokens = ``input_ids.numel()`` of every micro-batch actually run.
Peak RSS = ``ru_maxrss`` of the worker process at its end (includes model build and data).

Data (cached in ``--workdir``): a synthetic HumanML3D-layout corpus
(``build_synthetic_dataset``), fake VQ codes (random ints in [0, 512), ``frames // 4`` per clip:
throughput does not depend on code values) unless ``--vq DIR`` encodes real ones, then
``generate_instruction_dataset`` (vocab and digits formats) and ``prepare_dataset`` with the
``--model`` preset's BPE tokenizer. The digits set is only used for the tokens-per-motion figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

NB_CODE = 512


# --------------------------------------------------------------------------------------------
# data


def build_data(workdir: Path, num_clips: int, model: str, vq: str | None,
               tasks: list[str] | None = None) -> dict[str, Path]:
    """Corpus + codes + instruction sets + prepared sets (vocab and digits), cached in workdir."""
    import numpy as np

    from motiongpt.data.synthetic import build_synthetic_dataset
    from motiongpt.llm.dataset_builder import InstructionDataConfig, generate_instruction_dataset
    from motiongpt.llm.prepare import PrepareConfig, prepare_dataset

    tag = f"c{num_clips}_{'vq' if vq else 'fake'}"
    root = workdir / f"corpus_{tag}"
    if tasks:
        tag += "_" + "-".join(tasks)
    if not (root / "meta.json").is_file():
        print(f"[data] synthetic corpus: {num_clips} clips -> {root}", flush=True)
        build_synthetic_dataset(root, num_clips=num_clips, seed=0, overwrite=True)
    codes = root / "VQVAE"
    if vq:
        from motiongpt.vq.prepare import encode_dataset

        encode_dataset(vq, root)
    elif not codes.is_dir():
        rng = np.random.default_rng(0)
        tmp = root / "VQVAE.tmp"
        tmp.mkdir(exist_ok=True)
        for f in sorted((root / "new_joint_vecs").glob("*.npy")):
            frames = np.load(f, mmap_mode="r").shape[0]
            np.save(tmp / f.name, rng.integers(0, NB_CODE, size=frames // 4, dtype=np.int64))
        tmp.rename(codes)
    out: dict[str, Path] = {}
    for fmt in ("vocab", "digits"):
        instr = workdir / f"instr_{tag}_{fmt}"
        if not (instr / "train.json").is_file():
            print(f"[data] instruction records ({fmt}) -> {instr}", flush=True)
            generate_instruction_dataset(InstructionDataConfig(
                data_root=str(root), out_dir=str(instr), format=fmt, vq=vq or None,
                nb_code=None if vq else NB_CODE, seed=0, splits=["train", "val"],
                **({"tasks": list(tasks)} if tasks else {})))
        prep = workdir / f"prep_{tag}_{fmt}_{model}"
        print(f"[data] prepare ({fmt}, {model} tokenizer) -> {prep}", flush=True)
        prepare_dataset(PrepareConfig(data_dir=str(instr), out_dir=str(prep), base_model=model, max_len=512,
                                      seed=0, splits=["train", "val"]))  # a no-op when cached
        out[fmt] = prep
    return out


def tokens_per_motion(prepared: dict[str, Path], n: int = 50) -> dict[str, dict[str, float]]:
    """Tokens of one wrapped 49-code motion per format (with that format's prepared tokenizer)."""
    import numpy as np
    from transformers import AutoTokenizer

    from motiongpt.llm.tokens import MotionTokenFormat, codes_to_text

    rng = np.random.default_rng(1)
    motions = [rng.integers(0, NB_CODE, size=49) for _ in range(n)]
    res = {}
    for fmt, prep in prepared.items():
        tok = AutoTokenizer.from_pretrained(str(prep / "tokenizer"), local_files_only=True)
        counts = [len(tok(codes_to_text(m, MotionTokenFormat(fmt, NB_CODE)), add_special_tokens=False)["input_ids"])
                  for m in motions]
        res[fmt] = {"mean": float(np.mean(counts)), "min": int(min(counts)), "max": int(max(counts)),
                    "vocab_size": len(tok)}
    return res


# --------------------------------------------------------------------------------------------
# workers (one per subprocess)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _lora_overrides(a: argparse.Namespace) -> list[str]:
    return [f"lora.r={a.lora_r}", f"lora.alpha={a.lora_alpha}", f"lora.dropout={a.lora_dropout}"]


def _ours_cfg(a: argparse.Namespace, packing: bool, out_dir: Path):
    from motiongpt.config import apply_overrides
    from motiongpt.llm.finetune_config import FinetuneConfig

    per = a.rows if packing else a.micro_batch
    return apply_overrides(FinetuneConfig(), [
        f"base_model={a.model}", "method=lora", "dtype=float32", "attn_implementation=sdpa",
        f"prepared={a.prepared}", f"out_dir={out_dir}", f"run_name=bench_{'pack' if packing else 'nopack'}",
        *_lora_overrides(a),
        f"batch.micro_batch_size={per}", f"batch.max_seq_len={a.max_seq_len}", f"batch.packing={str(packing).lower()}",
        "batch.packing_attention=" + a.packing_attention, "batch.gradient_accumulation_steps=1",
        f"train.max_steps={a.warmup + a.steps}", "train.save_every=0", "train.eval_every=0",
        "train.eval_max_batches=1", "train.log_every=10", "train.tensorboard=false", "train.progress_bar=false",
        "optim.lr=1e-4", "optim.warmup_steps=5",
    ])


def worker_ours(a: argparse.Namespace, packing: bool) -> dict:
    import torch

    import motiongpt.llm.finetune as ft

    torch.set_num_threads(a.threads)
    cfg = _ours_cfg(a, packing, Path(a.workdir) / "runs" / ("ours" if packing else "ours_nopack"))
    ends: list[float] = []
    real: list[int] = []
    padded: list[int] = []
    orig_step, orig_collate = ft._Run.train_step, ft.collate_rows

    def collate(*args, **kw):
        batch = orig_collate(*args, **kw)
        padded.append(int(batch["input_ids"].numel()))
        return batch

    def train_step(self, step):
        out = orig_step(self, step)
        ends.append(time.perf_counter())
        real.append(int(out[0][2]))
        return out

    ft._Run.train_step, ft.collate_rows = train_step, collate
    try:
        summary = ft.finetune(cfg, overwrite=True)
    finally:
        ft._Run.train_step, ft.collate_rows = orig_step, orig_collate
    w = a.warmup
    return {"steps": len(ends) - w, "seconds": ends[-1] - ends[w - 1], "real_tokens": sum(real[w:]),
            "padded_tokens": sum(padded[w:len(ends)]), "trainable": summary["trainable_parameters"],
            "last_loss": summary["last_loss"], "micro_batch": f"{cfg.batch.micro_batch_size} "
            + ("packed rows" if packing else "records")}


def worker_hf(a: argparse.Namespace, max_length: bool = False) -> dict:
    import torch
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    import motiongpt.llm.finetune as ft
    from motiongpt.llm.model import add_motion_tokens, load_base_model
    from motiongpt.llm.prepare import load_prepared

    torch.set_num_threads(a.threads)
    cfg = _ours_cfg(a, True, Path(a.workdir) / "runs" / "hf")
    prep = load_prepared(a.prepared, splits=("train",))
    tok, fmt = prep["tokenizer"], prep["format"]
    # the same base as our loop: seeded preset + motion rows, then the same LoraConfig
    model, tok = load_base_model(a.model, tok, method="full", seed=cfg.seed)
    ids = add_motion_tokens(tok, model, fmt, seed=cfg.motion_init_seed)
    model.config.use_cache = False
    model.set_attn_implementation("sdpa")
    mode = ft._new_token_mode(cfg, fmt, False)
    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, ft._lora_config(cfg, model, ids.all_ids(), mode))
    train = prep["train"].filter(lambda n: n <= a.max_seq_len, input_columns="length")
    train = train.map(lambda r: {"attention_mask": [1] * len(r["input_ids"])})
    train = train.select_columns(["input_ids", "attention_mask", "labels"])
    collator = DataCollatorForSeq2Seq(tok, padding="max_length" if max_length else "longest",
                                      max_length=a.max_seq_len if max_length else None, label_pad_token_id=-100)

    ends: list[float] = []
    real: list[int] = []
    padded: list[int] = []
    pending = [0, 0]

    class CountingTrainer(Trainer):  # counts tokens only; the step itself is Trainer's
        def training_step(self, model, inputs, num_items_in_batch=None):
            pending[0] += int(inputs["attention_mask"].sum())
            pending[1] += int(inputs["input_ids"].numel())
            return super().training_step(model, inputs, num_items_in_batch)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())
            real.append(pending[0])
            padded.append(pending[1])
            pending[0] = pending[1] = 0

    args = TrainingArguments(
        output_dir=str(Path(a.workdir) / "runs" / "hf"), per_device_train_batch_size=a.micro_batch,
        max_steps=a.warmup + a.steps, learning_rate=1e-4, logging_steps=10, save_strategy="no",
        report_to="none", use_cpu=True, seed=cfg.seed, disable_tqdm=True,
    )
    trainer = CountingTrainer(model=model, args=args, train_dataset=train, data_collator=collator,
                               callbacks=[Clock()])
    out = trainer.train()
    w = a.warmup
    return {"steps": len(ends) - w, "seconds": ends[-1] - ends[w - 1], "real_tokens": sum(real[w:]),
            "padded_tokens": sum(padded[w:]), "last_loss": float(out.training_loss),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "micro_batch": f"{a.micro_batch} records"}


# --------------------------------------------------------------------------------------------
# driver


def run_worker(name: str, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--_worker", name, "--prepared", str(a.prepared), "--workdir", str(a.workdir),
           "--model", a.model, "--steps", str(a.steps), "--warmup", str(a.warmup), "--micro_batch",
           str(a.micro_batch), "--rows", str(a.rows), "--threads", str(a.threads), "--max_seq_len",
           str(a.max_seq_len), "--lora_r", str(a.lora_r), "--lora_alpha", str(a.lora_alpha), "--lora_dropout",
           str(a.lora_dropout), "--packing_attention", a.packing_attention]
    print(f"[run] {name} ...", flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise RuntimeError(f"worker {name} failed (rc {proc.returncode})")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    print(f"[run] {name}: {res['seconds']:.1f} s timed, {time.time() - t0:.0f} s wall", flush=True)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["tiny", "nano"], default="tiny")
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up optimizer steps")
    p.add_argument("--micro_batch", type=int, default=16, help="records per step for hf (and ours_nopack)")
    p.add_argument("--rows", type=int, default=0, help="packed rows per step for ours (0: equal tokens)")
    p.add_argument("--max_seq_len", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num_clips", type=int, default=200)
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=float, default=32.0)
    p.add_argument("--lora_dropout", type=float, default=0.05)
    p.add_argument("--packing_attention", choices=["mask4d", "position_ids"], default="mask4d")
    p.add_argument("--trainers", default="ours,hf", help="comma list of ours, hf, ours_nopack, hf_maxlen")
    p.add_argument("--tasks", default="", help="comma list of instruction tasks (default: the builder's "
                   "default, MotionGPT-LoRA's t2m t2m_init t2m_last t2m_keys; 'all': every task)")
    p.add_argument("--vq", default=None, help="VQ-VAE checkpoint dir: real codes instead of random ones")
    p.add_argument("--workdir", default="/tmp/motiongpt_bench_finetune")
    p.add_argument("--json", default=None)
    p.add_argument("--prepared", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._worker:
        import logging

        logging.basicConfig(level=logging.WARNING)
        if a._worker.startswith("hf"):
            res = worker_hf(a, max_length=a._worker == "hf_maxlen")
        else:
            res = worker_ours(a, packing=a._worker == "ours")
        res["peak_rss_mb"] = _peak_rss_mb()
        print("RESULT " + json.dumps(res), flush=True)
        return

    import numpy as np
    import torch

    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.tasks == "all":
        from motiongpt.llm.tasks import TASKS

        tasks = list(TASKS)
    else:
        tasks = [t for t in a.tasks.split(",") if t]
    prepared = build_data(workdir, a.num_clips, a.model, a.vq, tasks or None)
    print(f"[data] ready in {time.time() - t0:.0f} s", flush=True)
    a.prepared = prepared["vocab"]
    from datasets import load_from_disk

    lengths = np.asarray(load_from_disk(str(a.prepared / "train"))["length"])
    lengths = lengths[lengths <= a.max_seq_len]
    if a.rows <= 0:
        a.rows = max(1, round(a.micro_batch * lengths.mean() / (a.max_seq_len * 0.97)))
    tpm = tokens_per_motion(prepared)

    results = {}
    for name in [t.strip() for t in a.trainers.split(",") if t.strip()]:
        r = run_worker(name, a)
        r["tokens_per_s"] = r["real_tokens"] / r["seconds"]
        results[name] = r
    base = results.get("hf", {}).get("tokens_per_s")

    print()
    print(f"model={a.model} fp32, torch threads={a.threads} (torch {torch.__version__}), "
          f"{len(lengths)} train records (tokens/record mean {lengths.mean():.1f}, p50 {np.median(lengths):.0f}, "
          f"max {lengths.max()}), tasks={a.tasks or 'default'}, {a.rows} packed rows of {a.max_seq_len}, LoRA r={a.lora_r} alpha={a.lora_alpha:g} dropout={a.lora_dropout:g}, "
          f"warm-up {a.warmup} steps untimed, machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    print()
    print("| trainer | micro-batch | steps | real tokens | padded tokens processed | real/padded | seconds "
          "| real tokens/s | peak RSS MB | speed-up vs hf |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"ours": f"ours (packed, {a.packing_attention})", "ours_nopack": "ours (no packing)",
              "hf": "HF Trainer + peft (dynamic padding)",
              "hf_maxlen": f"HF Trainer + peft (pad to {a.max_seq_len})"}
    for name, r in results.items():
        sp = f"{r['tokens_per_s'] / base:.2f}x" if base else "-"
        print(f"| {labels[name]} | {r['micro_batch']} | {r['steps']} | {r['real_tokens']} | {r['padded_tokens']} "
              f"| {r['real_tokens'] / r['padded_tokens']:.2f} | {r['seconds']:.1f} | {r['tokens_per_s']:.0f} "
              f"| {r['peak_rss_mb']:.0f} | {sp} |")
    print()
    print("| format | tokens per 49-code motion (wrapped) | tokenizer size |")
    print("|---|---:|---:|")
    for fmt, t in tpm.items():
        print(f"| {fmt} | {t['mean']:.1f} (min {t['min']}, max {t['max']}) | {t['vocab_size']} |")
    if a.json:
        out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items() if k != "_worker"},
               "results": results, "tokens_per_motion": tpm, "threads": a.threads,
               "records": int(len(lengths)), "mean_record_tokens": float(lengths.mean()),
               "load_avg": os.getloadavg(), "torch": torch.__version__}
        Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

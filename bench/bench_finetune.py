#!/usr/bin/env python
"""Fine-tuning throughput: our LoRA loop vs a plain Hugging Face ``Trainer`` + peft LoRA.

    python bench/bench_finetune.py --model tiny --tasks all --steps 30 --micro_batch 16 --threads 1 \
        --workdir /tmp/bench_ft --repeats 2 [--json out.json] [--vq VQ_DIR] \
        [--trainers ours,hf,hf_maxlen,ours_random,ours_packed]
    python bench/bench_finetune.py --model smollm2 --steps 20 --micro_batch 8 --threads 1 \
        --trainers ours,hf,ours_textenc [--text_encoder_layers 4] [--textenc_steps 250]

``--model``: a preset (``tiny``, ``nano``: randomly initialised, seeded, with a BPE tokenizer trained
on the records), a local Hugging Face model directory (its pretrained weights and its tokenizer), or
``smollm2`` (SmolLM2-135M-Instruct through :func:`motiongpt.llm.pretrained.fetch_smollm2`: the
converted directory in the cache, fetched offline if missing).

What is compared (all on the SAME prepared records, the same base model (the same seeded preset, or
the same pretrained weights) and the same tokenizer, fp32, one process each,
``torch.set_num_threads(--threads)``):

* ``ours`` — :func:`motiongpt.llm.finetune.finetune` with ``method=lora`` as it runs by default
  on CPU (LM head, cross entropy and the last block's ``o_proj`` / MLP on the supervised positions
  only, causal sdpa without a padding mask, LoRA dropout drawn sparsely), with
  ``batch.group_by_length=true``: ``--micro_batch`` records per step, batched by length inside
  shuffled mega-batches (almost no padding, attention per record).
* ``hf`` — ``transformers.Trainer`` on ``get_peft_model(model, <the same LoraConfig>)``, with
  ``DataCollatorForSeq2Seq(padding="longest")`` (dynamic padding to the longest record of each
  batch, labels padded with -100; the collator MotionGPT-LoRA / alpaca-lora use), ``--micro_batch``
  records per step, Trainer defaults otherwise (random sampler, no ``group_by_length``,
  ``dataloader_num_workers=0``, AdamW torch, max_grad_norm 1.0). Speed-ups are against this one.
* ``hf_maxlen`` — the same Trainer with ``padding="max_length"`` to ``--max_seq_len`` (the other
  common recipe).
* diagnostics (each ``ours`` with one thing changed, to attribute the speed-up):
  ``ours_random`` — random batches of ``--micro_batch`` records (the same batching as ``hf``);
  ``ours_packed`` — records packed into rows of ``--max_seq_len`` with the block-diagonal 4D mask
  (``--rows`` rows per step, default: about the same real tokens per step as ``hf``);
  ``ours_fullhead`` — full (B, L, V) logits and a full last block (``causal_lm_loss(rows_only=False)``);
  ``ours_torchdrop`` — peft's ``nn.Dropout`` instead of the sparse LoRA dropout;
  ``ours_noshare`` — ``batch.share_prefix=false`` (sharing only applies with ``--lora_dropout 0``).
* ``ours_textenc`` (only with a model directory / ``smollm2``) — NOT the same LoRA and NOT the same
  model: our loop training a *different, smaller* model on the same records, the text-conditioned
  motion generator of :mod:`motiongpt.llm.text_conditioned` (``base_model=tiny``, ``method=full``,
  ``text_encoder=<--model dir>``, ``text_encoder_layers=--text_encoder_layers``): a randomly
  initialised ``tiny`` decoder, every weight trained, whose word positions read the frozen first
  ``k`` blocks of the pretrained model (run on the words only), with an output head over the motion
  rows only; packed rows like ``ours_packed`` (``--rows``). Its tokens/s is the training cost of a
  motion generator that reads SmolLM2's states, to set beside the cost of LoRA-tuning the whole
  pretrained model (``ours``); its "vs hf" columns compare costs, not implementations. It runs
  about ten times faster than the LoRA runs: ``--textenc_steps`` gives it more timed steps.

Same LoRA (``ours*`` except ``ours_textenc``, vs ``hf*``): the baseline's ``LoraConfig`` is built by
the same function our loop uses (``r``, ``alpha``, ``dropout``, all 7 projections, and for the vocab
format peft ``trainable_token_indices`` on the motion-token rows, as our ``lora.new_tokens=auto``
resolves it: the embedding rows only for a tied head such as SmolLM2's, embedding and head rows for
an untied one, none when the base already holds trained motion rows), on the same base with the
same motion rows added (``add_motion_tokens``, the same seed), so both train exactly the same
parameters with the same hyper-parameters (lr, warm-up, AdamW, clipping).

Timing (fair to both): each trainer runs in its own subprocess (separate RSS peaks), trainers run
one after the other and the whole list ``--repeats`` times (interleaved, so load changes on a shared
machine hit every trainer). Model build, data loading, tokenizer, peft wrapping, the first
``--warmup`` optimizer steps, and the final checkpoint are excluded: the clocks run from the *end*
of warm-up step ``W`` to the *end* of the last step (``ours``: wrapping ``_Run.train_step``; ``hf``:
``on_step_end`` callbacks), so everything in between counts for both: batch collation, forward,
backward, clipping, optimizer, zero_grad, the loops' own logging (every 10 steps for both; no
checkpoints or evaluation in between). Two clocks: wall time, and the worker's CPU time
(``time.process_time``), which is what one torch thread spent computing and is far less disturbed by
other jobs on a shared machine than wall time. Real tokens = non-padding input tokens (ours:
``collate_rows``' ``num_tokens``; hf: the sum of ``attention_mask``); padded tokens =
``input_ids.numel()`` of every micro-batch run. Peak RSS = ``ru_maxrss`` of the worker at its end
(includes model build and data).

Data (cached in ``--workdir``): a synthetic HumanML3D-layout corpus (``build_synthetic_dataset``;
its clips' real lengths, 10-48 codes), fake VQ codes (random ints in [0, 512), ``frames // 4`` per
clip: throughput does not depend on code values) unless ``--vq DIR`` encodes real ones, then
``generate_instruction_dataset`` (the real builder; ``--tasks all``: all 8 tasks, default: the four
MotionGPT-LoRA t2m tasks) in the vocab and digits formats, and ``prepare_dataset`` with the
``--model``'s tokenizer (a preset: a BPE trained on the records; a directory: its own tokenizer,
``PrepareConfig(base_model=DIR)``, extended with the motion tokens). The digits set is only used for
the tokens-per-motion figure.
"""

from __future__ import annotations

import argparse
import functools
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
PRESETS = ("tiny", "nano")


def resolve_model(name: str) -> str:
    """``--model`` as the toolkit takes it: a preset name, or an absolute model directory
    (``smollm2``: :func:`motiongpt.llm.pretrained.fetch_smollm2`)."""
    if name in PRESETS:
        return name
    if name == "smollm2":
        from motiongpt.llm.pretrained import fetch_smollm2

        return str(fetch_smollm2().resolve())
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(f"--model {name!r}: not a preset ({', '.join(PRESETS)}), smollm2, or a local model "
                         "directory holding config.json")
    return str(path.resolve())


def model_tag(model: str) -> str:
    """A file-name tag of a resolved ``--model`` (the preset, or the directory's name + a path hash)."""
    if model in PRESETS:
        return model
    import hashlib

    return f"{Path(model).name}-{hashlib.sha1(model.encode()).hexdigest()[:8]}"


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
        prep = workdir / f"prep_{tag}_{fmt}_{model_tag(model)}"
        print(f"[data] prepare ({fmt}, {model_tag(model)} tokenizer) -> {prep}", flush=True)
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


def _ours_cfg(a: argparse.Namespace, variant: str, out_dir: Path):
    from motiongpt.config import apply_overrides
    from motiongpt.llm.finetune_config import FinetuneConfig

    packing = variant in ("ours_packed", "ours_textenc")
    per = a.rows if packing else a.micro_batch
    grouped = variant not in ("ours_random", "ours_packed", "ours_textenc")
    if variant == "ours_textenc":  # another model: a tiny decoder reading the frozen first k blocks of --model
        model = ["base_model=tiny", "method=full", f"text_encoder={a.model}",
                 f"text_encoder_layers={a.text_encoder_layers}"]
    else:
        model = [f"base_model={a.model}", "method=lora"]
    return apply_overrides(FinetuneConfig(), [
        *model, "dtype=float32", "attn_implementation=sdpa",
        f"prepared={a.prepared}", f"out_dir={out_dir}", f"run_name=bench_{variant}",
        *_lora_overrides(a),
        f"batch.micro_batch_size={per}", f"batch.max_seq_len={a.max_seq_len}", f"batch.packing={str(packing).lower()}",
        f"batch.group_by_length={str(grouped).lower()}", f"batch.share_prefix={str(variant != 'ours_noshare').lower()}",
        "batch.packing_attention=mask4d", "batch.gradient_accumulation_steps=1",
        f"train.max_steps={a.warmup + a.steps}", "train.save_every=0", "train.eval_every=0",
        "train.eval_max_batches=1", "train.log_every=10", "train.tensorboard=false", "train.progress_bar=false",
        "optim.lr=1e-4", "optim.warmup_steps=5",
    ])


def _timed(ends: list[tuple[float, float]], real: list[int], padded: list[int], w: int) -> dict:
    """Figures over the steps after warm-up step ``w`` (``ends``: (wall, cpu) at each step's end)."""
    return {"steps": len(ends) - w, "seconds": ends[-1][0] - ends[w - 1][0],
            "cpu_seconds": ends[-1][1] - ends[w - 1][1], "real_tokens": sum(real[w:len(ends)]),
            "padded_tokens": sum(padded[w:len(ends)])}


def worker_ours(a: argparse.Namespace, variant: str) -> dict:
    import torch

    import motiongpt.llm.finetune as ft

    torch.set_num_threads(a.threads)
    cfg = _ours_cfg(a, variant, Path(a.workdir) / "runs" / variant)
    ends: list[tuple[float, float]] = []
    real: list[int] = []
    padded: list[int] = []
    step_padded = [0]
    orig_step, orig_collate = ft._Run.train_step, ft.collate_rows

    def collate(*args, **kw):
        batch = orig_collate(*args, **kw)
        step_padded[0] += int(batch["input_ids"].numel())
        return batch

    def train_step(self, step):
        out = orig_step(self, step)
        ends.append((time.perf_counter(), time.process_time()))
        real.append(int(out[0][2]))
        padded.append(step_padded[0])
        step_padded[0] = 0
        return out

    ft._Run.train_step, ft.collate_rows = train_step, collate
    if variant == "ours_fullhead":
        ft.causal_lm_loss = functools.partial(ft.causal_lm_loss, rows_only=False)
    if variant == "ours_torchdrop":
        ft.use_sparse_dropout = lambda model: 0  # keeps peft's nn.Dropout
    try:
        summary = ft.finetune(cfg, overwrite=True)
    finally:
        ft._Run.train_step, ft.collate_rows = orig_step, orig_collate
    from motiongpt.llm.checkpoint import read_run_config

    _, resolved = read_run_config(Path(summary["out_dir"]))
    return {**_timed(ends, real, padded, a.warmup), "trainable": summary["trainable_parameters"],
            "last_loss": summary["last_loss"], "lora_dropout_impl": resolved.get("lora_dropout"),
            "shared_prefix": resolved.get("shared_prefix"),
            "micro_batch": f"{cfg.batch.micro_batch_size} " + ("packed rows" if cfg.batch.packing else "records")}


def worker_hf(a: argparse.Namespace, max_length: bool = False) -> dict:
    import torch
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    import motiongpt.llm.finetune as ft
    from motiongpt.llm.model import add_motion_tokens, load_base_model
    from motiongpt.llm.prepare import load_prepared

    torch.set_num_threads(a.threads)
    cfg = _ours_cfg(a, "ours", Path(a.workdir) / "runs" / "hf")  # seeds and LoRA settings only
    prep = load_prepared(a.prepared, splits=("train",))
    tok, fmt = prep["tokenizer"], prep["format"]
    # the same base as our loop (seeded preset, or the directory's pretrained weights) + the same
    # motion rows, then the same LoraConfig (new_tokens=auto resolved as finetune resolves it)
    if a.model in PRESETS:
        model, tok = load_base_model(a.model, tok, method="full", seed=cfg.seed)
        base_is_motiongpt = False
    else:
        model, tok = load_base_model(a.model, tok, method=cfg.method, dtype=cfg.dtype)
        base_is_motiongpt = (Path(a.model) / "motion_format.json").is_file()
    ids = add_motion_tokens(tok, model, fmt, seed=cfg.motion_init_seed)
    model.config.use_cache = False
    model.set_attn_implementation("sdpa")
    mode = ft._new_token_mode(cfg, fmt, base_is_motiongpt)
    torch.manual_seed(cfg.seed)
    model = get_peft_model(model, ft._lora_config(cfg, model, ids.all_ids(), mode))
    train = prep["train"].filter(lambda n: n <= a.max_seq_len, input_columns="length")
    train = train.map(lambda r: {"attention_mask": [1] * len(r["input_ids"])})
    train = train.select_columns(["input_ids", "attention_mask", "labels"])
    collator = DataCollatorForSeq2Seq(tok, padding="max_length" if max_length else "longest",
                                      max_length=a.max_seq_len if max_length else None, label_pad_token_id=-100)

    ends: list[tuple[float, float]] = []
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
            ends.append((time.perf_counter(), time.process_time()))
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
    return {**_timed(ends, real, padded, a.warmup), "last_loss": float(out.training_loss),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "new_tokens": mode, "micro_batch": f"{a.micro_batch} records"}


# --------------------------------------------------------------------------------------------
# driver


def run_worker(name: str, a: argparse.Namespace) -> dict:
    steps = a.textenc_steps if name == "ours_textenc" and a.textenc_steps else a.steps
    cmd = [sys.executable, __file__, "--_worker", name, "--prepared", str(a.prepared), "--workdir", str(a.workdir),
           "--model", a.model, "--steps", str(steps), "--warmup", str(a.warmup), "--micro_batch",
           str(a.micro_batch), "--rows", str(a.rows), "--threads", str(a.threads), "--max_seq_len",
           str(a.max_seq_len), "--lora_r", str(a.lora_r), "--lora_alpha", str(a.lora_alpha), "--lora_dropout",
           str(a.lora_dropout), "--text_encoder_layers", str(a.text_encoder_layers)]
    print(f"[run] {name} ...", flush=True)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise RuntimeError(f"worker {name} failed (rc {proc.returncode})")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    res["tokens_per_s"] = res["real_tokens"] / res["seconds"]
    res["tokens_per_cpu_s"] = res["real_tokens"] / res["cpu_seconds"]
    res["load_avg"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(f"[run] {name}: {res['seconds']:.1f} s timed ({res['cpu_seconds']:.1f} s CPU), "
          f"{res['tokens_per_s']:.0f} real tokens/s, {time.time() - t0:.0f} s wall", flush=True)
    return res


LABELS = {
    "ours": "ours (LoRA, length-grouped batches)",
    "ours_random": "ours (random batches, as hf)",
    "ours_packed": "ours (packed rows, block-diagonal 4D mask)",
    "ours_fullhead": "ours (full logits and last block)",
    "ours_torchdrop": "ours (peft nn.Dropout)",
    "ours_noshare": "ours (no prefix sharing)",
    "ours_textenc": "ours, other model: tiny decoder (full) + frozen first K blocks (packed rows)",
    "hf": "HF Trainer + peft (dynamic padding)",
    "hf_maxlen": "HF Trainer + peft (pad to max_seq_len)",
}


def print_table(results: dict[str, dict], max_seq_len: int, text_encoder_layers: int = 4) -> None:
    base = results.get("hf")
    print("| trainer | micro-batch | steps | real tokens | padded tokens | real/padded | seconds (CPU) "
          "| real tokens/s | per CPU s | peak RSS MB | vs hf (wall) | vs hf (CPU) | trainable params |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        sp = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        spc = f"{r['tokens_per_cpu_s'] / base['tokens_per_cpu_s']:.2f}x" if base else "-"
        label = LABELS[name].replace("max_seq_len", str(max_seq_len)).replace("first K", f"first {text_encoder_layers}")
        print(f"| {label} | {r['micro_batch']} | {r['steps']} | {r['real_tokens']} | {r['padded_tokens']} "
              f"| {r['real_tokens'] / r['padded_tokens']:.2f} | {r['seconds']:.1f} ({r['cpu_seconds']:.1f}) "
              f"| {r['tokens_per_s']:.0f} | {r['tokens_per_cpu_s']:.0f} | {r['peak_rss_mb']:.0f} | {sp} | {spc} "
              f"| {r['trainable']:,} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny", help="tiny or nano (random presets), smollm2 (SmolLM2-135M-Instruct "
                   "via fetch_smollm2), or a local Hugging Face model directory")
    p.add_argument("--text_encoder_layers", type=int, default=4,
                   help="ours_textenc: blocks of the --model directory the text encoder keeps (its first ones)")
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps (after --warmup)")
    p.add_argument("--textenc_steps", type=int, default=0,
                   help="timed steps of ours_textenc (0: --steps; it runs ~10x faster than the LoRA runs)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up optimizer steps")
    p.add_argument("--micro_batch", type=int, default=16, help="records per step (hf, ours, ours_random)")
    p.add_argument("--rows", type=int, default=0, help="packed rows per step for ours_packed (0: equal tokens)")
    p.add_argument("--max_seq_len", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num_clips", type=int, default=200)
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--lora_alpha", type=float, default=32.0)
    p.add_argument("--lora_dropout", type=float, default=0.05)
    p.add_argument("--trainers", default="ours,hf,hf_maxlen",
                   help="comma list of ours, hf, hf_maxlen and the diagnostics ours_random, ours_packed, "
                   "ours_fullhead, ours_torchdrop, ours_noshare; with a model directory also ours_textenc "
                   "(another, smaller model: see the docstring)")
    p.add_argument("--repeats", type=int, default=1, help="run the trainer list this many times (interleaved)")
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
            res = worker_ours(a, a._worker)
        res["peak_rss_mb"] = _peak_rss_mb()
        print("RESULT " + json.dumps(res), flush=True)
        return

    import numpy as np
    import torch

    names = [t.strip() for t in a.trainers.split(",") if t.strip()]
    unknown = sorted(set(names) - set(LABELS))
    if unknown:
        p.error(f"unknown trainer(s) {unknown}; known: {sorted(LABELS)}")
    try:
        a.model = resolve_model(a.model)
    except ValueError as e:
        p.error(str(e))
    if "ours_textenc" in names and a.model in PRESETS:
        p.error("ours_textenc needs a pretrained model directory (--model smollm2 or DIR) as its text encoder")
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if a.tasks == "all":
        from motiongpt.llm.templates import TASKS

        tasks = list(TASKS)
    else:
        tasks = [t for t in a.tasks.split(",") if t]
    prepared = build_data(workdir, a.num_clips, a.model, a.vq, tasks or None)
    print(f"[data] ready in {time.time() - t0:.0f} s", flush=True)
    a.prepared = prepared["vocab"]
    from datasets import load_from_disk

    train = load_from_disk(str(a.prepared / "train"))
    lengths = np.asarray(train["length"])
    keep = lengths <= a.max_seq_len
    lengths = lengths[keep]
    supervised = np.array([sum(1 for x in lab[1:] if x != -100) for lab in train["labels"]])[keep]
    task_counts = dict(zip(*np.unique(np.asarray(train["task"])[keep], return_counts=True))) \
        if "task" in train.column_names else {}
    if a.rows <= 0:
        a.rows = max(1, round(a.micro_batch * lengths.mean() / (a.max_seq_len * 0.97)))
    tpm = tokens_per_motion(prepared)

    runs: list[dict[str, dict]] = []
    for rep in range(a.repeats):
        results = {}
        for name in names:
            results[name] = run_worker(name, a)
        runs.append(results)

    print()
    print(f"model={a.model} fp32, torch threads={a.threads} (torch {torch.__version__}), {len(lengths)} train "
          f"records (tokens/record mean {lengths.mean():.1f}, p10 {np.percentile(lengths, 10):.0f}, "
          f"p50 {np.median(lengths):.0f}, p90 {np.percentile(lengths, 90):.0f}, max {lengths.max()}; "
          f"supervised {supervised.sum() / lengths.sum():.0%} of tokens), tasks={a.tasks or 'default'} "
          f"{ {str(k): int(v) for k, v in task_counts.items()} }, LoRA r={a.lora_r} alpha={a.lora_alpha:g} "
          f"dropout={a.lora_dropout:g}, "
          + (f"ours_textenc: tiny decoder + first {a.text_encoder_layers} blocks of the model, "
             if "ours_textenc" in names else "")
          + f"warm-up {a.warmup} steps untimed, machine: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus")
    for rep, results in enumerate(runs):
        loads = [x for r in results.values() for x in r["load_avg"]]
        print()
        print(f"run {rep + 1} of {a.repeats} (load average {min(loads):.2f}-{max(loads):.2f})")
        print()
        print_table(results, a.max_seq_len, a.text_encoder_layers)
    print()
    print("| format | tokens per 49-code motion (wrapped) | tokenizer size |")
    print("|---|---:|---:|")
    for fmt, t in tpm.items():
        print(f"| {fmt} | {t['mean']:.1f} (min {t['min']}, max {t['max']}) | {t['vocab_size']} |")
    if a.json:
        out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items() if k != "_worker"},
               "runs": runs, "tokens_per_motion": tpm, "threads": a.threads,
               "records": int(len(lengths)), "mean_record_tokens": float(lengths.mean()),
               "supervised_fraction": float(supervised.sum() / lengths.sum()),
               "torch": torch.__version__}
        from motiongpt.utils.atomic import atomic_write_text

        atomic_write_text(Path(a.json), json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

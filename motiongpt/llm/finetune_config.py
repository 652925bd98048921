"""The fine-tuning config (:class:`FinetuneConfig`): pure Python, so the CLI's ``--help`` is instant.

Loaded from YAML (``configs/tiny_demo.yaml``, ``configs/llama2_7b_lora.yaml``, ...) with ``key=value``
overrides through :func:`motiongpt.config.load_config`; dotted keys reach the nested sections
(``optim.lr=1e-4``, ``lora.r=16``, ``batch.packing=true``). Every run saves the resolved config
(plus provenance) as ``run_config.yaml`` in each checkpoint and in the output directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from motiongpt.config import ConfigError

__all__ = [
    "LoraSection",
    "OptimSection",
    "BatchSection",
    "TrainSection",
    "FinetuneConfig",
    "DEFAULT_TARGET_MODULES",
    "check_finetune_config",
    "resolve_out_dir",
]

DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
"""Every attention and MLP projection of a LLaMA-family decoder block (QLoRA-paper style)."""


@dataclass
class LoraSection:
    """Adapter settings (methods ``lora``, ``qlora``, ``8bit``; ignored by ``full``)."""

    r: int = 16
    """LoRA rank."""
    alpha: float = 32.0
    """LoRA scaling numerator: the update is scaled by ``alpha / r``."""
    dropout: float = 0.05
    """Dropout on the LoRA input path (0 disables it)."""
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    """Module-name suffixes that get adapters; default: all attention + MLP projections."""
    bias: Literal["none", "all", "lora_only"] = "none"
    """Which biases are trained (LLaMA has none)."""
    new_tokens: Literal["auto", "trainable_tokens", "modules_to_save", "none"] = "auto"
    """How the motion-token embedding rows are trained next to the adapters.

    ``trainable_tokens``: peft ``trainable_token_indices`` on exactly the motion-token ids (the
    wrappers and every ``<motion_id_K>``): only those rows train and only those rows are saved
    with the adapter; tied LM heads follow. ``modules_to_save``: full trainable copies of
    ``embed_tokens`` and ``lm_head`` (saved whole; weight tying kept). ``none``: embeddings frozen.
    ``auto``: ``trainable_tokens`` for the ``vocab`` format unless the base model is itself a
    motiongpt fine-tune (its directory holds ``motion_format.json``: the rows are trained already),
    else ``none`` (the ``digits`` format adds no vocabulary worth training)."""
    extra_modules_to_save: list[str] = field(default_factory=list)
    """Further module names to train in full and save with the adapter (e.g. ``norm``)."""


@dataclass
class OptimSection:
    """AdamW and the learning-rate schedule (a pure function of the optimizer step)."""

    lr: float = 1e-3
    """Peak learning rate (after warm-up)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay, applied to matrices only (never to norms or biases)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up: cosine or linear down to ``min_lr_ratio * lr``, or constant."""
    warmup_steps: int = 50
    """Linear warm-up steps from ``lr / warmup_steps`` up to ``lr``."""
    min_lr_ratio: float = 0.1
    """Floor of the decay as a fraction of ``lr``."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""


@dataclass
class BatchSection:
    """How records become micro-batches."""

    micro_batch_size: int = 16
    """Records per micro-batch (packed rows per micro-batch with packing). 0: no record limit
    (then ``micro_batch_tokens`` must be set)."""
    micro_batch_tokens: int = 0
    """Token budget per micro-batch, counted as padded ``rows x row length`` (with packing:
    ``rows x max_seq_len``). 0: no token limit. With both limits a batch stops at the first hit."""
    gradient_accumulation_steps: int = 1
    """Micro-batches per optimizer step and process (accelerate's gradient accumulation)."""
    max_seq_len: int = 512
    """Longest sequence: records longer than this are dropped (and counted); packed row length."""
    packing: bool = False
    """Pack several records into each ``max_seq_len`` row (no cross-attention between them)."""
    packing_attention: Literal["mask4d", "position_ids"] = "mask4d"
    """How packed records are kept apart. ``mask4d``: an explicit block-diagonal causal mask
    ``(B, 1, L, L)`` (eager and sdpa attention). ``position_ids``: no mask, position ids that
    restart per record; transformers derives the same block-diagonal mask from them (also the
    path flash-attention uses). Both are tested equal to running each record alone."""
    share_prefix: bool = True
    """Run the prompt prefix that all records of an unpacked micro-batch share (the instruction
    template: ~1/3 of a motion record's tokens) once per micro-batch and give every record its
    keys / values, instead of once per record. Exact (same loss and gradients to float rounding),
    so it only applies where it is: no dropout anywhere (``lora.dropout=0``), a LLaMA-family model,
    one process without DeepSpeed, no gradient checkpointing; otherwise ignored."""
    group_by_length: bool = False
    """Without packing: batch records of similar length together (less padding), batch order shuffled.
    On CPU the fastest batching measured (``BENCHMARKS.md``): ~1 % padding, attention per record."""
    shuffle: bool = True
    """Shuffle the records every epoch (seeded: ``seed`` + epoch)."""


@dataclass
class TrainSection:
    """Length of the run, evaluation, checkpoints and logging."""

    max_steps: int = 0
    """Optimizer steps in total; 0: derived from ``epochs``."""
    epochs: float = 3.0
    """Passes over the training set (used when ``max_steps`` is 0; fractions allowed)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30 % more compute)."""
    eval_every: int = 200
    """Validation loss on ``<prepared>/val`` every this many steps and at the end (0: only at the end;
    nothing when there is no val split)."""
    eval_max_batches: int = 0
    """Validation micro-batches per evaluation (0: the whole val split)."""
    save_every: int = 500
    """Write ``checkpoint-<step>/`` every this many steps (0: only at the end, which always saves)."""
    keep_last_n: int = 2
    """Checkpoints kept on disk (older ones are deleted after a newer one is complete; 0: keep all)."""
    log_every: int = 10
    """Log training loss / lr / tokens per second every this many steps."""
    tensorboard: bool = True
    """Also write TensorBoard scalars (``<out_dir>/tb``) next to ``metrics.jsonl``."""
    progress_bar: bool = True
    """Show a tqdm bar (loss, lr, tokens/s) on the main process."""


@dataclass
class FinetuneConfig:
    """Everything that defines a fine-tuning run (saved as ``run_config.yaml``).

    The defaults are stage 1 of the embedded tiny demo (``configs/tiny_demo.yaml``, kept equal by a
    test): a ``full`` fine-tune of the randomly initialised ``tiny`` preset on the instruction data
    (motion-language pretraining). Stage 2 (``configs/tiny_demo_lora.yaml``) trains LoRA adapters on
    top, with stage 1's output directory as ``base_model``. Real models: ``configs/*_lora.yaml``,
    ``configs/*_qlora.yaml``.
    """

    run_name: str = "tiny_demo_full"
    """Name of the run; the default output directory is ``lora/<run_name>``."""
    base_model: str = "tiny"
    """``tiny`` / ``nano`` (a randomly initialised preset), a local Hugging Face model directory, or
    the output directory of a previous ``full`` fine-tune (two-stage recipes). Never a hub id:
    this toolkit runs offline."""
    preset_overrides: list[str] = field(default_factory=list)
    """``key=value`` changes of the preset architecture (``hidden_size=128``); presets only."""
    text_encoder: str = ""
    """With a preset ``base_model`` and ``method: full``: a local pretrained causal LM directory
    (LLaMA family) whose first ``text_encoder_layers`` blocks, frozen, read the prompt's words for
    the preset decoder (:mod:`motiongpt.llm.text_conditioned`); the data must be prepared with that
    model's tokenizer (``prepare_motion.py --base_model DIR``). Empty: the preset reads its own
    token embeddings."""
    text_encoder_layers: int = 4
    """Blocks of ``text_encoder`` kept (its first ones)."""
    prepared: str = ""
    """Prepared dataset directory (``motiongpt.llm.prepare.prepare_dataset`` output: ``train/``, ``val/``,
    ``tokenizer/``, ``motion_format.json``, ``prepare_config.yaml``)."""
    vq_dir: str = ""
    """VQ-VAE directory the motion codes came from; recorded for the generation / eval tools."""
    out_dir: str = ""
    """Output directory; empty: ``lora/<run_name>``."""
    method: Literal["lora", "qlora", "8bit", "full"] = "full"
    """``lora`` (frozen base + adapters), ``qlora`` (4-bit NF4 base + adapters), ``8bit``
    (LLM.int8 base + adapters) or ``full`` (every weight trained)."""
    dtype: str = "auto"
    """Weights / compute dtype (``auto``: fp32 on CPU, bf16 on GPUs that support it); resolved by
    ``motiongpt.llm.model.resolve_precision`` only."""
    attn_implementation: str = "sdpa"
    """Attention kernel passed to transformers: ``sdpa``, ``eager`` or ``flash_attention_2``
    (the latter needs ``batch.packing_attention=position_ids`` with packing)."""
    seed: int = 0
    """Seed of the preset weights, the adapter init, data order and dropout."""
    motion_init_seed: int = 0
    """Seed of the initial embedding rows of motion tokens added to a base model's vocabulary."""
    lora: LoraSection = field(default_factory=LoraSection)
    """Adapter settings."""
    optim: OptimSection = field(default_factory=OptimSection)
    """Optimizer and schedule."""
    batch: BatchSection = field(default_factory=BatchSection)
    """Micro-batching, packing and accumulation."""
    train: TrainSection = field(default_factory=TrainSection)
    """Run length, evaluation, checkpoints, logging."""


def resolve_out_dir(cfg: FinetuneConfig) -> Path:
    """``cfg.out_dir``, or ``lora/<run_name>`` when empty."""
    return Path(cfg.out_dir) if cfg.out_dir else Path("lora") / cfg.run_name


def check_finetune_config(cfg: FinetuneConfig) -> FinetuneConfig:
    """Validate ranges the type system cannot express; raises ``ConfigError`` naming the field."""
    b, o, t, lo = cfg.batch, cfg.optim, cfg.train, cfg.lora
    if not cfg.base_model:
        raise ConfigError("base_model is empty: use tiny, nano or a local model directory")
    if not cfg.prepared:
        raise ConfigError("prepared is empty: pass the prepared dataset directory (--prepared DIR)")
    if not cfg.run_name or "/" in cfg.run_name:
        raise ConfigError(f"run_name must be a non-empty name without '/', got {cfg.run_name!r}")
    checks = {
        "batch.micro_batch_size": b.micro_batch_size >= 0,
        "batch.micro_batch_tokens": b.micro_batch_tokens >= 0,
        "batch.gradient_accumulation_steps": b.gradient_accumulation_steps >= 1,
        "batch.max_seq_len": b.max_seq_len >= 2,
        "optim.lr": o.lr > 0,
        "optim.weight_decay": o.weight_decay >= 0,
        "optim.eps": o.eps > 0,
        "optim.warmup_steps": o.warmup_steps >= 0,
        "optim.min_lr_ratio": 0.0 <= o.min_lr_ratio <= 1.0,
        "optim.max_grad_norm": o.max_grad_norm >= 0,
        "train.max_steps": t.max_steps >= 0,
        "train.epochs": t.epochs > 0,
        "train.eval_every": t.eval_every >= 0,
        "train.eval_max_batches": t.eval_max_batches >= 0,
        "train.save_every": t.save_every >= 0,
        "train.keep_last_n": t.keep_last_n >= 0,
        "train.log_every": t.log_every >= 1,
        "lora.r": lo.r >= 1,
        "lora.alpha": lo.alpha > 0,
        "lora.dropout": 0.0 <= lo.dropout < 1.0,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        from motiongpt.config import config_to_dict

        d = config_to_dict(cfg)
        vals = []
        for k in bad:
            sec, name = k.split(".")
            vals.append(f"{k}={d[sec][name]!r}")
        raise ConfigError("out-of-range value(s): " + ", ".join(vals))
    if b.micro_batch_size == 0 and b.micro_batch_tokens == 0:
        raise ConfigError("batch.micro_batch_size and batch.micro_batch_tokens are both 0: set one of them")
    if b.packing and b.micro_batch_tokens and b.micro_batch_tokens < b.max_seq_len:
        raise ConfigError(
            f"batch.micro_batch_tokens={b.micro_batch_tokens} is below one packed row "
            f"(batch.max_seq_len={b.max_seq_len})"
        )
    if cfg.text_encoder and (cfg.base_model not in ("tiny", "nano") or cfg.method != "full"):
        raise ConfigError("text_encoder needs a preset base_model (tiny, nano) and method full: it builds a "
                          f"new decoder (got base_model={cfg.base_model!r}, method={cfg.method!r}); LoRA on "
                          "its output directory is a second stage")
    if cfg.text_encoder_layers < 1:
        raise ConfigError(f"text_encoder_layers must be >= 1, got {cfg.text_encoder_layers}")
    if not lo.target_modules and cfg.method != "full":
        raise ConfigError("lora.target_modules is empty")
    if b.packing and b.packing_attention == "mask4d" and cfg.attn_implementation.startswith("flash"):
        raise ConfigError(
            "flash attention cannot take a 4D mask: use batch.packing_attention=position_ids with packing"
        )
    return cfg

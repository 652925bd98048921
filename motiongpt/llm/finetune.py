"""Fine-tune a causal LM on a prepared motion-instruction dataset: LoRA, QLoRA, 8-bit or full.

An explicit training loop on ``accelerate`` (no HF Trainer): the same code runs on one CPU, one
GPU, DDP over several GPUs, and DeepSpeed ZeRO-2/3 — chosen by how the script is launched::

    python finetune_motion.py --config configs/tiny_demo.yaml --prepared outputs/prep
    accelerate launch --config_file accelerate_config.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml finetune_motion.py --config ...
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml finetune_motion.py --config ...
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 finetune_motion.py --config ...   # 2-process DP on CPU

What the loop does, and why:

* **Loss** — token-level cross entropy summed over every loss token of an optimizer step, divided
  by the number of such tokens across all micro-batches and processes (known up front, because the
  epoch plan is the same on every process). So the gradient is the same however the step is split
  into micro-batches and processes (DP with 2 processes == 1 process with 2 accumulation steps).
* **Batches** — an epoch plan (:func:`motiongpt.llm.packing.plan_epoch`) of micro-batches, with
  dynamic padding or packing; optimizer step ``s`` on process ``r`` takes micro-batches
  ``plan[(s * GA + j) * W + r]`` for ``j < GA``: different batches on every process, and a
  position that is a pure function of the step.
* **Learning rate** — a pure function of the step (:func:`lr_at`), written into the optimizer's
  param groups before each step: nothing to save or restore, identical under DeepSpeed.
* **Exact resume** — a checkpoint holds the weights (adapter or full), the optimizer state
  (pickle-free, :mod:`motiongpt.utils.train_state`), every process's RNG state and the step;
  ``N steps + resume + N steps`` equals ``2N`` steps (tested to 1e-6). Under DeepSpeed the optimizer
  state lives in DeepSpeed's partitions, which DeepSpeed only saves with pickles; with one process
  the trainer reads the fp32 master partitions and their Adam moments out of the ZeRO-1/2/3
  optimizer itself and saves them with safetensors (:func:`save_zero_optimizer`), restored after
  ``accelerator.prepare`` (resume == uninterrupted under ZeRO-2, tested). With several DeepSpeed
  processes (each holds only its own partition) checkpoints hold weights + RNG + step, and a resume
  restarts the optimizer moments (with a warning).
* **Speed** (CPU figures in ``BENCHMARKS.md``) — exact shortcuts only: the LM head, the cross
  entropy and the last block's ``o_proj`` / MLP run on the supervised positions only
  (:func:`causal_lm_loss`); unpacked right-padded batches go to the model without a padding mask
  (causal attention never lets a real token see the padding after it); on CPU, LoRA dropout draws
  only the dropped positions (:class:`SparseDropout`, the same distribution as ``nn.Dropout``);
  without any dropout, the prompt prefix all rows of a batch share (the instruction template) runs
  once per micro-batch (``batch.share_prefix``). ``batch.group_by_length`` removes most padding.
* **Outputs** — see :mod:`motiongpt.llm.checkpoint` for the directory layout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from motiongpt.config import ConfigError, atomic_write_text, config_to_dict
from motiongpt.llm.checkpoint import (
    BASE_MODEL_DIR,
    LATEST_FILE,
    SUMMARY_FILE,
    TRAIN_STATE_FILE,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    publish_model_files,
    read_run_config,
    write_latest,
    write_run_config,
)
from motiongpt.llm.finetune_config import (
    DEFAULT_TARGET_MODULES,
    BatchSection,
    FinetuneConfig,
    LoraSection,
    OptimSection,
    TrainSection,
    check_finetune_config,
    resolve_out_dir,
)
from motiongpt.llm.packing import IGNORE_INDEX, TokenizedRecords, attention_inputs, collate_rows, plan_epoch
from motiongpt.utils.atomic import atomic_directory, remove_stale_temps

__all__ = [
    "FinetuneConfig",
    "LoraSection",
    "OptimSection",
    "BatchSection",
    "TrainSection",
    "DEFAULT_TARGET_MODULES",
    "PreparedData",
    "load_training_data",
    "lr_at",
    "causal_lm_loss",
    "head_on_rows",
    "tail_on_rows",
    "last_block_tail",
    "shared_prefix_length",
    "prefix_sharing_allowed",
    "SparseDropout",
    "dropped_positions",
    "use_sparse_dropout",
    "save_zero_optimizer",
    "load_zero_optimizer",
    "finetune",
    "process_state",
]

log = logging.getLogger(__name__)

# Fields that only change bookkeeping (or the length of the run): a resumed run may change them.
# Anything else would make the resumed run a different experiment than the checkpoint's.
_RESUMABLE_CHANGES = {
    "run_name", "out_dir", "prepared", "vq_dir",
    "train.max_steps", "train.epochs", "train.eval_every", "train.eval_max_batches", "train.save_every",
    "train.keep_last_n", "train.log_every", "train.tensorboard", "train.progress_bar",
    "batch.share_prefix",  # a speed switch: the same numbers to float rounding
}


# --------------------------------------------------------------------------------------------
# data


@dataclass
class PreparedData:
    """A prepared dataset directory, opened for training."""

    root: Path
    """The prepared directory."""
    train: TokenizedRecords
    """Training records (those longer than ``batch.max_seq_len`` dropped)."""
    val: TokenizedRecords | None
    """Validation records, or None without a ``val/`` split."""
    tokenizer: Any
    """The tokenizer the records were made with (motion tokens included)."""
    fmt: Any
    """The :class:`~motiongpt.llm.tokens.MotionTokenFormat` of the records."""
    prepare_config: dict[str, Any]
    """``prepare_config.yaml`` as a dict (template, train_on_prompt, base model, ...)."""
    dropped: dict[str, int]
    """Records dropped per split for being longer than ``batch.max_seq_len``."""
    instruction: dict[str, Any] = field(default_factory=dict)
    """The instruction builder's settings the records were made with
    (:func:`motiongpt.llm.prepare.instruction_settings`)."""


def load_training_data(prepared: str | os.PathLike, max_seq_len: int) -> PreparedData:
    """Open a prepared dataset (:func:`motiongpt.llm.prepare.load_prepared`) for training.

    The splits become :class:`~motiongpt.llm.packing.TokenizedRecords`; records longer than
    ``max_seq_len`` are dropped and counted (``dropped``); ``val`` is None without a ``val/`` split.
    """
    from motiongpt.llm.prepare import load_prepared

    root = Path(prepared)
    if not (root / "train").is_dir():
        raise FileNotFoundError(
            f"{root} is not a prepared dataset (no train/ split); build one with motiongpt.llm.prepare"
        )
    prep = load_prepared(root)
    tok = prep["tokenizer"]
    dropped: dict[str, int] = {}
    train, dropped["train"] = TokenizedRecords.from_dataset(prep["train"]).drop_longer_than(max_seq_len)
    if len(train) == 0:
        raise ValueError(f"every training record of {root} is longer than batch.max_seq_len={max_seq_len}")
    val = None
    if "val" in prep and len(prep["val"]):
        val, dropped["val"] = TokenizedRecords.from_dataset(prep["val"]).drop_longer_than(max_seq_len)
        if len(val) == 0:
            val = None
    top = max(int(train.ids.max()), int(val.ids.max()) if val is not None else 0)
    if top >= len(tok):
        raise ValueError(f"{root}: token id {top} is outside the prepared tokenizer ({len(tok)} ids)")
    return PreparedData(root, train, val, tok, prep["format"], prep["config"] or {}, dropped,
                        prep.get("instruction") or {})


# --------------------------------------------------------------------------------------------
# schedule


def lr_at(step: int, total_steps: int, optim: OptimSection) -> float:
    """Learning rate of 0-based optimizer step ``step`` out of ``total_steps``.

    Linear warm-up ``lr * (step + 1) / warmup_steps``, then ``cosine`` / ``linear`` decay from
    ``lr`` to ``min_lr_ratio * lr`` at the last step, or ``constant``.
    """
    w = optim.warmup_steps
    if w > 0 and step < w:
        return optim.lr * (step + 1) / w
    if optim.schedule == "constant":
        return optim.lr
    span = max(1, total_steps - w - 1)
    progress = min(1.0, max(0.0, (step - w) / span))
    floor = optim.min_lr_ratio
    if optim.schedule == "cosine":
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        factor = floor + (1.0 - floor) * (1.0 - progress)
    return optim.lr * factor


# --------------------------------------------------------------------------------------------
# loss on the supervised positions only


@contextlib.contextmanager
def head_on_rows(head: torch.nn.Module, keep: torch.Tensor) -> Iterator[list[int]]:
    """While active, ``head`` (the model's LM head module) sees only the hidden states at ``keep``.

    ``keep`` is a (B, L) bool tensor; a forward pre-hook turns the head's input (B, L, H) into
    (N, H), N = ``keep.sum()``, so the model returns (N, V) logits. The hook goes on the module
    itself and the module is *called* (never its weight read directly), so it composes with peft's
    ``ModulesToSaveWrapper`` / ``TrainableTokensWrapper`` around the head and with DeepSpeed ZeRO-3's
    parameter-gathering hooks. Yields a one-element list counting the head's calls (the caller
    checks it was exactly one).
    """
    calls = [0]

    def select(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if not args or args[0].shape[:2] != keep.shape:
            raise RuntimeError(
                f"the LM head {type(module).__name__} was not called with the (B, L, H) hidden states of the "
                f"batch {tuple(keep.shape)} as its first argument; cannot select the supervised positions"
            )
        calls[0] += 1
        return (args[0][keep],) + tuple(args[1:]), kwargs  # (B, L, H) -> (N, H)

    handle = head.register_forward_pre_hook(select, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


@contextlib.contextmanager
def tail_on_rows(module: torch.nn.Module, keep: torch.Tensor) -> Iterator[list[int]]:
    """While active, ``module``, a position-wise part of the *last* decoder block whose output is
    added to the residual stream (its ``mlp``, its attention output projection), runs on the rows at
    ``keep`` only; its output is scattered back into zeros (B, L, H).

    Why this is exact where it is used: after the last block, a position's hidden state only feeds
    the final norm (position-wise) and the LM head, which :func:`head_on_rows` restricts to the same
    positions; so these modules' outputs at any other position are never read, and the residual
    stream there may as well lack them. Loss and gradients are unchanged (tested). Never for blocks
    whose outputs feed later attention (any block but the last). Yields the call counter.
    """
    calls = [0]

    def select(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if not args or args[0].shape[:2] != keep.shape:
            raise RuntimeError(f"the last block's {type(module).__name__} got an unexpected input; "
                               "cannot restrict it to the supervised positions")
        calls[0] += 1
        return (args[0][keep],) + tuple(args[1:]), kwargs  # (B, L, H) -> (N, H)

    def scatter(module: torch.nn.Module, args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
        if not torch.is_tensor(out) or out.dim() != 2:
            raise RuntimeError(f"the last block's {type(module).__name__} does not return one (N, H) tensor")
        full = out.new_zeros(tuple(keep.shape) + (out.shape[-1],))  # (B, L, H)
        full[keep] = out  # the same row order as args[0][keep]
        return full

    handles = [module.register_forward_pre_hook(select, with_kwargs=True),
               module.register_forward_hook(scatter, with_kwargs=True)]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


POSITIONWISE_TAIL_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "motiongpt_text_llama")
"""Architectures whose decoder block is ``h = h + self_attn.o_proj(attn(norm(h)))`` then
``h = h + mlp(norm(h))`` with a dense position-wise ``mlp``: :func:`tail_on_rows` may restrict
the last block's ``o_proj`` and ``mlp`` to the supervised positions."""


def last_block_tail(model: Any) -> list[torch.nn.Module]:
    """The attention output projection and the ``mlp`` of the last decoder block of a LLaMA-family
    causal LM (peft-wrapped or not; the modules peft put in place), or ``[]`` for other
    architectures (they get the LM-head restriction only)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(getattr(base, "config", None), "model_type", None) not in POSITIONWISE_TAIL_MODEL_TYPES:
        return []
    layers = getattr(base.get_decoder(), "layers", None) if hasattr(base, "get_decoder") else None
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return []
    last = layers[-1]
    found = [getattr(getattr(last, "self_attn", None), "o_proj", None), getattr(last, "mlp", None)]
    return [m for m in found if isinstance(m, torch.nn.Module)]


PREFIX_SHARING_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
"""Decoder-only architectures whose positions interact only through attention over a standard
``DynamicCache`` (full attention: a sliding window shorter than the rows disables sharing)."""

MIN_SHARED_PREFIX = 8
"""Shorter common prefixes are not worth a second forward call."""


def shared_prefix_length(input_ids: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                         min_len: int = MIN_SHARED_PREFIX) -> int:
    """Length P of the prompt prefix that every row of an unpacked batch shares and on which no
    row has a loss target, leaving each row at least one token of its own; 0 when below ``min_len``.

    ``input_ids`` / ``targets`` (B, L) as :func:`motiongpt.llm.packing.collate_rows` makes them
    (right-padded, per-record targets), ``lengths`` (B,) real tokens per row. Instruction records
    start with the same template text (BOS + Alpaca's preamble: 41 tokens with the tiny BPE tokenizer,
    a third of a motion record).
    """
    if input_ids.shape[0] < 2:
        return 0
    differ = (input_ids != input_ids[:1]).any(0).nonzero()  # (k, 1) columns where some row differs
    supervised = (targets != IGNORE_INDEX).any(0).nonzero()  # (m, 1) columns with a target in some row
    p = min(int(differ[0, 0]) if len(differ) else input_ids.shape[1],
            int(supervised[0, 0]) if len(supervised) else input_ids.shape[1],
            int(lengths.min()) - 1)
    return p if p >= min_len else 0


def prefix_sharing_allowed(model: Any, max_seq_len: int) -> bool:
    """Whether running a shared prefix once is exact for ``model`` in training: a known
    full-attention architecture (:data:`PREFIX_SHARING_MODEL_TYPES`) and no dropout anywhere (with
    dropout, every row's prefix would see its own random masks)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in PREFIX_SHARING_MODEL_TYPES:
        return False
    window = getattr(config, "sliding_window", None)
    if window is not None and getattr(config, "use_sliding_window", True) and int(window) < max_seq_len:
        return False
    if any(float(getattr(config, k, 0.0) or 0.0) > 0 for k in ("attention_dropout", "hidden_dropout", "dropout")):
        return False
    return not any(isinstance(m, (torch.nn.modules.dropout._DropoutNd, SparseDropout)) and m.p > 0
                   for m in model.modules())


def _output_rows(model: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(row_of, output_ids)`` of a model whose head covers only some token ids, else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base = getattr(base, "module", base)  # DDP
    maps = getattr(base, "row_maps", None)  # motiongpt.llm.text_conditioned
    if maps is None:
        return None
    return maps(next(base.parameters()).device)


def causal_lm_loss(
    model: Any,
    head: torch.nn.Module | None,
    input_ids: torch.Tensor,
    targets: torch.Tensor,
    forward_kwargs: dict[str, Any],
    *,
    rows_only: bool = True,
    tail: Sequence[torch.nn.Module] = (),
    prefix: int = 0,
) -> torch.Tensor:
    """Summed token cross entropy (fp32) of ``logits[b, t]`` vs ``targets[b, t]`` where targets != -100.

    ``targets`` are already shifted per record (:func:`motiongpt.llm.packing.collate_rows`), so no
    further shift happens here and packed rows need nothing special. With ``rows_only`` (and a
    ``head``, the module ``model.get_output_embeddings()`` returns) the transformer body runs on
    every token but the LM head and the softmax over the vocabulary only on the supervised
    positions (:func:`head_on_rows`): with response-only loss most positions are prompt, and the
    head is a large share of a small model's FLOPs. ``tail`` (:func:`last_block_tail`) also
    restricts the last block's ``o_proj`` and MLP to those positions (:func:`tail_on_rows`): with
    4 blocks that is another ~15 % of the body's FLOPs at 1/5 supervised positions. ``prefix`` > 0
    (:func:`shared_prefix_length`; only where :func:`prefix_sharing_allowed`) runs the first
    ``prefix`` tokens, identical in every row and without targets, once as a batch of one and
    gives the rows its keys / values as a cache, repeated per row: the rows then run only their own
    suffix (positions continue from ``prefix``), and the prefix's gradients are the sum over rows,
    as before (``prefix`` needs ``rows_only`` and a head; otherwise it is ignored).
    ``rows_only=False`` computes full logits (B, L, V) first; all give the same loss and gradients
    to float rounding (tested).
    """
    rows = _output_rows(model)
    if rows is not None:
        # a model with its own output rows (text_conditioned): logits over those rows, targets mapped
        forward_kwargs = {**forward_kwargs, "full_logits": False}
        row_of = rows[0]
        mapped = torch.where(targets == IGNORE_INDEX, targets, row_of[targets.clamp(min=0)])  # (B, L)
        outside = (mapped < 0) & (targets != IGNORE_INDEX)  # (B, L)
        if bool(outside.any()):
            bad = targets[outside][:5].tolist()
            raise ValueError(f"target token id(s) {bad} are not among the model's output rows (motion tokens, eos, "
                             "pad): a text-conditioned model writes motion only")
        targets = mapped
    if not rows_only or head is None:
        logits = model(input_ids=input_ids, use_cache=False, **forward_kwargs).logits  # (B, L, V)
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
            ignore_index=IGNORE_INDEX, reduction="sum",
        )  # (B*L, V) vs (B*L,) -> ()
    if prefix > 0:
        from transformers import DynamicCache

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        cache = DynamicCache(config=getattr(base, "config", None))
        # (1, P): fills the cache; the head runs on one position only (its logits are not used)
        model(input_ids=input_ids[:1, :prefix], past_key_values=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(input_ids.shape[0])  # (1, h, P, d) -> (B, h, P, d), differentiable
        # the rows' own tokens; no mask needed (right padding), positions P.. follow from the cache
        forward_kwargs = {**forward_kwargs, "attention_mask": None, "position_ids": None,
                          "past_key_values": cache}
        input_ids, targets = input_ids[:, prefix:], targets[:, prefix:]  # (B, L) -> (B, L - P)
    keep = targets != IGNORE_INDEX  # (B, L)
    with contextlib.ExitStack() as stack:
        calls = [stack.enter_context(head_on_rows(head, keep))]
        calls += [stack.enter_context(tail_on_rows(m, keep)) for m in tail]
        logits = model(input_ids=input_ids, use_cache=False, **forward_kwargs).logits  # (N, V)
    if any(c[0] != 1 for c in calls) or logits.dim() != 2:
        raise RuntimeError(
            f"the LM head / last-block modules ran {[c[0] for c in calls]} time(s) in one forward, logits "
            f"{tuple(logits.shape)}: this model does not apply model.get_output_embeddings() once to the "
            "final hidden states"
        )
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")  # (N, V) vs (N,)


# --------------------------------------------------------------------------------------------
# LoRA dropout whose cost scales with the dropped elements


def dropped_positions(n: int, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sorted int64 indices in ``[0, n)`` of a Bernoulli(``p``) process (each index independently
    with probability ``p``), drawn from torch's global RNG.

    Drawn as i.i.d. geometric gaps ``G = floor(log(U) / log(1 - p)) + 1`` between hits
    (``P(G = g) = (1 - p)^(g - 1) p``), so it costs ~``n * p`` random numbers instead of ``n``.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"dropout probability must be in (0, 1), got {p}")
    log_keep = math.log1p(-p)
    found: list[torch.Tensor] = []
    last = -1.0  # position of the last hit
    while True:
        left = n - 1 - last
        draw = int(left * p + 6.0 * math.sqrt(left * p) + 16)  # rarely exceeded: then draw again
        u = torch.rand(draw, dtype=torch.float64, device=device)  # [0, 1)
        gaps = torch.floor(torch.log1p(-u) / log_keep) + 1.0  # (draw,) geometric on {1, 2, ...}
        pos = last + torch.cumsum(gaps, 0)
        if float(pos[-1]) >= n:
            found.append(pos[pos < n])
            break
        found.append(pos)
        last = float(pos[-1])
    return torch.cat(found).to(torch.int64)


class _SparseDropoutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        pos = dropped_positions(x.numel(), p, x.device)
        scale = 1.0 / (1.0 - p)
        out = (x * scale).contiguous()
        out.view(-1).index_fill_(0, pos, 0.0)
        ctx.save_for_backward(pos)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (pos,) = ctx.saved_tensors
        g = (grad * ctx.scale).contiguous()  # the same element order as the forward's output
        g.view(-1).index_fill_(0, pos, 0.0)
        return g, None


class SparseDropout(torch.nn.Module):
    """Inverted dropout distributed exactly as ``torch.nn.Dropout(p)`` (each element zeroed
    independently with probability ``p``, the rest scaled by ``1 / (1 - p)``), for small ``p``.

    ``nn.Dropout`` draws one Bernoulli number per element, which on CPU costs about as much as the
    frozen projection it feeds, and LoRA has one dropout per adapted projection (with peft's
    dropout our LoRA step is measurably slower: ``BENCHMARKS.md``). Here only the ~``p * n`` dropped
    positions are drawn (:func:`dropped_positions`) and zeroed in a scaled copy; backward zeroes
    the same positions.
    The random stream differs from ``nn.Dropout``'s (not the distribution); it still comes from the
    global torch RNG, so seeding and checkpointed RNG states make runs exactly reproducible.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.numel() == 0:
            return x
        return _SparseDropoutFn.apply(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


SPARSE_DROPOUT_MAX_P = 0.2
"""Above this, drawing a gap per dropped element costs about as much as one number per element."""


def use_sparse_dropout(model: torch.nn.Module) -> int:
    """Replace the ``nn.Dropout`` modules of peft LoRA layers (``lora_dropout``) with
    :class:`SparseDropout` of the same ``p`` (for ``0 < p <= SPARSE_DROPOUT_MAX_P``). Dropout modules
    hold no weights, so saved adapters are unchanged. Returns how many were replaced."""
    count = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            if type(drop) is torch.nn.Dropout and 0.0 < drop.p <= SPARSE_DROPOUT_MAX_P:
                replacement = SparseDropout(drop.p)
                replacement.train(drop.training)
                drops[name] = replacement
                count += 1
    return count


# --------------------------------------------------------------------------------------------
# model


def _is_preset(name: str) -> bool:
    from motiongpt.llm.model import PRESETS

    return name in PRESETS


def _check_tokenizer_compatible(base_dir: Path, tok: Any) -> None:
    """The prepared tokenizer must extend the base model's own (same id for every base token)."""
    from transformers import AutoTokenizer

    has_tok = any((base_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))
    if not has_tok:
        return
    base_tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    prep = tok.get_vocab()
    bad = [t for t, i in base_tok.get_vocab().items() if prep.get(t) != i]
    if bad:
        raise ValueError(
            f"the prepared data was tokenized with a tokenizer that does not extend {base_dir}'s "
            f"({len(bad)} token(s) differ, e.g. {bad[:3]}): prepare the data for this base model"
        )


def _new_token_mode(cfg: FinetuneConfig, fmt: Any, base_is_motiongpt: bool) -> str:
    mode = cfg.lora.new_tokens
    if mode != "auto":
        return mode
    return "trainable_tokens" if fmt.kind == "vocab" and not base_is_motiongpt else "none"


def _module_name(model: Any, module: Any) -> str:
    return next(n for n, m in model.named_modules() if m is module)


def _lora_config(cfg: FinetuneConfig, model: Any, token_ids: list[int], mode: str) -> Any:
    from peft import LoraConfig

    kw: dict[str, Any] = {}
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    emb = _module_name(model, model.get_input_embeddings()).split(".")[-1]
    head_mod = model.get_output_embeddings()
    head = _module_name(model, head_mod).split(".")[-1] if head_mod is not None else None
    modules_to_save = list(cfg.lora.extra_modules_to_save)
    if mode == "trainable_tokens":
        # only the motion rows train; a tied head follows the embedding, an untied one gets
        # its own trainable rows (the model must learn to *emit* the new tokens too)
        kw["trainable_token_indices"] = {emb: list(token_ids)} if tied or head is None else \
            {emb: list(token_ids), head: list(token_ids)}
    elif mode == "modules_to_save":
        modules_to_save += [emb] + ([head] if head is not None else [])
        kw["ensure_weight_tying"] = tied
    from motiongpt.llm.text_conditioned import ENCODER_MODULES, is_text_conditioned

    if is_text_conditioned(model):
        kw["exclude_modules"] = ENCODER_MODULES  # the frozen text encoder has q_proj ... too
    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        bias=cfg.lora.bias,
        task_type="CAUSAL_LM",
        modules_to_save=modules_to_save or None,
        **kw,
    )


def _build_model(
    cfg: FinetuneConfig,
    data: PreparedData,
    prec: dict[str, Any],
    device: str,
    out_dir: Path,
    state: Any,
    resume_dir: Path | None,
) -> tuple[Any, dict[str, Any]]:
    """The model to train (peft-wrapped for adapter methods) and the provenance of its base."""
    from motiongpt.llm.model import add_motion_tokens, load_base_model

    tok, fmt = data.tokenizer, data.fmt
    adapter = bool(prec["adapter"])
    preset = isinstance(cfg.base_model, str) and _is_preset(cfg.base_model)
    info: dict[str, Any] = {"adapter": adapter, "base_saved": False, "base_is_motiongpt": False}
    if preset:
        info["base_model_kind"] = "preset"
        if adapter:
            # the adapter only means something on this exact random base: save it next to the run
            # (a fresh run rebuilds it; a resumed run reuses the one its checkpoints were trained on)
            base_dir = out_dir / BASE_MODEL_DIR
            if state.is_main_process and (resume_dir is None or not (base_dir / "config.json").is_file()):
                model, _ = load_base_model(cfg.base_model, tok, method="full", seed=cfg.seed,
                                           preset_overrides=cfg.preset_overrides)
                add_motion_tokens(tok, model, fmt, seed=cfg.motion_init_seed)
                with atomic_directory(base_dir) as tmp:
                    model.save_pretrained(tmp)
                    tok.save_pretrained(tmp)
                del model
            state.wait_for_everyone()
            info.update(base_saved=True, base_model_path=str(base_dir.resolve()))
            model, _ = load_base_model(str(base_dir), tok, method=cfg.method, dtype=cfg.dtype, device=device)
        elif resume_dir is not None:
            model, _ = load_base_model(str(resume_dir), tok, method="full", dtype=cfg.dtype, device=device)
            info["base_model_path"] = None
        elif cfg.text_encoder:
            from motiongpt.llm.model import get_preset
            from motiongpt.llm.text_conditioned import build_text_conditioned_model

            enc_dir = Path(cfg.text_encoder)
            _check_tokenizer_compatible(enc_dir, tok)
            ids = add_motion_tokens(tok, None, fmt)  # the prepared tokenizer holds them; ids only
            model = build_text_conditioned_model(get_preset(cfg.base_model, cfg.preset_overrides), tok, enc_dir,
                                                 cfg.text_encoder_layers, ids.all_ids(), seed=cfg.seed)
            model = model.to(device)
            info.update(base_model_path=None, text_encoder=str(enc_dir.resolve()),
                        text_encoder_layers=cfg.text_encoder_layers)
        else:
            model, _ = load_base_model(cfg.base_model, tok, method="full", dtype=cfg.dtype, device=device,
                                       seed=cfg.seed, preset_overrides=cfg.preset_overrides)
            info["base_model_path"] = None
    else:
        if cfg.preset_overrides:
            raise ConfigError("preset_overrides only apply to the presets tiny / nano")
        base_dir = Path(cfg.base_model)
        if base_dir.is_dir():
            _check_tokenizer_compatible(base_dir, tok)
            if (base_dir / "motion_format.json").is_file():
                from motiongpt.llm.tokens import load_motion_format

                if load_motion_format(base_dir) != fmt:
                    raise ValueError(f"{base_dir} was fine-tuned with another motion token format than the data's")
                info["base_is_motiongpt"] = True
        info.update(base_model_kind="dir", base_model_path=str(base_dir.resolve()))
        src = str(resume_dir) if (resume_dir is not None and not adapter) else cfg.base_model
        # load_base_model raises OfflineModelError at once for anything that is not a local dir
        model, _ = load_base_model(src, tok, method=cfg.method, dtype=cfg.dtype, device=device)
    rows_before = model.get_input_embeddings().weight.shape[0]
    from motiongpt.llm.text_conditioned import is_text_conditioned

    # a text-conditioned model's rows were fixed when it was built
    ids = add_motion_tokens(tok, None if is_text_conditioned(model) else model, fmt, seed=cfg.motion_init_seed)
    info["new_rows"] = int(model.get_input_embeddings().weight.shape[0] - rows_before)
    info["motion_token_ids"] = len(ids.all_ids())

    model.config.use_cache = False  # training: no KV cache (also required by the position_ids packing path)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(cfg.attn_implementation)
    gc_kwargs = {"use_reentrant": False}  # non-reentrant: works with frozen inputs and DDP
    if prec["prepare_kbit"]:
        from peft import prepare_model_for_kbit_training

        # freezes the quantized base, casts the remaining (norm / embedding) weights to fp32;
        # checkpointing is switched on below, the same way for every method
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if cfg.train.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=gc_kwargs)

    if not adapter:
        info["new_tokens"] = "full"
        return model, info
    mode = _new_token_mode(cfg, fmt, info["base_is_motiongpt"])
    info["new_tokens"] = mode
    from peft import PeftModel, get_peft_model

    torch.manual_seed(cfg.seed)  # the LoRA A init draws from the global RNG
    if resume_dir is not None:
        # the saved adapter is the model to continue (also proves the checkpoint reloads)
        model = PeftModel.from_pretrained(model, str(resume_dir), is_trainable=True)
    else:
        model = get_peft_model(model, _lora_config(cfg, model, ids.all_ids(), mode))
    model.peft_config["default"].base_model_name_or_path = info["base_model_path"]
    if device == "cpu":
        # on CPU nn.Dropout's per-element Bernoulli draws cost more than the projections they feed;
        # on GPUs the fused dropout kernel is cheap and the sparse one would sync with the host
        info["lora_dropout"] = "sparse" if use_sparse_dropout(model) else "none"
    else:
        info["lora_dropout"] = "torch"
    return model, info


# --------------------------------------------------------------------------------------------
# training


def _resolve_resume(resume: bool | str | os.PathLike, out_dir: Path) -> Path | None:
    if resume is True or resume == "auto":
        found = latest_checkpoint(out_dir)
        if found is None and resume is True:
            raise FileNotFoundError(f"--resume: no checkpoint in {out_dir} (no '{LATEST_FILE}' file); start without it")
        return found
    if resume:
        path = Path(resume)
        if not (path / TRAIN_STATE_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a training checkpoint (no {TRAIN_STATE_FILE})")
        return path
    return None


def _check_resume_config(saved: FinetuneConfig, now: FinetuneConfig, where: Path) -> None:
    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(config_to_dict(saved)), flat(config_to_dict(now))
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if k not in _RESUMABLE_CHANGES and a.get(k) != b.get(k)]
    if diffs:
        raise ValueError(
            f"cannot resume from {where}: the config changed ({'; '.join(diffs)}); only "
            f"{sorted(_RESUMABLE_CHANGES)} may change on resume"
        )


def _clear_outputs(out_dir: Path) -> None:
    """Remove what an earlier run wrote to ``out_dir`` (``overwrite=True``)."""
    for ck in list_checkpoints(out_dir):
        shutil.rmtree(ck)
    summary = out_dir / SUMMARY_FILE
    if summary.is_file():
        for name in json.loads(summary.read_text(encoding="utf-8")).get("files", []):
            (out_dir / name).unlink(missing_ok=True)
        summary.unlink()
    for name in (LATEST_FILE, "metrics.jsonl"):
        (out_dir / name).unlink(missing_ok=True)
    for name in (BASE_MODEL_DIR, "tb"):
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)


def _trainable_names(model: Any) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def _make_optimizer(model: Any, optim: OptimSection) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            # decay matrices only: decaying norm gains / biases pulls them towards 0, not towards identity
            (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise RuntimeError("the model has no trainable parameters")
    groups = [{"params": decay, "weight_decay": optim.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    # The fused kernel updates every tensor in one call: on the tiny model on 2 CPU cores an AdamW
    # step takes 1.6 ms instead of 6.1 ms (torch's CPU default, one tensor at a time; ~3 % of a
    # training step). It exists for floating tensors on CPU and CUDA only, hence the check.
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps, fused=fused or None)


def _versions() -> dict[str, str]:
    import accelerate
    import peft
    import transformers

    mods = {"torch": torch, "transformers": transformers, "peft": peft, "accelerate": accelerate}
    return {name: str(mod.__version__) for name, mod in mods.items()}


def _fill_deepspeed_config(accelerator: Any, cfg: FinetuneConfig) -> int | None:
    """Give DeepSpeed the values its JSON leaves ``auto`` that accelerate cannot infer without a
    prepared DataLoader (this loop batches by itself). Returns the ZeRO stage (None: no DeepSpeed)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return None
    plugin = accelerator.state.deepspeed_plugin
    ds = plugin.deepspeed_config
    micro = cfg.batch.micro_batch_size or 1  # nominal: DeepSpeed uses it for bookkeeping only
    ga = cfg.batch.gradient_accumulation_steps
    ds["train_micro_batch_size_per_gpu"] = micro
    ds["gradient_accumulation_steps"] = ga
    ds["train_batch_size"] = micro * ga * accelerator.num_processes
    if ds.get("gradient_clipping", "auto") == "auto":
        ds["gradient_clipping"] = cfg.optim.max_grad_norm
    if cfg.method in ("qlora", "8bit") and int(plugin.zero_stage) == 3:
        raise ConfigError(f"method {cfg.method} (a bitsandbytes-quantized base) cannot be sharded by ZeRO-3")
    return int(plugin.zero_stage)


def process_state() -> Any:
    """accelerate's ``PartialState`` for this process, refusing a silently single-process world.

    ``PartialState()`` alone ignores ``ACCELERATE_USE_CPU`` (only ``Accelerator`` reads it), so a
    CPU data-parallel launch (``ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2``) would make
    every process believe it is alone; the flag is passed on here. A launcher that sets
    ``WORLD_SIZE > 1`` while accelerate still sees one process (e.g. a MULTI_GPU config on a CPU
    machine) is an error instead of N processes each training the whole run.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    env_world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if env_world > 1 and state.num_processes != env_world:
        raise RuntimeError(
            f"the launcher started {env_world} processes but accelerate sees {state.num_processes}: on a CPU "
            "machine set ACCELERATE_USE_CPU=true (e.g. ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 ...)"
        )
    return state


DS_OPTIMIZER_FILE = "ds_optimizer"
"""``<name>.safetensors`` + ``<name>.json``: the DeepSpeed ZeRO optimizer state, pickle-free."""


def _zero_partitions(optimizer: Any) -> tuple[list[torch.Tensor], torch.optim.Optimizer] | None:
    """The fp32 master partitions of a DeepSpeed ZeRO-1/2/3 optimizer (behind accelerate's wrapper)
    and the torch optimizer that steps them (its ``state`` is keyed by those tensors), or None when
    the state is not plainly in memory (NVMe swapping, an unknown optimizer class)."""
    zero = getattr(optimizer, "optimizer", None)  # accelerate's DeepSpeedOptimizerWrapper -> ZeRO optimizer
    base = getattr(zero, "optimizer", None)
    if not isinstance(base, torch.optim.Optimizer):
        return None
    if getattr(zero, "swap_optimizer", False) or getattr(zero, "backup_optimizer", None) is not None:
        return None  # NVMe-swapped, or split over a second optimizer (ZeRO-3 partial offload)
    for attr in ("single_partition_of_fp32_groups", "fp32_partitioned_groups_flat"):  # ZeRO-1/2, ZeRO-3
        parts = getattr(zero, attr, None)
        if isinstance(parts, list) and parts and all(torch.is_tensor(t) for t in parts):
            return parts, base
    return None


def save_zero_optimizer(optimizer: Any, folder: Path) -> bool:
    """Write this process's DeepSpeed ZeRO optimizer state to ``folder`` as safetensors + JSON:
    the fp32 master partitions and their optimizer state (Adam ``exp_avg`` / ``exp_avg_sq`` /
    ``step``). DeepSpeed's own checkpoints pickle this; here nothing is pickled. Returns False (and
    writes nothing) when the state cannot be captured (see :func:`_zero_partitions`)."""
    from safetensors.torch import save_file

    found = _zero_partitions(optimizer)
    if found is None:
        return False
    parts, base = found
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for k, master in enumerate(parts):
        tensors[f"master.{k}"] = master.detach().cpu().contiguous().clone()
        for key, value in base.state.get(master, {}).items():
            if torch.is_tensor(value):
                tensors[f"state.{k}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"state.{k}.{key}"] = value
    meta = {"partitions": [list(p.shape) for p in parts], "scalars": scalars,
            "optimizer": type(base).__name__}
    save_file(tensors, str(folder / f"{DS_OPTIMIZER_FILE}.safetensors"))
    (folder / f"{DS_OPTIMIZER_FILE}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return True


def load_zero_optimizer(optimizer: Any, folder: Path) -> None:
    """Restore :func:`save_zero_optimizer`'s state into a freshly prepared DeepSpeed optimizer
    (after ``accelerator.prepare``): master partitions copied in place, optimizer state set."""
    from safetensors.torch import load_file

    found = _zero_partitions(optimizer)
    if found is None:
        raise ValueError(f"{folder} holds a DeepSpeed optimizer state but this run's optimizer cannot take it")
    parts, base = found
    meta = json.loads((folder / f"{DS_OPTIMIZER_FILE}.json").read_text(encoding="utf-8"))
    if meta["partitions"] != [list(p.shape) for p in parts] or meta["optimizer"] != type(base).__name__:
        raise ValueError(
            f"cannot resume the optimizer from {folder}: its partitions {meta['partitions']} "
            f"({meta['optimizer']}) differ from this run's {[list(p.shape) for p in parts]} ({type(base).__name__})"
        )
    tensors = load_file(str(folder / f"{DS_OPTIMIZER_FILE}.safetensors"))
    for k, master in enumerate(parts):
        with torch.no_grad():
            master.copy_(tensors[f"master.{k}"])
        state: dict[str, Any] = {}
        for name, value in list(tensors.items()) + list(meta["scalars"].items()):
            _, idx, key = name.split(".", 2) if name.startswith("state.") else ("", "-1", "")
            if int(idx) == k:
                # moments follow the master's device and dtype; the step counter keeps its own dtype
                state[key] = value.to(master.device, master.dtype) if torch.is_tensor(value) and key != "step" \
                    else value
        if state:
            base.state[master] = state


def _micro_batches(plan: list, k: int, ga: int, world: int, rank: int) -> list:
    """Micro-batches of step ``k`` of an epoch for process ``rank``: ``plan[(k*GA + j)*W + rank]``."""
    return [plan[(k * ga + j) * world + rank] for j in range(ga)]


class _Run:
    """One fine-tuning run: set up in ``__init__`` (data, model, accelerator, optimizer, resume),
    trained by :meth:`train`. Kept as an object so each part of the loop is a short method."""

    def __init__(self, cfg: FinetuneConfig, resume: bool | str | os.PathLike, overwrite: bool) -> None:
        from motiongpt.llm.model import resolve_precision

        self.t_start = time.time()
        check_finetune_config(cfg)
        _check_offline_base(cfg.base_model)
        self.out_dir = resolve_out_dir(cfg)
        if not cfg.out_dir:
            cfg = dataclasses.replace(cfg, out_dir=str(self.out_dir))
        self.cfg = cfg
        # The model is built before the Accelerator exists: once a DeepSpeed ZeRO-3 plugin is active,
        # transformers would partition every model it loads (zero.Init) and the motion-token rows could
        # not be added or initialised; DeepSpeed partitions the finished model in prepare() instead.
        state = process_state()
        self.device = "cpu" if state.device.type == "cpu" else f"cuda:{state.local_process_index}"
        self.prec = resolve_precision(cfg.method, cfg.dtype, self.device)
        self.main = state.is_main_process
        self.world, self.rank = state.num_processes, state.process_index
        if self.main:
            for note in self.prec["warnings"]:
                log.warning(note)
        self.resume_dir, self.saved_state = self._prepare_out_dir(state, resume, overwrite)
        self._load_data()
        self._build(state)

    # ---- setup -----------------------------------------------------------------------------------

    def _prepare_out_dir(self, state: Any, resume: bool | str | os.PathLike,
                         overwrite: bool) -> tuple[Path | None, dict[str, Any]]:
        out_dir = self.out_dir
        resume_dir = _resolve_resume(resume, out_dir)
        if resume_dir is None and (list_checkpoints(out_dir) or (out_dir / LATEST_FILE).exists()) and not overwrite:
            raise FileExistsError(
                f"{out_dir} already holds checkpoints; pass resume=True (--resume) to continue or "
                "overwrite=True (--overwrite) to start over"
            )
        state.wait_for_everyone()
        if self.main:
            if resume_dir is None and overwrite:
                _clear_outputs(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(out_dir)  # leftovers of a run killed mid-save
        state.wait_for_everyone()
        if resume_dir is None:
            return None, {}
        saved_cfg, _ = read_run_config(resume_dir)
        _check_resume_config(saved_cfg, self.cfg, resume_dir)
        saved = json.loads((resume_dir / TRAIN_STATE_FILE).read_text(encoding="utf-8"))
        if saved["num_processes"] != self.world:
            raise ValueError(
                f"cannot resume {resume_dir} exactly: it was written by {saved['num_processes']} "
                f"process(es), this run has {self.world}"
            )
        return resume_dir, saved

    def _load_data(self) -> None:
        cfg, b = self.cfg, self.cfg.batch
        self.data = load_training_data(cfg.prepared, b.max_seq_len)
        self.records = self.data.train
        self.fingerprint = self.records.fingerprint()
        if self.saved_state and self.saved_state["data_fingerprint"] != self.fingerprint:
            raise ValueError(f"cannot resume from {self.resume_dir}: the prepared training data changed")
        self.ga = b.gradient_accumulation_steps
        self._plan_epoch, self._plan = 0, self._make_plan(0)
        self.steps_per_epoch = len(self._plan) // (self.ga * self.world)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"an epoch has {len(self._plan)} micro-batch(es), fewer than one optimizer step needs "
                f"({self.ga} accumulation x {self.world} process(es)): use smaller micro-batches"
            )
        self.total_steps = cfg.train.max_steps or max(1, math.ceil(cfg.train.epochs * self.steps_per_epoch))
        self.targets_per_record = self.records.num_targets()
        self.pad_id = self.data.tokenizer.pad_token_id if self.data.tokenizer.pad_token_id is not None else 0
        self.val_plan: list = []
        if self.data.val is not None:
            self.val_plan = plan_epoch(
                self.data.val.lengths, epoch=0, seed=cfg.seed, micro_batch_size=b.micro_batch_size,
                micro_batch_tokens=b.micro_batch_tokens, max_seq_len=b.max_seq_len, packing=False, shuffle=False,
            )
            if cfg.train.eval_max_batches:
                self.val_plan = self.val_plan[: cfg.train.eval_max_batches]

    def _make_plan(self, epoch: int) -> list:
        b = self.cfg.batch
        return plan_epoch(
            self.records.lengths, epoch=epoch, seed=self.cfg.seed, micro_batch_size=b.micro_batch_size,
            micro_batch_tokens=b.micro_batch_tokens, max_seq_len=b.max_seq_len, packing=b.packing,
            group_by_length=b.group_by_length, shuffle=b.shuffle,
        )

    def _build(self, state: Any) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        from motiongpt.utils.train_state import load_optimizer, load_rng_state

        cfg = self.cfg
        model, base_info = _build_model(cfg, self.data, self.prec, self.device, self.out_dir, state, self.resume_dir)
        self.trainable = _trainable_names(model)
        if self.saved_state and self.saved_state["trainable"] != self.trainable:
            raise ValueError(
                f"cannot resume from {self.resume_dir}: the trainable parameters differ from the checkpoint's"
            )
        self.accelerator = Accelerator(
            gradient_accumulation_steps=self.ga, mixed_precision=self.prec["mixed_precision"],
        )
        self.zero_stage = _fill_deepspeed_config(self.accelerator, cfg)
        self.is_ds = self.zero_stage is not None
        optimizer = _make_optimizer(model, cfg.optim)
        self.n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.n_total = sum(p.numel() for p in model.parameters())
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.unwrapped = self.accelerator.unwrap_model(self.model)
        self.head = self.unwrapped.get_output_embeddings()  # (peft wrappers included) or None
        # gradient checkpointing recomputes the block in backward without the hooks (other shapes)
        self.tail = [] if cfg.train.gradient_checkpointing else last_block_tail(self.unwrapped)
        # a shared prefix means two forward calls before one backward: plain single-process runs only
        # (DDP's reducer and ZeRO-3's module tracing expect one), and never with dropout (not exact)
        self.share_prefix = bool(
            cfg.batch.share_prefix and self.world == 1 and not self.is_ds and not cfg.train.gradient_checkpointing
            and prefix_sharing_allowed(self.unwrapped, cfg.batch.max_seq_len)
        )
        self.attn_impl = getattr(self.unwrapped.config, "_attn_implementation", cfg.attn_implementation)

        set_seed(cfg.seed, device_specific=True)  # dropout: a different stream on every process
        self.step = 0
        if self.resume_dir is not None:
            self.step = int(self.saved_state["step"])
            saved = bool(self.saved_state.get("optimizer_saved"))
            zero_format = (self.resume_dir / f"{DS_OPTIMIZER_FILE}.json").is_file()
            if saved and self.is_ds and zero_format:
                load_zero_optimizer(self.optimizer, self.resume_dir)
            elif saved and not self.is_ds and not zero_format:
                load_optimizer(self.optimizer, self.resume_dir)
            elif self.main:
                log.warning("resuming from %s without optimizer moments (DeepSpeed with several processes, a "
                            "state DeepSpeed swaps out, or a checkpoint written with / without DeepSpeed resumed "
                            "the other way): the optimizer restarts from zero state; the run is not bit-exact",
                            self.resume_dir)
            load_rng_state(self.resume_dir, name=f"rng_state_{self.rank}")
            if self.main:
                log.info("resumed from %s at step %d", self.resume_dir, self.step)
        if self.step > self.total_steps:
            raise ValueError(f"checkpoint is at step {self.step}, beyond the run's {self.total_steps} steps")
        self.tokens_seen = int(self.saved_state.get("tokens_seen", 0))
        self.best_val = self.saved_state.get("best_val_loss")
        self.resolved = self._provenance(base_info)

    def _provenance(self, base_info: dict[str, Any]) -> dict[str, Any]:
        """The ``resolved`` section of ``run_config.yaml``."""
        cfg, data, prec = self.cfg, self.data, self.prec
        return {
            **base_info,
            "prepared": str(data.root.resolve()),
            "vq_dir": str(Path(cfg.vq_dir).resolve()) if cfg.vq_dir else "",
            "motion_format": data.fmt.to_dict(),
            "template": data.prepare_config.get("template"),
            "train_on_prompt": data.prepare_config.get("train_on_prompt"),
            "tasks": dict(Counter(self.records.tasks)) if self.records.tasks is not None else {},
            "prepare_config": data.prepare_config,
            # generation reads the task settings from here, not from the data folder (which may
            # be gone or moved by then)
            "instruction_config": data.instruction.get("config"),
            "instruction_config_source": data.instruction.get("source") or data.instruction.get("reason"),
            "train_records": len(self.records),
            "val_records": len(data.val) if data.val is not None else 0,
            "dropped_too_long": data.dropped,
            "data_fingerprint": self.fingerprint,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "precision": {"weights": str(prec["dtype"]).replace("torch.", ""),
                          "compute": str(prec["compute_dtype"]).replace("torch.", ""),
                          "mixed_precision": prec["mixed_precision"],
                          "quantization": {"qlora": "nf4+double_quant", "8bit": "int8"}.get(cfg.method)},
            "num_processes": self.world,
            "distributed_type": str(self.accelerator.distributed_type).split(".")[-1],
            "zero_stage": self.zero_stage,
            "shared_prefix": self.share_prefix,
            "trainable_parameters": self.n_trainable,
            "total_parameters": self.n_total,
            "versions": _versions(),
        }

    # ---- one step ----------------------------------------------------------------------------------

    def step_batches(self, step: int) -> tuple[list, int]:
        """This process's micro-batches of optimizer step ``step`` and the loss tokens of the whole
        step (all micro-batches of all processes: the plan is the same everywhere)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._plan_epoch:
            self._plan_epoch, self._plan = epoch, self._make_plan(epoch)
        whole = self._plan[k * self.ga * self.world: (k + 1) * self.ga * self.world]
        step_targets = sum(int(self.targets_per_record[i]) for mb in whole for row in mb for i in row)
        return _micro_batches(self._plan, k, self.ga, self.world, self.rank), step_targets

    def forward_loss(self, batch: dict[str, torch.Tensor], packed: bool) -> torch.Tensor:
        """Summed cross entropy over the batch's loss tokens, in fp32."""
        acc = self.accelerator
        kw = attention_inputs(batch, packed=packed, packing_attention=self.cfg.batch.packing_attention,
                              attn_implementation=self.attn_impl, dtype=self.prec["compute_dtype"])
        kw = {k: (v.to(acc.device) if torch.is_tensor(v) else v) for k, v in kw.items()}
        input_ids, targets = batch["input_ids"].to(acc.device), batch["targets"].to(acc.device)
        prefix = 0
        if self.share_prefix and not packed:
            prefix = shared_prefix_length(input_ids, targets, batch["attention_mask"].sum(1))
        with acc.autocast():
            # the model wrapper (DDP / DeepSpeed engine) is what runs, so gradient sync and ZeRO hooks
            # work as usual; the LM head only sees the supervised positions
            return causal_lm_loss(self.model, self.head, input_ids, targets, kw, tail=self.tail, prefix=prefix)

    def train_step(self, step: int) -> tuple[torch.Tensor, float | None, list[int]]:
        """One optimizer step: returns (ce sum, loss tokens, real tokens) of this process's
        micro-batches, the gradient norm, and the record indices of its first micro-batch."""
        acc, cfg = self.accelerator, self.cfg
        micro, step_targets = self.step_batches(step)
        lr = lr_at(step, self.total_steps, cfg.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums = torch.zeros(3, dtype=torch.float64)
        grad_norm = None
        for mb in micro:
            batch = collate_rows(self.records, mb, pad_id=self.pad_id, packed=cfg.batch.packing)
            with acc.accumulate(self.model):
                ce = self.forward_loss(batch, packed=cfg.batch.packing)
                # x (W * GA): accelerate divides by GA and DDP / DeepSpeed average over W, so the gradient
                # is d(sum of CE over the step's loss tokens on all processes) / (their number)
                acc.backward(ce * (self.world * self.ga) / max(1, step_targets))
                if acc.sync_gradients and cfg.optim.max_grad_norm > 0:
                    gn = acc.clip_grad_norm_(self.model.parameters(), cfg.optim.max_grad_norm)
                    grad_norm = float(gn) if gn is not None else None
                self.optimizer.step()  # a no-op until the last micro-batch (accelerate / DeepSpeed)
                self.optimizer.zero_grad(set_to_none=True)
            sums += torch.tensor([float(ce.detach()), float(batch["num_targets"]), float(batch["num_tokens"])],
                                 dtype=torch.float64)
        return sums, grad_norm, sorted(i for row in micro[0] for i in row)

    # ---- evaluation and checkpoints ------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Loss / perplexity on the validation plan, summed over all processes."""
        acc, val = self.accelerator, self.data.val
        # every process runs the same number of forwards (ZeRO-3 gathers weights collectively);
        # a process out of batches repeats batch 0 with weight 0
        per_rank = math.ceil(len(self.val_plan) / self.world)
        sums = torch.zeros(2, dtype=torch.float64, device=acc.device)
        self.model.eval()
        with torch.no_grad():
            for k in range(per_rank):
                idx = k * self.world + self.rank
                real = idx < len(self.val_plan)
                batch = collate_rows(val, self.val_plan[idx if real else 0], pad_id=self.pad_id, packed=False)
                ce = self.forward_loss(batch, packed=False)
                if real:
                    sums += torch.stack([ce.double(), batch["num_targets"].double().to(acc.device)])
        self.model.train()
        sums = acc.reduce(sums, reduction="sum")
        loss = float(sums[0] / sums[1].clamp(min=1))
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "tokens": int(sums[1])}

    def _zero3_state_dict(self) -> dict[str, torch.Tensor]:
        """Full-size weights out of ZeRO-3 shards (every process must call this).

        Adapter methods gather only the trainable tensors (the adapter is all that is saved; the
        frozen base would be gigabytes); ``full`` gathers everything through accelerate.
        """
        if not self.prec["adapter"]:
            return self.accelerator.get_state_dict(self.model)
        import deepspeed

        named = [(n, p) for n, p in self.unwrapped.named_parameters() if p.requires_grad]
        with deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None):
            return {n: p.detach().cpu().clone() for n, p in named}

    def save_checkpoint(self, step: int) -> Path:
        """Write ``checkpoint-<step>/`` atomically, then point ``latest`` at it, then prune."""
        from accelerate.utils import gather_object
        from safetensors.torch import save_file

        from motiongpt.llm.tokens import save_motion_format
        from motiongpt.utils.train_state import rng_state, save_optimizer

        state_dict = self._zero3_state_dict() if self.zero_stage == 3 else None
        per_rank = gather_object([rng_state()])  # every process's RNG; rank 0 writes the directory
        target = self.out_dir / f"checkpoint-{step}"
        if self.main:
            with atomic_directory(target) as tmp:
                if self.prec["adapter"]:
                    self.unwrapped.save_pretrained(str(tmp), state_dict=state_dict, save_embedding_layers=False)
                else:
                    self.unwrapped.save_pretrained(str(tmp), state_dict=state_dict)
                self.data.tokenizer.save_pretrained(str(tmp))
                save_motion_format(self.data.fmt, tmp)
                write_run_config(tmp, self.cfg, self.resolved)
                if not self.is_ds:
                    save_optimizer(self.optimizer, tmp)
                    optimizer_saved = True
                else:  # one process holds the whole ZeRO state; with several, each holds only its partition
                    optimizer_saved = self.world == 1 and save_zero_optimizer(self.optimizer, tmp)
                for r, (tensors, meta) in enumerate(per_rank):
                    save_file(tensors, str(tmp / f"rng_state_{r}.safetensors"))
                    (tmp / f"rng_state_{r}.json").write_text(json.dumps(meta), encoding="utf-8")
                trainer_state = {
                    "step": step,
                    "epoch": step / self.steps_per_epoch,
                    "total_steps": self.total_steps,
                    "num_processes": self.world,
                    "data_fingerprint": self.fingerprint,
                    "trainable": self.trainable,
                    "optimizer_saved": optimizer_saved,
                    "tokens_seen": self.tokens_seen,
                    "best_val_loss": self.best_val,
                }
                # written last: a directory with trainer_state.json is complete
                (tmp / TRAIN_STATE_FILE).write_text(json.dumps(trainer_state, indent=1), encoding="utf-8")
            write_latest(self.out_dir, target)
            prune_checkpoints(self.out_dir, self.cfg.train.keep_last_n)
        self.accelerator.wait_for_everyone()
        return target

    # ---- the loop ----------------------------------------------------------------------------------

    def train(self, stop_at: int | None) -> dict[str, Any]:
        from tqdm.auto import tqdm

        from motiongpt.utils.metrics import MetricLogger

        cfg, acc, b = self.cfg, self.accelerator, self.cfg.batch
        end_step = self.total_steps if stop_at is None else min(int(stop_at), self.total_steps)
        logger = MetricLogger(self.out_dir, tensorboard=cfg.train.tensorboard,
                              resume_step=self.step if self.resume_dir else None, enabled=self.main)
        if self.main:
            log.info(
                "fine-tuning %s (%s, %.2fM trainable / %.2fM params) on %d records of %s: %d steps "
                "(%d per epoch), %d process(es), micro-batch %s, accumulation %d%s",
                cfg.base_model, cfg.method, self.n_trainable / 1e6, self.n_total / 1e6, len(self.records),
                self.data.root, self.total_steps, self.steps_per_epoch, self.world,
                f"{b.micro_batch_size} records" if b.micro_batch_size else f"{b.micro_batch_tokens} tokens",
                self.ga, ", packed" if b.packing else "",
            )
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.main and cfg.train.progress_bar),
                   desc="finetune", dynamic_ncols=True)
        window = torch.zeros(3, dtype=torch.float64)  # ce sum, loss tokens, real tokens since the last log
        t_window = time.time()
        first_loss = last_loss = grad_norm = None
        last_val: dict[str, float] = {}
        tps_history: list[float] = []
        last_ckpt = self.resume_dir
        first_micro: list[int] | None = None  # diagnostics: this process's first records
        while self.step < end_step:
            sums, gn, micro = self.train_step(self.step)
            window += sums
            grad_norm = gn if gn is not None else grad_norm
            first_micro = micro if first_micro is None else first_micro
            self.step += 1
            step = self.step
            bar.update(1)

            if step % cfg.train.log_every == 0 or step == end_step:
                total = acc.reduce(window.to(acc.device), reduction="sum").cpu()
                loss = float(total[0] / max(1.0, float(total[1])))
                tps = float(total[2]) / max(time.time() - t_window, 1e-9)  # real (non-padding) tokens
                self.tokens_seen += int(total[2])
                tps_history.append(tps)
                first_loss = loss if first_loss is None else first_loss
                last_loss = loss
                lr = lr_at(step - 1, self.total_steps, cfg.optim)
                scalars = {"loss": loss, "lr": lr, "tokens_per_s": tps, "epoch": step / self.steps_per_epoch,
                           "tokens_seen": self.tokens_seen}
                if grad_norm is not None:
                    scalars["grad_norm"] = grad_norm
                logger.log(step, scalars, "train")
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:.0f}")
                window.zero_()
                t_window = time.time()

            if self.val_plan and ((cfg.train.eval_every and step % cfg.train.eval_every == 0)
                                  or step == self.total_steps):
                last_val = self.evaluate()
                self.best_val = last_val["loss"] if self.best_val is None else min(self.best_val, last_val["loss"])
                logger.log(step, last_val, "val")
                if self.main:
                    log.info("step %d: val loss %.4f (ppl %.2f)", step, last_val["loss"], last_val["ppl"])
                t_window = time.time()  # evaluation time is not training throughput
            if (cfg.train.save_every and step % cfg.train.save_every == 0) or step == end_step:
                last_ckpt = self.save_checkpoint(step)
                t_window = time.time()
        bar.close()

        finished = self.step >= self.total_steps
        summary: dict[str, Any] = {
            "out_dir": str(self.out_dir.resolve()),
            "steps": self.step,
            "total_steps": self.total_steps,
            "finished": finished,
            "seconds": round(time.time() - self.t_start, 2),
            "first_loss": first_loss,
            "last_loss": last_loss,
            "val": last_val,
            "best_val_loss": self.best_val,
            "tokens_seen": self.tokens_seen,
            "tokens_per_s": (sum(tps_history) / len(tps_history)) if tps_history else None,
            "resumed_from": str(self.resume_dir) if self.resume_dir else None,
            "num_processes": self.world,
            "method": cfg.method,
            "trainable_parameters": self.n_trainable,
            "checkpoint": str(last_ckpt) if last_ckpt else None,
            "process_index": self.rank,
            "first_micro_batch": first_micro,
        }
        if self.main and finished:
            if last_ckpt is None or not (last_ckpt / TRAIN_STATE_FILE).is_file():
                raise RuntimeError("the run finished without a checkpoint to publish")
            summary["files"] = publish_model_files(last_ckpt, self.out_dir)
            # the completion marker, written after every published file
            atomic_write_text(self.out_dir / SUMMARY_FILE, json.dumps(summary, indent=1))
        logger.close()
        acc.wait_for_everyone()  # the process group stays up for the caller (the CLI tears it down)
        return summary


def _check_offline_base(base_model: str) -> None:
    """Refuse anything that is neither a preset nor a local directory before any work is done."""
    from motiongpt.llm.model import PRESETS, OfflineModelError

    if base_model in PRESETS:
        return
    path = Path(base_model)
    if path.is_dir():
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            raise ValueError(
                f"base_model {base_model!r} is an adapter, not a model: merge it into its base first "
                "(scripts/export_merged.py) and use the merged directory"
            )
        return
    raise OfflineModelError(
        f"base_model {base_model!r} is not a local directory; this toolkit runs offline: download the "
        f"checkpoint elsewhere and pass its directory (or use a preset: {', '.join(sorted(PRESETS))})"
    )


def finetune(
    cfg: FinetuneConfig,
    *,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Fine-tune ``cfg.base_model`` on ``cfg.prepared``; writes ``resolve_out_dir(cfg)``.

    Args:
        cfg: the run config (:class:`FinetuneConfig`).
        resume: ``True`` continues from ``<out_dir>/latest`` (error when there is none), ``"auto"``
            does so when it exists and starts fresh otherwise, a path resumes from that checkpoint.
        overwrite: allow a fresh run in an ``out_dir`` holding checkpoints (they are deleted);
            without it that is an error, so a forgotten ``--resume`` loses nothing.
        stop_at: stop (with a checkpoint) after this optimizer step although the schedule runs to
            the full length — for time-sliced jobs; continue with ``resume=True``.

    Returns:
        The training summary (also ``<out_dir>/train_summary.json`` when the run finished).
    """
    return _Run(cfg, resume, overwrite).train(stop_at)

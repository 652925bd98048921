"""Base models and tokenizers: tiny LLaMA presets, a local BPE tokenizer, motion tokens, precision.

Everything here is offline. ``load_base_model("tiny")`` / ``("nano")`` builds a randomly
initialised ``LlamaForCausalLM`` from a preset; ``load_base_model("/path/to/dir")`` loads any
Hugging Face causal LM and its tokenizer from a local directory; anything else (e.g. a hub id such
as ``meta-llama/Llama-2-7b-hf``) fails at once, before any network access.

Precision and quantization are decided in one place, :func:`resolve_precision`.

``transformers`` is imported inside the functions that need it (its import costs seconds).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

import torch

from motiongpt.config import ConfigError, apply_overrides
from motiongpt.llm.tokens import (
    MotionTokenFormat,
    codes_to_text,
    motion_token_strings,
    text_to_codes,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "ModelPreset",
    "TINY",
    "NANO",
    "PRESETS",
    "get_preset",
    "build_preset_model",
    "SPECIAL_TOKENS",
    "train_bpe_tokenizer",
    "MotionTokenIds",
    "add_motion_tokens",
    "verify_motion_tokens",
    "OfflineModelError",
    "resolve_precision",
    "load_base_model",
]

Method = Literal["lora", "qlora", "8bit", "full"]


# --------------------------------------------------------------------------------------------
# presets


@dataclass(frozen=True)
class ModelPreset:
    """A LLaMA-architecture model small enough to build from scratch (random init) on a CPU.

    ``vocab_size`` is not part of the preset: it comes from the tokenizer the model is built for.
    """

    hidden_size: int = 256
    """Width of the residual stream (and of every token embedding)."""
    num_hidden_layers: int = 4
    """Number of decoder blocks."""
    num_attention_heads: int = 4
    """Attention heads per block; ``hidden_size`` must be divisible by it (head dim = hidden / heads)."""
    num_key_value_heads: int | None = None
    """Key/value heads (grouped-query attention); ``None`` means one per attention head (plain MHA)."""
    intermediate_size: int = 688
    """Width of the SwiGLU MLP (LLaMA uses about 8/3 x hidden, rounded to a multiple of 16)."""
    max_position_embeddings: int = 1024
    """Longest sequence (prompt + response) the RoPE tables are sized for."""
    tie_word_embeddings: bool = True
    """Share the input embedding matrix with the LM head (fewer parameters; one row per motion token)."""
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    rms_norm_eps: float = 1e-5
    """Epsilon of the RMSNorm layers."""
    initializer_range: float = 0.02
    """Std of the normal init of every linear / embedding weight."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ModelPreset.{name} must be a positive integer, got {v!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"ModelPreset.hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        kv = self.num_key_value_heads
        if kv is not None and (kv < 1 or self.num_attention_heads % kv):
            raise ValueError(
                f"ModelPreset.num_attention_heads {self.num_attention_heads} is not divisible by "
                f"num_key_value_heads {kv}"
            )
        if self.max_position_embeddings < 16:
            raise ValueError(f"ModelPreset.max_position_embeddings is too small: {self.max_position_embeddings}")

    def llama_config(self, vocab_size: int, *, bos_token_id: int | None = None, eos_token_id: int | None = None,
                     pad_token_id: int | None = None) -> Any:
        """The ``transformers.LlamaConfig`` of this preset for a tokenizer of ``vocab_size`` ids."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads or self.num_attention_heads,
            max_position_embeddings=self.max_position_embeddings,
            tie_word_embeddings=self.tie_word_embeddings,
            rope_theta=self.rope_theta,
            rms_norm_eps=self.rms_norm_eps,
            initializer_range=self.initializer_range,
            hidden_act="silu",
            attention_bias=False,
            mlp_bias=False,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )

    def num_parameters(self, vocab_size: int) -> int:
        """Parameter count for ``vocab_size`` ids (without building the model)."""
        h, i, n = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        kv_dim = (self.num_key_value_heads or self.num_attention_heads) * (h // self.num_attention_heads)
        per_layer = 2 * h * h + 2 * h * kv_dim + 3 * h * i + 2 * h
        emb = vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return n * per_layer + emb + h


TINY = ModelPreset()
"""The embedded default: hidden 256, 4 layers x 4 heads (head dim 64), SwiGLU 688, tied embeddings.

Size: 3.16 M parameters in the blocks + 256 per vocabulary row (a 1-2k BPE vocabulary plus 514
motion tokens: 0.4-0.7 M) = ~3.5-3.9 M. Reasoning: a t2m example is ~125-130 tokens in the vocab
format (Alpaca prompt + caption ~75, 49 motion tokens + 2 wrappers + eos), so a batch of 16 is
~2k tokens and a training step costs ~6 x 3.5 M x 2k = ~42 GFLOP, well under a second on two CPU
cores, so several epochs of a few thousand records fit in minutes (timings: BENCHMARKS.md). Width 256 gives 64-dim heads and room for
512 distinguishable code embeddings; 4 layers is a judgement (not measured) of the depth needed for
the two things the tasks need (condition on the caption, copy/position key tokens in a ~50-token span);
wider or deeper models cost time linearly on CPU, which the few-thousand-record corpus cannot
repay. Tied embeddings keep each motion token to one trainable row, shared by input and output.
A 50-step spot check on a 3,000-record synthetic caption -> codes corpus brought the response loss
from 7.1 to 5.0 (on a busy machine; a full learning run belongs to the training-loop tests)."""

NANO = ModelPreset(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                   max_position_embeddings=1024)
"""For tests: hidden 64, 2 layers, 4 heads, MLP 128 (~0.1 M block parameters); builds in milliseconds."""

PRESETS: dict[str, ModelPreset] = {"tiny": TINY, "nano": NANO}


def get_preset(name: str, overrides: Sequence[str] | None = None) -> ModelPreset:
    """The preset called ``name``, with optional ``key=value`` overrides (``hidden_size=128``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    preset = PRESETS[name]
    if overrides:
        try:
            preset = apply_overrides(preset, list(overrides), source=f"preset {name!r}")
        except ConfigError as e:
            raise ValueError(str(e)) from e
    return preset


def build_preset_model(preset: ModelPreset | str, tokenizer: "PreTrainedTokenizerBase", *, seed: int = 0) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized for ``tokenizer`` (fp32, eval mode off).

    Deterministic for a given ``seed`` and does not disturb the global torch RNG.
    """
    from transformers import LlamaForCausalLM

    if isinstance(preset, str):
        preset = get_preset(preset)
    cfg = preset.llama_config(
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return model


# --------------------------------------------------------------------------------------------
# tokenizer

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
"""Special tokens of the local BPE tokenizer (ids 0..3 in this order: unk, bos, eos, pad)."""


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike | None = None,
    *,
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> "PreTrainedTokenizerBase":
    """Train a byte-level BPE tokenizer on ``texts`` with the ``tokenizers`` library.

    Byte-level: any string encodes (no unknown characters) and decodes back exactly. Special
    tokens ``<unk>`` ``<s>`` ``</s>`` ``<pad>`` get ids 0-3; encoding adds ``<s>`` in front by
    default (as LLaMA's tokenizer does); eos is appended by the example builder. Deterministic for
    the same texts and settings. With ``out_dir`` it is saved with ``save_pretrained`` so that
    ``AutoTokenizer.from_pretrained(out_dir)`` reloads the same tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in texts if isinstance(t, str) and t]
    if not texts:
        raise ValueError("train_bpe_tokenizer: no texts to train on")
    specials = [SPECIAL_TOKENS["unk_token"], SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"],
                SPECIAL_TOKENS["pad_token"]]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + len(specials):
        raise ValueError(f"vocab_size {vocab_size} is below the byte alphabet + specials ({len(alphabet) + 4})")
    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos = SPECIAL_TOKENS["bos_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length, **SPECIAL_TOKENS)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(out_dir))
    return fast


# --------------------------------------------------------------------------------------------
# motion tokens


@dataclass(frozen=True)
class MotionTokenIds:
    """Token ids of a motion format in one tokenizer."""

    fmt: MotionTokenFormat
    start_id: int
    """Id of ``<Motion Token>``."""
    end_id: int
    """Id of ``</Motion Token>``."""
    code_ids: tuple[int, ...] = ()
    """``code_ids[K]`` is the id of ``<motion_id_K>`` (vocab format); empty for digits."""
    num_added: int = 0
    """How many strings the call that produced this added to the tokenizer (0 when already there)."""
    roundtrip_exact: bool = True
    """``decode(encode(span)) == span`` held for a full span of every code."""

    def id_to_code(self) -> dict[int, int]:
        return {tid: k for k, tid in enumerate(self.code_ids)}

    def code_ids_tensor(self) -> torch.Tensor:
        return torch.tensor(self.code_ids, dtype=torch.long)

    def all_ids(self) -> list[int]:
        """Every id owned by the format (wrappers, then codes): e.g. for a decoding mask."""
        return [self.start_id, self.end_id, *self.code_ids]

    def to_dict(self) -> dict[str, Any]:
        return {"fmt": self.fmt.to_dict(), "start_id": self.start_id, "end_id": self.end_id,
                "code_ids": list(self.code_ids)}


def verify_motion_tokens(tokenizer: "PreTrainedTokenizerBase", fmt: MotionTokenFormat) -> MotionTokenIds:
    """Check that ``tokenizer`` holds ``fmt``'s tokens properly and return their ids.

    Raises ``RuntimeError`` when a token string is missing or does not encode to exactly one id,
    or when a full span (every code once, wrapped) does not encode to ``[start, *codes, end]``
    (vocab) or does not decode back to the same codes (both formats).
    """
    strings = motion_token_strings(fmt)
    vocab = tokenizer.get_vocab()
    missing = [s for s in strings if s not in vocab]
    if missing:
        raise RuntimeError(f"{len(missing)} motion token(s) missing from the tokenizer, e.g. {missing[:3]}")
    ids = [vocab[s] for s in strings]
    encoded = tokenizer(strings, add_special_tokens=False)["input_ids"]
    bad = [(s, e) for s, e, i in zip(strings, encoded, ids) if list(e) != [i]]
    if bad:
        s, e = bad[0]
        raise RuntimeError(
            f"{len(bad)} motion token(s) do not encode to exactly one id, e.g. {s!r} -> {list(e)}"
        )
    start_id, end_id, code_ids = ids[0], ids[1], tuple(ids[2:])
    codes = list(range(fmt.nb_code))
    span = codes_to_text(codes, fmt)
    span_ids = list(tokenizer(span, add_special_tokens=False, verbose=False)["input_ids"])
    if fmt.kind == "vocab" and span_ids != [start_id, *code_ids, end_id]:
        raise RuntimeError("a full motion span does not encode to [start, *code ids, end]")
    decoded = tokenizer.decode(span_ids, skip_special_tokens=True)
    exact = decoded == span
    if not exact and text_to_codes(decoded, fmt, allow_outside_text=True).codes != codes:
        raise RuntimeError(f"a motion span does not survive encode/decode: {span[:60]!r}... -> {decoded[:60]!r}...")
    return MotionTokenIds(fmt, start_id, end_id, code_ids, 0, exact)


def _init_new_rows(weight: torch.Tensor, new_ids: list[int], old_ids: torch.Tensor, noise: float,
                   gen: torch.Generator) -> None:
    old = weight.detach()[old_ids].float()
    mean = old.mean(0)
    std = old.std(0) if old.shape[0] > 1 else torch.zeros_like(mean)
    rows = mean + noise * std * torch.randn(len(new_ids), weight.shape[1], generator=gen)
    with torch.no_grad():
        weight[torch.tensor(new_ids, dtype=torch.long)] = rows.to(weight.dtype)


def add_motion_tokens(
    tokenizer: "PreTrainedTokenizerBase",
    model: Any,
    fmt: MotionTokenFormat,
    *,
    init_noise: float = 0.1,
    seed: int = 0,
    pad_to_multiple_of: int | None = None,
) -> MotionTokenIds:
    """Add ``fmt``'s token strings to ``tokenizer`` and size ``model``'s embeddings for them.

    The strings are added as *normal* (not special) tokens, unnormalised and without stripping,
    so ``decode(..., skip_special_tokens=True)`` keeps them. Embedding (and untied LM-head) rows of
    the new ids are initialised to the mean of the existing rows plus Gaussian noise of
    ``init_noise`` x the per-dimension std of those rows (seeded): the mean keeps the new tokens'
    logits at the average of the old ones, so the model does not start out predicting (or being
    thrown by) motion tokens; the small noise makes the 512 codes distinguishable as *inputs* from
    step 0 (with identical rows, key tokens given in a prompt would all look the same until
    training pulled them apart). Only rows of ids added by this call are touched; a second call
    adds nothing and changes nothing. ``model`` may be ``None`` (tokenizer only).

    Returns the id table (after :func:`verify_motion_tokens`).
    """
    from tokenizers import AddedToken

    strings = motion_token_strings(fmt)
    if model is not None and getattr(getattr(model, "config", None), "output_token_ids", None):
        model = None  # its output rows were fixed when it was built (motiongpt.llm.text_conditioned)
    vocab = tokenizer.get_vocab()
    old_len = len(tokenizer)
    missing = [s for s in strings if s not in vocab]
    if missing:
        tokenizer.add_tokens(
            [AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False, special=False)
             for s in missing]
        )
    vocab = tokenizer.get_vocab()
    new_ids = sorted(vocab[s] for s in missing)
    if model is not None:
        rows_before = model.get_input_embeddings().weight.shape[0]
        if rows_before < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=pad_to_multiple_of, mean_resizing=False)
        emb = model.get_input_embeddings()
        # rows to initialise: the ids added now, plus any rows the resize created (padding rows,
        # or ids a previously extended tokenizer already had but this model lacked)
        init_ids = sorted(set(new_ids) | set(range(rows_before, emb.weight.shape[0])))
        if init_ids:
            gen = torch.Generator().manual_seed(seed)
            skip = set(init_ids)
            old_ids = torch.tensor([i for i in range(min(old_len, rows_before)) if i not in skip], dtype=torch.long)
            if old_ids.numel() == 0:
                raise RuntimeError("add_motion_tokens: the model has no existing embedding rows to initialise from")
            _init_new_rows(emb.weight, init_ids, old_ids, init_noise, gen)
            head = model.get_output_embeddings()
            if head is not None and head.weight.data_ptr() != emb.weight.data_ptr():
                _init_new_rows(head.weight, init_ids, old_ids, init_noise, gen)
                if getattr(head, "bias", None) is not None:
                    with torch.no_grad():
                        head.bias[torch.tensor(init_ids)] = head.bias[old_ids].mean()
    ids = verify_motion_tokens(tokenizer, fmt)
    return dataclasses.replace(ids, num_added=len(missing))


# --------------------------------------------------------------------------------------------
# precision


_DTYPE_ALIASES = {
    "auto": "auto",
    "float32": "float32", "fp32": "float32", "32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16", "16": "float16",
}
_MIXED = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}


def resolve_precision(method: Method = "lora", dtype: str = "auto", device: str = "cpu") -> dict[str, Any]:
    """Decide weights dtype, compute dtype, quantization and mixed precision for a run.

    ``method``: ``full`` (every weight trained), ``lora`` (frozen base + adapters), ``qlora``
    (frozen 4-bit NF4 base with double quantization + adapters), ``8bit`` (frozen LLM.int8 base +
    adapters). A quantized base can only be tuned through adapters, so ``qlora``/``8bit`` always
    mean adapters and ``full`` never quantizes. ``dtype``: ``auto`` | ``float32``/``fp32`` |
    ``bfloat16``/``bf16`` | ``float16``/``fp16``. ``device``: ``cpu`` or ``cuda[:N]``.

    Policy (ValueError for the unsupported combinations):

    * ``auto`` -> fp32 on CPU; bf16 on CUDA when supported, else fp16.
    * fp16 on CPU -> error (CPU fp16 matmuls are slow or missing and fp16 training needs a GPU
      grad scaler).
    * bf16 on CPU -> allowed with a ``UserWarning``: it runs, but ~30x slower than fp32 on CPUs
      without native bf16 (measured here); some CPUs (AMX) are fast, so it is not refused.
    * bf16 on a CUDA GPU without bf16 support -> error; CUDA requested but unavailable -> error.
    * ``full``: weights stay fp32 (master weights for the optimizer); the dtype only selects
      accelerate's ``mixed_precision``. Adapter methods load the frozen base in ``dtype``.
    * ``qlora``/``8bit`` need ``bitsandbytes`` installed; on CPU they use fp32 compute (works with
      the bitsandbytes CPU backend, slowly; bf16 compute is ~10x slower still).

    Returns a dict: ``method``, ``device``, ``dtype`` (torch dtype of the loaded weights),
    ``compute_dtype``, ``mixed_precision`` (``no``/``bf16``/``fp16``, for accelerate),
    ``quantization_config`` (a ``BitsAndBytesConfig`` or ``None``), ``adapter`` (bool),
    ``prepare_kbit`` (call ``peft.prepare_model_for_kbit_training``), ``model_kwargs`` (for
    ``from_pretrained``) and ``warnings`` (list of str).
    """
    if method not in ("lora", "qlora", "8bit", "full"):
        raise ValueError(f"unknown fine-tuning method {method!r}; known: ['lora', 'qlora', '8bit', 'full']")
    key = str(dtype).lower().replace("torch.", "")
    if key not in _DTYPE_ALIASES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    name = _DTYPE_ALIASES[key]
    dev = str(device).lower()
    is_cuda = dev == "cuda" or dev.startswith("cuda:")
    if not (dev == "cpu" or is_cuda):
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda[:N]'")
    if is_cuda and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available (torch.cuda.is_available() is False)")
    notes: list[str] = []
    if name == "auto":
        if is_cuda:
            name = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            name = "float32"
    if not is_cuda and name == "float16":
        raise ValueError(
            f"float16 on CPU is not supported (method {method!r}): use float32 on CPU, or fp16 on a CUDA GPU"
        )
    if is_cuda and name == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise ValueError("bfloat16 requested but this GPU does not support it: use float16 (or float32)")
    if not is_cuda and name == "bfloat16":
        msg = ("bfloat16 on CPU runs but is ~30x slower than float32 on CPUs without native bf16; "
               "prefer dtype=float32 on CPU")
        warnings.warn(msg, UserWarning, stacklevel=2)
        notes.append(msg)

    tdtype = getattr(torch, name)
    quant = None
    if method in ("qlora", "8bit"):
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ValueError(f"method {method!r} needs the bitsandbytes package (pip install bitsandbytes)")
        from transformers import BitsAndBytesConfig

        if method == "qlora":
            quant = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=tdtype,
            )
        else:
            quant = BitsAndBytesConfig(load_in_8bit=True)
        if not is_cuda:
            notes.append(f"{method} on CPU uses the bitsandbytes CPU backend: correct but slow")
    weights_dtype = torch.float32 if method == "full" else tdtype
    model_kwargs: dict[str, Any] = {"dtype": weights_dtype}
    if quant is not None:
        model_kwargs["quantization_config"] = quant
        model_kwargs["device_map"] = {"": "cpu" if not is_cuda else (dev if ":" in dev else "cuda:0")}
    return {
        "method": method,
        "device": dev,
        "dtype": weights_dtype,
        "compute_dtype": tdtype,
        "mixed_precision": _MIXED[name],
        "quantization_config": quant,
        "adapter": method != "full",
        "prepare_kbit": quant is not None,
        "model_kwargs": model_kwargs,
        "warnings": notes,
    }


# --------------------------------------------------------------------------------------------
# loading


class OfflineModelError(ValueError):
    """A model name that is neither a preset nor a local directory (this toolkit never downloads)."""


def _load_tokenizer_dir(path: str | os.PathLike) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.is_dir():
        raise OfflineModelError(
            f"tokenizer {str(path)!r} is not a local directory; this toolkit runs offline: "
            "pass the directory a tokenizer was saved to"
        )
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def load_base_model(
    name_or_path: str | os.PathLike,
    tokenizer: "PreTrainedTokenizerBase | str | os.PathLike | None" = None,
    *,
    method: Method = "full",
    dtype: str = "auto",
    device: str = "cpu",
    seed: int = 0,
    preset_overrides: Sequence[str] | None = None,
) -> tuple[Any, "PreTrainedTokenizerBase"]:
    """Load (or build) the base causal LM and its tokenizer; returns ``(model, tokenizer)``.

    * ``"tiny"`` / ``"nano"`` (as strings; a folder of that name needs ``"./tiny"``): a randomly
      initialised preset (seeded) sized for ``tokenizer``, which is required here (a tokenizer
      object or a directory; train one with :func:`train_bpe_tokenizer`).
      ``preset_overrides``: ``["hidden_size=128", ...]``.
    * an existing local directory: ``AutoModelForCausalLM.from_pretrained(dir,
      local_files_only=True)`` and its tokenizer (or ``tokenizer`` when given).
    * anything else (e.g. ``meta-llama/Llama-2-7b-hf``): :class:`OfflineModelError` at once,
      without any network access.

    Precision comes from :func:`resolve_precision(method, dtype, device) <resolve_precision>`;
    quantized methods on a preset go through a temporary ``save_pretrained`` directory. A
    tokenizer without a pad token gets ``unk`` (else ``eos``) as pad.
    """
    name = str(name_or_path) if not isinstance(name_or_path, Path) else os.fspath(name_or_path)
    path = Path(name)
    # a preset name always means the preset, even if a folder of that name exists in the working
    # directory (pass "./tiny" for such a folder)
    is_preset = isinstance(name_or_path, str) and name in PRESETS
    if not is_preset and not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file"
        raise OfflineModelError(
            f"{name!r} is not a local directory ({what}); this toolkit runs offline: download the "
            f"checkpoint elsewhere and pass its directory (or use a preset: {', '.join(sorted(PRESETS))})"
        )
    if is_preset and preset_overrides is None:
        preset_overrides = []
    if not is_preset and preset_overrides:
        raise ValueError("preset_overrides only apply to the presets " + ", ".join(sorted(PRESETS)))
    prec = resolve_precision(method, dtype, device)

    if is_preset:
        if tokenizer is None:
            raise ValueError(
                f"preset {name!r} needs a tokenizer (an object or a directory): train one with "
                "motiongpt.llm.train_bpe_tokenizer(texts, vocab_size, out_dir)"
            )
        tok = tokenizer if not isinstance(tokenizer, (str, os.PathLike)) else _load_tokenizer_dir(tokenizer)
        _ensure_pad(tok)
        model = build_preset_model(get_preset(name, preset_overrides), tok, seed=seed)
        if prec["quantization_config"] is not None:
            from transformers import AutoModelForCausalLM

            with tempfile.TemporaryDirectory(prefix="motiongpt_preset_") as tmp:
                model.save_pretrained(tmp)
                model = AutoModelForCausalLM.from_pretrained(tmp, local_files_only=True, **prec["model_kwargs"])
        else:
            model = model.to(device=prec["device"], dtype=prec["dtype"])
        return model, tok

    from transformers import AutoModelForCausalLM

    import motiongpt.llm.text_conditioned  # noqa: F401  (registers its model type with AutoModelForCausalLM)

    if not (path / "config.json").is_file():
        raise OfflineModelError(f"{name!r} is a directory but holds no config.json: not a Hugging Face checkpoint")
    if tokenizer is None:
        tok = _load_tokenizer_dir(path)
    elif isinstance(tokenizer, (str, os.PathLike)):
        tok = _load_tokenizer_dir(tokenizer)
    else:
        tok = tokenizer
    _ensure_pad(tok)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **prec["model_kwargs"])
    if prec["quantization_config"] is None:
        model = model.to(prec["device"])
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def _ensure_pad(tokenizer: "PreTrainedTokenizerBase") -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token

"""A small motion decoder that reads a frozen pretrained LLM's states of the prompt's words.

Why: a pretrained LLM knows that "a gentleman springs up twice" and "a man jumps twice" say the
same thing; a decoder trained from scratch on one corpus's captions knows only that corpus's words.
Fine-tuning a whole pretrained LLM on motion tokens costs more than a CPU budget allows (the motion
positions are most of every record, and each passes through every layer and a 49k-row head), so
this model splits the work the way T2M-GPT conditions on CLIP and MotionGPT-T5 on a T5 encoder:

* ``text_encoder``: the first ``k`` blocks of any LLaMA-family causal LM (SmolLM2, Llama, Mistral,
  Qwen2: anything whose base model has ``.layers``), frozen. It reads the words of the sequence
  alone (motion tokens left out: most of a record is motion, and the encoder costs more per token
  than the decoder), each in the context of the words before it, as in the LLM itself;
* the decoder: a small LLaMA (a preset such as ``tiny``) over the same sequence; at every word
  position its input is ``text_proj(encoder state)``, at every motion position its own embedding;
* its embedding and (tied) head cover only the rows a response can hold (the motion format's ids,
  eos, pad): a 49k-row softmax at every supervised position would cost more than the decoder.

The tokenizer is the pretrained LLM's, extended with the motion tokens, so prompts, templates,
constrained decoding, guidance, reranking and composition work unchanged: :meth:`forward` returns
logits over the whole vocabulary (``-inf`` outside the output rows) unless ``full_logits=False``
(training: :func:`motiongpt.llm.finetune.causal_lm_loss` maps the targets to rows instead).

Caches: the encoder keeps its keys / values in a cache of its own attached to the decoder's
(``past_key_values.text_cache``), so a sequence can be fed in pieces (the generator's shared prompt
prefix, then token by token).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import CausalLMOutputWithPast

from motiongpt.utils.tensors import index_of

__all__ = [
    "MODEL_TYPE",
    "ENCODER_MODULES",
    "TextConditionedLlamaConfig",
    "TextConditionedLlamaForCausalLM",
    "build_text_conditioned_model",
    "output_rows",
    "is_text_conditioned",
]

MODEL_TYPE = "motiongpt_text_llama"
ENCODER_MODULES = r".*text_encoder\..*"
"""peft ``exclude_modules`` pattern of the frozen encoder (adapters go on the decoder only)."""


class TextConditionedLlamaConfig(LlamaConfig):
    """``LlamaConfig`` of the decoder (``vocab_size`` = its output rows) plus the encoder's config.

    ``text_encoder``: the frozen encoder's config as a dict (``model_type`` included, layers already
    cut to ``k``); ``output_token_ids``: the tokenizer ids of the decoder's rows, in row order;
    ``full_vocab_size``: the tokenizer's size (logits are returned over it); ``text_filler_id``: the
    id the encoder reads at motion positions.
    """

    model_type = MODEL_TYPE

    def __init__(self, text_encoder: dict | None = None, output_token_ids: Sequence[int] | None = None,
                 full_vocab_size: int = 0, text_filler_id: int = 0, **kwargs: Any) -> None:
        self.text_encoder = dict(text_encoder or {})
        self.output_token_ids = [int(i) for i in (output_token_ids or [])]
        self.full_vocab_size = int(full_vocab_size)
        self.text_filler_id = int(text_filler_id)
        super().__init__(**kwargs)


def _encoder_config(d: dict) -> Any:
    d = dict(d)
    model_type = d.pop("model_type", None)
    if not model_type:
        raise ValueError("TextConditionedLlamaConfig.text_encoder has no model_type")
    return AutoConfig.for_model(model_type, **d)


@dataclass
class _WordCache:
    """The text encoder's cache, kept on the decoder's cache (``past_key_values.text_cache``)."""

    cache: Any
    """The encoder's keys / values (a ``DynamicCache``)."""
    valid: torch.Tensor
    """(B, T) bool: which cached entries are words (the rest: padding of shorter rows)."""

    def rows(self, b: int) -> None:
        """Fit the cache to a batch of ``b`` rows: a shared prompt prefix (batch 1) continued by
        every row is repeated; any other batch change is an error."""
        kept = self.valid.shape[0]
        if kept == b:
            return
        if kept != 1:
            raise RuntimeError(f"text cache of batch {kept} for a batch of {b}")
        if self.cache.get_seq_length():
            self.cache.batch_repeat_interleave(b)
        self.valid = self.valid.expand(b, -1).contiguous()


class TextConditionedLlamaForCausalLM(LlamaForCausalLM):
    """A LLaMA decoder over motion rows whose word positions read a frozen LLM's states (module doc)."""

    config_class = TextConditionedLlamaConfig
    base_model_prefix = "model"

    def __init__(self, config: TextConditionedLlamaConfig) -> None:
        if len(config.output_token_ids) != config.vocab_size:
            raise ValueError(f"output_token_ids has {len(config.output_token_ids)} ids for vocab_size {config.vocab_size}")
        super().__init__(config)
        enc_cfg = _encoder_config(config.text_encoder)
        self.text_encoder = AutoModel.from_config(enc_cfg)
        if not isinstance(getattr(self.text_encoder, "layers", None), nn.ModuleList):
            raise ValueError(f"text encoder {type(self.text_encoder).__name__} has no .layers (LLaMA-family bases only)")
        self.text_proj = nn.Linear(enc_cfg.hidden_size, config.hidden_size, bias=False)
        self.text_encoder.requires_grad_(False)
        self._maps: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.post_init()

    def row_maps(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(row_of (V_full,): tokenizer id -> row or -1 for a word, output_ids (R,))`` on ``device``;
        built from the config on first use (not buffers: loading builds modules on the meta device)."""
        if device not in self._maps:
            ids = torch.tensor(self.config.output_token_ids, dtype=torch.long, device=device)
            self._maps[device] = (index_of(ids, self.config.full_vocab_size), ids)
        return self._maps[device]

    def train(self, mode: bool = True) -> "TextConditionedLlamaForCausalLM":
        super().train(mode)
        self.text_encoder.eval()  # frozen: no dropout, whatever the decoder does
        return self

    # ---- inputs ----------------------------------------------------------------------------

    def _text_states(self, input_ids: torch.Tensor, is_text: torch.Tensor, attention_mask: Any,
                     position_ids: torch.Tensor | None, past_key_values: Any) -> torch.Tensor | None:
        """The encoder's states (B, L, E) at the words of the sequence (zeros elsewhere), or None.

        The encoder reads the words alone: per row, the word positions are gathered into (B, Lt)
        (motion tokens and padding left out: no compute is spent on them), each word at its index
        among the words of its record, under a causal mask within the record. Records: one per row,
        or (packed training rows, no cache) a new one wherever ``position_ids`` restarts at 0.
        With a cache, the words seen so far are in ``past_key_values.text_cache`` (:class:`_WordCache`).
        """
        b, n = input_ids.shape
        dev = input_ids.device
        valid = is_text
        if torch.is_tensor(attention_mask) and attention_mask.dim() == 2:
            valid = valid & attention_mask[:, -n:].bool()
        counts = valid.sum(1)  # (B,)
        lt = int(counts.max())
        words: _WordCache | None = None
        if past_key_values is not None:
            words = getattr(past_key_values, "text_cache", None)
            if words is None:
                words = past_key_values.text_cache = _WordCache(
                    DynamicCache(), torch.zeros((b, 0), dtype=torch.bool, device=dev))
            words.rows(b)
        cache = words.cache if words is not None else None
        if lt == 0:
            return None
        order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices[:, :lt]  # (B, Lt) words first
        idx = torch.arange(lt, device=dev)
        sel_valid = idx[None] < counts[:, None]  # (B, Lt)
        ids = input_ids.gather(1, order).masked_fill(~sel_valid, self.config.text_filler_id)
        if cache is None and position_ids is not None:
            rec = (position_ids == 0).long().cumsum(1).gather(1, order)  # (B, Lt) record of each word
        else:
            rec = torch.zeros((b, lt), dtype=torch.long, device=dev)
        starts = torch.ones_like(rec, dtype=torch.bool)
        starts[:, 1:] = rec[:, 1:] != rec[:, :-1]
        first = torch.where(starts, idx[None].expand(b, -1), torch.zeros_like(rec)).cummax(1).values
        pos = idx[None] - first  # (B, Lt) index of the word among its record's words
        allowed = (rec[:, :, None] == rec[:, None, :]) & (idx[:, None] >= idx[None, :]) & sel_valid[:, None, :]
        allowed = allowed | torch.eye(lt, dtype=torch.bool, device=dev)  # (B, Lt, Lt); padding sees itself
        if words is not None:
            pos = pos + words.valid.sum(1, keepdim=True)  # after the words already read
            past = words.valid[:, None, :].expand(b, lt, -1)  # (B, Lt, T)
            allowed = torch.cat([past, allowed], dim=2)  # (B, Lt, T + Lt)
        with torch.no_grad():
            out = self.text_encoder(input_ids=ids, attention_mask=allowed[:, None], position_ids=pos,
                                    past_key_values=cache, use_cache=cache is not None)
        if words is not None:
            words.valid = torch.cat([words.valid, sel_valid], dim=1)
        states = out.last_hidden_state  # (B, Lt, E)
        full = states.new_zeros((b, n, states.shape[-1]))
        full.scatter_(1, order[..., None].expand(-1, -1, states.shape[-1]), states)  # words back in place
        return full  # (B, L, E); entries off the words are never read

    def embed(self, input_ids: torch.Tensor, attention_mask: Any = None, position_ids: torch.Tensor | None = None,
              past_key_values: Any = None) -> torch.Tensor:
        """Decoder inputs (B, L, H): projected encoder states at words, own embeddings elsewhere."""
        rows = self.row_maps(input_ids.device)[0][input_ids]  # (B, L)
        is_text = rows < 0
        emb = self.model.embed_tokens(rows.clamp(min=0))  # (B, L, H)
        states = self._text_states(input_ids, is_text, attention_mask, position_ids, past_key_values)
        if states is not None:
            words = self.text_proj(states.to(self.text_proj.weight.dtype))  # (B, L, E) -> (B, L, H)
            emb = torch.where(is_text[..., None], words.to(emb.dtype), emb)
        return emb

    def full_vocab_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Row logits (..., R) -> tokenizer logits (..., V_full), ``-inf`` outside the output rows."""
        full = logits.new_full(logits.shape[:-1] + (self.config.full_vocab_size,), float("-inf"))
        full[..., self.row_maps(logits.device)[1]] = logits
        return full

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: Any = None,
                position_ids: torch.Tensor | None = None, past_key_values: Any = None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                use_cache: bool | None = None, logits_to_keep: int | torch.Tensor = 0,
                full_logits: bool = True, **kwargs: Any) -> CausalLMOutputWithPast:
        if labels is not None:
            raise ValueError("TextConditionedLlamaForCausalLM computes no loss itself: use "
                             "motiongpt.llm.finetune.causal_lm_loss")
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids")
            if use_cache and past_key_values is None:
                past_key_values = DynamicCache(config=self.config)
            inputs_embeds = self.embed(input_ids, attention_mask, position_ids, past_key_values)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state  # (B, L, H)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep] if hidden.dim() == 3 else hidden)  # (B, L', R) or rows
        if full_logits:
            logits = self.full_vocab_logits(logits)
        return CausalLMOutputWithPast(logits=logits, past_key_values=out.past_key_values)

    def resize_token_embeddings(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a text-conditioned model's rows are fixed when it is built (output_token_ids)")


AutoConfig.register(MODEL_TYPE, TextConditionedLlamaConfig)
AutoModelForCausalLM.register(TextConditionedLlamaConfig, TextConditionedLlamaForCausalLM)


def is_text_conditioned(model: Any) -> bool:
    """Whether ``model`` (peft-wrapped or not) is a :class:`TextConditionedLlamaForCausalLM`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return isinstance(base, TextConditionedLlamaForCausalLM)


def output_rows(tokenizer: Any, motion_ids: Sequence[int]) -> list[int]:
    """Tokenizer ids a response can hold, in row order: the motion format's ids, then eos and pad."""
    rows = list(dict.fromkeys(int(i) for i in motion_ids))
    for special in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        if special is not None and special not in rows:
            rows.append(int(special))
    return rows


def build_text_conditioned_model(preset: Any, tokenizer: Any, encoder_dir: str | Path, encoder_layers: int,
                                 motion_ids: Sequence[int], *, seed: int = 0) -> TextConditionedLlamaForCausalLM:
    """A decoder of ``preset`` (random init, seeded) over the first ``encoder_layers`` blocks of the
    causal LM in ``encoder_dir`` (loaded, cut, frozen). ``tokenizer`` must extend that model's own."""
    from motiongpt.llm.model import get_preset

    if isinstance(preset, str):
        preset = get_preset(preset)
    encoder_dir = Path(encoder_dir)
    if not (encoder_dir / "config.json").is_file():
        raise FileNotFoundError(f"text encoder {encoder_dir} holds no config.json (a Hugging Face model directory)")
    enc_cfg = AutoConfig.from_pretrained(str(encoder_dir), local_files_only=True)
    n = int(getattr(enc_cfg, "num_hidden_layers", 0))
    if not 1 <= encoder_layers <= n:
        raise ValueError(f"text_encoder_layers {encoder_layers} is not in 1..{n} (the layers of {encoder_dir})")
    if len(tokenizer) < int(getattr(enc_cfg, "vocab_size", 0)):
        raise ValueError(f"the tokenizer ({len(tokenizer)} ids) does not extend {encoder_dir}'s ({enc_cfg.vocab_size})")
    encoder = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True, dtype=torch.float32)
    encoder.layers = encoder.layers[:encoder_layers]
    encoder.config.num_hidden_layers = encoder_layers
    enc_dict = encoder.config.to_dict()
    for k in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        enc_dict.pop(k, None)
    if "layer_types" in enc_dict and isinstance(enc_dict["layer_types"], list):
        enc_dict["layer_types"] = enc_dict["layer_types"][:encoder_layers]
    rows = output_rows(tokenizer, motion_ids)
    base = preset.llama_config(len(rows), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id).to_dict()
    for k in ("architectures", "transformers_version", "model_type", "_name_or_path"):
        base.pop(k, None)
    filler = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    cfg = TextConditionedLlamaConfig(text_encoder=enc_dict, output_token_ids=rows, full_vocab_size=len(tokenizer),
                                     text_filler_id=int(filler), **base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TextConditionedLlamaForCausalLM(cfg)
    model.text_encoder.load_state_dict(encoder.state_dict(), strict=True)
    model.text_encoder.requires_grad_(False)
    return model

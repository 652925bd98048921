"""The text-conditioned decoder (motiongpt.llm.text_conditioned) on a small random encoder built here.

What must hold: the encoder is frozen and reads words in context; prompts fed in pieces through the
caches give the logits of one pass (the generator's shared prefix); packed records do not see each
other; the compact loss equals the cross entropy over the whole vocabulary; the model reloads
exactly; fine-tuning builds and trains it through the toolkit's own path, and LoRA on top leaves
the encoder alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_testlib import WORDS, make_prepared, quick_cfg  # noqa: E402

from motiongpt.llm.tokens import MotionTokenFormat  # noqa: E402

NB = 32


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer random LLaMA with a BPE tokenizer, saved as a Hugging Face model directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from motiongpt.llm.model import train_bpe_tokenizer
    from motiongpt.llm.templates import ALPACA_PROMPT_WITH_INPUT, load_instructions

    out = tmp_path_factory.mktemp("encoder")
    texts = [" ".join(WORDS)] * 4 + WORDS + [ALPACA_PROMPT_WITH_INPUT] * 4
    texts += [t for v in load_instructions().values() for t in v] * 2
    tok = train_bpe_tokenizer(texts, vocab_size=1200, out_dir=out)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                      num_attention_heads=4, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def model_and_tok(encoder_dir: Path):
    from transformers import AutoTokenizer

    from motiongpt.llm.model import add_motion_tokens
    from motiongpt.llm.text_conditioned import build_text_conditioned_model

    tok = AutoTokenizer.from_pretrained(str(encoder_dir))
    ids = add_motion_tokens(tok, None, MotionTokenFormat("vocab", NB))
    model = build_text_conditioned_model("nano", tok, encoder_dir, 2, ids.all_ids(), seed=0).eval()
    return model, tok, ids


def _prompt(tok, text: str, codes: list[int]) -> torch.Tensor:
    span = "<Motion Token>" + "".join(f"<motion_id_{c}>" for c in codes)
    return tok(f"{text}\n###\n{span}", return_tensors="pt").input_ids  # (1, L)


def test_encoder_is_frozen_copy_of_the_pretrained_layers(model_and_tok, encoder_dir: Path) -> None:
    from transformers import AutoModel

    model, _, _ = model_and_tok
    ref = AutoModel.from_pretrained(str(encoder_dir))
    assert len(model.text_encoder.layers) == 2
    for name, p in model.text_encoder.named_parameters():
        assert not p.requires_grad, name
        assert torch.equal(p, ref.state_dict()[name]), name
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "text_proj.weight" in trainable and any(n.startswith("model.layers.") for n in trainable)
    # the decoder's rows: motion ids, eos, pad; nothing of the text vocabulary
    assert model.get_input_embeddings().weight.shape[0] == len(model.config.output_token_ids) == NB + 2 + 2


def test_words_read_in_context_and_logits_over_the_vocabulary(model_and_tok) -> None:
    model, tok, ids = model_and_tok
    a = _prompt(tok, "a person walks forward", [1, 2])
    b = _prompt(tok, "a person runs forward", [1, 2])
    with torch.no_grad():
        la, lb = model(a).logits, model(b).logits  # (1, L, V)
    assert la.shape[-1] == len(tok)
    allowed = torch.zeros(len(tok), dtype=torch.bool)
    allowed[model.config.output_token_ids] = True
    assert torch.isinf(la[0, -1, ~allowed]).all() and torch.isfinite(la[0, -1, allowed]).all()
    # the same motion tokens after other words: the words reach the motion positions
    assert not torch.allclose(la[0, -1], lb[0, -1])


def test_prompt_in_pieces_equals_one_pass(model_and_tok) -> None:
    model, tok, _ = model_and_tok
    x = _prompt(tok, "someone jumps then waves the hand", [3, 4, 5])
    with torch.no_grad():
        whole = model(x).logits[0, -1]
        first = model(x[:, :5], use_cache=True)
        rest = model(x[:, 5:], past_key_values=first.past_key_values, use_cache=True)
        # a shared prefix of batch 1 continued by a batch of 3 (the generator's layout)
        cache = model(x[:, :5], use_cache=True).past_key_values
        cache.batch_repeat_interleave(3)
        batch = model(x[:, 5:].repeat(3, 1), past_key_values=cache, use_cache=True)
    assert torch.allclose(rest.logits[0, -1], whole, atol=1e-5)
    assert torch.allclose(batch.logits[2, -1], whole, atol=1e-5)


def test_the_encoder_reads_the_words_alone(model_and_tok) -> None:
    """Motion tokens between words change nothing for the words; token by token equals one pass,
    also with left padding in a batch (the generator's layout)."""
    model, tok, ids = model_and_tok
    x = _prompt(tok, "a person waves", [4, 5])  # words, motion, words ("###") then motion
    words = model.row_maps(x.device)[0][x] < 0
    with torch.no_grad():
        s1 = model._text_states(x, words, None, None, None)[words]
        y = _prompt(tok, "a person waves", [9, 9, 9, 1])
        s2 = model._text_states(y, model.row_maps(y.device)[0][y] < 0, None, None, None)
        s2 = s2[model.row_maps(y.device)[0][y] < 0]
        assert torch.allclose(s1, s2, atol=1e-5)
        whole = model(x).logits[0]  # (L, V)
        out = model(x[:, :3], use_cache=True)
        steps = [out.logits[0, -1]]
        cache = out.past_key_values
        for t in range(3, x.shape[1]):
            out = model(x[:, t:t + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(out.logits[0, -1])
        assert torch.allclose(torch.stack(steps), whole[2:], atol=1e-4)
        # batch with left padding: row 0 padded, row 1 not
        z = _prompt(tok, "the man kicks with his leg twice", [3])
        pad = z.shape[1] - x.shape[1]
        batch = torch.cat([torch.cat([torch.full((1, pad), tok.pad_token_id), x], 1), z])
        mask = torch.ones_like(batch)
        mask[0, :pad] = 0
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        got = model(batch, attention_mask=mask, position_ids=pos).logits
        assert torch.allclose(got[0, pad:], whole, atol=1e-4)
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=4, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        assert set(out[0, x.shape[1]:].tolist()) <= set(model.config.output_token_ids)


def test_packed_records_do_not_see_each_other(model_and_tok) -> None:
    from motiongpt.llm.packing import attention_inputs

    model, tok, _ = model_and_tok
    a = _prompt(tok, "a person walks", [1, 2, 3])[0]
    b = _prompt(tok, "the man kicks with his leg", [7])[0]
    row = torch.cat([a, b])[None]  # (1, La + Lb)
    seg = torch.tensor([[0] * len(a) + [1] * len(b)])
    pos = torch.cat([torch.arange(len(a)), torch.arange(len(b))])[None]
    batch = {"input_ids": row, "attention_mask": torch.ones_like(row), "position_ids": pos, "segments": seg}
    kw = attention_inputs(batch, packed=True, packing_attention="mask4d", attn_implementation="sdpa",
                          dtype=torch.float32)
    with torch.no_grad():
        packed = model(input_ids=row, **kw).logits[0]  # (La + Lb, V)
        alone = model(b[None]).logits[0]
    assert torch.allclose(packed[len(a):], alone, atol=1e-5)


def test_compact_loss_equals_full_vocabulary_loss(model_and_tok) -> None:
    from motiongpt.llm.finetune import causal_lm_loss
    from motiongpt.llm.packing import IGNORE_INDEX

    model, tok, ids = model_and_tok
    x = _prompt(tok, "a person claps", [5, 6, 7])
    targets = torch.full_like(x, IGNORE_INDEX)
    targets[0, -4:-1] = x[0, -3:]  # next-token targets of the motion positions
    targets[0, -1] = tok.eos_token_id
    compact = causal_lm_loss(model, model.get_output_embeddings(), x, targets, {})
    logits = model(x).logits  # (1, L, V) with -inf outside the rows
    keep = targets != IGNORE_INDEX
    full = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
    assert torch.allclose(compact, full, atol=1e-4)
    with pytest.raises(ValueError, match="not among the model's output rows"):
        bad = targets.clone()
        bad[0, -1] = tok(" walks", add_special_tokens=False).input_ids[0]
        causal_lm_loss(model, model.get_output_embeddings(), x, bad, {})


def test_reload_is_exact(model_and_tok, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    import motiongpt.llm.text_conditioned  # noqa: F401

    model, tok, _ = model_and_tok
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
    x = _prompt(tok, "a woman turns left", [9])
    with torch.no_grad():
        assert torch.equal(again(x).logits, model(x).logits)


def test_finetune_builds_trains_and_lora_skips_the_encoder(encoder_dir: Path, tmp_path: Path) -> None:
    from motiongpt.llm.checkpoint import load_finetuned
    from motiongpt.llm.finetune import finetune

    prepared = make_prepared(tmp_path / "prep", base_model=str(encoder_dir), m2t=False, n_train=16, n_val=4)
    full = tmp_path / "full"
    summary = finetune(quick_cfg(prepared, full, "method=full", f"text_encoder={encoder_dir}",
                                 "text_encoder_layers=2", "train.max_steps=6", "optim.lr=1e-2"))
    assert summary["finished"] and summary["last_loss"] < summary["first_loss"]
    model, tok, fmt, info = load_finetuned(full)
    assert type(model).__name__ == "TextConditionedLlamaForCausalLM"
    enc_before = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    from transformers import AutoModel

    ref = AutoModel.from_pretrained(str(encoder_dir)).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in enc_before.items())  # training left it as loaded

    lora = tmp_path / "lora"
    finetune(quick_cfg(prepared, lora, f"base_model={full}", "method=lora", "train.max_steps=2"))
    peft_model, _, _, _ = load_finetuned(lora)
    names = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    assert names and not any("text_encoder" in n for n in names)


def test_text_encoder_needs_a_preset_and_full(encoder_dir: Path, tmp_path: Path) -> None:
    from motiongpt.config import ConfigError
    from motiongpt.llm.finetune_config import check_finetune_config

    with pytest.raises(ConfigError, match="text_encoder needs a preset"):
        check_finetune_config(quick_cfg(tmp_path, tmp_path / "o", "method=lora", f"text_encoder={encoder_dir}"))

"""Base models and tokenizers: presets, local BPE, motion tokens, offline loading."""

from __future__ import annotations

import os
import random
import socket
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from motiongpt.llm.model import (  # noqa: E402
    NANO,
    PRESETS,
    TINY,
    ModelPreset,
    OfflineModelError,
    add_motion_tokens,
    build_preset_model,
    get_preset,
    load_base_model,
    train_bpe_tokenizer,
    verify_motion_tokens,
)
from motiongpt.llm.templates import build_prompt, encode_prompt, load_instructions, tokenizer_corpus  # noqa: E402
from motiongpt.llm.tokens import MotionTokenFormat, codes_to_text, join_key_tokens, text_to_codes  # noqa: E402

WORDS = ("a person walks forward turns left right jumps runs waves the hand arm sits down stands up slowly "
         "quickly in a circle backwards kicks with his her leg then stops and").split()
VOCAB = MotionTokenFormat("vocab", 512)
DIGITS = MotionTokenFormat("digits", 512)


def _captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return tokenizer_corpus(_captions(300), load_instructions())


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, corpus):
    d = tmp_path_factory.mktemp("bpe")
    train_bpe_tokenizer(corpus, vocab_size=600, out_dir=d)
    return d


def _fresh_tokenizer(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)


# -------------------------------------------------------------------------------- presets


def test_presets():
    assert set(PRESETS) == {"tiny", "nano"}
    assert 192 <= TINY.hidden_size <= 256 and 4 <= TINY.num_hidden_layers <= 6
    assert TINY.max_position_embeddings >= 1024 and NANO.max_position_embeddings >= 1024
    assert NANO.num_hidden_layers == 2 and 32 <= NANO.hidden_size <= 64
    assert get_preset("nano", ["hidden_size=32", "tie_word_embeddings=false"]) == ModelPreset(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, tie_word_embeddings=False)
    with pytest.raises(ValueError, match="unknown key"):
        get_preset("nano", ["width=3"])
    with pytest.raises(ValueError, match="divisible"):
        get_preset("nano", ["hidden_size=30"])
    with pytest.raises(ValueError, match="unknown model preset"):
        get_preset("huge")


def test_preset_model_is_llama_seeded_and_sized(tok_dir):
    tok = _fresh_tokenizer(tok_dir)
    state = torch.random.get_rng_state()
    a = build_preset_model("nano", tok, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone
    b = build_preset_model("nano", tok, seed=3)
    c = build_preset_model("nano", tok, seed=4)
    assert type(a).__name__ == "LlamaForCausalLM"
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.get_input_embeddings().weight.shape == (len(tok), NANO.hidden_size)
    assert a.config.bos_token_id == tok.bos_token_id and a.config.eos_token_id == tok.eos_token_id
    n_params = sum(p.numel() for p in a.parameters())
    assert n_params == NANO.num_parameters(len(tok))
    assert TINY.num_parameters(2600) < 5_000_000


# ------------------------------------------------------------------------------ tokenizer


def test_bpe_deterministic_and_reloads(tmp_path, corpus, tok_dir):
    from transformers import AutoTokenizer

    train_bpe_tokenizer(corpus, vocab_size=600, out_dir=tmp_path / "again")
    assert (tmp_path / "again" / "tokenizer.json").read_bytes() == (tok_dir / "tokenizer.json").read_bytes()
    tok = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    fresh = train_bpe_tokenizer(corpus, vocab_size=600)
    assert tok.get_vocab() == fresh.get_vocab()
    specials = [tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id]
    assert specials == [0, 1, 2, 3]
    assert (tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token) == ("<unk>", "<s>", "</s>", "<pad>")
    text = "A person walks forward, then waves — naïve 测试 😀 123!"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.unk_token_id not in ids  # byte-level: nothing is unknown
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert ids == fresh(text)["input_ids"]
    # the prompt skeleton was in the corpus: it gets merged into few tokens
    assert len(tok("### Instruction:", add_special_tokens=False)["input_ids"]) <= 4
    with pytest.raises(ValueError, match="no texts"):
        train_bpe_tokenizer([], 600)


# --------------------------------------------------------------------------- motion tokens


def test_add_motion_tokens_vocab(tok_dir):
    tok = _fresh_tokenizer(tok_dir)
    model = build_preset_model("nano", tok, seed=0)
    old_len = len(tok)
    old_rows = model.get_input_embeddings().weight.detach().clone()

    ids = add_motion_tokens(tok, model, VOCAB)
    assert ids.num_added == 514 and len(tok) == old_len + 514 and ids.roundtrip_exact
    emb = model.get_input_embeddings().weight.detach()
    assert emb.shape[0] == len(tok) and model.get_output_embeddings().weight.shape[0] == len(tok)
    assert torch.equal(emb[:old_len], old_rows)  # existing rows untouched

    # every <motion_id_K> is exactly ONE id, in code order, distinct from everything else
    strings = [f"<motion_id_{k}>" for k in range(512)]
    encoded = tok(strings, add_special_tokens=False)["input_ids"]
    assert [e for e in encoded] == [[i] for i in ids.code_ids]
    assert list(ids.code_ids) == tok.convert_tokens_to_ids(strings)
    assert len(set(ids.all_ids())) == 514 and min(ids.all_ids()) >= old_len
    assert tok("<Motion Token>", add_special_tokens=False)["input_ids"] == [ids.start_id]
    assert tok("</Motion Token>", add_special_tokens=False)["input_ids"] == [ids.end_id]
    assert ids.id_to_code()[ids.code_ids[315]] == 315

    # init: the mean of the old rows plus small noise (rows distinct, close to the mean)
    new = emb[old_len:]
    mean, std = old_rows.mean(0), old_rows.std(0)
    assert torch.allclose(new.mean(0), mean, atol=5 * 0.1 * std.max().item() / 514**0.5)
    assert ((new - mean).abs() < 0.1 * std * 6).all()
    assert torch.unique(new, dim=0).shape[0] == 514

    # idempotent: nothing added, nothing changed
    before = model.get_input_embeddings().weight.detach().clone()
    again = add_motion_tokens(tok, model, VOCAB)
    assert again.num_added == 0 and len(tok) == old_len + 514
    assert again.code_ids == ids.code_ids and (again.start_id, again.end_id) == (ids.start_id, ids.end_id)
    assert torch.equal(model.get_input_embeddings().weight.detach(), before)


def test_untied_head_rows_initialised(tok_dir):
    tok = _fresh_tokenizer(tok_dir)
    model, tok = load_base_model("nano", tok, preset_overrides=["tie_word_embeddings=false"])
    head_old = model.get_output_embeddings().weight.detach().clone()
    n = len(tok)
    add_motion_tokens(tok, model, DIGITS)
    head = model.get_output_embeddings().weight.detach()
    emb = model.get_input_embeddings().weight.detach()
    assert head.shape[0] == emb.shape[0] == n + 2
    assert torch.equal(head[:n], head_old)
    assert torch.allclose(head[n:], head_old.mean(0).expand(2, -1), atol=0.1 * 6 * head_old.std(0).max().item())
    assert not torch.equal(head[n:], emb[n:])


def test_model_resized_for_an_already_extended_tokenizer(tok_dir):
    """Tokenizer extended first (e.g. reloaded from a run), model built from the base vocabulary."""
    tok = _fresh_tokenizer(tok_dir)
    model = build_preset_model("nano", tok, seed=0)
    n = len(tok)
    old_rows = model.get_input_embeddings().weight.detach().clone()
    assert add_motion_tokens(tok, None, VOCAB).num_added == 514
    ids = add_motion_tokens(tok, model, VOCAB)
    assert ids.num_added == 0
    emb = model.get_input_embeddings().weight.detach()
    assert emb.shape[0] == n + 514 and torch.equal(emb[:n], old_rows)
    assert ((emb[n:] - old_rows.mean(0)).abs() < 0.1 * 6 * old_rows.std(0)).all()  # mean-initialised too


def _decode_roundtrip(tok, text: str) -> str:
    return tok.decode(tok(text, add_special_tokens=False)["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("fmt", [VOCAB, DIGITS], ids=["vocab", "digits"])
def test_span_round_trip_through_tokenizer(tok_dir, fmt):
    tok = _fresh_tokenizer(tok_dir)
    ids = add_motion_tokens(tok, None, fmt)
    assert ids.num_added == (514 if fmt.kind == "vocab" else 2)
    rng = random.Random(5)
    for _ in range(60):
        codes = [rng.randrange(512) for _ in range(rng.choice([0, 1, 2, rng.randint(3, 60)]))]
        span = codes_to_text(codes, fmt)
        assert _decode_roundtrip(tok, span) == span
        caption = rng.choice(_captions(20, seed=1))
        joined = join_key_tokens(caption, codes, fmt)
        assert _decode_roundtrip(tok, joined) == joined
        prompt = build_prompt({"instruction": "Generate motion.", "input": joined})
        p_ids = encode_prompt(tok, prompt)
        assert tok.decode(p_ids, skip_special_tokens=True) == prompt
        back = text_to_codes(_decode_roundtrip(tok, span), fmt)
        assert back.ok and back.codes == codes
    if fmt.kind == "digits":
        bare = "315,91,406"
        assert _decode_roundtrip(tok, bare) == bare


def test_tokens_per_motion_vocab_vs_digits(tok_dir):
    """A typical motion: 49 codes (~9.8 s at 20 fps, one code per 4 frames)."""
    rng = random.Random(0)
    counts = {"vocab": [], "digits": []}
    for fmt in (VOCAB, DIGITS):
        tok = _fresh_tokenizer(tok_dir)
        add_motion_tokens(tok, None, fmt)
        for _ in range(20):
            codes = [rng.randrange(512) for _ in range(49)]
            counts[fmt.kind].append(len(tok(codes_to_text(codes, fmt), add_special_tokens=False)["input_ids"]))
    assert set(counts["vocab"]) == {51}  # 49 codes + 2 wrappers
    mean_digits = sum(counts["digits"]) / len(counts["digits"])
    # byte-level BPE without digit merges: one token per digit and per comma (~3.8 tokens per code)
    assert 170 <= mean_digits <= 200
    print(f"\ntokens per 49-code motion: vocab 51, digits {mean_digits:.1f}")


def test_verify_detects_missing_and_split_tokens(tok_dir):
    tok = _fresh_tokenizer(tok_dir)
    with pytest.raises(RuntimeError, match="missing"):
        verify_motion_tokens(tok, VOCAB)
    add_motion_tokens(tok, None, MotionTokenFormat("vocab", 8))
    with pytest.raises(RuntimeError, match="missing"):
        verify_motion_tokens(tok, MotionTokenFormat("vocab", 9))
    assert verify_motion_tokens(tok, MotionTokenFormat("vocab", 8)).code_ids


# ------------------------------------------------------------------------------------ loading


def test_hub_id_fails_fast_offline(monkeypatch, tmp_path):
    import transformers

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    def no_load(*args, **kwargs):
        raise AssertionError("from_pretrained called")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_load)
    for name in ("meta-llama/Llama-2-7b-hf", "gpt2", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", str(tmp_path / "nope")):
        t0 = time.perf_counter()
        with pytest.raises(OfflineModelError) as e:
            load_base_model(name)
        assert time.perf_counter() - t0 < 1.0
        msg = str(e.value)
        assert f"{name!r} is not a local directory" in msg and "this toolkit runs offline" in msg
        assert "download the checkpoint elsewhere and pass its directory" in msg
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"x")
    with pytest.raises(OfflineModelError, match="is a file"):
        load_base_model(a_file)
    with pytest.raises(OfflineModelError, match="config.json"):
        load_base_model(tmp_path)
    with pytest.raises(ValueError, match="needs a tokenizer"):
        load_base_model("nano")
    # a folder named like a preset does not shadow the preset; "./nano" means the folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nano").mkdir()
    with pytest.raises(ValueError, match="needs a tokenizer"):
        load_base_model("nano")
    with pytest.raises(OfflineModelError, match="config.json"):
        load_base_model("./nano")
    with pytest.raises(OfflineModelError, match="not a local directory"):
        load_base_model("nano", tokenizer="some-org/some-tokenizer")


def test_local_dir_reload_identical_logits(tmp_path, tok_dir):
    model, tok = load_base_model("nano", tok_dir, seed=1)
    ids = add_motion_tokens(tok, model, VOCAB)
    model.eval()
    fmt = VOCAB
    prompt = build_prompt({"instruction": "Generate motion.", "input": join_key_tokens("a person walks.", [3, 500], fmt)})
    x = torch.tensor([encode_prompt(tok, prompt) + [ids.start_id, ids.code_ids[7], ids.code_ids[511]]])
    with torch.no_grad():
        ref = model(x).logits
    out = tmp_path / "ckpt"
    model.save_pretrained(out)
    tok.save_pretrained(out)

    model2, tok2 = load_base_model(out)
    model2.eval()
    assert type(model2).__name__ == "LlamaForCausalLM"
    assert tok2.get_vocab() == tok.get_vocab()
    assert encode_prompt(tok2, prompt) == encode_prompt(tok, prompt)
    ids2 = verify_motion_tokens(tok2, fmt)
    assert ids2.code_ids == ids.code_ids and ids2.roundtrip_exact
    with torch.no_grad():
        again = model2(x).logits
    assert torch.equal(again, ref)
    # an explicit tokenizer directory is honoured too
    _, tok3 = load_base_model(out, tokenizer=out)
    assert tok3.get_vocab() == tok.get_vocab()


def test_load_preset_with_precision(tok_dir):
    model, tok = load_base_model("nano", tok_dir, method="lora", dtype="float32")
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="float16 on CPU"):
        load_base_model("nano", tok_dir, dtype="fp16")
    with pytest.warns(UserWarning, match="bfloat16 on CPU"):
        model, _ = load_base_model("nano", tok_dir, method="lora", dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.warns(UserWarning, match="bfloat16 on CPU"):
        model, _ = load_base_model("nano", tok_dir, method="full", dtype="bf16")
    assert next(model.parameters()).dtype == torch.float32  # full: fp32 master weights, bf16 autocast

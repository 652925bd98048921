"""The trainer's fast paths are exact: loss on the supervised positions only (LM head, last block's
tail), and sparse LoRA dropout (same distribution as ``nn.Dropout``)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_testlib import make_prepared, quick_cfg, single_thread, train_losses  # noqa: E402,F401

from motiongpt.llm.finetune import (  # noqa: E402
    SparseDropout,
    causal_lm_loss,
    dropped_positions,
    last_block_tail,
    prefix_sharing_allowed,
    shared_prefix_length,
    tail_on_rows,
    use_sparse_dropout,
)
from motiongpt.llm.packing import IGNORE_INDEX, TokenizedRecords, attention_inputs, collate_rows  # noqa: E402

VOCAB = 300


@pytest.fixture(scope="module")
def tokenizer():
    from motiongpt.llm.model import train_bpe_tokenizer
    from motiongpt.llm.templates import load_instructions, tokenizer_corpus

    return train_bpe_tokenizer(tokenizer_corpus(["a person walks", "someone jumps high"] * 20, load_instructions()),
                               vocab_size=VOCAB)


def _peft_model(tokenizer, mode: str, tied: bool = True):
    """A nano LLaMA with LoRA on all 7 projections and the LM head trained as ``mode`` says."""
    from peft import LoraConfig, get_peft_model

    from motiongpt.llm.model import build_preset_model, get_preset

    preset = get_preset("nano", [f"tie_word_embeddings={tied}"])
    model = build_preset_model(preset, tokenizer, seed=0)
    model.config.use_cache = False
    kw = {}
    if mode == "trainable_tokens":
        rows = list(range(len(tokenizer) - 20, len(tokenizer)))
        kw["trainable_token_indices"] = {"embed_tokens": rows} if tied else {"embed_tokens": rows, "lm_head": rows}
    elif mode == "modules_to_save":
        kw["modules_to_save"] = ["embed_tokens", "lm_head"]
        kw["ensure_weight_tying"] = tied
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], **kw)
    model = get_peft_model(model, cfg)
    # LoRA B starts at zero: give every adapter weight a value so its gradient path is exercised
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    return model


def _records(lengths: list[int], prompts: list[int], seed: int = 0, common: int = 0) -> TokenizedRecords:
    """Random records; the first ``common`` tokens are the same in all of them (a template)."""
    rng = np.random.default_rng(seed)
    head = rng.integers(4, VOCAB, size=common).tolist()
    ids, labels = [], []
    for n, k in zip(lengths, prompts, strict=True):
        x = head[:n] + rng.integers(4, VOCAB, size=max(0, n - common)).tolist()
        ids.append(x)
        labels.append([IGNORE_INDEX] * k + x[k:])
    return TokenizedRecords.from_lists(ids, labels)


def _loss_and_grads(model, batch, packed: bool, **kw) -> tuple[float, dict[str, torch.Tensor]]:
    """The per-token loss of ``causal_lm_loss(..., **kw)`` on ``batch`` (summed CE / targets, as the
    trainer divides) and every trainable tensor's gradient of it."""
    model.zero_grad(set_to_none=True)
    fwd = attention_inputs(batch, packed=packed, packing_attention="mask4d", attn_implementation="sdpa",
                           dtype=torch.float32)
    ce = causal_lm_loss(model, model.get_output_embeddings(), batch["input_ids"], batch["targets"], fwd, **kw)
    loss = ce / batch["num_targets"]
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("mode,tied", [("trainable_tokens", True), ("trainable_tokens", False),
                                       ("modules_to_save", False), ("none", True)])
@pytest.mark.parametrize("packed", [False, True])
def test_loss_on_supervised_rows_equals_full_logits(tokenizer, mode, tied, packed):
    """Same loss and same gradients (every trainable tensor) as computing all logits, to 1e-5."""
    model = _peft_model(tokenizer, mode, tied)
    recs = _records([9, 14, 6, 11], prompts=[5, 9, 2, 11])  # the last record has no supervised token
    plan = [[0, 1], [2, 3]] if packed else [[0], [1], [2], [3]]
    batch = collate_rows(recs, plan, pad_id=3, packed=packed)
    tail = last_block_tail(model)
    assert len(tail) == 2  # o_proj and mlp of the last block (LLaMA)
    full, g_full = _loss_and_grads(model, batch, packed, rows_only=False)
    head_only, g_head = _loss_and_grads(model, batch, packed, rows_only=True)
    fast, g_fast = _loss_and_grads(model, batch, packed, rows_only=True, tail=tail)
    assert int(batch["num_targets"]) == 4 + 5 + 4  # n - prompt per record
    assert head_only == pytest.approx(full, abs=1e-5) and fast == pytest.approx(full, abs=1e-5)
    assert set(g_full) == set(g_fast) and len(g_full) > 14
    for n in g_full:
        assert torch.allclose(g_head[n], g_full[n], atol=1e-5, rtol=1e-4), n
        assert torch.allclose(g_fast[n], g_full[n], atol=1e-5, rtol=1e-4), n
    assert any(g.abs().max() > 1e-3 for g in g_full.values())  # the gradients are not trivially zero


def test_head_sees_only_supervised_rows_and_tail_is_last_block_only(tokenizer):
    model = _peft_model(tokenizer, "trainable_tokens")
    recs = _records([12, 10], prompts=[8, 3])
    batch = collate_rows(recs, [[0], [1]], pad_id=3, packed=False)
    fwd = attention_inputs(batch, packed=False, packing_attention="mask4d", attn_implementation="sdpa",
                           dtype=torch.float32)
    assert fwd == {"attention_mask": None, "position_ids": None}  # right padding + causal: no mask needed
    rows = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, a, out: rows.append(out.shape))
    with torch.no_grad():
        ce = causal_lm_loss(model, model.get_output_embeddings(), batch["input_ids"], batch["targets"], fwd,
                            tail=last_block_tail(model))
        full = causal_lm_loss(model, model.get_output_embeddings(), batch["input_ids"], batch["targets"], fwd,
                              rows_only=False)
    handle.remove()
    assert rows[0] == (4 + 7, len(tokenizer)) and rows[1] == (2, 12, len(tokenizer))
    assert ce.item() == pytest.approx(full.item(), abs=1e-5)
    # restricting an earlier block's MLP is NOT exact (its outputs feed later attention): the check bites
    first_mlp = model.get_base_model().model.layers[0].mlp
    keep = batch["targets"] != IGNORE_INDEX
    with torch.no_grad(), tail_on_rows(first_mlp, keep):
        wrong = causal_lm_loss(model, model.get_output_embeddings(), batch["input_ids"], batch["targets"], fwd)
    assert abs(wrong.item() - full.item()) > 1e-3


def test_dropped_positions_are_a_bernoulli_process():
    n = 400_000
    for p in (0.05, 0.2):
        torch.manual_seed(1)
        pos = dropped_positions(n, p)
        assert pos.dtype == torch.int64 and int(pos.min()) >= 0 and int(pos.max()) < n
        assert bool((pos[1:] > pos[:-1]).all())  # sorted, no repeats
        sd = math.sqrt(n * p * (1 - p))
        assert abs(len(pos) - n * p) < 5 * sd
        # uniform over the range: each quarter holds a quarter of the hits
        quarters = torch.bincount(pos // (n // 4), minlength=4).double()
        assert (quarters - n * p / 4).abs().max() < 5 * math.sqrt(n / 4 * p)
        # independent positions: P(i and i+1 both dropped) = p^2
        both = torch.isin(pos + 1, pos).sum().item()
        assert abs(both - n * p * p) < 5 * math.sqrt(n * p * p)
        torch.manual_seed(1)
        assert torch.equal(pos, dropped_positions(n, p))  # reproducible from the global seed
    # a tiny tensor (fewer positions than one draw) and the loop that draws again
    assert len(dropped_positions(1, 0.1)) in (0, 1)
    with pytest.raises(ValueError, match="probability"):
        dropped_positions(10, 0.0)


def test_sparse_dropout_forward_backward_and_eval():
    torch.manual_seed(0)
    x = torch.randn(64, 37, 48, requires_grad=True)
    drop = SparseDropout(0.1)
    out = drop(x)
    zeroed = out == 0
    assert 0.05 < zeroed.float().mean().item() < 0.15
    assert torch.allclose(out[~zeroed], x[~zeroed] / 0.9)
    g = torch.randn_like(out)
    out.backward(g)
    assert torch.equal(x.grad == 0, zeroed)  # the same positions in backward
    assert torch.allclose(x.grad[~zeroed], g[~zeroed] / 0.9)
    # a non-contiguous input works element by element
    xt = x.detach().transpose(0, 1)
    yt = drop(xt)
    assert torch.allclose(yt[yt != 0], xt[yt != 0] / 0.9)
    drop.eval()
    assert drop(x) is x
    # the mean is preserved
    ones = torch.ones(200_000)
    assert SparseDropout(0.1)(ones).mean().item() == pytest.approx(1.0, abs=0.01)


def test_use_sparse_dropout_replaces_peft_dropout(tokenizer):
    from peft import LoraConfig, get_peft_model

    from motiongpt.llm.model import build_preset_model

    model = build_preset_model("nano", tokenizer, seed=0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "v_proj", "down_proj"]))
    x = torch.randint(4, VOCAB, (2, 9))
    model.eval()
    with torch.no_grad():
        before = model(input_ids=x).logits
    assert use_sparse_dropout(model) == 3 * model.config.num_hidden_layers
    kinds = {type(d).__name__ for m in model.modules() if hasattr(m, "lora_dropout") for d in m.lora_dropout.values()}
    assert kinds == {"SparseDropout"}
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, before)  # eval: dropout is the identity
    assert use_sparse_dropout(model) == 0  # idempotent
    assert "lora_dropout" not in " ".join(model.state_dict())  # no weights: saved adapters unchanged


def test_shared_prefix_length():
    recs = _records([20, 16, 25], prompts=[12, 14, 11], common=10)
    batch = collate_rows(recs, [[0], [1], [2]], pad_id=3, packed=False)
    lengths = batch["attention_mask"].sum(1)
    # rows share 10 tokens (maybe more by chance: never more than 10 here, tokens are random in [4, 300))
    assert shared_prefix_length(batch["input_ids"], batch["targets"], lengths) == 10
    # a target inside the common part caps the prefix: targets[t] != -100 from t = prompt - 1
    recs = _records([20, 16, 25], prompts=[12, 9, 11], common=10)
    batch = collate_rows(recs, [[0], [1], [2]], pad_id=3, packed=False)
    assert shared_prefix_length(batch["input_ids"], batch["targets"], batch["attention_mask"].sum(1)) == 8
    # every row keeps at least one token of its own; short prefixes and single rows are not shared
    recs = _records([10, 10], prompts=[10, 10], common=10)
    batch = collate_rows(recs, [[0], [1]], pad_id=3, packed=False)
    assert shared_prefix_length(batch["input_ids"], batch["targets"], batch["attention_mask"].sum(1)) == 9
    assert shared_prefix_length(batch["input_ids"][:1], batch["targets"][:1], torch.tensor([10])) == 0
    recs = _records([20, 16], prompts=[12, 14], common=5)
    batch = collate_rows(recs, [[0], [1]], pad_id=3, packed=False)
    assert shared_prefix_length(batch["input_ids"], batch["targets"], batch["attention_mask"].sum(1)) == 0


@pytest.mark.parametrize("mode", ["trainable_tokens", "modules_to_save"])
def test_shared_prefix_equals_per_row_forward(tokenizer, mode):
    """The common prefix run once (batch of 1) and cached for every row: same loss and gradients."""
    model = _peft_model(tokenizer, mode, tied=mode == "trainable_tokens")
    assert prefix_sharing_allowed(model, 256)
    recs = _records([22, 17, 30, 19], prompts=[14, 12, 20, 19], common=11)
    batch = collate_rows(recs, [[0], [1], [2], [3]], pad_id=3, packed=False)
    p = shared_prefix_length(batch["input_ids"], batch["targets"], batch["attention_mask"].sum(1))
    assert p == 11
    tail = last_block_tail(model)
    full, g_full = _loss_and_grads(model, batch, False, rows_only=False)
    shared, g_shared = _loss_and_grads(model, batch, False, tail=tail, prefix=p)
    assert shared == pytest.approx(full, abs=1e-5)
    for n in g_full:
        assert torch.allclose(g_shared[n], g_full[n], atol=1e-5, rtol=1e-4), n
    # a prefix that is NOT common to the rows changes the loss (the check bites)
    wrong, _ = _loss_and_grads(model, batch, False, tail=tail, prefix=p + 3)
    assert abs(wrong - full) > 1e-3


def test_prefix_sharing_needs_no_dropout(tokenizer):
    from peft import LoraConfig, get_peft_model

    from motiongpt.llm.model import build_preset_model

    model = get_peft_model(build_preset_model("nano", tokenizer, seed=0),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=["q_proj"],
                                      task_type="CAUSAL_LM"))
    assert not prefix_sharing_allowed(model, 256)
    use_sparse_dropout(model)
    assert not prefix_sharing_allowed(model, 256)
    assert prefix_sharing_allowed(_peft_model(tokenizer, "none"), 256)


def test_training_with_shared_prefix_equals_without(tmp_path):
    """A few optimizer steps of the real loop: the same losses and adapter with and without sharing."""
    from safetensors.torch import load_file

    from motiongpt.llm.checkpoint import read_run_config
    from motiongpt.llm.finetune import finetune

    prepared = make_prepared(tmp_path / "prep", n_train=16, n_val=4)
    opts = ["method=lora", "train.max_steps=4", "train.eval_every=2", "optim.lr=1e-2"]
    finetune(quick_cfg(prepared, tmp_path / "a", *opts))
    finetune(quick_cfg(prepared, tmp_path / "b", *opts, "batch.share_prefix=false"))
    assert read_run_config(tmp_path / "a")[1]["shared_prefix"] is True
    assert read_run_config(tmp_path / "b")[1]["shared_prefix"] is False
    assert train_losses(tmp_path / "a") == pytest.approx(train_losses(tmp_path / "b"), abs=1e-5)
    wa = load_file(str(tmp_path / "a" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    # Adam's normalised steps (lr 1e-2) turn float rounding in near-zero gradients into weight
    # differences of a few 1e-5; a real difference in the loss path moves weights by ~1e-2
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-4

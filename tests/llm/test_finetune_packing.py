"""Batching for fine-tuning: epoch plans, packing, per-record targets, and no cross-contamination."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_testlib import single_thread  # noqa: E402,F401

from motiongpt.llm.packing import (  # noqa: E402
    IGNORE_INDEX,
    TokenizedRecords,
    additive_mask,
    attention_inputs,
    block_causal_allowed,
    collate_rows,
    pack_rows,
    plan_epoch,
)


def _records(lengths: list[int], seed: int = 0, vocab: int = 300, prompt: int = 3) -> TokenizedRecords:
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for n in lengths:
        x = rng.integers(4, vocab, size=n).tolist()
        y = list(x)
        y[: min(prompt, n)] = [IGNORE_INDEX] * min(prompt, n)
        ids.append(x)
        labels.append(y)
    return TokenizedRecords.from_lists(ids, labels, tasks=["t2m"] * len(lengths))


def test_records_roundtrip_and_dataset(tmp_path):
    import datasets

    recs = _records([5, 9, 3, 12])
    assert len(recs) == 4 and recs.lengths.tolist() == [5, 9, 3, 12]
    # targets after the per-record shift: labels[1:] that are not -100
    assert recs.num_targets().tolist() == [2, 6, 0, 9]
    ds = datasets.Dataset.from_dict({
        "input_ids": [recs.record(i)[0].tolist() for i in range(4)],
        "labels": [recs.record(i)[1].tolist() for i in range(4)],
        "task": ["a", "b", "c", "d"],
    })
    again = TokenizedRecords.from_dataset(ds)
    assert again.fingerprint() == recs.fingerprint() and again.tasks == ["a", "b", "c", "d"]
    view = TokenizedRecords.from_dataset(ds.select([2, 0]))  # an indices mapping is honoured
    assert view.lengths.tolist() == [3, 5] and np.array_equal(view.record(1)[0], recs.record(0)[0])
    kept, dropped = recs.drop_longer_than(9)
    assert dropped == 1 and kept.lengths.tolist() == [5, 9, 3]


def test_plan_is_deterministic_and_covers_every_record():
    lengths = np.random.default_rng(0).integers(5, 60, size=101)
    kw = dict(seed=3, micro_batch_size=8, micro_batch_tokens=0, max_seq_len=128, packing=False)
    a = plan_epoch(lengths, epoch=0, **kw)
    assert a == plan_epoch(lengths, epoch=0, **kw)
    assert a != plan_epoch(lengths, epoch=1, **kw)  # reshuffled every epoch
    seen = sorted(i for mb in a for row in mb for i in row)
    assert seen == list(range(101)) and all(len(mb) <= 8 for mb in a)
    # a token budget caps rows x longest row
    b = plan_epoch(lengths, epoch=0, seed=3, micro_batch_size=0, micro_batch_tokens=200, max_seq_len=128,
                   packing=False)
    assert all(len(mb) * max(lengths[row[0]] for row in mb) <= 200 or len(mb) == 1 for mb in b)
    # length grouping: far less padding than random batches
    g = plan_epoch(lengths, epoch=0, seed=3, micro_batch_size=8, micro_batch_tokens=0, max_seq_len=128,
                   packing=False, group_by_length=True)

    def padding(plan):
        return sum(len(mb) * max(lengths[r[0]] for r in mb) - sum(lengths[r[0]] for r in mb) for mb in plan)

    assert padding(g) < 0.5 * padding(a)


def test_packing_fills_rows():
    lengths = np.random.default_rng(1).integers(10, 90, size=400)
    rows = pack_rows(lengths, np.random.default_rng(2).permutation(400), row_len=256)
    assert sorted(i for r in rows for i in r) == list(range(400))
    fill = [sum(lengths[i] for i in r) for r in rows]
    assert max(fill) <= 256
    assert sum(fill) / (256 * len(rows)) > 0.95  # first-fit over 64 open rows
    plan = plan_epoch(lengths, epoch=0, seed=0, micro_batch_size=0, micro_batch_tokens=1024, max_seq_len=256,
                      packing=True)
    assert all(len(mb) <= 4 for mb in plan)
    with pytest.raises(ValueError, match="more than a packed row"):
        pack_rows(np.array([300]), np.array([0]), row_len=256)


def test_collate_shifts_targets_per_record():
    recs = _records([4, 6, 3], prompt=1)
    batch = collate_rows(recs, [[0, 1], [2]], pad_id=0, packed=True)
    ids, tgt, pos, seg = batch["input_ids"], batch["targets"], batch["position_ids"], batch["segments"]
    assert ids.shape == (2, 10)
    assert pos[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert seg[1].tolist() == [0, 0, 0] + [-1] * 7
    a_ids, a_lab = recs.record(0)
    b_ids, b_lab = recs.record(1)
    assert tgt[0, :3].tolist() == a_lab[1:].tolist()
    # the last token of record 0 must not predict the first token of record 1
    assert tgt[0, 3].item() == IGNORE_INDEX
    assert tgt[0, 4:9].tolist() == b_lab[1:].tolist() and tgt[0, 9].item() == IGNORE_INDEX
    assert batch["num_tokens"].item() == 13 and batch["num_targets"].item() == int(recs.num_targets().sum())
    assert (tgt[1, 3:] == IGNORE_INDEX).all()  # padding
    with pytest.raises(ValueError, match="one record per row"):
        collate_rows(recs, [[0, 1]], pad_id=0, packed=False)


def test_block_causal_mask():
    seg = torch.tensor([[0, 0, 1, 1, 1, -1]])
    allowed = block_causal_allowed(seg)  # (1, 1, 6, 6)
    assert allowed.shape == (1, 1, 6, 6)
    expect = torch.tensor([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ], dtype=torch.bool)
    assert torch.equal(allowed[0, 0], expect)
    add = additive_mask(allowed, torch.float32)
    assert add[0, 0, 1, 0] == 0 and add[0, 0, 2, 0] == torch.finfo(torch.float32).min


@pytest.fixture(scope="module")
def nano_model():
    from motiongpt.llm.model import build_preset_model, train_bpe_tokenizer
    from motiongpt.llm.templates import load_instructions, tokenizer_corpus

    tok = train_bpe_tokenizer(tokenizer_corpus(["a person walks", "someone jumps high"] * 20, load_instructions()),
                              vocab_size=300)
    model = build_preset_model("nano", tok, seed=0)
    model.config.use_cache = False
    return model.eval()


@pytest.mark.parametrize("impl,how", [("sdpa", "mask4d"), ("eager", "mask4d"), ("sdpa", "position_ids"),
                                      ("eager", "position_ids")])
def test_packed_record_equals_record_alone(nano_model, impl, how):
    """Logits and loss of each record inside a packed row == the record run alone (1e-5)."""
    model = nano_model
    model.set_attn_implementation(impl)
    recs = _records([7, 11, 5, 9], seed=4, vocab=300)
    batch = collate_rows(recs, [[0, 1, 2], [3]], pad_id=3, packed=True)
    kw = attention_inputs(batch, packed=True, packing_attention=how, attn_implementation=impl, dtype=torch.float32)
    if how == "mask4d":
        assert kw["attention_mask"].shape == (2, 1, 23, 23)
        assert kw["attention_mask"].dtype == (torch.bool if impl == "sdpa" else torch.float32)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], use_cache=False, **kw).logits  # (2, 23, V)
        start = {0: (0, 0), 1: (0, 7), 2: (0, 18), 3: (1, 0)}
        for i, (row, t0) in start.items():
            ids, labels = recs.record(i)
            x = torch.as_tensor(ids, dtype=torch.long)[None]
            alone = model(input_ids=x, use_cache=False)
            n = len(ids)
            assert torch.allclose(packed[row, t0: t0 + n], alone.logits[0], atol=1e-5), (impl, how, i)
            # the record's loss from the packed row (per-record targets) == HF's loss on it alone
            tgt = batch["targets"][row, t0: t0 + n]
            ce = torch.nn.functional.cross_entropy(packed[row, t0: t0 + n], tgt, ignore_index=IGNORE_INDEX)
            ref = model(input_ids=x, labels=torch.as_tensor(labels, dtype=torch.long)[None], use_cache=False).loss
            assert abs(ce.item() - ref.item()) < 1e-5
    # a plain causal mask over the same row *does* mix records (the test can fail)
    with torch.no_grad():
        mixed = model(input_ids=batch["input_ids"][:1], use_cache=False).logits
    assert not torch.allclose(mixed[0, 7:18], packed[0, 7:18], atol=1e-3)


def test_unpacked_padding_equals_alone(nano_model):
    model = nano_model
    model.set_attn_implementation("sdpa")
    recs = _records([6, 13], seed=5)
    batch = collate_rows(recs, [[0], [1]], pad_id=3, packed=False)
    kw = attention_inputs(batch, packed=False, packing_attention="mask4d", attn_implementation="sdpa",
                          dtype=torch.float32)
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], use_cache=False, **kw).logits
        alone = model(input_ids=torch.as_tensor(recs.record(0)[0], dtype=torch.long)[None], use_cache=False).logits
    assert torch.allclose(out[0, :6], alone[0], atol=1e-5)

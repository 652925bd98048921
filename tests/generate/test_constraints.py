"""The constraint processor alone, driven by random and adversarial logits instead of a model.

Whatever the scores say (EOS first, the end marker first, motion tokens inside captions, ...), the
decoded rows must satisfy their specs; beam-search style row reordering (with duplicated rows)
must not confuse the per-row state.
"""

from __future__ import annotations

import random

import pytest
import torch

from gen_testlib import assert_clean_caption, parse_motion
from motiongpt.generate.constraints import MotionConstraintProcessor, RowSpec, TokenTables

PROMPT = 3  # width of the fake (already left-padded) prompt


def _tok(run):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(run), local_files_only=True)


@pytest.fixture(scope="module")
def vocab_tables(vocab_run):
    from motiongpt.llm.tokens import load_motion_format

    tok = _tok(vocab_run)
    return tok, TokenTables.build(tok, load_motion_format(vocab_run), wrapped=True, vocab_size=len(tok) + 5)


@pytest.fixture(scope="module")
def digits_tables(digits_run):
    from motiongpt.llm.tokens import load_motion_format

    tok = _tok(digits_run)
    return tok, TokenTables.build(tok, load_motion_format(digits_run), wrapped=False)


def _bias(tables: TokenTables, kind: str, tok=None) -> torch.Tensor:
    """Adversarial preferences: a large bonus on the tokens a naive decoder would wrongly pick."""
    b = torch.zeros(tables.vocab_size)
    if kind == "eos":
        b[tables.eos_id] = 30
    elif kind == "end":
        b[tables.end_id] = 30
        b[tables.start_id] = 20
    elif kind == "motion":  # motion tokens everywhere (also inside captions)
        if tables.fmt.kind == "vocab":
            b[tables.code_ids] = 30
        else:
            b[tables.digit_ids] = 30
            b[tables.comma_id] = 25
    elif kind == "zero":  # code 0 first (digits: "0", which can never be extended)
        b[tables.code_ids[0] if tables.fmt.kind == "vocab" else tok.convert_tokens_to_ids("0")] = 30
    elif kind == "padding":  # ids past the tokenizer (padded embedding rows) and special tokens
        b[-3:] = 40
        b[0:4] = 35
    return b


def simulate(tables, specs, *, seed, bias="none", beams=1, reorder=False, sample=True, tok=None):
    """Decode ``specs`` with random logits + ``bias`` through the processor; returns per-spec ids."""
    gen = torch.Generator().manual_seed(seed)
    rows = len(specs) * beams
    proc = MotionConstraintProcessor(tables, specs, PROMPT, num_beams=beams)
    ids = torch.zeros((rows, PROMPT), dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    budget = max(tables.motion_budget(s.exact or s.max_len) if s.kind == "motion" else s.text_budget for s in specs)
    b = _bias(tables, bias, tok)
    for _ in range(budget):
        scores = torch.randn((rows, tables.vocab_size), generator=gen) * 3 + b
        out = proc(ids, scores)
        assert torch.isfinite(out).any(1).all(), "a row without any allowed token"
        if sample:
            tok = torch.multinomial(torch.softmax(out, -1), 1, generator=gen).squeeze(1)
        else:
            tok = out.argmax(-1)
        tok = torch.where(done, torch.full_like(tok, 3), tok)  # finished rows get pad, as generate does
        ids = torch.cat([ids, tok[:, None]], 1)
        done |= tok == tables.eos_id
        if reorder:
            # beam-search style: every row continues a random row of its own request (duplicates too)
            parent = torch.tensor([g * beams + int(torch.randint(beams, (1,), generator=gen)) for g in
                                   range(len(specs)) for _ in range(beams)])
            ids, done = ids[parent], done[parent]
        if done.all():
            break
    assert done.all(), "some row never emitted EOS within the budget"
    return [ids[i * beams, PROMPT:].tolist() for i in range(len(specs))]


def _decode(tok, ids, eos):
    assert eos in ids
    return tok.decode(ids[: ids.index(eos)], skip_special_tokens=True)


def check(tok, tables, spec, ids):
    text = _decode(tok, ids, tables.eos_id)
    if spec.kind == "text":
        assert_clean_caption(text)
        assert ids.index(tables.eos_id) + 1 <= spec.text_budget
        return text
    codes = parse_motion(text, tables.fmt, tables.wrapped)
    if spec.exact is not None:
        assert len(codes) == spec.exact
    else:
        assert spec.min_len <= len(codes) <= spec.max_len
    if spec.end_code is not None:
        assert codes[-1] == spec.end_code
    else:
        for pos, code in spec.targets:
            assert codes[pos] == code, (pos, code, codes)
    if spec.ordered_keys:
        it = iter(codes)
        assert all(any(c == k for c in it) for k in spec.ordered_keys), (spec.ordered_keys, codes)
    return codes


def random_specs(rng: random.Random, nb: int, n: int) -> list[RowSpec]:
    specs = []
    for _ in range(n):
        kind = rng.choice(["exact", "variable", "targets", "last", "keys", "text"])
        if kind == "text":
            specs.append(RowSpec("text", text_budget=rng.randint(2, 12)))
        elif kind == "exact":
            specs.append(RowSpec(exact=rng.randint(1, 12)))
        elif kind == "variable":
            hi = rng.randint(1, 12)
            specs.append(RowSpec(min_len=rng.randint(1, hi), max_len=hi))
        elif kind == "targets":
            n_codes = rng.randint(1, 12)
            pos = sorted(rng.sample(range(n_codes), rng.randint(1, n_codes)))
            specs.append(RowSpec(exact=n_codes, targets=tuple((p, rng.randrange(nb)) for p in pos)))
        elif kind == "last":
            hi, key = rng.randint(2, 12), rng.randrange(nb)
            specs.append(RowSpec(min_len=2, max_len=hi, targets=((hi - 1, key),), end_code=key))
        else:
            hi = rng.randint(3, 12)
            keys = tuple(rng.randrange(nb) for _ in range(rng.randint(1, 3)))
            specs.append(RowSpec(min_len=len(keys), max_len=hi, ordered_keys=keys))
    return specs


@pytest.mark.parametrize("fmt_kind", ["vocab", "digits"])
@pytest.mark.parametrize("bias", ["none", "eos", "end", "motion", "zero", "padding"])
def test_random_specs_under_adversarial_logits(fmt_kind, bias, vocab_tables, digits_tables):
    tok, tables = vocab_tables if fmt_kind == "vocab" else digits_tables
    rng = random.Random(hash((fmt_kind, bias)) % 1000)
    specs = random_specs(rng, tables.fmt.nb_code, 24)
    for seed, sample in ((0, True), (1, False)):
        outs = simulate(tables, specs, seed=seed, bias=bias, sample=sample, tok=tok)
        for spec, ids in zip(specs, outs):
            check(tok, tables, spec, ids)


@pytest.mark.parametrize("fmt_kind", ["vocab", "digits"])
def test_beam_reordering_keeps_each_rows_state(fmt_kind, vocab_tables, digits_tables):
    tok, tables = vocab_tables if fmt_kind == "vocab" else digits_tables
    rng = random.Random(7)
    specs = random_specs(rng, tables.fmt.nb_code, 8)
    for seed in range(3):
        for spec, ids in zip(specs, simulate(tables, specs, seed=seed, beams=3, reorder=True)):
            check(tok, tables, spec, ids)


def test_variable_t2m_last_stops_only_after_its_key(vocab_tables):
    tok, tables = vocab_tables
    key = 5
    spec = RowSpec(min_len=2, max_len=9, targets=((8, key),), end_code=key)
    # the end marker is always preferred: the span may end only right after the key code ...
    b = torch.zeros(tables.vocab_size)
    b[tables.end_id] = 50
    b[tables.code_ids[key]] = 20
    proc = MotionConstraintProcessor(tables, [spec], PROMPT)
    ids = torch.zeros((1, PROMPT), dtype=torch.long)
    for _ in range(tables.motion_budget(9)):
        tok_id = int(proc(ids, b[None].clone()).argmax(-1))
        ids = torch.cat([ids, torch.tensor([[tok_id]])], 1)
        if tok_id == tables.eos_id:
            break
    codes = parse_motion(_decode(tok, ids[0, PROMPT:].tolist(), tables.eos_id), tables.fmt, True)
    assert codes == [key, key]  # min_len 2: one key code is not enough
    # ... and a model that never picks it gets it forced at the maximum length
    outs = simulate(tables, [spec], seed=3, bias="none")
    codes = check(tok, tables, spec, outs[0])
    assert codes[-1] == key


def test_text_rows_end_within_budget_and_never_empty(vocab_tables, digits_tables):
    for tok, tables in (vocab_tables, digits_tables):
        spec = RowSpec("text", text_budget=5)
        for bias in ("eos", "motion"):
            for ids in simulate(tables, [spec] * 4, seed=1, bias=bias):
                text = check(tok, tables, spec, ids)
                assert 1 <= ids.index(tables.eos_id) <= 4, text


def test_digits_items_are_canonical(digits_tables):
    tok, tables = digits_tables
    # "0" is preferred at every step: it must never be extended into "05" or "00"
    spec = RowSpec(exact=10)
    for ids in simulate(tables, [spec] * 3, seed=2, bias="zero", sample=False, tok=tok):
        codes = check(tok, tables, spec, ids)
        assert codes == [0] * 10


def test_specs_are_validated(vocab_tables):
    _, tables = vocab_tables
    nb = tables.fmt.nb_code
    bad = [
        RowSpec(exact=0),
        RowSpec(min_len=3, max_len=2),
        RowSpec(exact=4, targets=((4, 1),)),
        RowSpec(exact=4, targets=((2, 1), (1, 1))),
        RowSpec(exact=4, targets=((0, nb),)),
        RowSpec(min_len=1, max_len=2, ordered_keys=(1, 2, 3)),
        RowSpec("text", text_budget=1),
    ]
    for spec in bad:
        with pytest.raises(ValueError):
            MotionConstraintProcessor(tables, [spec], PROMPT)


def test_tables_refuse_a_tokenizer_without_motion_tokens(vocab_run):
    from motiongpt.llm.tokens import MotionTokenFormat

    tok = _tok(vocab_run)
    with pytest.raises(ValueError, match="motion tokens"):
        TokenTables.build(tok, MotionTokenFormat("vocab", 4096), wrapped=True)

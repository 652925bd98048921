"""Instruction tasks: record formats of every task, input format round trips, mirrored captions,
seeded determinism and the per-task length requirements (pure Python, no files)."""

from __future__ import annotations

import random

import pytest

from motiongpt.llm.tasks import (
    unconditional_record,
    MIN_TOKENS,
    MOTIONGPT_LORA_TASKS,
    MotionItem,
    TaskConfig,
    build_item_records,
    build_task_records,
    choose_instruction,
    format_inbetween_input,
    format_keys_pos_input,
    format_motion_output,
    format_next_input,
    format_pred_input,
    parse_inbetween_input,
    parse_next_input,
    split_clauses,
    parse_keys_pos_input,
    parse_pred_input,
    swap_left_right,
    task_of_instruction,
)
from motiongpt.llm.templates import TASKS, load_instructions
from motiongpt.llm.tokens import MotionTokenFormat, codes_to_text, extract_key_tokens, text_to_codes

VOCAB = MotionTokenFormat("vocab", 512)
DIGITS = MotionTokenFormat("digits", 512)
FORMATS = [VOCAB, DIGITS]

# MotionGPT-LoRA's instruction strings, verbatim (its train.json)
_T2M = "Generate a sequence of motion tokens matching the following human motion description"
LORA_INSTRUCTIONS = {
    "t2m": _T2M + ".",
    "t2m_init": _T2M + " given the initial token.",
    "t2m_last": _T2M + " given the last token.",
    "t2m_keys": _T2M + " given several key tokens.",
}

CAPTIONS = ("a person walks forward and turns left.", "someone waves with the right hand.", "a man jumps twice.")


@pytest.fixture(scope="module")
def instructions() -> dict[str, list[str]]:
    return load_instructions()


def _item(n: int = 40, seed: int = 0, clip_id: str = "000123", captions: tuple[str, ...] = CAPTIONS) -> MotionItem:
    rng = random.Random(seed)
    return MotionItem(clip_id, tuple(rng.randrange(512) for _ in range(n)), captions)


def _codes_of_output(text: str, fmt: MotionTokenFormat) -> list[int]:
    res = text_to_codes(text, fmt)
    assert res.ok, res.problems
    return res.codes


# ------------------------------------------------------------------------------ instructions


def test_lora_instructions_verbatim(instructions):
    cfg = TaskConfig(tasks=list(TASKS), canonical_prob=1.0)
    item = _item()
    for task, expected in LORA_INSTRUCTIONS.items():
        recs = build_task_records(item, task, cfg, VOCAB, instructions)
        assert recs and all(r["instruction"] == expected for r in recs)
        assert instructions[task][0] == expected
    assert set(LORA_INSTRUCTIONS) == set(MOTIONGPT_LORA_TASKS)


def test_paraphrase_share_and_source(instructions):
    rng = random.Random(1)
    for task in TASKS:
        picks = [choose_instruction(task, instructions, rng, 0.5) for _ in range(2000)]
        share = picks.count(instructions[task][0]) / len(picks)
        assert 0.45 < share < 0.55, (task, share)
        assert set(picks) == set(instructions[task])  # every paraphrase shows up, nothing else
        assert all(task_of_instruction(p, instructions) == task for p in set(picks))
    assert task_of_instruction("something else", instructions) is None
    picks = [choose_instruction("t2m", instructions, rng, 0.0) for _ in range(200)]
    assert instructions["t2m"][0] not in picks


# ------------------------------------------------------------------------------ every task's record


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_record_formats_every_task(fmt, instructions):
    item = _item(n=40)
    codes = list(item.codes)
    n = len(codes)
    cfg = TaskConfig(tasks=list(TASKS))
    recs, too_short = build_item_records(item, cfg, fmt, instructions, seed=3)
    assert too_short == []
    by_task: dict[str, list[dict]] = {}
    for r in recs:
        by_task.setdefault(r["task"], []).append(r)
    # t2m_next needs segment annotations (test_next_records); this item has none
    assert list(by_task) == [t for t in TASKS if t != "t2m_next"]
    wrapped_out = fmt.kind == "vocab"
    for task, rs in by_task.items():
        assert len(rs) == len(CAPTIONS)  # records_per_clip=0: one per caption
        assert sorted(r["caption"] for r in rs) == sorted(CAPTIONS)
        for r in rs:
            assert r["motion"] == "000123" and r["length"] == 4 * n and r["task"] == task
            assert r["instruction"] in instructions[task]
            if task != "m2t":
                assert r["output"].startswith("<Motion Token>") == wrapped_out
            cap = r["caption"]
            if task == "t2m":
                assert r["input"] == cap
                assert _codes_of_output(r["output"], fmt) == codes
            elif task in ("t2m_init", "t2m_last"):
                pos = 0 if task == "t2m_init" else n - 1
                assert r["input"] == cap + codes_to_text([codes[pos]], fmt)
                assert extract_key_tokens(r["input"], fmt, strict=True) == (cap, [codes[pos]])
                assert r["keys"] == [[pos, codes[pos]]]
                assert _codes_of_output(r["output"], fmt) == codes
            elif task == "t2m_keys":
                positions = [p for p, _ in r["keys"]]
                assert 3 <= len(positions) <= 5 and positions == sorted(set(positions))
                assert all(codes[p] == c for p, c in r["keys"])  # the keys really are those codes
                assert extract_key_tokens(r["input"], fmt, strict=True) == (cap, [c for _, c in r["keys"]])
                assert r["input"].startswith(cap + "<Motion Token>")
                assert _codes_of_output(r["output"], fmt) == codes
            elif task == "t2m_keys_pos":
                caption, keys, total = parse_keys_pos_input(r["input"], fmt)
                assert caption == cap and total == n
                assert [list(k) for k in keys] == r["keys"]
                assert all(codes[p] == c for p, c in keys) and 1 <= len(keys) <= 5
                assert _codes_of_output(r["output"], fmt) == codes
            elif task == "m2t":
                assert _codes_of_output(r["input"], fmt) == codes and r["input"].startswith("<Motion Token>")
                assert r["output"] == cap and r["references"] == list(CAPTIONS)
            elif task == "pred":
                caption, given = parse_pred_input(r["input"], fmt)
                assert caption == ""  # motion-only by default
                rest = _codes_of_output(r["output"], fmt)
                assert given + rest == codes
                assert len(given) == r["prefix_len"] >= 2 and rest
                assert round(0.2 * n) <= len(given) <= round(0.5 * n)
            elif task == "inbetween":
                caption, start, end = parse_inbetween_input(r["input"], fmt)
                assert caption == ""
                middle = _codes_of_output(r["output"], fmt)
                assert start + middle + end == codes
                assert (len(start), len(end)) == (r["start_len"], r["end_len"]) and middle


def test_digits_records_match_motiongpt_lora(instructions):
    """Digits outputs are bare comma-joined integers, inputs wrap key tokens (their train.json)."""
    item = MotionItem("x", (315, 91, 406, 12), ("a person walks forward.",))
    cfg = TaskConfig(tasks=["t2m", "t2m_init", "t2m_last"], canonical_prob=1.0)
    recs, _ = build_item_records(item, cfg, DIGITS, instructions)
    assert [(r["instruction"], r["input"], r["output"]) for r in recs] == [
        (LORA_INSTRUCTIONS["t2m"], "a person walks forward.", "315,91,406,12"),
        (LORA_INSTRUCTIONS["t2m_init"], "a person walks forward.<Motion Token>315</Motion Token>", "315,91,406,12"),
        (LORA_INSTRUCTIONS["t2m_last"], "a person walks forward.<Motion Token>12</Motion Token>", "315,91,406,12"),
    ]
    assert format_motion_output([1, 2], DIGITS) == "1,2"
    assert format_motion_output([1, 2], DIGITS, wrap_output=True) == "<Motion Token>1,2</Motion Token>"
    assert format_motion_output([1, 2], VOCAB) == "<Motion Token><motion_id_1><motion_id_2></Motion Token>"


def test_caption_in_motion_tasks(instructions):
    cfg = TaskConfig(tasks=["pred", "inbetween"], caption_in_motion_tasks=True)
    item = _item(n=20)
    recs, _ = build_item_records(item, cfg, VOCAB, instructions)
    for r in recs:
        parse = parse_pred_input if r["task"] == "pred" else parse_inbetween_input
        assert parse(r["input"], VOCAB)[0] == r["caption"]
        assert r["input"].startswith(r["caption"] + "\n")


# ------------------------------------------------------------------------------ input formats


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_keys_pos_round_trip(fmt):
    rng = random.Random(0)
    for _ in range(300):
        total = rng.randint(1, 60)
        k = rng.randint(1, min(5, total))
        positions = sorted(rng.sample(range(total), k))
        keys = [(p, rng.randrange(fmt.nb_code)) for p in positions]
        text = format_keys_pos_input("a person walks.", keys, total, fmt)
        assert parse_keys_pos_input(text, fmt) == ("a person walks.", keys, total)
    assert format_keys_pos_input("a person walks.", [(0, 315), (12, 91), (36, 406)], 37, VOCAB) == (
        "a person walks.\nLength: 37 tokens. Key tokens: 0:<motion_id_315> 12:<motion_id_91> 36:<motion_id_406>"
    )
    assert format_keys_pos_input("a person walks.", [(0, 315), (12, 91), (36, 406)], 37, DIGITS) == (
        "a person walks.\nLength: 37 tokens. Key tokens: 0:315 12:91 36:406"
    )


@pytest.mark.parametrize(
    "text, match",
    [
        ("a person walks.", "no line break"),
        ("\nLength: 5 tokens. Key tokens: 0:1", "caption"),
        ("a person walks.\nLength: 5 tokens. Key tokens: ", "no key tokens"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 3:1 2:4", "increasing"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 1:1 1:4", "increasing"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 5:1", "< length 5"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 0:512", "out of range"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 0:07", "non-canonical"),
        ("a person walks.\nLength: 05 tokens. Key tokens: 0:7", "non-canonical"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 0:1  2:3", "item 1"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 0:1 2:3 ", "item 2"),
        ("a person walks.\nLength: 5 tokens. Key tokens: 0:<motion_id_1>", "item 0"),
        ("a person walks.\nLength: five tokens. Key tokens: 0:1", "is not 'Length"),
        ("a person walks. \nLength: 5 tokens. Key tokens: 0:1", "whitespace"),
    ],
)
def test_keys_pos_parse_errors_digits(text, match):
    with pytest.raises(ValueError, match=match):
        parse_keys_pos_input(text, DIGITS)


def test_keys_pos_vocab_errors_and_format_errors():
    with pytest.raises(ValueError, match="item 0"):
        parse_keys_pos_input("a.\nLength: 5 tokens. Key tokens: 0:7", VOCAB)
    with pytest.raises(ValueError, match="item 0"):
        parse_keys_pos_input("a.\nLength: 5 tokens. Key tokens: 0: <motion_id_7>", VOCAB)
    with pytest.raises(ValueError, match="out of range"):
        parse_keys_pos_input("a.\nLength: 5 tokens. Key tokens: 0:<motion_id_600>", VOCAB)
    with pytest.raises(ValueError, match="increasing"):
        format_keys_pos_input("a.", [(2, 1), (1, 1)], 5, VOCAB)
    with pytest.raises(ValueError, match="total_tokens"):
        format_keys_pos_input("a.", [(5, 1)], 5, VOCAB)
    with pytest.raises(ValueError, match="one line"):
        format_keys_pos_input("a\nb", [(0, 1)], 5, VOCAB)
    with pytest.raises(ValueError, match="at least one"):
        format_keys_pos_input("a.", [], 5, VOCAB)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_inbetween_and_pred_round_trip(fmt):
    rng = random.Random(2)
    for _ in range(200):
        start = [rng.randrange(512) for _ in range(rng.randint(1, 10))]
        end = [rng.randrange(512) for _ in range(rng.randint(1, 10))]
        for caption in (None, "a man walks to the left."):
            text = format_inbetween_input(start, end, fmt, caption)
            assert parse_inbetween_input(text, fmt) == (caption or "", start, end)
            text = format_pred_input(start, fmt, caption)
            assert parse_pred_input(text, fmt) == (caption or "", start)
    assert format_inbetween_input([1, 2], [7], DIGITS) == (
        "Start: <Motion Token>1,2</Motion Token>\nEnd: <Motion Token>7</Motion Token>"
    )
    assert format_pred_input([5, 9], VOCAB) == "<Motion Token><motion_id_5><motion_id_9></Motion Token>"


@pytest.mark.parametrize(
    "text, match",
    [
        ("Start: <Motion Token>1</Motion Token>", "expected 2 lines"),
        ("Begin: <Motion Token>1</Motion Token>\nEnd: <Motion Token>2</Motion Token>", "Start: "),
        ("Start: <Motion Token>1</Motion Token>\nFinish: <Motion Token>2</Motion Token>", "End: "),
        ("Start: <Motion Token></Motion Token>\nEnd: <Motion Token>2</Motion Token>", "empty motion span"),
        ("Start: 1,2\nEnd: <Motion Token>2</Motion Token>", "wrapped"),
        ("Start: <Motion Token>1,,2</Motion Token>\nEnd: <Motion Token>2</Motion Token>", "empty item"),
        ("Start: <Motion Token>1</Motion Token>\nEnd: <Motion Token>999</Motion Token>", "out of range"),
        ("a\nb\nStart: <Motion Token>1</Motion Token>\nEnd: <Motion Token>2</Motion Token>", "expected 2 lines"),
    ],
)
def test_inbetween_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_inbetween_input(text, DIGITS)


def test_pred_parse_errors():
    with pytest.raises(ValueError, match="wrapped"):
        parse_pred_input("1,2,3", DIGITS)
    with pytest.raises(ValueError, match="caption"):
        parse_pred_input("\n<Motion Token>1</Motion Token>", DIGITS)
    with pytest.raises(ValueError, match="unexpected text"):
        parse_pred_input("<Motion Token><motion_id_1>x</Motion Token>", VOCAB)


# ------------------------------------------------------------------------------ mirrored captions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a person turns left then right.", "a person turns right then left."),
        ("Left arm up, RIGHT leg out", "Right arm up, LEFT leg out"),
        ("he spins clockwise", "he spins counterclockwise"),
        ("he spins counterclockwise", "he spins clockwise"),
        ("he spins counter-clockwise twice", "he spins clockwise twice"),
        ("spins anti-clockwise, then Clockwise", "spins clockwise, then Counterclockwise"),
        ("steps leftward and rightwards", "steps rightward and leftwards"),
        ("a left-handed throw", "a right-handed throw"),
        ("leftover bright righteous", "leftover bright righteous"),  # whole words only
        ("walks (left), left; left!", "walks (right), right; right!"),
    ],
)
def test_swap_left_right(text, expected):
    assert swap_left_right(text) == expected
    if "wise" not in text:  # left/right swapping is its own inverse
        assert swap_left_right(expected) == text


# ------------------------------------------------------------------------------ determinism, counts


def test_determinism_independent_of_order(instructions):
    cfg = TaskConfig(tasks=list(TASKS))
    items = [_item(n=30, seed=i, clip_id=f"{i:06d}") for i in range(4)]
    a = [build_item_records(it, cfg, VOCAB, instructions, seed=7)[0] for it in items]
    b = [build_item_records(it, cfg, VOCAB, instructions, seed=7)[0] for it in reversed(items)][::-1]
    assert a == b
    reversed_tasks = TaskConfig(tasks=list(reversed(TASKS)))
    c = build_item_records(items[0], reversed_tasks, VOCAB, instructions, seed=7)[0]
    assert sorted(map(repr, c)) == sorted(map(repr, a[0]))  # a task's records do not depend on the others
    d = build_item_records(items[0], cfg, VOCAB, instructions, seed=8)[0]
    assert d != a[0]
    # the motion id is part of the seed: identical codes under different ids get different draws
    same_codes = [MotionItem(f"clip{i}", items[0].codes, CAPTIONS) for i in range(10)]
    keys = {repr(build_task_records(it, "t2m_keys", cfg, VOCAB, instructions, seed=7)[0]["keys"]) for it in same_codes}
    assert len(keys) > 5


def test_records_per_clip(instructions):
    item = _item(n=30)
    one_each = build_task_records(item, "t2m", TaskConfig(records_per_clip=0), VOCAB, instructions)
    assert sorted(r["input"] for r in one_each) == sorted(CAPTIONS)
    two = build_task_records(item, "t2m", TaskConfig(records_per_clip=2), VOCAB, instructions)
    assert len(two) == 2 and len({r["input"] for r in two}) == 2  # distinct while N <= captions
    five = build_task_records(item, "t2m", TaskConfig(records_per_clip=5), VOCAB, instructions)
    assert len(five) == 5 and {r["input"] for r in five} == set(CAPTIONS)


def test_uncond_records(instructions):
    item = _item(n=30, captions=tuple(f"caption number {i}." for i in range(40)))
    plain = build_task_records(item, "t2m", TaskConfig(), VOCAB, instructions)
    half = build_task_records(item, "t2m", TaskConfig(uncond_prob=0.5), VOCAB, instructions)
    cond = [r for r in half if not r.get("uncond")]
    unc = [r for r in half if r.get("uncond")]
    # the conditional records are unchanged by the option (own random stream)
    assert cond == plain
    assert 8 <= len(unc) <= 32  # binomial(40, 0.5): far outside this is a bug, not chance
    for i, r in enumerate(half):
        if r.get("uncond"):
            prev = half[i - 1]  # each copy follows its record
            assert not prev.get("uncond") and r["output"] == prev["output"] and r["motion"] == prev["motion"]
            assert r["input"] == "" and r["caption"] == "" and r["task"] == "t2m"
            assert r["instruction"] == instructions["t2m"][0]  # canonical: generation builds this prompt
    every = build_task_records(item, "t2m", TaskConfig(uncond_prob=1.0), VOCAB, instructions)
    assert len(every) == 2 * len(plain)
    # other tasks never get one
    keys = build_task_records(item, "t2m_keys", TaskConfig(uncond_prob=1.0), VOCAB, instructions)
    assert keys and not any(r.get("uncond") for r in keys)
    with pytest.raises(ValueError, match="unconditional copy"):
        unconditional_record(keys[0], instructions)
    # t2m_next only when asked for: the default uncond_tasks is t2m alone
    assert TaskConfig().uncond_tasks == ["t2m"]
    with pytest.raises(ValueError, match="uncond_tasks"):
        TaskConfig(uncond_tasks=["t2m_keys"]).validate()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_next_uncond_records(fmt, instructions):
    """uncond_tasks with t2m_next: records without context get copies under the canonical t2m_next
    instruction with an empty input (one shared prompt); records with context never do."""
    codes = tuple(range(100, 130))
    caps = tuple(f"a man walks forward, then jumps {i} times, then waves." for i in range(12))
    item = MotionItem("S1", codes, caps, segment_starts=(8, 20))
    plain = build_task_records(item, "t2m_next", TaskConfig(tasks=["t2m_next"]), fmt, instructions)
    cfg = TaskConfig(tasks=["t2m_next"], uncond_prob=0.5, uncond_tasks=["t2m", "t2m_next"])
    half = build_task_records(item, "t2m_next", cfg, fmt, instructions)
    assert [r for r in half if not r.get("uncond")] == plain  # the conditional records are unchanged
    unc = [(i, r) for i, r in enumerate(half) if r.get("uncond")]
    assert 4 <= len(unc) <= 32  # binomial(36, 0.5)
    for i, r in unc:
        prev = half[i - 1]
        assert not prev.get("uncond") and r["output"] == prev["output"] and r["task"] == "t2m_next"
        assert r["input"] == "" and r["caption"] == "" and r["instruction"] == instructions["t2m_next"][0]
    # without t2m_next in uncond_tasks: none
    assert build_task_records(item, "t2m_next", TaskConfig(tasks=["t2m_next"], uncond_prob=1.0), fmt,
                              instructions) == plain
    # with context: the prompts differ per record, so no copies
    ctx = TaskConfig(tasks=["t2m_next"], uncond_prob=1.0, uncond_tasks=["t2m_next"], next_context_codes=2)
    recs = build_task_records(item, "t2m_next", ctx, fmt, instructions)
    assert all(r["context_len"] == 0 for r in recs if r.get("uncond"))
    assert sum(bool(r.get("uncond")) for r in recs) == sum(r["context_len"] == 0 and not r.get("uncond")
                                                            for r in recs)
    with pytest.raises(ValueError, match="context"):
        unconditional_record(next(r for r in recs if r["context_len"]), instructions)


def test_too_few_tokens_per_task(instructions):
    cfg = TaskConfig(tasks=list(TASKS))
    for n in (1, 2, 3):
        recs, too_short = build_item_records(_item(n=n), cfg, VOCAB, instructions)
        assert too_short == [t for t in TASKS if MIN_TOKENS[t] > n]
        # t2m_next needs segment annotations, which these items do not have
        assert {r["task"] for r in recs} == {t for t in TASKS if MIN_TOKENS[t] <= n and t != "t2m_next"}
    # the smallest lengths still produce valid splits
    recs, _ = build_item_records(_item(n=3), cfg, DIGITS, instructions)
    for r in recs:
        if r["task"] == "inbetween":
            _, s, e = parse_inbetween_input(r["input"], DIGITS)
            assert (len(s), len(e), r["output"].count(",")) == (1, 1, 0)
        if r["task"] == "pred":
            assert r["prefix_len"] == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tasks": ["t2x"]}, "unknown task"),
        ({"tasks": []}, "empty"),
        ({"tasks": ["t2m", "t2m"]}, "twice"),
        ({"records_per_clip": -1}, "records_per_clip"),
        ({"canonical_prob": 1.5}, "canonical_prob"),
        ({"num_keys_min": 4, "num_keys_max": 3}, "num_keys_min"),
        ({"pred_min_frac": 0.6, "pred_max_frac": 0.5}, "pred_min_frac"),
        ({"inbetween_max_frac": 0.6}, "inbetween"),
        ({"uncond_prob": -0.1}, "uncond_prob"),
        ({"uncond_prob": 1.5}, "uncond_prob"),
        ({"next_context_codes": -1}, "next_context_codes"),
        ({"next_context_codes": 2.5}, "next_context_codes"),
    ],
)
def test_task_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskConfig(**kwargs).validate()


# ------------------------------------------------------------------------------ t2m_next


@pytest.mark.parametrize(
    "text, clauses",
    [
        ("a man walks forward, then jumps twice.", ["a man walks forward", "jumps twice"]),
        ("someone first raises an arm then kicks, and then waves and then claps.",
         ["someone first raises an arm", "kicks", "waves", "claps"]),
        ("A person walks Then turns", ["A person walks", "turns"]),  # any case
        ("A person Then turns", ["A person turns"]),  # a subject alone joins the clause after it
        ("squats down and stands back up.", ["squats down and stands back up"]),  # "and" alone: one action
        ("he strengthens then rests", ["he strengthens", "rests"]),  # "then" inside a word does not split
        ("a person walks then", ["a person walks then"]),  # nothing after it
        ("  a   person\twaves .", ["a person waves"]),
    ],
)
def test_split_clauses(text, clauses):
    assert split_clauses(text) == clauses


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_next_input_round_trip(fmt):
    for context in ([], [7], [3, 0, 511]):
        text = format_next_input("jumps twice", context, fmt)
        assert text.startswith("jumps twice\n<Motion Token>") and text.endswith("</Motion Token>")
        assert parse_next_input(text, fmt) == ("jumps twice", context)
    for bad, match in (("jumps twice", "expected"), (" jumps\n<Motion Token></Motion Token>", "whitespace"),
                       ("\n<Motion Token></Motion Token>", "caption")):
        with pytest.raises(ValueError, match=match):
            parse_next_input(bad, VOCAB)
    with pytest.raises(ValueError, match="caption"):
        format_next_input("two\nlines", [1], VOCAB)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_next_records(fmt, instructions):
    codes = tuple(range(100, 130))  # 30 codes; segments start at 0, 8 and 20
    caps = ("a man walks forward, then jumps twice and then waves.",  # three clauses: three records
            "a man walks forward then jumps twice and waves.",  # two clauses for three segments: none
            "someone walks, then hops twice, then waves.")
    item = MotionItem("S1", codes, caps, segment_starts=(8, 20))
    cfg = TaskConfig(tasks=["t2m_next"], next_context_codes=3)
    recs = build_task_records(item, "t2m_next", cfg, fmt, instructions)
    assert len(recs) == 6
    bounds = [(0, 8), (8, 20), (20, 30)]
    by_caption: dict[str, list[dict]] = {}
    for r in recs:
        by_caption.setdefault(r["caption"], []).append(r)
    assert set(by_caption) == {caps[0], caps[2]}
    for cap, rs in by_caption.items():
        assert [r["clause"] for r in rs] == [0, 1, 2]
        for r, (a, b), clause in zip(rs, bounds, split_clauses(cap)):
            assert r["task"] == "t2m_next" and r["motion"] == "S1" and r["length"] == 4 * (b - a)
            assert r["instruction"] in instructions["t2m_next"]
            got_clause, context = parse_next_input(r["input"], fmt)
            assert got_clause == clause
            assert context == list(codes[max(0, a - 3):a])  # the last 3 codes before it (none at the start)
            assert r["context_len"] == len(context)
            assert _codes_of_output(r["output"], fmt) == list(codes[a:b])
    # no annotation, or one segment: no records; starts outside the motion: an error naming the clip
    assert build_task_records(MotionItem("S2", codes, caps), "t2m_next", cfg, fmt, instructions) == []
    with pytest.raises(ValueError, match="S3"):
        build_task_records(MotionItem("S3", codes, caps, segment_starts=(20, 8)), "t2m_next", cfg, fmt, instructions)
    # seeded like every task: the same records again
    assert build_task_records(item, "t2m_next", cfg, fmt, instructions) == recs
    # no context: every clause from its text alone; the rest is the same
    bare = build_task_records(item, "t2m_next", TaskConfig(tasks=["t2m_next"], next_context_codes=0), fmt,
                              instructions)
    assert [parse_next_input(r["input"], fmt)[1] for r in bare] == [[]] * len(recs)
    assert [r["output"] for r in bare] == [r["output"] for r in recs]


class _Gentle:
    """A stand-in rewording ("man" -> "gentleman") that shows which captions the record builder
    rewords; the WordNet rewording itself is tested in tests/data/test_paraphrase.py."""

    def __init__(self):
        self.tags_seen = []

    def paraphrase(self, caption, rng, tags=None):
        self.tags_seen.append(tags)
        return caption.replace("a man", "a gentleman")


def test_paraphrase_prob_rewords_text_inputs_only(instructions):
    caps = tuple(f"a man walks forward, then jumps {i} times." for i in range(40))
    tags = tuple((f"tag{i}/NOUN",) for i in range(40))
    item = MotionItem("S1", tuple(range(100, 130)), caps, segment_starts=(10,), caption_tags=tags)
    tasks = ["t2m", "t2m_keys", "t2m_next", "m2t", "pred"]
    plain = {t: build_task_records(item, t, TaskConfig(tasks=tasks), VOCAB, instructions) for t in tasks}
    para = _Gentle()
    half = {t: build_task_records(item, t, TaskConfig(tasks=tasks, paraphrase_prob=0.5), VOCAB, instructions,
                                  paraphraser=para) for t in tasks}
    for t in ("t2m", "t2m_keys"):
        n_new = sum("gentleman" in r["caption"] for r in half[t])
        assert 8 <= n_new <= 32, t  # binomial(40, 0.5)
        for a, b in zip(plain[t], half[t]):  # same records otherwise (own random stream)
            assert b["caption"] in (a["caption"], a["caption"].replace("a man", "a gentleman"))
            assert b["input"].replace("gentleman", "man") == a["input"] and b["output"] == a["output"]
            assert b["instruction"] == a["instruction"]
    # t2m_next: the reworded caption is the one split into clauses
    assert any("gentleman" in r["input"] for r in half["t2m_next"])
    assert len(half["t2m_next"]) == len(plain["t2m_next"])
    # the caption is the motion's description elsewhere: m2t outputs and pred are untouched
    assert half["m2t"] == plain["m2t"] and half["pred"] == plain["pred"]
    # the caption's own tags are handed over
    assert {tg for tg in para.tags_seen} <= set(tags) and para.tags_seen
    # no paraphraser or probability 0: nothing changes
    assert build_task_records(item, "t2m", TaskConfig(paraphrase_prob=0.5), VOCAB, instructions) == plain["t2m"]
    assert build_task_records(item, "t2m", TaskConfig(), VOCAB, instructions, paraphraser=para) == plain["t2m"]
    for name in ("paraphrase_prob", "paraphrase_word_prob"):
        with pytest.raises(ValueError, match=name):
            TaskConfig(**{name: 1.5}).validate()

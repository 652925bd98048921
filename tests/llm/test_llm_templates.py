"""Prompt templates (exact strings), label masking, truncation flag, instruction file loader."""

from __future__ import annotations

import json
import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.llm.templates import (  # noqa: E402
    ALPACA_PROMPT_NO_INPUT,
    ALPACA_PROMPT_WITH_INPUT,
    IGNORE_INDEX,
    SHORT_PROMPT_WITH_INPUT,
    TASKS,
    build_example,
    build_prompt,
    encode_prompt,
    load_instructions,
    resolve_template,
    tokenizer_corpus,
)
from motiongpt.llm.tokens import MotionTokenFormat, codes_to_text, join_key_tokens  # noqa: E402

T2M = "Generate a sequence of motion tokens matching the following human motion description."
MOTIONGPT_LORA = {
    "t2m": T2M,
    "t2m_init": "Generate a sequence of motion tokens matching the following human motion description given the initial token.",
    "t2m_last": "Generate a sequence of motion tokens matching the following human motion description given the last token.",
    "t2m_keys": "Generate a sequence of motion tokens matching the following human motion description given several key tokens.",
}

WORDS = ("a person walks forward turns left right jumps runs waves the hand arm sits down stands up slowly "
         "quickly in a circle backwards kicks with his her leg then stops and").split()


def _captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    from motiongpt.llm.model import add_motion_tokens, train_bpe_tokenizer

    tok = train_bpe_tokenizer(tokenizer_corpus(_captions(300)), vocab_size=600)
    add_motion_tokens(tok, None, MotionTokenFormat("vocab", 512))
    return tok


# ------------------------------------------------------------------------------ templates


def test_alpaca_strings_exact():
    assert ALPACA_PROMPT_WITH_INPUT == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
        "### Input:\n{input}\n\n### Response:\n"
    )
    assert ALPACA_PROMPT_NO_INPUT == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    )


def test_build_prompt_exact():
    rec = {"instruction": T2M, "input": "a person walks forward.", "output": "1,2"}
    assert build_prompt(rec) == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\n" + T2M
        + "\n\n### Input:\na person walks forward.\n\n### Response:\n"
    )
    expected_no_input = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\n" + T2M + "\n\n### Response:\n"
    )
    for rec in ({"instruction": T2M, "input": ""}, {"instruction": T2M}, {"instruction": T2M, "input": None}):
        assert build_prompt(rec, "alpaca") == expected_no_input
    # braces in user text must not be treated as format fields
    assert "{x} {input}" in build_prompt({"instruction": "say {x} {input}", "input": "{instruction}"})


def test_short_template_exact_and_shorter(tokenizer):
    rec = {"instruction": T2M, "input": "a person walks forward.", "output": "1,2"}
    short = build_prompt(rec, "alpaca_short")
    assert short == "### Instruction:\n" + T2M + "\n\n### Input:\na person walks forward.\n\n### Response:\n"
    assert build_prompt({"instruction": T2M}, "alpaca_short") == "### Instruction:\n" + T2M + "\n\n### Response:\n"
    # the long form ends with exactly the short form: only the preamble sentence is dropped
    assert build_prompt(rec, "alpaca").endswith(short)
    assert resolve_template("alpaca_short", tokenizer) == "alpaca_short"
    # bos + prompt, like alpaca, and strictly fewer tokens
    ids_short = encode_prompt(tokenizer, short, "alpaca_short")
    ids_long = encode_prompt(tokenizer, build_prompt(rec, "alpaca"), "alpaca")
    assert ids_short[0] == ids_long[0] == tokenizer.bos_token_id
    assert len(ids_short) < len(ids_long)
    # the tokenizer corpus carries the short template's fixed text (inside the Alpaca one)
    corpus = tokenizer_corpus(["a person walks."])
    assert any(SHORT_PROMPT_WITH_INPUT.format(instruction="", input="") in t for t in corpus)


def test_compact_template_exact_and_shortest(tokenizer):
    rec = {"instruction": T2M, "input": "a person walks forward.", "output": "1,2"}
    compact = build_prompt(rec, "compact")
    assert compact == T2M + "\na person walks forward.\n###\n"
    assert build_prompt({"instruction": T2M, "input": ""}, "compact") == T2M + "\n###\n"
    assert resolve_template("compact", tokenizer) == "compact"
    ids = encode_prompt(tokenizer, compact, "compact")
    ids_short = encode_prompt(tokenizer, build_prompt(rec, "alpaca_short"), "alpaca_short")
    assert ids[0] == tokenizer.bos_token_id
    assert len(ids) < len(ids_short)
    # the response starts where generation starts: the example's prompt is exactly encode_prompt's ids
    ex = build_example(rec, tokenizer, "compact")
    assert ex["input_ids"][: ex["num_prompt_tokens"]] == ids
    assert ex["labels"][: len(ids)] == [IGNORE_INDEX] * len(ids)
    assert ex["labels"][len(ids):] == ex["input_ids"][len(ids):]


def test_bad_records_and_templates():
    with pytest.raises(ValueError, match="instruction"):
        build_prompt({"input": "x"})
    with pytest.raises(ValueError, match="instruction"):
        build_prompt({"instruction": "  "})
    with pytest.raises(ValueError, match="input"):
        build_prompt({"instruction": "x", "input": 3})
    with pytest.raises(ValueError, match="unknown prompt template"):
        build_prompt({"instruction": "x"}, "vicuna")  # type: ignore[arg-type]


def test_chat_template_option(tokenizer):
    import copy

    rec = {"instruction": T2M, "input": "a person walks", "output": "x"}
    assert resolve_template("auto", tokenizer) == "alpaca"
    with pytest.raises(ValueError, match="chat template"):
        build_prompt(rec, "chat", tokenizer)
    chat_tok = copy.deepcopy(tokenizer)
    chat_tok.chat_template = (
        "{% for m in messages %}<s>[{{ m['role'] }}] {{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    expected = f"<s>[user] {T2M}\n\na person walks</s>[assistant] "
    assert build_prompt(rec, "chat", chat_tok) == expected
    assert build_prompt(rec, "auto", chat_tok) == expected
    # a chat-rendered prompt carries its own <s>: no second bos is added
    ids = encode_prompt(chat_tok, expected, "chat")
    assert ids.count(chat_tok.bos_token_id) == 1 and ids[0] == chat_tok.bos_token_id
    ex = build_example(rec, chat_tok, "chat")
    assert ex["input_ids"][: ex["num_prompt_tokens"]] == ids


# ------------------------------------------------------------------------------- examples


def test_build_example_label_masking_exact(tokenizer):
    fmt = MotionTokenFormat("vocab", 512)
    output = codes_to_text([315, 91, 406, 0, 511], fmt)
    rec = {"instruction": MOTIONGPT_LORA["t2m_init"], "input": join_key_tokens("a person walks", [315], fmt),
           "output": output}
    ex = build_example(rec, tokenizer)
    prompt_ids = encode_prompt(tokenizer, build_prompt(rec))
    response_ids = tokenizer(output, add_special_tokens=False)["input_ids"]
    assert prompt_ids[0] == tokenizer.bos_token_id and prompt_ids.count(tokenizer.bos_token_id) == 1
    assert ex["input_ids"] == prompt_ids + response_ids + [tokenizer.eos_token_id]
    n = ex["num_prompt_tokens"]
    assert n == len(prompt_ids)
    assert ex["labels"] == [IGNORE_INDEX] * n + response_ids + [tokenizer.eos_token_id]
    assert ex["attention_mask"] == [1] * len(ex["input_ids"])
    assert len(response_ids) == 7  # one id per motion token + the two wrappers
    assert ex["truncated"] is False and ex["length"] == len(ex["input_ids"])
    assert tokenizer.decode(ex["input_ids"][n:-1]) == output
    assert tokenizer.decode(ex["input_ids"], skip_special_tokens=True) == build_prompt(rec) + output

    full = build_example(rec, tokenizer, train_on_prompt=True)
    assert full["labels"] == full["input_ids"] == ex["input_ids"]


def test_build_example_truncation_flag(tokenizer):
    rec = {"instruction": T2M, "input": "a person walks", "output": codes_to_text(list(range(40)), MotionTokenFormat())}
    full = build_example(rec, tokenizer)
    n = full["length"]
    same = build_example(rec, tokenizer, max_len=n)
    assert not same["truncated"] and same["input_ids"] == full["input_ids"]
    cut = build_example(rec, tokenizer, max_len=n - 1)
    assert cut["truncated"] is True and cut["length"] == n
    assert len(cut["input_ids"]) == len(cut["labels"]) == len(cut["attention_mask"]) == n - 1
    assert cut["input_ids"][-1] != tokenizer.eos_token_id  # the EOS is what got cut: the caller drops it
    short = build_example(rec, tokenizer, max_len=5)
    assert short["truncated"] and set(short["labels"]) == {IGNORE_INDEX}
    with pytest.raises(ValueError, match="max_len"):
        build_example(rec, tokenizer, max_len=0)
    with pytest.raises(ValueError, match="output"):
        build_example({"instruction": T2M, "input": "x"}, tokenizer)


# ---------------------------------------------------------------------------- instructions


def test_instructions_file():
    ins = load_instructions()
    assert list(ins) == list(TASKS)
    for task, canonical in MOTIONGPT_LORA.items():
        assert ins[task][0] == canonical  # MotionGPT-LoRA's strings, verbatim
    for task, strings in ins.items():
        assert 4 <= len(strings) <= 6, task  # canonical + 3-5 paraphrases
        assert len(set(strings)) == len(strings)
    all_strings = [s for strings in ins.values() for s in strings]
    assert len(set(all_strings)) == len(all_strings)  # no instruction shared by two tasks


def _write(tmp_path, data) -> str:
    p = tmp_path / "ins.json"
    p.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(p)


def test_instructions_validation(tmp_path):
    good = {"tasks": {"t2m": {"canonical": T2M, "paraphrases": ["Make motion tokens."]}}}
    assert load_instructions(_write(tmp_path, good), require_all=False) == {"t2m": [T2M, "Make motion tokens."]}
    with pytest.raises(ValueError, match=r"ins\.json.*missing task"):
        load_instructions(_write(tmp_path, good))
    bad_cases = {
        "unknown task": {"tasks": {"t2x": {"canonical": "x", "paraphrases": []}}},
        "empty instruction list": {"tasks": {"t2m": {"paraphrases": []}}},
        "no 'canonical'": {"tasks": {"t2m": {"paraphrases": ["a"]}}},
        "not a non-empty string": {"tasks": {"t2m": {"canonical": "", "paraphrases": []}}},
        "same instruction twice": {"tasks": {"t2m": {"canonical": "a", "paraphrases": ["a"]}}},
        "unknown key": {"tasks": {"t2m": {"canonical": "a", "paraphrase": ["b"]}}},
        "'tasks' mapping": {"t2m": ["a"]},
        "not valid JSON": "{",
    }
    for msg, data in bad_cases.items():
        path = _write(tmp_path, data)
        with pytest.raises(ValueError) as e:
            load_instructions(path, require_all=False)
        assert msg in str(e.value) and "ins.json" in str(e.value), (msg, str(e.value))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_instructions(tmp_path / "nope.json")


def test_tokenizer_corpus():
    texts = tokenizer_corpus(["a person walks", ""], load_instructions())
    assert texts[0] == "a person walks" and "" not in texts
    assert T2M in texts
    assert any("### Instruction:" in t and "### Response:" in t for t in texts)

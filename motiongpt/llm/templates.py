"""Prompt templates, instruction strings, and tokenized training examples.

Records are MotionGPT-LoRA / Alpaca instruction records ``{"instruction", "input", "output"}``
(``input`` may be empty or absent). :func:`build_prompt` renders the prompt (the Alpaca template,
or the tokenizer's chat template); :func:`build_example` tokenizes prompt and response
*separately* — exactly as generation sees them: the prompt ids, then the generated response — and
masks the prompt out of the loss.

No torch / transformers import: the tokenizer is any Hugging Face tokenizer object passed in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, get_args

from motiongpt.utils.files import read_json

__all__ = [
    "ALPACA_PROMPT_WITH_INPUT",
    "ALPACA_PROMPT_NO_INPUT",
    "SHORT_PROMPT_WITH_INPUT",
    "SHORT_PROMPT_NO_INPUT",
    "COMPACT_PROMPT_WITH_INPUT",
    "COMPACT_PROMPT_NO_INPUT",
    "IGNORE_INDEX",
    "TASKS",
    "TemplateName",
    "TEMPLATE_NAMES",
    "DEFAULT_INSTRUCTIONS_PATH",
    "resolve_template",
    "build_prompt",
    "encode_prompt",
    "build_example",
    "load_instructions",
    "tokenizer_corpus",
]

ALPACA_PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)

# The Alpaca layout without its preamble sentence: the same ``###`` sections, 36 fewer tokens per
# record with the tiny BPE tokenizer (77 instead of 113 for a t2m record). A small model trained on
# a CPU budget learns caption following faster when a third of every sequence is not a constant
# preamble (measured on the embedded corpus at equal compute).
SHORT_PROMPT_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
SHORT_PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"

# The instruction line, the input and a ``###`` line before the response: no section headers. With
# the tiny BPE tokenizer a t2m record's template text drops from 16 tokens (alpaca_short) to 3, a
# fifth of its length: on a CPU budget where the records' unsupervised prompt is most of the compute,
# that is a fifth more records per second of training.
COMPACT_PROMPT_WITH_INPUT = "{instruction}\n{input}\n###\n"
COMPACT_PROMPT_NO_INPUT = "{instruction}\n###\n"

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (the ``ignore_index`` of ``CrossEntropyLoss``)."""

TemplateName = Literal["alpaca", "alpaca_short", "compact", "chat", "auto"]
TEMPLATE_NAMES: tuple[str, ...] = get_args(TemplateName)
"""Every accepted ``template`` value (the values of :data:`TemplateName`)."""
_PLAIN_TEMPLATES = {
    "alpaca": (ALPACA_PROMPT_WITH_INPUT, ALPACA_PROMPT_NO_INPUT),
    "alpaca_short": (SHORT_PROMPT_WITH_INPUT, SHORT_PROMPT_NO_INPUT),
    "compact": (COMPACT_PROMPT_WITH_INPUT, COMPACT_PROMPT_NO_INPUT),
}

TASKS = ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "m2t", "pred", "inbetween", "t2m_next")
"""Every task an instruction record can belong to (the keys of ``data/instructions.json``)."""

DEFAULT_INSTRUCTIONS_PATH = Path(__file__).resolve().parents[2] / "data" / "instructions.json"


# --------------------------------------------------------------------------------------------
# prompts


def _record_fields(record: Mapping[str, Any], need_output: bool) -> tuple[str, str, str | None]:
    if not isinstance(record, Mapping):
        raise ValueError(f"an instruction record must be a mapping, got {type(record).__name__}")
    instruction = record.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"record has no instruction (a non-empty string): {dict(record)!r:.200}")
    inp = record.get("input")
    if inp is None:
        inp = ""
    if not isinstance(inp, str):
        raise ValueError(f"record 'input' must be a string, got {type(inp).__name__}")
    out = record.get("output")
    if need_output and not isinstance(out, str):
        raise ValueError(f"record has no 'output' string: {dict(record)!r:.200}")
    return instruction, inp, out


def resolve_template(template: str, tokenizer: Any = None) -> Literal["alpaca", "alpaca_short", "compact", "chat"]:
    """``auto`` becomes ``chat`` when ``tokenizer`` has a chat template, else ``alpaca``;
    ``chat`` without one is an error."""
    if template not in TEMPLATE_NAMES:
        raise ValueError(f"unknown prompt template {template!r}; known: {list(TEMPLATE_NAMES)}")
    has_chat = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    if template == "auto":
        return "chat" if has_chat else "alpaca"
    if template == "chat" and not has_chat:
        raise ValueError(
            "template 'chat' needs a tokenizer with a chat template (tokenizer.chat_template is empty); "
            "use template 'alpaca' or 'auto'"
        )
    return template  # type: ignore[return-value]


def build_prompt(record: Mapping[str, Any], template: TemplateName = "alpaca", tokenizer: Any = None) -> str:
    """The prompt text of ``record`` (everything the model is given before its response).

    ``alpaca``: the Alpaca template, with the ``### Input:`` block only when ``input`` is non-empty
    (as MotionGPT-LoRA does). ``alpaca_short``: the same sections without Alpaca's preamble
    sentence. ``compact``: the instruction, the input (when non-empty) and a ``###`` line, each on
    its own line. ``chat``: one user turn (instruction, a blank line, input) rendered by
    ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``. ``auto``: ``chat`` when the
    tokenizer has a chat template, else ``alpaca``.
    """
    instruction, inp, _ = _record_fields(record, need_output=False)
    kind = resolve_template(template, tokenizer)
    if kind in _PLAIN_TEMPLATES:
        with_input, no_input = _PLAIN_TEMPLATES[kind]
        if inp:
            return with_input.format(instruction=instruction, input=inp)
        return no_input.format(instruction=instruction)
    content = f"{instruction}\n\n{inp}" if inp else instruction
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def _special_prefix(tokenizer: Any) -> list[int]:
    """The ids the tokenizer puts before a text by default (usually ``[bos]``, maybe ``[]``)."""
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i]
    return []


def encode_prompt(tokenizer: Any, prompt: str, template: TemplateName = "alpaca") -> list[int]:
    """Token ids of a prompt exactly as training saw them: the tokenizer's leading special tokens
    (bos) + the prompt, no eos. A chat-rendered prompt already holds its special tokens, so none
    are added. Generation must feed these ids (and nothing else) to the model."""
    kind = resolve_template(template, tokenizer)
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if kind == "chat":
        return ids
    return _special_prefix(tokenizer) + ids


def build_example(
    record: Mapping[str, Any],
    tokenizer: Any,
    template: TemplateName = "alpaca",
    train_on_prompt: bool = False,
    max_len: int | None = None,
) -> dict[str, Any]:
    """Tokenize one record for causal-LM training.

    Returns ``input_ids`` = prompt ids (:func:`encode_prompt`) + response ids + ``eos``;
    ``labels`` = a copy with the prompt set to ``IGNORE_INDEX`` (-100), or the full sequence when
    ``train_on_prompt``; ``attention_mask`` = ones. Plus ``num_prompt_tokens``, ``length`` (before
    any truncation) and ``truncated``.

    Truncation policy: a sequence longer than ``max_len`` is cut to ``max_len`` and flagged
    ``truncated=True`` — its EOS (and maybe all of its response) is gone, so the caller should
    count and drop it rather than train on it. Nothing is ever cut silently.
    """
    instruction, inp, output = _record_fields(record, need_output=True)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; cannot mark the end of a response")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be positive, got {max_len}")
    prompt = build_prompt(record, template, tokenizer)
    prompt_ids = encode_prompt(tokenizer, prompt, template)
    response_ids = list(tokenizer(output, add_special_tokens=False)["input_ids"]) + [tokenizer.eos_token_id]
    input_ids = prompt_ids + response_ids
    if train_on_prompt:
        labels = list(input_ids)
    else:
        labels = [IGNORE_INDEX] * len(prompt_ids) + list(response_ids)
    length = len(input_ids)
    truncated = max_len is not None and length > max_len
    if truncated:
        input_ids, labels = input_ids[:max_len], labels[:max_len]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": [1] * len(input_ids),
        "num_prompt_tokens": len(prompt_ids),
        "length": length,
        "truncated": truncated,
    }


# --------------------------------------------------------------------------------------------
# instruction strings


def load_instructions(path: str | os.PathLike | None = None, *, require_all: bool = True) -> dict[str, list[str]]:
    """Read ``data/instructions.json`` (or ``path``): ``{task: [canonical, *paraphrases]}``.

    Validated: a top-level ``tasks`` mapping; known task names only (:data:`TASKS`); each task a
    mapping with a non-empty ``canonical`` string and a list of non-empty, distinct ``paraphrases``
    strings; with ``require_all`` every task of :data:`TASKS` present. Errors name the file.
    """
    path = Path(path) if path is not None else DEFAULT_INSTRUCTIONS_PATH
    data = read_json(path, "instructions file")
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise ValueError(f"{path}: expected a top-level object with a 'tasks' mapping")
    tasks = data["tasks"]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"{path}: unknown task(s) {unknown}; known: {list(TASKS)}")
    if require_all:
        missing = [t for t in TASKS if t not in tasks]
        if missing:
            raise ValueError(f"{path}: missing task(s) {missing}")
    out: dict[str, list[str]] = {}
    for task in TASKS:
        if task not in tasks:
            continue
        entry = tasks[task]
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: task {task!r} must be an object with 'canonical' and 'paraphrases'")
        extra = sorted(set(entry) - {"canonical", "paraphrases", "input", "output"})
        if extra:
            raise ValueError(f"{path}: task {task!r} has unknown key(s) {extra}")
        canonical = entry.get("canonical")
        paraphrases = entry.get("paraphrases", [])
        if not isinstance(paraphrases, list):
            raise ValueError(f"{path}: task {task!r}: 'paraphrases' must be a list of strings")
        strings = ([canonical] if canonical is not None else []) + paraphrases
        if not strings:
            raise ValueError(f"{path}: task {task!r} has an empty instruction list")
        if canonical is None:
            raise ValueError(f"{path}: task {task!r} has no 'canonical' instruction")
        for i, s in enumerate(strings):
            if not isinstance(s, str) or not s.strip():
                raise ValueError(f"{path}: task {task!r}: instruction {i} is not a non-empty string: {s!r}")
            if s != s.strip():
                raise ValueError(f"{path}: task {task!r}: instruction {i} has leading/trailing whitespace: {s!r}")
        if len(set(strings)) != len(strings):
            raise ValueError(f"{path}: task {task!r} lists the same instruction twice")
        out[task] = strings
    return out


def tokenizer_corpus(captions: Iterable[str], instructions: Mapping[str, list[str]] | None = None) -> list[str]:
    """Texts to train the local BPE tokenizer on: the captions, every instruction string, and the
    fixed text of the Alpaca templates (so ``### Instruction:`` etc. get their own merges; the
    ``alpaca_short`` template's text is a part of them)."""
    if instructions is None:
        instructions = load_instructions()
    texts = [c for c in captions if isinstance(c, str) and c]
    for strings in instructions.values():
        texts.extend(strings)
    texts.append(ALPACA_PROMPT_WITH_INPUT.format(instruction="", input=""))
    texts.append(ALPACA_PROMPT_NO_INPUT.format(instruction=""))
    return texts

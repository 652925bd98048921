"""LLM stage: motion tokens as text, prompt templates, base models / tokenizers.

``tokens`` and ``templates`` are pure Python and imported eagerly; the names of ``model``
(which needs torch and, lazily, transformers) are loaded on first access.
"""

from __future__ import annotations

from typing import Any

from motiongpt.llm.templates import (
    ALPACA_PROMPT_NO_INPUT,
    ALPACA_PROMPT_WITH_INPUT,
    DEFAULT_INSTRUCTIONS_PATH,
    IGNORE_INDEX,
    TASKS,
    build_example,
    build_prompt,
    encode_prompt,
    load_instructions,
    resolve_template,
    tokenizer_corpus,
)
from motiongpt.llm.tokens import (
    MOTION_END,
    MOTION_START,
    MotionTokenFormat,
    ParseResult,
    codes_to_text,
    extract_key_tokens,
    join_key_tokens,
    load_motion_format,
    motion_token,
    motion_token_strings,
    parse_codes_strict,
    save_motion_format,
    text_to_codes,
)

_MODEL_NAMES = (
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
)

__all__ = [
    "ALPACA_PROMPT_NO_INPUT",
    "ALPACA_PROMPT_WITH_INPUT",
    "DEFAULT_INSTRUCTIONS_PATH",
    "IGNORE_INDEX",
    "TASKS",
    "build_example",
    "build_prompt",
    "encode_prompt",
    "load_instructions",
    "resolve_template",
    "tokenizer_corpus",
    "MOTION_END",
    "MOTION_START",
    "MotionTokenFormat",
    "ParseResult",
    "codes_to_text",
    "extract_key_tokens",
    "join_key_tokens",
    "load_motion_format",
    "motion_token",
    "motion_token_strings",
    "parse_codes_strict",
    "save_motion_format",
    "text_to_codes",
    *_MODEL_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        from motiongpt.llm import model

        return getattr(model, name)
    raise AttributeError(f"module 'motiongpt.llm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODEL_NAMES))

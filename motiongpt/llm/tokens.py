"""Motion tokens as text: VQ-VAE codes <-> the strings an LLM reads and writes.

Two formats, chosen per run and saved with the checkpoint (:class:`MotionTokenFormat`):

``vocab`` (default)
    every code ``K`` is one added token ``<motion_id_K>``; a span is wrapped in the added tokens
    ``<Motion Token>`` ... ``</Motion Token>``::

        <Motion Token><motion_id_315><motion_id_91></Motion Token>

``digits``
    MotionGPT-LoRA compatibility: comma-joined decimal integers, wrapped in inputs
    (``<Motion Token>315,91,406</Motion Token>``) and bare in its train.json outputs
    (``315,91,406``). Both forms are accepted.

Parsing model output never raises: :func:`text_to_codes` returns a :class:`ParseResult` with the
codes it could salvage (always inside ``[0, nb_code)``), ``ok`` and a list of human-readable
problems. ``ok`` is true only when the text, after stripping surrounding whitespace, is exactly
what :func:`codes_to_text` writes for those codes (wrapped, or bare when bare is allowed), so
inner whitespace, leading zeros, empty items, stray text, duplicated or missing wrappers all make
it false. User inputs go through :func:`parse_codes_strict`, which raises ``ValueError`` instead.

Pure Python (no torch / transformers import).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

__all__ = [
    "MOTION_START",
    "MOTION_END",
    "MotionTokenFormat",
    "ParseResult",
    "motion_token",
    "motion_token_strings",
    "codes_to_text",
    "text_to_codes",
    "parse_codes_strict",
    "extract_key_tokens",
    "join_key_tokens",
    "FORMAT_FILENAME",
    "save_motion_format",
    "load_motion_format",
]

MOTION_START = "<Motion Token>"
MOTION_END = "</Motion Token>"

FormatKind = Literal["vocab", "digits"]
_KINDS = ("vocab", "digits")

# A vocab token as the parser sees it: sign and digits are captured so that look-alikes such as
# <motion_id_-1>, <motion_id_99999> or <motion_id_007> get a precise problem message.
_VOCAB_TOKEN_RE = re.compile(r"<motion_id_([+-]?[0-9]+)>", re.ASCII)
_VOCAB_PREFIX = "<motion_id_"
_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MAX_SNIPPET = 40


@dataclass(frozen=True)
class MotionTokenFormat:
    """How motion codes are written as text; saved with every checkpoint (``to_dict``)."""

    kind: FormatKind = "vocab"
    """``vocab``: one added token ``<motion_id_K>`` per code; ``digits``: ``315,91,406``."""
    nb_code: int = 512
    """Size of the VQ-VAE codebook: valid codes are ``0 .. nb_code - 1``."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"MotionTokenFormat.kind must be one of {list(_KINDS)}, got {self.kind!r}")
        if isinstance(self.nb_code, bool) or not isinstance(self.nb_code, int) or self.nb_code < 1:
            raise ValueError(f"MotionTokenFormat.nb_code must be a positive integer, got {self.nb_code!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "nb_code": self.nb_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MotionTokenFormat":
        if not isinstance(data, dict):
            raise ValueError(f"MotionTokenFormat.from_dict: expected a mapping, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"MotionTokenFormat.from_dict: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


FORMAT_FILENAME = "motion_format.json"


def save_motion_format(fmt: MotionTokenFormat, out_dir: str | os.PathLike) -> Path:
    """Write ``fmt`` to ``out_dir/motion_format.json`` (atomically); returns the path."""
    from motiongpt.config import atomic_write_text

    _check_fmt(fmt)
    path = Path(out_dir) / FORMAT_FILENAME
    atomic_write_text(path, json.dumps(fmt.to_dict(), indent=2) + "\n")
    return path


def load_motion_format(path: str | os.PathLike) -> MotionTokenFormat:
    """Read a format saved by :func:`save_motion_format` (``path``: the file or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / FORMAT_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"motion token format file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return MotionTokenFormat.from_dict(data)
    except (json.JSONDecodeError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a valid motion token format: {e}") from e


@dataclass
class ParseResult:
    """What :func:`text_to_codes` made of a string."""

    codes: list[int]
    """The codes salvaged, in order; only codes inside ``[0, nb_code)`` are kept."""
    ok: bool
    """True only when the text is exactly well-formed (then ``problems`` is empty)."""
    problems: list[str] = field(default_factory=list)
    """Human-readable problems, e.g. ``"code 600 out of range [0,512) at position 3"``."""
    before: str = ""
    """Text before the motion span (for a wrapped span), as found."""
    after: str = ""
    """Text after the motion span (for a wrapped span), as found."""
    wrapped: bool = False
    """Whether a ``<Motion Token>`` / ``</Motion Token>`` wrapper was found."""

    @property
    def outside_text(self) -> str:
        """The text outside the motion span (before and after, stripped, joined by a space)."""
        return " ".join(p for p in (self.before.strip(), self.after.strip()) if p)


def _check_fmt(fmt: MotionTokenFormat) -> None:
    if not isinstance(fmt, MotionTokenFormat):
        raise TypeError(f"expected a MotionTokenFormat, got {type(fmt).__name__}")


def motion_token(code: int) -> str:
    """The vocab-format token string of one code: ``<motion_id_K>``."""
    return f"{_VOCAB_PREFIX}{int(code)}>"


def motion_token_strings(fmt: MotionTokenFormat) -> list[str]:
    """Every string to add to a tokenizer for ``fmt``: the two wrappers, then (vocab only)
    ``<motion_id_0>`` .. ``<motion_id_{nb_code-1}>`` in code order."""
    _check_fmt(fmt)
    out = [MOTION_START, MOTION_END]
    if fmt.kind == "vocab":
        out += [motion_token(k) for k in range(fmt.nb_code)]
    return out


def _validated_codes(codes: Sequence[int], fmt: MotionTokenFormat) -> list[int]:
    out = []
    for i, c in enumerate(codes):
        if isinstance(c, bool):
            raise ValueError(f"code {c!r} at position {i} is not an integer")
        try:
            k = int(c)
        except (TypeError, ValueError):
            raise ValueError(f"code {c!r} at position {i} is not an integer") from None
        if k != c:
            raise ValueError(f"code {c!r} at position {i} is not an integer")
        if not 0 <= k < fmt.nb_code:
            raise ValueError(f"code {k} out of range [0,{fmt.nb_code}) at position {i}")
        out.append(k)
    return out


def codes_to_text(codes: Sequence[int], fmt: MotionTokenFormat, wrap: bool = True) -> str:
    """Write ``codes`` in ``fmt``; ``wrap`` adds ``<Motion Token>`` ... ``</Motion Token>``.

    Accepts any sequence of integers (list, tuple, numpy array, 1-D tensor); raises ``ValueError``
    for codes outside ``[0, nb_code)``, which can only be a bug upstream.
    """
    _check_fmt(fmt)
    if hasattr(codes, "tolist"):
        codes = codes.tolist()
    ks = _validated_codes(list(codes), fmt)
    if fmt.kind == "vocab":
        body = "".join(motion_token(k) for k in ks)
    else:
        body = ",".join(str(k) for k in ks)
    return f"{MOTION_START}{body}{MOTION_END}" if wrap else body


def _snippet(s: str) -> str:
    if len(s) > _MAX_SNIPPET:
        s = s[: _MAX_SNIPPET - 3] + "..."
    return repr(s)


def _parse_int(raw: str, position: int, fmt: MotionTokenFormat, problems: list[str]) -> int | None:
    """One decimal item (already known to match ``_INT_RE``): the code, or None with a problem."""
    digits = raw.lstrip("+-")
    if len(digits.lstrip("0")) > 18:  # also keeps int() clear of its max-digits limit
        problems.append(f"code {_snippet(raw)} out of range [0,{fmt.nb_code}) at position {position}")
        return None
    value = int(raw)
    if not 0 <= value < fmt.nb_code:
        problems.append(f"code {value} out of range [0,{fmt.nb_code}) at position {position}")
        return None
    if raw != str(value):
        problems.append(f"non-canonical code {raw!r} (expected {str(value)!r}) at position {position}")
    return value


def _parse_vocab_body(body: str, fmt: MotionTokenFormat, problems: list[str]) -> list[int]:
    codes: list[int] = []
    position = 0
    pos = 0
    while pos < len(body):
        m = _VOCAB_TOKEN_RE.match(body, pos)
        if m:
            value = _parse_int(m.group(1), position, fmt, problems)
            if value is not None:
                codes.append(value)
            position += 1
            pos = m.end()
            continue
        nxt = body.find(_VOCAB_PREFIX, pos + 1)
        end = len(body) if nxt < 0 else nxt
        junk = body[pos:end]
        if junk.isspace():
            problems.append(f"whitespace {_snippet(junk)} inside motion span before position {position}")
        else:
            problems.append(f"unexpected text {_snippet(junk)} inside motion span before position {position}")
        pos = end
    return codes


def _parse_digits_body(body: str, fmt: MotionTokenFormat, problems: list[str]) -> list[int]:
    codes: list[int] = []
    if body == "":
        return codes
    for position, item in enumerate(body.split(",")):
        stripped = item.strip()
        if stripped != item:
            problems.append(f"whitespace around code {_snippet(stripped)} at position {position}")
        if stripped == "":
            problems.append(f"empty item at position {position}")
            continue
        if not _INT_RE.fullmatch(stripped):
            problems.append(f"unexpected text {_snippet(stripped)} inside motion span at position {position}")
            continue
        value = _parse_int(stripped, position, fmt, problems)
        if value is not None:
            codes.append(value)
    return codes


def _parse_body(body: str, fmt: MotionTokenFormat, problems: list[str]) -> list[int]:
    if fmt.kind == "vocab":
        return _parse_vocab_body(body, fmt, problems)
    return _parse_digits_body(body, fmt, problems)


def text_to_codes(
    text: str,
    fmt: MotionTokenFormat,
    *,
    allow_bare: bool | None = None,
    allow_outside_text: bool = False,
) -> ParseResult:
    """Parse motion codes out of ``text`` (typically model output). Never raises on any string.

    ``allow_bare``: accept a span without wrappers (``315,91,406`` or ``<motion_id_1><motion_id_2>``).
    ``None`` (default) accepts it when the text holds no wrapper at all, except that an empty bare
    text reads as "no motion span found"; ``True`` also accepts an empty bare text as zero codes;
    ``False`` requires the wrappers. ``allow_outside_text``: text before/after a wrapped span is
    returned in ``before`` / ``after`` and is not a problem (captions with key tokens); by default
    it is one.
    """
    _check_fmt(fmt)
    if not isinstance(text, str):
        return ParseResult([], False, [f"expected a string, got {type(text).__name__}"])
    problems: list[str] = []
    stripped = text.strip()
    n_start = text.count(MOTION_START)
    n_end = text.count(MOTION_END)

    if n_start == 0 and n_end == 0:
        if allow_bare is False:
            return ParseResult([], False, [f"no motion span found (expected {MOTION_START} ... {MOTION_END})"])
        if stripped == "" and allow_bare is None:
            return ParseResult([], False, ["no motion span found (empty text)"])
        codes = _parse_body(stripped, fmt, problems)
        problems = [p.replace(" inside motion span", "") for p in problems]
        junk_only = all(p.startswith(("unexpected text", "whitespace", "empty item")) for p in problems)
        if not codes and problems and junk_only:
            # Nothing resembling a code at all: say so plainly, then the details.
            problems.insert(0, "no motion span found")
        return ParseResult(codes, not problems, problems, wrapped=False)

    start = text.find(MOTION_START)
    if start < 0:
        # Only closing wrapper(s): salvage what precedes the first one.
        problems.append(f"missing {MOTION_START}")
        end = text.find(MOTION_END)
        before, body, after = "", text[:end], text[end + len(MOTION_END) :]
        if n_end > 1:
            problems.append(f"{n_end} {MOTION_END} found, expected 1")
        codes = _parse_body(body.strip(), fmt, problems)
        return ParseResult(codes, False, problems, before=before, after=after, wrapped=True)

    before = text[:start]
    rest = text[start + len(MOTION_START) :]
    end = rest.find(MOTION_END)
    nxt_start = rest.find(MOTION_START)
    if end < 0:
        problems.append(f"missing {MOTION_END}")
        body, after = rest, ""
        if nxt_start >= 0:
            problems.append(f"nested or repeated {MOTION_START}")
            body = body.replace(MOTION_START, "")
    else:
        body, after = rest[:end], rest[end + len(MOTION_END) :]
        if 0 <= nxt_start < end:
            problems.append(f"nested or repeated {MOTION_START} inside motion span")
            body = body.replace(MOTION_START, "")
        if n_start > 1 or n_end > 1:
            problems.append(
                f"{n_start} {MOTION_START} and {n_end} {MOTION_END} found, expected one of each; using the first span"
            )
    codes = _parse_body(body, fmt, problems)
    if not allow_outside_text:
        outside = (before + " " + after).strip()
        if outside:
            problems.append(f"unexpected text {_snippet(outside)} outside motion span")
    return ParseResult(codes, not problems, problems, before=before, after=after, wrapped=True)


def parse_codes_strict(text: str, fmt: MotionTokenFormat, *, allow_bare: bool = True) -> list[int]:
    """Parse a user-supplied span (wrapped, or bare when ``allow_bare``); raise ``ValueError``
    naming every problem when it is not exactly well-formed."""
    res = text_to_codes(text, fmt, allow_bare=None if allow_bare else False)
    if not res.ok:
        raise ValueError(f"invalid motion tokens ({fmt.kind} format): " + "; ".join(res.problems))
    return res.codes


def extract_key_tokens(
    text: str, fmt: MotionTokenFormat, *, strict: bool = False
) -> tuple[str, list[int]]:
    """Split an instruction input such as ``"a person walks<Motion Token>315,91</Motion Token>"``
    into ``(caption, codes)``.

    The caption is the text outside the span, stripped. Text without any wrapper is all caption
    (``codes == []``). With ``strict`` a malformed span raises ``ValueError``; otherwise the
    salvaged codes are returned.
    """
    _check_fmt(fmt)
    if MOTION_START not in text and MOTION_END not in text:
        return text.strip(), []
    res = text_to_codes(text, fmt, allow_bare=False, allow_outside_text=True)
    if strict and not res.ok:
        raise ValueError(f"invalid key tokens in {_snippet(text)}: " + "; ".join(res.problems))
    return res.outside_text, res.codes


def join_key_tokens(caption: str, codes: Sequence[int], fmt: MotionTokenFormat, sep: str = "") -> str:
    """The inverse of :func:`extract_key_tokens`: ``caption + sep + <Motion Token>...</Motion Token>``.

    ``sep=""`` matches MotionGPT-LoRA's train.json (``f"{text}<Motion Token>{tokens}</Motion Token>"``).
    """
    return f"{caption}{sep}{codes_to_text(codes, fmt, wrap=True)}"

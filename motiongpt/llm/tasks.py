"""Instruction tasks: turn one captioned motion (its VQ codes) into instruction records.

A record is a MotionGPT-LoRA / Alpaca record plus bookkeeping::

    {"instruction": str, "input": str, "output": str,
     "task": str, "motion": clip id, "length": frames (= 4 x codes),
     "caption": the caption used, ...task extras}

Task extras: ``keys`` (``[[position, code], ...]``, positions index the output span) for
``t2m_init`` / ``t2m_last`` / ``t2m_keys`` / ``t2m_keys_pos``; ``prefix_len`` for ``pred``;
``start_len`` / ``end_len`` for ``inbetween``; ``references`` (every caption of the motion)
for ``m2t``.

Input formats (the same functions format prompts at generation time and parse them back):

=================  ==============================================================================
task               input
=================  ==============================================================================
``t2m``            ``caption``
``t2m_init``       ``caption<Motion Token>first</Motion Token>`` (MotionGPT-LoRA, via
                   :func:`~motiongpt.llm.tokens.join_key_tokens`)
``t2m_last``       ``caption<Motion Token>last</Motion Token>``
``t2m_keys``       ``caption<Motion Token>k1 k2 k3</Motion Token>`` (3-5 codes in order, no
                   positions)
``t2m_keys_pos``   :func:`format_keys_pos_input`:
                   ``caption\\nLength: 37 tokens. Key tokens: 0:<motion_id_315> 12:<motion_id_91>``
                   (digits: ``... Key tokens: 0:315 12:91``)
``m2t``            ``<Motion Token>...</Motion Token>`` (output: the caption)
``pred``           :func:`format_pred_input`: ``<Motion Token>first part</Motion Token>``
                   (``caption\\n`` in front when captions are enabled for motion tasks)
``inbetween``      :func:`format_inbetween_input`:
                   ``Start: <Motion Token>...</Motion Token>\\nEnd: <Motion Token>...</Motion Token>``
                   (``caption\\n`` in front when enabled)
``t2m_next``       :func:`format_next_input`: ``clause\\n<Motion Token>last codes before it</Motion Token>``
                   (an empty span for the first clause); output: the codes of that clause only
=================  ==============================================================================

``t2m_next`` (sequential text-to-motion, in the spirit of TEACH, Athanasiou et al. 2022) needs
temporal segment annotations: a clip whose caption splits into clauses at its sequencing connectors
(:func:`split_clauses`; the templates' "then") as many as the clip has annotated segments gives one record per clause,
the clause's own codes as output and the last ``next_context_codes`` codes before it as input
(none by default: see :class:`TaskConfig`).
A model trained on them writes a long description clause by clause
(:func:`motiongpt.generate.compose.generate_composed`), so an unseen sequence of known actions is
made of actions it has seen, each from its own text.

Outputs that are motion are written wrapped in the vocab format
(``<Motion Token><motion_id_1>...</Motion Token>``) and bare in the digits format
(``315,91,406``, as MotionGPT-LoRA's ``train.json``); :class:`TaskConfig.wrap_output` overrides.

``pred`` and ``inbetween`` are motion-only by default, as in "MotionGPT: Human Motion as a Foreign
Language" (its prediction / in-between prompts hold no text): the model must continue or connect
the motion from the motion alone. ``caption_in_motion_tasks`` adds the caption in front.

Randomness (instruction paraphrase, caption order, key positions, split points) comes from a
``random.Random`` seeded by ``(seed, motion id, task)`` only: the records of a clip do not depend
on which other clips or tasks are generated, nor on their order.

Pure Python (no torch / transformers import).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from motiongpt.llm.templates import TASKS
from motiongpt.llm.tokens import (
    MOTION_END,
    MOTION_START,
    MotionTokenFormat,
    codes_to_text,
    join_key_tokens,
    motion_token,
    parse_codes_strict,
)

__all__ = [
    "unconditional_record",
    "UNCOND_TASKS",
    "MOTIONGPT_LORA_TASKS",
    "MOTION_OUTPUT_TASKS",
    "MIN_TOKENS",
    "TaskConfig",
    "MotionItem",
    "swap_left_right",
    "format_keys_pos_input",
    "parse_keys_pos_input",
    "format_pred_input",
    "parse_pred_input",
    "format_inbetween_input",
    "parse_inbetween_input",
    "split_clauses",
    "format_next_input",
    "parse_next_input",
    "format_motion_output",
    "output_is_wrapped",
    "choose_instruction",
    "task_of_instruction",
    "clip_rng",
    "build_task_records",
    "build_item_records",
]

MOTIONGPT_LORA_TASKS = ("t2m", "t2m_init", "t2m_last", "t2m_keys")
"""The four tasks of MotionGPT-LoRA's ``train.json`` (their canonical instructions are verbatim)."""

MOTION_OUTPUT_TASKS = tuple(t for t in TASKS if t != "m2t")
"""Tasks whose output is a motion span (all but ``m2t``)."""

UNCOND_TASKS = ("t2m", "t2m_next")
"""Tasks whose records can have unconditional copies (``TaskConfig.uncond_tasks``)."""

MIN_TOKENS: dict[str, int] = {
    "t2m": 1,
    "t2m_init": 2,  # with one token the "initial token" would be the whole answer
    "t2m_last": 2,
    "t2m_keys": 3,  # MotionGPT-LoRA gives 3-5 key tokens
    "t2m_keys_pos": 2,
    "m2t": 1,
    "pred": 3,  # >= 2 tokens given + >= 1 to predict
    "inbetween": 3,  # start, middle and end each >= 1 token
    "t2m_next": 2,  # two annotated segments of >= 1 code each
}
"""Fewest codes a motion needs for each task; shorter motions are skipped (and counted)."""


@dataclass
class TaskConfig:
    """How records are made from captioned motions (shared by the dataset builder and tests)."""

    tasks: list[str] = field(default_factory=lambda: list(MOTIONGPT_LORA_TASKS))
    """Tasks to generate (any of ``t2m t2m_init t2m_last t2m_keys t2m_keys_pos m2t pred inbetween``)."""
    records_per_clip: int = 0
    """Records per motion per task. 0: one per caption (every caption used once). N > 0: exactly N,
    taking captions in a seeded shuffled order (distinct while N <= number of captions, then
    cycling)."""
    canonical_prob: float = 0.5
    """Probability of the canonical instruction string; otherwise one of the paraphrases of
    ``data/instructions.json`` is drawn uniformly. 1.0 reproduces MotionGPT-LoRA's strings only."""
    num_keys_min: int = 3
    """``t2m_keys``: fewest key tokens given (MotionGPT-LoRA: 3)."""
    num_keys_max: int = 5
    """``t2m_keys``: most key tokens given (MotionGPT-LoRA: 5); capped at the motion's length."""
    keys_pos_min: int = 1
    """``t2m_keys_pos``: fewest key tokens (with positions) given."""
    keys_pos_max: int = 5
    """``t2m_keys_pos``: most key tokens (with positions) given; capped at the motion's length."""
    pred_min_frac: float = 0.2
    """``pred``: shortest given first part, as a fraction of the motion's tokens (at least 2 tokens)."""
    pred_max_frac: float = 0.5
    """``pred``: longest given first part, as a fraction (at least 1 token is always left to predict)."""
    inbetween_min_frac: float = 0.15
    """``inbetween``: shortest given start (and, drawn separately, end) part, as a fraction (>= 1 token)."""
    inbetween_max_frac: float = 0.35
    """``inbetween``: longest given start / end part, as a fraction (>= 1 token is always left between)."""
    caption_in_motion_tasks: bool = False
    """Put the caption in front of the ``pred`` / ``inbetween`` inputs (default: motion-only prompts,
    as in "Human Motion as a Foreign Language")."""
    wrap_output: bool | None = None
    """Wrap motion outputs in ``<Motion Token>`` ... ``</Motion Token>``. None: wrapped for the vocab
    format, bare for digits (MotionGPT-LoRA's ``train.json`` outputs are bare)."""
    uncond_prob: float = 0.0
    """Probability that a ``t2m`` record is followed by an unconditional copy of it: the canonical
    ``t2m`` instruction with an empty input (see :func:`unconditional_record`). The model then also
    learns motion without a caption, which classifier-free guidance at generation time needs
    (``SamplingConfig.guidance_scale``; MoMask drops 10 % of its captions the same way). Only the
    train split gets these records (the dataset builder passes 0 for the others)."""
    uncond_tasks: list[str] = field(default_factory=lambda: ["t2m"])
    """Tasks whose records get the ``uncond_prob`` unconditional copies: ``t2m`` and / or
    ``t2m_next`` (only its records without context: the canonical ``t2m_next`` instruction with an
    empty input, the unconditional prompt of guided clauses in composed decoding)."""
    next_context_codes: int = 0
    """``t2m_next``: codes of the motion before a clause given in its input (the last ones; fewer
    when less came before). 0 (default): none, every clause from its text alone. A context carries
    the pose and pace the clause starts from, but also what the action before it was, and on unseen
    sequences that costs more than it gives (measured on the demo corpus: ``docs/experiments/``)."""

    paraphrase_prob: float = 0.0
    """Probability that a caption of a text-conditioned record (every task but ``m2t``, ``pred``
    and ``inbetween``) is reworded through WordNet (:class:`~motiongpt.data.paraphrase.CaptionParaphraser`:
    synonyms and more specific words of the same sense, inflected; sides, counts and connectors
    kept). Teaches the model the meaning of the words rather than the corpus's word forms. Train
    split only; needs the WordNet database (``scripts/fetch_wordnet.py``, fetched on first use)."""
    paraphrase_word_prob: float = 0.6
    """In a reworded caption, the probability that each content word is replaced."""
    paraphrase_exclude: list[str] = field(default_factory=list)
    """Caption files (``id#caption`` lines, e.g. ``scripts/make_rewordings.py`` output) whose words
    the rewording never produces (template words excepted): measures how the model reads words it
    never saw in training."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field for inconsistent settings."""
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"tasks: unknown task(s) {unknown}; known: {list(TASKS)}")
        if not self.tasks:
            raise ValueError("tasks: empty list; give at least one of " + ", ".join(TASKS))
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: a task is listed twice: {self.tasks}")
        if self.records_per_clip < 0:
            raise ValueError(f"records_per_clip must be >= 0 (0: one per caption), got {self.records_per_clip}")
        if not 0.0 <= self.canonical_prob <= 1.0:
            raise ValueError(f"canonical_prob must be in [0, 1], got {self.canonical_prob}")
        for lo, hi, least in (("num_keys_min", "num_keys_max", 1), ("keys_pos_min", "keys_pos_max", 1)):
            a, b = getattr(self, lo), getattr(self, hi)
            if a < least or b < a:
                raise ValueError(f"{lo}/{hi} must satisfy {least} <= {lo} <= {hi}, got {a}/{b}")
        for lo, hi in (("pred_min_frac", "pred_max_frac"), ("inbetween_min_frac", "inbetween_max_frac")):
            a, b = getattr(self, lo), getattr(self, hi)
            if not 0.0 < a <= b < 1.0:
                raise ValueError(f"{lo}/{hi} must satisfy 0 < {lo} <= {hi} < 1, got {a}/{b}")
        if 2 * self.inbetween_max_frac >= 1.0:
            raise ValueError(f"inbetween_max_frac must be < 0.5 (start + end < whole), got {self.inbetween_max_frac}")
        if not 0.0 <= self.uncond_prob <= 1.0:
            raise ValueError(f"uncond_prob must be in [0, 1], got {self.uncond_prob}")
        bad = [t for t in self.uncond_tasks if t not in UNCOND_TASKS]
        if bad or len(set(self.uncond_tasks)) != len(self.uncond_tasks):
            raise ValueError(f"uncond_tasks: each of {list(UNCOND_TASKS)} at most once, got {list(self.uncond_tasks)}")
        for name in ("paraphrase_prob", "paraphrase_word_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if isinstance(self.next_context_codes, bool) or not isinstance(self.next_context_codes, int) \
                or self.next_context_codes < 0:
            raise ValueError(f"next_context_codes must be an integer >= 0, got {self.next_context_codes!r}")


@dataclass(frozen=True)
class MotionItem:
    """One captioned motion: a whole clip, a segment of one, or a mirrored clip."""

    id: str
    """Clip id as written to records (``<id>``, ``M<id>``, or ``<id>#<start>#<end>`` for a segment)."""
    codes: tuple[int, ...]
    """Its VQ codes, in order."""
    captions: tuple[str, ...]
    """Its caption texts (non-empty strings)."""
    unit_length: int = 4
    """Frames per code (the VQ-VAE's downsampling), for the record's ``length`` in frames."""
    segment_starts: tuple[int, ...] = ()
    """Code index where each annotated segment after the first starts (increasing, inside
    ``(0, len(codes))``); empty: no segment annotation (``t2m_next`` makes no records)."""
    caption_tags: tuple[tuple[str, ...], ...] = ()
    """Per caption, its ``word/POS`` tokens (HumanML3D's), read by caption rewording; empty: none."""


# --------------------------------------------------------------------------------------------
# mirrored captions

# Longest alternatives first: at a given position the regex takes the first alternative that
# matches, so "counter-clockwise" is consumed whole before "clockwise" could match inside it.
_SWAP_RE = re.compile(
    r"\b(counter-clockwise|anti-clockwise|counterclockwise|anticlockwise|clockwise|"
    r"leftwards|rightwards|leftward|rightward|left|right)\b",
    re.IGNORECASE,
)
_SWAP = {
    "left": "right", "right": "left",
    "leftward": "rightward", "rightward": "leftward",
    "leftwards": "rightwards", "rightwards": "leftwards",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise", "counter-clockwise": "clockwise",
    "anticlockwise": "clockwise", "anti-clockwise": "clockwise",
}


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[0].isupper():
        return word[0].upper() + word[1:]
    return word


def swap_left_right(text: str) -> str:
    """The caption of the left/right mirror of a motion (HumanML3D's ``M<id>`` captions).

    Swaps ``left`` <-> ``right`` (also ``leftward(s)`` / ``rightward(s)``) as whole words, and
    ``clockwise`` -> ``counterclockwise``, ``counterclockwise`` / ``counter-clockwise`` /
    ``anticlockwise`` / ``anti-clockwise`` -> ``clockwise``; the case of the first letter (or of
    an all-caps word) is kept. ``left-handed`` becomes ``right-handed``; ``leftover`` is untouched.
    """
    return _SWAP_RE.sub(lambda m: _match_case(_SWAP[m.group(0).lower()], m.group(0)), text)


# --------------------------------------------------------------------------------------------
# input / output formats

_KEYS_POS_RE = re.compile(r"Length: ([0-9]+) tokens\. Key tokens: (.*)", re.ASCII | re.DOTALL)
_KEY_ITEM_VOCAB_RE = re.compile(r"([0-9]+):<motion_id_([0-9]+)>", re.ASCII)
_KEY_ITEM_DIGITS_RE = re.compile(r"([0-9]+):([0-9]+)", re.ASCII)


def _check_caption(caption: str, what: str) -> str:
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"{what}: the caption must be a non-empty string, got {caption!r}")
    if "\n" in caption or "\r" in caption:
        raise ValueError(f"{what}: the caption must be one line, got {caption!r}")
    if MOTION_START in caption or MOTION_END in caption:
        raise ValueError(f"{what}: the caption must not hold motion wrappers, got {caption!r}")
    return caption.strip()


# ---- clause splitting (split_clauses): the connectors people write, see its docstring

_TIME_AMOUNT = (r"(?:(?:a|an|one|two|three|some|a\s+few|several)\s+(?:moments?|seconds?|secs?|minutes?|while|bit|beat)\s+"
                r"|(?:a\s+)?little\s+|(?:shortly|soon|much|not\s+long)\s+)?")
_SOON = r"(?:(?:right|just|shortly|soon|immediately|directly|straight)\s+)?"
# connectors that put the next clause after the one before them ("then" is the templates' own)
_SEQ_WORDS = (
    r"then",
    _SOON + r"after\s+(?:that|this|which)",
    _SOON + r"afterwards?",
    r"after\s+(?:a\s+(?:while|moment|second|bit|beat)|some\s+time|a\s+few\s+(?:seconds|moments))",
    _TIME_AMOUNT + r"later(?:\s+on)?",
    r"subsequently",
    r"(?:and\s+)?(?:finally|lastly|eventually)",
    r"followed\s+by",
    r"(?:once|when)\s+(?:done|finished|complete|completed)",
)
# connectors that put the next clause BEFORE the one before them ("X. Before that, Y" -> [Y, X])
_REV_WORDS = (r"but\s+first", r"(?:before|prior\s+to)\s+(?:that|this)")
_CONN_BODY = r"(?:" + "|".join(_SEQ_WORDS) + r")"
_REV_BODY = r"(?:" + "|".join(_REV_WORDS) + r")"
# "next" only where it starts a clause (after a comma, "and", a sentence start) and not "next to"
_NEXT_BODY = r"next(?!\s+to\b)"
_FOLLOWS = r"(?=[\s,]+[^\s,])"  # something must follow: "a person walks then" stays one clause
_CONN_SPLIT_RE = re.compile(
    r"(?:(?:^|[\s,]+)(?:and\s+)?(?P<seq>" + _CONN_BODY + r")"
    r"|(?:^|[\s,]+)(?:and\s+)?(?P<rev>" + _REV_BODY + r")"
    r"|(?:^|\s*,[\s,]*|[\s,]+and\s+)(?P<next>" + _NEXT_BODY + r"))" + _FOLLOWS + r"[\s,]*",
    re.IGNORECASE,
)
_SENTENCE_RE = re.compile(r"[.!?]+\s+|\s*;[;\s]*")
_LEAD_RE = re.compile(
    r"^(?:(?:and|" + _CONN_BODY + "|" + _NEXT_BODY + r"|first\s+of\s+all|first(?:ly)?|at\s+first"
    r"|to\s+(?:begin|start)(?:\s+with)?)(?:[\s,]+|$))+",
    re.IGNORECASE,
)
_PRONOUN = r"(?:he|she|they|someone|somebody)"
_PERSON_NOUN = (r"(?:person|man|woman|guy|girl|boy|child|kid|lady|gentleman|figure|human|character|individual"
                r"|dancer|athlete|player|actor|subject|people|men|women)")
_SUBJECT_ONLY_RE = re.compile(
    r"(?:" + _PRONOUN + r"|i|we|you|(?:(?:a|an|the|this|that|one)\s+)?(?:[a-z]+\s+){0,2}?" + _PERSON_NOUN + r")",
    re.IGNORECASE,
)
_TRAILING_PRONOUN_RE = re.compile(r"^(?P<head>.*?)(?:,\s*|\s+and\s+|[\s,]+and\s+)(?P<subj>" + _PRONOUN + r")$",
                                  re.IGNORECASE)
# what "before" / "after" must be followed by to order clauses: a gerund ("after turning"), a
# subject and its verb ("before he leaves") or an action noun ("after a jump"); otherwise
# ("runs after the dog", "stands before the mirror") the word is part of the clause
_NOT_GERUND = r"(?:during|nothing|something|anything|everything|morning|evening|ceiling|thing|string|ring|king|wing|building|clothing)"
_ACTION_NOUN = (r"(?:jumps?|hops?|leaps?|squats?|kicks?|punch(?:es)?|turns?|spins?|twirls?|waves?|claps?|steps?|runs?"
                r"|walks?|jogs?|sprints?|pauses?|rests?|breaks?|bows?|lunges?|stretch(?:es)?|dances?|falls?|rolls?"
                r"|cartwheels?|handstands?|somersaults?|flips?|throws?|swings?|push-?ups?|sit-?ups?|crouch(?:es)?)")
_EVENT = (r"(?:(?!" + _NOT_GERUND + r"\b)[a-z]+ing\b"
          r"|(?:" + _SUBJECT_ONLY_RE.pattern + r")\s+[a-z]"
          r"|(?:(?:a|an|the|his|her|their|its|one|two|three|four|five|some|a\s+few|another)\s+)(?:[a-z]+\s+){0,2}?"
          + _ACTION_NOUN + r"\b)")
_ORDER_WORD = r"(?:(?:right|just|shortly|soon|immediately|directly|straight|long)\s+)?(?P<word>before|after|prior\s+to)"
_ORDER_LEAD_RE = re.compile(r"^" + _ORDER_WORD + r"\s+(?=" + _EVENT + r")(?P<rest>.+)$", re.IGNORECASE)
_ORDER_INNER_RE = re.compile(r"[\s,]+" + _ORDER_WORD + r"\s+(?=" + _EVENT + r")", re.IGNORECASE)
_SUBJECT_START_RE = re.compile(r"\s+(?=(?:" + _SUBJECT_ONLY_RE.pattern + r")\s+[a-z])", re.IGNORECASE)


def _clean_clause(part: str) -> str:
    """A piece without the connector words, "first" and punctuation at its start and end."""
    part = part.strip(" ,;.!?")
    part = _LEAD_RE.sub("", part).strip(" ,;.!?")
    return part


def _order_clauses(part: str, depth: int = 0) -> list[str]:
    """``part`` as clauses in time order, at the "before" / "after" that order two events:
    ``X before Y`` / ``before Y, X`` -> ``[X, Y]``; ``X after Y`` / ``after Y, X`` -> ``[Y, X]``."""
    part = _clean_clause(part)
    if not part or depth > 4:
        return [part] if part else []
    lead = _ORDER_LEAD_RE.match(part)
    if lead:
        rest = lead.group("rest")
        event, sep, main = rest.partition(",")
        if not sep:  # "after turning around he walks": the main clause starts at its subject
            m = _SUBJECT_START_RE.search(rest)
            event, main = (rest[:m.start()], rest[m.end():]) if m else (rest, "")
        event, main = _clean_clause(event), _clean_clause(main)
        if event and main:
            ev, mn = _order_clauses(event, depth + 1), _order_clauses(main, depth + 1)
            return mn + ev if lead.group("word").lower() != "after" else ev + mn
        return [part]
    for m in _ORDER_INNER_RE.finditer(part):
        head, tail = _clean_clause(part[:m.start()]), part[m.start():].strip(" ,")
        if not head:
            continue
        # "X, after Y, Z": Y and Z follow X; "X after Y": Y comes first
        tail_lead = _ORDER_LEAD_RE.match(tail)
        if "," in tail and tail_lead and len(_order_clauses(tail, depth + 1)) > 1:
            return _order_clauses(head, depth + 1) + _order_clauses(tail, depth + 1)
        event = _clean_clause(part[m.end():])
        if not event:
            continue
        first, second = (event, head) if m.group("word").lower() == "after" else (head, event)
        return _order_clauses(first, depth + 1) + _order_clauses(second, depth + 1)
    return [part]


def _sentence_clauses(sentence: str) -> list[str]:
    """The clauses of one sentence (no "." / ";" inside), in time order."""
    pieces: list[str] = []
    reverse: list[bool] = []  # piece k goes before piece k - 1 ("but first", "before that")
    pos, rev = 0, False
    for m in _CONN_SPLIT_RE.finditer(sentence):
        pieces.append(sentence[pos:m.start()])
        reverse.append(rev)
        rev = m.group("rev") is not None
        pos = m.end()
    pieces.append(sentence[pos:])
    reverse.append(rev)
    pieces = [_clean_clause(p) for p in pieces]
    # a subject standing alone before its connector ("He then jumps", "and she finally waves")
    # belongs to the clause after it
    for k in range(len(pieces) - 1):
        if not pieces[k + 1]:
            continue
        if _SUBJECT_ONLY_RE.fullmatch(pieces[k]):
            pieces[k], pieces[k + 1] = "", f"{pieces[k]} {pieces[k + 1]}"
            continue
        m = _TRAILING_PRONOUN_RE.match(pieces[k])
        if m and _clean_clause(m.group("head")):
            pieces[k], pieces[k + 1] = _clean_clause(m.group("head")), f"{m.group('subj')} {pieces[k + 1]}"
    groups: list[list[str]] = []
    for piece, back in zip(pieces, reverse):
        clauses = _order_clauses(piece)
        if not clauses:
            continue
        if back and groups:
            groups.insert(len(groups) - 1, clauses)
        else:
            groups.append(clauses)
    return [c for g in groups for c in g]


def split_clauses(text: str) -> list[str]:
    """The clauses of a motion description in the order they happen, split at its sequencing
    connectors: ``"a man walks forward, then jumps twice."`` -> ``["a man walks forward",
    "jumps twice"]``.

    Users write their own sentences (composed decoding splits them, ``t2m_next`` writes each
    clause), so the connectors people write are understood, not only the corpus's templates:

    * **in order** -- "then" (", then", "and then", ", and then"), "after that" / "after this" /
      "after which" (also "right/shortly/soon ... after that"), "afterwards" / "afterward", "later"
      ("a moment later", "later on"), "subsequently", "finally" / "lastly" / "eventually" (with or
      without "and"), "after a while" / "after a moment", "followed by" (the next clause may be a noun phrase or gerund: "walks
      forward followed by a jump" -> ``[..., "a jump"]``), "once done" / "when finished",
      "next" (only starting a clause: after a comma, "and" or a sentence start; never "next to"),
      "; " and sentence breaks (". ", "! ", "? ");
    * **in reverse** -- "but first" and "before that" / "prior to that" put the next clause before
      the previous one ("a man jumps. Before that, he waves" -> ``["he waves", "a man jumps"]``);
    * **before / after** order the two events they join when what follows them is an event -- a
      gerund ("after turning"), a subject and verb ("before he leaves") or an action noun ("after a
      jump"): "X before Y" -> ``[X, Y]``, "X after Y" -> ``[Y, X]``, "before Y, X" -> ``[X, Y]``,
      "after Y, X" -> ``[Y, X]`` ("after Y X" without the comma splits where X's subject starts:
      "after turning around he walks"). Otherwise they are part of the clause ("runs after the
      dog", "stands before the mirror"). So "steps to the left after turning" ->
      ``["turning", "steps to the left"]``: the words say the turn comes first.

    Clauses keep their own words (no lemmatizing, no subject moved): connector words, a leading
    "first" ("First, X, then Y" -> ``[X, Y]``; "a person first walks" keeps it, as the templates
    write it) and commas at a clause's edges are dropped; a subject standing alone before its
    connector joins the next clause ("He then jumps" -> ``"He jumps"``, "A person then turns" ->
    ``["A person turns"]``). The subject stays in the first clause as written -- so after
    reordering ("a man jumps after walking") it is in the later clause. Case and extra spaces or
    commas do not matter. A trailing full stop is dropped and empty clauses removed; "and" alone
    never splits ("squats down and stands back up" is one action), nor does a connector with
    nothing after it ("jumps later", "a person walks then"). A text without connectors is one
    clause, and so is one of connector words only ("then").

    The corpus's template captions (``then`` connectors only) split exactly as before the wider
    connectors were added (tests/llm/test_clauses.py checks every template phrase), so the
    ``t2m_next`` records built from them do not change.
    """
    body = " ".join(str(text).split()).strip().rstrip(".").strip()
    clauses: list[str] = []
    for sentence in _SENTENCE_RE.split(body):
        clauses += _sentence_clauses(sentence.strip())
    clauses = [c for c in clauses if c]
    return clauses if clauses or not body.strip(" ,;.!?") else [body]  # connector words alone: as written


def format_next_input(clause: str, context: Sequence[int], fmt: MotionTokenFormat) -> str:
    """Input of ``t2m_next``: the clause, a newline and the wrapped context codes (an empty span
    for the first clause)::

        jumps twice
        <Motion Token><motion_id_5><motion_id_9></Motion Token>
    """
    clause = _check_caption(clause, "format_next_input")
    if hasattr(context, "tolist"):
        context = context.tolist()
    span = codes_to_text(list(context), fmt, wrap=True) if len(context) else f"{MOTION_START}{MOTION_END}"
    return f"{clause}\n{span}"


def parse_next_input(text: str, fmt: MotionTokenFormat) -> tuple[str, list[int]]:
    """Inverse of :func:`format_next_input`: ``(clause, context codes)``; strict (``ValueError``)."""
    if not isinstance(text, str):
        raise ValueError(f"t2m_next input: expected a string, got {type(text).__name__}")
    clause, sep, span = text.rpartition("\n")
    if not sep:
        raise ValueError(f"t2m_next input: expected 'clause\\n<motion span>', got {text[:60]!r}")
    clause = _check_caption(clause, "t2m_next input")
    if clause != text.rpartition("\n")[0]:
        raise ValueError("t2m_next input: whitespace around the clause")
    if span == f"{MOTION_START}{MOTION_END}":
        return clause, []
    return clause, _parse_span(span, fmt, "t2m_next input")


def _canonical_int(raw: str, what: str) -> int:
    value = int(raw)
    if raw != str(value):
        raise ValueError(f"{what}: non-canonical number {raw!r} (expected {str(value)!r})")
    return value


def format_keys_pos_input(
    caption: str, keys: Sequence[Sequence[int]], total_tokens: int, fmt: MotionTokenFormat
) -> str:
    """Input of ``t2m_keys_pos``: the caption, the output length and key tokens at positions.

    ``keys`` are ``(position, code)`` pairs with 0-based positions in the output span, strictly
    increasing and ``< total_tokens``. Example (vocab / digits)::

        a person walks forward.
        Length: 37 tokens. Key tokens: 0:<motion_id_315> 12:<motion_id_91> 36:<motion_id_406>

        a person walks forward.
        Length: 37 tokens. Key tokens: 0:315 12:91 36:406

    Raises ``ValueError`` for an empty / multi-line caption, no keys, positions out of order or
    out of range, or codes outside ``[0, nb_code)``.
    """
    caption = _check_caption(caption, "format_keys_pos_input")
    if isinstance(total_tokens, bool) or not isinstance(total_tokens, int) or total_tokens < 1:
        raise ValueError(f"format_keys_pos_input: total_tokens must be a positive integer, got {total_tokens!r}")
    if not keys:
        raise ValueError("format_keys_pos_input: at least one key token is needed")
    items = []
    last = -1
    for i, pair in enumerate(keys):
        if len(pair) != 2:
            raise ValueError(f"format_keys_pos_input: key {i} is not a (position, code) pair: {pair!r}")
        pos, code = int(pair[0]), int(pair[1])
        if not last < pos < total_tokens:
            raise ValueError(
                f"format_keys_pos_input: key {i} position {pos} must be > {last} (strictly increasing) "
                f"and < total_tokens {total_tokens}"
            )
        if not 0 <= code < fmt.nb_code:
            raise ValueError(f"format_keys_pos_input: key {i} code {code} out of range [0,{fmt.nb_code})")
        last = pos
        items.append(f"{pos}:{motion_token(code) if fmt.kind == 'vocab' else code}")
    return f"{caption}\nLength: {total_tokens} tokens. Key tokens: {' '.join(items)}"


def parse_keys_pos_input(text: str, fmt: MotionTokenFormat) -> tuple[str, list[tuple[int, int]], int]:
    """Inverse of :func:`format_keys_pos_input`: ``(caption, [(position, code), ...], total_tokens)``.

    Strict: anything :func:`format_keys_pos_input` would not write for these values raises
    ``ValueError`` naming the problem (missing line, bad item, positions not increasing or out of
    range, code out of range, extra whitespace, leading zeros).
    """
    if not isinstance(text, str):
        raise ValueError(f"keys_pos input: expected a string, got {type(text).__name__}")
    caption, sep, tail = text.rpartition("\n")
    if not sep:
        raise ValueError("keys_pos input: expected 'caption\\nLength: N tokens. Key tokens: ...' (no line break)")
    caption = _check_caption(caption, "keys_pos input")
    if caption != text.rpartition("\n")[0]:
        raise ValueError("keys_pos input: whitespace around the caption")
    m = _KEYS_POS_RE.fullmatch(tail)
    if not m:
        raise ValueError(f"keys_pos input: second line {tail[:60]!r} is not 'Length: N tokens. Key tokens: P:K ...'")
    total = _canonical_int(m.group(1), "keys_pos input length")
    if total < 1:
        raise ValueError("keys_pos input: length must be positive")
    body = m.group(2)
    if body == "":
        raise ValueError("keys_pos input: no key tokens")
    item_re = _KEY_ITEM_VOCAB_RE if fmt.kind == "vocab" else _KEY_ITEM_DIGITS_RE
    keys: list[tuple[int, int]] = []
    last = -1
    for i, item in enumerate(body.split(" ")):
        im = item_re.fullmatch(item)
        if not im:
            want = "P:<motion_id_K>" if fmt.kind == "vocab" else "P:K"
            raise ValueError(f"keys_pos input: key item {i} {item!r} is not {want} (items are separated by one space)")
        pos = _canonical_int(im.group(1), f"keys_pos input key {i} position")
        code = _canonical_int(im.group(2), f"keys_pos input key {i} code")
        if not last < pos < total:
            raise ValueError(
                f"keys_pos input: key {i} position {pos} must be > {last} (increasing) and < length {total}"
            )
        if not 0 <= code < fmt.nb_code:
            raise ValueError(f"keys_pos input: key {i} code {code} out of range [0,{fmt.nb_code})")
        keys.append((pos, code))
        last = pos
    return caption, keys, total


def format_pred_input(codes: Sequence[int], fmt: MotionTokenFormat, caption: str | None = None) -> str:
    """Input of ``pred``: the given first part, wrapped; ``caption\\n`` in front when given::

        <Motion Token><motion_id_5><motion_id_9></Motion Token>
    """
    if len(codes) < 1:
        raise ValueError("format_pred_input: the given part needs at least one code")
    span = codes_to_text(codes, fmt, wrap=True)
    return span if caption is None else f"{_check_caption(caption, 'format_pred_input')}\n{span}"


def parse_pred_input(text: str, fmt: MotionTokenFormat) -> tuple[str, list[int]]:
    """Inverse of :func:`format_pred_input`: ``(caption or "", codes)``; strict (``ValueError``)."""
    if not isinstance(text, str):
        raise ValueError(f"pred input: expected a string, got {type(text).__name__}")
    caption, sep, span = text.rpartition("\n")
    if sep:
        caption = _check_caption(caption, "pred input")
        if caption != text.rpartition("\n")[0]:
            raise ValueError("pred input: whitespace around the caption")
    codes = _parse_span(span, fmt, "pred input")
    return (caption if sep else ""), codes


def _parse_span(span: str, fmt: MotionTokenFormat, what: str) -> list[int]:
    if not (span.startswith(MOTION_START) and span.endswith(MOTION_END)):
        raise ValueError(f"{what}: expected a wrapped motion span, got {span[:60]!r}")
    try:
        codes = parse_codes_strict(span, fmt, allow_bare=False)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    if not codes:
        raise ValueError(f"{what}: empty motion span")
    return codes


def format_inbetween_input(
    start: Sequence[int], end: Sequence[int], fmt: MotionTokenFormat, caption: str | None = None
) -> str:
    """Input of ``inbetween``: the start and end parts on two labelled lines (caption line first
    when given)::

        Start: <Motion Token><motion_id_1><motion_id_2></Motion Token>
        End: <Motion Token><motion_id_7></Motion Token>
    """
    if len(start) < 1 or len(end) < 1:
        raise ValueError("format_inbetween_input: start and end need at least one code each")
    body = f"Start: {codes_to_text(start, fmt, wrap=True)}\nEnd: {codes_to_text(end, fmt, wrap=True)}"
    return body if caption is None else f"{_check_caption(caption, 'format_inbetween_input')}\n{body}"


def parse_inbetween_input(text: str, fmt: MotionTokenFormat) -> tuple[str, list[int], list[int]]:
    """Inverse of :func:`format_inbetween_input`: ``(caption or "", start codes, end codes)``;
    strict (``ValueError`` naming the problem)."""
    if not isinstance(text, str):
        raise ValueError(f"inbetween input: expected a string, got {type(text).__name__}")
    lines = text.split("\n")
    if len(lines) not in (2, 3):
        raise ValueError(
            f"inbetween input: expected 2 lines ('Start: ...', 'End: ...') or 3 with a caption first, got {len(lines)}"
        )
    caption = ""
    if len(lines) == 3:
        caption = _check_caption(lines[0], "inbetween input")
        if caption != lines[0]:
            raise ValueError("inbetween input: whitespace around the caption")
    s_line, e_line = lines[-2], lines[-1]
    if not s_line.startswith("Start: "):
        raise ValueError(f"inbetween input: line {len(lines) - 1} {s_line[:40]!r} does not start with 'Start: '")
    if not e_line.startswith("End: "):
        raise ValueError(f"inbetween input: line {len(lines)} {e_line[:40]!r} does not start with 'End: '")
    start = _parse_span(s_line[len("Start: "):], fmt, "inbetween input start")
    end = _parse_span(e_line[len("End: "):], fmt, "inbetween input end")
    return caption, start, end


def output_is_wrapped(fmt: MotionTokenFormat, wrap_output: bool | None = None) -> bool:
    """Whether motion outputs are wrapped: ``wrap_output``, or by default vocab yes / digits no."""
    return fmt.kind == "vocab" if wrap_output is None else bool(wrap_output)


def format_motion_output(codes: Sequence[int], fmt: MotionTokenFormat, wrap_output: bool | None = None) -> str:
    """A motion output (the response of every task but ``m2t``); see :func:`output_is_wrapped`."""
    return codes_to_text(codes, fmt, wrap=output_is_wrapped(fmt, wrap_output))


# --------------------------------------------------------------------------------------------
# instructions and randomness


def clip_rng(seed: int, motion_id: str, task: str) -> random.Random:
    """The generator of one motion's records for one task.

    Seeded from the string ``"{seed}|{motion_id}|{task}"`` (``random`` hashes a str seed with
    SHA-512, so this is stable across processes and Python runs, unlike ``hash()``).
    """
    return random.Random(f"{seed}|{motion_id}|{task}")


def choose_instruction(task: str, instructions: Mapping[str, Sequence[str]], rng: random.Random,
                       canonical_prob: float = 0.5) -> str:
    """The canonical instruction of ``task`` with probability ``canonical_prob``, else a uniformly
    drawn paraphrase (the canonical one when there are none)."""
    strings = instructions.get(task)
    if not strings:
        raise ValueError(f"no instruction strings for task {task!r}")
    # always draw once so that changing canonical_prob does not shift the rest of the stream
    u = rng.random()
    if u < canonical_prob or len(strings) == 1:
        return strings[0]
    return strings[1 + rng.randrange(len(strings) - 1)]


def task_of_instruction(instruction: str, instructions: Mapping[str, Sequence[str]]) -> str | None:
    """The task whose instruction strings include ``instruction`` (exact match), else None."""
    for task, strings in instructions.items():
        if instruction in strings:
            return task
    return None


# --------------------------------------------------------------------------------------------
# records


def _fraction_len(rng: random.Random, n: int, lo: float, hi: float, least: int, most: int) -> int:
    k = round(rng.uniform(lo, hi) * n)
    return max(least, min(most, k))


def _caption_order(rng: random.Random, captions: Sequence[str], count: int) -> list[str]:
    order = list(captions)
    rng.shuffle(order)
    if count == 0:
        return order
    return [order[i % len(order)] for i in range(count)]


def unconditional_record(record: Mapping[str, Any], instructions: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The unconditional copy of a ``t2m`` record, or of a ``t2m_next`` record without context: the
    same motion under the task's canonical instruction with an empty input (``caption`` "",
    ``uncond`` True).

    Generation builds the same prompt for the unconditional branch of classifier-free guidance, so
    the instruction is always the canonical one (never a paraphrase).
    """
    task = record.get("task")
    if task not in UNCOND_TASKS:
        raise ValueError(f"only {list(UNCOND_TASKS)} records have an unconditional copy, got task {task!r}")
    if task == "t2m_next" and record.get("context_len", 0):
        raise ValueError("a t2m_next record with context has no unconditional copy (its prompt is not shared)")
    strings = instructions.get(task)
    if not strings:
        raise ValueError(f"no instruction strings for task {task!r}")
    return {**record, "instruction": strings[0], "input": "", "caption": "", "uncond": True}


def _with_uncond(records: list[dict[str, Any]], task: str, item_id: str, cfg: "TaskConfig",
                 instructions: Mapping[str, Sequence[str]], seed: int) -> list[dict[str, Any]]:
    """``records`` with an unconditional copy after each with probability ``uncond_prob`` (when
    ``task`` is in ``uncond_tasks``; a ``t2m_next`` record only without context)."""
    if cfg.uncond_prob <= 0 or task not in cfg.uncond_tasks:
        return records
    # a stream of its own: turning the option on does not change the other records
    urng = random.Random(f"{seed}|{item_id}|{task}|uncond")
    out: list[dict[str, Any]] = []
    for rec in records:
        out.append(rec)
        if not rec.get("context_len", 0) and urng.random() < cfg.uncond_prob:
            out.append(unconditional_record(rec, instructions))
    return out


PARAPHRASE_TASKS: tuple[str, ...] = ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "t2m_next")
"""Tasks whose captions :attr:`TaskConfig.paraphrase_prob` rewords (the caption is the model's input)."""


def _paraphrased(item: MotionItem, captions: Sequence[str], task: str, cfg: TaskConfig, paraphraser: Any,
                 seed: int) -> list[str]:
    """``captions`` with each reworded with probability ``cfg.paraphrase_prob`` (a stream of its
    own: turning the option on does not change the other draws of the records)."""
    prng = random.Random(f"{seed}|{item.id}|{task}|paraphrase")
    tags = dict(zip(item.captions, item.caption_tags)) if item.caption_tags else {}
    out = []
    for caption in captions:
        if prng.random() < cfg.paraphrase_prob:
            caption = paraphraser.paraphrase(caption, prng, tags.get(caption) or None)
        out.append(caption)
    return out


def build_task_records(
    item: MotionItem,
    task: str,
    cfg: TaskConfig,
    fmt: MotionTokenFormat,
    instructions: Mapping[str, Sequence[str]],
    seed: int = 0,
    paraphraser: Any = None,
) -> list[dict[str, Any]]:
    """The records of one motion for one task (``[]`` when the motion has too few codes for it:
    see :data:`MIN_TOKENS`; callers count that). ``paraphraser``: a
    :class:`~motiongpt.data.paraphrase.CaptionParaphraser` used when ``cfg.paraphrase_prob`` > 0."""
    codes = list(item.codes)
    n = len(codes)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {list(TASKS)}")
    if n < MIN_TOKENS[task] or not item.captions:
        return []
    rng = clip_rng(seed, item.id, task)
    captions = _caption_order(rng, item.captions, cfg.records_per_clip)
    if paraphraser is not None and cfg.paraphrase_prob > 0 and task in PARAPHRASE_TASKS:
        captions = _paraphrased(item, captions, task, cfg, paraphraser, seed)
    if task == "t2m_next":
        return _with_uncond(_next_records(item, captions, cfg, fmt, instructions, rng), task, item.id, cfg,
                            instructions, seed)
    wrap = output_is_wrapped(fmt, cfg.wrap_output)
    full_output = codes_to_text(codes, fmt, wrap=wrap)
    out: list[dict[str, Any]] = []
    for caption in captions:
        rec: dict[str, Any] = {
            "instruction": choose_instruction(task, instructions, rng, cfg.canonical_prob),
            "input": "",
            "output": full_output,
            "task": task,
            "motion": item.id,
            "length": n * item.unit_length,
            "caption": caption,
        }
        if task == "t2m":
            rec["input"] = caption
        elif task in ("t2m_init", "t2m_last"):
            pos = 0 if task == "t2m_init" else n - 1
            rec["input"] = join_key_tokens(caption, [codes[pos]], fmt)
            rec["keys"] = [[pos, codes[pos]]]
        elif task == "t2m_keys":
            k = rng.randint(cfg.num_keys_min, max(cfg.num_keys_min, min(cfg.num_keys_max, n)))
            k = min(k, n)
            positions = sorted(rng.sample(range(n), k))
            rec["input"] = join_key_tokens(caption, [codes[p] for p in positions], fmt)
            rec["keys"] = [[p, codes[p]] for p in positions]
        elif task == "t2m_keys_pos":
            k = rng.randint(min(cfg.keys_pos_min, n), min(cfg.keys_pos_max, n))
            positions = sorted(rng.sample(range(n), k))
            keys = [[p, codes[p]] for p in positions]
            rec["input"] = format_keys_pos_input(caption, keys, n, fmt)
            rec["keys"] = keys
        elif task == "m2t":
            rec["input"] = codes_to_text(codes, fmt, wrap=True)
            rec["output"] = caption
            rec["references"] = list(item.captions)
        elif task == "pred":
            k = _fraction_len(rng, n, cfg.pred_min_frac, cfg.pred_max_frac, 2, n - 1)
            rec["input"] = format_pred_input(codes[:k], fmt, caption if cfg.caption_in_motion_tasks else None)
            rec["output"] = codes_to_text(codes[k:], fmt, wrap=wrap)
            rec["prefix_len"] = k
        elif task == "inbetween":
            a = _fraction_len(rng, n, cfg.inbetween_min_frac, cfg.inbetween_max_frac, 1, n - 2)
            b = _fraction_len(rng, n, cfg.inbetween_min_frac, cfg.inbetween_max_frac, 1, n - 1 - a)
            rec["input"] = format_inbetween_input(
                codes[:a], codes[n - b:], fmt, caption if cfg.caption_in_motion_tasks else None
            )
            rec["output"] = codes_to_text(codes[a:n - b], fmt, wrap=wrap)
            rec["start_len"] = a
            rec["end_len"] = b
        out.append(rec)
    return _with_uncond(out, task, item.id, cfg, instructions, seed)


def _next_records(item: MotionItem, captions: Sequence[str], cfg: TaskConfig, fmt: MotionTokenFormat,
                  instructions: Mapping[str, Sequence[str]], rng: random.Random) -> list[dict[str, Any]]:
    """``t2m_next`` records of one motion: for each caption that splits into one clause per
    annotated segment, one record per clause (see the module docstring)."""
    codes = list(item.codes)
    n = len(codes)
    starts = list(item.segment_starts)
    if not starts:
        return []
    bounds = [0] + starts + [n]
    if any(b >= e for b, e in zip(bounds[:-1], bounds[1:])):
        raise ValueError(f"{item.id}: segment starts {starts} are not increasing inside (0, {n})")
    wrap = output_is_wrapped(fmt, cfg.wrap_output)
    out: list[dict[str, Any]] = []
    for caption in captions:
        clauses = split_clauses(caption)
        if len(clauses) != len(bounds) - 1:
            continue  # a caption that does not state the segments one clause each ("A and B")
        for i, clause in enumerate(clauses):
            a, b = bounds[i], bounds[i + 1]
            context = codes[max(0, a - cfg.next_context_codes):a] if cfg.next_context_codes else []
            out.append({
                "instruction": choose_instruction("t2m_next", instructions, rng, cfg.canonical_prob),
                "input": format_next_input(clause, context, fmt),
                "output": codes_to_text(codes[a:b], fmt, wrap=wrap),
                "task": "t2m_next",
                "motion": item.id,
                "length": (b - a) * item.unit_length,
                "caption": caption,
                "clause": i,
                "context_len": len(context),
            })
    return out


def build_item_records(
    item: MotionItem,
    cfg: TaskConfig,
    fmt: MotionTokenFormat,
    instructions: Mapping[str, Sequence[str]],
    seed: int = 0,
    paraphraser: Any = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of one motion for every task of ``cfg.tasks`` (in that order), and the tasks skipped
    because the motion has fewer codes than :data:`MIN_TOKENS` asks."""
    records: list[dict[str, Any]] = []
    too_short: list[str] = []
    for task in cfg.tasks:
        if len(item.codes) < MIN_TOKENS[task]:
            too_short.append(task)
            continue
        records.extend(build_task_records(item, task, cfg, fmt, instructions, seed, paraphraser))
    return records, too_short


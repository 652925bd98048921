"""What to generate (:class:`GenerationRequest`), how to sample (:class:`SamplingConfig`), what came
out (:class:`GenerationResult`), and how a request becomes a prompt input plus decoding constraints
(:func:`plan_request`).

Lengths are in frames at 20 fps; one code covers 4 frames, so a requested length is rounded to the
4-frame grid (``(frames + 2) // 4`` codes, at least one) and then honoured exactly.

What a result's ``codes`` hold, per task (following how :mod:`motiongpt.llm.tasks` builds records,
where the model's output for ``pred`` is only the continuation and for ``inbetween`` only the
middle part):

=================  ====================================  ====================================
task               model output (``generated_codes``)     ``codes`` (decoded to ``joints``)
=================  ====================================  ====================================
``t2m*``           the motion                            the same
``pred``           the continuation                      given prefix + continuation
``t2m_next``       the clause's motion                   given context + the clause's motion
``inbetween``      the middle part                       start + middle + end
``m2t``            (text: ``text``)                      the described motion's codes
=================  ====================================  ====================================

A requested ``length_frames`` is the length of ``codes`` (the whole motion, given parts included).

Key tokens: ``t2m_init`` puts its one code first, ``t2m_last`` last, ``t2m_keys_pos`` at the given
positions. ``t2m_keys`` (codes in order, no positions): with a requested length of ``N`` codes the
``K`` keys go to the expected positions of ``K`` sorted uniform draws from ``range(N)`` (the way
training records pick them), ``floor((i + 1) (N + 1) / (K + 1) - 1 / 2)`` for key ``i``. Without a
length, the model first chooses it: a first pass decodes the same prompt under the span constraints
only (at least ``K`` codes), its length ``N`` is kept, and a second pass (same seed) places the keys
as above. (Letting the model place the keys anywhere in order, forcing them only when the room runs
out, was tried first: a model that does not emit the keys on its own then always runs to the
maximum length with the keys crammed at its end.) Without a length, ``t2m_last`` may stop only
right after its key code and gets it forced at the maximum length.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motiongpt.generate.spec import RowSpec
from motiongpt.llm.tasks import (
    format_inbetween_input,
    format_keys_pos_input,
    format_next_input,
    format_pred_input,
    parse_inbetween_input,
    parse_keys_pos_input,
    parse_pred_input,
)
from motiongpt.llm.templates import TASKS
from motiongpt.llm.tokens import (
    MOTION_END,
    MOTION_START,
    MotionTokenFormat,
    codes_to_text,
    extract_key_tokens,
    join_key_tokens,
    parse_codes_strict,
)

__all__ = [
    "UNIT_FRAMES",
    "DEFAULT_MAX_MOTION_TOKENS",
    "GUIDANCE_TASKS",
    "GenerationRequest",
    "SamplingConfig",
    "GenerationResult",
    "Plan",
    "frames_to_codes",
    "plan_request",
    "key_positions",
    "read_text_path",
    "check_name",
]

UNIT_FRAMES = 4
"""Frames per code (the VQ-VAE's temporal downsampling)."""
DEFAULT_MAX_MOTION_TOKENS = 49
"""Longest motion when the model chooses the length and the checkpoint does not say: HumanML3D's
196 frames / 4."""

GUIDANCE_TASKS = ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "t2m_next")
"""Tasks that classifier-free guidance (``SamplingConfig.guidance_scale``) applies to: motion
outputs conditioned on text. ``m2t`` writes text and ``pred`` / ``inbetween`` are conditioned on a
motion, whose unconditional prompt the models are not trained on. ``t2m_next`` only without
context and for a model whose clauses had unconditional copies
(``MotionGenerator.guided_clauses``)."""

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}", re.ASCII)
_KEY_TASKS = ("t2m_init", "t2m_last", "t2m_keys")


def frames_to_codes(frames: int, what: str = "length_frames") -> int:
    """Codes of a length in frames, rounded to the 4-frame grid (at least one code)."""
    if isinstance(frames, bool) or not isinstance(frames, int):
        raise ValueError(f"{what} must be an integer number of frames, got {frames!r}")
    if frames < 1:
        raise ValueError(f"{what} must be >= 1 frame, got {frames}")
    return max(1, (frames + UNIT_FRAMES // 2) // UNIT_FRAMES)


def check_name(name: str) -> str:
    """A sample name usable as a file name stem (letters, digits, ``_ . -``; not starting with ``.``)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"sample name {name!r} is not a safe file name (letters, digits, '_', '.', '-'; 1-120 chars)")
    return name


def _codes(values: Any, nb_code: int, what: str) -> list[int]:
    if values is None:
        return []
    if hasattr(values, "tolist"):
        values = values.tolist()
    out = []
    for i, c in enumerate(list(values)):
        k = _as_int(c)
        if k is None:
            raise ValueError(f"{what}: item {i} ({c!r}) is not an integer code")
        if not 0 <= k < nb_code:
            raise ValueError(f"{what}: code {k} at index {i} is out of range [0,{nb_code})")
        out.append(k)
    return out


def _as_int(value: Any) -> int | None:
    """``value`` as a Python int when it is an integer (numpy integers too, never bool / float)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


@dataclass
class GenerationRequest:
    """One thing to generate."""

    task: str = "t2m"
    """One of ``t2m t2m_init t2m_last t2m_keys t2m_keys_pos m2t pred inbetween t2m_next``."""
    caption: str = ""
    """Text of the motion (may be empty: ``t2m`` then uses the no-input prompt; required by
    ``t2m_keys_pos``; put in front of ``pred`` / ``inbetween`` inputs when non-empty)."""
    length_frames: int | None = None
    """Length of the whole resulting motion in frames; None lets the model choose. Rounded to the
    4-frame grid, then honoured exactly. ``t2m_keys_pos`` needs it (its prompt states the length)."""
    key_tokens: list[Any] = field(default_factory=list)
    """``t2m_keys_pos``: ``(position, code)`` pairs (positions in codes, increasing);
    ``t2m_init`` / ``t2m_last``: one code; ``t2m_keys``: codes in order."""
    motion_codes: list[int] = field(default_factory=list)
    """Codes of the input motion: the motion described by ``m2t``, the prefix continued by ``pred``,
    the start part of ``inbetween``, the context before the clause of ``t2m_next`` (may be empty)."""
    end_codes: list[int] = field(default_factory=list)
    """``inbetween``: codes of the end part."""
    max_length_frames: int | None = None
    """Longest whole resulting motion in frames when the model chooses the length (given parts
    included); None: ``max_motion_tokens`` codes. Composed decoding bounds each clause with it."""
    instruction: str | None = None
    """Instruction text; None: the canonical instruction of the task."""
    seed: int | None = None
    """Sampling seed of this request; None: ``SamplingConfig.seed`` + the request's index."""
    name: str | None = None
    """File name stem of the outputs; None: ``<index>_<task>``."""

    @classmethod
    def from_input(
        cls,
        task: str,
        input_text: str,
        fmt: MotionTokenFormat,
        *,
        length_frames: int | None = None,
        instruction: str | None = None,
        seed: int | None = None,
        name: str | None = None,
    ) -> "GenerationRequest":
        """A request from a MotionGPT-LoRA style input string.

        ``t2m``: the caption. ``t2m_init`` / ``t2m_last`` / ``t2m_keys``: the caption optionally
        followed by ``<Motion Token>315,91,406</Motion Token>`` (or ``<motion_id_315>...``): both
        spellings are accepted whatever ``fmt`` is. ``t2m_keys_pos``: ``caption\\nLength: N tokens.
        Key tokens: 0:315 12:91`` (sets the length when ``length_frames`` is None). ``m2t``: a motion
        span. ``pred``: ``[caption\\n]<Motion Token>prefix</Motion Token>``. ``inbetween``:
        ``[caption\\n]Start: <Motion Token>...</Motion Token>\\nEnd: <Motion Token>...</Motion Token>``.
        Raises ``ValueError`` naming the problem.
        """
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; known: {list(TASKS)}")
        if not isinstance(input_text, str):
            raise ValueError(f"input must be a string, got {type(input_text).__name__}")
        kw: dict[str, Any] = {"task": task, "length_frames": length_frames, "instruction": instruction,
                              "seed": seed, "name": name}
        if task == "t2m":
            if MOTION_START in input_text or MOTION_END in input_text:
                raise ValueError("task t2m takes a caption only, but the input holds a motion span; "
                                 "use t2m_init / t2m_last / t2m_keys for key tokens")
            return cls(caption=input_text.strip(), **kw)
        if task in _KEY_TASKS:
            caption, codes = _both_spellings(lambda f: extract_key_tokens(input_text, f, strict=True), fmt, input_text)
            return cls(caption=caption, key_tokens=list(codes), **kw)
        if task == "t2m_keys_pos":
            caption, keys, total = _both_spellings(lambda f: parse_keys_pos_input(input_text, f), fmt, input_text)
            n = total * UNIT_FRAMES
            if length_frames is not None and frames_to_codes(length_frames) != total:
                raise ValueError(f"length_frames {length_frames} disagrees with the input's 'Length: {total} tokens'")
            kw["length_frames"] = n
            return cls(caption=caption, key_tokens=[tuple(k) for k in keys], **kw)
        if task == "m2t":
            codes = _both_spellings(lambda f: parse_codes_strict(input_text.strip(), f, allow_bare=True), fmt,
                                    input_text)
            if not codes:
                raise ValueError("m2t input: empty motion span")
            return cls(motion_codes=codes, **kw)
        if task == "pred":
            caption, codes = _both_spellings(lambda f: parse_pred_input(input_text, f), fmt, input_text)
            return cls(caption=caption, motion_codes=codes, **kw)
        caption, start, end = _both_spellings(lambda f: parse_inbetween_input(input_text, f), fmt, input_text)
        return cls(caption=caption, motion_codes=start, end_codes=end, **kw)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (key token pairs as lists)."""
        d = dataclasses.asdict(self)
        d["key_tokens"] = [list(k) if isinstance(k, (tuple, list)) else k for k in self.key_tokens]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GenerationRequest":
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"GenerationRequest: unknown field(s) {unknown}; known: {sorted(known)}")
        d = dict(data)
        if d.get("task") == "t2m_keys_pos":
            d["key_tokens"] = [tuple(k) for k in d.get("key_tokens", [])]
        return cls(**d)


def _both_spellings(parse, fmt: MotionTokenFormat, text: str):
    """``parse(fmt)``, else ``parse`` with the other format kind (same codebook). When both fail, the
    error of the spelling ``text`` looks like (``<motion_id_K>`` or digits) is raised."""
    other = MotionTokenFormat("digits" if fmt.kind == "vocab" else "vocab", fmt.nb_code)
    errors = {}
    for f in (fmt, other):
        try:
            return parse(f)
        except ValueError as e:
            errors[f.kind] = e
    looks = "vocab" if "<motion_id_" in text else "digits"
    raise errors[looks] from None


@dataclass
class SamplingConfig:
    """How tokens are chosen."""

    temperature: float = 0.8
    """Softmax temperature; 0: greedy decoding (argmax)."""
    top_k: int = 50
    """Sample among the k most likely allowed tokens (0: no limit); ignored when greedy."""
    top_p: float = 1.0
    """Nucleus sampling: the smallest set of allowed tokens with this much probability (1: off)."""
    num_beams: int = 1
    """Beam search with this many beams (> 1 needs ``temperature=0``: beam search is deterministic)."""
    seed: int = 0
    """Seed of the requests that carry none: request ``i`` gets ``seed + i``."""
    max_motion_tokens: int | None = None
    """Most codes of a motion whose length the model chooses (whole motion, given parts included);
    None: the longest motion of the checkpoint's instruction data, else 49 (196 frames)."""
    max_text_tokens: int = 48
    """Most new tokens of an ``m2t`` caption, EOS included."""
    guidance_scale: float = 1.0
    """Classifier-free guidance scale ``s`` of motion outputs conditioned on text (tasks
    :data:`GUIDANCE_TASKS`): each token is chosen from the guided log-probabilities
    ``g = u + s * (c - u)``, ``c`` = log-softmax of the model's logits on the request's prompt,
    ``u`` = log-softmax of its logits on the unconditional prompt (the canonical t2m instruction
    with an empty input) followed by the same generated tokens (see
    :mod:`motiongpt.generate.guidance`). 1: off (nothing extra runs); > 1 follows the caption more
    closely; 0: unconditional. Needs a model trained with unconditional records (empty-input t2m
    duplicates); the recommended scale (``GUIDED_RECOMMENDED_SCALE``) is chosen on the embedded
    default's validation split. Not with beam search, nor with
    ``m2t`` / ``pred`` / ``inbetween`` requests."""
    candidates: int = 1
    """Samples drawn per request, of which the one the model itself scores highest is kept (1: off;
    :mod:`motiongpt.generate.rerank`). Candidate ``j`` samples with the request's seed +
    ``j * CANDIDATE_SEED_STRIDE``; the score is ``log p(x | prompt) - w * log p(x | unconditional
    prompt)`` over the output tokens ``x`` (EOS included), ``w`` = ``rerank_uncond_weight``. No
    evaluator or outside model takes part. Costs ``candidates`` times the generation: the score is
    recorded while decoding (a separate scoring pass only for ``rerank_uncond_weight`` > 0 without
    guidance). Needs sampling (``temperature > 0``): greedy candidates would all be the same."""
    rerank_uncond_weight: float = 0.25
    """``w`` of the candidates' score, in [0, 1]. 0: the output's likelihood under the prompt (prefers
    short, common motions); 1: its pointwise mutual information with the text (the model as its own
    text-motion matcher); > 0 needs the unconditional prompt guidance uses (text-to-motion requests
    of a model trained with unconditional records). 0.25 scored best on the embedded default's
    validation split (the sweep: ``docs/experiments/2026-12-05-benchmarks-history.md``, "Reranking")."""

    def validate(self) -> "SamplingConfig":
        """Raise ``ValueError`` naming the field for out-of-range values."""
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {self.temperature!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0: off), got {self.top_k!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.num_beams, bool) or not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"num_beams must be an integer >= 1, got {self.num_beams!r}")
        if self.num_beams > 1 and self.temperature > 0:
            raise ValueError(f"num_beams={self.num_beams} with temperature={self.temperature}: beam search is "
                             "deterministic; pass temperature 0 with beams, or num_beams 1 to sample")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.max_motion_tokens is not None and (isinstance(self.max_motion_tokens, bool)
                                                   or not isinstance(self.max_motion_tokens, int)
                                                   or self.max_motion_tokens < 1):
            raise ValueError(f"max_motion_tokens must be a positive integer or None, got {self.max_motion_tokens!r}")
        if isinstance(self.max_text_tokens, bool) or not isinstance(self.max_text_tokens, int) \
                or self.max_text_tokens < 2:
            raise ValueError(f"max_text_tokens must be an integer >= 2, got {self.max_text_tokens!r}")
        if isinstance(self.guidance_scale, bool) or not isinstance(self.guidance_scale, (int, float)) \
                or not math.isfinite(self.guidance_scale) or self.guidance_scale < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0 (1: off), got {self.guidance_scale!r}")
        if self.num_beams > 1 and self.guidance_scale != 1:
            raise ValueError(f"guidance_scale={self.guidance_scale} with num_beams={self.num_beams}: classifier-free "
                             "guidance is not supported with beam search; pass num_beams 1 or guidance_scale 1")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates must be an integer >= 1 (1: off), got {self.candidates!r}")
        if self.candidates > 1 and (self.temperature == 0 or self.num_beams > 1):
            raise ValueError(f"candidates={self.candidates} needs sampling (temperature > 0, num_beams 1): "
                             "deterministic decoding would draw the same candidate every time")
        if isinstance(self.rerank_uncond_weight, bool) or not isinstance(self.rerank_uncond_weight, (int, float)) \
                or not 0 <= self.rerank_uncond_weight <= 1:
            raise ValueError(f"rerank_uncond_weight must be a number in [0, 1], got {self.rerank_uncond_weight!r}")
        return self

    @property
    def reranked(self) -> bool:
        """Whether several candidates are drawn per request and one kept (``candidates > 1``)."""
        return self.candidates > 1

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance is on (``guidance_scale != 1``)."""
        return self.guidance_scale != 1

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationResult:
    """One generated sample."""

    request: GenerationRequest
    """The request, with ``seed``, ``name`` and ``instruction`` filled in (regenerates this sample)."""
    name: str
    """File name stem."""
    prompt: str
    """The full prompt text given to the model."""
    raw_text: str
    """What the model wrote (decoded, special tokens removed)."""
    codes: list[int] | None
    """Codes of the resulting motion (see the module docstring per task); None when nothing parsed."""
    text: str | None
    """``m2t``: the caption; else None."""
    joints: Any
    """``(T, 22, 3)`` float32 joint positions of ``codes`` (None without codes)."""
    features: Any
    """``(T, 263)`` float32 features decoded by the VQ-VAE (None without codes)."""
    length_frames: int | None
    """``4 * len(codes)`` (None without codes)."""
    seed: int
    """Seed the sample was drawn with."""
    problems: list[str] = field(default_factory=list)
    """What was not satisfied (empty when everything was); always empty with constraints."""
    generated_codes: list[int] | None = None
    """The codes the model wrote (``pred``: continuation; ``inbetween``: middle; ``m2t``: None)."""
    task: str = "t2m"
    """The request's task."""
    constrained: bool = True
    """Whether constrained decoding was on."""
    num_new_tokens: int = 0
    """Tokens the model generated (EOS included when it came)."""
    fix_foot: bool = False
    """Whether ``joints`` went through foot-skating cleanup (``features`` never do)."""
    candidate: int = 0
    """Which of ``SamplingConfig.candidates`` samples was kept (sampled with ``seed + candidate *
    CANDIDATE_SEED_STRIDE``); 0 without reranking."""
    rerank_score: float | None = None
    """The kept candidate's score (None without reranking)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def title(self) -> str:
        """A caption for renders: the generated caption (m2t), else the request's caption, else the task."""
        if self.text:
            return self.text
        return self.request.caption or self.task


@dataclass
class Plan:
    """A validated request: the prompt input and the constraints of its output."""

    index: int
    request: GenerationRequest
    instruction: str
    input_text: str
    spec: RowSpec
    prefix: list[int]
    suffix: list[int]
    choose_length: bool = False
    """``t2m_keys`` without a length: a first pass lets the model choose it (see the module docstring)."""
    name: str = ""
    """File name stem of the outputs (the request's, else ``<index>_<task>``)."""
    prompt: str = ""
    """The full prompt text (filled in by the generator, which knows the template)."""
    prompt_ids: list[int] = field(default_factory=list)
    """The prompt's token ids (filled in by the generator)."""

    def with_length(self, n: int) -> "Plan":
        """This ``t2m_keys`` plan with the length fixed to ``n`` codes (keys at their expected positions)."""
        keys = list(self.spec.ordered_keys)
        spec = RowSpec("motion", exact=n, targets=tuple(zip(key_positions(n, len(keys)), keys)))
        return dataclasses.replace(self, spec=spec, choose_length=False)

    def length_pass(self) -> "Plan":
        """The first pass of a ``t2m_keys`` plan without a length: span constraints only."""
        spec = RowSpec("motion", min_len=self.spec.min_len, max_len=self.spec.max_len)
        return dataclasses.replace(self, spec=spec, choose_length=False)


def key_positions(n: int, k: int) -> list[int]:
    """Expected positions of ``k`` sorted uniform draws without replacement from ``range(n)``."""
    return [math.floor((i + 1) * (n + 1) / (k + 1) - 0.5) for i in range(k)]


def _check_free_caption(caption: str, task: str) -> str:
    if not isinstance(caption, str):
        raise ValueError(f"{task}: caption must be a string, got {type(caption).__name__}")
    if MOTION_START in caption or MOTION_END in caption:
        raise ValueError(f"{task}: the caption must not contain {MOTION_START} / {MOTION_END} "
                         "(pass key tokens as key_tokens)")
    return caption.strip()


def plan_request(
    request: GenerationRequest,
    index: int,
    fmt: MotionTokenFormat,
    instructions: dict[str, list[str]],
    *,
    max_motion_tokens: int,
    max_text_tokens: int,
) -> Plan:
    """Validate ``request`` and build its prompt input and :class:`RowSpec` (``ValueError`` naming
    the problem)."""
    if not isinstance(request, GenerationRequest):
        raise ValueError(f"expected a GenerationRequest, got {type(request).__name__}")
    task = request.task
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {list(TASKS)}")
    nb = fmt.nb_code
    instruction = request.instruction if request.instruction is not None else instructions[task][0]
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
    if request.name is not None:
        check_name(request.name)
    if request.seed is not None and (isinstance(request.seed, bool) or not isinstance(request.seed, int)
                                     or request.seed < 0):
        raise ValueError(f"seed must be an integer >= 0 or None, got {request.seed!r}")
    n = None if request.length_frames is None else frames_to_codes(request.length_frames)
    if request.max_length_frames is not None:
        if n is not None:
            raise ValueError("give length_frames or max_length_frames, not both")
        max_motion_tokens = min(max_motion_tokens, frames_to_codes(request.max_length_frames, "max_length_frames"))
    caption = request.caption if request.caption is not None else ""
    motion = _codes(request.motion_codes, nb, "motion_codes")
    end = _codes(request.end_codes, nb, "end_codes")
    raw_keys = request.key_tokens.tolist() if hasattr(request.key_tokens, "tolist") else list(request.key_tokens or [])
    prefix: list[int] = []
    suffix: list[int] = []
    choose = False
    keys: list[int] = []
    pairs: list[tuple[int, int]] = []

    if task in ("m2t", "pred", "inbetween"):
        if not motion:
            raise ValueError(f"{task} needs motion_codes (the input motion)")
        if raw_keys:
            raise ValueError(f"{task} takes no key_tokens")
    elif task == "t2m_next":
        if raw_keys:
            raise ValueError("t2m_next takes no key_tokens")
    elif motion or end:
        raise ValueError(f"{task} takes no motion_codes / end_codes")
    if task != "inbetween" and end:
        raise ValueError(f"{task} takes no end_codes")

    def motion_spec(given: int, **kw: Any) -> RowSpec:
        """Spec of a generated part when ``given`` codes of the whole motion are fixed already."""
        if n is not None:
            gen = n - given
            if gen < 1:
                raise ValueError(f"{task}: length {n} codes ({n * UNIT_FRAMES} frames) leaves no room to generate "
                                 f"after the {given} given code(s)")
            return RowSpec("motion", exact=gen, **kw)
        hi = max(1, max_motion_tokens - given)
        lo = min(kw.pop("min_len", 1), hi)
        return RowSpec("motion", min_len=lo, max_len=hi, **kw)

    if task == "t2m":
        if raw_keys:
            raise ValueError("t2m takes no key_tokens (use t2m_init / t2m_last / t2m_keys / t2m_keys_pos)")
        text = _check_free_caption(caption, task)
        spec = motion_spec(0)
    elif task in _KEY_TASKS:
        text = _check_free_caption(caption, task)
        keys = _codes(raw_keys, nb, f"{task} key_tokens") if all(
            not isinstance(k, (tuple, list)) for k in raw_keys) else None
        if keys is None:
            raise ValueError(f"{task}: key_tokens must be a list of codes (positions only for t2m_keys_pos)")
        if task in ("t2m_init", "t2m_last") and len(keys) != 1:
            raise ValueError(f"{task} needs exactly one key token, got {len(keys)}")
        if task == "t2m_keys" and not keys:
            raise ValueError("t2m_keys needs at least one key token")
        text = join_key_tokens(text, keys, fmt)
        if task == "t2m_init":
            spec = motion_spec(0, targets=((0, keys[0]),), min_len=2)
        elif task == "t2m_last":
            if n is not None:
                spec = motion_spec(0, targets=((n - 1, keys[0]),))
            else:
                hi = max_motion_tokens
                spec = RowSpec("motion", min_len=min(2, hi), max_len=hi, targets=((hi - 1, keys[0]),),
                               end_code=keys[0])
        else:
            if n is not None:
                if len(keys) > n:
                    raise ValueError(f"t2m_keys: {len(keys)} key tokens do not fit in {n} codes")
                spec = motion_spec(0, targets=tuple(zip(key_positions(n, len(keys)), keys)))
            else:
                if len(keys) > max_motion_tokens:
                    raise ValueError(f"t2m_keys: {len(keys)} key tokens exceed max_motion_tokens {max_motion_tokens}")
                # ordered_keys: what the result must hold; constrained decoding runs length_pass()
                # then with_length() (see the module docstring)
                spec = motion_spec(0, ordered_keys=tuple(keys), min_len=len(keys))
                choose = True
    elif task == "t2m_keys_pos":
        if n is None:
            raise ValueError("t2m_keys_pos needs length_frames (its prompt states the length)")
        pairs = []
        for i, item in enumerate(raw_keys):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"t2m_keys_pos: key {i} ({item!r}) is not a (position, code) pair")
            pos, code = _as_int(item[0]), item[1]
            if pos is None:
                raise ValueError(f"t2m_keys_pos: key {i} position {item[0]!r} is not an integer")
            pairs.append((pos, _codes([code], nb, f"t2m_keys_pos key {i}")[0]))
        text = format_keys_pos_input(_check_free_caption(caption, task), pairs, n, fmt)
        spec = motion_spec(0, targets=tuple(pairs))
    elif task == "m2t":
        if request.length_frames is not None:
            raise ValueError("m2t writes a caption: length_frames does not apply")
        text = codes_to_text(motion, fmt, wrap=True)
        spec = RowSpec("text", text_budget=max_text_tokens)
        prefix = motion
    elif task == "pred":
        cap = _check_free_caption(caption, task)
        text = format_pred_input(motion, fmt, cap or None)
        spec = motion_spec(len(motion))
        prefix = motion
    elif task == "t2m_next":
        cap = _check_free_caption(caption, task)
        if not cap:
            raise ValueError("t2m_next needs a caption (the action to add)")
        text = format_next_input(cap, motion, fmt)
        spec = motion_spec(len(motion))
        prefix = motion
    else:  # inbetween
        if not end:
            raise ValueError("inbetween needs end_codes (the end part)")
        cap = _check_free_caption(caption, task)
        text = format_inbetween_input(motion, end, fmt, cap or None)
        spec = motion_spec(len(motion) + len(end))
        prefix, suffix = motion, end
    spec.validate(nb)
    # the request as recorded with the result: plain Python values (JSON-ready, numpy arrays converted)
    norm_keys: list[Any] = pairs if task == "t2m_keys_pos" else (keys if task in _KEY_TASKS else [])
    request = dataclasses.replace(request, caption=caption, key_tokens=list(norm_keys), motion_codes=motion,
                                  end_codes=end)
    return Plan(index=index, request=request, instruction=instruction, input_text=text, spec=spec,
                prefix=prefix, suffix=suffix, choose_length=choose, name=request.name or f"{index:03d}_{task}")


def read_text_path(path: str | os.PathLike) -> list[tuple[str, int | None]]:
    """Read a LaMP / MotionGPT text file: one ``<caption>#<frames>`` per line.

    ``#NA`` (any case) lets the model choose the length; as LaMP does, when any line says NA the
    lengths of all lines are dropped (None). A line without ``#`` means NA too. Blank lines are
    skipped. Returns ``[(caption, frames or None), ...]``; ``ValueError`` names the file and line of
    a bad length or an empty caption.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e
    out: list[tuple[str, int | None]] = []
    any_na = False
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        caption, sep, tail = line.rpartition("#")
        if not sep:
            caption, tail = line, "NA"
        caption, tail = caption.strip(), tail.strip()
        if not caption:
            raise ValueError(f"{path}:{lineno}: empty caption in {line!r}")
        if tail.upper() == "NA":
            any_na = True
            out.append((caption, None))
            continue
        if not tail.isdigit() or int(tail) < 1:
            raise ValueError(f"{path}:{lineno}: length {tail!r} is not a positive number of frames or NA")
        out.append((caption, int(tail)))
    if not out:
        raise ValueError(f"{path}: no captions")
    if any_na:
        out = [(c, None) for c, _ in out]
    return out

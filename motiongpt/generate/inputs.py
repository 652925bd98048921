"""Command-line style inputs -> :class:`~motiongpt.generate.request.GenerationRequest` lists.

:func:`build_requests` is what ``generate_motion.py`` calls: captions from ``--input`` or
``--text_path``, key tokens from ``--keys`` or from frames of a reference motion
(``--key_frames``), the input motion of ``m2t`` / ``pred`` / ``inbetween`` from ``--motion``,
``--repeat_times`` copies with their own seeds.

Parts of ``--motion`` (``codes`` = its VQ codes, one per 4 frames):

* ``m2t``: the whole motion is described.
* ``pred``: the first ``context_frames`` frames are the prefix to continue (default: the whole motion).
* ``inbetween``: the first and the last ``context_frames`` frames are the start and the end parts
  (default: a quarter of the motion each, the middle of the 15-35 % range training records use);
  what lies between them in the file is dropped and generated anew.
* key-token tasks with ``key_frames``: the codes at those frames (frame ``f`` -> code ``f // 4``)
  are the key tokens; ``t2m_keys_pos`` also takes their positions, and the motion's length as the
  output length unless ``length_frames`` is given.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from motiongpt.generate.request import UNIT_FRAMES, GenerationRequest, frames_to_codes
from motiongpt.llm.templates import TASKS
from motiongpt.llm.tokens import MotionTokenFormat

__all__ = ["parse_keys", "parse_frames", "build_requests"]

_KEYS_TASKS = ("t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos")
_MOTION_TASKS = ("m2t", "pred", "inbetween")


def parse_keys(text: str, task: str) -> list[Any]:
    """``--keys``: ``"315,91,406"`` (codes) or, for ``t2m_keys_pos``, ``"0:315,12:91"`` (position:code)."""
    items = [s.strip() for s in re.split(r"[,\s]+", text.strip()) if s.strip()]
    if not items:
        raise ValueError("--keys: no key tokens given")
    if task == "t2m_keys_pos":
        out = []
        for item in items:
            m = re.fullmatch(r"([0-9]+):([0-9]+)", item)
            if not m:
                raise ValueError(f"--keys: {item!r} is not position:code (t2m_keys_pos takes e.g. 0:315,12:91)")
            out.append((int(m.group(1)), int(m.group(2))))
        return out
    if not all(i.isdigit() for i in items):
        raise ValueError(f"--keys: expected comma-separated codes such as 315,91,406, got {text!r}")
    return [int(i) for i in items]


def parse_frames(text: str, what: str = "--key_frames") -> list[int]:
    """``"0,40,80"`` -> ``[0, 40, 80]`` (non-negative integers)."""
    items = [s.strip() for s in re.split(r"[,\s]+", text.strip()) if s.strip()]
    if not items or not all(i.isdigit() for i in items):
        raise ValueError(f"{what}: expected comma-separated frame numbers such as 0,40,80, got {text!r}")
    return [int(i) for i in items]


def _motion_parts(task: str, codes: list[int], context_frames: int | None) -> dict[str, list[int]]:
    n = len(codes)
    if task == "m2t":
        return {"motion_codes": codes}
    if task == "pred":
        k = n if context_frames is None else min(n, frames_to_codes(context_frames, "--context_frames"))
        return {"motion_codes": codes[:k]}
    a = max(1, n // 4) if context_frames is None else frames_to_codes(context_frames, "--context_frames")
    if 2 * a > n:
        raise ValueError(f"--context_frames: start and end parts of {a} codes each do not fit in the motion's "
                         f"{n} codes ({n * UNIT_FRAMES} frames)")
    return {"motion_codes": codes[:a], "end_codes": codes[n - a:]}


def build_requests(
    task: str,
    fmt: MotionTokenFormat,
    *,
    inputs: Sequence[tuple[str, int | None]] = (),
    input_text: str | None = None,
    length_frames: int | None = None,
    motion_codes: list[int] | None = None,
    keys: str | None = None,
    key_frames: str | None = None,
    context_frames: int | None = None,
    instruction: str | None = None,
    repeat_times: int = 1,
    seed: int = 0,
) -> list[GenerationRequest]:
    """Requests of one ``generate_motion.py`` call (``ValueError`` naming the option at fault).

    ``input_text`` (``--input``): one MotionGPT-LoRA style input, parsed by
    :meth:`GenerationRequest.from_input` (a literal ``\\n`` stands for a line break in the
    multi-line inputs of ``t2m_keys_pos`` / ``pred`` / ``inbetween``). ``inputs``
    (``--text_path``): ``(caption, frames or None)`` per line. Neither: one request with an empty
    caption (motion tasks from ``motion_codes``, or ``t2m`` with the no-input prompt).
    ``motion_codes``: the codes of ``--motion``. Request ``i``'s copy ``r`` gets seed
    ``seed + i * repeat_times + r`` and name ``<i>`` (``<i>_<r>`` when repeating).
    """
    if task not in TASKS:
        raise ValueError(f"--task: unknown task {task!r}; known: {list(TASKS)}")
    if isinstance(repeat_times, bool) or not isinstance(repeat_times, int) or repeat_times < 1:
        raise ValueError(f"--repeat_times must be a positive integer, got {repeat_times!r}")
    if input_text is not None and inputs:
        raise ValueError("give --input or --text_path, not both")
    if keys is not None and key_frames is not None:
        raise ValueError("give --keys or --key_frames, not both")
    if (keys is not None or key_frames is not None) and task not in _KEYS_TASKS:
        raise ValueError(f"--keys / --key_frames apply to {', '.join(_KEYS_TASKS)}, not {task}")
    if key_frames is not None and motion_codes is None:
        raise ValueError("--key_frames needs --motion (the motion whose frames give the key tokens)")
    if task in _MOTION_TASKS and motion_codes is None and input_text is None:
        raise ValueError(f"task {task} needs --motion (or its motion span in --input)")

    base: list[GenerationRequest] = []
    if input_text is not None:
        text = input_text
        if task in ("t2m_keys_pos", "pred", "inbetween") and "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        if task == "t2m_keys_pos" and "Key tokens:" not in text:
            # a plain caption; the keys come from --keys / --key_frames
            base.append(GenerationRequest(task=task, caption=text.strip(), length_frames=length_frames))
        else:
            base.append(GenerationRequest.from_input(task, text, fmt, length_frames=length_frames))
    elif inputs:
        for caption, frames in inputs:
            base.append(GenerationRequest(task=task, caption=caption,
                                          length_frames=frames if frames is not None else length_frames))
    else:
        base.append(GenerationRequest(task=task, length_frames=length_frames))

    for req in base:
        if instruction is not None:
            req.instruction = instruction
        if motion_codes is not None and task in _MOTION_TASKS:
            if req.motion_codes and input_text is not None:
                raise ValueError(f"{task}: the motion comes from --motion or from --input, not both")
            for field_name, value in _motion_parts(task, list(motion_codes), context_frames).items():
                setattr(req, field_name, value)
        if keys is not None or key_frames is not None:
            if req.key_tokens:
                raise ValueError("key tokens come from --input or from --keys / --key_frames, not both")
            if keys is not None:
                req.key_tokens = parse_keys(keys, task)
            else:
                assert motion_codes is not None
                frames = parse_frames(key_frames or "")
                positions = [f // UNIT_FRAMES for f in frames]
                bad = [f for f, p in zip(frames, positions) if p >= len(motion_codes)]
                if bad:
                    raise ValueError(f"--key_frames {bad} lie beyond the motion's "
                                     f"{len(motion_codes) * UNIT_FRAMES} frames")
                if len(set(positions)) != len(positions) or positions != sorted(positions):
                    raise ValueError(f"--key_frames must fall in increasing, distinct 4-frame steps, got {frames}")
                if task == "t2m_keys_pos":
                    req.key_tokens = [(p, motion_codes[p]) for p in positions]
                    if req.length_frames is None:
                        req.length_frames = len(motion_codes) * UNIT_FRAMES
                else:
                    req.key_tokens = [motion_codes[p] for p in positions]

    out: list[GenerationRequest] = []
    for i, req in enumerate(base):
        for r in range(repeat_times):
            d = req.to_dict()
            d["seed"] = seed + i * repeat_times + r
            d["name"] = f"{i:03d}" if repeat_times == 1 else f"{i:03d}_{r:02d}"
            out.append(GenerationRequest.from_dict(d))
    return out


def add_rerank_arguments(parser: Any, unit: str = "request") -> None:
    """The reranking options of ``generate_motion.py`` and ``eval.py`` (``--candidates``,
    ``--rerank_uncond_weight``), with :class:`~motiongpt.generate.request.SamplingConfig`'s defaults."""
    from motiongpt.generate.request import SamplingConfig

    parser.add_argument("--candidates", type=int, default=SamplingConfig.candidates,
                        help=f"sample this many per {unit} (per clause with --compose) and keep the one the model "
                             "itself scores highest: log p(x | prompt) - w * log p(x | unconditional prompt) "
                             "(1: off; needs --temperature > 0)")
    parser.add_argument("--rerank_uncond_weight", type=float, default=SamplingConfig.rerank_uncond_weight,
                        help="w of --candidates' score (0: the likelihood; 1: mutual information with the text; > 0 "
                             f"only for text-to-motion tasks; default {SamplingConfig.rerank_uncond_weight})")

"""Validation of what a user types or uploads into the web UI, before any model work.

Every check raises :class:`UserInputError` with a message meant for the page: it names the field
and the bound, e.g. ``"Caption is too long: 412 characters (the limit is 300)."``. Nothing here
imports gradio or torch, so these functions are unit-tested directly.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motiongpt.app.config import Limits

__all__ = [
    "UserInputError",
    "MOTION_SUFFIXES",
    "SamplingInputs",
    "MAX_GUIDANCE_SCALE",
    "check_caption",
    "check_length",
    "parse_key_tokens",
    "format_key_tokens",
    "parse_frames",
    "check_upload",
    "motion_frame_count",
    "check_sampling",
    "split_frames",
]

MOTION_SUFFIXES = (".npy", ".bvh")
"""Uploads the UI accepts: joints ``(T, 22, 3)`` / features ``(T, 263)`` as ``.npy``, or a BVH file."""

# "<motion_id_12>" or a bare integer, as a code in a key-token spec
_CODE_RE = re.compile(r"^(?:<motion_id_(\d+)>|(\d+))$")
_ITEM_SPLIT_RE = re.compile(r"[,;\s]+")


class UserInputError(ValueError):
    """A request the page refuses, with a message for the user (no stack trace is shown)."""


def check_caption(text: str | None, limits: Limits, *, required: bool = True, what: str = "Caption") -> str:
    """The stripped caption; refuses an empty one (when ``required``), one over the length bound,
    and control characters other than newlines/tabs (they would end up inside the prompt)."""
    text = (text or "").strip()
    if not text:
        if required:
            raise UserInputError(f"{what} is empty: describe the motion, e.g. 'a person walks forward and waves'.")
        return ""
    if len(text) > limits.max_caption_chars:
        raise UserInputError(
            f"{what} is too long: {len(text)} characters (the limit is {limits.max_caption_chars})."
        )
    bad = sorted({c for c in text if ord(c) < 32 and c not in "\n\t"})
    if bad:
        raise UserInputError(f"{what} contains control characters {[hex(ord(c)) for c in bad]}; remove them.")
    return text


def check_length(frames: float | int | None, limits: Limits, downsample: int) -> int | None:
    """Requested motion length in frames: ``None`` for 0 / empty (the model decides), else an
    integer in ``[downsample, max_frames]``, rounded down to whole tokens (``downsample`` frames each)."""
    if frames is None or (isinstance(frames, str) and not frames.strip()):
        return None
    try:
        value = float(frames)
    except (TypeError, ValueError):
        raise UserInputError(f"Length must be a number of frames, got {frames!r}.") from None
    if not math.isfinite(value) or value != int(value):
        raise UserInputError(f"Length must be a whole number of frames, got {frames!r}.")
    value = int(value)
    if value == 0:
        return None
    if not downsample <= value <= limits.max_frames:
        raise UserInputError(
            f"Length must be 0 (let the model decide) or {downsample}..{limits.max_frames} frames, got {value}."
        )
    return value - value % downsample


def parse_key_tokens(spec: str | None, *, nb_code: int, limits: Limits, max_tokens: int) -> list[tuple[int, int]]:
    """Parse ``"position:code"`` pairs (``"0:12, 9:<motion_id_200>"``) into sorted ``(position, code)``.

    ``position`` counts tokens from 0 and must be below ``max_tokens`` (the requested length in
    tokens, or the longest allowed motion); ``code`` is a codebook index in ``[0, nb_code)``,
    written bare or as ``<motion_id_K>``. Positions must be distinct; at most
    ``limits.max_key_tokens`` pairs.
    """
    items = [s for s in _ITEM_SPLIT_RE.split((spec or "").strip()) if s]
    if not items:
        return []
    if len(items) > limits.max_key_tokens:
        raise UserInputError(f"Too many key tokens: {len(items)} (the limit is {limits.max_key_tokens}).")
    out: dict[int, int] = {}
    for item in items:
        pos_text, sep, code_text = item.partition(":")
        if not sep or not pos_text.isdigit():
            raise UserInputError(
                f"Key token {item!r} is not 'position:code' (e.g. '0:12' or '8:<motion_id_40>')."
            )
        m = _CODE_RE.match(code_text)
        if not m:
            raise UserInputError(f"Key token {item!r}: the code must be an integer or <motion_id_K>.")
        pos, code = int(pos_text), int(m.group(1) or m.group(2))
        if not 0 <= code < nb_code:
            raise UserInputError(f"Key token {item!r}: code {code} is outside the codebook [0, {nb_code}).")
        if pos >= max_tokens:
            raise UserInputError(
                f"Key token {item!r}: position {pos} is past the motion's end (positions 0..{max_tokens - 1})."
            )
        if pos in out:
            raise UserInputError(f"Key token position {pos} is given twice.")
        out[pos] = code
    return sorted(out.items())


def format_key_tokens(pairs: list[tuple[int, int]]) -> str:
    """The inverse of :func:`parse_key_tokens`: ``"0:12, 9:200"``."""
    return ", ".join(f"{p}:{c}" for p, c in pairs)


def parse_frames(spec: str | None, n_frames: int, limits: Limits) -> list[int]:
    """Frame indices (``"0, 40, 80"``) of an uploaded motion of ``n_frames`` frames, sorted, distinct."""
    items = [s for s in _ITEM_SPLIT_RE.split((spec or "").strip()) if s]
    if not items:
        raise UserInputError("Key frames are empty: list frame numbers of the uploaded motion, e.g. '0, 40, 80'.")
    if len(items) > limits.max_key_tokens:
        raise UserInputError(f"Too many key frames: {len(items)} (the limit is {limits.max_key_tokens}).")
    frames = []
    for item in items:
        if not item.isdigit():
            raise UserInputError(f"Key frame {item!r} is not a frame number (0, 1, 2, ...).")
        f = int(item)
        if f >= n_frames:
            raise UserInputError(f"Key frame {f} is past the uploaded motion's end (frames 0..{n_frames - 1}).")
        frames.append(f)
    return sorted(set(frames))


def check_upload(path: str | os.PathLike | None, limits: Limits, what: str = "Motion file") -> Path:
    """The uploaded file's path, after checking it exists, has a motion suffix and fits the size bound."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise UserInputError(f"{what}: upload a motion first (.npy joints (T, 22, 3) / features (T, 263), or .bvh).")
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"{what}: the upload {p.name!r} is gone; upload it again.")
    if p.suffix.lower() not in MOTION_SUFFIXES:
        raise UserInputError(
            f"{what} {p.name!r}: unsupported type {p.suffix or '(none)'!r}; upload .npy (joints (T, 22, 3) "
            "or features (T, 263)) or .bvh."
        )
    size_mb = p.stat().st_size / 2**20
    if size_mb > limits.max_upload_mb:
        raise UserInputError(f"{what} {p.name!r} is {size_mb:.1f} MiB (the limit is {limits.max_upload_mb:g} MiB).")
    return p


def motion_frame_count(path: Path, limits: Limits, what: str = "Motion file") -> int:
    """Frames of an uploaded ``.npy`` (its first axis, read from the header only) or ``.bvh``
    (its ``Frames:`` line); refuses empty motions and ones over ``limits.max_upload_frames``."""
    name = path.name
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UserInputError(f"{what} {name!r} is not a readable .npy array ({e}).") from None
        if arr.ndim not in (2, 3):
            raise UserInputError(
                f"{what} {name!r} has shape {tuple(arr.shape)}; expected joints (T, 22, 3) or features (T, 263)."
            )
        frames = int(arr.shape[0])
    else:
        frames = -1
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                head = f.readline()
                if not head.strip().upper().startswith("HIERARCHY"):
                    raise UserInputError(f"{what} {name!r} is not a BVH file (it does not start with HIERARCHY).")
                for line in f:
                    stripped = line.strip()
                    if stripped.startswith("Frames:"):
                        value = stripped.split(":", 1)[1].strip()
                        if not value.isdigit():
                            raise UserInputError(f"{what} {name!r}: bad 'Frames:' line {stripped!r}.")
                        frames = int(value)
                        break
        except UnicodeError as e:  # pragma: no cover - errors="replace" makes this unreachable in practice
            raise UserInputError(f"{what} {name!r} is not a text BVH file ({e}).") from None
        if frames < 0:
            raise UserInputError(f"{what} {name!r} has no MOTION section with a 'Frames:' line.")
    if frames < 1:
        raise UserInputError(f"{what} {name!r} holds no frames.")
    if frames > limits.max_upload_frames:
        raise UserInputError(
            f"{what} {name!r} has {frames} frames (the limit is {limits.max_upload_frames}, "
            f"{limits.max_upload_frames / 20:g} s at 20 fps)."
        )
    return frames


@dataclass(frozen=True)
class SamplingInputs:
    """Sampling settings as validated from the page."""

    temperature: float
    """Softmax temperature; 0 means greedy decoding."""
    top_k: int | None
    """Keep the k most likely tokens (None: no top-k filter)."""
    top_p: float | None
    """Nucleus sampling mass (None: no top-p filter)."""
    seed: int | None
    """Random seed; None: a fresh one per request."""
    guidance_scale: float = 1.0
    """Classifier-free guidance scale of text-to-motion requests (1: off); the other tasks ignore it."""


def _number(value: object, name: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(out):
        raise UserInputError(f"{name} must be a finite number, got {value!r}.")
    return out


MAX_GUIDANCE_SCALE = 5.0
"""Largest classifier-free guidance scale the page accepts (its slider's end)."""


def check_sampling(temperature: object, top_k: object, top_p: object, seed: object,
                   guidance_scale: object = 1.0) -> SamplingInputs:
    """Validate the sampling controls: temperature in [0, 5], top-k >= 0 (0 = off), top-p in (0, 1]
    (1 = off), seed a non-negative integer or -1 / empty (random), guidance scale in
    [0, :data:`MAX_GUIDANCE_SCALE`] (1 = off; empty = off)."""
    t = _number(temperature, "Temperature")
    if not 0.0 <= t <= 5.0:
        raise UserInputError(f"Temperature must be in 0..5 (0 = greedy), got {t:g}.")
    k = _number(top_k if top_k not in (None, "") else 0, "Top-k")
    if k < 0 or k != int(k):
        raise UserInputError(f"Top-k must be a whole number >= 0 (0 = off), got {top_k!r}.")
    p = _number(top_p if top_p not in (None, "") else 1.0, "Top-p")
    if not 0.0 < p <= 1.0:
        raise UserInputError(f"Top-p must be in (0, 1] (1 = off), got {p:g}.")
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        s: int | None = None
    else:
        sv = _number(seed, "Seed")
        if sv != int(sv) or sv < -1 or sv >= 2**63:
            raise UserInputError(f"Seed must be a whole number >= 0, or -1 for a random one; got {seed!r}.")
        s = None if sv == -1 else int(sv)
    g = _number(guidance_scale if guidance_scale not in (None, "") else 1.0, "Guidance scale")
    if not 0.0 <= g <= MAX_GUIDANCE_SCALE:
        raise UserInputError(f"Guidance scale must be in 0..{MAX_GUIDANCE_SCALE:g} (1 = off), got {g:g}.")
    return SamplingInputs(temperature=t, top_k=int(k) or None, top_p=None if p >= 1.0 else p, seed=s,
                          guidance_scale=g)


def split_frames(frames: object, n_tokens: int, downsample: int, what: str) -> int:
    """A frame count from the page turned into whole tokens (at least 1, at most ``n_tokens``)."""
    value = _number(frames, what)
    if value != int(value) or value < downsample:
        raise UserInputError(f"{what} must be a whole number of frames >= {downsample} (one token), got {frames!r}.")
    tokens = int(value) // downsample
    if tokens > n_tokens:
        raise UserInputError(
            f"{what}: {int(value)} frames is more than the uploaded motion's {n_tokens * downsample} frames."
        )
    return tokens

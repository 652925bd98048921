"""The model side of the web UI: one loaded :class:`~motiongpt.generate.MotionGenerator`, requests
built from validated page inputs, and the files each generation leaves for download.

There is no generation code here: prompts, decoding, parsing, decoding tokens to joints, BVH and
GIF all come from :mod:`motiongpt.generate` (the same code ``generate_motion.py`` runs). This
module only turns page inputs into :class:`~motiongpt.generate.GenerationRequest` objects, calls
the generator under a lock (the model serves one request at a time), and lays out the results.

Every generation gets its own folder ``<out_dir>/gen_<NNNNNN>_<task>/`` written by
:func:`~motiongpt.generate.save_results` (atomically; its ``results.json`` records the request and
the sampling settings, guidance scale included); the oldest folders beyond ``Limits.max_stored``
are deleted.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from motiongpt.app.config import AppConfig
from motiongpt.app.inputs import (
    MAX_GUIDANCE_SCALE,
    SamplingInputs,
    UserInputError,
    check_caption,
    check_length,
    check_upload,
    format_key_tokens,
    motion_frame_count,
    parse_frames,
    parse_key_tokens,
    split_frames,
)

log = logging.getLogger(__name__)

__all__ = ["Shown", "MotionService", "sampling_config", "t2m_request", "m2t_request", "pred_request",
           "inbetween_request", "status_line"]

_GEN_DIR_RE = re.compile(r"^gen_(\d{6})_")


@dataclass
class Shown:
    """What the page shows after one request (paths are absolute strings, as gradio wants them)."""

    status: str
    """One-line summary in Markdown (tokens, frames, seconds, seed, problems the generator reported)."""
    gif: str | None = None
    """Animated GIF of the motion (motion-to-text: the described motion as the tokenizer decodes it)."""
    mp4: str | None = None
    """The same animation as MP4 (None when MP4 is off or unavailable)."""
    files: list[str] = field(default_factory=list)
    """Downloads: joints ``.npy``, ``.bvh``, tokens ``_tokens.txt`` (and ``.mp4``, the m2t caption ``.txt``)."""
    tokens: str = ""
    """The motion's codes, comma-joined (as in the ``_tokens.txt`` file)."""
    text: str = ""
    """Motion-to-text: the generated description."""
    label: str = ""
    """Gallery caption of this generation."""


# --------------------------------------------------------------------------------------------
# request building (pure: no model)


def sampling_config(s: SamplingInputs, seed: int, task: str) -> Any:
    """:class:`~motiongpt.generate.SamplingConfig` of validated page settings for a ``task`` request
    (``seed``: the one drawn for this request when the page asked for a random one).

    The guidance scale applies to the text-to-motion tasks only
    (:data:`~motiongpt.generate.request.GUIDANCE_TASKS`); ``m2t`` / ``pred`` / ``inbetween`` get 1
    (off): the generator refuses guidance there, and the page offers the control on the text tab only.
    """
    from motiongpt.generate import SamplingConfig
    from motiongpt.generate.request import GUIDANCE_TASKS

    scale = s.guidance_scale if task in GUIDANCE_TASKS else 1.0
    return SamplingConfig(temperature=s.temperature, top_k=s.top_k or 0, top_p=s.top_p or 1.0, seed=seed,
                          guidance_scale=scale)


def t2m_request(caption: str, length_frames: int | None, key_tokens: Sequence[tuple[int, int]], *,
                seed: int, name: str) -> Any:
    """Text-to-motion request. With ``key_tokens`` (``(position, code)`` pairs) it is the
    ``t2m_keys_pos`` task, whose prompt states the length: a length is then required."""
    from motiongpt.generate import GenerationRequest

    if not key_tokens:
        return GenerationRequest(task="t2m", caption=caption, length_frames=length_frames, seed=seed, name=name)
    if length_frames is None:
        raise UserInputError("Key tokens at positions need a length: set Length (frames) so that position N "
                             "means frames 4N..4N+3.")
    return GenerationRequest(task="t2m_keys_pos", caption=caption, length_frames=length_frames,
                             key_tokens=[(int(p), int(c)) for p, c in key_tokens], seed=seed, name=name)


def m2t_request(codes: Sequence[int], *, seed: int, name: str) -> Any:
    """Motion-to-text request on the codes of an uploaded motion."""
    from motiongpt.generate import GenerationRequest

    return GenerationRequest(task="m2t", motion_codes=[int(c) for c in codes], seed=seed, name=name)


def pred_request(prefix: Sequence[int], length_frames: int | None, *, seed: int, name: str) -> Any:
    """Prediction request: continue the motion whose first tokens are ``prefix`` (``length_frames``:
    the whole result, prefix included)."""
    from motiongpt.generate import GenerationRequest

    return GenerationRequest(task="pred", motion_codes=[int(c) for c in prefix], length_frames=length_frames,
                             seed=seed, name=name)


def inbetween_request(start: Sequence[int], end: Sequence[int], length_frames: int | None, *, seed: int,
                      name: str) -> Any:
    """In-betweening request: connect the ``start`` tokens to the ``end`` tokens (``length_frames``:
    the whole result, both given parts included)."""
    from motiongpt.generate import GenerationRequest

    return GenerationRequest(task="inbetween", motion_codes=[int(c) for c in start],
                             end_codes=[int(c) for c in end], length_frames=length_frames, seed=seed, name=name)


# --------------------------------------------------------------------------------------------
# the service


class MotionService:
    """A loaded generator plus the page's bounds and output folder; thread-safe (one job at a time).

    ``generator``: a :class:`~motiongpt.generate.MotionGenerator`.
    """

    def __init__(self, generator: Any, config: AppConfig, out_dir: str | Path | None = None) -> None:
        self.generator = generator
        self.config = config
        self.limits = config.limits
        chosen = out_dir if out_dir is not None else config.out_dir
        self._own_out_dir = chosen is None
        folder = Path(chosen) if chosen is not None else Path(tempfile.mkdtemp(prefix="motiongpt_app_"))
        folder.mkdir(parents=True, exist_ok=True)
        self.out_dir = folder.resolve()
        self._lock = threading.Lock()
        last = max((int(m.group(1)) for p in self.out_dir.iterdir() if (m := _GEN_DIR_RE.match(p.name))), default=0)
        self._counter = itertools.count(last + 1)
        self._seeds = random.Random()  # seeds of "random seed" requests (shown, so they can be replayed)
        self.mp4 = _resolve_mp4(config.mp4)

    # -- model facts the page needs ----------------------------------------------------------

    @property
    def nb_code(self) -> int:
        """Codebook size: valid codes are ``0 .. nb_code - 1``."""
        return int(self.generator.fmt.nb_code)

    @property
    def downsample(self) -> int:
        """Frames per motion token (the VQ-VAE's temporal downsampling)."""
        return int(self.generator.vq.downsample)

    @property
    def guidance_scale(self) -> float:
        """Default of the page's guidance-scale control: the generator's
        ``recommended_guidance_scale`` (:data:`~motiongpt.generate.generator.GUIDED_RECOMMENDED_SCALE`
        for a model trained with unconditional records, else 1 = off)."""
        return min(MAX_GUIDANCE_SCALE, float(self.generator.recommended_guidance_scale))

    @property
    def can_compose(self) -> bool:
        """Whether the model was trained with ``t2m_next`` records: the page then offers writing a
        caption clause by clause (:mod:`motiongpt.generate.compose`), on by default."""
        from motiongpt.generate.compose import supports_composition

        return supports_composition(self.generator)

    @property
    def max_tokens(self) -> int:
        """Tokens of the longest motion a request may ask for."""
        return max(1, self.limits.max_frames // self.downsample)

    def describe(self) -> str:
        """A line about the served model for the page header."""
        path = Path(self.config.lora_path).resolve()
        if path.is_relative_to(Path.cwd()):  # shorter, and no home folder in screenshots
            path = path.relative_to(Path.cwd())
        return (f"`{path}` on `{self.config.device}`: {self.nb_code} motion codes, "
                f"1 token = {self.downsample} frames at 20 fps")

    def close(self) -> None:
        """Remove the output folder when it is a temporary one this service made."""
        if self._own_out_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)

    # -- uploads -----------------------------------------------------------------------------

    def encode_upload(self, upload: str | Path | None, what: str = "Motion file") -> tuple[list[int], int]:
        """``(codes, frames)`` of an uploaded ``.npy`` / ``.bvh`` motion, within the bounds."""
        path = check_upload(upload, self.limits, what)
        frames = motion_frame_count(path, self.limits, what)
        try:
            with self._lock:
                codes = self.generator.encode_motion(path)
        except (ValueError, RuntimeError) as e:
            # the tokenizer's own checks (wrong shape, NaN, too short, unreadable BVH) name the
            # problem; the message names the server-side temp path, so show the upload's name
            message = str(e).replace(str(path), path.name)
            raise UserInputError(f"{what} {path.name!r} could not be read as a motion: {message}") from None
        if not codes:
            raise UserInputError(f"{what} {path.name!r} is too short to make a single motion token.")
        return [int(c) for c in codes], frames

    def key_tokens_from_motion(self, upload: str | Path | None, frames_spec: str | None,
                               existing_spec: str | None = None) -> tuple[str, str]:
        """Key poses -> key tokens: the chosen frames of an uploaded motion become ``position:code``
        pairs (frame ``f`` -> the code of token ``f // downsample``, pinned at that same position),
        merged into ``existing_spec`` (the new pairs win on a shared position). Returns ``(spec, status)``."""
        codes, frames = self.encode_upload(upload, "Key-pose motion")
        chosen = parse_frames(frames_spec, frames, self.limits)
        pairs = dict(parse_key_tokens(existing_spec, nb_code=self.nb_code, limits=self.limits,
                                      max_tokens=self.max_tokens))
        for f in chosen:
            # joints lose their last frame to the velocity features, and features are cropped to
            # whole tokens: the last frames map to the last token
            pos = min(f // self.downsample, len(codes) - 1)
            if pos >= self.max_tokens:
                raise UserInputError(f"Key frame {f} lands on token {pos}, past the longest motion "
                                     f"({self.limits.max_frames} frames).")
            pairs[pos] = codes[pos]
        if len(pairs) > self.limits.max_key_tokens:
            raise UserInputError(f"Too many key tokens: {len(pairs)} (the limit is {self.limits.max_key_tokens}).")
        spec = format_key_tokens(sorted(pairs.items()))
        return spec, f"Key tokens from frames {', '.join(map(str, chosen))} of the uploaded motion: `{spec}`."

    # -- tasks -------------------------------------------------------------------------------

    def text_to_motion(self, caption: str | None, length: Any, key_spec: str | None,
                       sampling: SamplingInputs, compose: bool = False) -> Shown:
        """Caption (+ optional length and key tokens) -> motion. ``compose``: write the caption clause
        by clause at its "then" connectors when the model can (:attr:`can_compose`) and neither a
        length nor key tokens are given (they fix the whole motion at once); otherwise ignored."""
        caption = check_caption(caption, self.limits)
        length_frames = check_length(length, self.limits, self.downsample)
        max_tokens = length_frames // self.downsample if length_frames else self.max_tokens
        keys = parse_key_tokens(key_spec, nb_code=self.nb_code, limits=self.limits, max_tokens=max_tokens)
        seed = self._seed(sampling)
        task = "t2m_keys_pos" if keys else "t2m"
        composed = bool(compose) and not keys and not length_frames and self.can_compose
        return self._run(lambda name: t2m_request(caption, length_frames, keys, seed=seed, name=name), task,
                         sampling, seed, composed=composed)

    def motion_to_text(self, upload: str | Path | None, sampling: SamplingInputs) -> Shown:
        """Uploaded motion -> description (the page also shows the motion as the tokenizer sees it)."""
        codes, _ = self.encode_upload(upload)
        seed = self._seed(sampling)
        return self._run(lambda name: m2t_request(codes, seed=seed, name=name), "m2t", sampling, seed)

    def predict(self, upload: str | Path | None, given_frames: Any, length: Any, sampling: SamplingInputs) -> Shown:
        """The first ``given_frames`` of an uploaded motion -> the motion continued."""
        codes, _ = self.encode_upload(upload)
        n = split_frames(given_frames, len(codes), self.downsample, "Given frames at the start")
        length_frames = self._edit_length(length, n)
        seed = self._seed(sampling)
        return self._run(lambda name: pred_request(codes[:n], length_frames, seed=seed, name=name), "pred",
                         sampling, seed)

    def inbetween(self, upload: str | Path | None, start_frames: Any, end_frames: Any, length: Any,
                  sampling: SamplingInputs) -> Shown:
        """The first ``start_frames`` and last ``end_frames`` of an uploaded motion -> the motion between."""
        codes, _ = self.encode_upload(upload)
        a = split_frames(start_frames, len(codes), self.downsample, "Given frames at the start")
        b = split_frames(end_frames, len(codes), self.downsample, "Given frames at the end")
        if a + b > len(codes):
            raise UserInputError(
                f"Start ({a * self.downsample} frames) and end ({b * self.downsample} frames) overlap: the uploaded "
                f"motion has {len(codes) * self.downsample} frames in whole tokens."
            )
        length_frames = self._edit_length(length, a + b)
        seed = self._seed(sampling)
        start, end = codes[:a], codes[len(codes) - b:]
        return self._run(lambda name: inbetween_request(start, end, length_frames, seed=seed, name=name),
                         "inbetween", sampling, seed)

    def _edit_length(self, length: Any, given_tokens: int) -> int | None:
        length_frames = check_length(length, self.limits, self.downsample)
        if length_frames is not None and length_frames // self.downsample <= given_tokens:
            raise UserInputError(
                f"Length {length_frames} frames leaves nothing to generate after the "
                f"{given_tokens * self.downsample} given frames; choose a longer length, or 0."
            )
        if given_tokens >= self.max_tokens and length_frames is None:
            raise UserInputError(
                f"The given parts ({given_tokens * self.downsample} frames) already reach the longest motion "
                f"({self.limits.max_frames} frames); give fewer frames."
            )
        return length_frames

    def _seed(self, sampling: SamplingInputs) -> int:
        return sampling.seed if sampling.seed is not None else self._seeds.randrange(2**31)

    # -- running one request ---------------------------------------------------------------

    def _run(self, make_request: Callable[[str], Any], task: str, sampling: SamplingInputs, seed: int,
             composed: bool = False) -> Shown:
        from motiongpt.generate import save_results
        from motiongpt.generate.compose import generate_composed

        config = sampling_config(sampling, seed, task)
        t0 = time.perf_counter()
        with self._lock:
            number = next(self._counter)
            name = f"motiongpt_{number:06d}_{task}"
            folder = self.out_dir / f"gen_{number:06d}_{task}"
            request = make_request(name)
            self._prune()
            try:
                if composed:
                    results = generate_composed(self.generator, [request], config, batch_size=self.config.batch_size)
                else:
                    results = self.generator.generate([request], config, batch_size=self.config.batch_size)
            except ValueError as e:  # the generator refused the request (e.g. longer than the model's context)
                raise UserInputError(f"The model cannot run this request: {e}") from None
            result = results[0]
            # mp4=False: the MP4 is made from the GIF's frames below instead of a second 3-D render
            save_results(results, folder, render=True, bvh=True, mp4=False,
                         meta={"app": True, "checkpoint": str(self.config.lora_path),
                               "sampling": dataclasses.asdict(config), "compose": composed})
            if self.mp4 and (folder / f"{name}.gif").is_file():
                _gif_to_mp4(folder / f"{name}.gif")
        return self._shown(result, folder, time.perf_counter() - t0, config.guidance_scale, composed)

    def _prune(self) -> None:
        """Keep the newest ``max_stored - 1`` generation folders (room for the one being made)."""
        found = sorted(p for p in self.out_dir.iterdir() if p.is_dir() and _GEN_DIR_RE.match(p.name))
        for old in found[: max(0, len(found) - (self.limits.max_stored - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def _shown(self, result: Any, folder: Path, seconds: float, guidance_scale: float = 1.0,
               composed: bool = False) -> Shown:
        name = result.name

        def present(suffix: str) -> str | None:
            path = folder / f"{name}{suffix}"
            return str(path) if path.is_file() else None

        downloads = [p for p in (present(".npy"), present(".bvh"), present("_tokens.txt"), present(".mp4"),
                                 present(".txt")) if p]
        codes = list(result.codes or [])
        if result.task == "m2t":
            label = f"described: {result.text or '(no text)'}"
        else:
            label = result.request.caption or {"pred": "prediction", "inbetween": "in-between"}.get(
                result.task, result.task)
        return Shown(status=status_line(result, seconds, self.downsample, guidance_scale, composed),
                     gif=present(".gif"),
                     mp4=present(".mp4"), files=downloads, tokens=",".join(map(str, codes)),
                     text=result.text or "", label=label)


# --------------------------------------------------------------------------------------------
# helpers


def _resolve_mp4(setting: bool | None) -> bool:
    """Whether to offer MP4: ``None`` = when ffmpeg is available; ``True`` needs it."""
    if setting is False:
        return False
    from motiongpt.viz.video import ffmpeg_available

    available = ffmpeg_available()
    if setting and not available:
        raise RuntimeError("--mp4 needs ffmpeg (on PATH, or pip install imageio-ffmpeg)")
    return available


def _gif_to_mp4(gif: Path) -> Path | None:
    """The GIF's frames written again as MP4 next to it (no second 3-D rendering pass)."""
    from PIL import Image

    from motiongpt.viz.video import read_video, write_video

    with Image.open(gif) as im:
        duration_ms = im.info.get("duration") or 50
    out = gif.with_suffix(".mp4")
    try:
        write_video(read_video(gif), out, 1000.0 / float(duration_ms))
    except (RuntimeError, ValueError, OSError) as e:  # ffmpeg failed: the GIF is still there
        log.warning("could not write %s: %s", out, e)
        return None
    return out


def status_line(result: Any, seconds: float, downsample: int, guidance_scale: float = 1.0,
                composed: bool = False) -> str:
    """The status-box line of a finished request (``guidance_scale``: the one it ran with; named when
    on; ``composed``: written clause by clause, named with the clause count when there were several)."""
    codes = list(result.codes or [])
    if result.task == "m2t":
        head = f"Described a motion of {len(codes)} tokens"
    elif codes:
        frames = len(codes) * downsample
        head = f"Generated {len(codes)} motion tokens ({frames} frames, {frames / 20:.1f} s)"
    else:
        head = "The model wrote no motion tokens"
    guided = f", guidance scale {guidance_scale:g}" if guidance_scale != 1 else ""
    if composed and result.request is not None and result.task == "t2m":
        from motiongpt.llm.tasks import split_clauses

        n = len(split_clauses(result.request.caption))
        if n > 1:
            guided += f", {n} clauses composed"
    line = f"{head} in {seconds:.1f} s (seed {result.seed}{guided})."
    if result.problems:
        line += " Notes: " + "; ".join(str(p) for p in result.problems[:3]) + "."
    return line

"""Build instruction datasets (``train.json`` / ``val.json`` / ``test.json``) from VQ codes and captions.

Input: a HumanML3D-layout dataset whose clips were encoded by ``scripts/prepare_data.py``::

    <data_root>/train.txt val.txt test.txt     split ids
    <data_root>/texts/<id>.txt                 captions (``caption#tokens#start#end`` lines)
    <data_root>/VQVAE/<id>.npy                 int64 codes (T // 4,); ``M<id>.npy`` for mirrors
    <data_root>/VQVAE/meta.json                which VQ-VAE made them (nb_code, downsample)
    <data_root>/labels/<id>.json               task ``t2m_next`` only: temporal segments,
                                               ``{"segments": [{"start": frame, "end": frame}, ...]}``

Output (``out_dir``, written as a whole with :func:`~motiongpt.utils.atomic.atomic_directory`)::

    train.json val.json test.json   JSON lists of records (one record per line)
    meta.json                       config, counts per split / task, skip report, VQ identity
    motion_format.json              the MotionTokenFormat of the records

Choices (following MotionGPT's loaders):

* a caption with a segment (``start``/``end`` not both 0) describes a sub-motion: its codes are
  ``codes[int(start*fps) // 4 : int(end*fps) // 4]`` and its id ``<id>#<start>#<end>`` (the
  :mod:`motiongpt.data.humanml3d` sub-clip id). ``segments=False`` ignores such captions;
* motions outside ``[min_tokens, max_tokens]`` codes are skipped (default ``[10, 49]`` codes =
  ``[40, 196]`` frames, the T2M length filter);
* mirrored clips ``M<id>`` (codes present in ``VQVAE/``) augment the *train* split only; their
  captions are ``texts/M<id>.txt`` when the dataset ships it (HumanML3D does), else the clip's
  captions with left/right swapped (:func:`~motiongpt.llm.tasks.swap_left_right`). A split file that
  lists ``M<id>`` itself treats it as an ordinary clip;
* ``t2m_next`` reads each clip's temporal segments from ``labels/<id>.json`` (the synthetic corpus
  writes them; BABEL-style annotations can be converted to the same form): a segment's codes start
  at ``round(start / 4)``; a mirrored clip has its clip's segments. Clips without the file, or with
  one segment, give no ``t2m_next`` records; a train split without any is an error;
* every problem is counted per split and reason, never fatal — except codes outside
  ``[0, nb_code)``, which mean the cache and ``nb_code`` disagree (an error naming the file).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from motiongpt.config import config_to_dict
from motiongpt.data.humanml3d import Caption, parse_caption_line, read_split
from motiongpt.llm.tasks import MotionItem, TaskConfig, build_item_records, swap_left_right
from motiongpt.llm.templates import load_instructions
from motiongpt.llm.tokens import MotionTokenFormat, save_motion_format
from motiongpt.utils.atomic import atomic_directory
from motiongpt.utils.files import read_json

__all__ = ["InstructionDataConfig", "generate_instruction_dataset", "write_records", "read_records",
           "GENERATOR_NAME"]

log = logging.getLogger(__name__)

GENERATOR_NAME = "motiongpt.llm.dataset_builder"
"""Written to ``meta.json``; marks a folder this builder may replace."""
_VERSION = 1
_OUR_FILES = {"train.json", "val.json", "test.json", "meta.json", "motion_format.json"}
_MAX_EXAMPLES = 5


@dataclass
class InstructionDataConfig(TaskConfig):
    """Everything :func:`generate_instruction_dataset` needs (the task settings are inherited
    from :class:`~motiongpt.llm.tasks.TaskConfig`)."""

    data_root: str = ""
    """HumanML3D-layout dataset directory holding split files, ``texts/`` and the codes."""
    out_dir: str = ""
    """Output folder (e.g. ``data/hml_vocab``); replaced as a whole, so it must be empty, absent, or
    an earlier output of this builder."""
    vq: str | None = None
    """VQ-VAE checkpoint directory: when given, the token cache must be current for it
    (``token_cache_status``) and ``nb_code`` comes from its ``config.yaml``."""
    format: Literal["vocab", "digits"] = "vocab"
    """How codes are written: ``vocab`` (``<motion_id_K>`` tokens) or ``digits`` (``315,91,406``,
    MotionGPT-LoRA)."""
    nb_code: int | None = None
    """Codebook size; None: from ``vq``'s config, else ``VQVAE/meta.json``, else 512."""
    seed: int = 0
    """Seed of every random choice (per motion and task, see ``tasks.clip_rng``)."""
    mirror: bool = True
    """Add the mirrored clips ``M<id>`` of train clips (when their codes exist) to ``train.json``."""
    splits: list[str] = field(default_factory=lambda: ["train", "val", "test"])
    """Split files to turn into ``<split>.json`` (a missing split file other than train is noted
    and skipped)."""
    min_tokens: int = 10
    """Shortest motion kept, in codes (10 codes = 40 frames, T2M's minimum)."""
    max_tokens: int = 49
    """Longest motion kept, in codes (49 codes = 196 frames, T2M's maximum)."""
    segments: bool = True
    """Turn segment captions (``start``/``end`` set) into sub-motions with sliced codes; False
    ignores them."""
    fps: float | None = None
    """Frame rate for segment times; None: 12.5 for KIT-ML (251-d ``Mean.npy``), else 20."""
    token_dir: str = "VQVAE"
    """Subfolder of ``data_root`` that holds the codes."""
    instructions_path: str | None = None
    """Instruction strings file; None: the packaged ``data/instructions.json``."""

    def validate(self) -> None:
        super().validate()
        if not self.data_root:
            raise ValueError("data_root is required (the HumanML3D-layout dataset with VQVAE/ codes)")
        if not self.out_dir:
            raise ValueError("out_dir is required (e.g. data/<name>)")
        if self.format not in ("vocab", "digits"):
            raise ValueError(f"format must be 'vocab' or 'digits', got {self.format!r}")
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise ValueError(
                f"min_tokens/max_tokens must satisfy 1 <= min <= max, got {self.min_tokens}/{self.max_tokens}"
            )
        if "train" not in self.splits:
            raise ValueError(f"splits must include 'train', got {self.splits}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


# --------------------------------------------------------------------------------------------
# reading


class _Counter:
    """Skip counts of one split, with a few examples per reason for the report."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, what: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n
        ex = self.examples.setdefault(reason, [])
        if len(ex) < _MAX_EXAMPLES:
            ex.append(what)


def _read_codes(path: Path, nb_code: int) -> tuple[np.ndarray | None, str, str]:
    """(codes, reason, detail); codes None when the file is skipped."""
    if not path.is_file():
        return None, "missing_codes", str(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # truncated, not .npy, or a pickled object array
        return None, "bad_codes", f"{path}: {type(e).__name__}: {e}"
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        return None, "bad_codes", f"{path}: shape {arr.shape} dtype {arr.dtype}, expected 1-D integers"
    if arr.size and (arr.min() < 0 or arr.max() >= nb_code):
        # Not a per-file accident: the cache was made by a codebook of another size (or nb_code
        # is wrong), and skipping would silently drop most of the data.
        raise ValueError(
            f"{path}: codes in [{int(arr.min())}, {int(arr.max())}] fall outside [0, {nb_code}); "
            "the token cache was made with another codebook size, or nb_code is wrong"
        )
    return arr.astype(np.int64, copy=False), "", ""


def _read_captions(path: Path, counter: _Counter, clip_id: str) -> list[Caption] | None:
    """Captions of a text file; bad or empty lines are counted and skipped. None: no file."""
    if not path.is_file():
        return None
    raw = path.read_text(encoding="utf-8", errors="replace")
    out: list[Caption] = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            cap = parse_caption_line(line, source=f"{path}:{n}")
        except ValueError as e:
            empty = line.strip().rsplit("#", 3)[0].strip() == ""
            counter.add("empty_caption" if empty else "bad_caption_line", f"{clip_id}: {e}")
            continue
        out.append(cap)
    return out


def _resolve_fps(cfg: InstructionDataConfig, root: Path) -> float:
    if cfg.fps is not None:
        return float(cfg.fps)
    mean = root / "Mean.npy"
    if mean.is_file():
        dim = int(np.load(mean, mmap_mode="r", allow_pickle=False).shape[0])
        if dim == 251:  # KIT-ML
            return 12.5
    return 20.0


def _resolve_nb_code(cfg: InstructionDataConfig, token_meta: dict[str, Any] | None) -> tuple[int, str]:
    """(nb_code, where it came from); a conflict between an explicit value and the data is an error."""
    found: list[tuple[int, str]] = []
    if cfg.vq:
        path = Path(cfg.vq) / "config.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"vq={cfg.vq!r}: {path} not found (not a VQ-VAE checkpoint directory)")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            found.append((int(data["model"]["nb_code"]), str(path)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: no model.nb_code ({e})") from e
    if token_meta is not None and "nb_code" in token_meta:
        found.append((int(token_meta["nb_code"]), "token cache meta.json"))
    for value, where in found:
        if cfg.nb_code is not None and value != cfg.nb_code:
            raise ValueError(f"nb_code={cfg.nb_code} but {where} says {value}")
    if found and len({v for v, _ in found}) > 1:
        raise ValueError(f"nb_code disagrees between sources: {found}")
    if cfg.nb_code is not None:
        return cfg.nb_code, "config"
    if found:
        return found[0]
    return 512, "default"


def _check_out_dir(out: Path) -> None:
    """Refuse to replace a folder that is not ours (the whole folder is swapped on success)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"out_dir {out} exists and is not a directory")
    entries = {p.name for p in out.iterdir()}
    if not entries:
        return
    meta = out / "meta.json"
    ours = False
    if meta.is_file():
        try:
            ours = json.loads(meta.read_text(encoding="utf-8")).get("generator") == GENERATOR_NAME
        except (json.JSONDecodeError, AttributeError):
            ours = False
    if not ours or not entries <= _OUR_FILES:
        raise FileExistsError(
            f"out_dir {out} is not empty and not (only) an earlier output of this builder "
            f"(found {sorted(entries)[:8]}); it would be replaced as a whole: choose another folder"
        )


# --------------------------------------------------------------------------------------------
# records I/O


def write_records(path: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Write a JSON list with one record per line (valid JSON, greppable, diff-friendly), atomically."""
    from motiongpt.config import atomic_write_text

    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    atomic_write_text(path, "[\n" + body + "\n]\n" if records else "[]\n")


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a records file (ours or MotionGPT-LoRA's ``train.json``): a JSON list of objects that
    each have string ``instruction`` and ``output`` (``input`` optional). Errors name the file and
    the record index."""
    path = Path(path)
    data = read_json(path, "records file")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: record {i} is not an object: {rec!r:.100}")
        for key in ("instruction", "output"):
            if not isinstance(rec.get(key), str):
                raise ValueError(f"{path}: record {i} has no string {key!r}: {rec!r:.200}")
        if not isinstance(rec.get("input", ""), str):
            raise ValueError(f"{path}: record {i}: 'input' is not a string")
    return data


# --------------------------------------------------------------------------------------------
# building


def _items_of_clip(
    clip_id: str, codes: np.ndarray, captions: list[Caption], cfg: InstructionDataConfig, fps: float,
    unit: int, counter: _Counter,
) -> list[MotionItem]:
    """The whole-clip motion and its segment sub-motions, after the length filter."""
    groups: dict[tuple[float, float], list[str]] = {}
    tag_groups: dict[tuple[float, float], list[tuple[str, ...]]] = {}
    for cap in captions:
        key = (0.0, 0.0) if cap.is_whole_clip else (cap.start, cap.end)
        if key != (0.0, 0.0) and not cfg.segments:
            counter.add("segment_caption_ignored", clip_id)
            continue
        groups.setdefault(key, []).append(cap.text)
        tag_groups.setdefault(key, []).append(tuple(cap.tokens))
    items = []
    for (start, end), texts in groups.items():
        if (start, end) == (0.0, 0.0):
            mid, sub = clip_id, codes
        else:
            mid = f"{clip_id}#{start!r}#{end!r}"
            sub = codes[int(start * fps) // unit : int(end * fps) // unit]
        n = int(sub.shape[0])
        if n < cfg.min_tokens:
            counter.add("too_short", f"{mid}: {n} codes < min_tokens {cfg.min_tokens}")
            continue
        if n > cfg.max_tokens:
            counter.add("too_long", f"{mid}: {n} codes > max_tokens {cfg.max_tokens}")
            continue
        items.append(MotionItem(mid, tuple(int(c) for c in sub), tuple(texts), unit,
                                caption_tags=tuple(tag_groups[(start, end)])))
    return items


def _segment_starts(root: Path, clip_id: str, n_codes: int, unit: int, counter: _Counter) -> tuple[int, ...]:
    """Code index where each annotated segment after the first starts (``labels/<id>.json``);
    ``()`` without annotations (counted)."""
    path = root / "labels" / f"{clip_id}.json"
    if not path.is_file():
        counter.add("no_segment_labels", str(path))
        return ()
    try:
        segs = json.loads(path.read_text(encoding="utf-8")).get("segments")
        starts = [round(float(seg["start"]) / unit) for seg in segs[1:]]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"{path}: expected {{\"segments\": [{{\"start\": frame, \"end\": frame}}, ...]}} ({e})") from e
    if any(not 0 < b < n_codes for b in starts) or any(a >= b for a, b in zip(starts[:-1], starts[1:])):
        counter.add("bad_segments", f"{path}: segment starts {starts} (codes) not increasing inside (0, {n_codes})")
        return ()
    return tuple(starts)


def make_paraphraser(cfg: TaskConfig) -> Any:
    """The WordNet caption paraphraser of ``cfg`` (``paraphrase_word_prob``, ``paraphrase_exclude``);
    fetches WordNet on first use."""
    from motiongpt.data.paraphrase import CaptionParaphraser, exclusion_words
    from motiongpt.data.synthetic.rewording import read_caption_file
    from motiongpt.data.wordnet import load_wordnet

    texts = [caption for path in cfg.paraphrase_exclude for _, caption in read_caption_file(path)]
    exclude = exclusion_words(texts)
    return CaptionParaphraser(load_wordnet(), word_prob=cfg.paraphrase_word_prob, exclude=exclude)


def generate_instruction_dataset(cfg: InstructionDataConfig) -> dict[str, Any]:
    """Build ``<out_dir>/{train,val,test}.json``, ``meta.json`` and ``motion_format.json``.

    Returns the report written to ``meta.json``: ``counts[split]`` (ids, motions, mirrored,
    segments, records, per_task, skipped per reason, skipped_tasks per task), ``skip_examples``,
    ``format``, ``vq`` and ``seconds``.
    """
    t0 = time.time()
    cfg.validate()
    root, out = Path(cfg.data_root), Path(cfg.out_dir)
    token_dir = root / cfg.token_dir
    if not token_dir.is_dir():
        raise FileNotFoundError(
            f"{token_dir} not found: encode the dataset first (scripts/prepare_data.py --vq DIR --data_root {root})"
        )
    _check_out_dir(out)
    meta_path = token_dir / "meta.json"
    token_meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else None

    vq_info: dict[str, Any] = {"checked": False}
    if cfg.vq:
        from motiongpt.vq.prepare import token_cache_status  # imports torch: only when asked

        if token_meta is None:
            raise ValueError(f"vq={cfg.vq!r} given but {meta_path} is missing: the token cache is not "
                             "complete (re-run scripts/prepare_data.py)")
        status = token_cache_status(root, cfg.vq, split=token_meta.get("split", "all"),
                                    mirror=bool(token_meta.get("mirror", False)))
        if not status["current"]:
            raise ValueError(
                f"the token cache {token_dir} is not current for VQ-VAE {cfg.vq}: {status['reason']}; "
                f"re-run scripts/prepare_data.py --vq {cfg.vq} --data_root {root}"
            )
        vq_info = {"checked": True, "path": str(Path(cfg.vq).resolve()), "reason": status["reason"]}
    if token_meta is not None:
        vq_info["id"] = token_meta.get("vq", {}).get("id")
        vq_info["cache_mirror"] = token_meta.get("mirror")

    nb_code, nb_code_source = _resolve_nb_code(cfg, token_meta)
    fmt = MotionTokenFormat(cfg.format, nb_code)
    unit = int(token_meta.get("downsample", 4)) if token_meta else 4
    fps = _resolve_fps(cfg, root)
    instructions = load_instructions(cfg.instructions_path)
    missing_instr = [t for t in cfg.tasks if t not in instructions]
    if missing_instr:
        raise ValueError(f"instructions file has no strings for task(s) {missing_instr}")

    paraphraser = make_paraphraser(cfg) if cfg.paraphrase_prob > 0 else None
    by_split: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, Any] = {}
    examples: dict[str, list[str]] = {}
    notes: list[str] = []
    for split in cfg.splits:
        # unconditional (classifier-free guidance) records are training data only
        # so are reworded captions: evaluation reads the captions as written
        task_cfg = cfg if split == "train" else dataclasses.replace(cfg, uncond_prob=0.0, paraphrase_prob=0.0)
        if not (root / f"{split}.txt").is_file() and split != "train":
            notes.append(f"no {split}.txt in {root}: {split}.json not written")
            continue
        ids = list(dict.fromkeys(read_split(root, split)))
        id_set = set(ids)
        counter = _Counter()
        records: list[dict[str, Any]] = []
        per_task = {t: 0 for t in cfg.tasks}
        skipped_tasks = {t: 0 for t in cfg.tasks}
        n_motions = n_mirrored = n_segments = n_uncond = 0
        for clip_id in ids:
            codes, reason, detail = _read_codes(token_dir / f"{clip_id}.npy", nb_code)
            if codes is None:
                counter.add(reason, f"{clip_id}: {detail}")
                continue
            captions = _read_captions(root / "texts" / f"{clip_id}.txt", counter, clip_id)
            if captions is None:
                counter.add("missing_text", f"{clip_id}: {root / 'texts' / f'{clip_id}.txt'}")
                continue
            if not captions:
                counter.add("no_captions", clip_id)
                continue
            items = _items_of_clip(clip_id, codes, captions, cfg, fps, unit, counter)
            starts: tuple[int, ...] = ()
            if "t2m_next" in cfg.tasks and any(it.id == clip_id for it in items):
                starts = _segment_starts(root, clip_id, len(codes), unit, counter)
                items = [dataclasses.replace(it, segment_starts=starts) if it.id == clip_id else it for it in items]
            mirror_id = f"M{clip_id}"
            if split == "train" and cfg.mirror and mirror_id not in id_set and not clip_id.startswith("M"):
                m_codes, m_reason, m_detail = _read_codes(token_dir / f"{mirror_id}.npy", nb_code)
                if m_codes is None:
                    counter.add("missing_mirror_codes" if m_reason == "missing_codes" else m_reason,
                                f"{mirror_id}: {m_detail}")
                else:
                    m_caps = _read_captions(root / "texts" / f"{mirror_id}.txt", counter, mirror_id)
                    if m_caps is None:  # the dataset does not ship mirrored captions: swap words
                        m_caps = [dataclasses.replace(c, text=swap_left_right(c.text)) for c in captions]
                    m_items = _items_of_clip(mirror_id, m_codes, m_caps, cfg, fps, unit, counter)
                    if starts and len(m_codes) == len(codes):  # a mirror keeps its clip's timing
                        m_items = [dataclasses.replace(it, segment_starts=starts) if it.id == mirror_id else it
                                   for it in m_items]
                    n_mirrored += len(m_items)
                    items += m_items
            for item in items:
                n_motions += 1
                n_segments += "#" in item.id
                recs, too_short = build_item_records(item, task_cfg, fmt, instructions, cfg.seed, paraphraser)
                for task in too_short:
                    skipped_tasks[task] += 1
                for rec in recs:
                    per_task[rec["task"]] += 1
                    n_uncond += bool(rec.get("uncond"))
                records.extend(recs)
        if split == "train" and cfg.mirror and n_mirrored == 0:
            notes.append("mirror=true but no mirrored codes (VQVAE/M<id>.npy) were found: encode with "
                         "scripts/prepare_data.py --mirror to add them")
        by_split[split] = records
        counts[split] = {
            "ids": len(ids), "motions": n_motions, "mirrored": n_mirrored, "segments": n_segments,
            "records": len(records), "per_task": per_task, "uncond": n_uncond,
            "skipped": dict(sorted(counter.counts.items())),
            "skipped_tasks": {t: n for t, n in skipped_tasks.items() if n},
        }
        for reason, ex in counter.examples.items():
            examples.setdefault(f"{split}/{reason}", ex)
        log.info("%s: %d ids -> %d motions (%d mirrored, %d segments) -> %d records; skipped %s",
                 split, len(ids), n_motions, n_mirrored, n_segments, len(records), counter.counts or "nothing")
    if not by_split.get("train"):
        raise ValueError(f"no train records were made from {root}: skipped {counts.get('train', {}).get('skipped')}")
    if "t2m_next" in cfg.tasks and not counts["train"]["per_task"]["t2m_next"]:
        raise ValueError(
            f"task t2m_next made no train records from {root}: it needs temporal segments in "
            f"{root / 'labels'}/<id>.json ({{\"segments\": [{{\"start\": frame, \"end\": frame}}, ...]}}, two or more) "
            "and captions that state them in order, one clause per segment, joined by 'then' "
            f"(skipped: {counts['train']['skipped']})"
        )

    report: dict[str, Any] = {
        "generator": GENERATOR_NAME,
        "version": _VERSION,
        "config": config_to_dict(cfg),
        "format": fmt.to_dict(),
        "nb_code_source": nb_code_source,
        "fps": fps,
        "unit_length": unit,
        "vq": vq_info,
        "counts": counts,
        "skip_examples": examples,
        "notes": notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with atomic_directory(out) as tmp:
        for split, records in by_split.items():
            write_records(tmp / f"{split}.json", records)
        save_motion_format(fmt, tmp)
        report["seconds"] = round(time.time() - t0, 3)
        (tmp / "meta.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for note in notes:
        log.warning("%s", note)
    return report

"""Loader for motion datasets in the HumanML3D directory layout (HumanML3D and KIT-ML).

Layout (see ``humanml3d-representation.md``)::

    root/
      new_joint_vecs/<id>.npy   float32 [T, D] features (D = 263 HumanML3D, 251 KIT-ML)
      new_joints/<id>.npy       float32 [T, J, 3] joint positions (optional)
      texts/<id>.txt            one caption per line: ``caption#word/POS word/POS ...#start#end``
      train.txt val.txt test.txt train_val.txt all.txt   one id per line
      Mean.npy Std.npy          float32 [D] normalization statistics

Semantics follow the T2M / T2M-GPT ``Text2MotionDataset`` loaders:

* a clip outside the length filter is dropped together with all its segment captions (T2M checks
  the clip length before it reads the text file);
* captions whose ``start``/``end`` are both 0 (or NaN, which T2M maps to 0) describe the whole clip;
* a caption with a segment becomes its own sub-clip ``features[int(start*fps):int(end*fps)]``
  that passes the same length filter; the whole clip is only kept when it has at least one
  whole-clip caption (T2M's ``flag``).

Differences from T2M, on purpose:

* the length filter is an inclusive ``[min_length, max_length]`` range, default ``[40, 196]``
  frames (the range HumanML3D text-to-motion training uses). T2M itself drops clips of
  ``>= 200`` frames and crops longer ones to 196 at sampling time: pass ``max_length=199``
  (:data:`T2M_MAX_LENGTH`) to keep exactly T2M's clip set;
* sub-clips get a deterministic id ``<source_id>#<start>#<end>`` instead of a random letter
  prefix, and captions of the same segment share one sub-clip instead of duplicating the motion;
* segments are sliced at the dataset's fps (T2M hard-codes 20 even for KIT-ML, whose captions
  are all whole-clip, so nothing changes there);
* every skipped item is recorded in a :class:`LoadReport` with its reason and file instead of a
  bare ``except: pass``.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from motiongpt.motion.skeleton import KINEMATIC_CHAIN, KIT_KINEMATIC_CHAIN

__all__ = [
    "DatasetSpec",
    "HUMANML3D",
    "KIT_ML",
    "T2M_MAX_LENGTH",
    "SPLITS",
    "Caption",
    "MotionClip",
    "SkipReason",
    "SkippedItem",
    "LoadReport",
    "HumanML3DDataset",
    "parse_caption_line",
    "format_caption_line",
    "read_split",
    "read_captions",
    "load_stats",
    "spec_for",
    "load_humanml3d",
]

SPLITS = ("train", "val", "test", "train_val", "all")

# T2M keeps clips of fewer than 200 frames (``len(motion) >= 200`` is dropped).
T2M_MAX_LENGTH = 199


@dataclass(frozen=True)
class DatasetSpec:
    """Constants of one dataset in the HumanML3D layout."""

    name: str
    """Short name: ``"humanml3d"`` or ``"kit"``."""
    feature_dim: int
    """Per-frame feature size D (263 for 22 joints, 251 for 21)."""
    joints_num: int
    """Number of skeleton joints J."""
    fps: float
    """Frame rate of the published data (segment times are in seconds)."""
    chains: tuple[tuple[int, ...], ...]
    """Kinematic chains for drawing, each starting at its parent joint."""
    min_length: int
    """Default minimum clip length in frames (T2M's ``min_motion_len``)."""
    max_length: int
    """Default maximum clip length in frames (inclusive)."""


HUMANML3D = DatasetSpec("humanml3d", 263, 22, 20.0, KINEMATIC_CHAIN, 40, 196)
KIT_ML = DatasetSpec("kit", 251, 21, 12.5, KIT_KINEMATIC_CHAIN, 24, 196)
_SPECS = {"humanml3d": HUMANML3D, "hml3d": HUMANML3D, "t2m": HUMANML3D, "kit": KIT_ML, "kitml": KIT_ML, "kit-ml": KIT_ML}


def _feature_dim(joints_num: int) -> int:
    # 4 root values + ric (J-1)*3 + rot6d (J-1)*6 + velocities J*3 + 4 foot contacts.
    return 4 + (joints_num - 1) * 9 + joints_num * 3 + 4


def spec_for(dataset: str | None = None, feature_dim: int | None = None) -> DatasetSpec:
    """The :class:`DatasetSpec` for a dataset name (``"humanml3d"``, ``"kit"``) or a feature size.

    A feature size other than 263/251 that fits the recipe (``D = 12 J - 1``) gives a generic
    spec at 20 fps with no drawing chains; anything else raises ``ValueError``.
    """
    if dataset is not None:
        key = dataset.lower()
        if key not in _SPECS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(set(_SPECS))}")
        spec = _SPECS[key]
        if feature_dim is not None and feature_dim != spec.feature_dim:
            raise ValueError(f"dataset {dataset!r} has {spec.feature_dim}-d features, not {feature_dim}")
        return spec
    if feature_dim is None:
        raise ValueError("need a dataset name or a feature size to pick the dataset spec")
    for spec in (HUMANML3D, KIT_ML):
        if spec.feature_dim == feature_dim:
            return spec
    joints = (feature_dim + 1) // 12
    if joints >= 2 and _feature_dim(joints) == feature_dim:
        return DatasetSpec(f"custom{joints}", feature_dim, joints, 20.0, (), 40, 196)
    raise ValueError(
        f"feature size {feature_dim} matches no HumanML3D-style skeleton (263 = HumanML3D, 251 = KIT-ML, "
        "or 12 * joints - 1)"
    )


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caption:
    """One caption line of a ``texts/<id>.txt`` file."""

    text: str
    """The caption sentence (may contain ``#``)."""
    tokens: tuple[str, ...]
    """``word/POS`` tokens (empty when the line had none)."""
    start: float = 0.0
    """Segment start in seconds (0 with ``end`` 0: the whole clip)."""
    end: float = 0.0
    """Segment end in seconds (0 with ``start`` 0: the whole clip)."""

    @property
    def is_whole_clip(self) -> bool:
        """True when the caption describes the whole clip rather than a segment."""
        return self.start == 0.0 and self.end == 0.0


def parse_caption_line(line: str, source: str | Path | None = None) -> Caption:
    """Parse ``caption#tokens#start#end`` into a :class:`Caption`.

    The caption is everything before the third-from-last ``#``, so captions may contain ``#``.
    NaN times become 0.0 (as in T2M: NaN marks a whole-clip caption). Surrounding whitespace of the
    line and of the caption is stripped; tokens are split on whitespace.

    Raises:
        ValueError: naming ``source`` (a file, or file:line) when the line has fewer than four
            ``#``-separated fields, an empty caption, or times that are not numbers, infinite or
            negative.
    """
    where = f" in {source}" if source is not None else ""
    stripped = line.strip()
    parts = stripped.rsplit("#", 3)
    if len(parts) != 4:
        raise ValueError(f"caption line{where} needs 'caption#tokens#start#end', got {line!r}")
    text, tokens, start_s, end_s = parts
    text = text.strip()
    if not text:
        raise ValueError(f"empty caption{where}: {line!r}")
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        raise ValueError(f"caption times{where} are not numbers: {start_s!r}, {end_s!r} in {line!r}") from None
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    # Negative or infinite times cannot index frames (a negative start would slice from the end).
    # An empty or inverted segment is well-formed text: the loader's length filter drops it.
    if math.isinf(start) or math.isinf(end) or start < 0.0 or end < 0.0:
        raise ValueError(f"bad caption segment{where}: start={start_s!r} end={end_s!r} in {line!r}")
    return Caption(text=text, tokens=tuple(tokens.split()), start=start, end=end)


def format_caption_line(text: str, tokens: Sequence[str] = (), start: float = 0.0, end: float = 0.0) -> str:
    """Format one ``texts/<id>.txt`` line (no trailing newline); the inverse of
    :func:`parse_caption_line`.

    ``parse_caption_line(format_caption_line(t, k, s, e))`` gives back ``t.strip()``, ``tuple(k)``,
    ``s`` and ``e`` exactly (times are written with ``repr``, which round-trips floats).

    Raises:
        ValueError: for an empty caption or one with a line break, a token that is empty or holds
            whitespace or ``#`` (it would split differently on reading), or times the parser rejects.
    """
    text = text.strip()
    if not text:
        raise ValueError("caption text is empty")
    if "\n" in text or "\r" in text:
        raise ValueError(f"caption text has a line break: {text!r}")
    for tok in tokens:
        if not tok or "#" in tok or any(ch.isspace() for ch in tok):
            raise ValueError(f"token {tok!r} is empty or contains whitespace or '#'")
    line = f"{text}#{' '.join(tokens)}#{float(start)!r}#{float(end)!r}"
    parse_caption_line(line)  # same validation of the times as on reading
    return line


def read_captions(path: str | Path) -> list[Caption]:
    """All captions of a ``texts/<id>.txt`` file (blank lines ignored).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: naming ``path:line`` for an unparseable line, or ``path`` when it has no captions.
    """
    path = Path(path)
    raw = path.read_text(encoding="utf-8", errors="replace")
    captions = [
        parse_caption_line(line, source=f"{path}:{i + 1}")
        for i, line in enumerate(raw.splitlines())
        if line.strip()
    ]
    if not captions:
        raise ValueError(f"no captions in {path}")
    return captions


# --------------------------------------------------------------------------------------------
# Splits and statistics
# --------------------------------------------------------------------------------------------


def read_split(root: str | Path, split: str) -> list[str]:
    """Ids listed in ``root/<split>.txt`` (order kept, blank lines skipped).

    Raises:
        FileNotFoundError: naming the missing split file.
    """
    path = Path(root) / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"split file {path} not found (expected one of {', '.join(s + '.txt' for s in SPLITS)} in {root})"
        )
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_stats(stats_dir: str | Path, feature_dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``Mean.npy`` and ``Std.npy`` from ``stats_dir`` as float32 ``[D]`` arrays.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: naming the file when the shape is not ``(feature_dim,)``, values are not
            finite, or a std is not positive (normalizing would divide by zero).
    """
    stats_dir = Path(stats_dir)
    out = []
    for name in ("Mean.npy", "Std.npy"):
        path = stats_dir / name
        if not path.is_file():
            raise FileNotFoundError(
                f"normalization statistics {path} not found (pass require_stats=False to load without them)"
            )
        arr = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        if arr.ndim != 1 or (feature_dim is not None and arr.shape != (feature_dim,)):
            raise ValueError(
                f"{path} has shape {arr.shape}, expected ({feature_dim if feature_dim is not None else 'D'},) "
                "to match the features"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{path} contains NaN or inf")
        out.append(arr)
    mean, std = out
    if mean.shape != std.shape:
        raise ValueError(f"Mean.npy {mean.shape} and Std.npy {std.shape} in {stats_dir} differ in shape")
    if (std <= 0).any():
        bad = np.flatnonzero(std <= 0)[:5].tolist()
        raise ValueError(f"{stats_dir / 'Std.npy'} has non-positive entries (dims {bad}...)")
    return mean, std


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


class SkipReason(str, enum.Enum):
    """Why an item was not loaded."""

    MISSING_FEATURES = "missing features file"
    UNREADABLE_FEATURES = "unreadable features npy"
    WRONG_FEATURE_SIZE = "wrong feature shape"
    NON_FINITE = "NaN/inf in features"
    MISSING_TEXT = "missing text file"
    EMPTY_TEXT = "empty text file"
    UNPARSEABLE_TEXT = "unparseable text"
    MISSING_JOINTS = "missing joints file"
    BAD_JOINTS = "unreadable or mismatched joints"
    DUPLICATE_ID = "duplicate id in split"
    TOO_SHORT = "too short"
    TOO_LONG = "too long"

    @property
    def is_error(self) -> bool:
        """Data problems (strict mode raises on them); the length filter is selection, not an error."""
        return self not in (SkipReason.TOO_SHORT, SkipReason.TOO_LONG)


@dataclass(frozen=True)
class SkippedItem:
    """One clip or sub-clip that was not loaded."""

    id: str
    """Clip id (``<id>#<start>#<end>`` for a segment sub-clip)."""
    reason: SkipReason
    """Why it was skipped."""
    path: Path
    """The file that caused it (features, text or joints file)."""
    detail: str = ""
    """Specifics, e.g. the shape found or the length against the limit."""


@dataclass
class LoadReport:
    """What a load kept and skipped, and why."""

    root: Path
    """Dataset directory."""
    split: str
    """Split name (or ``"<ids>"`` for an explicit id list)."""
    n_ids: int = 0
    """Ids requested (after removing duplicates)."""
    n_clips: int = 0
    """Whole clips kept."""
    n_subclips: int = 0
    """Segment sub-clips kept."""
    n_segment_only: int = 0
    """Clips that had only segment captions, so only their sub-clips could be kept (not an error)."""
    skipped: list[SkippedItem] = field(default_factory=list)
    """Every skipped item, in load order."""

    @property
    def counts(self) -> Counter:
        """Number of skipped items per :class:`SkipReason`."""
        return Counter(item.reason for item in self.skipped)

    @property
    def n_errors(self) -> int:
        """Skipped items that were data errors (not the length filter)."""
        return sum(1 for item in self.skipped if item.reason.is_error)

    def add(self, id_: str, reason: SkipReason, path: Path, detail: str = "") -> None:
        """Record one skipped item."""
        self.skipped.append(SkippedItem(id_, reason, Path(path), detail))

    def summary(self, max_examples: int = 3) -> str:
        """Human-readable multi-line summary: kept counts, then skipped counts per reason with examples."""
        lines = [
            f"{self.root} [{self.split}]: {self.n_ids} ids -> {self.n_clips} clips + {self.n_subclips} segment "
            f"sub-clips kept, {len(self.skipped)} skipped ({self.n_errors} data errors)"
        ]
        if self.n_segment_only:
            lines.append(f"  {self.n_segment_only} clips had only segment captions (whole clip not kept)")
        by_reason: dict[SkipReason, list[SkippedItem]] = {}
        for item in self.skipped:
            by_reason.setdefault(item.reason, []).append(item)
        for reason in SkipReason:
            items = by_reason.get(reason)
            if not items:
                continue
            lines.append(f"  {reason.value}: {len(items)}")
            for item in items[:max_examples]:
                detail = f" ({item.detail})" if item.detail else ""
                lines.append(f"    {item.id}: {item.path}{detail}")
            if len(items) > max_examples:
                lines.append(f"    ... and {len(items) - max_examples} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Clips and dataset
# --------------------------------------------------------------------------------------------


@dataclass
class MotionClip:
    """One training item: a clip, or a captioned segment of a clip."""

    id: str
    """Unique id: the source id for a whole clip, ``<source_id>#<start>#<end>`` for a segment."""
    source_id: str
    """Id of the file the motion came from."""
    features: np.ndarray
    """float32 ``[T, D]`` unnormalized features."""
    captions: list[Caption]
    """Captions of this clip (may be empty when loaded with ``require_text=False``)."""
    joints: np.ndarray | None = None
    """float32 ``[T, J, 3]`` joint positions, when requested."""
    start_frame: int = 0
    """First frame of this clip within the source clip."""

    def __repr__(self) -> str:
        # The default dataclass repr would print the whole arrays.
        joints = "" if self.joints is None else f", joints={tuple(self.joints.shape)}"
        return (
            f"MotionClip(id={self.id!r}, source_id={self.source_id!r}, features={tuple(self.features.shape)}, "
            f"captions={len(self.captions)}{joints}, start_frame={self.start_frame})"
        )

    @property
    def length(self) -> int:
        """Number of frames T."""
        return int(self.features.shape[0])

    @property
    def is_segment(self) -> bool:
        """True for a sub-clip cut out by a segment caption."""
        return self.id != self.source_id


def _segment_id(source_id: str, start: float, end: float) -> str:
    return f"{source_id}#{start!r}#{end!r}"


@dataclass
class HumanML3DDataset:
    """Clips of one split of a HumanML3D-layout directory, with normalization statistics."""

    root: Path
    """Dataset directory."""
    split: str
    """Split name."""
    spec: DatasetSpec
    """Dataset constants (feature size, joints, fps, chains)."""
    clips: list[MotionClip]
    """Loaded clips: each whole clip followed by its segment sub-clips, in split order."""
    mean: np.ndarray | None
    """float32 ``[D]`` feature mean (None when loaded with ``require_stats=False``)."""
    std: np.ndarray | None
    """float32 ``[D]`` feature std."""
    report: LoadReport
    """What was skipped and why."""
    fps: float = 20.0
    """Frame rate used to cut segments."""
    _index: dict[str, int] = field(init=False, repr=False, default_factory=dict)  # id -> position

    def __post_init__(self) -> None:
        self._index = {clip.id: i for i, clip in enumerate(self.clips)}

    def __repr__(self) -> str:
        return (
            f"HumanML3DDataset(root={str(self.root)!r}, split={self.split!r}, dataset={self.spec.name!r}, "
            f"clips={len(self.clips)}, fps={self.fps}, stats={'yes' if self.mean is not None else 'no'})"
        )

    @classmethod
    def load(cls, root: str | Path, split: str = "train", **kwargs) -> "HumanML3DDataset":
        """Same as :func:`load_humanml3d`."""
        return load_humanml3d(root, split, **kwargs)

    @property
    def joints_num(self) -> int:
        """Number of skeleton joints J."""
        return self.spec.joints_num

    @property
    def feature_dim(self) -> int:
        """Feature size D."""
        return self.spec.feature_dim

    @property
    def ids(self) -> list[str]:
        """Clip ids in order."""
        return [clip.id for clip in self.clips]

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[N]`` clip lengths in frames."""
        return np.array([clip.length for clip in self.clips], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[MotionClip]:
        return iter(self.clips)

    def __getitem__(self, key: int | str) -> MotionClip:
        """Clip by position, or by id."""
        if isinstance(key, str):
            return self.get(key)
        return self.clips[key]

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._index

    def get(self, clip_id: str) -> MotionClip:
        """Clip by id; ``KeyError`` naming the id when absent."""
        try:
            return self.clips[self._index[clip_id]]
        except KeyError:
            raise KeyError(f"no clip {clip_id!r} in {self.root} [{self.split}]") from None

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mean is None or self.std is None:
            raise RuntimeError(f"{self.root} was loaded without Mean/Std (require_stats=False); cannot normalize")
        return self.mean, self.std

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / std`` for ``[..., D]`` features (float32)."""
        mean, std = self._stats()
        features = np.asarray(features, dtype=np.float32)
        if features.shape[-1] != mean.shape[0]:
            raise ValueError(f"features of shape {features.shape} do not end in D={mean.shape[0]}")
        return (features - mean) / std

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        """``features * std + mean`` for ``[..., D]`` normalized features (float32)."""
        mean, std = self._stats()
        features = np.asarray(features, dtype=np.float32)
        if features.shape[-1] != mean.shape[0]:
            raise ValueError(f"features of shape {features.shape} do not end in D={mean.shape[0]}")
        return features * std + mean


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Skip(Exception):
    """Internal: an item is skipped (caught in the loop, never escapes)."""

    def __init__(self, reason: SkipReason, path: Path, detail: str = "") -> None:
        super().__init__(detail)
        self.reason, self.path, self.detail = reason, path, detail


def _load_npy(path: Path, missing: SkipReason, unreadable: SkipReason) -> np.ndarray:
    if not path.is_file():
        raise _Skip(missing, path)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # truncated, not .npy, or a pickled object array
        raise _Skip(unreadable, path, f"{type(exc).__name__}: {exc}") from None


def _read_caption_file(path: Path) -> list[Caption]:
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _Skip(SkipReason.UNPARSEABLE_TEXT, path, f"{type(exc).__name__}: {exc}") from None
    numbered = [(i + 1, line) for i, line in enumerate(raw.splitlines()) if line.strip()]
    if not numbered:
        raise _Skip(SkipReason.EMPTY_TEXT, path, "no caption lines")
    # One malformed line drops the clip (as T2M's try/except does): it usually means a corrupt file.
    try:
        return [parse_caption_line(line, source=f"{path}:{n}") for n, line in numbered]
    except ValueError as exc:
        raise _Skip(SkipReason.UNPARSEABLE_TEXT, path, str(exc)) from None


def _detect_feature_dim(motion_dir: Path, ids: Sequence[str]) -> int | None:
    # The first readable 2-d features file decides; reading only the header keeps it cheap.
    for clip_id in ids:
        path = motion_dir / f"{clip_id}.npy"
        if not path.is_file():
            continue
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            continue
        if arr.ndim == 2:
            return int(arr.shape[1])
    return None


def load_humanml3d(
    root: str | Path,
    split: str = "train",
    *,
    ids: Sequence[str] | None = None,
    dataset: str | None = None,
    fps: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    require_text: bool = True,
    joints: Literal["file", "features"] | None = None,
    require_stats: bool = True,
    stats_dir: str | Path | None = None,
    strict: bool = False,
) -> HumanML3DDataset:
    """Load one split of a HumanML3D-layout directory (HumanML3D or KIT-ML).

    Args:
        root: dataset directory.
        split: split file name without ``.txt`` (``train``, ``val``, ``test``, ``train_val``, ``all``).
        ids: load these ids instead of reading the split file (``split`` is then only a label).
        dataset: ``"humanml3d"`` or ``"kit"``; default: detected from the first features file's size
            (263 or 251), falling back to ``Mean.npy``.
        fps: frame rate for cutting segment captions; default the dataset's (20 / 12.5).
        min_length: shortest clip kept, in frames (default 40 HumanML3D, 24 KIT-ML).
        max_length: longest clip kept, in frames, inclusive (default 196; T2M's set is
            ``max_length=T2M_MAX_LENGTH``).
        require_text: when False, a clip without a text file is kept with no captions (for
            motion-only training such as a VQ-VAE) instead of being skipped.
        joints: ``"file"`` loads ``new_joints/<id>.npy`` (sliced like the features); ``"features"``
            computes them with ``motiongpt.motion.features.features_to_joints``; None: no joints.
        require_stats: when False, missing ``Mean.npy``/``Std.npy`` leave ``mean``/``std`` None
            (files that are present are still loaded and validated).
        stats_dir: where ``Mean.npy``/``Std.npy`` are (default ``root``).
        strict: raise ``ValueError`` naming the file and reason at the first data error (the
            length filter is selection, not an error, and never raises).

    Returns:
        The dataset; ``dataset.report`` lists every skipped item.

    Raises:
        FileNotFoundError: missing split file, features folder, or (with ``require_stats``) stats.
        ValueError: Mean/Std shape does not match the features, or a data error under ``strict``.
    """
    root = Path(root)
    motion_dir, text_dir, joint_dir = root / "new_joint_vecs", root / "texts", root / "new_joints"
    if not motion_dir.is_dir():
        raise FileNotFoundError(f"features folder {motion_dir} not found ({root} is not in HumanML3D layout)")
    raw_ids = list(ids) if ids is not None else read_split(root, split)
    label = split if ids is None else "<ids>"

    # Dataset constants: explicit name, else the features' size, else Mean.npy's.
    stats_root = Path(stats_dir) if stats_dir is not None else root
    if dataset is not None:
        spec = spec_for(dataset)
    else:
        dim = _detect_feature_dim(motion_dir, raw_ids)
        if dim is None and (stats_root / "Mean.npy").is_file():
            dim = int(np.load(stats_root / "Mean.npy", mmap_mode="r").shape[0])
        spec = spec_for(None, dim if dim is not None else HUMANML3D.feature_dim)
    fps = float(fps) if fps is not None else spec.fps
    min_len = spec.min_length if min_length is None else int(min_length)
    max_len = spec.max_length if max_length is None else int(max_length)
    if min_len > max_len:
        raise ValueError(f"min_length {min_len} > max_length {max_len}")

    mean = std = None
    if require_stats or ((stats_root / "Mean.npy").is_file() and (stats_root / "Std.npy").is_file()):
        mean, std = load_stats(stats_root, spec.feature_dim)

    features_to_joints = None
    if joints == "features":
        from motiongpt.motion.features import features_to_joints  # optional heavy import, only when asked
    elif joints not in (None, "file"):
        raise ValueError(f"joints must be None, 'file' or 'features', not {joints!r}")

    report = LoadReport(root=root, split=label)
    clips: list[MotionClip] = []

    def skip(clip_id: str, reason: SkipReason, path: Path, detail: str = "") -> None:
        if strict and reason.is_error:
            raise ValueError(f"{path}: {reason.value}" + (f" ({detail})" if detail else "") + f" [id {clip_id}]")
        report.add(clip_id, reason, path, detail)

    def length_ok(clip_id: str, n: int, path: Path) -> bool:
        if n < min_len:
            skip(clip_id, SkipReason.TOO_SHORT, path, f"{n} < min_length {min_len} frames")
            return False
        if n > max_len:
            skip(clip_id, SkipReason.TOO_LONG, path, f"{n} > max_length {max_len} frames")
            return False
        return True

    seen: set[str] = set()
    for clip_id in raw_ids:
        feat_path = motion_dir / f"{clip_id}.npy"
        if clip_id in seen:
            skip(clip_id, SkipReason.DUPLICATE_ID, root / f"{split}.txt" if ids is None else root, "listed more than once")
            continue
        seen.add(clip_id)
        report.n_ids += 1
        try:
            feats = _load_npy(feat_path, SkipReason.MISSING_FEATURES, SkipReason.UNREADABLE_FEATURES)
            if feats.ndim != 2 or feats.shape[1] != spec.feature_dim or not np.issubdtype(feats.dtype, np.number):
                raise _Skip(
                    SkipReason.WRONG_FEATURE_SIZE, feat_path,
                    f"shape {feats.shape} dtype {feats.dtype}, expected [T, {spec.feature_dim}]",
                )
            feats = feats.astype(np.float32, copy=False)
            if not np.isfinite(feats).all():
                bad_rows = np.flatnonzero(~np.isfinite(feats).all(axis=1))
                raise _Skip(SkipReason.NON_FINITE, feat_path, f"{bad_rows.size} rows, first {int(bad_rows[0])}")
            # T2M filters the clip on length before reading its text: a clip outside the range is
            # dropped together with its segment captions.
            if not length_ok(clip_id, feats.shape[0], feat_path):
                continue

            text_path = text_dir / f"{clip_id}.txt"
            captions: list[Caption] = []
            if text_path.is_file():
                captions = _read_caption_file(text_path)
            elif require_text:
                raise _Skip(SkipReason.MISSING_TEXT, text_path)

            jts = None
            if joints == "file":
                joint_path = joint_dir / f"{clip_id}.npy"
                jts = _load_npy(joint_path, SkipReason.MISSING_JOINTS, SkipReason.BAD_JOINTS)
                if jts.shape != (feats.shape[0], spec.joints_num, 3):
                    raise _Skip(
                        SkipReason.BAD_JOINTS, joint_path,
                        f"shape {jts.shape}, expected ({feats.shape[0]}, {spec.joints_num}, 3)",
                    )
                jts = jts.astype(np.float32, copy=False)
            elif features_to_joints is not None:
                jts = np.asarray(features_to_joints(feats), dtype=np.float32)
        except _Skip as exc:
            skipped = exc
        else:
            skipped = None
        if skipped is not None:
            # Outside the except block so a strict-mode error does not chain the internal _Skip.
            skip(clip_id, skipped.reason, skipped.path, skipped.detail)
            continue

        whole = [c for c in captions if c.is_whole_clip]
        # Segment captions grouped by (start, end): one sub-clip per distinct segment.
        segments: dict[tuple[float, float], list[Caption]] = {}
        for c in captions:
            if not c.is_whole_clip:
                segments.setdefault((c.start, c.end), []).append(c)

        if whole or not captions:
            clips.append(MotionClip(clip_id, clip_id, feats, whole, jts))
            report.n_clips += 1
        else:
            report.n_segment_only += 1
        for (start, end), caps in segments.items():
            sub_id = _segment_id(clip_id, start, end)
            lo, hi = int(start * fps), int(end * fps)
            sub = feats[lo:hi]
            if not length_ok(sub_id, sub.shape[0], text_dir / f"{clip_id}.txt"):
                continue
            clips.append(MotionClip(sub_id, clip_id, sub, caps, None if jts is None else jts[lo:hi], start_frame=lo))
            report.n_subclips += 1

    return HumanML3DDataset(
        root=root, split=label, spec=spec, clips=clips, mean=mean, std=std, report=report, fps=fps
    )

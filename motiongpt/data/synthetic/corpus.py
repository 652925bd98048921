"""Building the synthetic HumanML3D-layout corpus: clip plans, splits, features, files.

Layout written (``out_dir``)::

    new_joints/<id>.npy      float32 [T, 22, 3]  = features_to_joints(new_joint_vecs)
    new_joint_vecs/<id>.npy  float32 [T, 263]    joints_to_features of the generated motion
    texts/<id>.txt           3-5 captions, ``caption#word/POS ...#0.0#0.0``
    labels/<id>.json         structured ground truth (see labels.py)
    train.txt val.txt test.txt train_val.txt all.txt
    Mean.npy Std.npy         from the train split (compute_mean_std)
    meta.json                generator version, seed, families, bands, split rule, counts

Determinism: clip ``i`` draws everything from ``SeedSequence([seed, 0, i])`` (motion) and
``SeedSequence([seed, 2, i])`` (captions); roles come from ``SeedSequence([seed, 1, block])``.
Clips are processed in fixed chunks of :data:`CHUNK` consecutive indices whatever the worker
count, so the bytes written depend only on ``(seed, num_clips)``.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motiongpt.data.synthetic.actions import FAMILIES, LOCOMOTION, build_pad, build_segment, sample_params
from motiongpt.data.synthetic.body import PoseTargets, solve_body
from motiongpt.data.synthetic.captions import make_captions
from motiongpt.data.synthetic.compose import FPS, Part, Style, Timeline, render_targets
from motiongpt.data.synthetic import labels as L

__all__ = [
    "GENERATOR_VERSION",
    "MIN_LENGTH",
    "MAX_LENGTH",
    "CHUNK",
    "FAMILY_WEIGHTS",
    "SEGMENT_COUNT_PROBS",
    "RESERVED_TEST_PAIRS",
    "SynthClip",
    "clip_id",
    "split_roles",
    "has_reserved_pair",
    "sample_families",
    "sample_style",
    "synthesize_clip",
    "synthesize_clips",
    "render_plan",
    "build_synthetic_dataset",
]

GENERATOR_VERSION = "1.0.0"
MIN_LENGTH, MAX_LENGTH = 40, 196  # stored frames (= feature rows), HumanML3D's text-to-motion range
CHUNK = 25  # clips per work unit (fixed, so outputs do not depend on the worker count)
MAX_SECONDS = (MAX_LENGTH + 1) / FPS  # generated frames are stored frames + 1

# Relative frequency of each family in a segment slot (walking is the most common, as in HumanML3D).
FAMILY_WEIGHTS: dict[str, float] = {
    "walk": 1.6, "run": 1.0, "walk_backward": 0.8, "sidestep": 0.8, "turn": 1.2, "spin": 0.6, "jump": 1.0,
    "squat": 0.8, "kick": 0.9, "wave": 1.0, "raise_arm": 0.9, "clap": 0.8, "idle": 0.4,
}
SEGMENT_COUNT_PROBS: dict[int, float] = {1: 0.35, 2: 0.4, 3: 0.25}

# Ordered family pairs reserved for the test split: a clip goes to test iff two consecutive
# segments form one of these pairs, and train/val clips never contain one. The first 13 form one
# cycle through all families (each family opens one reserved pair and closes another), plus three.
RESERVED_TEST_PAIRS: tuple[tuple[str, str], ...] = (
    ("walk", "jump"), ("jump", "clap"), ("clap", "turn"), ("turn", "wave"), ("wave", "walk_backward"),
    ("walk_backward", "spin"), ("spin", "raise_arm"), ("raise_arm", "kick"), ("kick", "sidestep"),
    ("sidestep", "squat"), ("squat", "run"), ("run", "idle"), ("idle", "walk"),
    ("run", "jump"), ("wave", "clap"), ("turn", "squat"),
)
_RESERVED = frozenset(RESERVED_TEST_PAIRS)
_ROLE_BLOCK = ("train",) * 8 + ("val", "test")  # shuffled per block of 10 clips


def clip_id(index: int) -> str:
    """Id of clip ``index`` (``S000123``)."""
    return f"S{index:06d}"


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, int(index)]))


def split_roles(seed: int, num_clips: int) -> list[str]:
    """Role of every clip: in each block of 10 consecutive indices, 8 train, 1 val, 1 test (shuffled).

    Prefix-stable: the roles of the first ``n`` clips do not depend on ``num_clips``.
    """
    roles: list[str] = []
    for block in range(math.ceil(num_clips / 10)):
        perm = _rng(seed, 1, block).permutation(len(_ROLE_BLOCK))
        roles.extend(_ROLE_BLOCK[i] for i in perm)
    return roles[:num_clips]


def has_reserved_pair(families: tuple[str, ...] | list[str]) -> bool:
    """True when two consecutive families form a reserved (test-only) pair."""
    return any((a, b) in _RESERVED for a, b in zip(families[:-1], families[1:]))


def _draw_family(rng: np.random.Generator, exclude: str | None) -> str:
    names = [f for f in FAMILIES if f != exclude]
    w = np.array([FAMILY_WEIGHTS[f] for f in names])
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_families(rng: np.random.Generator, role: str) -> tuple[str, ...]:
    """The ordered family sequence of a clip.

    ``test``: a reserved pair, extended to a triple half of the time; ``train``/``val``: 1-3
    families (consecutive ones differ) containing no reserved pair.
    """
    if role == "test":
        pair = RESERVED_TEST_PAIRS[int(rng.integers(len(RESERVED_TEST_PAIRS)))]
        if rng.uniform() < 0.5:
            return pair
        if rng.uniform() < 0.5:
            return (_draw_family(rng, pair[0]),) + pair
        return pair + (_draw_family(rng, pair[1]),)
    counts = list(SEGMENT_COUNT_PROBS)
    probs = np.array([SEGMENT_COUNT_PROBS[c] for c in counts])
    k = counts[int(rng.choice(len(counts), p=probs / probs.sum()))]
    for _ in range(1000):
        fams: list[str] = []
        for _i in range(k):
            fams.append(_draw_family(rng, fams[-1] if fams else None))
        if not has_reserved_pair(fams):
            return tuple(fams)
    raise RuntimeError("could not draw a family sequence without reserved pairs")  # pragma: no cover


def sample_style(rng: np.random.Generator) -> Style:
    """Body-level style of a clip, within physically plausible ranges."""
    u = rng.uniform
    return Style(
        stance_w=u(0.085, 0.125),
        toe_out=u(0.05, 0.2),
        stand_ratio=u(0.975, 0.99),
        lean=u(-0.02, 0.07),
        head_pitch=u(-0.05, 0.12),
        arm_frac=u(0.975, 0.99),
        arm_fwd=u(0.02, 0.14),
        arm_out=u(0.015, 0.05),
        cadence=u(0.93, 1.07),
        arm_swing=u(0.7, 1.3),
        sway=u(0.012, 0.035),
        tempo=u(0.85, 1.2),
        clearance=u(0.85, 1.2),
    )


@dataclass
class SynthClip:
    """One generated clip before feature extraction."""

    index: int
    """Clip index (its id is ``clip_id(index)``)."""
    role: str
    """``train``, ``val`` or ``test``."""
    families: tuple[str, ...]
    """Ordered action families."""
    parts: list[Part]
    """Timeline parts (segments and pads) with parameters, frames and events."""
    targets: PoseTargets
    """Body-solver inputs, ``T`` generated frames."""


def _build_timeline(
    rng: np.random.Generator, style: Style, families: tuple[str, ...], overrides: list[dict | None] | None = None
) -> Timeline:
    """Lay out pads and segments; too long plans are redrawn with a shrinking time budget and
    short ones get a longer standing tail, so that ``MIN_LENGTH + 1 <= T <= MAX_LENGTH + 1``."""
    overrides = overrides or [None] * len(families)
    for attempt in range(20):
        shrink = 0.88**attempt
        lead, tail = rng.uniform(0.15, 0.6), rng.uniform(0.15, 0.6)
        tl = Timeline(style, x0=rng.uniform(-1, 1), z0=rng.uniform(-1, 1), psi0=rng.uniform(-np.pi, np.pi))
        build_pad(tl, lead, rng)
        for k, fam in enumerate(families):
            remaining = (MAX_SECONDS - tail) * shrink - tl.t / FPS
            budget = max(1.0, remaining / (len(families) - k))
            params = sample_params(fam, rng, style, budget)
            params.update(overrides[k] or {})
            build_segment(tl, fam, params, rng)
        short = (MIN_LENGTH + 1) - (tl.t + round(tail * FPS))
        build_pad(tl, tail + max(0, short) / FPS, rng)
        if tl.t <= MAX_LENGTH + 1:
            return tl
    raise RuntimeError(f"could not fit {families} into {MAX_LENGTH + 1} frames")  # pragma: no cover


def synthesize_clip(seed: int, index: int, role: str) -> SynthClip:
    """Plan and animate clip ``index`` (deterministic in ``(seed, index, role)``).

    The generated clip has ``T`` frames with ``MIN_LENGTH + 1 <= T <= MAX_LENGTH + 1`` (one more
    than the stored length, since features drop the last frame).
    """
    rng = _rng(seed, 0, index)
    style = sample_style(rng)
    families = sample_families(rng, role)
    tl = _build_timeline(rng, style, families)
    rendered = render_targets(tl)
    return SynthClip(index=index, role=role, families=families, parts=tl.parts, targets=rendered.targets)


def render_plan(
    plan: list[tuple[str, dict | None]] | list[str], seed: int = 0, clip_name: str = "P000000"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render a chosen composition through exactly the corpus pipeline (for tests and checkers).

    Args:
        plan: families in order, each optionally with parameter overrides, e.g.
            ``[("walk", {"speed_band": "fast", "speed_mps": 1.7, "distance_m": 3.0}), ("wave", {"side": "left"})]``.
            Overrides replace sampled values; keep them consistent (a speed inside its band).
        seed: seeds the style and the unspecified parameters.
        clip_name: id written into the label.

    Returns:
        ``(features [T, 263], joints [T, 22, 3], label)``, float32 arrays as stored on disk.
    """
    from motiongpt.motion.features import features_to_joints_batch, joints_to_features_batch

    items = [(p, None) if isinstance(p, str) else (p[0], p[1]) for p in plan]
    rng = _rng(seed, 3, 0)
    style = sample_style(rng)
    tl = _build_timeline(rng, style, tuple(f for f, _ in items), [o for _, o in items])
    joints = solve_body(render_targets(tl).targets).joints
    feats = joints_to_features_batch([joints])[0]
    stored = features_to_joints_batch([feats])[0]
    return feats, stored, L.build_label(clip_name, tl.parts, stored, FPS)


def _concat_targets(items: list[PoseTargets]) -> PoseTargets:
    return PoseTargets(**{f: np.concatenate([getattr(t, f) for t in items], axis=0) for f in PoseTargets.__dataclass_fields__})


def synthesize_clips(seed: int, indices: list[int], roles: list[str]) -> tuple[list[SynthClip], list[np.ndarray]]:
    """Animate several clips; the body is solved once for all their frames (amortizes numpy overhead).

    Returns the clips and their generated joints (``(T_i, 22, 3)`` float64, world coordinates).
    """
    clips = [synthesize_clip(seed, i, r) for i, r in zip(indices, roles)]
    sol = solve_body(_concat_targets([c.targets for c in clips]))
    bounds = np.cumsum([0] + [c.targets.root.shape[0] for c in clips])
    return clips, [sol.joints[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def _process_chunk(args: tuple[int, list[int], list[str], str]) -> list[dict]:
    """Worker: animate, featurize, label, caption and write one chunk of clips."""
    from motiongpt.data.humanml3d import format_caption_line
    from motiongpt.motion.features import features_to_joints_batch, joints_to_features_batch

    seed, indices, roles, out = args
    out_dir = Path(out)
    clips, joints = synthesize_clips(seed, indices, roles)
    ids = [clip_id(c.index) for c in clips]
    feats = joints_to_features_batch(joints, names=ids)
    stored = features_to_joints_batch(feats, names=ids)
    records = []
    for clip, cid, f, j in zip(clips, ids, feats, stored):
        label = L.build_label(cid, clip.parts, j, FPS)
        crng = _rng(seed, 2, clip.index)
        n_cap = int(crng.integers(3, 6))
        caps = make_captions(label["segments"], crng, n_cap)
        lines = [format_caption_line(text, tokens, 0.0, 0.0) for text, tokens in caps]
        _save_npy(out_dir / "new_joint_vecs" / f"{cid}.npy", f.astype(np.float32))
        _save_npy(out_dir / "new_joints" / f"{cid}.npy", j.astype(np.float32))
        (out_dir / "texts" / f"{cid}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (out_dir / "labels" / f"{cid}.json").write_text(json.dumps(label, indent=1) + "\n", encoding="utf-8")
        records.append({"id": cid, "role": clip.role, "families": list(clip.families), "length": int(f.shape[0])})
    return records


def _meta(seed: int, num_clips: int, counts: dict[str, int]) -> dict:
    return {
        "generator": "motiongpt.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "label_version": L.LABEL_VERSION,
        "seed": int(seed),
        "num_clips": int(num_clips),
        "fps": FPS,
        "feature_dim": 263,
        "length_range_frames": [MIN_LENGTH, MAX_LENGTH],
        "families": list(FAMILIES),
        "locomotion_families": list(LOCOMOTION),
        "family_weights": FAMILY_WEIGHTS,
        "segment_count_probs": {str(k): v for k, v in SEGMENT_COUNT_PROBS.items()},
        "param_names": {k: list(v) for k, v in L.PARAM_NAMES.items()},
        "bands": {
            "speed_sampling": L.SPEED_SAMPLING,
            "speed": {f: {b: [lo, None if math.isinf(hi) else hi] for b, (lo, hi) in d.items()} for f, d in L.SPEED_BANDS.items()},
            "distance": {b: [lo, None if math.isinf(hi) else hi] for b, (lo, hi) in L.DISTANCE_BANDS.items()},
            "turn_angle": {str(k): list(v) for k, v in L.TURN_ANGLE_BANDS.items()},
            "spin_angle": list(L.SPIN_ANGLE_BAND),
            "jump_height": {b: [lo, None if math.isinf(hi) else hi] for b, (lo, hi) in L.JUMP_HEIGHT_BANDS.items()},
            "kick_height": {b: [lo, None if math.isinf(hi) else hi] for b, (lo, hi) in L.KICK_HEIGHT_BANDS.items()},
        },
        "conventions": {
            "up": "+y", "units": "metres", "initial_facing": "+z", "left": "+x at frame 0",
            "turn_sign": "positive angle = left = counter-clockwise seen from above",
            "segment_frames": "start inclusive, end exclusive, indices into new_joints / new_joint_vecs",
        },
        "split_rule": {
            "roles": "each block of 10 consecutive clip indices holds 8 train, 1 val, 1 test (order drawn from the seed)",
            "test": "compositions containing one of reserved_test_pairs as two consecutive segments "
                    "(the pair alone, or extended to a triple); never seen in train or val",
            "train_val": "1-3 segments drawn by family_weights with no reserved pair; val is a held-out "
                         "random slice of this same distribution; every family appears on its own in train",
            "reserved_test_pairs": [list(p) for p in RESERVED_TEST_PAIRS],
        },
        "counts": counts,
    }


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not overwrite:
            raise FileExistsError(
                f"{out_dir} is not empty; refusing to overwrite it (pass overwrite=True / --overwrite to replace it)"
            )


def build_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_clips: int,
    seed: int = 0,
    workers: int | None = None,
    *,
    overwrite: bool = False,
) -> dict:
    """Generate the synthetic corpus into ``out_dir`` (HumanML3D layout plus labels and meta).

    The directory is built under a temporary name next to ``out_dir`` and renamed into place when
    complete, so a crash never leaves a half-written corpus.

    Args:
        out_dir: target directory; must be absent or empty unless ``overwrite``.
        num_clips: number of clips (>= 10 so every split is non-empty).
        seed: base seed; the output bytes depend only on ``(seed, num_clips)``.
        workers: processes (default ``min(2, cpu count)``); 1 runs in this process.
        overwrite: replace a non-empty ``out_dir``.

    Returns:
        Summary: ``out_dir``, ``num_clips``, per-split ``counts``, ``family_counts``, frame
        statistics and ``seconds``.

    Raises:
        FileExistsError: ``out_dir`` is non-empty and ``overwrite`` is False.
        ValueError: ``num_clips < 10``.
    """
    from motiongpt.motion.stats import compute_mean_std
    from motiongpt.utils.atomic import atomic_directory

    t_start = time.perf_counter()
    if num_clips < 10:
        raise ValueError(f"num_clips must be at least 10 (one block of the 8/1/1 split), got {num_clips}")
    out_dir = Path(out_dir)
    _check_target(out_dir, overwrite)
    workers = min(2, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    roles = split_roles(seed, num_clips)
    with atomic_directory(out_dir) as tmp:
        for sub in ("new_joints", "new_joint_vecs", "texts", "labels"):
            (tmp / sub).mkdir()
        jobs = [
            (int(seed), list(range(a, min(a + CHUNK, num_clips))), roles[a : a + CHUNK], str(tmp))
            for a in range(0, num_clips, CHUNK)
        ]
        if workers == 1 or len(jobs) == 1:
            results = [_process_chunk(j) for j in jobs]
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(_process_chunk, jobs))
        records = [r for chunk in results for r in chunk]
        split_ids = {s: sorted(r["id"] for r in records if r["role"] == s) for s in ("train", "val", "test")}
        split_ids["train_val"] = sorted(split_ids["train"] + split_ids["val"])
        split_ids["all"] = sorted(r["id"] for r in records)
        for name, ids in split_ids.items():
            (tmp / f"{name}.txt").write_text("".join(i + "\n" for i in ids), encoding="utf-8")
        train_feats = [np.load(tmp / "new_joint_vecs" / f"{i}.npy") for i in split_ids["train"]]
        mean, std = compute_mean_std(train_feats, names=split_ids["train"], zero_std_fill=1.0)
        _save_npy(tmp / "Mean.npy", mean)
        _save_npy(tmp / "Std.npy", std)
        counts = {k: len(v) for k, v in split_ids.items()}
        (tmp / "meta.json").write_text(json.dumps(_meta(seed, num_clips, counts), indent=1) + "\n", encoding="utf-8")
    lengths = np.array([r["length"] for r in records])
    family_counts: dict[str, int] = {f: 0 for f in FAMILIES}
    for r in records:
        for f in r["families"]:
            family_counts[f] += 1
    return {
        "out_dir": str(out_dir),
        "num_clips": num_clips,
        "seed": int(seed),
        "workers": workers,
        "counts": counts,
        "family_counts": family_counts,
        "frames": {"total": int(lengths.sum()), "min": int(lengths.min()), "max": int(lengths.max()), "mean": float(lengths.mean())},
        "seconds": round(time.perf_counter() - t_start, 2),
    }


"""The evaluation driver behind ``eval.py``: generate with a fine-tuned checkpoint, score as the field does.

::

    from motiongpt.eval.run import EvalConfig, evaluate, write_metrics

    cfg = EvalConfig(lora_path="outputs/demo/llm_lora", data_root="outputs/demo/dataset",
                     evaluator="outputs/demo/evaluator", tasks=["t2m", "t2m_keys"], repeats=3)
    result = evaluate(cfg, cache_dir="outputs/eval/cache")   # a dict, also JSON-ready
    write_metrics(result, "outputs/eval")                     # metrics.json + metrics.md

What one repeat ``r`` does (the papers use 20 repeats and report mean and 95 % half-width):

* draws one caption per test motion with ``numpy.random.default_rng(seed + r)``, the draw that
  :func:`motiongpt.eval.train.validate_evaluator` (hence
  :func:`motiongpt.eval.protocol.real_split_metrics`) makes, and ranks in R-precision batches
  shuffled with ``seed + 1000 + r`` as it does: the **Real** row is exactly that function's number
  on the same clips;
* scores the **VQ-VAE reconstruction** of every test motion (its ground-truth codes decoded) against
  the same captions: the ceiling the tokenizer leaves to any model that writes its codes;
* generates with sampling seed ``seed + r`` (sample ``i`` of task stream ``s`` draws with
  ``SeedSequence([seed + r, s, i])``, so a sample depends on its repeat and position only, never
  on its batch) for each task and scores it:

  - ``t2m``: FID, R-precision top-1/2/3, MM-Dist and Diversity through the evaluator
    (:func:`~motiongpt.eval.protocol.t2m_metrics`), MultiModality on ``mm_texts`` texts x
    ``mm_gens`` generations, and, on the synthetic corpus (a ``labels/`` folder), semantic accuracy
    overall and per action family (:func:`~motiongpt.eval.semantic.semantic_accuracy`);
  - caption files (``captions``, e.g. rewordings outside the caption templates from
    :mod:`motiongpt.data.synthetic.rewording`): ``t2m`` once more for the clips each file lists,
    with the file's caption instead of the drawn one (same seeds: each sample pairs with the t2m
    sample of its clip), scored with the semantic checks every caption of the clip states, beside
    the t2m samples of the same clips under the same checks;
  - key-token tasks (``t2m_init``, ``t2m_last``, ``t2m_keys``, ``t2m_keys_pos``): key tokens are
    drawn from the ground-truth codes of the test motion (its VQ encoding) at random positions, as
    training records draw them (``t2m_keys``: 3-5 codes in order; ``t2m_keys_pos``: 1-5 codes at
    their positions, with the real length). Measured: whether the tokens are placed
    (:func:`~motiongpt.eval.metrics.key_token_satisfaction`; with constrained decoding this is 1
    by construction, so ``key_free_pass`` decodes the same prompts once more *without*
    constraints and reports the model's own placement as ``free_pair_rate``), and the distance in
    mm between the decoded poses at the placed keys and the real poses where the codes came from
    (pelvis over the origin and body turned to face +z first, so the number is about the pose, not
    about where the body stands; the code at position ``p`` is compared at frame ``4p + 2``, the
    middle of its 4 frames). ``vq_recon_key_pose_mm``, the same distance for the VQ-VAE
    reconstruction, is the floor the decoder leaves;
  - ``m2t``: captions of the ground-truth codes scored with BLEU@1/@4, ROUGE-L, CIDEr against all
    captions of the motion (:func:`~motiongpt.eval.text_metrics.text_metrics`), and R-precision /
    MM-Dist of the generated captions against the real motions through the evaluator;
  - ``pred`` (the first ``pred_context`` of the codes given) and ``inbetween`` (the first and last
    ``inbetween_context`` given), both with the real length: ADE / FDE in metres over the generated
    frames (:func:`~motiongpt.eval.metrics.ade_fde`), FID and Diversity of the whole motions.

Resumable: with a ``cache_dir``, the generations of each repeat and task are written there
(``<task>/repeat_000.json``: requests, seeds, codes, captions; atomic writes) and a later call
reuses every finished one, so an interrupted run restarts where it stopped, and more repeats only
add the missing ones. ``cache.json`` holds the fingerprint of everything the generations depend
on (checkpoint and VQ-VAE files, data, tasks, sampling, sizes); a different fingerprint is an error
naming the differing fields (or, with ``on_mismatch="replace"``, the old cache is discarded).
Metrics are always recomputed from the generations (seconds), so a new evaluator needs no new
generation. :func:`evaluate` writes nothing else: no checkpoint, no metrics file
(:func:`write_metrics` does, for the CLI).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from motiongpt.generate.compose import RESERVE_CODES
from motiongpt.utils.atomic import atomic_write_text, sha256_file

__all__ = [
    "DATANAMES",
    "EVAL_TASKS",
    "KEY_TASKS",
    "CacheMismatchError",
    "EvalConfig",
    "canonical_poses",
    "evaluate",
    "format_markdown",
    "write_metrics",
]

log = logging.getLogger(__name__)

EVAL_TASKS = ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "m2t", "pred", "inbetween")
"""Tasks :func:`evaluate` can score."""
KEY_TASKS = ("t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos")
"""Text-to-motion tasks with key tokens."""
_KEY_MODES = {"t2m_init": "position", "t2m_last": "position", "t2m_keys": "ordered", "t2m_keys_pos": "position"}
DATANAMES = {"t2m": ("humanml3d", 263), "kit": ("kit", 251)}
"""MotionGPT-LoRA's ``--dataname`` values: dataset spec name and feature size."""
# Sampling-seed streams: one per task (the free pass shares its task's seeds, so the two passes
# differ by the constraints only) and one for MultiModality.
_STREAMS = {task: k + 1 for k, task in enumerate(EVAL_TASKS)} | {"mm": 100, "keys": 200}
_UNIT = 4  # frames per code
_RP_SEED_OFFSET = 1000  # R-precision shuffles use seed + 1000 + r, as validate_evaluator
_CACHE_FORMAT = "motiongpt-eval-cache/1"
_RESULT_FORMAT = "motiongpt-eval/1"
_FINGERPRINT_HASH_LIMIT = 256 << 20  # files above this are fingerprinted by size and mtime, not hashed
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".yaml", ".model")
_VOLATILE = ("train_summary.json", "trainer_state.json")
# face joints (right hip, left hip, right shoulder, left shoulder), as HumanML3D's canonicalization
_FACE_JOINTS = {22: (2, 1, 17, 16), 21: (11, 16, 5, 8)}


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    """What to evaluate and how (``eval.py``'s options)."""

    lora_path: str = ""
    """Fine-tuning output directory (``finetune_motion.py --out_dir``): model, tokenizer, motion
    format and the VQ-VAE it recorded."""
    data_root: str = ""
    """Dataset in the HumanML3D layout (HumanML3D, KIT-ML or the synthetic corpus)."""
    evaluator: str | None = None
    """Text-motion evaluator directory (``scripts/train_evaluator.py`` output). None: no FID /
    R-precision / MM-Dist / Diversity / MultiModality (the other metrics still run)."""
    vq_dir: str | None = None
    """VQ-VAE directory (MotionGPT-LoRA's ``--vqvae_pth``); None: the one the run recorded."""
    dataname: str | None = None
    """``t2m`` (HumanML3D, 263-d) or ``kit`` (KIT-ML, 251-d): the feature size of the data and
    the VQ-VAE is checked against it; None: detected from the data."""
    tasks: list[str] = field(default_factory=lambda: ["t2m", "t2m_keys", "m2t", "pred", "inbetween"])
    """Tasks to score (any of :data:`EVAL_TASKS`)."""
    split: str = "test"
    """Split whose captioned motions are used (40-196 frames, as T2M)."""
    repeats: int = 20
    """Repeats of the protocol (each with fresh generations and a fresh caption draw)."""
    seed: int = 0
    """Base seed: repeat ``r`` uses ``seed + r``."""
    max_texts: int | None = None
    """Use only the first N motions of the split (quick runs); None: all."""
    key_texts: int | None = None
    """Key-token tasks use only the first N of those motions; None: all of them."""
    mm_texts: int = 100
    """MultiModality: texts per repeat (drawn at random among the motions; 0: off)."""
    mm_gens: int = 10
    """MultiModality: generations per text."""
    mm_times: int = 10
    """MultiModality: pairs of generations per text (T2M's ``mm_num_times``; capped at ``mm_gens``)."""
    gt_length: bool = False
    """Request the real motion's length for ``t2m`` / ``t2m_init`` / ``t2m_last`` / ``t2m_keys``
    (default: the model chooses it). ``t2m_keys_pos``, ``pred`` and ``inbetween`` always use it."""
    pred_context: float = 0.35
    """``pred``: fraction of the real codes given as the prefix (at least 2, at least 1 left)."""
    inbetween_context: float = 0.25
    """``inbetween``: fraction of the real codes given at the start, and again at the end (at least
    1 each, at least 1 left between)."""
    constrained: bool = True
    """Decode under the constraints (well-formed spans, exact lengths, keys in place)."""
    key_free_pass: bool = True
    """Key-token tasks: also decode without constraints and report the model's own key placement
    (``free_pair_rate``): with constraints, placement is 1 by construction."""
    temperature: float = 0.8
    """Sampling temperature (0: greedy)."""
    top_k: int = 50
    """Top-k sampling (0: off)."""
    top_p: float = 1.0
    """Nucleus sampling (1: off)."""
    num_beams: int = 1
    """Beam search width (> 1 needs temperature 0)."""
    guidance_scale: float = 1.0
    """Classifier-free guidance scale of the text-conditioned motion tasks (1: off; the model must
    have been trained with unconditional records, ``uncond_prob``). m2t / pred / inbetween are never
    guided."""
    compose: bool = False
    """Text-to-motion (``t2m`` and MultiModality): write each caption clause by clause
    (:func:`motiongpt.generate.compose.generate_composed`; the model must have been trained with
    ``t2m_next`` records). Needs ``gt_length`` off: each clause's length is the model's choice."""
    compose_context: int | None = None
    """With ``compose``: codes of the motion so far given with each later clause (0: none, each
    clause from its text alone); None: what the run was trained with."""
    compose_reserve: int = RESERVE_CODES
    """With ``compose``: codes of the budget kept for each clause after the one being written
    (:func:`motiongpt.generate.compose.clause_room`; the default is
    :data:`~motiongpt.generate.compose.RESERVE_CODES`)."""
    candidates: int = 1
    """Text-to-motion tasks: samples drawn per motion, the one the model itself scores highest kept
    (1: off; :mod:`motiongpt.generate.rerank`; composed: per clause). Costs ``candidates`` times
    the generation."""
    rerank_uncond_weight: float = 0.25
    """With ``candidates`` > 1: weight of the unconditional log-likelihood in the score (0: the
    likelihood alone; 1: mutual information with the text)."""
    max_motion_tokens: int | None = None
    """Longest motion (codes) when the model chooses the length; None: the run's instruction data, else 49."""
    max_text_tokens: int = 48
    """Longest ``m2t`` caption in tokens."""
    batch_size: int = 32
    """Generation batch size (samples do not depend on it)."""
    r_precision_batch: int = 32
    """R-precision batch (32 in the protocol); capped at the number of samples when fewer."""
    diversity_times: int = 300
    """Diversity pairs (300 in the protocol); capped at the number of samples."""
    bertscore_model: str | None = None
    """Local model directory for BERTScore of ``m2t`` (never downloaded); None: skipped."""
    device: str = "cpu"
    """Device of the LLM, the VQ-VAE and the evaluator (``cpu``, ``cuda``, ``cuda:1``)."""
    captions: list[str] = field(default_factory=list)
    """Caption files (``<clip id>#<caption>`` lines, e.g. the rewordings of
    ``scripts/make_rewordings.py``): text-to-motion of the listed clips from each file's own
    captions, with the ``t2m`` task's sampling, seeds and decoding, scored with the semantic checks
    every caption of the clip states (synthetic corpus), under ``result["captions"][<file stem>]``.
    The files' contents are part of the cache fingerprint: a new or changed file is a cache
    mismatch, as other generation settings are."""
    caption_repeats: int = 0
    """Repeats that also score the ``captions`` files (the first ones; 0: every repeat): each file
    costs as much generation as the ``t2m`` task."""

    def validate(self) -> "EvalConfig":
        """Raise ``ValueError`` naming the field for out-of-range values."""
        if not self.lora_path:
            raise ValueError("lora_path: the fine-tuning output directory is required")
        if not self.data_root:
            raise ValueError("data_root: the dataset directory is required")
        if not self.tasks:
            raise ValueError(f"tasks: give at least one of {', '.join(EVAL_TASKS)}")
        unknown = [t for t in self.tasks if t not in EVAL_TASKS]
        if unknown:
            raise ValueError(f"tasks: unknown task(s) {unknown}; known: {', '.join(EVAL_TASKS)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: a task is listed twice: {self.tasks}")
        if self.dataname is not None and self.dataname not in DATANAMES:
            raise ValueError(f"dataname must be one of {sorted(DATANAMES)}, got {self.dataname!r}")
        if isinstance(self.caption_repeats, bool) or not isinstance(self.caption_repeats, int) \
                or self.caption_repeats < 0:
            raise ValueError(f"caption_repeats must be an integer >= 0, got {self.caption_repeats!r}")
        positive = {"repeats": self.repeats, "batch_size": self.batch_size, "mm_gens": self.mm_gens,
                    "mm_times": self.mm_times, "diversity_times": self.diversity_times}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_texts", "key_texts"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if isinstance(self.mm_texts, bool) or not isinstance(self.mm_texts, int) or self.mm_texts < 0:
            raise ValueError(f"mm_texts must be an integer >= 0 (0: no MultiModality), got {self.mm_texts!r}")
        if self.mm_texts and self.mm_gens < 2:
            raise ValueError(f"mm_gens must be >= 2 for MultiModality, got {self.mm_gens}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not 0.0 < self.pred_context < 1.0:
            raise ValueError(f"pred_context must be in (0, 1), got {self.pred_context}")
        if not 0.0 < self.inbetween_context < 0.5:
            raise ValueError(f"inbetween_context must be in (0, 0.5), got {self.inbetween_context}")
        if self.compose_context is not None and (isinstance(self.compose_context, bool)
                                                 or not isinstance(self.compose_context, int)
                                                 or self.compose_context < 0):
            raise ValueError(f"compose_context must be an integer >= 0 or None, got {self.compose_context!r}")
        if isinstance(self.compose_reserve, bool) or not isinstance(self.compose_reserve, int) \
                or self.compose_reserve < 1:
            raise ValueError(f"compose_reserve must be an integer >= 1, got {self.compose_reserve!r}")
        if self.compose and self.gt_length:
            raise ValueError("compose: composed decoding chooses each clause's length; it cannot use gt_length")
        if self.r_precision_batch < 3:
            raise ValueError(f"r_precision_batch must be >= 3 (top-3), got {self.r_precision_batch}")
        if isinstance(self.captions, (str, os.PathLike)) or not isinstance(self.captions, (list, tuple)):
            raise ValueError(f"captions must be a list of caption file paths, got {self.captions!r}")
        stems: dict[str, str] = {}
        for path in self.captions:
            if not Path(path).is_file():
                raise ValueError(f"captions: caption file not found: {path}")
            stem = Path(path).stem
            if stem in stems:  # results and cache folders are named by stem
                raise ValueError(f"captions: {stems[stem]} and {path} share the name {stem!r}; rename one")
            stems[stem] = str(path)
        self.sampling(0)  # SamplingConfig.validate names the sampling field at fault
        return self

    def sampling(self, seed: int, guided: bool = True) -> Any:
        """The :class:`~motiongpt.generate.request.SamplingConfig` of one repeat (``guided``: with
        ``guidance_scale``; False for the tasks that are not text-to-motion)."""
        from motiongpt.generate.request import SamplingConfig

        return SamplingConfig(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                              num_beams=self.num_beams, seed=seed, max_motion_tokens=self.max_motion_tokens,
                              max_text_tokens=self.max_text_tokens,
                              guidance_scale=self.guidance_scale if guided else 1.0,
                              candidates=self.candidates if guided else 1,
                              rerank_uncond_weight=self.rerank_uncond_weight).validate()


class CacheMismatchError(ValueError):
    """The cache folder holds generations made with other settings."""


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class _Data:
    """The evaluated motions (real, their codes and reconstruction) and their captions."""

    root: Path
    split: str
    dataset: str
    ids: list[str]
    features: list[np.ndarray]  # each (T_i, D), unnormalized
    captions: list[list[Any]]  # Caption objects of each motion
    joints: list[np.ndarray]  # each (T_i, J, 3), from the features
    codes: list[list[int]]  # ground-truth codes (VQ encoding; T_i // 4 codes)
    recon_features: list[np.ndarray]  # each (4 N_i, D): the codes decoded
    recon_joints: list[np.ndarray]
    labels: list[dict] | None  # synthetic corpus: labels/<source id>.json of each motion
    n_in_split: int
    split_ids: list[str] = field(default_factory=list)  # every captioned motion of the split (max_texts aside)


def _load_data(cfg: EvalConfig, vq: Any) -> _Data:
    from motiongpt.data.humanml3d import load_humanml3d
    from motiongpt.motion.features import features_to_joints_batch

    root = Path(cfg.data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {root} not found")
    spec_name = DATANAMES[cfg.dataname][0] if cfg.dataname else None
    ds = load_humanml3d(root, cfg.split, dataset=spec_name)
    clips = [c for c in ds.clips if c.captions]
    if not clips:
        raise ValueError(f"split {cfg.split!r} of {root} has no captioned motions ({ds.report.summary()})")
    if cfg.dataname is not None and ds.feature_dim != DATANAMES[cfg.dataname][1]:
        raise ValueError(f"dataname {cfg.dataname!r} expects {DATANAMES[cfg.dataname][1]}-d features but {root} "
                         f"holds {ds.feature_dim}-d ones")
    if vq.nfeats != ds.feature_dim:
        raise ValueError(f"the VQ-VAE takes {vq.nfeats}-d features but {root} holds {ds.feature_dim}-d ones "
                         "(pass the VQ-VAE of this dataset as vq_dir / --vqvae_pth)")
    n_split = len(clips)
    split_ids = [c.id for c in clips]
    if cfg.max_texts is not None:
        clips = clips[: cfg.max_texts]
    features = [c.features for c in clips]
    codes = [[int(x) for x in c] for c in vq.encode_batch(features, names=[f"{root}/{c.id}" for c in clips])]
    recon = [np.asarray(f, np.float32) for f in vq.decode_batch(codes)]
    labels = None
    label_dir = root / "labels"
    if label_dir.is_dir():
        labels = []
        for c in clips:
            path = label_dir / f"{c.source_id}.json"
            if not path.is_file():
                raise FileNotFoundError(f"{label_dir} exists but has no label for clip {c.source_id} ({path})")
            try:
                labels.append(json.loads(path.read_text(encoding="utf-8")))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from e
    return _Data(root=root.resolve(), split=cfg.split, dataset=ds.spec.name, ids=[c.id for c in clips],
                 features=features, captions=[list(c.captions) for c in clips],
                 joints=features_to_joints_batch(features), codes=codes, recon_features=recon,
                 recon_joints=features_to_joints_batch(recon), labels=labels, n_in_split=n_split,
                 split_ids=split_ids)


def _caption_draw(captions: Sequence[Sequence[Any]], seed: int) -> list[int]:
    """One caption index per motion: the draw of :func:`motiongpt.eval.train.validate_evaluator`."""
    rng = np.random.default_rng(seed)
    return [int(rng.integers(len(c))) for c in captions]


def _sample_seed(base: int, stream: str, index: int) -> int:
    """Sampling seed of sample ``index`` of a task stream in the repeat seeded ``base``."""
    return int(np.random.SeedSequence([base, _STREAMS[stream], index]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------------


def canonical_poses(poses: np.ndarray) -> np.ndarray:
    """Poses ``(K, J, 3)`` with the pelvis over the origin (x = z = 0, height kept) and the body
    turned about the vertical to face +z (hips and shoulders, as HumanML3D canonicalizes a clip)."""
    p = np.asarray(poses, np.float64)
    if p.ndim != 3 or p.shape[-1] != 3 or p.shape[1] not in _FACE_JOINTS:
        raise ValueError(f"canonical_poses: expected (K, 22 or 21, 3) joints, got shape {p.shape}")
    r_hip, l_hip, r_sdr, l_sdr = _FACE_JOINTS[p.shape[1]]
    p = p - np.stack([p[:, 0, 0], np.zeros(len(p)), p[:, 0, 2]], -1)[:, None, :]  # (K, J, 3) pelvis over 0
    across = (p[:, r_hip] - p[:, l_hip]) + (p[:, r_sdr] - p[:, l_sdr])  # (K, 3) points to the body's right
    yaw = np.arctan2(across[:, 2], -across[:, 0])  # forward = up x across = (across_z, 0, -across_x)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]  # rotate by -yaw about y: forward -> +z
    x, z = p[..., 0], p[..., 2]
    out = p.copy()
    out[..., 0] = c * x - s * z
    out[..., 2] = s * x + c * z
    return out


def _code_frame(position: int, n_frames: int) -> int:
    """The frame a code is compared at: the middle of its 4 frames (clipped to the motion)."""
    return min(_UNIT * position + _UNIT // 2, n_frames - 1)


def _placed_positions(codes: Sequence[int] | None, keys: Sequence[Sequence[int]], mode: str) -> list[int | None]:
    """Where each key sits in ``codes`` (None: not placed), as key_token_satisfaction counts it."""
    seq = list(codes or [])
    out: list[int | None] = []
    if mode == "position":
        for p, c in keys:
            q = p if p >= 0 else len(seq) + p
            out.append(q if 0 <= q < len(seq) and seq[q] == c else None)
        return out
    pos = 0
    for _, c in keys:  # ordered: greedy subsequence match
        try:
            q = seq.index(c, pos)
        except ValueError:
            out.extend([None] * (len(keys) - len(out)))
            break
        out.append(q)
        pos = q + 1
    return out


def _key_pose_errors(joints: np.ndarray, placed: Sequence[int | None], real: np.ndarray,
                     gt_positions: Sequence[int]) -> list[float]:
    """Per placed key: mm between the canonical poses at the placed code and at its real position."""
    from motiongpt.eval.metrics import key_pose_distance

    pairs = [(q, p) for q, p in zip(placed, gt_positions) if q is not None]
    if not pairs:
        return []
    gen = canonical_poses(np.stack([joints[_code_frame(q, len(joints))] for q, _ in pairs]))  # (K, J, 3)
    ref = canonical_poses(np.stack([real[_code_frame(p, len(real))] for _, p in pairs]))
    out = []
    for k in range(len(pairs)):  # one call per key: the mean of each key, for a pooled mean
        out.append(key_pose_distance(gen[k : k + 1], ref[k : k + 1], [0])["key_pose_mm"])
    return out


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def _file_fingerprint(path: Path) -> str:
    st = path.stat()
    if st.st_size > _FINGERPRINT_HASH_LIMIT:  # hashing a 13 GB base model on every call costs minutes
        return f"size={st.st_size},mtime_ns={st.st_mtime_ns}"
    return "sha256=" + sha256_file(path)


def _dir_fingerprint(folder: Path | None) -> dict[str, str]:
    """Fingerprints of the model files at the top of ``folder`` (weights, configs, tokenizer)."""
    if folder is None or not folder.is_dir():
        return {}
    return {p.name: _file_fingerprint(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES and p.name not in _VOLATILE}


def _checkpoint_sources(cfg: EvalConfig) -> tuple[Path, Path, Path | None, dict[str, Any]]:
    """``(run dir, VQ-VAE dir, base model dir or None, run's resolved info)`` of ``cfg.lora_path``."""
    from motiongpt.llm.checkpoint import read_run_config

    run = Path(cfg.lora_path)
    if not run.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {run}")
    run_cfg, resolved = read_run_config(run)
    vq = cfg.vq_dir or resolved.get("vq_dir") or run_cfg.vq_dir
    if not vq:
        raise ValueError(f"{run} records no VQ-VAE; pass vq_dir (--vqvae_pth)")
    vq_path = Path(vq)
    if not vq_path.is_dir():
        raise FileNotFoundError(f"VQ-VAE directory not found: {vq_path}")
    base = resolved.get("base_model_path")
    base_path = Path(base) if resolved.get("adapter") and base and Path(base).is_dir() else None
    return run.resolve(), vq_path.resolve(), base_path, resolved


def _fingerprint(cfg: EvalConfig, data: _Data, run: Path, vq_dir: Path, base: Path | None) -> dict[str, Any]:
    """Everything the generations depend on (not: repeats, evaluator, batch size, device, tasks)."""
    # not "tasks" / "key_free_pass": each task (and pass) has its own files, made the same way
    # whatever else is asked, so adding a task keeps the generations of the others
    keys = ("split", "seed", "max_texts", "key_texts", "mm_texts", "mm_gens", "gt_length", "pred_context",
            "inbetween_context", "constrained", "temperature", "top_k", "top_p", "num_beams", "guidance_scale",
            "compose", "compose_context", "compose_reserve", "max_motion_tokens", "max_text_tokens")
    clips = hashlib.sha256(json.dumps([[i, len(f), len(c), cd] for i, f, c, cd in zip(
        data.ids, data.features, data.captions, data.codes)]).encode()).hexdigest()
    settings = {k: getattr(cfg, k) for k in keys}
    if cfg.candidates > 1:  # only then: caches made before reranking existed stay valid
        settings.update(candidates=cfg.candidates, rerank_uncond_weight=cfg.rerank_uncond_weight)
    out: dict[str, Any] = {
        "settings": settings,
        "checkpoint": str(run),
        "checkpoint_files": _dir_fingerprint(run),
        "base_model": str(base) if base else None,
        "base_model_files": _dir_fingerprint(base),
        "vq_dir": str(vq_dir),
        "vq_manifest": _file_fingerprint(vq_dir / "manifest.json") if (vq_dir / "manifest.json").is_file() else None,
        "data_root": str(data.root),
        "data_clips": clips,
    }
    if cfg.captions:  # only then: caches made without caption files stay valid
        out["caption_files"] = {Path(c).stem: "sha256=" + sha256_file(c) for c in cfg.captions}
    return out


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"{prefix}: {a!r} -> {b!r}"]


class _Cache:
    """Per repeat and task generation records under ``folder`` (None: nothing is kept)."""

    def __init__(self, folder: str | os.PathLike | None, fingerprint: dict[str, Any], on_mismatch: str) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self.key = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode()).hexdigest()
        self.reused: list[str] = []
        self.written: list[str] = []
        if self.folder is None:
            return
        marker = self.folder / "cache.json"
        if marker.is_file():
            try:
                have = json.loads(marker.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise CacheMismatchError(f"{marker}: not valid JSON ({e}); remove {self.folder}") from e
            if have.get("fingerprint") != self.fingerprint:
                changes = _diff(have.get("fingerprint"), self.fingerprint)
                if on_mismatch != "replace":
                    shown = "; ".join(changes[:6]) + (f"; ... ({len(changes)} in all)" if len(changes) > 6 else "")
                    raise CacheMismatchError(
                        f"{self.folder} holds generations made with other settings ({shown}); pass --fresh "
                        "(on_mismatch='replace') to discard them, or use another output folder")
                log.info("eval cache %s: settings changed (%s); discarding it", self.folder, "; ".join(changes[:3]))
                shutil.rmtree(self.folder)
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise CacheMismatchError(f"{self.folder} is not empty and holds no cache.json (not an evaluation cache)")
        if not marker.is_file():
            atomic_write_text(marker, json.dumps({"format": _CACHE_FORMAT, "fingerprint": self.fingerprint},
                                                 indent=1) + "\n")

    def path(self, name: str, repeat: int) -> Path | None:
        return None if self.folder is None else self.folder / name / f"repeat_{repeat:03d}.json"

    def load(self, name: str, repeat: int) -> list[dict] | None:
        path = self.path(name, repeat)
        if path is None or not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CacheMismatchError(f"{path}: not valid JSON ({e}); delete it to regenerate") from e
        if doc.get("key") != self.key or doc.get("repeat") != repeat or doc.get("task") != name:
            raise CacheMismatchError(f"{path} was made with other settings than {self.folder / 'cache.json'}; "
                                     "delete it to regenerate")
        self.reused.append(f"{name}/{repeat}")
        return doc["samples"]

    def save(self, name: str, repeat: int, samples: list[dict]) -> None:
        path = self.path(name, repeat)
        self.written.append(f"{name}/{repeat}")
        if path is None:
            return
        doc = {"format": _CACHE_FORMAT, "task": name, "repeat": repeat, "key": self.key, "samples": samples}
        atomic_write_text(path, json.dumps(doc) + "\n")


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass
class _Samples:
    """Generations of one task in one repeat, decoded."""

    records: list[dict]  # per sample: clip, caption, seed, keys / context, codes, text, ok, problems
    features: list[np.ndarray | None]  # (4 N, D) of the whole resulting motion; None: nothing parsed
    joints: list[np.ndarray | None]

    @property
    def parsed(self) -> list[int]:
        return [k for k, f in enumerate(self.features) if f is not None]


class _Runner:
    """Builds requests, generates (or reads the cache) and decodes, for one :func:`evaluate` call."""

    def __init__(self, cfg: EvalConfig, data: _Data, vq: Any, cache: _Cache,
                 generator_factory: Callable[[], Any]) -> None:
        self.cfg, self.data, self.vq, self.cache = cfg, data, vq, cache
        self._factory = generator_factory
        self._generator: Any = None
        self.generated = 0
        self.seconds_generating = 0.0  # model calls only
        self.seconds_by_task: dict[str, float] = {}  # model calls, request building and the LLM's loading

    def generator(self) -> Any:
        if self._generator is None:
            self._generator = self._factory()
        return self._generator

    def run(self, name: str, repeat: int, specs: list[dict], constrained: bool) -> _Samples:
        """Samples of ``specs`` (clip, caption, seed, task, request fields), cached as ``name``."""
        records = self.cache.load(name, repeat)
        if records is None:
            t0 = time.perf_counter()
            records = self._generate(specs, repeat, constrained)
            dt = time.perf_counter() - t0
            self.seconds_by_task[name] = round(self.seconds_by_task.get(name, 0.0) + dt, 2)
            self.cache.save(name, repeat, records)
            log.info("eval repeat %d, %s: %d samples generated in %.1f s", repeat, name, len(records), dt)
        return self._decode(records)

    def _generate(self, specs: list[dict], repeat: int, constrained: bool) -> list[dict]:
        from motiongpt.generate.request import GUIDANCE_TASKS, GenerationRequest

        gen = self.generator()
        requests = [GenerationRequest(task=s["task"], caption=s.get("caption", ""), length_frames=s.get("length"),
                                      key_tokens=[tuple(k) if s["task"] == "t2m_keys_pos" else k
                                                  for k in s.get("request_keys", [])],
                                      motion_codes=s.get("motion_codes", []), end_codes=s.get("end_codes", []),
                                      seed=s["seed"], name=f"s{k:05d}")
                    for k, s in enumerate(specs)]
        # guidance needs a caption to guide by: only the text-to-motion tasks get it
        guided = all(s["task"] in GUIDANCE_TASKS for s in specs)
        t0 = time.perf_counter()
        sampling = self.cfg.sampling(self.cfg.seed + repeat, guided)
        if self.cfg.compose and all(s["task"] == "t2m" for s in specs):
            from motiongpt.generate.compose import generate_composed

            results = generate_composed(gen, requests, sampling, batch_size=self.cfg.batch_size,
                                        constrained=constrained, context_codes=self.cfg.compose_context,
                                        reserve_codes=self.cfg.compose_reserve)
        else:
            results = gen.generate(requests, sampling, batch_size=self.cfg.batch_size, constrained=constrained)
        self.seconds_generating += time.perf_counter() - t0
        self.generated += len(requests)
        out = []
        for s, r in zip(specs, results):
            rec = {k: v for k, v in s.items() if k not in ("motion_codes", "end_codes", "request_keys")}
            rec.update(codes=r.codes, generated_codes=r.generated_codes, text=r.text, ok=r.ok,
                       problems=list(r.problems))
            out.append(rec)
        return out

    def _decode(self, records: list[dict]) -> _Samples:
        from motiongpt.motion.features import features_to_joints_batch

        todo = [k for k, r in enumerate(records) if r.get("codes")]
        feats: list[np.ndarray | None] = [None] * len(records)
        joints: list[np.ndarray | None] = [None] * len(records)
        if todo:
            decoded = self.vq.decode_batch([records[k]["codes"] for k in todo])  # each (4 N, D)
            for k, f, j in zip(todo, decoded, features_to_joints_batch(decoded)):
                feats[k], joints[k] = np.asarray(f, np.float32), j
        return _Samples(records, feats, joints)


# --------------------------------------------------------------------------------------------
# Requests per task
# --------------------------------------------------------------------------------------------


def _key_draw(task: str, n_codes: int, rng: np.random.Generator) -> list[int]:
    """Key positions in ``range(n_codes)``, drawn as training records draw them."""
    if task == "t2m_init":
        return [0]
    if task == "t2m_last":
        return [n_codes - 1]
    lo, hi = (3, 5) if task == "t2m_keys" else (1, 5)  # TaskConfig's num_keys / keys_pos ranges
    k = int(rng.integers(min(lo, n_codes), min(hi, n_codes) + 1))
    return sorted(int(p) for p in rng.choice(n_codes, size=k, replace=False))


def _specs(task: str, cfg: EvalConfig, data: _Data, indices: Sequence[int], caption_pick: Sequence[int],
           repeat: int, texts: dict[int, str] | None = None) -> list[dict]:
    """One generation spec per motion in ``indices`` for ``task`` in ``repeat``.

    ``texts`` (text-to-motion tasks): only the motions it lists, each with its text instead of
    the drawn caption; seeds and key draws stay those of the whole task, so such a sample pairs
    with the task's sample of the same motion and differs from it by the wording only.
    """
    base = cfg.seed + repeat
    rng = np.random.default_rng([base, _STREAMS["keys"], _STREAMS[task]])  # key draws: their own stream
    specs = []
    for k, i in enumerate(indices):
        codes = data.codes[i]
        n = len(codes)
        spec: dict[str, Any] = {"clip": i, "id": data.ids[i], "task": task, "seed": _sample_seed(base, task, k)}
        if task.startswith("t2m"):  # pred / inbetween prompts are motion-only, as training records
            spec["caption"] = data.captions[i][caption_pick[i]].text
        if task in ("t2m", "t2m_init", "t2m_last", "t2m_keys") and cfg.gt_length:
            spec["length"] = _UNIT * n
        if task in KEY_TASKS:
            positions = _key_draw(task, n, rng)
            spec["keys"] = [[p, codes[p]] for p in positions]  # real positions: key-pose reference
            if task == "t2m_keys_pos":
                spec["length"] = _UNIT * n
                spec["request_keys"] = [[p, codes[p]] for p in positions]
            else:
                spec["request_keys"] = [codes[p] for p in positions]
        elif task == "m2t":
            spec["motion_codes"] = list(codes)
        elif task == "pred":
            a = min(max(2, round(cfg.pred_context * n)), n - 1)
            spec.update(context=[a, 0], length=_UNIT * n, motion_codes=list(codes[:a]))
        elif task == "inbetween":
            a = max(1, round(cfg.inbetween_context * n))
            spec.update(context=[a, a], length=_UNIT * n, motion_codes=list(codes[:a]),
                        end_codes=list(codes[n - a :]))
        if texts is not None:
            if i not in texts:
                continue
            spec["caption"] = texts[i]
        specs.append(spec)
    return specs


def _task_indices(task: str, cfg: EvalConfig, data: _Data) -> list[int]:
    """Motions a task is run on (those long enough for it)."""
    n_all = len(data.ids)
    count = min(cfg.key_texts, n_all) if task in KEY_TASKS and cfg.key_texts else n_all
    need = 3 if task in ("pred", "inbetween") else 1  # given part(s) and at least one code to generate
    out = [i for i in range(count) if len(data.codes[i]) >= need]
    if task == "inbetween":
        out = [i for i in out if 2 * max(1, round(cfg.inbetween_context * len(data.codes[i]))) < len(data.codes[i])]
    return out


# --------------------------------------------------------------------------------------------
# Metrics of one repeat
# --------------------------------------------------------------------------------------------


def _embedding_metrics(evaluator: Any, captions: list[Any], real: list[np.ndarray], gen: list[np.ndarray],
                       cfg: EvalConfig, repeat: int) -> dict[str, float]:
    """FID, R-precision, MM-Dist, Diversity of ``gen`` (and ``real_*`` of the real motions)."""
    from motiongpt.eval.protocol import t2m_metrics

    n = len(captions)
    if evaluator is None or n < 3:  # top-3 needs a batch of 3; FID a covariance of 2
        return {}
    out = t2m_metrics(evaluator, captions, real, gen, seed=cfg.seed + _RP_SEED_OFFSET + repeat,
                      batch_size=min(cfg.r_precision_batch, n), diversity_times=cfg.diversity_times)
    out["r_precision_batch"] = min(cfg.r_precision_batch, n)
    return out


def _semantic(joints: list[np.ndarray | None], labels: list[dict], captions: list[str] | None,
              families: dict[str, list[int]] | None = None) -> float:
    """Semantic accuracy over all samples (one that did not parse counts as a failure); pools
    per-family counts into ``families`` (``{family: [passed, n]}``). ``captions`` None: only the
    checks every caption of the label states (a caption worded outside the templates)."""
    from motiongpt.eval.semantic import semantic_accuracy

    ok = [k for k, j in enumerate(joints) if j is not None]
    if not ok:
        return 0.0
    res = semantic_accuracy([joints[k] for k in ok], [labels[k] for k in ok],
                            None if captions is None else [captions[k] for k in ok])
    if families is not None:
        for fam, v in res["per_family"].items():
            acc = families.setdefault(fam, [0, 0])
            acc[0] += round(v["accuracy"] * v["n"])
            acc[1] += v["n"]
    return res["accuracy"] * len(ok) / len(joints)


def _samples_semantic(s: _Samples, data: _Data, families: dict[str, list[int]] | None,
                      caption_free: bool = False) -> float:
    """:func:`_semantic` of text-to-motion samples against their clips' labels; ``caption_free``:
    without what their caption's paraphrase adds (captions worded outside the templates)."""
    labels = [data.labels[r["clip"]] for r in s.records]  # type: ignore[index]  # callers check labels
    return _semantic(s.joints, labels, None if caption_free else [r["caption"] for r in s.records], families)


def _reference_rows(evaluator: Any, data: _Data, captions: list[Any], cfg: EvalConfig, repeat: int) -> dict:
    """Real and VQ-VAE reconstruction rows of one repeat."""
    real: dict[str, float] = {}
    recon: dict[str, float] = {}
    m = _embedding_metrics(evaluator, captions, data.features, data.recon_features, cfg, repeat)
    if m:
        for k in ("top1", "top2", "top3", "matching_score", "diversity"):
            real[k] = m["real_" + k]
            recon[k] = m[k]
        recon["fid"] = m["fid"]
    if data.labels is not None:
        texts = [c.text for c in captions]
        real["semantic_accuracy"] = _semantic(list(data.joints), data.labels, texts)
        recon["semantic_accuracy"] = _semantic(list(data.recon_joints), data.labels, texts)
    return {"real": real, "vq_recon": recon}


def _motion_task_metrics(task: str, s: _Samples, evaluator: Any, data: _Data, captions: list[Any],
                         cfg: EvalConfig, repeat: int, families: dict[str, list[int]] | None) -> dict[str, float]:
    """Metrics of a task that writes motions (everything but m2t), one repeat."""
    out: dict[str, float] = {"parsed_rate": len(s.parsed) / len(s.records)}
    ok = s.parsed
    idx = [s.records[k]["clip"] for k in ok]
    emb = _embedding_metrics(evaluator, [captions[i] for i in idx], [data.features[i] for i in idx],
                             [s.features[k] for k in ok], cfg, repeat)  # type: ignore[misc]
    for k in ("fid", "top1", "top2", "top3", "matching_score", "diversity", "r_precision_batch"):
        if k in emb:
            out[k] = emb[k]
    if task.startswith("t2m") and data.labels is not None:
        out["semantic_accuracy"] = _samples_semantic(s, data, families if task == "t2m" else None)
    if task in KEY_TASKS:
        from motiongpt.eval.metrics import key_token_satisfaction

        mode = _KEY_MODES[task]
        keys = [[(-1 if task == "t2m_last" else p, c) for p, c in r["keys"]] for r in s.records]
        sat = key_token_satisfaction([r.get("generated_codes") or None for r in s.records], keys, mode)
        out["pair_rate"], out["sample_rate"] = sat["pair_rate"], sat["sample_rate"]
        errs: list[float] = []
        ref: list[float] = []
        for r, kk, j in zip(s.records, keys, s.joints):
            i = r["clip"]
            gt = [p for p, _ in r["keys"]]
            if j is not None:
                errs += _key_pose_errors(j, _placed_positions(r.get("generated_codes"), kk, mode), data.joints[i], gt)
            ref += _key_pose_errors(data.recon_joints[i], gt, data.joints[i], gt)
        if errs:
            out["key_pose_mm"] = float(np.mean(errs))
        if ref:
            out["vq_recon_key_pose_mm"] = float(np.mean(ref))
    if task in ("pred", "inbetween"):
        from motiongpt.eval.metrics import ade_fde

        gen_e, rec_e = [], []
        for r, j in zip(s.records, s.joints):
            i = r["clip"]
            a, b = r["context"]
            end = _UNIT * (len(data.codes[i]) - b)  # the generated frames: [4a, end)
            rec_e.append(ade_fde(data.recon_joints[i][:end], data.joints[i][:end], start=_UNIT * a))
            if j is not None:
                gen_e.append(ade_fde(j[:end], data.joints[i][:end], start=_UNIT * a))
        for name, vals in (("", gen_e), ("vq_recon_", rec_e)):
            if vals:
                out[name + "ade"] = float(np.mean([v["ade"] for v in vals]))
                out[name + "fde"] = float(np.mean([v["fde"] for v in vals]))
    return out


def _m2t_metrics(s: _Samples, evaluator: Any, data: _Data, cfg: EvalConfig, repeat: int) -> dict[str, float]:
    from motiongpt.eval.metrics import r_precision
    from motiongpt.eval.text_metrics import text_metrics

    preds = [r.get("text") or "" for r in s.records]
    refs = [[c.text for c in data.captions[r["clip"]]] for r in s.records]
    tm = text_metrics(preds, refs, bertscore_model=cfg.bertscore_model)
    out: dict[str, float] = {k: tm[k] for k in ("bleu1", "bleu4", "rouge_l", "cider")}
    if "bertscore_f1" in tm["bertscore"]:
        out["bertscore_f1"] = tm["bertscore"]["bertscore_f1"]
    out["empty_rate"] = sum(not p.strip() for p in preds) / len(preds)
    n = len(preds)
    if evaluator is not None and n >= 3:
        from motiongpt.eval.text import UNK

        # a caption without a word (".", "") is read as the unknown word: it matches no motion
        # better than chance, so it costs R-precision instead of stopping the evaluation
        texts = [p if _has_word(p) else [f"{UNK}/OTHER"] for p in preds]
        text = evaluator.encode_text(texts)  # (N, D) the generated captions
        motion = evaluator.encode_motion([data.features[r["clip"]] for r in s.records])  # (N, D) the real motions
        rp = r_precision(text, motion, batch_size=min(cfg.r_precision_batch, n),
                         seed=cfg.seed + _RP_SEED_OFFSET + repeat)
        for k in ("top1", "top2", "top3", "matching_score"):
            out[k] = rp[k]
        out["r_precision_batch"] = min(cfg.r_precision_batch, n)
    return out


def _has_word(text: str) -> bool:
    """Whether the evaluator's tokenizer finds a word in ``text`` (it reads ASCII letters only)."""
    return re.search(r"[A-Za-z]", text) is not None


def _mm_specs(cfg: EvalConfig, data: _Data, caption_pick: Sequence[int], repeat: int) -> list[dict]:
    base = cfg.seed + repeat
    rng = np.random.default_rng([base, _STREAMS["mm"]])
    texts = rng.permutation(len(data.ids))[: min(cfg.mm_texts, len(data.ids))]
    specs = []
    for j, i in enumerate(int(x) for x in texts):
        for g in range(cfg.mm_gens):
            spec = {"clip": i, "id": data.ids[i], "task": "t2m", "caption": data.captions[i][caption_pick[i]].text,
                    "seed": _sample_seed(base, "mm", j * cfg.mm_gens + g), "group": j}
            if cfg.gt_length:
                spec["length"] = _UNIT * len(data.codes[i])
            specs.append(spec)
    return specs


def _multimodality(s: _Samples, evaluator: Any, cfg: EvalConfig, repeat: int) -> float | None:
    from motiongpt.eval.protocol import multimodality_metric

    groups: dict[int, list[np.ndarray]] = {}
    complete: dict[int, bool] = {}
    for r, f in zip(s.records, s.features):
        groups.setdefault(r["group"], [])
        complete[r["group"]] = complete.get(r["group"], True) and f is not None
        if f is not None:
            groups[r["group"]].append(f)
    gens = [g for k, g in sorted(groups.items()) if complete[k]]  # every text needs all its generations
    if not gens:
        return None
    return multimodality_metric(evaluator, gens, times=min(cfg.mm_times, cfg.mm_gens), seed=cfg.seed + repeat)


# --------------------------------------------------------------------------------------------
# Caption files
# --------------------------------------------------------------------------------------------


@dataclass
class _CaptionSet:
    """One ``cfg.captions`` file: its clips' captions and its figures, pooled over the repeats."""

    stem: str
    path: Path
    sha256: str
    texts: dict[int, str]  # motion index -> the file's caption
    n_listed: int
    not_evaluated: int  # clips of the split the file lists but max_texts leaves out
    per_repeat: list[dict[str, float]] = field(default_factory=list)
    families: dict[str, list[int]] = field(default_factory=dict)  # {family: [passed, n]}
    template_families: dict[str, list[int]] = field(default_factory=dict)

    @property
    def cache_name(self) -> str:
        return f"captions/{self.stem}"


def _caption_sets(cfg: EvalConfig, data: _Data) -> list[_CaptionSet]:
    """The parsed ``cfg.captions`` files, their clips mapped to the evaluated motions.

    Raises:
        ValueError: without labels (not the synthetic corpus), for a malformed file (naming file
            and line), a clip that is not in the split (naming file and clip), or a file none of
            whose clips is evaluated.
    """
    from motiongpt.data.synthetic.rewording import read_caption_file

    if cfg.captions and data.labels is None:
        raise ValueError(f"captions: scoring caption files needs the labels/ folder of the synthetic corpus; "
                         f"{data.root} has none")
    position = {clip: i for i, clip in enumerate(data.ids)}
    in_split = set(data.split_ids)
    out = []
    for name in cfg.captions:
        path = Path(name)
        pairs = read_caption_file(path)
        texts: dict[int, str] = {}
        for clip, caption in pairs:
            if clip in position:
                texts[position[clip]] = caption
            elif clip not in in_split:
                raise ValueError(f"{path}: clip {clip} is not a captioned motion of split {cfg.split!r} of {data.root}")
        if not texts:
            raise ValueError(f"{path}: none of its {len(pairs)} clips is among the {len(data.ids)} evaluated "
                             f"(max_texts {cfg.max_texts})")
        out.append(_CaptionSet(stem=path.stem, path=path.resolve(), sha256=sha256_file(path), texts=texts,
                               n_listed=len(pairs), not_evaluated=len(pairs) - len(texts)))
    return out


def _caption_set_metrics(cs: _CaptionSet, runner: _Runner, indices: list[int], caption_pick: Sequence[int],
                         repeat: int, template: _Samples | None) -> dict[str, float]:
    """One repeat of a caption file: the t2m task's generation with the file's captions, scored
    with the caption-free semantic checks; ``template``: the t2m samples (same seeds), scored the
    same way on the same clips."""
    specs = _specs("t2m", runner.cfg, runner.data, indices, caption_pick, repeat, texts=cs.texts)
    s = runner.run(cs.cache_name, repeat, specs, runner.cfg.constrained)
    out = {"parsed_rate": len(s.parsed) / len(s.records),
           "semantic_accuracy": _samples_semantic(s, runner.data, cs.families, caption_free=True)}
    if template is not None:
        keep = [k for k, r in enumerate(template.records) if r["clip"] in cs.texts]
        same = _Samples([template.records[k] for k in keep], [template.features[k] for k in keep],
                        [template.joints[k] for k in keep])
        out["template_semantic_accuracy"] = _samples_semantic(same, runner.data, cs.template_families,
                                                              caption_free=True)
    return out


def _family_rates(families: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """``{family: [passed, n]}`` -> ``{family: {"accuracy", "n"}}``."""
    return {f: {"accuracy": ok / n, "n": n} for f, (ok, n) in sorted(families.items())}


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def _load_evaluator(cfg: EvalConfig) -> Any:
    from motiongpt.eval.evaluator import TextMotionEvaluator

    if cfg.evaluator is None:
        return None
    path = Path(cfg.evaluator)
    if not path.is_dir():
        raise FileNotFoundError(f"evaluator directory not found: {path} (train one with scripts/train_evaluator.py)")
    return TextMotionEvaluator.from_pretrained(path, device=cfg.device)


def evaluate(
    cfg: EvalConfig,
    *,
    cache_dir: str | os.PathLike | None = None,
    generator: Any = None,
    evaluator: Any = None,
    on_mismatch: str = "error",
    progress: bool = False,
) -> dict[str, Any]:
    """Run the evaluation protocol (module docstring) and return every figure as a JSON-ready dict.

    Args:
        cfg: what to evaluate (validated first: ``ValueError`` naming the field).
        cache_dir: folder for the per repeat and task generations (resume); None: keep nothing.
        generator: an already loaded :class:`~motiongpt.generate.MotionGenerator` (its VQ-VAE is
            used); None: loaded from ``cfg.lora_path`` only when something must be generated.
        evaluator: an object with ``encode_text`` / ``encode_motion`` (e.g. the official T2M
            evaluator of :func:`~motiongpt.eval.official.load_official_evaluator`); None: loaded
            from ``cfg.evaluator`` when given.
        on_mismatch: ``"error"``: a cache made with other settings raises
            :class:`CacheMismatchError`; ``"replace"``: it is discarded.
        progress: a progress bar over the repeats.

    Returns:
        ``{"format", "config", "sources", "dataset", "repeats", "rows": {"real", "vq_recon"},
        "tasks": {task: {"metrics": {name: {"mean", "ci95", "n"}}, ...}}, "semantic_per_family",
        "per_repeat", "cache", "seconds"}`` (layout in :func:`format_markdown`); with ``cfg.captions``
        also ``"captions": {file stem: {"semantic_accuracy", "template_semantic_accuracy" (with the t2m
        task), "parsed_rate" (each {"mean", "ci95", "n"}), "n", "n_listed", "not_evaluated", "per_action",
        "template_per_action", "file", "sha256", "per_repeat"}}``.
    """
    from motiongpt.eval.metrics import summarize_repeats

    t_start = time.perf_counter()
    cfg = dataclasses.replace(cfg, tasks=list(cfg.tasks)).validate()
    if on_mismatch not in ("error", "replace"):
        raise ValueError(f"on_mismatch must be 'error' or 'replace', got {on_mismatch!r}")
    run_dir, vq_dir, base_dir, resolved = _checkpoint_sources(cfg)
    if generator is not None:
        vq = generator.vq
    else:  # the LLM is loaded only when something must be generated (a cached re-run needs the VQ-VAE only)
        from motiongpt.vq.model import VQVAE

        vq = VQVAE.from_pretrained(vq_dir, device=cfg.device)

    def factory() -> Any:
        if generator is not None:
            return generator
        from motiongpt.generate.generator import MotionGenerator

        log.info("loading %s", run_dir)
        return MotionGenerator.from_checkpoint(run_dir, device=cfg.device, vq_dir=vq_dir,
                                               max_motion_tokens=cfg.max_motion_tokens)

    if cfg.dataname is not None and vq.nfeats != DATANAMES[cfg.dataname][1]:
        raise ValueError(f"dataname {cfg.dataname!r} expects {DATANAMES[cfg.dataname][1]}-d features but the VQ-VAE "
                         f"{vq_dir} takes {vq.nfeats}-d ones")
    data = _load_data(cfg, vq)
    caption_sets = _caption_sets(cfg, data)  # a bad file fails before the cache is touched
    if evaluator is not None:  # an object given by the caller wins over cfg.evaluator
        evaluator_source = type(evaluator).__name__
    else:
        evaluator = _load_evaluator(cfg)
        evaluator_source = str(Path(cfg.evaluator).resolve()) if cfg.evaluator else None
    cache = _Cache(cache_dir, _fingerprint(cfg, data, run_dir, vq_dir, base_dir), on_mismatch)
    runner = _Runner(cfg, data, vq, cache, factory)
    t_loaded = time.perf_counter()

    per_repeat: dict[str, list[dict[str, float]]] = {"real": [], "vq_recon": []}
    per_repeat.update({t: [] for t in cfg.tasks})
    families: dict[str, list[int]] = {}
    indices = {t: _task_indices(t, cfg, data) for t in cfg.tasks}
    for t, idx in indices.items():
        if not idx:
            raise ValueError(f"task {t}: no motion of split {cfg.split!r} is long enough for it")
    mm_on = "t2m" in cfg.tasks and cfg.mm_texts > 0 and evaluator is not None
    t2m_indices = indices.get("t2m") or _task_indices("t2m", cfg, data)
    from tqdm.auto import tqdm

    bar = tqdm(range(cfg.repeats), desc="eval repeats", unit="repeat", disable=not progress)
    for r in bar:
        pick = _caption_draw(data.captions, cfg.seed + r)
        captions = [c[p] for c, p in zip(data.captions, pick)]
        rows = _reference_rows(evaluator, data, captions, cfg, r)
        per_repeat["real"].append(rows["real"])
        per_repeat["vq_recon"].append(rows["vq_recon"])
        t2m_samples = None
        for task in cfg.tasks:
            bar.set_postfix(task=task)
            specs = _specs(task, cfg, data, indices[task], pick, r)
            s = runner.run(task, r, specs, cfg.constrained)
            if task == "t2m":
                t2m_samples = s
            if task == "m2t":
                m = _m2t_metrics(s, evaluator, data, cfg, r)
            else:
                m = _motion_task_metrics(task, s, evaluator, data, captions, cfg, r, families)
            if task in KEY_TASKS and cfg.key_free_pass:
                free = runner.run(f"{task}.free", r, specs, constrained=False)
                fm = _motion_task_metrics(task, free, None, data, captions, cfg, r, None)
                m.update({f"free_{k}": fm[k] for k in ("parsed_rate", "pair_rate", "sample_rate")})
            if task == "t2m" and mm_on:
                mm = _multimodality(runner.run("mm", r, _mm_specs(cfg, data, pick, r), cfg.constrained),
                                    evaluator, cfg, r)
                if mm is not None:
                    m["multimodality"] = mm
            per_repeat[task].append(m)
        for cs in caption_sets if not cfg.caption_repeats or r < cfg.caption_repeats else ():
            bar.set_postfix(task=cs.cache_name)
            cs.per_repeat.append(_caption_set_metrics(cs, runner, t2m_indices, pick, r, t2m_samples))
    bar.close()

    def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        # keys missing in some repeat (e.g. too few parsed samples there) are left out
        return summarize_repeats(runs) if runs and runs[0] else {}

    tasks_out: dict[str, Any] = {}
    for task in cfg.tasks:
        entry: dict[str, Any] = {"metrics": summary(per_repeat[task]), "n_texts": len(indices[task])}
        if task in KEY_TASKS:
            entry["key_mode"] = _KEY_MODES[task]
        if task == "t2m" and mm_on:
            entry["multimodality"] = {"texts": min(cfg.mm_texts, len(data.ids)), "gens": cfg.mm_gens,
                                      "times": min(cfg.mm_times, cfg.mm_gens)}
        tasks_out[task] = entry
    trained = resolved.get("tasks")
    seconds = {"load": round(t_loaded - t_start, 2), "generate": round(runner.seconds_generating, 2),
               "generate_by_task": runner.seconds_by_task, "total": round(time.perf_counter() - t_start, 2)}
    config = dataclasses.asdict(cfg)
    if not cfg.captions:  # without caption files metrics.json is what it was before they existed
        del config["captions"]
    result = {
        "format": _RESULT_FORMAT,
        "config": config,
        "sources": {"checkpoint": str(run_dir), "vq_dir": str(vq_dir),
                    "evaluator": evaluator_source,
                    "trained_tasks": sorted(trained) if isinstance(trained, dict) else None},
        "dataset": {"root": str(data.root), "split": data.split, "name": data.dataset, "n_motions": len(data.ids),
                    "n_in_split": data.n_in_split, "labels": data.labels is not None},
        "repeats": cfg.repeats,
        "rows": {"real": summary(per_repeat["real"]), "vq_recon": summary(per_repeat["vq_recon"])},
        "tasks": tasks_out,
        "semantic_per_family": _family_rates(families),
        "per_repeat": per_repeat,
        "cache": {"folder": str(Path(cache_dir).resolve()) if cache_dir is not None else None,
                  "reused": len(cache.reused), "generated": len(cache.written), "samples_generated": runner.generated},
        "seconds": seconds,
    }
    if caption_sets:
        result["captions"] = {cs.stem: {
            "file": str(cs.path), "sha256": cs.sha256, "n": len(cs.texts), "n_listed": cs.n_listed,
            "not_evaluated": cs.not_evaluated, **summary(cs.per_repeat), "per_action": _family_rates(cs.families),
            "template_per_action": _family_rates(cs.template_families), "per_repeat": cs.per_repeat,
        } for cs in caption_sets}
    return json.loads(json.dumps(result))  # plain JSON types only (no numpy scalars)


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _fmt(stat: dict | None, digits: int = 3, scale: float = 1.0) -> str:
    if not stat:
        return "-"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['ci95'] * scale:.{digits}f}"


def _compose_note(cfg: dict[str, Any]) -> str:
    """The metrics.md words on composed decoding ("" when off)."""
    if not cfg.get("compose"):
        return ""
    context = cfg.get("compose_context")
    reserve = cfg.get("compose_reserve")
    return ("composed clause by clause (t2m_next" + ("" if context is None else f", context {context} codes")
            + ("" if reserve is None else f", {reserve} codes kept for each later clause") + "); ")


def _rerank_note(cfg: dict[str, Any]) -> str:
    """The metrics.md words on reranking ("" when off)."""
    n = cfg.get("candidates") or 1
    if n <= 1:
        return ""
    return (f"best of {n} candidates by the model's own score (unconditional weight "
            f"{cfg.get('rerank_uncond_weight')}, text-to-motion); ")


def format_markdown(result: dict[str, Any]) -> str:
    """``metrics.md``: the papers' text-to-motion table, then one section per other task."""
    cfg, tasks, rows = result["config"], result["tasks"], result["rows"]
    src, ds = result["sources"], result["dataset"]
    lines = [
        "# Evaluation",
        "",
        f"- checkpoint: `{src['checkpoint']}` (VQ-VAE `{src['vq_dir']}`)",
        f"- data: `{ds['root']}`, split `{ds['split']}`, {ds['n_motions']} of {ds['n_in_split']} captioned motions",
        f"- evaluator: {('`' + src['evaluator'] + '`') if src['evaluator'] else 'none (no FID / R-precision)'}",
        (f"- {result['repeats']} repeat(s), seed {cfg['seed']} + repeat; sampling temperature {cfg['temperature']}, "
        f"top-k {cfg['top_k']}, top-p {cfg['top_p']}, "
        f"guidance scale {cfg.get('guidance_scale', 1.0)} (text-to-motion); "
        f"{_compose_note(cfg)}"
        f"{_rerank_note(cfg)}"
        f"constrained decoding {'on' if cfg['constrained'] else 'off'}; "
        f"lengths {'of the real motions' if cfg['gt_length'] else 'chosen by the model'} (t2m)"),
        "- every figure: mean ± 95 % confidence half-width over the repeats",
    ]
    trained = src.get("trained_tasks")
    untrained = [t for t in tasks if trained is not None and t not in trained]
    if untrained:
        lines.append(f"- not in the checkpoint's training tasks ({', '.join(trained)}): {', '.join(untrained)}")
    rp_batch = (tasks.get("t2m", {}).get("metrics", {}).get("r_precision_batch") or {}).get("mean")
    lines += ["", "## Text-to-motion", ""]
    if rp_batch is not None and rp_batch < 32:
        lines += [(f"R-precision batches of {rp_batch:.0f} (fewer motions than the protocol's 32): "
                  "not comparable with published numbers."), ""]
    lines += [("| Methods | R-Precision Top-1 ↑ | Top-2 ↑ | Top-3 ↑ | FID ↓ | MM-Dist ↓ | Diversity → "
               "| MultiModality ↑ |"), "|---|---|---|---|---|---|---|---|"]
    table_rows = [("Real", rows.get("real", {})), ("VQ-VAE reconstruction", rows.get("vq_recon", {}))]
    if "t2m" in tasks:
        table_rows.append(("Ours (t2m)", tasks["t2m"]["metrics"]))
    for name, m in table_rows:
        cells = [_fmt(m.get(k)) for k in ("top1", "top2", "top3", "fid", "matching_score", "diversity",
                                          "multimodality")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "t2m" in tasks:
        t = tasks["t2m"]
        extra = f"{t['n_texts']} texts per repeat; parsed {_fmt(t['metrics'].get('parsed_rate'))}"
        if "multimodality" in t:
            mm = t["multimodality"]
            extra += f"; MultiModality on {mm['texts']} texts x {mm['gens']} generations ({mm['times']} pairs)"
        lines += ["", extra]

    keys = [t for t in KEY_TASKS if t in tasks]
    if keys:
        lines += ["", "## Key-token tasks", "",
                  ("Key tokens drawn from the real motion's codes. Placed: key tokens at their place in the output "
                  "(constrained decoding / free decoding). Key-pose distance: mm between the decoded pose at a placed "
                  "key and the real pose where its code came from (pelvis and facing aligned); the VQ-VAE "
                  "reconstruction's distance is the floor."), "",
                  ("| task | texts | placed (constrained) | placed (free) | all keys placed (free) | parsed (free) "
                  "| key-pose mm | VQ-VAE recon key-pose mm | FID | R-Precision Top-3 |"),
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for t in keys:
            m = tasks[t]["metrics"]
            cells = [str(tasks[t]["n_texts"]), _fmt(m.get("pair_rate")), _fmt(m.get("free_pair_rate")),
                     _fmt(m.get("free_sample_rate")), _fmt(m.get("free_parsed_rate")), _fmt(m.get("key_pose_mm"), 1),
                     _fmt(m.get("vq_recon_key_pose_mm"), 1), _fmt(m.get("fid")), _fmt(m.get("top3"))]
            lines.append(f"| {t} ({tasks[t]['key_mode']}) | " + " | ".join(cells) + " |")

    if "m2t" in tasks:
        m = tasks["m2t"]["metrics"]
        lines += ["", "## Motion-to-text", "",
                  ("Captions of the real motions' codes against all their captions; R-precision / MM-Dist: the "
                  "generated captions against the real motions through the evaluator (the Real row above is the "
                  "real captions')."), "",
                  ("| texts | BLEU@1 ↑ | BLEU@4 ↑ | ROUGE-L ↑ | CIDEr ↑ | BERTScore ↑ | R-Precision Top-1 ↑ | Top-3 ↑ "
                  "| MM-Dist ↓ | empty |"), "|---|---|---|---|---|---|---|---|---|---|"]
        cells = [str(tasks["m2t"]["n_texts"])] + [_fmt(m.get(k)) for k in (
            "bleu1", "bleu4", "rouge_l", "cider", "bertscore_f1", "top1", "top3", "matching_score", "empty_rate")]
        lines.append("| " + " | ".join(cells) + " |")

    motion = [t for t in ("pred", "inbetween") if t in tasks]
    if motion:
        lines += ["", "## Prediction and in-betweening", "",
                  (f"Given: pred the first {cfg['pred_context']:.0%} of the real codes; inbetween the first and last "
                  f"{cfg['inbetween_context']:.0%}. ADE / FDE in metres over the generated frames (all joints); "
                  "the VQ-VAE reconstruction of the real codes is the floor."), "",
                  "| task | texts | ADE m ↓ | FDE m ↓ | VQ-VAE recon ADE | VQ-VAE recon FDE | FID ↓ | Diversity → |",
                  "|---|---|---|---|---|---|---|---|"]
        for t in motion:
            m = tasks[t]["metrics"]
            cells = [str(tasks[t]["n_texts"])] + [_fmt(m.get(k)) for k in (
                "ade", "fde", "vq_recon_ade", "vq_recon_fde", "fid", "diversity")]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")

    if ds["labels"]:
        lines += ["", "## Semantic accuracy (synthetic corpus)", "",
                  ("Fraction of motions that do everything their caption states (actions, order, sides, counts, "
                  "nothing unrequested), checked on the joints."), "", "| motions | accuracy |", "|---|---|",
                  f"| Real | {_fmt(rows.get('real', {}).get('semantic_accuracy'))} |",
                  f"| VQ-VAE reconstruction | {_fmt(rows.get('vq_recon', {}).get('semantic_accuracy'))} |"]
        for t in tasks:
            if "semantic_accuracy" in tasks[t]["metrics"]:
                lines.append(f"| Ours ({t}) | {_fmt(tasks[t]['metrics']['semantic_accuracy'])} |")
        fams = result.get("semantic_per_family") or {}
        if fams:
            lines += ["", "Per action family (t2m, stated actions pooled over the repeats):", "",
                      "| family | accuracy | actions |", "|---|---|---|"]
            lines += [f"| {f} | {v['accuracy']:.3f} | {v['n']} |" for f, v in fams.items()]
    lines += _caption_files_markdown(result.get("captions") or {})
    c = result["cache"]
    lines += ["", (f"Generations: {c['generated']} task-repeat(s) generated ({c['samples_generated']} samples), "
                  f"{c['reused']} reused from the cache; {result['seconds']['total']:.0f} s."), ""]
    return "\n".join(lines)


def _caption_files_markdown(files: dict[str, Any]) -> list[str]:
    """The metrics.md section of ``result["captions"]`` (none without caption files)."""
    if not files:
        return []
    lines = ["", "## Caption files", "",
             ("Text-to-motion of the clips each file lists, from the file's own captions (the t2m task's sampling "
              "and seeds), checked for what every caption of the clip states (caption-free checks). Template: the "
              "t2m samples of the same clips under the same checks (no t2m task: -)."), "",
             "| file | clips | semantic accuracy | template captions | parsed |", "|---|---|---|---|---|"]
    for stem, e in files.items():
        lines.append(f"| {stem} | {e['n']} | {_fmt(e.get('semantic_accuracy'))} | "
                     f"{_fmt(e.get('template_semantic_accuracy'))} | {_fmt(e.get('parsed_rate'))} |")
    fams = sorted({f for e in files.values() for f in e["per_action"]})
    lines += ["", "Per action family: accuracy of the file's captions (template captions), stated actions pooled "
              "over the repeats:", "", "| family | " + " | ".join(files) + " |", "|---|" + "---|" * len(files)]
    for f in fams:
        cells = []
        for e in files.values():
            v, t = e["per_action"].get(f), e["template_per_action"].get(f)
            cells.append("-" if v is None else f"{v['accuracy']:.3f}" + (f" ({t['accuracy']:.3f})" if t else "")
                         + f" of {v['n']}")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return lines


def write_metrics(result: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``metrics.json`` and ``metrics.md`` into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    paths = {"json": out / "metrics.json", "md": out / "metrics.md"}
    text = json.dumps(result, indent=1, allow_nan=False) + "\n"  # NaN would not be valid JSON: fail loudly
    atomic_write_text(paths["json"], text)
    atomic_write_text(paths["md"], format_markdown(result))
    return paths

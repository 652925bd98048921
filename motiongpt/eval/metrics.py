"""The text-to-motion field's metrics, as pure functions on embeddings, codes and joints.

Embedding metrics (Guo et al. 2022, "Generating Diverse and Natural 3D Human Motions from Text",
the protocol T2M-GPT / MotionGPT report), computed on evaluator embeddings ``(N, D)``:

* :func:`fid`: Frechet distance between the Gaussians fitted to real and generated motion embeddings;
* :func:`r_precision`: for batches of 32 (text i, motion i) pairs, the fraction of texts whose own
  motion ranks in the top 1/2/3 of the 32 by Euclidean distance; :func:`matching_score`
  (MM-Dist): mean distance between a text and its motion (both come out of :func:`r_precision`);
* :func:`diversity`: mean distance of 300 random pairs of motions;
* :func:`multimodality`: for each text, mean distance between pairs of its generations.

Every function takes a ``seed`` where the protocol samples; :func:`mean_ci` turns the values of
N repeats into ``(mean, 1.96 * std / sqrt(N))`` as the papers report them (std with ``ddof=0``,
as T2M's ``get_metric_statistics``), and :func:`summarize_repeats` does it for dicts.

Task metrics: :func:`key_token_satisfaction` (requested key tokens present in generated code
sequences), :func:`key_pose_distance` (mm between generated and requested poses at given frames),
:func:`ade_fde` (average / final displacement in metres for prediction and in-betweening).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "euclidean_distance_matrix",
    "gaussian_stats",
    "frechet_distance",
    "fid",
    "r_precision_from_distances",
    "r_precision",
    "matching_score",
    "diversity",
    "multimodality",
    "mean_ci",
    "summarize_repeats",
    "key_token_satisfaction",
    "key_pose_distance",
    "ade_fde",
]


def _as_2d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (N, D) array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: no rows")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` Euclidean distances between the rows of ``a (N, D)`` and ``b (M, D)``."""
    a, b = _as_2d(a, "a"), _as_2d(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    # |a - b|^2 = |a|^2 - 2 a.b + |b|^2, clipped at 0 against rounding before the square root
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.clip(d2, 0.0, None))


# --------------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------------


def gaussian_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (``ddof=1``, as ``np.cov``) of ``(N, D)`` embeddings."""
    x = _as_2d(embeddings, "embeddings")
    if x.shape[0] < 2:
        raise ValueError(f"embeddings: need at least 2 rows for a covariance, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sym_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix by eigendecomposition (negative rounding clipped)."""
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians.

    ``tr((S1 S2)^(1/2))`` is computed as ``tr((S1^(1/2) S2 S1^(1/2))^(1/2))``: the same value
    (the two matrices are similar), but the inner matrix is symmetric PSD, so its square root comes
    from an eigendecomposition with no complex parts and no failure on singular covariances
    (``scipy.linalg.sqrtm`` of the non-symmetric product, as in T2M's code, can return complex
    values or NaN when a covariance is rank deficient, e.g. fewer samples than dimensions).
    """
    mu1, mu2 = np.asarray(mu1, np.float64).ravel(), np.asarray(mu2, np.float64).ravel()
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {s1.shape}, sigma2 {s2.shape}")
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
    r1 = _sym_sqrt(s1)
    inner = r1 @ s2 @ r1
    w = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    tr_covmean = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)  # tiny negative values are rounding (identical distributions)


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between real and generated motion embeddings (each ``(N, D)``)."""
    mu1, s1 = gaussian_stats(real)
    mu2, s2 = gaussian_stats(generated)
    if mu1.shape != mu2.shape:
        raise ValueError(f"embedding sizes differ: real {mu1.shape[0]} vs generated {mu2.shape[0]}")
    return frechet_distance(mu1, s1, mu2, s2)


# --------------------------------------------------------------------------------------------
# R-precision and matching score
# --------------------------------------------------------------------------------------------


def r_precision_from_distances(dist: np.ndarray, top_k: int = 3) -> np.ndarray:
    """Top-1..k hits of one batch: ``dist[i, j]`` = distance of text i to motion j, motion i is
    text i's own. Returns ``(top_k,)`` fractions of texts whose motion ranks within the first k.

    Ties rank the lower motion index first (a stable sort, as T2M's ``np.argsort``).
    """
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"dist: expected a square (B, B) matrix, got shape {d.shape}")
    b = d.shape[0]
    order = np.argsort(d, axis=1, kind="stable")  # (B, B) motions by distance per text
    rank = np.argmax(order == np.arange(b)[:, None], axis=1)  # (B,) 0-based rank of the own motion
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def r_precision(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    *,
    batch_size: int = 32,
    top_k: int = 3,
    seed: int | None = None,
) -> dict[str, float]:
    """R-precision and MM-Dist of paired embeddings (row i of both belongs to the same caption).

    As in the T2M protocol, pairs are grouped into batches of ``batch_size`` (the last incomplete
    batch is dropped, as T2M's loader does with ``drop_last=True``) and each text ranks its own
    motion among the batch's motions. ``seed`` shuffles the pairs before batching (T2M's loader
    shuffles; None keeps the given order).

    Returns:
        ``{"top1", "top2", "top3", "matching_score" (mean text-to-own-motion distance over the
        pairs used), "n_pairs"}``; fewer keys when ``top_k < 3``.
    """
    t, m = _as_2d(text_emb, "text_emb"), _as_2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape (paired rows)")
    if batch_size < 2 or top_k < 1 or top_k > batch_size:
        raise ValueError(f"need 2 <= batch_size and 1 <= top_k <= batch_size, got {batch_size}, {top_k}")
    n_batches = t.shape[0] // batch_size
    if n_batches == 0:
        raise ValueError(f"r_precision: {t.shape[0]} pairs is fewer than one batch of {batch_size}")
    idx = np.arange(t.shape[0])
    if seed is not None:
        idx = np.random.default_rng(seed).permutation(idx)
    hits = np.zeros(top_k)
    mm = 0.0
    for k in range(n_batches):
        sel = idx[k * batch_size : (k + 1) * batch_size]
        d = euclidean_distance_matrix(t[sel], m[sel])  # (B, B)
        hits += r_precision_from_distances(d, top_k)
        mm += float(np.trace(d))
    out = {f"top{k + 1}": float(hits[k] / n_batches) for k in range(top_k)}
    out["matching_score"] = mm / (n_batches * batch_size)
    out["n_pairs"] = n_batches * batch_size
    return out


def matching_score(text_emb: np.ndarray, motion_emb: np.ndarray) -> float:
    """MM-Dist over all pairs: mean Euclidean distance between row i of both (no batching)."""
    t, m = _as_2d(text_emb, "text_emb"), _as_2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape")
    return float(np.linalg.norm(t - m, axis=1).mean())


# --------------------------------------------------------------------------------------------
# Diversity and multimodality
# --------------------------------------------------------------------------------------------


def diversity(embeddings: np.ndarray, times: int = 300, seed: int | None = 0) -> float:
    """Mean distance between ``times`` random pairs of motion embeddings ``(N, D)``.

    As T2M's ``calculate_diversity``: two independent draws of ``times`` indices without
    replacement, paired in order (a pair may repeat an index, giving distance 0, as in the
    reference). ``times=None`` gives the exact mean over all ordered pairs (i, j), i != j.
    """
    x = _as_2d(embeddings, "embeddings")
    n = x.shape[0]
    if times is None:
        if n < 2:
            raise ValueError("diversity: need at least 2 embeddings")
        d = euclidean_distance_matrix(x, x)
        return float(d.sum() / (n * (n - 1)))
    if times < 1:
        raise ValueError(f"diversity: times must be >= 1, got {times}")
    if n < times:
        raise ValueError(
            f"diversity: {n} embeddings is fewer than times={times} (the protocol draws {times} distinct "
            "indices twice); pass a smaller times or times=None"
        )
    rng = np.random.default_rng(seed)
    first = rng.choice(n, times, replace=False)
    second = rng.choice(n, times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(embeddings: np.ndarray, times: int | None = 10, seed: int | None = 0) -> float:
    """MultiModality of ``(n_texts, n_gens, D)`` embeddings: generations of the same text.

    ``times``: as T2M's ``calculate_multimodality``, draw ``times`` generation indices twice without
    replacement (the same draw for every text), pair them in order and average the distances over
    texts and pairs (a pair may repeat an index). The protocol: 100 texts, ``times=10``. ``times=None``
    gives the exact mean over all pairs of distinct generations of each text.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"multimodality: expected (n_texts, n_gens, D) embeddings, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("multimodality: embeddings contain NaN or inf")
    n_texts, n_gens, _ = x.shape
    if n_texts == 0 or n_gens < 2:
        raise ValueError(f"multimodality: need >= 1 text with >= 2 generations, got shape {x.shape}")
    if times is None:
        i, j = np.triu_indices(n_gens, k=1)
        return float(np.linalg.norm(x[:, i] - x[:, j], axis=-1).mean())
    if not 1 <= times <= n_gens:
        raise ValueError(f"multimodality: times must be in [1, n_gens={n_gens}], got {times}")
    rng = np.random.default_rng(seed)
    first = rng.choice(n_gens, times, replace=False)
    second = rng.choice(n_gens, times, replace=False)
    return float(np.linalg.norm(x[:, first] - x[:, second], axis=-1).mean())


# --------------------------------------------------------------------------------------------
# Repeats
# --------------------------------------------------------------------------------------------


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
    """``(mean, 1.96 * std / sqrt(N))`` of N repeat values (std with ``ddof=0``, as T2M)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_ci: no values")
    if not np.isfinite(v).all():
        raise ValueError("mean_ci: values contain NaN or inf")
    return float(v.mean()), float(1.96 * v.std() / math.sqrt(v.size))


def summarize_repeats(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "ci95", "n"}}`` over the numeric keys shared by all repeat dicts."""
    if not runs:
        raise ValueError("summarize_repeats: no runs")
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for k in keys:
        if all(k in r for r in runs):
            m, ci = mean_ci(float(r[k]) for r in runs)
            out[k] = {"mean": m, "ci95": ci, "n": len(runs)}
    return out


# --------------------------------------------------------------------------------------------
# Key tokens, key poses, trajectories
# --------------------------------------------------------------------------------------------


def key_token_satisfaction(
    generated: Sequence[Sequence[int]],
    keys: Sequence[Sequence[Sequence[int]]],
    mode: str = "position",
) -> dict[str, float]:
    """How many requested key tokens the generated code sequences contain.

    Args:
        generated: one code sequence per sample (None or empty for a sample that did not parse:
            every key of it counts as missed).
        keys: per sample, ``(position, code)`` pairs. Positions index the generated sequence;
            negative positions count from its end (``-1``: the last code, for ``t2m_last``).
        mode: ``"position"``: the code must sit at its position (``t2m_init``/``t2m_last``/
            ``t2m_keys_pos``); ``"ordered"``: the codes must appear in the given order anywhere
            (positions ignored; ``t2m_keys``, which gives codes without positions); ``"anywhere"``:
            each code must appear somewhere.

    Returns:
        ``{"pair_rate": satisfied pairs / all pairs, "sample_rate": samples with all pairs
        satisfied / samples, "n_pairs", "n_samples"}``.
    """
    if len(generated) != len(keys):
        raise ValueError(f"key_token_satisfaction: {len(generated)} sequences but {len(keys)} key lists")
    if mode not in ("position", "ordered", "anywhere"):
        raise ValueError(f"mode must be 'position', 'ordered' or 'anywhere', not {mode!r}")
    if not keys:
        raise ValueError("key_token_satisfaction: no samples")
    n_pairs = n_hit = n_full = 0
    for s, (codes, pairs) in enumerate(zip(generated, keys)):
        seq = [] if codes is None else [int(c) for c in codes]
        pairs = [(int(p), int(c)) for p, c in pairs]
        if not pairs:
            raise ValueError(f"key_token_satisfaction: sample {s} has no key tokens")
        hits = 0
        if mode == "position":
            for p, c in pairs:
                q = p if p >= 0 else len(seq) + p
                hits += int(0 <= q < len(seq) and seq[q] == c)
        elif mode == "anywhere":
            present = set(seq)
            hits = sum(int(c in present) for _, c in pairs)
        else:  # ordered: greedy subsequence match (the longest matched prefix of the keys)
            pos = 0
            for _, c in pairs:
                try:
                    pos = seq.index(c, pos) + 1
                except ValueError:
                    break
                hits += 1
        n_pairs += len(pairs)
        n_hit += hits
        n_full += int(hits == len(pairs))
    return {"pair_rate": n_hit / n_pairs, "sample_rate": n_full / len(keys), "n_pairs": n_pairs, "n_samples": len(keys)}


def _as_joints(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected (T, J, 3) joints, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def key_pose_distance(
    generated: np.ndarray, key_poses: np.ndarray, frames: Sequence[int], *, root_aligned: bool = False
) -> dict[str, float]:
    """Distance in millimetres between a generated motion's poses and requested key poses.

    Args:
        generated: ``(T, J, 3)`` generated joints (metres).
        key_poses: ``(K, J, 3)`` requested poses (metres).
        frames: ``(K,)`` frame of each key pose in the generated motion.
        root_aligned: subtract the pelvis (joint 0) from both poses first (pose shape only).

    Returns:
        ``{"key_pose_mm": mean per-joint distance over the keys that fall inside the motion,
        "missing_rate": keys whose frame is beyond the generated length, "n_keys"}`` (the mean is
        NaN when every key is missing).
    """
    g = _as_joints(generated, "generated")
    k = _as_joints(key_poses, "key_poses")
    f = np.asarray(frames, dtype=np.int64).ravel()
    if k.shape[0] != f.shape[0]:
        raise ValueError(f"{k.shape[0]} key poses but {f.shape[0]} frames")
    if k.shape[1:] != g.shape[1:]:
        raise ValueError(f"key poses {k.shape[1:]} and generated joints {g.shape[1:]} differ in joints")
    if (f < 0).any():
        raise ValueError(f"frames must be >= 0, got {f.tolist()}")
    inside = f < g.shape[0]
    if not inside.any():
        return {"key_pose_mm": float("nan"), "missing_rate": 1.0, "n_keys": int(f.size)}
    a, b = g[f[inside]], k[inside]  # (K', J, 3)
    if root_aligned:
        a = a - a[:, :1]
        b = b - b[:, :1]
    dist = np.linalg.norm(a - b, axis=-1).mean() * 1000.0
    return {"key_pose_mm": float(dist), "missing_rate": float(1.0 - inside.mean()), "n_keys": int(f.size)}


def ade_fde(
    predicted: np.ndarray, target: np.ndarray, *, start: int = 0, joints: str | Sequence[int] = "all"
) -> dict[str, float]:
    """Average and final displacement error (metres) of a predicted continuation / in-between.

    Args:
        predicted: ``(T, J, 3)`` generated joints.
        target: ``(T', J, 3)`` ground truth joints.
        start: first frame compared (e.g. the end of the given prefix for ``pred``).
        joints: ``"all"`` (mean over joints, as motion prediction papers), ``"root"`` (the pelvis
            trajectory only) or a list of joint indices.

    Frames ``[start, min(T, T'))`` are compared. Returns ``{"ade", "fde", "n_frames"}``.
    """
    p, t = _as_joints(predicted, "predicted"), _as_joints(target, "target")
    if p.shape[1] != t.shape[1]:
        raise ValueError(f"predicted has {p.shape[1]} joints, target {t.shape[1]}")
    end = min(p.shape[0], t.shape[0])
    if not 0 <= start < end:
        raise ValueError(f"start={start} leaves no frames to compare (lengths {p.shape[0]}, {t.shape[0]})")
    if joints == "all":
        sel: Any = slice(None)
    elif joints == "root":
        sel = [0]
    else:
        sel = list(joints)
    err = np.linalg.norm(p[start:end, sel] - t[start:end, sel], axis=-1).mean(axis=1)  # (frames,)
    return {"ade": float(err.mean()), "fde": float(err[-1]), "n_frames": int(end - start)}

"""The T2M evaluation protocol on top of an evaluator: what ``eval.py`` loops over.

One repeat of the text-to-motion protocol takes the captions, the real motions they describe and
the generated motions (unnormalized HumanML3D features) and returns a flat dict::

    t2m_metrics(evaluator, captions, real, generated, seed=r)
    -> {"fid", "top1", "top2", "top3", "matching_score", "diversity",
        "real_top1", ..., "real_matching_score", "real_diversity", "n", "diversity_times"}

``eval.py`` calls it once per repeat (the papers use 20, each with fresh generations and a fresh
caption draw) and reduces the repeats with :func:`motiongpt.eval.metrics.summarize_repeats`
(mean and 95 % confidence half-width). MultiModality has its own sampling (a few texts, many
generations each): :func:`multimodality_metric`. ``evaluator`` is anything with the
``encode_text`` / ``encode_motion`` API: our :class:`~motiongpt.eval.evaluator.TextMotionEvaluator`
or the official :class:`~motiongpt.eval.official.OfficialT2MEvaluator`.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from motiongpt.eval.metrics import diversity, fid, multimodality, r_precision

__all__ = ["Evaluator", "t2m_metrics", "multimodality_metric", "real_split_metrics"]


class Evaluator(Protocol):
    """What the protocol needs from an evaluator."""

    def encode_text(self, captions: Sequence[Any]) -> np.ndarray: ...  # noqa: D102

    def encode_motion(self, features: Any, lengths: Sequence[int] | None = None) -> np.ndarray: ...  # noqa: D102


def t2m_metrics(
    evaluator: Evaluator,
    captions: Sequence[Any],
    real_features: Any,
    generated_features: Any,
    *,
    real_lengths: Sequence[int] | None = None,
    generated_lengths: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 32,
    diversity_times: int = 300,
) -> dict[str, Any]:
    """One repeat of the protocol: FID, R-precision, MM-Dist and Diversity of generated motions,
    and the same numbers for the real motions (the "Real" row of the papers' tables).

    Args:
        evaluator: the matching model.
        captions: caption i describes real motion i and generated motion i.
        real_features, generated_features: ``(N, T, D)`` arrays (with lengths) or lists of
            ``(T_i, D)`` unnormalized features.
        seed: shuffles the pairs into R-precision batches and draws the Diversity pairs.
        batch_size: R-precision batch (32 in the protocol; the last partial batch is dropped).
        diversity_times: random pairs for Diversity (300 in the protocol); capped at N when fewer
            motions are given (``diversity_times`` in the result says how many were used).

    Raises:
        ValueError: when the three inputs differ in length, or there are fewer than ``batch_size``.
    """
    n = len(captions)
    text = evaluator.encode_text(list(captions))  # (N, D)
    real = evaluator.encode_motion(real_features, real_lengths)  # (N, D)
    gen = evaluator.encode_motion(generated_features, generated_lengths)  # (N, D)
    if not (len(real) == len(gen) == n):
        raise ValueError(f"t2m_metrics: {n} captions, {len(real)} real and {len(gen)} generated motions")
    times = min(diversity_times, n)
    out: dict[str, Any] = {"fid": fid(real, gen)}
    for prefix, emb in (("", gen), ("real_", real)):
        rp = r_precision(text, emb, batch_size=batch_size, seed=seed)
        for k in ("top1", "top2", "top3", "matching_score"):
            out[prefix + k] = rp[k]
        out[prefix + "diversity"] = diversity(emb, times=times, seed=seed)
    out["n"] = n
    out["diversity_times"] = times
    return out


def multimodality_metric(
    evaluator: Evaluator, generations: Sequence[Sequence[np.ndarray]], *, times: int | None = 10, seed: int = 0
) -> float:
    """MultiModality of several generations per text (protocol: 100 texts x 10 generations,
    ``times=10``): ``generations[i]`` holds the ``(T, D)`` features generated for text i."""
    counts = {len(g) for g in generations}
    if len(counts) != 1:
        raise ValueError(f"multimodality_metric: every text needs the same number of generations, got {sorted(counts)}")
    n_gens = counts.pop()
    flat = [g for gens in generations for g in gens]
    emb = evaluator.encode_motion(flat)  # (n_texts * n_gens, D)
    return multimodality(emb.reshape(len(generations), n_gens, -1), times=times, seed=seed)


def real_split_metrics(
    evaluator: Evaluator, data_root: str, split: str = "test", *, repeats: int = 20, seed: int = 0,
    min_length: int = 40, max_length: int = 196,
) -> dict[str, float]:
    """R-precision and MM-Dist of the real motions of a split against their own captions (one
    random caption per motion per repeat, batches of 32), mean and 95 % half-width over ``repeats``:
    how well the evaluator itself separates the split's motions."""
    from motiongpt.data.humanml3d import load_humanml3d
    from motiongpt.eval.train import PairSet, validate_evaluator

    ds = load_humanml3d(data_root, split, min_length=min_length, max_length=max_length)
    clips = [c for c in ds.clips if c.captions]
    if ds.mean is None or ds.std is None:
        raise FileNotFoundError(f"{data_root} has no Mean.npy/Std.npy")
    pairs = PairSet(ids=[c.id for c in clips], features=[c.features for c in clips],
                    captions=[list(c.captions) for c in clips], mean=ds.mean, std=ds.std,
                    feature_dim=ds.feature_dim, dataset=ds.spec.name)
    return validate_evaluator(evaluator, pairs, repeats=repeats, seed=seed)  # type: ignore[arg-type]

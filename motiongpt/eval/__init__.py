"""Evaluation: the text-motion evaluator, the field's metrics and semantic accuracy.

* :mod:`motiongpt.eval.metrics`: FID, R-precision, MM-Dist, Diversity, MultiModality,
  ``mean_ci``; key-token satisfaction, key-pose distance, ADE/FDE (numpy only).
* :mod:`motiongpt.eval.text_metrics`: BLEU@1/@4, ROUGE-L, CIDEr, BERTScore (when local) for m2t.
* :mod:`motiongpt.eval.evaluator`: :class:`TextMotionEvaluator` (T2M's matching architecture with
  learned word embeddings), its typed config and presets; :func:`train_evaluator` in
  :mod:`motiongpt.eval.train` (CLI ``scripts/train_evaluator.py``).
* :mod:`motiongpt.eval.official`: loader of T2M's official evaluator for users with its files.
* :mod:`motiongpt.eval.protocol`: one repeat of the T2M protocol (``t2m_metrics``), MultiModality.
* :mod:`motiongpt.eval.run`: the ``eval.py`` driver: :func:`evaluate` generates with a checkpoint
  over repeats (resumable) and scores every task; :func:`write_metrics` writes ``metrics.json`` / ``.md``.
* :mod:`motiongpt.eval.semantic`: does a motion do what its synthetic caption says
  (``semantic_accuracy``).

Names are imported lazily (``from motiongpt.eval import fid`` works) so importing the package
does not pull in torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    # metrics (numpy)
    "fid": "motiongpt.eval.metrics",
    "frechet_distance": "motiongpt.eval.metrics",
    "r_precision": "motiongpt.eval.metrics",
    "matching_score": "motiongpt.eval.metrics",
    "diversity": "motiongpt.eval.metrics",
    "multimodality": "motiongpt.eval.metrics",
    "mean_ci": "motiongpt.eval.metrics",
    "summarize_repeats": "motiongpt.eval.metrics",
    "key_token_satisfaction": "motiongpt.eval.metrics",
    "key_pose_distance": "motiongpt.eval.metrics",
    "ade_fde": "motiongpt.eval.metrics",
    # text metrics
    "text_metrics": "motiongpt.eval.text_metrics",
    # evaluator
    "EvaluatorConfig": "motiongpt.eval.evaluator",
    "TextMotionEvaluator": "motiongpt.eval.evaluator",
    "get_preset": "motiongpt.eval.evaluator",
    "train_evaluator": "motiongpt.eval.train",
    "load_official_evaluator": "motiongpt.eval.official",
    "OfficialT2MEvaluator": "motiongpt.eval.official",
    # protocol
    "t2m_metrics": "motiongpt.eval.protocol",
    "multimodality_metric": "motiongpt.eval.protocol",
    "real_split_metrics": "motiongpt.eval.protocol",
    # the eval.py driver
    "EvalConfig": "motiongpt.eval.run",
    "evaluate": "motiongpt.eval.run",
    "write_metrics": "motiongpt.eval.run",
    "format_markdown": "motiongpt.eval.run",
    # semantic accuracy
    "semantic_accuracy": "motiongpt.eval.semantic",
    "check_motion": "motiongpt.eval.semantic",
    "detect_events": "motiongpt.eval.semantic",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'motiongpt.eval' has no attribute {name!r}")

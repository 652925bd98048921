"""Motion tokenizer: the T2M-GPT VQ-VAE that turns HumanML3D features into integer codes and back.

* :class:`VQVAE` (``motiongpt.vq.model``): the model, ``encode``/``decode`` helpers on
  unnormalized features, ``save_pretrained``/``from_pretrained`` checkpoint directories.
* :class:`VQConfig` and presets ``t2m``/``tiny`` (``motiongpt.vq.config``).
* :func:`train_vqvae` (``motiongpt.vq.train``), :func:`evaluate_vqvae` (``motiongpt.vq.evaluate``),
  :func:`encode_dataset` (``motiongpt.vq.prepare``): imported lazily (they pull in accelerate,
  TensorBoard and the motion/data modules).
"""

from __future__ import annotations

from typing import Any

from motiongpt.vq.config import PRESETS, VQConfig, VQDataConfig, VQModelConfig, VQTrainConfig, get_preset
from motiongpt.vq.model import VQVAE, QuantizeEMAReset, VQOutput, length_buckets

__all__ = [
    "PRESETS",
    "VQConfig",
    "VQDataConfig",
    "VQModelConfig",
    "VQTrainConfig",
    "get_preset",
    "VQVAE",
    "QuantizeEMAReset",
    "VQOutput",
    "length_buckets",
    "train_vqvae",
    "evaluate_vqvae",
    "encode_dataset",
    "token_cache_status",
]

_LAZY = {
    "train_vqvae": "motiongpt.vq.train",
    "evaluate_vqvae": "motiongpt.vq.evaluate",
    "encode_dataset": "motiongpt.vq.prepare",
    "token_cache_status": "motiongpt.vq.prepare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'motiongpt.vq' has no attribute {name!r}")

"""Generation: fine-tuned LLM + VQ-VAE -> motions (and captions), with constrained decoding.

::

    from motiongpt.generate import MotionGenerator, GenerationRequest, SamplingConfig, save_results

    gen = MotionGenerator.from_checkpoint("lora/tiny_demo_lora")
    results = gen.generate([GenerationRequest("t2m", "a person jumps twice.", length_frames=120)],
                           SamplingConfig(temperature=0.8, top_k=50, seed=0))
    save_results(results, "outputs/gen")  # <name>.npy / _feats.npy / _tokens.txt / .gif / .bvh + results.json

Modules: :mod:`~motiongpt.generate.request` (requests, sampling settings, results, text files),
:mod:`~motiongpt.generate.spec` and :mod:`~motiongpt.generate.constraints` (the constrained-decoding
``LogitsProcessor``), :mod:`~motiongpt.generate.guidance` (classifier-free guidance of
text-to-motion decoding), :mod:`~motiongpt.generate.generator` (:class:`MotionGenerator`),
:mod:`~motiongpt.generate.io` (:func:`save_results`), :mod:`~motiongpt.generate.inputs`
(``generate_motion.py``'s options -> requests). The names below are imported on first use, so
``import motiongpt.generate.request`` (validation of inputs) costs no torch / transformers import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MotionGenerator": "generator",
    "load_motion_array": "generator",
    "GenerationRequest": "request",
    "GenerationResult": "request",
    "SamplingConfig": "request",
    "read_text_path": "request",
    "frames_to_codes": "request",
    "save_results": "io",
    "RESULTS_FILE": "io",
    "RowSpec": "spec",
    "TokenTables": "constraints",
    "MotionConstraintProcessor": "constraints",
    "SeededSampler": "constraints",
    "GuidanceLogitsProcessor": "guidance",
    "UnconditionalPrefix": "guidance",
    "guided_log_probs": "guidance",
    "GUIDANCE_TASKS": "request",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'motiongpt.generate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"motiongpt.generate.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

"""Procedural synthetic motion corpus in the HumanML3D layout (the project's embedded training data).

No dataset can be downloaded here, so this package animates the SMPL 22-joint skeleton
procedurally: 13 action families (walk, run, walk backward, sidestep, turn, spin, jump, squat,
kick, wave, raise arm(s), clap, stand idle) with parameters, sequenced into compositions of 1-3
actions, with faithful paraphrased captions and structured labels a checker can verify.

Main entry point: :func:`build_synthetic_dataset` (CLI: ``scripts/make_synthetic_dataset.py``).
Bands and parameter names for checkers: :mod:`motiongpt.data.synthetic.labels`.
"""

from motiongpt.data.synthetic.actions import FAMILIES, LOCOMOTION
from motiongpt.data.synthetic.corpus import (
    GENERATOR_VERSION,
    MAX_LENGTH,
    MIN_LENGTH,
    RESERVED_TEST_PAIRS,
    build_synthetic_dataset,
    has_reserved_pair,
    render_plan,
    split_roles,
    synthesize_clip,
    synthesize_clips,
)
from motiongpt.data.synthetic.verify import measure_clip, verify_clip

__all__ = [
    "FAMILIES",
    "LOCOMOTION",
    "GENERATOR_VERSION",
    "MIN_LENGTH",
    "MAX_LENGTH",
    "RESERVED_TEST_PAIRS",
    "build_synthetic_dataset",
    "has_reserved_pair",
    "render_plan",
    "split_roles",
    "synthesize_clip",
    "synthesize_clips",
    "measure_clip",
    "verify_clip",
]

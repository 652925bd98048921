"""Fixtures of the generation tests: barely trained nano checkpoints (vocab LoRA, digits full) and
their generators, built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_testlib import make_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def _single_thread():
    """One intra-op thread (a shared 2-core machine: OpenMP barriers stall with two)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def vocab_run(tmp_path_factory) -> Path:
    """A LoRA run (vocab format, 32 codes) trained 3 steps on records of all eight tasks."""
    import torch

    torch.set_num_threads(1)
    return make_checkpoint(tmp_path_factory.mktemp("gen_vocab"), "vocab", "lora")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A full fine-tune (digits format, bare outputs) trained 3 steps on records of all eight tasks."""
    import torch

    torch.set_num_threads(1)
    return make_checkpoint(tmp_path_factory.mktemp("gen_digits"), "digits", "full")


@pytest.fixture(scope="session")
def vocab_gen(vocab_run):
    from motiongpt.generate import MotionGenerator

    return MotionGenerator.from_checkpoint(vocab_run)


@pytest.fixture(scope="session")
def digits_gen(digits_run):
    from motiongpt.generate import MotionGenerator

    return MotionGenerator.from_checkpoint(digits_run)

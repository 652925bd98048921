"""Fixtures of the evaluation tests: a small synthetic corpus built in code (no shared data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from motiongpt.data.synthetic import build_synthetic_dataset

N_CLIPS = 60


@pytest.fixture(scope="session")
def syn_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-clip synthetic corpus (HumanML3D layout + labels; session-wide, read-only)."""
    out = tmp_path_factory.mktemp("eval_syn") / "corpus"
    build_synthetic_dataset(out, N_CLIPS, seed=3, workers=1)
    return out


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """One intra-op thread: tiny models gain nothing from two on a shared CPU (see tests/vq)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

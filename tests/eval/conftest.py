"""Fixtures of the evaluation tests: a small synthetic corpus built in code (no shared data)."""

from __future__ import annotations

import sys
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


SMALL_EVALUATOR = ["model.dim_word=16", "model.dim_text_hidden=32", "model.dim_coemb_hidden=32",
                   "model.dim_movement_enc_hidden=32", "model.dim_movement_latent=32", "model.dim_motion_hidden=32"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nano LoRA run (vocab format; records of all eight tasks, 3 steps) for the eval.py tests."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))
    from gen_testlib import make_checkpoint

    root = tmp_path_factory.mktemp("eval_run_checkpoint")
    torch.set_num_threads(1)
    make_checkpoint(root, "vocab", "lora")
    return root / "run_vocab_lora"


@pytest.fixture(scope="session")
def evaluator_dir(tmp_path_factory: pytest.TempPathFactory, syn_corpus: Path) -> Path:
    """An untrained small evaluator over the corpus's vocabulary and Mean/Std (the driver's
    bookkeeping does not need a trained one)."""
    import torch

    from motiongpt.config import apply_overrides
    from motiongpt.data.humanml3d import load_humanml3d
    from motiongpt.eval.evaluator import TextMotionEvaluator, get_preset
    from motiongpt.eval.text import Vocabulary

    out = tmp_path_factory.mktemp("eval_run_evaluator")
    ds = load_humanml3d(syn_corpus, "train")
    torch.manual_seed(0)
    cfg = apply_overrides(get_preset("tiny"), SMALL_EVALUATOR)
    vocab = Vocabulary.build(c for clip in ds.clips for c in clip.captions)
    TextMotionEvaluator(cfg, vocab, mean=ds.mean, std=ds.std).save_pretrained(out)
    return out

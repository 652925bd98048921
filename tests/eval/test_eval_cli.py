"""eval.py through a subprocess, at nano size: metrics.json / metrics.md, and option errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motiongpt.config import apply_overrides
from motiongpt.data.humanml3d import load_humanml3d
from motiongpt.eval.evaluator import TextMotionEvaluator, get_preset
from motiongpt.eval.text import Vocabulary

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))

from gen_testlib import make_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The nano LoRA run of test_eval_run.py (same folder: built once per session)."""
    root = tmp_path_factory.getbasetemp() / "eval_run_checkpoint"
    run = root / "run_vocab_lora"
    if not (run / "train_summary.json").is_file():
        torch.set_num_threads(1)
        make_checkpoint(root, "vocab", "lora")
    return run


@pytest.fixture(scope="module")
def evaluator_dir(tmp_path_factory, syn_corpus) -> Path:
    """The untrained small evaluator of test_eval_run.py (same folder: built once per session)."""
    out = tmp_path_factory.getbasetemp() / "eval_run_evaluator"
    if not (out / "manifest.json").is_file():
        ds = load_humanml3d(syn_corpus, "train")
        torch.manual_seed(0)
        cfg = apply_overrides(get_preset("tiny"), [
            "model.dim_word=16", "model.dim_text_hidden=32", "model.dim_coemb_hidden=32",
            "model.dim_movement_enc_hidden=32", "model.dim_movement_latent=32", "model.dim_motion_hidden=32"])
        vocab = Vocabulary.build(c for clip in ds.clips for c in clip.captions)
        TextMotionEvaluator(cfg, vocab, mean=ds.mean, std=ds.std).save_pretrained(out)
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(REPO / "eval.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_cli_writes_metrics_and_resumes(run_dir, evaluator_dir, syn_corpus, tmp_path):
    out = tmp_path / "eval"
    args = ["--lora_path", str(run_dir), "--data_root", str(syn_corpus), "--evaluator", str(evaluator_dir),
            "--tasks", "t2m,t2m_keys_pos,m2t", "--repeats", "2", "--max_texts", "4", "--mm_texts", "2",
            "--mm_gens", "2", "--dataname", "t2m", "--seed", "3", "--no_progress", "--out_dir", str(out)]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["tasks"]) == {"t2m", "t2m_keys_pos", "m2t"} and doc["config"]["seed"] == 3
    assert doc["dataset"]["n_motions"] == 4 and doc["tasks"]["t2m"]["metrics"]["top3"]["n"] == 2
    md = (out / "metrics.md").read_text()
    for row in ("| Real |", "| VQ-VAE reconstruction |", "| Ours (t2m) |", "| t2m_keys_pos (position) |",
                "## Motion-to-text", "## Semantic accuracy"):
        assert row in md, row
    assert "R-precision batches of 4" in md  # fewer motions than 32: flagged as not comparable
    assert md.strip() in proc.stdout
    # t2m, t2m_keys_pos, its free pass, m2t and MultiModality, two repeats each
    assert len(list((out / "cache").glob("*/repeat_*.json"))) == 10
    assert doc["cache"]["generated"] == 10 and doc["cache"]["reused"] == 0

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    doc2 = json.loads((out / "metrics.json").read_text())
    assert doc2["cache"]["generated"] == 0 and doc2["cache"]["reused"] == 10
    assert doc2["per_repeat"] == doc["per_repeat"]

    # other settings on the same cache: an error naming the change, pointing at --fresh
    changed = run_cli(*[a if a != "3" else "4" for a in args])
    assert changed.returncode == 2 and "seed: 3 -> 4" in changed.stderr and "--fresh" in changed.stderr


def test_cli_rejects_bad_options_before_loading(tmp_path):
    bad = run_cli("--lora_path", str(tmp_path), "--data_root", str(tmp_path), "--out_dir", str(tmp_path / "o"),
                  "--tasks", "t2m,dance")
    assert bad.returncode == 2 and "unknown task(s) ['dance']" in bad.stderr
    bad = run_cli("--lora_path", str(tmp_path), "--data_root", str(tmp_path), "--out_dir", str(tmp_path / "o"),
                  "--dataname", "humanml")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    missing = run_cli("--lora_path", str(tmp_path / "nope"), "--data_root", str(tmp_path),
                      "--out_dir", str(tmp_path / "o"))
    assert missing.returncode == 2 and "checkpoint directory not found" in missing.stderr
    assert not (tmp_path / "o").exists()

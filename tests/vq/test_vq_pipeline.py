"""End to end on a small synthetic corpus: train (CLI) -> evaluate (CLI) -> encode the dataset (CLI)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from motiongpt.utils.metrics import read_jsonl
from motiongpt.vq import VQVAE

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_vq_script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def syn_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from motiongpt.data.synthetic import build_synthetic_dataset

    root = tmp_path_factory.mktemp("vq_syn") / "data"
    build_synthetic_dataset(root, 40, 0, workers=1)
    return root


def test_train_eval_encode_on_synthetic_corpus(syn_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "vq"
    summary = _script("train_vqvae").main([
        "--config", str(REPO / "configs" / "vq" / "tiny.yaml"), "--data_root", str(syn_data), "--out_dir", str(out),
        "model.width=48", "model.code_dim=32", "model.nb_code=64", "train.batch_size=16", "train.total_iters=40",
        "train.warmup_iters=5", "train.lr=2e-3", "train.log_every=5", "train.eval_every=20", "train.save_every=20",
        "train.progress_bar=false",
    ])
    assert summary["steps"] == 40

    # The loss goes down: the mean of the last two logged windows against the first.
    losses = [r["loss"] for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "train"]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.9 * losses[0], losses

    vq = VQVAE.from_pretrained(out)
    assert vq.config.data.data_root == str(syn_data.resolve())
    np.testing.assert_array_equal(vq.mean_np, np.load(syn_data / "Mean.npy"))
    assert (out / "checkpoints" / "checkpoint-40").is_dir() and (out / "best").is_dir()

    metrics = _script("eval_vqvae").main(
        ["--vq", str(out), "--data_root", str(syn_data), "--split", "test", "--out", str(tmp_path / "eval.json")]
    )
    assert json.loads((tmp_path / "eval.json").read_text())["mpjpe_mm"] == pytest.approx(metrics["mpjpe_mm"])
    assert metrics["n_clips"] == 4 and 0 < metrics["mpjpe_mm"] < 1000
    assert 0 < metrics["codebook_usage_pct"] <= 100

    report = _script("prepare_data").main(["--vq", str(out), "--data_root", str(syn_data)])
    ids = (syn_data / "all.txt").read_text().split()
    assert report["n_files"] == len(ids) == 40 and not report["skipped"]
    for clip_id in ids[:2]:
        feats = np.load(syn_data / "new_joint_vecs" / f"{clip_id}.npy")
        codes = np.load(syn_data / "VQVAE" / f"{clip_id}.npy", allow_pickle=False)
        np.testing.assert_array_equal(codes, vq.encode(feats))
    assert _script("prepare_data").main(["--vq", str(out), "--data_root", str(syn_data)])["cached"] is True

"""VQ-VAE training loop: exact resume, checkpoint bookkeeping, logs, schedule, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from motiongpt.config import apply_overrides
from motiongpt.utils.metrics import read_jsonl
from motiongpt.vq import VQVAE, get_preset
from motiongpt.vq.train import latest_checkpoint, lr_factor, train_vqvae

SMALL = [
    "model.width=32", "model.code_dim=16", "model.nb_code=32", "train.batch_size=8", "train.warmup_iters=3",
    "train.log_every=2", "train.eval_every=4", "train.save_every=6", "train.keep_last=2",
    "train.progress_bar=false", "train.final_model=last", "train.lr=2e-3",
]


def cfg(*extra: str):
    return apply_overrides(get_preset("tiny"), SMALL + list(extra))


def test_resume_continues_exactly(toy_data: Path, tmp_path: Path) -> None:
    # 12 steps straight vs 6 steps, a restart from the checkpoint, 6 more.
    train_vqvae(cfg("train.total_iters=12", "train.tensorboard=false"), toy_data, tmp_path / "a")
    train_vqvae(cfg("train.total_iters=6", "train.tensorboard=false"), toy_data, tmp_path / "b")
    summary = train_vqvae(cfg("train.total_iters=12", "train.tensorboard=false"), toy_data, tmp_path / "b", resume=True)
    assert summary["resumed_from"].endswith("checkpoint-6") and summary["steps"] == 12
    a = VQVAE.from_pretrained(tmp_path / "a").state_dict()
    b = VQVAE.from_pretrained(tmp_path / "b").state_dict()
    assert set(a) == set(b)
    for k in a:  # weights and the codebook EMA buffers
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0), k
    # The run did change the weights (the comparison is not between two untouched inits).
    init = VQVAE(VQVAE.from_pretrained(tmp_path / "a").config).state_dict()
    assert not torch.allclose(a["encoder.layers.0.weight"], init["encoder.layers.0.weight"])
    # Metrics of the resumed run continue the first part's without duplicates.
    steps = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if r["split"] == "train"]
    assert steps == [2, 4, 6, 8, 10, 12]
    a_loss = [r["loss"] for r in read_jsonl(tmp_path / "a" / "metrics.jsonl") if r["split"] == "train"]
    b_loss = [r["loss"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if r["split"] == "train"]
    assert a_loss == pytest.approx(b_loss, abs=1e-6)


def test_outputs_checkpoints_and_logs(toy_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = train_vqvae(cfg("train.total_iters=14", "train.final_model=best"), toy_data, out)
    # The output directory itself is a checkpoint, as are best/ and each checkpoint-<step>/.
    model = VQVAE.from_pretrained(out)
    assert model.config.data.data_root == str(toy_data.resolve())
    assert model.config.model.nfeats == 263 and model.config.model.joints_num == 22
    assert summary["final_model"] == "best" and summary["best_step"] in (4, 8, 12, 14)
    best = VQVAE.from_pretrained(out / "best")
    assert torch.equal(best.quantizer.codebook, model.quantizer.codebook)
    # keep_last=2: checkpoints at 6, 12, 14 (end) -> the last two are kept.
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-14"]
    assert latest_checkpoint(out).name == "checkpoint-14"
    VQVAE.from_pretrained(out / "checkpoints" / "checkpoint-12")
    state = json.loads((out / "checkpoints" / "checkpoint-14" / "trainer_state.json").read_text())
    assert state["step"] == 14 and state["ranks"][0]["sampler"]["draws"] == 14
    records = read_jsonl(out / "metrics.jsonl")
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in val] == [4, 8, 12, 14]
    assert {"mpjpe_mm", "recon_loss", "codebook_usage_pct", "perplexity"} <= set(val[0])
    train = [r for r in records if r["split"] == "train"]
    assert {"loss", "recon", "pos", "commit", "lr", "perplexity"} <= set(train[0])
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 14


def test_refuses_to_clobber_or_resume_wrongly(toy_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_vqvae(cfg("train.total_iters=2"), toy_data, out, resume=True)
    train_vqvae(cfg("train.total_iters=2", "train.eval_every=2", "train.tensorboard=false"), toy_data, out)
    assert (out / "best").is_dir()
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_vqvae(cfg("train.total_iters=2"), toy_data, out)
    with pytest.raises(FileExistsError, match="already holds a run"):  # nor over a bare model
        VQVAE.from_pretrained(out).save_pretrained(tmp_path / "model")
        train_vqvae(cfg("train.total_iters=2"), toy_data, tmp_path / "model", resume="auto")
    with pytest.raises(ValueError, match=r"model.nb_code: 32 -> 64"):
        train_vqvae(cfg("train.total_iters=4", "model.nb_code=64"), toy_data, out, resume=True)
    with pytest.raises(ValueError, match=r"train.lr"):
        train_vqvae(cfg("train.total_iters=4", "train.lr=1e-4"), toy_data, out, resume=True)
    # overwrite=True starts over.
    summary = train_vqvae(
        cfg("train.total_iters=2", "train.eval_every=0", "train.tensorboard=false"), toy_data, out, overwrite=True
    )
    assert summary["resumed_from"] is None and summary["final_model"] == "last"
    assert not (out / "best").exists()  # the earlier run's best model is not inherited
    assert not [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"]


def test_lr_schedule_warmup_then_milestones() -> None:
    assert lr_factor(0, 1000, [200_000], 0.05) == pytest.approx(1 / 1001)
    assert lr_factor(999, 1000, [200_000], 0.05) == pytest.approx(1000 / 1001)
    assert lr_factor(1000, 1000, [200_000], 0.05) == 1.0
    assert lr_factor(199_999, 1000, [200_000], 0.05) == 1.0
    assert lr_factor(200_000, 1000, [200_000], 0.05) == pytest.approx(0.05)
    assert lr_factor(5, 0, [2, 4], 0.1) == pytest.approx(0.01)

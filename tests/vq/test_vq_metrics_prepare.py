"""Evaluation metrics and dataset encoding (token cache) on the toy dataset and the real sample clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from motiongpt.config import apply_overrides
from motiongpt.vq import VQVAE, get_preset
from motiongpt.vq.evaluate import evaluate_vqvae, format_metrics_table, reconstruction_metrics
from motiongpt.vq.prepare import encode_dataset, token_cache_status


def small_vq(mean: np.ndarray, std: np.ndarray, seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    cfg = apply_overrides(get_preset("tiny"), ["model.width=32", "model.code_dim=16", "model.nb_code=32"])
    m = VQVAE(cfg, mean=mean, std=std).train()
    m(torch.randn(4, 64, 263))  # codebook from encoder outputs
    return m.eval()


@pytest.fixture()
def toy_copy(toy_data: Path, tmp_path: Path) -> Path:
    """A private copy of the toy dataset (these tests write VQVAE/ into it)."""
    return Path(shutil.copytree(toy_data, tmp_path / "data"))


@pytest.fixture()
def toy_vq(toy_copy: Path, tmp_path: Path) -> Path:
    vq = small_vq(np.load(toy_copy / "Mean.npy"), np.load(toy_copy / "Std.npy"))
    return vq.save_pretrained(tmp_path / "vq")


def test_mpjpe_of_a_known_offset(toy_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vq = small_vq(np.load(toy_data / "Mean.npy"), np.load(toy_data / "Std.npy"))
    clips = [np.load(toy_data / "new_joint_vecs" / f"{i:06d}.npy") for i in range(3)]
    delta = 0.01  # 1 cm on the x of every root-relative joint (joints 1..21; the root is untouched)

    def fake_reconstruct(cl: list[np.ndarray], batch_size: int = 256) -> tuple[list, list]:
        out = []
        for c in cl:
            r = c.copy()
            r[:, 4:67:3] += delta
            out.append(r)
        return out, [np.zeros(c.shape[0] // 4, np.int64) for c in cl]

    monkeypatch.setattr(vq, "reconstruct_batch", fake_reconstruct)
    m = reconstruction_metrics(vq, clips)
    assert m["mpjpe_mm"] == pytest.approx(10.0 * 21 / 22, rel=1e-3)
    assert m["mpjpe_global_mm"] == pytest.approx(10.0 * 21 / 22, rel=1e-3)
    assert m["feature_mae"]["ric"] == pytest.approx(delta / 3, rel=1e-3)
    assert m["feature_mae"]["rot"] == 0.0 and m["feature_mae"]["vel"] == 0.0
    assert m["codebook_usage_pct"] == pytest.approx(100 / 32) and m["perplexity"] == pytest.approx(1.0, rel=1e-4)
    assert m["n_frames"] == sum(c.shape[0] // 4 * 4 for c in clips)


def test_evaluate_reports_and_never_writes(toy_copy: Path, toy_vq: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in toy_vq.iterdir()}
    m = evaluate_vqvae(toy_vq, toy_copy, "test", min_length=4)
    assert {p: p.stat().st_mtime_ns for p in toy_vq.iterdir()} == before
    assert m["n_clips"] == 6 and m["split"] == "test"
    assert m["mpjpe_mm"] > 0 and np.isfinite(m["mpjpe_global_mm"])
    assert set(m["feature_mae"]) == {"root", "ric", "rot", "vel", "contacts"}
    assert 0 < m["codebook_usage_pct"] <= 100 and 1 <= m["perplexity"] <= 32
    json.dumps(m)  # JSON-ready
    assert "MPJPE root-aligned" in format_metrics_table(m)


def test_encode_dataset_writes_codes_and_is_cached(toy_copy: Path, toy_vq: Path) -> None:
    report = encode_dataset(toy_vq, toy_copy)
    ids = (toy_copy / "all.txt").read_text().split()
    assert report["cached"] is False and report["n_files"] == len(ids) and not report["skipped"]
    vq = VQVAE.from_pretrained(toy_vq)
    for clip_id in ids[:3]:
        codes = np.load(toy_copy / "VQVAE" / f"{clip_id}.npy", allow_pickle=False)
        feats = np.load(toy_copy / "new_joint_vecs" / f"{clip_id}.npy")
        assert codes.dtype == np.int64 and codes.shape == (feats.shape[0] // 4,)
        np.testing.assert_array_equal(codes, vq.encode(feats))
    meta = json.loads((toy_copy / "VQVAE" / "meta.json").read_text())
    assert meta["vq"]["model.safetensors_sha256"] and meta["nb_code"] == 32 and meta["downsample"] == 4
    mtimes = {p.name: p.stat().st_mtime_ns for p in (toy_copy / "VQVAE").iterdir()}
    again = encode_dataset(toy_vq, toy_copy)
    assert again["cached"] is True
    assert {p.name: p.stat().st_mtime_ns for p in (toy_copy / "VQVAE").iterdir()} == mtimes
    assert token_cache_status(toy_copy, toy_vq)["current"]


def test_stale_cache_is_detected_and_rebuilt(toy_copy: Path, toy_vq: Path, tmp_path: Path) -> None:
    encode_dataset(toy_vq, toy_copy)
    other = small_vq(np.load(toy_copy / "Mean.npy"), np.load(toy_copy / "Std.npy"), seed=1)
    other_dir = other.save_pretrained(tmp_path / "vq_other")
    status = token_cache_status(toy_copy, other_dir)
    assert not status["current"] and "another VQ-VAE" in status["reason"]
    report = encode_dataset(other_dir, toy_copy)
    assert report["cached"] is False
    feats = np.load(toy_copy / "new_joint_vecs" / "000000.npy")
    np.testing.assert_array_equal(np.load(toy_copy / "VQVAE" / "000000.npy"), other.encode(feats))
    assert not token_cache_status(toy_copy, toy_vq)["current"]
    # Rebuilt data (same ids) is stale too.
    np.save(toy_copy / "new_joint_vecs" / "000001.npy", np.load(toy_copy / "new_joint_vecs" / "000002.npy"))
    assert "features files changed" in token_cache_status(toy_copy, other_dir)["reason"]


def test_bad_clips_are_skipped_and_reported(toy_copy: Path, toy_vq: Path) -> None:
    vecs = toy_copy / "new_joint_vecs"
    bad_nan = np.load(vecs / "000000.npy")
    bad_nan[3, 7] = np.nan
    np.save(vecs / "000000.npy", bad_nan)
    np.save(vecs / "000001.npy", np.zeros((50, 251), np.float32))
    (vecs / "000002.npy").write_bytes(b"not an npy file")
    np.save(vecs / "000003.npy", np.zeros((3, 263), np.float32))
    with open(toy_copy / "all.txt", "a") as f:
        f.write("missing_clip\n")
    report = encode_dataset(toy_vq, toy_copy)
    reasons = {s["id"]: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "000000": "NaN/inf in features",
        "000001": "wrong feature shape",
        "000002": "unreadable features npy",
        "000003": "too short",
        "missing_clip": "missing features file",
    }
    assert report["n_files"] == 24 - 4
    assert not (toy_copy / "VQVAE" / "000000.npy").exists()


def test_mirror_encodes_m_prefixed_clips(hml_dir: Path, tmp_path: Path) -> None:
    # The real sample clip: mirroring must go through joints and back to valid features.
    root = tmp_path / "data"
    (root / "new_joint_vecs").mkdir(parents=True)
    shutil.copy(hml_dir / "new_joint_vecs" / "012314.npy", root / "new_joint_vecs" / "012314.npy")
    (root / "all.txt").write_text("012314\n")
    mean, std = np.load(hml_dir / "Mean.npy"), np.load(hml_dir / "Std.npy")
    vq_dir = small_vq(mean, std).save_pretrained(tmp_path / "vq")
    report = encode_dataset(vq_dir, root, mirror=True)
    assert report["n_encoded"] == 1 and report["n_mirrored"] == 1
    from motiongpt.motion import features_to_joints, joints_to_features, mirror_joints

    feats = np.load(root / "new_joint_vecs" / "012314.npy")
    mirrored = joints_to_features(mirror_joints(features_to_joints(feats)))  # (169, 263)
    vq = VQVAE.from_pretrained(vq_dir)
    m_codes = np.load(root / "VQVAE" / "M012314.npy")
    assert m_codes.shape == (169 // 4,)
    np.testing.assert_array_equal(m_codes, vq.encode(mirrored))
    assert np.load(root / "VQVAE" / "012314.npy").shape == (170 // 4,)
    # The mirror flag is part of the cache identity.
    assert not token_cache_status(root, vq_dir, mirror=False)["current"]
    assert token_cache_status(root, vq_dir, mirror=True)["current"]


def test_real_clip_encode_decode_joints(hml_dir: Path) -> None:
    mean, std = np.load(hml_dir / "Mean.npy"), np.load(hml_dir / "Std.npy")
    vq = small_vq(mean, std)
    feats = np.load(hml_dir / "new_joint_vecs" / "012314.npy")  # (170, 263)
    codes = vq.encode(feats)
    assert codes.shape == (42,)
    assert vq.decode(codes).shape == (168, 263)
    joints = vq.codes_to_joints(codes)
    assert joints.shape == (168, 22, 3) and np.isfinite(joints).all()

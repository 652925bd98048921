"""VQ-VAE checkpoints: save/load round trip, strict loading, atomic saves, presets and YAML files."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from motiongpt.config import apply_overrides, load_config
from motiongpt.vq import VQVAE, VQConfig, get_preset
from motiongpt.vq.model import _write_manifest

REPO = Path(__file__).resolve().parents[2]


def trained_like_model(seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    cfg = apply_overrides(get_preset("tiny"), ["model.width=32", "model.code_dim=16", "model.nb_code=32"])
    rng = np.random.default_rng(seed)
    m = VQVAE(cfg, mean=rng.normal(size=263).astype(np.float32), std=rng.uniform(0.5, 2, 263).astype(np.float32))
    m.train()
    m(torch.randn(4, 64, 263))  # initialize the codebook so codes differ
    return m.eval()


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    m = trained_like_model()
    m.save_pretrained(tmp_path / "vq")
    assert sorted(p.name for p in (tmp_path / "vq").iterdir()) == [
        "config.yaml", "manifest.json", "mean.npy", "model.safetensors", "std.npy",
    ]
    loaded = VQVAE.from_pretrained(tmp_path / "vq")
    assert loaded.config == m.config
    np.testing.assert_array_equal(loaded.mean_np, m.mean_np)
    np.testing.assert_array_equal(loaded.std_np, m.std_np)
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    feats = np.random.default_rng(5).normal(size=(70, 263)).astype(np.float32) * m.std_np + m.mean_np
    codes = m.encode(feats)
    np.testing.assert_array_equal(loaded.encode(feats), codes)
    np.testing.assert_array_equal(loaded.decode(codes), m.decode(codes))
    assert len(set(codes.tolist())) > 1  # a meaningful comparison, not all-zero codes
    # Statistics come from mean.npy/std.npy, not from the weights file.
    assert not any("mean" in k or "std" in k for k in load_file(str(tmp_path / "vq" / "model.safetensors")))


def _retamper(folder: Path, state: dict) -> None:
    save_file(state, str(folder / "model.safetensors"))
    _write_manifest(folder)  # a consistent manifest, so the strict key check is what fires


@pytest.mark.parametrize("kind", ["missing", "unexpected", "shape"])
def test_strict_loading_names_the_bad_keys(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "vq"
    trained_like_model().save_pretrained(folder)
    state = load_file(str(folder / "model.safetensors"))
    if kind == "missing":
        del state["quantizer.code_count"]
        match = r"missing keys \['quantizer.code_count'\]"
    elif kind == "unexpected":
        state["decoder.extra.weight"] = torch.zeros(3)
        match = r"unexpected keys \['decoder.extra.weight'\]"
    else:
        state["encoder.layers.0.weight"] = torch.zeros(5, 263, 3)
        match = r"shape mismatches \['encoder.layers.0.weight: \(5, 263, 3\) vs expected \(32, 263, 3\)'\]"
    _retamper(folder, state)
    with pytest.raises(ValueError, match=match):
        VQVAE.from_pretrained(folder)


def test_manifest_detects_edited_files_and_missing_files(tmp_path: Path) -> None:
    folder = tmp_path / "vq"
    trained_like_model().save_pretrained(folder)
    np.save(folder / "std.npy", np.ones(263, np.float32))  # e.g. someone "fixes" the statistics
    with pytest.raises(ValueError, match=r"\['std.npy'\] do not match manifest.json"):
        VQVAE.from_pretrained(folder)
    (folder / "mean.npy").unlink()
    with pytest.raises(FileNotFoundError, match="mean.npy is missing"):
        VQVAE.from_pretrained(folder)


def test_killed_save_leaves_previous_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "vq"
    old = trained_like_model(seed=0)
    old.save_pretrained(folder)
    new = trained_like_model(seed=1)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(np, "save", crash)  # model.safetensors and config.yaml are written, then the kill
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(folder)
    monkeypatch.undo()
    loaded = VQVAE.from_pretrained(folder)
    for k, v in old.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert [p.name for p in tmp_path.iterdir()] == ["vq"]  # no temp directory left behind
    new.save_pretrained(folder)  # and a later save replaces it
    assert torch.equal(VQVAE.from_pretrained(folder).quantizer.codebook, new.quantizer.codebook)


def test_save_into_a_run_directory_keeps_other_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "metrics.jsonl").write_text("{}\n")
    m = trained_like_model()
    m.save_pretrained(out)
    assert (out / "metrics.jsonl").is_file() and (out / "checkpoints").is_dir()
    assert torch.equal(VQVAE.from_pretrained(out).quantizer.codebook, m.quantizer.codebook)

    # Interrupted after swapping in some files: loading refuses instead of mixing two models.
    real_replace = os.replace
    calls = {"n": 0}

    def replace_then_die(src: object, dst: object) -> None:
        if str(dst).endswith("config.yaml") and Path(str(dst)).parent == out:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        trained_like_model(seed=3).save_pretrained(out)
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        VQVAE.from_pretrained(out)


def test_presets_and_yaml_files_agree() -> None:
    for name in ("t2m", "tiny"):
        assert load_config(VQConfig, REPO / "configs" / "vq" / f"{name}.yaml") == get_preset(name), name
    t2m = get_preset("t2m")
    m, t = t2m.model, t2m.train
    assert (m.nb_code, m.code_dim, m.width, m.down_t, m.depth, m.dilation_growth_rate) == (512, 512, 512, 2, 3, 3)
    assert (t.window_size, t.batch_size, t.lr, tuple(t.betas)) == (64, 256, 2e-4, (0.9, 0.99))
    assert (t.warmup_iters, t.total_iters, t.lr_milestones, t.lr_gamma) == (1000, 300_000, [200_000], 0.05)
    tiny = get_preset("tiny").model
    assert (tiny.down_t, tiny.depth, tiny.dilation_growth_rate) == (2, 3, 3)  # same structure


def test_config_yaml_records_feature_dim_and_is_strict(tmp_path: Path) -> None:
    folder = tmp_path / "vq"
    trained_like_model().save_pretrained(folder)
    text = (folder / "config.yaml").read_text()
    assert "nfeats: 263" in text and "joints_num: 22" in text and "data_root:" in text
    (folder / "config.yaml").write_text(text.replace("nb_code: 32", "nb_codes: 32"))
    _write_manifest(folder)
    with pytest.raises(ValueError, match="unknown key"):
        VQVAE.from_pretrained(folder)


def test_invalid_config_values_are_rejected() -> None:
    cfg = get_preset("tiny")
    with pytest.raises(ValueError, match="window_size=62 is not a multiple"):
        VQVAE(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, window_size=62)))
    with pytest.raises(ValueError, match="nb_code must be > 0"):
        VQVAE(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nb_code=0)))


def test_manifest_lists_hashes_of_all_files(tmp_path: Path) -> None:
    trained_like_model().save_pretrained(tmp_path / "vq")
    manifest = json.loads((tmp_path / "vq" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "config.yaml", "mean.npy", "std.npy"}

"""Synthetic corpus: layout, consistency, determinism, splits, loader round trip, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.synthetic import FAMILIES, build_synthetic_dataset
from motiongpt.data.synthetic.corpus import (
    RESERVED_TEST_PAIRS,
    _rng,
    has_reserved_pair,
    sample_families,
    split_roles,
)
from motiongpt.motion.features import features_to_joints

REPO = Path(__file__).resolve().parents[2]
N_CLIPS = 50
SPLITS = ("train", "val", "test", "train_val", "all")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "corpus"
    build_synthetic_dataset(out, N_CLIPS, seed=7, workers=1)
    return out


def _ids(root: Path, split: str) -> list[str]:
    return (root / f"{split}.txt").read_text().split()


def _labels(root: Path) -> dict[str, dict]:
    return {i: json.loads((root / "labels" / f"{i}.json").read_text()) for i in _ids(root, "all")}


def test_layout_complete(corpus: Path) -> None:
    ids = _ids(corpus, "all")
    assert len(ids) == N_CLIPS and len(set(ids)) == N_CLIPS
    assert ids == [f"S{i:06d}" for i in range(N_CLIPS)]
    for sub, ext in (("new_joints", "npy"), ("new_joint_vecs", "npy"), ("texts", "txt"), ("labels", "json")):
        names = sorted(p.stem for p in (corpus / sub).glob(f"*.{ext}"))
        assert names == ids, sub
    for name in ("Mean.npy", "Std.npy", "meta.json") + tuple(f"{s}.txt" for s in SPLITS):
        assert (corpus / name).is_file(), name
    assert not [p for p in corpus.parent.iterdir() if p.name.startswith(".")], "temporary build folder left behind"


def test_joints_and_features_agree(corpus: Path) -> None:
    for cid in _ids(corpus, "all"):
        feats = np.load(corpus / "new_joint_vecs" / f"{cid}.npy")
        joints = np.load(corpus / "new_joints" / f"{cid}.npy")
        assert feats.dtype == np.float32 and joints.dtype == np.float32
        assert feats.ndim == 2 and feats.shape[1] == 263
        assert joints.shape == (feats.shape[0], 22, 3)
        assert 40 <= feats.shape[0] <= 196
        np.testing.assert_array_equal(joints, features_to_joints(feats))
        label = json.loads((corpus / "labels" / f"{cid}.json").read_text())
        assert label["length"] == feats.shape[0] and label["fps"] == 20 and label["id"] == cid
        assert all(0 <= s["start"] < s["end"] <= feats.shape[0] for s in label["segments"])


def test_mean_std_from_train_split(corpus: Path) -> None:
    from motiongpt.motion.stats import compute_mean_std

    mean, std = np.load(corpus / "Mean.npy"), np.load(corpus / "Std.npy")
    assert mean.shape == std.shape == (263,) and mean.dtype == np.float32
    assert np.all(std > 0)
    train = [np.load(corpus / "new_joint_vecs" / f"{i}.npy") for i in _ids(corpus, "train")]
    m2, s2 = compute_mean_std(train)
    np.testing.assert_array_equal(mean, m2)
    np.testing.assert_array_equal(std, s2)
    everything = [np.load(corpus / "new_joint_vecs" / f"{i}.npy") for i in _ids(corpus, "all")]
    assert not np.array_equal(mean, compute_mean_std(everything)[0]), "Mean must come from train only"


def test_splits_partition(corpus: Path) -> None:
    train, val, test = (set(_ids(corpus, s)) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(_ids(corpus, "all"))
    assert set(_ids(corpus, "train_val")) == train | val and len(_ids(corpus, "train_val")) == len(train) + len(val)
    assert (len(train), len(val), len(test)) == (40, 5, 5)  # 8/1/1 per block of 10


def test_test_compositions_unseen_in_train(corpus: Path) -> None:
    labels = _labels(corpus)
    seqs = {cid: tuple(lab["summary"]["families"]) for cid, lab in labels.items()}
    train_val = {seqs[i] for i in _ids(corpus, "train_val")}
    for cid in _ids(corpus, "test"):
        assert len(seqs[cid]) >= 2 and has_reserved_pair(seqs[cid]), seqs[cid]
        assert seqs[cid] not in train_val
    for cid in _ids(corpus, "train_val"):
        assert not has_reserved_pair(seqs[cid]), seqs[cid]


def test_split_rule_at_scale() -> None:
    """Over many draws: test always holds a reserved pair, train never; every family appears
    alone in train; roles are exactly 8/1/1 per block and prefix-stable."""
    singles: set[str] = set()
    train_pairs: set[tuple[str, str]] = set()
    for i in range(3000):
        fams = sample_families(_rng(0, 0, i), "train")
        assert not has_reserved_pair(fams)
        if len(fams) == 1:
            singles.add(fams[0])
        train_pairs.update(zip(fams[:-1], fams[1:]))
        assert has_reserved_pair(sample_families(_rng(0, 0, i), "test"))
    assert singles == set(FAMILIES)
    assert not train_pairs & set(RESERVED_TEST_PAIRS)
    roles = split_roles(3, 1000)
    for b in range(0, 1000, 10):
        assert sorted(roles[b : b + 10]) == sorted(["train"] * 8 + ["val", "test"])
    assert split_roles(3, 37) == roles[:37]
    assert split_roles(4, 100) != split_roles(3, 100)


def test_meta(corpus: Path) -> None:
    meta = json.loads((corpus / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["num_clips"] == N_CLIPS and meta["fps"] == 20
    assert meta["families"] == list(FAMILIES) and len(meta["families"]) >= 12
    assert [tuple(p) for p in meta["split_rule"]["reserved_test_pairs"]] == list(RESERVED_TEST_PAIRS)
    assert meta["counts"] == {"train": 40, "val": 5, "test": 5, "train_val": 45, "all": 50}
    assert meta["generator_version"]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_across_workers_and_seed_sensitive(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_synthetic_dataset(again, N_CLIPS, seed=7, workers=2)  # different worker count, same bytes
    a, b = _tree_bytes(corpus), _tree_bytes(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    other = tmp_path / "other"
    build_synthetic_dataset(other, N_CLIPS, seed=8, workers=1)
    c = _tree_bytes(other)
    assert c["new_joint_vecs/S000000.npy"] != a["new_joint_vecs/S000000.npy"]
    assert c["texts/S000003.txt"] != a["texts/S000003.txt"]


def test_refuses_non_empty_target(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        build_synthetic_dataset(target, 10, seed=0, workers=1)
    assert (target / "keep.txt").read_text() == "precious"
    build_synthetic_dataset(target, 10, seed=0, workers=1, overwrite=True)
    assert not (target / "keep.txt").exists() and len(_ids(target, "all")) == 10
    with pytest.raises(ValueError):
        build_synthetic_dataset(tmp_path / "tiny", 5, seed=0)


def test_loader_round_trip(corpus: Path) -> None:
    from motiongpt.data.humanml3d import load_humanml3d

    for split in SPLITS:
        ds = load_humanml3d(corpus, split, strict=True)
        assert len(ds) == len(_ids(corpus, split)), split
        assert ds.report.n_errors == 0
    ds = load_humanml3d(corpus, "train", joints="file")
    clip = ds[0]
    assert clip.features.shape[1] == 263 and len(clip.captions) >= 3
    np.testing.assert_array_equal(ds.mean, np.load(corpus / "Mean.npy"))


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [sys.executable, str(REPO / "scripts" / "make_synthetic_dataset.py"), "--out", str(out), "--num_clips", "10", "--seed", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["counts"]["all"] == 10 and len(_ids(out, "all")) == 10
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 2 and "overwrite" in res.stderr
    res = subprocess.run(cmd + ["--overwrite", "--workers", "1"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr

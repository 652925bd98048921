"""compute_mean_std: the published Mean/Std recipe (per-dimension mean, block-averaged std)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motiongpt.motion import compute_mean_std, feature_blocks, joints_to_features_batch, random_motion

HML_BLOCKS = [(0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263)]
KIT_BLOCKS = [(0, 1), (1, 3), (3, 4), (4, 64), (64, 184), (184, 247), (247, 251)]


def test_blocks_are_the_reference_ones() -> None:
    assert [(s.start, s.stop) for s in feature_blocks(22).values()] == HML_BLOCKS
    assert [(s.start, s.stop) for s in feature_blocks(21).values()] == KIT_BLOCKS


@pytest.mark.parametrize("dim, blocks", [(263, HML_BLOCKS), (251, KIT_BLOCKS)])
def test_closed_form(dim: int, blocks: list[tuple[int, int]]) -> None:
    # Dimension k takes the values c_k + (k + 1) and c_k - (k + 1), twice each over two clips:
    # mean c_k, std k + 1; the block std is the mean of k + 1 over the block.
    d = np.arange(1, dim + 1, dtype=np.float64)
    c = np.linspace(-1.0, 1.0, dim)
    clip_a = np.stack([c + d, c - d])
    clip_b = np.stack([c - d, c + d])
    mean, std = compute_mean_std([clip_a.astype(np.float32), clip_b])
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (dim,)
    np.testing.assert_allclose(mean, c, atol=1e-5)
    for a, b in blocks:
        np.testing.assert_allclose(std[a:b], np.full(b - a, (a + b + 1) / 2.0), rtol=1e-6)
    # One concatenated array gives the same.
    m2, s2 = compute_mean_std(np.concatenate([clip_a.astype(np.float32), clip_b]))
    np.testing.assert_array_equal(m2, mean)
    np.testing.assert_array_equal(s2, std)


def test_uneven_clips_weight_frames_not_clips() -> None:
    a = np.zeros((1, 263))
    b = np.ones((3, 263))
    mean, std = compute_mean_std([a, b])
    np.testing.assert_allclose(mean, 0.75)
    np.testing.assert_allclose(std, np.sqrt(0.75 * 0.25), rtol=1e-6)


def test_zero_std_fill() -> None:
    feats = joints_to_features_batch([random_motion(40, seed=s) for s in range(2)])
    feats = [f.copy() for f in feats]
    for f in feats:
        f[:, 259:263] = 1.0  # feet always in contact: that block never varies
    with pytest.raises(ValueError, match="foot_contacts"):
        compute_mean_std(feats)
    _, std = compute_mean_std(feats, zero_std_fill=1.0)
    np.testing.assert_array_equal(std[259:263], 1.0)
    assert (std[:259] > 0).all()


@pytest.mark.shared_data
def test_block_structure_of_official_std(hml_dir: Path) -> None:
    official = np.load(hml_dir / "Std.npy")
    feats = np.load(hml_dir / "new_joint_vecs" / "012314.npy")
    mean, std = compute_mean_std([feats[:80], feats[80:]], names=["a", "b"])
    np.testing.assert_allclose(mean, feats.astype(np.float64).mean(0), atol=1e-6)
    for a, b in HML_BLOCKS:
        assert np.ptp(official[a:b]) == 0.0  # the published Std is constant per block...
        assert np.ptp(std[a:b]) == 0.0  # ...and so is ours
    # ...and only per block: neighbouring blocks differ (in both).
    for (a, _), (b, _) in zip(HML_BLOCKS[:-1], HML_BLOCKS[1:]):
        assert official[a] != official[b] and std[a] != std[b]
    # The block value is the average of the per-dimension population stds.
    per_dim = feats.astype(np.float64).std(0)
    np.testing.assert_allclose(std[4], per_dim[4:67].mean(), rtol=1e-5)

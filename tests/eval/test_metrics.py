"""Closed-form checks of the embedding and task metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from motiongpt.eval.metrics import (
    ade_fde,
    diversity,
    euclidean_distance_matrix,
    fid,
    frechet_distance,
    key_pose_distance,
    key_token_satisfaction,
    matching_score,
    mean_ci,
    multimodality,
    r_precision,
    r_precision_from_distances,
    summarize_repeats,
)


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_frechet_distance_of_known_gaussians():
    # Gaussians with covariances sharing eigenvectors: FD = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2
    d = 6
    r = _rotation(d, 0)
    a, b = np.array([1.0, 2.0, 0.5, 3.0, 0.1, 4.0]), np.array([2.0, 2.0, 1.5, 0.3, 0.1, 1.0])
    s1, s2 = r @ np.diag(a) @ r.T, r @ np.diag(b) @ r.T
    mu1, mu2 = np.arange(d, dtype=float), np.arange(d, dtype=float) + 0.5
    expected = d * 0.25 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_the_sqrtm_formula_on_general_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)  # non-commuting
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    reference = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * covmean))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_fid_from_samples_approaches_the_analytic_value_and_survives_rank_deficiency():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20000, 3))
    y = rng.normal(size=(20000, 3)) * 2.0 + 1.0  # N(1, 4 I)
    # analytic: |1|^2 * 3 + 3 * (1 - 2)^2 = 6
    assert fid(x, y) == pytest.approx(6.0, rel=0.03)
    # fewer samples than dimensions: singular covariances give a finite value, not NaN / complex
    few = rng.normal(size=(5, 16))
    assert math.isfinite(fid(few, few + 0.1)) and fid(few, few) == pytest.approx(0.0, abs=1e-8)


def test_r_precision_on_a_hand_built_distance_matrix():
    # text i's own motion (column i) ranks i-th: 1 of 4 at rank 0, ..., so top-k = k / 4
    dist = np.array([
        [0.0, 1.0, 2.0, 3.0],
        [0.0, 1.0, 2.0, 3.0],
        [0.0, 1.0, 2.0, 3.0],
        [0.0, 1.0, 2.0, 3.0],
    ])
    assert r_precision_from_distances(dist, top_k=3).tolist() == [0.25, 0.5, 0.75]
    # ties rank the lower index first
    assert r_precision_from_distances(np.zeros((3, 3)), top_k=1).tolist() == [pytest.approx(1 / 3)]


def test_r_precision_batches_and_matching_score():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(70, 8))
    res = r_precision(m, m, batch_size=32, seed=0)  # every text sits on its own motion
    assert res["top1"] == res["top3"] == 1.0 and res["matching_score"] == pytest.approx(0.0, abs=1e-6)
    assert res["n_pairs"] == 64  # the last partial batch is dropped
    t = m + np.array([3.0, 4.0] + [0.0] * 6)  # every text 5 away from its motion
    assert matching_score(t, m) == pytest.approx(5.0)
    shuffled = r_precision(m[rng.permutation(70)], m, seed=0)
    assert shuffled["top3"] < 0.5
    with pytest.raises(ValueError, match="fewer than one batch"):
        r_precision(m[:10], m[:10])


def test_diversity_exact_and_sampled():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    # ordered pairs: 8 of distance 1 (sides), 4 of sqrt(2) (diagonals)
    assert diversity(square, times=None) == pytest.approx((8 * 1 + 4 * math.sqrt(2)) / 12)
    # points of a scaled simplex are all sqrt(2) * 3 apart; a sampled pair repeats an index with
    # probability 1/N, so the sampled mean is 3 sqrt(2) (1 - 1/N) in expectation
    n = 5000
    simplex = np.eye(n) * 3.0
    assert diversity(simplex, times=300, seed=0) == pytest.approx(3 * math.sqrt(2), rel=0.02)
    with pytest.raises(ValueError, match="fewer than times"):
        diversity(square, times=300)


def test_multimodality_known_sets():
    # text 0: two generations 3 apart; text 1: an equilateral triangle of side 2 (+ a copy)
    e = np.zeros((2, 3, 2))
    e[0] = [[0, 0], [3, 0], [3, 0]]  # pairs: 3, 3, 0
    e[1] = [[0, 0], [2, 0], [1, math.sqrt(3)]]  # pairs: 2, 2, 2
    assert multimodality(e, times=None) == pytest.approx((3 + 3 + 0 + 2 + 2 + 2) / 6)
    # sampled: distinct generations of a simplex are all d apart; expectation d (1 - 1/n_gens)
    gens = np.tile(np.eye(30)[None] * 2.0, (400, 1, 1))
    val = np.mean([multimodality(gens, times=10, seed=s) for s in range(200)])
    assert val == pytest.approx(2 * math.sqrt(2) * (1 - 1 / 30), rel=0.03)
    with pytest.raises(ValueError):
        multimodality(np.zeros((2, 5)))


def test_mean_ci_and_summaries():
    m, ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and ci == pytest.approx(1.96 * math.sqrt(1.25) / 2)
    s = summarize_repeats([{"fid": 1.0, "top1": 0.5, "name": "x"}, {"fid": 3.0, "top1": 0.5, "name": "y"}])
    assert s["fid"]["mean"] == 2.0 and s["fid"]["ci95"] == pytest.approx(1.96 * 1.0 / math.sqrt(2))
    assert s["top1"]["ci95"] == 0.0 and "name" not in s


def test_distance_matrix_agrees_with_direct_norms():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    direct = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert np.allclose(euclidean_distance_matrix(a, b), direct)


def test_key_token_satisfaction_modes():
    gen = [[5, 6, 7, 8], [1, 2, 3], None]
    keys = [[(0, 5), (3, 9)], [(-1, 3), (0, 1)], [(0, 1)]]
    pos = key_token_satisfaction(gen, keys, mode="position")
    assert pos["pair_rate"] == pytest.approx(3 / 5) and pos["sample_rate"] == pytest.approx(1 / 3)
    ordered = key_token_satisfaction([[4, 1, 9, 2]], [[(0, 1), (0, 2)]], mode="ordered")
    assert ordered["pair_rate"] == 1.0
    backwards = key_token_satisfaction([[4, 1, 9, 2]], [[(0, 2), (0, 1)]], mode="ordered")
    assert backwards["pair_rate"] == 0.5  # 2 is found, then no 1 after it
    assert key_token_satisfaction([[4, 1, 9, 2]], [[(0, 2), (0, 1)]], mode="anywhere")["pair_rate"] == 1.0


def test_key_pose_distance_and_trajectories():
    rng = np.random.default_rng(5)
    target = rng.normal(size=(20, 22, 3))
    gen = target.copy()
    gen[4] += np.array([0.0, 0.01, 0.0])  # 10 mm everywhere on frame 4
    res = key_pose_distance(gen, target[[4, 10]], [4, 10])
    assert res["key_pose_mm"] == pytest.approx(5.0) and res["missing_rate"] == 0.0
    shifted = target + np.array([0.5, 0.0, 0.0])
    assert key_pose_distance(shifted, target[[3]], [3], root_aligned=True)["key_pose_mm"] == pytest.approx(0.0, abs=1e-9)
    assert key_pose_distance(gen, target[[4, 3]], [4, 30])["missing_rate"] == 0.5
    # drift growing by 1 cm per frame from frame 10 on: ADE over frames 10..19 = mean(0..9) cm
    drift = target.copy()
    drift[10:] += (np.arange(10) * 0.01)[:, None, None] * np.array([1.0, 0.0, 0.0])
    out = ade_fde(drift, target, start=10)
    assert out["ade"] == pytest.approx(0.045) and out["fde"] == pytest.approx(0.09) and out["n_frames"] == 10
    assert ade_fde(drift, target, start=10, joints="root")["fde"] == pytest.approx(0.09)

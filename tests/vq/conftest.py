"""Fixtures of the VQ-VAE tests: a small toy dataset in HumanML3D layout (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_toy_dataset(root: Path, n_clips: int = 24, seed: int = 0, dim: int = 263) -> Path:
    """Smooth random features (sums of sinusoids) in HumanML3D layout, with splits and Mean/Std.

    Not physically valid motion, but structured enough for a VQ-VAE to learn and
    ``features_to_joints`` to turn into joints. Splits: 60 % train, 20 % val, 20 % test.
    """
    rng = np.random.default_rng(seed)
    (root / "new_joint_vecs").mkdir(parents=True, exist_ok=True)
    ids = [f"{i:06d}" for i in range(n_clips)]
    clips = []
    for clip_id in ids:
        t = int(rng.integers(44, 120))
        time = np.arange(t)[:, None] / 20.0
        freq = rng.uniform(0.2, 1.5, size=(3, dim))
        phase = rng.uniform(0, 2 * np.pi, size=(3, dim))
        amp = rng.uniform(0.02, 0.2, size=(3, dim))
        x = sum(amp[k] * np.sin(2 * np.pi * freq[k] * time + phase[k]) for k in range(3))
        x[:, dim - 4 :] = (x[:, dim - 4 :] > 0).astype(np.float64)  # binary foot contacts
        x[:, 3] += 0.9  # root height
        x = x.astype(np.float32)
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", x)
        clips.append(x)
    n_train, n_val = int(n_clips * 0.6), int(n_clips * 0.2)
    splits = {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}
    for name, split_ids in splits.items():
        (root / f"{name}.txt").write_text("\n".join(split_ids) + "\n")
    (root / "all.txt").write_text("\n".join(ids) + "\n")
    train = np.concatenate(clips[:n_train])
    np.save(root / "Mean.npy", train.mean(0).astype(np.float32))
    np.save(root / "Std.npy", (train.std(0) + 1e-2).astype(np.float32))
    return root


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-clip toy dataset (session-wide; tests must not modify it)."""
    return make_toy_dataset(tmp_path_factory.mktemp("vq_toy"))


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Run the VQ tests on one intra-op thread.

    On a machine shared with other jobs, OpenMP's thread barriers stall whenever one of torch's
    threads is descheduled (observed: 100x slower steps); these tiny models gain nothing from a
    second thread anyway.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

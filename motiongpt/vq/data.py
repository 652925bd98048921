"""Motion for the VQ-VAE: whole clips of a split, and a resumable random-window sampler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MotionSet", "load_motion_set", "WindowSampler", "NO_MAX_LENGTH"]

NO_MAX_LENGTH = 1_000_000
"""A ``max_length`` that keeps every clip (T2M-GPT's VQ loader has no upper limit)."""


@dataclass
class MotionSet:
    """Unnormalized feature arrays of one split, one per motion (segments not duplicated)."""

    ids: list[str]
    """Clip ids."""
    features: list[np.ndarray]
    """float32 ``(T_i, D)`` unnormalized features."""
    mean: np.ndarray
    """float32 ``(D,)`` the dataset's ``Mean.npy``."""
    std: np.ndarray
    """float32 ``(D,)`` the dataset's ``Std.npy``."""
    feature_dim: int
    """Feature size D."""
    joints_num: int
    """Skeleton joints J."""
    dataset: str
    """Dataset spec name (``humanml3d``, ``kit``, ...)."""
    skipped: str
    """The loader's skip-report summary (empty when nothing was skipped)."""
    n_skipped: int
    """Number of skipped items (data errors and the length filter)."""

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``(N,)`` frame counts."""
        return np.array([f.shape[0] for f in self.features], dtype=np.int64)


def load_motion_set(
    root: str | Path,
    split: str,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    dataset: str | None = None,
    max_clips: int = 0,
) -> MotionSet:
    """Whole clips of ``split`` (via :func:`motiongpt.data.humanml3d.load_humanml3d`, no captions needed).

    A clip whose captions are all segments appears in the loader only as its segment sub-clips;
    those are used then (each source motion exactly once otherwise). Bad files are skipped and
    reported by the loader; ``max_clips`` > 0 keeps the first N. ``min_length``/``max_length``
    (frames, inclusive) default to the dataset's text-to-motion range (40..196 for HumanML3D);
    training passes ``max_length=NO_MAX_LENGTH`` since long clips still give valid windows.
    """
    from motiongpt.data.humanml3d import load_humanml3d

    ds = load_humanml3d(
        root,
        split,
        dataset=dataset,
        min_length=min_length,
        max_length=max_length,
        require_text=False,
    )
    whole = {c.source_id for c in ds.clips if not c.is_segment}
    clips = [c for c in ds.clips if not c.is_segment or c.source_id not in whole]
    if max_clips > 0:
        clips = clips[:max_clips]
    assert ds.mean is not None and ds.std is not None  # require_stats=True (default) guarantees them
    return MotionSet(
        ids=[c.id for c in clips],
        features=[c.features for c in clips],
        mean=ds.mean,
        std=ds.std,
        feature_dim=ds.feature_dim,
        joints_num=ds.joints_num,
        dataset=ds.spec.name,
        skipped=ds.report.summary() if ds.report.skipped else "",
        n_skipped=len(ds.report.skipped),
    )


class WindowSampler:
    """Random fixed-length windows of normalized clips, with a serializable state.

    Each draw picks clips uniformly (as T2M-GPT's VQ loader) and a uniform start inside each.
    The generator state goes into checkpoints (JSON), so a resumed run draws exactly the windows
    the uninterrupted run would have drawn.
    """

    def __init__(self, clips: list[np.ndarray], window: int, batch_size: int, seed: int) -> None:
        self.clips = [c for c in clips if c.shape[0] >= window]
        if not self.clips:
            raise ValueError(f"no clip has >= {window} frames (window_size); lower train.window_size")
        self.window, self.batch_size = window, batch_size
        self.lengths = np.array([c.shape[0] for c in self.clips], dtype=np.int64)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.draws = 0

    def __len__(self) -> int:
        return len(self.clips)

    def next_batch(self) -> np.ndarray:
        """float32 ``(batch_size, window, D)`` windows."""
        idx = self.rng.integers(0, len(self.clips), size=self.batch_size)  # (B,)
        starts = (self.rng.random(self.batch_size) * (self.lengths[idx] - self.window + 1)).astype(np.int64)  # (B,)
        self.draws += 1
        return np.stack([self.clips[i][s : s + self.window] for i, s in zip(idx, starts)])  # (B, W, D)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (generator state and number of batches drawn)."""
        return {"bit_generator": self.rng.bit_generator.state, "draws": self.draws, "n_clips": len(self.clips)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (the clip set must be the same)."""
        if state.get("n_clips") != len(self.clips):
            raise ValueError(
                f"cannot resume the window sampler: the checkpoint saw {state.get('n_clips')} training clips, "
                f"the dataset now has {len(self.clips)} (the data changed since the checkpoint)"
            )
        self.rng.bit_generator.state = state["bit_generator"]
        self.draws = int(state["draws"])

"""Normalization statistics of HumanML3D-style features (how the published Mean/Std were made)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from motiongpt.motion.features import _n_joints, _where, feature_blocks

__all__ = ["compute_mean_std", "checked_mean_std"]


def compute_mean_std(
    features_list: Sequence[np.ndarray] | np.ndarray,
    *,
    names: Sequence[str] | None = None,
    name: str | None = None,
    zero_std_fill: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and block-averaged std over all frames, as the reference computes them.

    ``mean`` is the per-dimension mean over every frame of every clip. ``std`` is the
    per-dimension (population, ddof=0) std, then replaced within each block of
    :func:`~motiongpt.motion.features.feature_blocks` (``[0:1], [1:3], [3:4], [4:67], [67:193],
    [193:259], [259:263]`` for 263-d; derived from J, so 251-d KIT works too) by the block's average.

    Args:
        features_list: ``[T_i, D]`` arrays (``D = 12J - 1``, all the same), or one ``[N, D]`` array.
        names: optional clip ids, quoted (with the list index) in error messages.
        name: optional label of the whole set, quoted in error messages.
        zero_std_fill: a block whose std is 0 (the dimension never varies) would make
            ``(x - mean) / std`` divide by zero; by default that raises ``ValueError``, with a
            value given it is used as that block's std instead.

    Returns:
        ``(mean, std)``, float32 ``[D]`` each. Accumulates in float64, two passes, clip by clip
        (no concatenated copy of the data set).
    """
    where = _where(name)
    clips = [features_list] if isinstance(features_list, np.ndarray) else list(features_list)
    if not clips:
        raise ValueError(f"{where}expected at least one feature array, got an empty list")
    if names is not None and len(names) != len(clips):
        raise ValueError(f"{where}got {len(names)} names for {len(clips)} items")
    arrays: list[np.ndarray] = []
    dim = None
    for i, clip in enumerate(clips):
        w = _where(name, i if len(clips) > 1 or names is not None else None, names)
        arr = np.asarray(clip)
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
            raise ValueError(f"{w}expected real features of shape [T, D], got {tuple(arr.shape)} {arr.dtype}")
        _n_joints(arr.shape[1], w)
        if dim is not None and arr.shape[1] != dim:
            raise ValueError(f"{w}feature size {arr.shape[1]} differs from item 0's ({dim})")
        dim = arr.shape[1]
        if not np.isfinite(arr).all():
            frame = int(np.argmax(~np.isfinite(arr).all(axis=1)))
            raise ValueError(f"{w}features contain NaN or inf values (first at frame {frame})")
        arrays.append(arr)
    n_frames = sum(a.shape[0] for a in arrays)
    if n_frames < 2:
        raise ValueError(f"{where}need at least 2 frames in total to estimate a std, got {n_frames}")

    total = np.zeros(dim)
    for arr in arrays:
        total += arr.sum(axis=0, dtype=np.float64)
    mean = total / n_frames  # (D,)
    sq = np.zeros(dim)
    for arr in arrays:
        dev = arr.astype(np.float64) - mean  # (T, D)
        sq += np.einsum("td,td->d", dev, dev)
    std = np.sqrt(sq / n_frames)  # (D,) population std, as numpy's default

    for block, sl in feature_blocks(_n_joints(dim, where)).items():
        value = std[sl].mean()
        if value == 0.0:
            if zero_std_fill is None:
                raise ValueError(
                    f"{where}the std of feature block {block!r} [{sl.start}:{sl.stop}] is 0 (it "
                    "never varies over these frames), so normalization would divide by zero; "
                    "pass zero_std_fill= to use a fixed std for it"
                )
            value = float(zero_std_fill)
        std[sl] = value
    return mean.astype(np.float32), std.astype(np.float32)


def checked_mean_std(
    mean: np.ndarray | None, std: np.ndarray | None, nfeats: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 copies of a model's normalization statistics (zeros / ones when ``None``).

    Raises ``ValueError`` for a shape other than ``(nfeats,)``, NaN / inf entries, or a
    non-positive std (the dimensions are named), so a model never normalizes with a wrong vector.
    """
    mean = np.zeros(nfeats, np.float32) if mean is None else np.array(mean, dtype=np.float32)
    std = np.ones(nfeats, np.float32) if std is None else np.array(std, dtype=np.float32)
    for name, arr in (("mean", mean), ("std", std)):
        if arr.shape != (nfeats,):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({nfeats},) for model.nfeats={nfeats}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf")
    if (std <= 0).any():
        raise ValueError(f"std has non-positive entries at dims {np.flatnonzero(std <= 0)[:5].tolist()}")
    return mean, std

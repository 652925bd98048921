"""A motion read from a file, by one set of rules for every tool (generation, rendering, BVH export).

``.npy``: joints ``(T, J, 3)`` or HumanML3D / KIT-ML features ``(T, 263)`` / ``(T, 251)``, read
without pickles; ``.bvh``: joints ``(T, 22, 3)`` retargeted to the SMPL skeleton
(:func:`motiongpt.motion.bvh.bvh_to_joints`). :func:`read_motion_file` returns the array as stored
(the generator decides what features or joints mean for a task); :func:`motion_joints` always
returns joints.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["MOTION_FILE_SUFFIXES", "read_motion_file", "motion_joints"]

MOTION_FILE_SUFFIXES: tuple[str, ...] = (".npy", ".bvh")
"""Suffixes :func:`read_motion_file` reads."""

_FEATURE_DIMS = (263, 251)  # HumanML3D, KIT-ML


def read_motion_file(path: str | os.PathLike) -> np.ndarray:
    """The numeric array of a motion file (see the module docstring), as float32.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the file, for another suffix, a pickled, truncated or non-numeric array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:  # pickled object arrays, truncated or non-npy files
            raise ValueError(f"{path}: not a plain numeric .npy array ({e})") from None
    elif suffix == ".bvh":
        from motiongpt.motion.bvh import bvh_to_joints

        arr = bvh_to_joints(path)
    else:
        raise ValueError(f"{path}: expected a .npy (joints (T, J, 3) or features (T, 263) / (T, 251)) or .bvh file")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def motion_joints(path: str | os.PathLike, *, num_joints: int | None = None) -> np.ndarray:
    """Joints ``(T, J, 3)`` of a motion file: joints as stored, features converted with the exact
    features -> joints map, BVH retargeted. ``num_joints``: the J a caller needs (22 for the SMPL
    BVH writer); another J is a ``ValueError`` naming the file and shape."""
    arr = read_motion_file(path)
    if arr.ndim == 2 and arr.shape[1] in _FEATURE_DIMS:
        from motiongpt.motion.features import features_to_joints

        arr = features_to_joints(arr, name=str(path))
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1:
        raise ValueError(f"{path}: expected joints (T, J, 3) or features (T, 263) / (T, 251), got shape {arr.shape}")
    if num_joints is not None and arr.shape[1] != num_joints:
        raise ValueError(f"{path}: expected {num_joints} joints, got shape {arr.shape}")
    return arr

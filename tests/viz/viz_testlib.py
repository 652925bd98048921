"""Shared helpers of the viz tests: rest poses built from the skeleton offsets, a walking clip,
GIF frame reading and colour masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from motiongpt.motion.skeleton import KINEMATIC_CHAIN, KIT_KINEMATIC_CHAIN, TARGET_OFFSETS, parents_from_chains

REPO_ROOT = Path(__file__).resolve().parents[2]


def rest_pose(offsets: np.ndarray, chains) -> np.ndarray:
    """(J, 3) rest pose from per-joint offsets, feet on the floor (y = 0)."""
    parents = parents_from_chains(chains)
    pose = np.zeros((len(parents), 3))
    for j in range(1, len(parents)):  # parents come before children in both skeletons' numbering
        pose[j] = pose[parents[j]] + offsets[j]
    pose[:, 1] -= pose[:, 1].min()
    return pose


def walking(pose: np.ndarray, n: int, step: float = 0.05) -> np.ndarray:
    """(n, J, 3): the pose sliding forward along +z with a little bounce."""
    t = np.arange(n)[:, None]
    shift = np.concatenate([np.zeros_like(t, float), 0.03 * np.abs(np.sin(t / 3.0)), step * t], axis=1)
    return (pose[None] + shift[:, None, :]).astype(np.float32)


SMPL_REST = rest_pose(TARGET_OFFSETS, KINEMATIC_CHAIN)

# KIT-ML rest pose: spine 0-1-2-3-4 up, right arm 5-7 and right leg 11-15 on -x, left on +x,
# feet pointing +z (the same facing as HumanML3D).
_KIT_OFFSETS = np.array(
    [[0, 0, 0], [0, .12, 0], [0, .12, 0], [0, .15, 0], [0, .15, 0],
     [-.18, .02, 0], [0, -.28, 0], [0, -.25, 0], [.18, .02, 0], [0, -.28, 0], [0, -.25, 0],
     [-.1, -.05, 0], [0, -.42, 0], [0, -.41, 0], [0, -.06, .1], [0, 0, .08],
     [.1, -.05, 0], [0, -.42, 0], [0, -.41, 0], [0, -.06, .1], [0, 0, .08]]
)
KIT_REST = rest_pose(_KIT_OFFSETS, KIT_KINEMATIC_CHAIN)


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        assert im.format == "GIF"
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def colour_mask(rgb: np.ndarray, hex_colour: str, tol: int = 40) -> np.ndarray:
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(rgb.astype(int) - target).sum(-1) < tol)

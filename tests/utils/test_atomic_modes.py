"""Atomic writes publish files with ordinary permissions (mkstemp/mkdtemp would leave 0600/0700)."""

from __future__ import annotations

import os
import stat

import numpy as np

from motiongpt.utils.atomic import atomic_directory, atomic_save_npy, atomic_write_text


def test_modes_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_save_npy(tmp_path / "a.npy", np.zeros(3))
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "a.npy").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert (tmp_path / "a.txt").read_text() == "x"

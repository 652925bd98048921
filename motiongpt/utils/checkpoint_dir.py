"""Model checkpoint directories: a fixed set of files plus ``manifest.json`` of their hashes.

Shared by the VQ-VAE (:mod:`motiongpt.vq.model`) and the text-motion evaluator
(:mod:`motiongpt.eval.evaluator`). The manifest is written last (atomically): its presence with
matching hashes marks a complete save, so an interrupted or hand-edited save is detected on load.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping, Sequence

from motiongpt.utils.atomic import atomic_directory, sha256_file

__all__ = ["MANIFEST", "write_manifest", "verify_manifest", "save_checkpoint_dir", "check_state_dict"]

MANIFEST = "manifest.json"


def write_manifest(folder: Path, files: Sequence[str], fmt: str) -> None:
    """Write ``folder/manifest.json`` with the sha256 of each of ``files`` (atomically, last)."""
    manifest = {"format": fmt, "version": 1, "files": {n: sha256_file(folder / n) for n in files}}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def verify_manifest(directory: Path, files: Sequence[str], fmt: str) -> None:
    """``ValueError`` unless ``directory``'s manifest is a ``fmt`` manifest whose hashes match ``files``."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{directory / MANIFEST}: not valid JSON ({e})") from e
    if manifest.get("format") != fmt:
        raise ValueError(f"{directory / MANIFEST}: not a {fmt} manifest")
    bad = [n for n in files if manifest.get("files", {}).get(n) != sha256_file(directory / n)]
    if bad:
        raise ValueError(
            f"{directory}: {bad} do not match manifest.json (an interrupted save or files edited by hand); "
            "re-save the checkpoint or load an intact one"
        )


def save_checkpoint_dir(
    directory: str | os.PathLike, files: Sequence[str], fmt: str, write_files: Callable[[Path], None], staging: str
) -> Path:
    """Save a checkpoint: ``write_files(folder)`` writes ``files`` into ``folder``; the manifest follows.

    A directory that is absent or holds only checkpoint files is replaced as a whole
    (:func:`~motiongpt.utils.atomic.atomic_directory`): a kill mid-save leaves the previous
    checkpoint intact. A directory that also holds other things (a training ``out_dir`` with logs
    and checkpoints) gets the files written to ``directory/staging`` and swapped in one by one,
    ``manifest.json`` removed first and written last, so an interrupted save is detected on load
    instead of mixing two models.
    """
    directory = Path(directory)
    owned = set(files) | {MANIFEST}
    if not directory.exists() or {p.name for p in directory.iterdir()} <= owned:
        with atomic_directory(directory) as tmp:
            write_files(tmp)
            write_manifest(tmp, files, fmt)
        return directory
    with atomic_directory(directory / staging) as tmp:
        write_files(tmp)
    try:
        (directory / MANIFEST).unlink(missing_ok=True)
        for name in files:
            os.replace(directory / staging / name, directory / name)
        write_manifest(directory, files, fmt)
    finally:
        shutil.rmtree(directory / staging, ignore_errors=True)
    return directory


def check_state_dict(own: Mapping, state: Mapping, source: str, what: str) -> None:
    """``ValueError`` naming missing / unexpected / misshapen keys of ``state`` against ``own``
    (a module's ``state_dict()``): "<source> does not fit <what>: ..."."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = [
        f"{k}: {tuple(state[k].shape)} vs expected {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys {missing}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected}")
    if misshapen:
        parts.append(f"shape mismatches {misshapen}")
    if parts:
        raise ValueError(f"{source} does not fit {what}: " + "; ".join(parts))

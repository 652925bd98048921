"""Crash-safe writes: single files (``atomic_save_npy``) and whole directories (``atomic_directory``).

The pattern is always "write next to the target under a temporary name, then ``os.replace``":
a process killed at any point leaves either the previous version or the new one, never a
half-written file that a later stage would read as valid. Temporary names start with ``.`` and
contain ``.tmp`` so they are easy to recognise (and are git-ignored).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

__all__ = [
    "atomic_directory",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_text",
    "sha256_file",
    "remove_stale_temps",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give a temp file/dir the mode a plain ``open``/``mkdir`` would have (mkstemp/mkdtemp make
    them private: 0600/0700), so outputs are readable by the same users as any other file."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``.

    A crash leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically (no pickle: object arrays are refused)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
        _publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed, so large weight files are fine)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name and move it to ``path`` only when the block succeeds.

    Usage::

        with atomic_directory(out / "checkpoint-100") as tmp:
            save_file(tensors, tmp / "model.safetensors")
            ...

    On an exception (or a kill) inside the block the temporary directory is removed (or left as
    an ignorable ``.<name>.*.tmp`` folder) and ``path`` is untouched. When ``path`` already
    exists it is swapped out: renamed to a backup, the new directory renamed in, the backup
    deleted. Between those two renames (microseconds) ``path`` is briefly absent but the previous
    version is intact under ``.<name>.*.old``; :func:`remove_stale_temps` restores it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    _publish_mode(tmp, directory=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        backup = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(path, backup)
        os.replace(tmp, path)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, path)


def remove_stale_temps(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Clean up after a killed :func:`atomic_directory` / :func:`atomic_save_npy` in ``folder``.

    Removes leftover ``.<name>.*.tmp`` entries; a ``.<name>.*.old`` backup whose ``<name>`` is
    missing (a kill between the two renames) is renamed back to ``<name>``, otherwise deleted.
    ``names`` limits this to temporaries of those target names (use it on a folder shared with
    other tools); None handles every such entry. Call it only when no other process is writing
    into ``folder``. Returns the paths acted on.
    """
    folder = Path(folder)
    acted: list[Path] = []
    if not folder.is_dir():
        return acted
    prefixes = None if names is None else tuple(f".{n}." for n in names)
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if not name.startswith(".") or (prefixes is not None and not name.startswith(prefixes)):
            continue
        if name.endswith(".tmp"):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            acted.append(entry)
        elif name.endswith(".old"):
            # ".<name>.<8 hex>.old" -> "<name>"
            original = folder / name[1:].rsplit(".", 2)[0]
            if not original.exists():
                os.replace(entry, original)
            else:
                shutil.rmtree(entry, ignore_errors=True)
            acted.append(entry)
    return acted

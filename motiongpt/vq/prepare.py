"""Encode a whole dataset to VQ codes: ``<data_root>/VQVAE/<id>.npy`` (int64 ``(T // 4,)``).

The token cache records which tokenizer made it (``VQVAE/meta.json``: the checkpoint's file
hashes, the data's fingerprint, the id list, the mirror flag), so

* re-running with the same VQ-VAE and data is a no-op;
* a different VQ-VAE (or regenerated data) is detected as stale and everything is re-encoded;
* later stages call :func:`token_cache_status` to refuse tokens made by another tokenizer.

With ``mirror=True`` every clip is also mirrored left/right (features -> joints -> mirror ->
features) and encoded as ``M<id>`` (HumanML3D's naming), unless the dataset already ships ``M<id>``.
Bad clips are skipped and reported, never fatal; every file is written atomically and
``meta.json`` last, so an interrupted run is simply redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from motiongpt.config import atomic_write_text
from motiongpt.utils.atomic import atomic_save_npy, remove_stale_temps
from motiongpt.vq.model import VQVAE, read_manifest

__all__ = ["encode_dataset", "token_cache_status", "vq_identity", "dataset_ids", "TOKEN_DIR"]

log = logging.getLogger(__name__)

TOKEN_DIR = "VQVAE"
"""Subfolder of the dataset root that holds the codes (MotionGPT's name)."""

_META_VERSION = 1


def vq_identity(vq_dir: str | os.PathLike) -> dict[str, str]:
    """Identity of a checkpoint: SHA-256 of its weights, config and statistics (from ``manifest.json``)."""
    files = read_manifest(vq_dir)["files"]
    combined = hashlib.sha256("".join(f"{k}={files[k]};" for k in sorted(files)).encode()).hexdigest()
    return {"id": combined, **{f"{k}_sha256": v for k, v in sorted(files.items())}}


def dataset_ids(data_root: str | os.PathLike, split: str = "all") -> list[str]:
    """Ids of ``split``; for ``all`` without ``all.txt``, the union of train/val/test (in that order)."""
    from motiongpt.data.humanml3d import read_split

    root = Path(data_root)
    if split != "all" or (root / "all.txt").is_file():
        return list(dict.fromkeys(read_split(root, split)))
    ids: list[str] = []
    for s in ("train", "val", "test"):
        if (root / f"{s}.txt").is_file():
            ids += read_split(root, s)
    if not ids:
        raise FileNotFoundError(f"no all.txt, train.txt, val.txt or test.txt in {root}")
    return list(dict.fromkeys(ids))


def _fingerprint(motion_dir: Path, ids: Sequence[str]) -> str:
    # Size and mtime of every features file: cheap (no reading) and changes when data is rebuilt.
    h = hashlib.sha256()
    for clip_id in ids:
        p = motion_dir / f"{clip_id}.npy"
        st = p.stat() if p.is_file() else None
        h.update(f"{clip_id}:{st.st_size if st else -1}:{st.st_mtime_ns if st else -1};".encode())
    return h.hexdigest()


def _expected_meta(vq_dir: Path, data_root: Path, split: str, mirror: bool, ids: list[str]) -> dict[str, Any]:
    return {
        "version": _META_VERSION,
        "vq": vq_identity(vq_dir),
        "split": split,
        "mirror": bool(mirror),
        "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "data_fingerprint": _fingerprint(data_root / "new_joint_vecs", ids),
    }


_KEYS = ("version", "vq", "split", "mirror", "ids_sha256", "data_fingerprint")


def token_cache_status(
    data_root: str | os.PathLike, vq_dir: str | os.PathLike, *, split: str = "all", mirror: bool = False
) -> dict[str, Any]:
    """Whether ``<data_root>/VQVAE`` holds the codes of ``vq_dir`` for the current data.

    Returns ``{"current": bool, "reason": str, "meta": dict | None}``; ``reason`` says what differs.
    """
    data_root, vq_dir = Path(data_root), Path(vq_dir)
    meta_path = data_root / TOKEN_DIR / "meta.json"
    if not meta_path.is_file():
        return {"current": False, "reason": f"no {meta_path} (not encoded, or an interrupted run)", "meta": None}
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    expected = _expected_meta(vq_dir, data_root, split, mirror, dataset_ids(data_root, split))
    for key in _KEYS:
        if meta.get(key) != expected[key]:
            what = {"vq": f"made by another VQ-VAE (cache {meta.get('vq', {}).get('id', '?')[:12]}, "
                          f"{vq_dir} is {expected['vq']['id'][:12]})",
                    "data_fingerprint": "the features files changed since encoding",
                    "ids_sha256": "the split's id list changed"}.get(key, f"{key} differs")
            return {"current": False, "reason": what, "meta": meta}
    missing = [n for n in meta.get("files", []) if not (data_root / TOKEN_DIR / n).is_file()]
    if missing:
        return {"current": False, "reason": f"{len(missing)} token files missing (e.g. {missing[0]})", "meta": meta}
    return {"current": True, "reason": "up to date", "meta": meta}


def _read_features(path: Path, dim: int, min_frames: int) -> tuple[np.ndarray | None, str, str]:
    """(features, reason, detail); features None when the clip is skipped."""
    if not path.is_file():
        return None, "missing features file", ""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # truncated, not .npy, or pickled object array
        return None, "unreadable features npy", f"{type(e).__name__}: {e}"
    if arr.ndim != 2 or arr.shape[1] != dim or not np.issubdtype(arr.dtype, np.number):
        return None, "wrong feature shape", f"shape {arr.shape} dtype {arr.dtype}, expected [T, {dim}]"
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        return None, "NaN/inf in features", f"{rows.size} rows, first {int(rows[0])}"
    if arr.shape[0] < min_frames:
        return None, "too short", f"{arr.shape[0]} frames < {min_frames}"
    return arr, "", ""


def encode_dataset(
    vq_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    *,
    mirror: bool = False,
    split: str = "all",
    batch_size: int = 256,
    chunk_clips: int = 1024,
    force: bool = False,
    device: str | None = None,
) -> dict[str, Any]:
    """Encode every clip of ``split`` (default: all) with the VQ-VAE at ``vq_dir``.

    Args:
        vq_dir: checkpoint directory (``VQVAE.from_pretrained``); its statistics normalize the data.
        data_root: HumanML3D-layout dataset; codes go to ``<data_root>/VQVAE/<id>.npy``.
        mirror: also encode the left/right mirror of each clip as ``M<id>``.
        split: split file whose ids are encoded (``all``: all.txt, or train+val+test).
        batch_size: clips per forward pass (clips are grouped by equal cropped length).
        chunk_clips: clips read into memory at a time (bounds memory on the full dataset).
        force: re-encode even when the cache is current.
        device: torch device for the model (default CPU).

    Returns:
        A report: counts, skipped clips with reasons, whether the cache was reused, seconds.
    """
    t0 = time.time()
    vq_dir, data_root = Path(vq_dir), Path(data_root)
    out = data_root / TOKEN_DIR
    status = token_cache_status(data_root, vq_dir, split=split, mirror=mirror)
    if status["current"] and not force:
        meta = status["meta"]
        log.info("token cache %s is current (VQ %s); nothing to do", out, meta["vq"]["id"][:12])
        return {"cached": True, "out_dir": str(out), "n_files": len(meta["files"]), "skipped": meta["skipped"],
                "seconds": round(time.time() - t0, 3)}

    vq = VQVAE.from_pretrained(vq_dir, device=device)
    ids = dataset_ids(data_root, split)
    expected = _expected_meta(vq_dir, data_root, split, mirror, ids)
    out.mkdir(parents=True, exist_ok=True)
    # Invalidate first: from here until meta.json is rewritten the folder is not a valid cache.
    (out / "meta.json").unlink(missing_ok=True)
    remove_stale_temps(out)
    if status["meta"] is not None:
        log.info("token cache %s is stale (%s): re-encoding", out, status["reason"])
        for old in out.glob("*.npy"):
            old.unlink()

    from motiongpt.motion.features import features_to_joints_batch, joints_to_features_batch, mirror_joints

    id_set = set(ids)
    motion_dir = data_root / "new_joint_vecs"
    files: list[str] = []
    skipped: list[dict[str, str]] = []
    n_mirrored = 0
    for k in range(0, len(ids), chunk_clips):
        chunk_ids, chunk_feats = [], []
        for clip_id in ids[k : k + chunk_clips]:
            feats, reason, detail = _read_features(motion_dir / f"{clip_id}.npy", vq.nfeats, vq.downsample)
            if feats is None:
                skipped.append({"id": clip_id, "reason": reason, "detail": detail})
                continue
            chunk_ids.append(clip_id)
            chunk_feats.append(feats)
        if mirror:
            # Mirror clips the dataset does not already ship (HumanML3D includes its M-files).
            todo = [i for i, cid in enumerate(chunk_ids) if f"M{cid}" not in id_set and not cid.startswith("M")]
            if todo:
                joints = features_to_joints_batch([chunk_feats[i] for i in todo], names=[chunk_ids[i] for i in todo])
                mirrored = joints_to_features_batch(
                    [mirror_joints(j) for j in joints], names=[f"M{chunk_ids[i]}" for i in todo]
                )
                for i, f in zip(todo, mirrored):
                    if f.shape[0] < vq.downsample:
                        skipped.append({"id": f"M{chunk_ids[i]}", "reason": "too short", "detail": f"{f.shape[0]} frames"})
                        continue
                    chunk_ids.append(f"M{chunk_ids[i]}")
                    chunk_feats.append(f)
                    n_mirrored += 1
        codes = vq.encode_batch(chunk_feats, batch_size=batch_size, names=chunk_ids)
        for clip_id, c in zip(chunk_ids, codes):
            atomic_save_npy(out / f"{clip_id}.npy", c.astype(np.int64))
            files.append(f"{clip_id}.npy")
        log.info("encoded %d / %d clips", min(k + chunk_clips, len(ids)), len(ids))

    meta = {
        **expected,
        "vq_path": str(vq_dir.resolve()),
        "nb_code": vq.nb_code,
        "downsample": vq.downsample,
        "n_ids": len(ids),
        "n_encoded": len(files) - n_mirrored,
        "n_mirrored": n_mirrored,
        "files": files,
        "skipped": skipped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))
    if skipped:
        log.warning("skipped %d clip(s): %s", len(skipped), "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:5]))
    return {
        "cached": False,
        "out_dir": str(out),
        "n_files": len(files),
        "n_encoded": meta["n_encoded"],
        "n_mirrored": n_mirrored,
        "skipped": skipped,
        "seconds": round(time.time() - t0, 3),
    }
